//! JSON bodies: `{"instances": [...]}`, one image per instance.
//!
//! An instance is one of:
//! - a nested array of pixel values, 32x32x3 (height, width, channel) or
//!   3x32x32 (channel, height, width), told apart by their shape;
//! - a flat array of 3072 values in CIFAR layout;
//! - `{"b64": "..."}` with the standard base64 (padding optional) of a
//!   PNG, a JPEG or one raw 3072-byte image.
//!
//! Pixel values are integers from 0 to 255, and an integral number such as
//! `7.0` is accepted too. Other fields of the body are ignored.
//!
//! The body is parsed in one streaming pass with serde visitors, so memory
//! stays at the decoded images plus one instance's values, whatever the
//! body holds, and parsing stops at the first instance over `max_batch`
//! images, after counting the rest.

use std::fmt;

use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::image::{decode_image, ImageKind, PixelBudget};
use super::raw::{check_batch_size, single_raw_image};
use super::{detect_format, hwc_to_chw, Batch, DecodeError, Format, Limits, IMAGE_BYTES};

/// Nesting depth of an HWC or CHW instance array.
const MAX_DEPTH: usize = 3;

const EXPECTED_BODY: &str = r#"a JSON object {"instances": [...]}"#;

const EXPECTED_INSTANCE: &str = "an array of shape [32, 32, 3] (HWC), [3, 32, 32] (CHW) \
     or [3072] (flat CHW), or an object {\"b64\": \"<base64 of a PNG, a JPEG or a raw \
     3072-byte image>\"}";

/// Decodes a JSON body into a batch with one image per instance.
///
/// # Errors
/// [`DecodeError::Invalid`] for invalid JSON or an invalid instance, named
/// by its index, and [`DecodeError::TooLarge`] for more than
/// `limits.max_batch` instances or images over the image limits.
pub fn decode_json(body: &[u8], limits: &Limits) -> Result<Batch, DecodeError> {
    let mut state = State::new(limits);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed { state: &mut state }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Err(error) = parsed {
        // An error this module raised is stored with its kind, so any other
        // error came from serde_json and means malformed JSON.
        return Err(state.error.take().unwrap_or_else(|| {
            DecodeError::Invalid(format!(
                "invalid JSON body: {error}; expected {EXPECTED_BODY}"
            ))
        }));
    }
    Ok(Batch {
        pixels: state.pixels,
        count: state.count,
        format: Format::Json,
    })
}

/// Everything the visitors share: the output, the limits, the first error
/// this module raised, and the instance being parsed.
struct State<'l> {
    limits: &'l Limits,
    budget: PixelBudget,
    pixels: Vec<u8>,
    count: usize,
    error: Option<DecodeError>,
    instance: InstanceState,
}

/// Values and shape of the array instance being parsed.
#[derive(Default)]
struct InstanceState {
    values: Vec<u8>,
    /// Length of the first array completed at each depth.
    lengths: [Option<usize>; MAX_DEPTH],
    /// Depth of the numbers, from the first number seen.
    leaf_depth: Option<usize>,
    /// Index of the element being parsed at each depth.
    path: Vec<usize>,
}

impl<'l> State<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            budget: PixelBudget::new(limits.max_request_pixels),
            pixels: Vec::new(),
            count: 0,
            error: None,
            instance: InstanceState::default(),
        }
    }

    /// Stores `error` and returns a serde error that stops the parse.
    fn fail<E: de::Error>(&mut self, error: DecodeError) -> E {
        let serde_error = E::custom(error.message());
        self.error = Some(error);
        serde_error
    }

    /// Fails with a 400 about the current instance.
    fn invalid<E: de::Error>(&mut self, message: &str) -> E {
        let error = DecodeError::Invalid(format!("instance {}: {message}", self.count));
        self.fail(error)
    }

    /// Fails with a 400 about the element at the current position.
    fn invalid_at<E: de::Error>(&mut self, message: &str) -> E {
        let position = format_position(&self.instance.path);
        self.invalid(&format!("position {position}: {message}"))
    }

    fn push_value<E: de::Error>(
        &mut self,
        depth: usize,
        value: Option<u8>,
        text: &str,
    ) -> Result<(), E> {
        match self.instance.leaf_depth {
            None => self.instance.leaf_depth = Some(depth),
            Some(leaf) if leaf != depth => {
                return Err(self.invalid_at(&format!(
                    "found the number {text} where an array was expected; {}",
                    expected_instance()
                )))
            }
            Some(_) => {}
        }
        let Some(value) = value else {
            return Err(self.invalid_at(&format!(
                "{text} is not a pixel value; expected an integer from 0 to 255"
            )));
        };
        if self.instance.values.len() == IMAGE_BYTES {
            return Err(self.invalid(&format!(
                "more than {IMAGE_BYTES} pixel values; {}",
                expected_instance()
            )));
        }
        self.instance.values.push(value);
        Ok(())
    }

    /// Records the length of a completed array at `depth`, rejecting ragged arrays.
    fn check_length<E: de::Error>(&mut self, depth: usize, length: usize) -> Result<(), E> {
        match self.instance.lengths[depth] {
            None => {
                self.instance.lengths[depth] = Some(length);
                Ok(())
            }
            Some(first) if first == length => Ok(()),
            Some(first) => Err(self.invalid_at(&format!(
                "this array has {length} elements but the first array at its depth has \
                 {first}; nested arrays must be rectangular"
            ))),
        }
    }

    /// Converts the parsed array instance to CIFAR layout by its shape.
    fn finish_array<E: de::Error>(&mut self) -> Result<Vec<u8>, E> {
        let instance = std::mem::take(&mut self.instance);
        let Some(leaf_depth) = instance.leaf_depth else {
            return Err(self.invalid(&format!(
                "the array contains no pixel values; {}",
                expected_instance()
            )));
        };
        let shape: Vec<usize> = instance.lengths[..leaf_depth]
            .iter()
            .map(|length| length.unwrap_or(0))
            .collect();
        let values = instance.values;
        let complete = values.len() == IMAGE_BYTES;
        match shape.as_slice() {
            [3072] | [3, 32, 32] if complete => Ok(values),
            [32, 32, 3] if complete => Ok(hwc_to_chw(&values)),
            _ => Err(self.invalid(&format!(
                "the array has shape {}; {}",
                format_position(&shape),
                expected_instance()
            ))),
        }
    }

    /// Decodes the bytes of a `{"b64": ...}` instance by their signature.
    fn decode_payload(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let kind = match detect_format(bytes) {
            Some(Format::Png) => ImageKind::Png,
            Some(Format::Jpeg) => ImageKind::Jpeg,
            Some(Format::Raw | Format::Json) | None => return single_raw_image(bytes),
        };
        match decode_image(kind, bytes, self.limits, &mut self.budget) {
            // `FF D8 FF` is also a valid start of a raw image.
            Err(DecodeError::Invalid(_))
                if kind == ImageKind::Jpeg && bytes.len() == IMAGE_BYTES =>
            {
                single_raw_image(bytes)
            }
            result => result,
        }
    }
}

fn expected_instance() -> String {
    format!("expected {EXPECTED_INSTANCE}")
}

/// Formats indices or a shape as `[1, 2, 3]`.
fn format_position(indices: &[usize]) -> String {
    let parts: Vec<String> = indices.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn pixel_from_u64(value: u64) -> Option<u8> {
    u8::try_from(value).ok()
}

fn pixel_from_f64(value: f64) -> Option<u8> {
    let integral = value.is_finite() && value.fract() == 0.0;
    if integral && (0.0..=255.0).contains(&value) {
        pixel_from_u64(value as u64)
    } else {
        None
    }
}

/// The top-level object.
struct BodySeed<'s, 'l> {
    state: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(EXPECTED_BODY)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "instances" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if found {
                let error = DecodeError::Invalid(
                    "the JSON body has the field \"instances\" twice; send it once".to_owned(),
                );
                return Err(self.state.fail(error));
            }
            map.next_value_seed(InstancesSeed {
                state: &mut *self.state,
            })?;
            found = true;
        }
        if !found {
            let error = DecodeError::Invalid(format!(
                "the JSON body has no \"instances\" field; expected {EXPECTED_BODY}"
            ));
            return Err(self.state.fail(error));
        }
        Ok(())
    }
}

/// The `instances` array.
struct InstancesSeed<'s, 'l> {
    state: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("\"instances\" to be an array of images")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.state;
        while state.count < state.limits.max_batch {
            let seed = InstanceSeed { state: &mut *state };
            let Some(pixels) = seq.next_element_seed(seed)? else {
                break;
            };
            state.pixels.extend_from_slice(&pixels);
            state.count += 1;
        }
        if state.count == state.limits.max_batch {
            let mut total = state.count;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                total += 1;
            }
            if let Err(error) = check_batch_size(total, state.limits) {
                return Err(state.fail(error));
            }
        }
        if state.count == 0 {
            let error =
                DecodeError::Invalid("\"instances\" is empty; send at least one image".to_owned());
            return Err(state.fail(error));
        }
        Ok(())
    }
}

/// One instance; its index is `state.count`.
struct InstanceSeed<'s, 'l> {
    state: &'s mut State<'l>,
}

impl InstanceSeed<'_, '_> {
    fn wrong_type<E: de::Error>(self, found: &str) -> Result<Vec<u8>, E> {
        Err(self
            .state
            .invalid(&format!("found {found}; {}", expected_instance())))
    }
}

impl<'de> DeserializeSeed<'de> for InstanceSeed<'_, '_> {
    type Value = Vec<u8>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InstanceSeed<'_, '_> {
    type Value = Vec<u8>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(EXPECTED_INSTANCE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<u8>, A::Error> {
        self.state.instance = InstanceState::default();
        ElementSeed {
            state: &mut *self.state,
            depth: 0,
        }
        .visit_seq(seq)?;
        self.state.finish_array()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
        let state = self.state;
        let mut pixels = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "b64" {
                return Err(
                    state.invalid(&format!("unknown field \"{key}\"; {}", expected_instance()))
                );
            }
            if pixels.is_some() {
                return Err(state.invalid("the field \"b64\" appears twice; send it once"));
            }
            pixels = Some(map.next_value_seed(Base64Seed { state: &mut *state })?);
        }
        match pixels {
            Some(pixels) => Ok(pixels),
            None => Err(state.invalid(&format!(
                "the object has no \"b64\" field; {}",
                expected_instance()
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<u8>, E> {
        self.wrong_type("a string")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<u8>, E> {
        self.wrong_type("a boolean")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<u8>, E> {
        self.wrong_type("a number")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<u8>, E> {
        self.wrong_type("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<u8>, E> {
        self.wrong_type("a number")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
        self.wrong_type("null")
    }
}

/// An element of an array instance at `depth` (0 is the instance itself).
struct ElementSeed<'s, 'l> {
    state: &'s mut State<'l>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ElementSeed<'_, '_> {
    fn wrong_type<E: de::Error>(self, found: &str) -> Result<(), E> {
        Err(self.state.invalid_at(&format!(
            "found {found}; expected a pixel value or an array"
        )))
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a pixel value or an array of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.state;
        let nested_too_deep = self.depth >= MAX_DEPTH;
        let below_numbers = state
            .instance
            .leaf_depth
            .is_some_and(|leaf| self.depth >= leaf);
        if nested_too_deep || below_numbers {
            return Err(state.invalid_at(&format!(
                "found an array where a pixel value was expected; {}",
                expected_instance()
            )));
        }
        state.instance.path.push(0);
        let mut length = 0;
        loop {
            let element = ElementSeed {
                state: &mut *state,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(element)?.is_none() {
                break;
            }
            length += 1;
            if let Some(index) = state.instance.path.last_mut() {
                *index = length;
            }
        }
        state.instance.path.pop();
        state.check_length(self.depth, length)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.state
            .push_value(self.depth, pixel_from_u64(value), &value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        let pixel = u64::try_from(value).ok().and_then(pixel_from_u64);
        self.state.push_value(self.depth, pixel, &value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.state
            .push_value(self.depth, pixel_from_f64(value), &value.to_string())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.wrong_type("a string")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.wrong_type("a boolean")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.wrong_type("null")
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.wrong_type("an object")
    }
}

/// The string of a `{"b64": ...}` instance.
struct Base64Seed<'s, 'l> {
    state: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for Base64Seed<'_, '_> {
    type Value = Vec<u8>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Base64Seed<'_, '_> {
    type Value = Vec<u8>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a base64 string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        let state = self.state;
        let bytes = match STANDARD_PAD_INDIFFERENT.decode(text) {
            Ok(bytes) => bytes,
            Err(error) => {
                return Err(state.invalid(&format!(
                    "invalid base64 in \"b64\": {error}; expected standard base64 \
                     (A-Z, a-z, 0-9, + and /, padding optional, no line breaks)"
                )))
            }
        };
        match state.decode_payload(&bytes) {
            Ok(pixels) => Ok(pixels),
            Err(error) => {
                let error = error.context(&format!("instance {}", state.count));
                Err(state.fail(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::{
        cifar_image, encode_b64, encode_png, hwc_of, json_chw, json_hwc, nested_json,
    };
    use image::DynamicImage;

    fn decode(body: &str) -> Result<Batch, DecodeError> {
        decode_json(body.as_bytes(), &Limits::default())
    }

    fn error_of(body: &str) -> DecodeError {
        decode(body).expect_err("the body should be rejected")
    }

    fn assert_invalid(body: &str, expected: &[&str]) {
        let error = error_of(body);
        assert_eq!(error.status(), 400, "{error}");
        for part in expected {
            assert!(error.message().contains(part), "{part:?} not in: {error}");
        }
    }

    fn flat(values: &[u8]) -> String {
        serde_json::to_string(values).unwrap()
    }

    #[test]
    fn layouts_decode_alike() {
        let cifar = cifar_image(5);
        let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
        let instances = [
            json_hwc(&cifar),
            json_chw(&cifar),
            flat(&cifar),
            format!(r#"{{"b64": "{}"}}"#, encode_b64(&png)),
            format!(r#"{{"b64": "{}"}}"#, encode_b64(&cifar)),
        ];
        let body = format!(r#"{{"instances": [{}]}}"#, instances.join(","));
        let batch = decode(&body).unwrap();
        assert_eq!(batch.count, instances.len());
        assert_eq!(batch.format, Format::Json);
        for (index, image) in batch.pixels.chunks(IMAGE_BYTES).enumerate() {
            assert_eq!(image, cifar.as_slice(), "instance {index}");
        }
    }

    #[test]
    fn integral_floats_are_pixels() {
        let values: Vec<String> = (0..IMAGE_BYTES).map(|i| format!("{}.0", i % 256)).collect();
        let body = format!(r#"{{"instances": [[{}]]}}"#, values.join(","));
        let batch = decode(&body).unwrap();
        assert_eq!(batch.pixels[300], (300 % 256) as u8);
    }

    #[test]
    fn b64_padding_is_optional() {
        // A PNG whose length is not a multiple of 3 encodes with padding.
        let (cifar, png) = (0..)
            .map(|seed| {
                let cifar = cifar_image(seed);
                let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
                (cifar, png)
            })
            .find(|(_, png)| png.len() % 3 != 0)
            .unwrap();
        let padded = encode_b64(&png);
        assert!(padded.ends_with('='), "{padded}");
        for text in [padded.as_str(), padded.trim_end_matches('=')] {
            let body = format!(r#"{{"instances": [{{"b64": "{text}"}}]}}"#);
            assert_eq!(decode(&body).unwrap().pixels, cifar);
        }
    }

    #[test]
    fn rejects_invalid_pixel_values() {
        let cases = [
            ("256", "256 is not"),
            ("-1", "-1 is not"),
            ("1.5", "1.5 is not"),
        ];
        for (value, expected) in cases {
            let mut values: Vec<String> = vec!["0".to_owned(); IMAGE_BYTES];
            values[5] = value.to_owned();
            let body = format!(
                r#"{{"instances": [[{}], [{}]]}}"#,
                vec!["1"; IMAGE_BYTES].join(","),
                values.join(",")
            );
            assert_invalid(&body, &["instance 1", "position [5]", expected, "0 to 255"]);
        }
    }

    #[test]
    fn nested_error_names_position() {
        let instance = nested_json([32, 32, 3], |h, w, c| {
            let value = if (h, w, c) == (0, 1, 0) { 300 } else { 0 };
            value.to_string()
        });
        let body = format!(r#"{{"instances": [{instance}]}}"#);
        assert_invalid(&body, &["instance 0", "position [0, 1, 0]", "300 is not"]);
    }

    #[test]
    fn rejects_wrong_shapes() {
        let row = |width: usize| format!("[{}]", vec!["[1,2,3]"; width].join(","));
        let hwc_33 = format!("[{}]", vec![row(33); 32].join(","));
        let cases = [
            (flat(&[0; 3071]), "shape [3071]"),
            (flat(&[0; 10]), "shape [10]"),
            ("[]".to_owned(), "no pixel values"),
            (
                format!("[{}]", vec!["[1,2,3,4]"; 768].join(",")),
                "shape [768, 4]",
            ),
            (
                format!("[{}]", vec![row(32); 31].join(",")),
                "shape [31, 32, 3]",
            ),
            (hwc_33, "more than 3072 pixel values"),
        ];
        for (instance, expected) in cases {
            let body = format!(r#"{{"instances": [{instance}]}}"#);
            assert_invalid(&body, &["instance 0", expected, "[32, 32, 3] (HWC)"]);
        }
    }

    #[test]
    fn rejects_ragged_and_mixed_arrays() {
        let full_row = vec!["[1,2,3]"; 32].join(",");
        let short_row = vec!["[1,2,3]"; 31].join(",");
        let ragged = format!("[[{full_row}],[{short_row}]]");
        assert_invalid(
            &format!(r#"{{"instances": [{ragged}]}}"#),
            &["position [1]", "31 elements", "rectangular"],
        );
        assert_invalid(
            r#"{"instances": [[1, [2]]]}"#,
            &["position [1]", "found an array"],
        );
        assert_invalid(
            r#"{"instances": [[[1], 2]]}"#,
            &["position [1]", "found the number 2"],
        );
        assert_invalid(
            r#"{"instances": [[[[[1]]]]]}"#,
            &["position [0, 0, 0]", "found an array"],
        );
        assert_invalid(r#"{"instances": [["a"]]}"#, &["position [0]", "a string"]);
    }

    #[test]
    fn rejects_bad_instances() {
        let cases = [
            (r#"{"instances": ["abc"]}"#, "found a string"),
            (r#"{"instances": [null]}"#, "found null"),
            (r#"{"instances": [7]}"#, "found a number"),
            (
                r#"{"instances": [{"image": "x"}]}"#,
                "unknown field \"image\"",
            ),
            (r#"{"instances": [{}]}"#, "no \"b64\" field"),
            (r#"{"instances": [{"b64": "!!!"}]}"#, "invalid base64"),
            (r#"{"instances": [{"b64": "AAAA"}]}"#, "3 bytes"),
        ];
        for (body, expected) in cases {
            assert_invalid(body, &["instance 0", expected]);
        }
    }

    #[test]
    fn b64_image_errors_name_instance() {
        let cifar = cifar_image(4);
        let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
        let truncated = encode_b64(&png[..png.len() / 2]);
        let body = format!(
            r#"{{"instances": [{}, {{"b64": "{truncated}"}}]}}"#,
            flat(&cifar)
        );
        assert_invalid(&body, &["instance 1", "invalid PNG image"]);
    }

    #[test]
    fn rejects_bad_bodies() {
        let cases = [
            ("", "invalid JSON body"),
            ("{", "invalid JSON body"),
            ("[1, 2]", "invalid JSON body"),
            (r#"{"instance": []}"#, "no \"instances\" field"),
            (r#"{"instances": []}"#, "\"instances\" is empty"),
            (r#"{"instances": {}}"#, "invalid JSON body"),
        ];
        for (body, expected) in cases {
            assert_invalid(body, &[expected]);
        }
        let instance = flat(&[0; IMAGE_BYTES]);
        let twice = format!(r#"{{"instances": [{instance}], "instances": [{instance}]}}"#);
        assert_invalid(&twice, &["\"instances\" twice"]);
        let trailing = format!(r#"{{"instances": [{instance}]}} x"#);
        assert_invalid(&trailing, &["invalid JSON body", "trailing characters"]);
    }

    #[test]
    fn other_fields_are_ignored() {
        let cifar = cifar_image(9);
        let body = format!(
            r#"{{"signature_name": "x", "instances": [{}], "extra": {{"a": [1, 2]}}}}"#,
            flat(&cifar)
        );
        assert_eq!(decode(&body).unwrap().pixels, cifar);
    }

    #[test]
    fn rejects_batch_over_limit() {
        let limits = Limits {
            max_batch: 2,
            ..Limits::default()
        };
        let instance = flat(&[0; IMAGE_BYTES]);
        let body = format!(r#"{{"instances": [{}]}}"#, vec![instance; 5].join(","));
        let error = decode_json(body.as_bytes(), &limits).unwrap_err();
        assert_eq!(error.status(), 413, "{error}");
        assert!(error.message().contains("contains 5 images"), "{error}");
        assert!(error.message().contains("limit of 2"), "{error}");

        let at_limit = format!(
            r#"{{"instances": [{}]}}"#,
            vec![flat(&[0; IMAGE_BYTES]); 2].join(",")
        );
        assert_eq!(decode_json(at_limit.as_bytes(), &limits).unwrap().count, 2);
    }
}
