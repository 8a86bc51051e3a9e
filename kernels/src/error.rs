//! The error type shared by all kernels.

use thiserror::Error;

/// A kernel call whose arguments do not fit its geometry.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    /// A slice has a length other than the one its geometry implies.
    #[error("{name} has length {found}, but its shape {shape} needs {expected}")]
    Length {
        /// Which argument, for example `input` or `grad_weight`.
        name: &'static str,
        /// The shape the geometry implies, written as `[n, c, h, w]`.
        shape: String,
        /// The length that shape needs.
        expected: usize,
        /// The length passed.
        found: usize,
    },
    /// A geometry that cannot be built, such as a zero dimension or a kernel
    /// larger than the padded input.
    #[error("invalid {op} geometry: {reason}")]
    Geometry {
        /// The op, for example `conv2d`.
        op: &'static str,
        /// What is wrong and which values were given.
        reason: String,
    },
    /// A scalar parameter out of its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    Parameter {
        /// The parameter, for example `dropout p`.
        name: &'static str,
        /// The value given, formatted.
        value: String,
        /// The accepted range.
        reason: String,
    },
    /// A class label at or above the number of classes.
    #[error("label {label} at row {row} is out of range for {classes} classes")]
    Label {
        /// The row of the batch.
        row: usize,
        /// The label value.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
}

/// Checks that the slice argument `name` has as many elements as the shape
/// `dims` needs.
pub(crate) fn check_len(
    name: &'static str,
    dims: &[usize],
    found: usize,
) -> Result<(), KernelError> {
    let expected = dims.iter().product();
    if found == expected {
        return Ok(());
    }
    let shape = dims
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(KernelError::Length {
        name,
        shape: format!("[{shape}]"),
        expected,
        found,
    })
}

/// Rejects a geometry of `op` in which one of the named `values` is zero.
pub(crate) fn require_positive(
    op: &'static str,
    values: &[(&str, usize)],
) -> Result<(), KernelError> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((name, _)) => Err(KernelError::Geometry {
            op,
            reason: format!("{name} is 0, but it must be at least 1"),
        }),
        None => Ok(()),
    }
}

/// Rejects a geometry of `op` whose tensor of shape `dims` would have more
/// than `usize::MAX` elements.
pub(crate) fn require_addressable(op: &'static str, dims: &[usize]) -> Result<(), KernelError> {
    match dims.iter().try_fold(1usize, |len, &d| len.checked_mul(d)) {
        Some(_) => Ok(()),
        None => Err(KernelError::Geometry {
            op,
            reason: format!("a tensor of shape {dims:?} has more than usize::MAX elements"),
        }),
    }
}
