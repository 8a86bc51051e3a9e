//! `POST /v2/models/{name}[/versions/{version}]/infer`: runs the network
//! on the request's tensor and returns the probabilities as a JSON tensor.

use serde::Serialize;

use crate::app::App;
use crate::batcher;
use crate::http::{BodyError, Exchange, Reply};
use crate::routes::{Outcome, Prediction};

use super::pixels::Pixels;
use super::request::{parse_request, InferRequest};
use super::route::ModelPath;
use super::{MAX_BATCH, MAX_BODY_BYTES, OUTPUT_NAME};

/// Header of the binary tensor data extension: the size of the JSON at the
/// start of the body, which the tensors' raw bytes follow.
const BINARY_HEADER: &str = "Inference-Header-Content-Length";

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: [OutputTensor; 1],
}

#[derive(Serialize)]
struct OutputTensor {
    name: &'static str,
    datatype: &'static str,
    shape: [usize; 2],
    data: Vec<f32>,
}

/// Handles an inference request for the served model `model`, which the
/// caller has checked.
pub fn infer(app: &App, exchange: &mut Exchange, model: ModelPath<'_>) -> Outcome {
    if app.ready_model().is_none() {
        return super::handlers::model_not_ready(app, model.name).into();
    }
    let json_size = match json_size(exchange) {
        Ok(size) => size,
        Err(message) => return Reply::error(400, &message).into(),
    };
    let body = match exchange.read_body(MAX_BODY_BYTES) {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => return too_large(exchange).into(),
        Err(error) => return error.into_reply().into(),
    };
    let request = match parse_body(&body, json_size) {
        Ok(request) => request,
        Err(message) => return Reply::error(400, &message).into(),
    };
    drop(body);

    let InferRequest { id, pixels, .. } = request;
    let pixels = match pixels {
        Pixels::Bytes(bytes) => batcher::Pixels::Bytes(bytes),
        Pixels::Values(values) => batcher::Pixels::Floats(values),
    };
    let name = model.name.to_owned();
    let version = model.version.map(str::to_owned);
    Outcome::Predict(Prediction {
        pixels,
        respond: Box::new(move |rows| response(&name, version.as_deref(), id.as_deref(), &rows)),
    })
}

fn response(
    name: &str,
    version: Option<&str>,
    id: Option<&str>,
    rows: &[[f32; model::CLASSES]],
) -> Reply {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    Reply::json(
        200,
        &InferResponse {
            model_name: name,
            model_version: version,
            id,
            outputs: [OutputTensor {
                name: OUTPUT_NAME,
                datatype: "FP32",
                shape: [rows.len(), model::CLASSES],
                data,
            }],
        },
    )
}

/// Returns the size of the JSON part of the body from the binary tensor
/// data extension's header, or `None` when the whole body is JSON.
fn json_size(exchange: &Exchange) -> Result<Option<usize>, String> {
    let header = exchange
        .request()
        .headers()
        .iter()
        .find(|header| header.field.equiv(BINARY_HEADER));
    header
        .map(|header| parse_json_size(header.value.as_str()))
        .transpose()
}

/// Parses the value of the `Inference-Header-Content-Length` header: the
/// size in bytes of the JSON at the start of the body.
///
/// # Errors
/// A message for a 400 reply that quotes the value.
pub fn parse_json_size(value: &str) -> Result<usize, String> {
    value.trim().parse().map_err(|_| {
        format!(
            "invalid {BINARY_HEADER} header '{value}': expected the size in bytes of the JSON \
             at the start of the body"
        )
    })
}

/// Parses an inference request body: all JSON when `json_size` is `None`,
/// else `json_size` bytes of JSON followed by the binary tensor data.
///
/// # Errors
/// A message for a 400 reply, from [`parse_request`] or for a `json_size`
/// beyond the end of the body.
pub fn parse_body(body: &[u8], json_size: Option<usize>) -> Result<InferRequest, String> {
    split_body(body, json_size).and_then(|(json, binary)| parse_request(json, binary))
}

/// Splits the body into its JSON and its binary tensor data.
fn split_body(body: &[u8], json_size: Option<usize>) -> Result<(&[u8], &[u8]), String> {
    match json_size {
        None => Ok((body, &[])),
        Some(size) if size <= body.len() => Ok(body.split_at(size)),
        Some(size) => Err(format!(
            "the {BINARY_HEADER} header is {size}, but the body has only {} bytes: set it to \
             the size of the JSON at the start of the body",
            body.len()
        )),
    }
}

fn too_large(exchange: &Exchange) -> Reply {
    let size = match exchange.request().body_length() {
        Some(length) => format!("{length} bytes"),
        None => format!("more than {MAX_BODY_BYTES} bytes"),
    };
    Reply::error(
        413,
        &format!(
            "inference request body of {size} exceeds the limit of {MAX_BODY_BYTES} bytes: \
             send at most {MAX_BATCH} images per request, or fewer if the JSON is verbose"
        ),
    )
}
