//! The environment variables of OpenFaaS's of-watchdog, read with its
//! defaults and parsing rules, so that a function configured for the
//! watchdog behaves the same with this binary alone.
//!
//! Durations take a plain number of seconds or a Go duration (`30s`,
//! `1m`), as the watchdog does. The watchdog silently falls back to the
//! default for an unparsable value; this module falls back too, but
//! returns a warning naming the variable, the value and the default.

use std::time::Duration;

use crate::duration::parse_go_duration;

/// Default `read_timeout`, `write_timeout` and `exec_timeout` of of-watchdog.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The watchdog settings that apply to this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogEnv {
    /// `read_timeout`: the longest a client may take to send one request.
    pub read_timeout: Duration,
    /// `write_timeout`: the longest a response may take to send, and the
    /// drain deadline at shutdown.
    pub write_timeout: Duration,
    /// `exec_timeout`: the longest one request may run; `None` when set to 0.
    pub exec_timeout: Option<Duration>,
    /// `healthcheck_interval`: how long to keep serving after SIGTERM
    /// before the drain begins; `write_timeout` when unset.
    pub healthcheck_interval: Duration,
    /// `max_inflight`: the most requests handled at once; `None` when unset or 0.
    pub max_inflight: Option<usize>,
    /// `suppress_lock`: true to write no lock file.
    pub suppress_lock: bool,
    /// `prefix_logs`: false to log bare messages without time and level.
    pub prefix_logs: bool,
    /// `log_callid`: true to append the `X-Call-Id` to access log lines.
    pub log_callid: bool,
}

impl Default for WatchdogEnv {
    fn default() -> Self {
        Self {
            read_timeout: DEFAULT_TIMEOUT,
            write_timeout: DEFAULT_TIMEOUT,
            exec_timeout: Some(DEFAULT_TIMEOUT),
            healthcheck_interval: DEFAULT_TIMEOUT,
            max_inflight: None,
            suppress_lock: false,
            prefix_logs: true,
            log_callid: false,
        }
    }
}

impl WatchdogEnv {
    /// Reads the variables from the process environment.
    pub fn from_env() -> (Self, Vec<String>) {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, returning the settings and one
    /// warning per value that was invalid and replaced by its default.
    pub fn from_lookup<F>(lookup: F) -> (Self, Vec<String>)
    where
        F: Fn(&str) -> Option<String>,
    {
        let mut warnings = Vec::new();
        let defaults = Self::default();
        let mut timeout = |name: &str, default: Duration, zero_allowed: bool| {
            let value = lookup(name)?;
            match parse_go_duration(&value) {
                Ok(parsed) if parsed.is_zero() && !zero_allowed => {
                    warnings.push(format!(
                        "{name}=0 would leave connections without a limit; using {} s",
                        default.as_secs_f64()
                    ));
                    Some(default)
                }
                Ok(parsed) => Some(parsed),
                Err(error) => {
                    warnings.push(format!(
                        "{error} in {name}; using the default of {} s",
                        default.as_secs_f64()
                    ));
                    Some(default)
                }
            }
        };

        let read_timeout =
            timeout("read_timeout", DEFAULT_TIMEOUT, false).unwrap_or(defaults.read_timeout);
        let write_timeout =
            timeout("write_timeout", DEFAULT_TIMEOUT, false).unwrap_or(defaults.write_timeout);
        let exec_timeout = timeout("exec_timeout", DEFAULT_TIMEOUT, true)
            .map_or(defaults.exec_timeout, |parsed| {
                (!parsed.is_zero()).then_some(parsed)
            });
        let healthcheck_interval =
            timeout("healthcheck_interval", write_timeout, true).unwrap_or(write_timeout);

        let max_inflight =
            lookup("max_inflight").and_then(|value| match value.trim().parse::<usize>() {
                Ok(0) => None,
                Ok(limit) => Some(limit),
                Err(_) => {
                    warnings.push(format!(
                        "invalid max_inflight '{value}': expected a whole number of requests; \
                         using no limit"
                    ));
                    None
                }
            });

        let mut flag = |name: &str, default: bool| match lookup(name) {
            None => default,
            Some(value) => parse_flag(&value).unwrap_or_else(|| {
                warnings.push(format!(
                    "invalid {name} '{value}': expected true, false, 1 or 0; using {default}"
                ));
                default
            }),
        };
        let suppress_lock = flag("suppress_lock", defaults.suppress_lock);
        let prefix_logs = flag("prefix_logs", defaults.prefix_logs);
        let log_callid = flag("log_callid", defaults.log_callid);

        let settings = Self {
            read_timeout,
            write_timeout,
            exec_timeout,
            healthcheck_interval,
            max_inflight,
            suppress_lock,
            prefix_logs,
            log_callid,
        };
        (settings, warnings)
    }
}

fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Returns the time limit of one request: `exec_timeout`, or the shorter
/// duration an `X-Timeout` header asks for. As in of-watchdog, the header
/// is ignored when `exec_timeout` is off, when it asks for longer, or when
/// it cannot be parsed.
pub fn request_timeout(exec_timeout: Option<Duration>, header: Option<&str>) -> Option<Duration> {
    let limit = exec_timeout?;
    let requested = header.and_then(|value| parse_go_duration(value).ok());
    match requested {
        Some(shorter) if shorter <= limit && !shorter.is_zero() => Some(shorter),
        _ => Some(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (WatchdogEnv, Vec<String>) {
        WatchdogEnv::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_match_the_watchdog() {
        let (env, warnings) = read(&[]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(env, WatchdogEnv::default());
        assert_eq!(env.exec_timeout, Some(Duration::from_secs(30)));
        assert_eq!(env.healthcheck_interval, Duration::from_secs(30));
        assert!(env.prefix_logs);
        assert!(!env.suppress_lock);
    }

    #[test]
    fn values_parse_as_seconds_or_go_durations() {
        let (env, warnings) = read(&[
            ("read_timeout", "5"),
            ("write_timeout", "1m30s"),
            ("exec_timeout", "250ms"),
            ("max_inflight", "4"),
            ("suppress_lock", "true"),
            ("prefix_logs", "false"),
            ("log_callid", "1"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(env.read_timeout, Duration::from_secs(5));
        assert_eq!(env.write_timeout, Duration::from_secs(90));
        assert_eq!(env.exec_timeout, Some(Duration::from_millis(250)));
        assert_eq!(env.max_inflight, Some(4));
        assert!(env.suppress_lock);
        assert!(!env.prefix_logs);
        assert!(env.log_callid);
    }

    #[test]
    fn healthcheck_interval_follows_write_timeout() {
        let (env, _) = read(&[("write_timeout", "12s")]);
        assert_eq!(env.healthcheck_interval, Duration::from_secs(12));
        let (env, _) = read(&[("write_timeout", "12s"), ("healthcheck_interval", "0")]);
        assert_eq!(env.healthcheck_interval, Duration::ZERO);
    }

    #[test]
    fn zero_turns_off_exec_timeout_and_max_inflight() {
        let (env, warnings) = read(&[("exec_timeout", "0"), ("max_inflight", "0")]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(env.exec_timeout, None);
        assert_eq!(env.max_inflight, None);
    }

    #[test]
    fn invalid_values_warn_and_use_defaults() {
        let (env, warnings) = read(&[
            ("read_timeout", "soon"),
            ("write_timeout", "0"),
            ("max_inflight", "-3"),
            ("prefix_logs", "maybe"),
        ]);
        assert_eq!(env.read_timeout, DEFAULT_TIMEOUT);
        assert_eq!(env.write_timeout, DEFAULT_TIMEOUT);
        assert_eq!(env.max_inflight, None);
        assert!(env.prefix_logs);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].contains("'soon'"), "{}", warnings[0]);
        assert!(warnings[0].contains("read_timeout"), "{}", warnings[0]);
        assert!(warnings[1].contains("write_timeout=0"), "{}", warnings[1]);
        assert!(warnings[2].contains("max_inflight '-3'"), "{}", warnings[2]);
        assert!(
            warnings[3].contains("prefix_logs 'maybe'"),
            "{}",
            warnings[3]
        );
    }

    #[test]
    fn x_timeout_only_shortens() {
        let limit = Some(Duration::from_secs(10));
        assert_eq!(
            request_timeout(limit, Some("2s")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(request_timeout(limit, Some("1m")), limit);
        assert_eq!(request_timeout(limit, Some("junk")), limit);
        assert_eq!(request_timeout(limit, None), limit);
        assert_eq!(request_timeout(None, Some("2s")), None);
    }
}
