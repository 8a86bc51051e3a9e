//! Server and model metadata bodies.

use serde::Serialize;

use super::{MODEL_VERSION, OUTPUT_NAME};

/// Value of `platform` in the model metadata.
pub const PLATFORM: &str = "cifaas_cnn";

/// Name of the input tensor in the model metadata. Requests may name their
/// one input anything.
pub const INPUT_NAME: &str = "input";

/// Body of `GET /v2`.
#[derive(Debug, Serialize)]
pub struct ServerMetadata {
    name: &'static str,
    version: &'static str,
    extensions: [&'static str; 0],
}

/// Returns the server metadata: the crate's name and version, no extensions.
pub fn server() -> ServerMetadata {
    ServerMetadata {
        name: "cifaas",
        version: env!("CARGO_PKG_VERSION"),
        extensions: [],
    }
}

/// A tensor in the model metadata; `-1` in a shape is any batch size.
#[derive(Debug, Serialize)]
pub struct TensorMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    datatype: &'static str,
    shape: [i64; 4],
}

/// The output tensor in the model metadata.
#[derive(Debug, Serialize)]
pub struct OutputMetadata {
    name: &'static str,
    datatype: &'static str,
    shape: [i64; 2],
}

/// Body of `GET /v2/models/{name}`.
#[derive(Debug, Serialize)]
pub struct ModelMetadata<'a> {
    name: &'a str,
    versions: [&'static str; 1],
    platform: &'static str,
    inputs: [TensorMetadata; 1],
    outputs: [OutputMetadata; 1],
    /// Every datatype and shape the one input accepts, beyond the
    /// protocol's fields: FP32 or UINT8 pixel values on the 0..255 scale,
    /// in CHW or HWC order.
    accepted_inputs: [TensorMetadata; 4],
}

/// Returns the metadata of the model served as `name`.
pub fn model(name: &str) -> ModelMetadata<'_> {
    let chw = [-1, 3, 32, 32];
    let hwc = [-1, 32, 32, 3];
    let accepted = |datatype, shape| TensorMetadata {
        name: None,
        datatype,
        shape,
    };
    ModelMetadata {
        name,
        versions: [MODEL_VERSION],
        platform: PLATFORM,
        inputs: [TensorMetadata {
            name: Some(INPUT_NAME),
            datatype: "FP32",
            shape: chw,
        }],
        outputs: [OutputMetadata {
            name: OUTPUT_NAME,
            datatype: "FP32",
            shape: [-1, model::CLASSES as i64],
        }],
        accepted_inputs: [
            accepted("FP32", chw),
            accepted("FP32", hwc),
            accepted("UINT8", chw),
            accepted("UINT8", hwc),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_metadata_json() {
        let value = serde_json::to_value(server()).unwrap();
        let expected = serde_json::json!({
            "name": "cifaas",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": [],
        });
        assert_eq!(value, expected);
    }

    #[test]
    fn model_metadata_json() {
        let value = serde_json::to_value(model("m1")).unwrap();
        assert_eq!(value["name"], "m1");
        assert_eq!(value["versions"], serde_json::json!(["1"]));
        assert_eq!(value["platform"], "cifaas_cnn");
        let inputs =
            serde_json::json!([{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]);
        assert_eq!(value["inputs"], inputs);
        let outputs =
            serde_json::json!([{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]);
        assert_eq!(value["outputs"], outputs);
        let accepted = value["accepted_inputs"].as_array().unwrap();
        assert_eq!(accepted.len(), 4);
        assert_eq!(
            accepted[3],
            serde_json::json!({"datatype": "UINT8", "shape": [-1, 32, 32, 3]})
        );
    }
}
