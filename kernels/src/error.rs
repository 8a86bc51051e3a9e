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
