//! The Open Inference Protocol (KServe V2) REST API under `/v2`: server and
//! model health, metadata, and inference on JSON tensors.
//!
//! The server serves one model, named by `--model-name`, at version "1".
//! Its one input takes a batch of 32x32 RGB images as FP32 or UINT8 pixel
//! values on the 0..255 scale, shaped `[N, 3, 32, 32]` (CHW) or
//! `[N, 32, 32, 3]` (HWC). Its one output, `probabilities`, is FP32
//! `[N, 10]`.
//!
//! Inputs may use the binary tensor data extension. Outputs are always
//! JSON, which tritonclient 2.73 reads even when it asked for binary
//! outputs. Because only the input half of the extension is implemented,
//! `GET /v2` lists no extension.

mod data;
mod handlers;
mod infer;
mod metadata;
mod pixels;
mod request;
mod route;

pub use data::TensorData;
pub use handlers::handle;
pub use infer::{parse_body, parse_json_size};
pub use pixels::Pixels;
pub use request::{parse_request, InferRequest};
pub use route::{Endpoint, ModelPath, Route};

/// Model name served when `--model-name` is not given.
pub const DEFAULT_MODEL_NAME: &str = "cifar10";

/// The one version of the model.
pub const MODEL_VERSION: &str = "1";

/// Maximum images in one inference request.
pub const MAX_BATCH: usize = 256;

/// Values of one image: 3 planes of 32 x 32.
pub const IMAGE_VALUES: usize = model::IMAGE_BYTES;

/// Maximum tensor elements in one inference request.
pub const MAX_ELEMENTS: usize = MAX_BATCH * IMAGE_VALUES;

/// Largest inference request body read. tritonclient 2.73 sends
/// [`MAX_BATCH`] images of random fractional FP32 values as 14.5 MB of
/// JSON, about 18 bytes per value.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Name of the output tensor.
pub const OUTPUT_NAME: &str = "probabilities";

/// True for the inference path, `POST`ed requests to which run the model.
pub fn is_infer_path(path: &str) -> bool {
    route::Route::parse(path).is_some_and(|route| route.endpoint == route::Endpoint::Infer)
}

/// True for `/v2` and every path below it.
pub fn is_v2_path(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// Parses a `--model-name` value: ASCII letters, digits, `_`, `.` and `-`.
pub fn parse_model_name(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("the model name is empty; pass letters, digits, '_', '.' or '-'".into());
    }
    let invalid = value
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
    match invalid {
        Some(c) => Err(format!(
            "invalid character {c:?} in the model name '{value}'; use only letters, digits, \
             '_', '.' and '-'"
        )),
        None => Ok(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_accepts_allowed_characters() {
        assert_eq!(parse_model_name("cifar10"), Ok("cifar10".into()));
        assert_eq!(parse_model_name("a.B_c-9"), Ok("a.B_c-9".into()));
    }

    #[test]
    fn model_name_rejects_empty_and_others() {
        let empty = parse_model_name("").unwrap_err();
        assert!(empty.contains("the model name is empty"), "{empty}");
        for (value, character) in [
            ("a/b", "'/'"),
            ("a b", "' '"),
            ("é", "'é'"),
            ("x%2F", "'%'"),
        ] {
            let error = parse_model_name(value).unwrap_err();
            assert!(error.contains(character), "{value}: {error}");
            assert!(error.contains(&format!("'{value}'")), "{value}: {error}");
        }
    }

    #[test]
    fn v2_paths() {
        assert!(is_v2_path("/v2"));
        assert!(is_v2_path("/v2/health/live"));
        assert!(!is_v2_path("/v20"));
        assert!(!is_v2_path("/predict"));
    }
}
