//! The inference request JSON: parsing, validation against the model's one
//! input and output, and conversion to CIFAR layout.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::data::TensorData;
use super::{IMAGE_VALUES, MAX_BATCH, OUTPUT_NAME};

/// Side of an image in pixels.
const SIDE: usize = 32;

/// Colour channels of an image.
const CHANNELS: usize = 3;

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

/// Pixels of a batch in CIFAR layout: per image 1024 red, 1024 green and
/// 1024 blue values, each plane row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// From a UINT8 tensor.
    Bytes(Vec<u8>),
    /// From an FP32 tensor, on the 0..255 scale.
    Values(Vec<f32>),
}

/// Element type of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datatype {
    Fp32,
    Uint8,
}

/// Order of the axes after the batch axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `[N, 3, 32, 32]`: channel, row, column, as CIFAR stores images.
    Chw,
    /// `[N, 32, 32, 3]`: row, column, channel, as most image libraries do.
    Hwc,
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

/// Parses and validates an inference request body.
///
/// # Errors
/// A message for a 400 reply that names the invalid field or value and
/// what the model accepts.
pub fn parse_request(body: &[u8]) -> Result<InferRequest, String> {
    let request: RequestJson = serde_json::from_slice(body).map_err(|error| {
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
    let data = take_data(input.data, input.parameters.as_ref(), &label)?;
    check_count(&data, &input.shape, &label)?;

    let pixels = match datatype {
        Datatype::Uint8 => Pixels::Bytes(to_cifar_layout(to_bytes(&data.values, &label)?, layout)),
        Datatype::Fp32 => Pixels::Values(to_cifar_layout(to_floats(&data.values, &label)?, layout)),
    };
    Ok(InferRequest {
        id: request.id,
        images,
        pixels,
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

fn take_data(
    data: Option<TensorData>,
    parameters: Option<&Map<String, Value>>,
    label: &str,
) -> Result<TensorData, String> {
    if parameters.is_some_and(|parameters| parameters.contains_key("binary_data_size")) {
        return Err(format!(
            "{label} uses the binary tensor data extension, which this server does not \
             implement: send the values in the JSON \"data\" field (with tritonclient, \
             set_data_from_numpy(array, binary_data=False))"
        ));
    }
    data.ok_or_else(|| format!("{label} has no \"data\" field: send its values as a JSON array"))
}

fn check_count(data: &TensorData, shape: &[i64], label: &str) -> Result<(), String> {
    // `parse_shape` accepted the shape, so every dimension is positive.
    let expected: usize = shape.iter().map(|&dim| dim as usize).product();
    if data.values.len() != expected {
        return Err(format!(
            "{label} has {} data elements, but shape {shape:?} needs {expected}",
            data.values.len()
        ));
    }
    let nested_as_shape = data
        .dims
        .iter()
        .map(|&dim| dim as i64)
        .eq(shape.iter().copied());
    if data.is_nested() && !nested_as_shape {
        return Err(format!(
            "{label} has data nested as {:?}, which does not match shape {shape:?}: send the \
             data flat, or nested exactly as the shape",
            data.dims
        ));
    }
    Ok(())
}

fn to_bytes(values: &[f64], label: &str) -> Result<Vec<u8>, String> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            if value.fract() == 0.0 && (0.0..=255.0).contains(&value) {
                Ok(value as u8)
            } else {
                Err(format!(
                    "{label} has {value:?} at data element {index}: UINT8 values must be \
                     integers from 0 to 255"
                ))
            }
        })
        .collect()
}

fn to_floats(values: &[f64], label: &str) -> Result<Vec<f32>, String> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            let single = value as f32;
            if single.is_finite() && (0.0..=255.0).contains(&single) {
                Ok(single)
            } else {
                Err(format!(
                    "{label} has {value:?} at data element {index}: FP32 values must be \
                     pixel values from 0 to 255"
                ))
            }
        })
        .collect()
}

/// Reorders whole images from `layout` to CIFAR layout (CHW).
fn to_cifar_layout<T: Copy>(values: Vec<T>, layout: Layout) -> Vec<T> {
    match layout {
        Layout::Chw => values,
        Layout::Hwc => {
            let mut planar = Vec::with_capacity(values.len());
            for image in values.chunks_exact(IMAGE_VALUES) {
                for channel in 0..CHANNELS {
                    planar.extend(image.iter().skip(channel).step_by(CHANNELS));
                }
            }
            planar
        }
    }
}

#[cfg(test)]
mod tests;
