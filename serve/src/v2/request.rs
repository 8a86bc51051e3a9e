//! The inference request JSON: parsing and validation against the model's
//! one input and output.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::data::TensorData;
use super::pixels::{self, Datatype, Elements, Layout, Pixels, Tensor, CHANNELS};
use super::{MAX_BATCH, OUTPUT_NAME};

/// Side of an image in pixels.
const SIDE: usize = 32;

/// A validated inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    /// The request `id`, echoed in the response.
    pub id: Option<String>,
    /// Images in the batch.
    pub images: usize,
    /// The pixels, in CIFAR layout.
    pub pixels: Pixels,
}

#[derive(Deserialize)]
struct RequestJson {
    #[serde(default)]
    id: Option<String>,
    // Only checked to be an object: no request parameter changes the result.
    #[serde(default, rename = "parameters")]
    _parameters: Option<Map<String, Value>>,
    inputs: OneInput,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Deserialize)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<TensorData>,
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    // Only checked to be an object: the output is always sent as JSON.
    #[serde(default, rename = "parameters")]
    _parameters: Option<Map<String, Value>>,
}

/// The `inputs` array, which must hold exactly one tensor. Parsing stops
/// at the second one, so that only one tensor's data is ever kept.
struct OneInput(InputJson);

impl<'de> Deserialize<'de> for OneInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(OneInputVisitor)
    }
}

struct OneInputVisitor;

impl<'de> Visitor<'de> for OneInputVisitor {
    type Value = OneInput;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array with one input tensor")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneInput, A::Error> {
        let Some(input) = seq.next_element::<InputJson>()? else {
            return Err(de::Error::custom(
                "inputs is empty: send exactly one input tensor",
            ));
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "inputs has more than one tensor: this model takes exactly one input",
            ));
        }
        Ok(OneInput(input))
    }
}

/// Parses and validates an inference request: `json` is the JSON object,
/// and `binary` the rest of the body when the request uses the binary
/// tensor data extension, else empty.
///
/// # Errors
/// A message for a 400 reply that names the invalid field or value and
/// what the model accepts.
pub fn parse_request(json: &[u8], binary: &[u8]) -> Result<InferRequest, String> {
    let request: RequestJson = serde_json::from_slice(json).map_err(|error| {
        format!(
            "invalid inference request: {error}; send a JSON object such as \
             {{\"inputs\": [{{\"name\": \"input\", \"datatype\": \"UINT8\", \
             \"shape\": [1, 3, 32, 32], \"data\": [...]}}]}}"
        )
    })?;
    check_outputs(request.outputs.as_deref().unwrap_or_default())?;
    let input = request.inputs.0;
    if input.name.is_empty() {
        return Err("the input tensor's name is empty: give it any name, such as \"input\"".into());
    }
    let label = format!("input '{}'", input.name);
    let datatype = parse_datatype(&input.datatype, &label)?;
    let (layout, images) = parse_shape(&input.shape, &label)?;
    let elements = take_elements(input.data, input.parameters.as_ref(), binary, &label)?;
    let tensor = Tensor {
        datatype,
        shape: &input.shape,
        layout,
        label: &label,
    };
    Ok(InferRequest {
        id: request.id,
        images,
        pixels: pixels::decode(tensor, elements)?,
    })
}

fn check_outputs(outputs: &[OutputJson]) -> Result<(), String> {
    match outputs.iter().find(|output| output.name != OUTPUT_NAME) {
        Some(output) => Err(format!(
            "unknown output '{}': this model has one output, '{OUTPUT_NAME}'",
            output.name
        )),
        None => Ok(()),
    }
}

fn parse_datatype(datatype: &str, label: &str) -> Result<Datatype, String> {
    match datatype {
        "FP32" => Ok(Datatype::Fp32),
        "UINT8" => Ok(Datatype::Uint8),
        _ => Err(format!(
            "{label} has datatype '{datatype}', which this model does not accept: \
             send FP32 or UINT8"
        )),
    }
}

/// Returns the layout and the batch size of a shape.
fn parse_shape(shape: &[i64], label: &str) -> Result<(Layout, usize), String> {
    let (side, channels) = (SIDE as i64, CHANNELS as i64);
    let (batch, layout) = match *shape {
        [batch, c, h, w] if c == channels && h == side && w == side => (batch, Layout::Chw),
        [batch, h, w, c] if c == channels && h == side && w == side => (batch, Layout::Hwc),
        _ => {
            return Err(format!(
                "{label} has shape {shape:?}, which this model does not accept: send \
                 [N, 3, 32, 32] (CHW) or [N, 32, 32, 3] (HWC)"
            ))
        }
    };
    match usize::try_from(batch) {
        Ok(images) if (1..=MAX_BATCH).contains(&images) => Ok((layout, images)),
        Ok(images) if images > MAX_BATCH => Err(format!(
            "{label} has batch size {images}, above the maximum of {MAX_BATCH}: split the \
             batch into several requests"
        )),
        _ => Err(format!(
            "{label} has batch size {batch} in shape {shape:?}: send at least 1 image"
        )),
    }
}

/// Picks the JSON `data` field, or the binary part of the body when the
/// input has a `binary_data_size` parameter.
fn take_elements<'a>(
    data: Option<TensorData>,
    parameters: Option<&Map<String, Value>>,
    binary: &'a [u8],
    label: &str,
) -> Result<Elements<'a>, String> {
    let binary_size = binary_data_size(parameters, label)?;
    match (data, binary_size) {
        (Some(_), Some(_)) => Err(format!(
            "{label} has both a \"data\" field and a binary_data_size parameter: send the \
             values one way only"
        )),
        (Some(_), None) if !binary.is_empty() => Err(format!(
            "{} bytes of binary data follow the JSON, but {label} has no binary_data_size \
             parameter: set it to the tensor's size in bytes, or send no binary data",
            binary.len()
        )),
        (Some(data), None) => Ok(Elements::Json(data)),
        (None, Some(size)) if size != binary.len() => Err(format!(
            "{label} has binary_data_size {size}, but {} bytes of binary data follow the \
             JSON: set the Inference-Header-Content-Length header to the JSON's size and \
             append exactly the tensor's bytes",
            binary.len()
        )),
        (None, Some(_)) => Ok(Elements::Binary(binary)),
        (None, None) => Err(format!(
            "{label} has no \"data\" field: send its values as a JSON array"
        )),
    }
}

fn binary_data_size(
    parameters: Option<&Map<String, Value>>,
    label: &str,
) -> Result<Option<usize>, String> {
    let Some(value) = parameters.and_then(|parameters| parameters.get("binary_data_size")) else {
        return Ok(None);
    };
    match value.as_u64().and_then(|size| usize::try_from(size).ok()) {
        Some(size) => Ok(Some(size)),
        None => Err(format!(
            "{label} has binary_data_size {value}, which is not a size: send the tensor's \
             size in bytes as a non-negative integer"
        )),
    }
}

#[cfg(test)]
mod tests;
