//! The input tensor's elements, from JSON or from binary tensor data,
//! checked as pixel values and reordered to CIFAR layout.

use std::fmt;

use super::data::TensorData;
use super::IMAGE_VALUES;

/// Colour channels of an image.
pub const CHANNELS: usize = 3;

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
pub enum Datatype {
    /// 32-bit float, little-endian in binary data.
    Fp32,
    /// Unsigned byte.
    Uint8,
}

impl Datatype {
    /// Returns the protocol's name of the datatype.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Fp32 => "FP32",
            Datatype::Uint8 => "UINT8",
        }
    }

    /// Returns the bytes of one element in binary tensor data.
    pub fn width(self) -> usize {
        match self {
            Datatype::Fp32 => 4,
            Datatype::Uint8 => 1,
        }
    }
}

/// Order of the axes after the batch axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[N, 3, 32, 32]`: channel, row, column, as CIFAR stores images.
    Chw,
    /// `[N, 32, 32, 3]`: row, column, channel, as most image libraries do.
    Hwc,
}

/// The source of the input tensor's elements.
#[derive(Debug, Clone, PartialEq)]
pub enum Elements<'a> {
    /// The JSON `data` field.
    Json(TensorData),
    /// The tensor's part of the body in the binary tensor data extension:
    /// the elements' raw bytes, row-major, FP32 little-endian.
    Binary(&'a [u8]),
}

/// A tensor's datatype, shape and layout, and the name that error messages
/// use for it.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    /// Element type.
    pub datatype: Datatype,
    /// The shape, which `parse_shape` accepted, so every dimension is positive.
    pub shape: &'a [i64],
    /// Axis order of `shape`.
    pub layout: Layout,
    /// Name of the tensor in error messages, such as `input 'x'`.
    pub label: &'a str,
}

impl Tensor<'_> {
    fn element_count(&self) -> usize {
        self.shape.iter().map(|&dim| dim as usize).product()
    }
}

/// Checks `elements` against `tensor` and returns them as pixels in CIFAR
/// layout.
///
/// # Errors
/// A message for a 400 reply when the element count or the nesting does
/// not match the shape, or a value is not a pixel value of the datatype.
pub fn decode(tensor: Tensor<'_>, elements: Elements<'_>) -> Result<Pixels, String> {
    let pixels = match elements {
        Elements::Json(data) => {
            check_count(&data, tensor)?;
            match tensor.datatype {
                Datatype::Uint8 => Pixels::Bytes(to_bytes(&data.values, tensor.label)?),
                Datatype::Fp32 => {
                    // Messages show the value as sent, before rounding to f32.
                    let values = data.values.iter().map(|&value| (value as f32, value));
                    Pixels::Values(check_floats(values, tensor.label)?)
                }
            }
        }
        Elements::Binary(bytes) => {
            check_binary_size(bytes, tensor)?;
            match tensor.datatype {
                Datatype::Uint8 => Pixels::Bytes(bytes.to_vec()),
                Datatype::Fp32 => {
                    let values = bytes.chunks_exact(4).map(|chunk| {
                        let mut word = [0; 4];
                        word.copy_from_slice(chunk);
                        let value = f32::from_le_bytes(word);
                        (value, value)
                    });
                    Pixels::Values(check_floats(values, tensor.label)?)
                }
            }
        }
    };
    Ok(match pixels {
        Pixels::Bytes(bytes) => Pixels::Bytes(to_cifar_layout(bytes, tensor.layout)),
        Pixels::Values(values) => Pixels::Values(to_cifar_layout(values, tensor.layout)),
    })
}

fn check_count(data: &TensorData, tensor: Tensor<'_>) -> Result<(), String> {
    let (shape, label) = (tensor.shape, tensor.label);
    let expected = tensor.element_count();
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

fn check_binary_size(bytes: &[u8], tensor: Tensor<'_>) -> Result<(), String> {
    let expected = tensor.element_count() * tensor.datatype.width();
    if bytes.len() != expected {
        return Err(format!(
            "{} has {} bytes of binary data, but shape {:?} of {} needs {expected}",
            tensor.label,
            bytes.len(),
            tensor.shape,
            tensor.datatype.name()
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

/// Checks FP32 pixel values, each paired with the value to show in an error.
fn check_floats<S: fmt::Debug>(
    values: impl Iterator<Item = (f32, S)>,
    label: &str,
) -> Result<Vec<f32>, String> {
    values
        .enumerate()
        .map(|(index, (value, shown))| {
            if value.is_finite() && (0.0..=255.0).contains(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "{label} has {shown:?} at data element {index}: FP32 values must be \
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
