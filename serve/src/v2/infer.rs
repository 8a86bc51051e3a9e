//! `POST /v2/models/{name}[/versions/{version}]/infer`: runs the network
//! on the request's tensor and returns the probabilities as a JSON tensor.

use serde::Serialize;

use crate::app::App;
use crate::http::{BodyError, Exchange, Reply};

use super::request::{parse_request, InferRequest, Pixels};
use super::route::ModelPath;
use super::{MAX_BATCH, MAX_BODY_BYTES, OUTPUT_NAME};

/// Header that the binary tensor data extension sets on a request.
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
pub fn infer(app: &App, exchange: &mut Exchange, model: ModelPath<'_>) -> Reply {
    let Some(loaded) = app.ready_model() else {
        return super::handlers::model_not_ready(app, model.name);
    };
    if has_header(exchange, BINARY_HEADER) {
        return Reply::error(
            400,
            &format!(
                "the request has an {BINARY_HEADER} header, but this server does not \
                 implement the binary tensor data extension: send the tensor as JSON \
                 (with tritonclient, set_data_from_numpy(array, binary_data=False))"
            ),
        );
    }
    let body = match exchange.read_body(MAX_BODY_BYTES) {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => return too_large(exchange),
        Err(error) => return error.into_reply(),
    };
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(message) => return Reply::error(400, &message),
    };
    drop(body);

    let network = &loaded.network;
    let rows = app.pool.install(|| match &request.pixels {
        Pixels::Bytes(bytes) => network.predict(bytes),
        Pixels::Values(values) => network.predict_pixels(values),
    });
    match rows {
        Ok(rows) => response(model, &request, &rows),
        Err(error) => {
            log::error!("inference on {} images failed: {error}", request.images);
            Reply::error(500, &format!("inference failed: {error}"))
        }
    }
}

fn response(model: ModelPath<'_>, request: &InferRequest, rows: &[[f32; model::CLASSES]]) -> Reply {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    Reply::json(
        200,
        &InferResponse {
            model_name: model.name,
            model_version: model.version,
            id: request.id.as_deref(),
            outputs: [OutputTensor {
                name: OUTPUT_NAME,
                datatype: "FP32",
                shape: [rows.len(), model::CLASSES],
                data,
            }],
        },
    )
}

fn has_header(exchange: &Exchange, field: &'static str) -> bool {
    exchange
        .request()
        .headers()
        .iter()
        .any(|header| header.field.equiv(field))
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
