//! Durations in the notation of Go's `time.ParseDuration`, as OpenFaaS
//! timeout variables such as `write_timeout` use it.

use std::time::Duration;

/// Parses a Go duration (`10s`, `1m30s`, `1.5h`, `250ms`, `0`) or, as the
/// OpenFaaS watchdog also accepts, a plain number of seconds (`10`).
///
/// Units are `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m` and `h`. Negative
/// durations are rejected because a timeout cannot be negative.
///
/// # Errors
/// A message naming the value and the expected form.
pub fn parse_go_duration(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let invalid =
        || format!("invalid duration '{value}': expected a form such as 10s, 1m30s or 500ms");

    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.starts_with('-') {
        return Err(format!(
            "invalid duration '{value}': a timeout cannot be negative"
        ));
    }

    let mut rest = text;
    let mut total_seconds = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];

        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = unit_seconds(&rest[..unit_end]).ok_or_else(invalid)?;
        rest = &rest[unit_end..];

        total_seconds += number * seconds_per_unit;
    }

    Duration::try_from_secs_f64(total_seconds).map_err(|_| invalid())
}

fn unit_seconds(unit: &str) -> Option<f64> {
    match unit {
        "ns" => Some(1e-9),
        "us" | "µs" | "μs" => Some(1e-6),
        "ms" => Some(1e-3),
        "s" => Some(1.0),
        "m" => Some(60.0),
        "h" => Some(3600.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_seconds() {
        assert_eq!(parse_go_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn single_units() {
        assert_eq!(parse_go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_go_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_go_duration("1500µs"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_go_duration("42ns"), Ok(Duration::from_nanos(42)));
    }

    #[test]
    fn combined_and_fractional_units() {
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("+5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go_duration(" 10s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn invalid_forms() {
        for value in ["", "s", "10x", "ten seconds", "1.2.3s", "10s5"] {
            let error = parse_go_duration(value).unwrap_err();
            assert!(error.contains(&format!("'{value}'")), "{error}");
            assert!(error.contains("10s"), "{error}");
        }
    }

    #[test]
    fn negative_rejected() {
        let error = parse_go_duration("-5s").unwrap_err();
        assert_eq!(
            error,
            "invalid duration '-5s': a timeout cannot be negative"
        );
    }
}
