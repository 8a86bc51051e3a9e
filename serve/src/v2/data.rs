//! The `data` field of a JSON tensor, which the protocol allows flat or
//! nested, flattened in row-major order as it is parsed.
//!
//! Parsing streams into one `Vec<f64>` and stops after
//! [`MAX_ELEMENTS`](super::MAX_ELEMENTS) values, so a large body never
//! builds a `serde_json::Value` tree.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{MAX_BATCH, MAX_ELEMENTS};

/// The elements of a JSON tensor and the shape its nesting gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    /// Every element, in row-major order.
    pub values: Vec<f64>,
    /// Length of the arrays at each nesting level, outermost first: one
    /// entry for flat data.
    pub dims: Vec<usize>,
}

impl TensorData {
    /// True when the data is an array of arrays rather than flat.
    pub fn is_nested(&self) -> bool {
        self.dims.len() > 1
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut builder = Builder::default();
        Level {
            builder: &mut builder,
            depth: 0,
        }
        .deserialize(deserializer)?;
        builder.finish()
    }
}

/// State shared by every nesting level while the data is parsed.
#[derive(Default)]
struct Builder {
    values: Vec<f64>,
    /// Length of the first array closed at each depth.
    dims: Vec<Option<usize>>,
    /// Depth of the first number, counted from the outermost array as 0.
    leaf_depth: Option<usize>,
}

impl Builder {
    fn push<E: de::Error>(&mut self, depth: usize, value: f64) -> Result<(), E> {
        if depth == 0 {
            return Err(E::custom(
                "data is a single number: send an array of numbers, flat or nested",
            ));
        }
        match self.leaf_depth {
            None => self.leaf_depth = Some(depth),
            Some(expected) if expected != depth => return Err(ragged_levels(depth, expected)),
            Some(_) => {}
        }
        if self.values.len() == MAX_ELEMENTS {
            return Err(E::custom(format!(
                "data has more than {MAX_ELEMENTS} elements, the maximum for {MAX_BATCH} \
                 images: split the batch into several requests"
            )));
        }
        self.values.push(value);
        Ok(())
    }

    fn close_array<E: de::Error>(&mut self, depth: usize, length: usize) -> Result<(), E> {
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        match self.dims[depth] {
            None => self.dims[depth] = Some(length),
            Some(expected) if expected != length => {
                return Err(E::custom(format!(
                    "data is ragged: an array at nesting level {} has {length} elements, \
                     an earlier one has {expected}",
                    depth + 1
                )));
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<TensorData, E> {
        // Every array at depth d > 0 sits inside one at depth d - 1 that
        // closes after it, so each depth up to the deepest has a length.
        let dims: Vec<usize> = self.dims.iter().map(|dim| dim.unwrap_or(0)).collect();
        if let Some(leaf) = self.leaf_depth {
            if leaf != dims.len() {
                return Err(ragged_levels(leaf, dims.len()));
            }
        }
        Ok(TensorData {
            values: self.values,
            dims,
        })
    }
}

fn ragged_levels<E: de::Error>(found: usize, expected: usize) -> E {
    E::custom(format!(
        "data is ragged: it has numbers at nesting level {found} and at level {expected}; \
         nest every number equally deep"
    ))
}

/// One nesting level: a number or an array of deeper levels.
struct Level<'a> {
    builder: &'a mut Builder,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a number or an array of numbers")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.builder.push(self.depth, value as f64)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.builder.push(self.depth, value as f64)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.builder.push(self.depth, value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut length = 0;
        loop {
            let level = Level {
                builder: &mut *self.builder,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(level)?.is_none() {
                break;
            }
            length += 1;
        }
        self.builder.close_array(self.depth, length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TensorData, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn flat_data() {
        let data = parse("[1, 2.5, 0, 255]").unwrap();
        assert_eq!(data.values, vec![1.0, 2.5, 0.0, 255.0]);
        assert_eq!(data.dims, vec![4]);
        assert!(!data.is_nested());
    }

    #[test]
    fn nested_data_flattens_row_major() {
        let data = parse("[[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]]").unwrap();
        let expected: Vec<f64> = (1..=12).map(f64::from).collect();
        assert_eq!(data.values, expected);
        assert_eq!(data.dims, vec![2, 3, 2]);
        assert!(data.is_nested());
    }

    #[test]
    fn empty_arrays() {
        assert_eq!(parse("[]").unwrap().dims, vec![0]);
        let data = parse("[[], []]").unwrap();
        assert_eq!(data.dims, vec![2, 0]);
        assert!(data.values.is_empty());
    }

    #[test]
    fn negative_and_large_numbers() {
        let data = parse("[-1, 18446744073709551615, 1e300]").unwrap();
        assert_eq!(data.values, vec![-1.0, 18446744073709551615.0, 1e300]);
    }

    #[test]
    fn ragged_lengths_rejected() {
        let error = parse("[[1, 2], [3]]").unwrap_err();
        assert!(
            error.contains("an array at nesting level 2 has 1 elements, an earlier one has 2"),
            "{error}"
        );
    }

    #[test]
    fn ragged_levels_rejected() {
        for json in ["[[1, 2], 3]", "[1, [2, 3]]", "[[], 1]", "[[1], [[2]]]"] {
            let error = parse(json).unwrap_err();
            assert!(error.contains("data is ragged"), "{json}: {error}");
        }
    }

    #[test]
    fn non_numbers_rejected() {
        for (json, found) in [
            (r#"[1, "2"]"#, "string \"2\""),
            ("[1, null]", "null"),
            ("[true]", "boolean `true`"),
            (r#"[{"a": 1}]"#, "map"),
            (r#""abc""#, "string \"abc\""),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(found), "{json}: {error}");
            assert!(
                error.contains("expected a number or an array of numbers"),
                "{json}: {error}"
            );
        }
    }

    #[test]
    fn single_number_rejected() {
        let error = parse("7").unwrap_err();
        assert!(error.contains("data is a single number"), "{error}");
    }

    #[test]
    fn element_cap() {
        let at_cap = format!("[{}0]", "0,".repeat(MAX_ELEMENTS - 1));
        assert_eq!(parse(&at_cap).unwrap().values.len(), MAX_ELEMENTS);
        let over = format!("[{}0]", "0,".repeat(MAX_ELEMENTS));
        let error = parse(&over).unwrap_err();
        assert!(
            error.contains(&format!("more than {MAX_ELEMENTS} elements")),
            "{error}"
        );
    }

    #[test]
    fn deep_nesting_rejected_without_overflow() {
        let json = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let error = parse(&json).unwrap_err();
        assert!(error.contains("recursion limit exceeded"), "{error}");
    }
}
