//! Request dispatch: which path and method run which handler, and the JSON
//! each handler returns.

use serde::Serialize;
use tiny_http::Method;

use crate::app::{App, LoadedModel};
use crate::function::health_reply;
use crate::http::{Exchange, Reply};
use crate::v2;

/// Bytes of one raw image in CIFAR layout: 1024 red, 1024 green, 1024 blue.
pub const IMAGE_BYTES: usize = data::IMAGE_BYTES;

/// Largest body `POST /predict` reads; a larger declared or actual body gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Images per batch when `GET /` evaluates the test split.
const EVALUATION_BATCH: usize = 256;

/// Dispatches one request to its handler.
pub fn handle(app: &App, exchange: &mut Exchange) -> Reply {
    let method = exchange.request().method().clone();
    let url = exchange.request().url();
    let path = url.split('?').next().unwrap_or(url).to_owned();
    let is_get = matches!(method, Method::Get | Method::Head);

    match path.as_str() {
        "/_/health" | "/_/ready" if is_get => health_reply(app.phase()),
        "/" if is_get => evaluate(app),
        "/_/health" | "/_/ready" | "/" => {
            Reply::method_not_allowed(method.as_str(), &path, "GET, HEAD")
        }
        "/predict" if method == Method::Post => predict(app, exchange),
        "/predict" => Reply::method_not_allowed(method.as_str(), &path, "POST"),
        _ if v2::is_v2_path(&path) => v2::handle(app, exchange, &method, &path),
        _ => Reply::error(
            404,
            &format!(
                "no route for {path}: use GET /, POST /predict, GET /_/health, GET /_/ready \
                 or the KServe V2 routes under /v2"
            ),
        ),
    }
}

fn not_ready(app: &App) -> Reply {
    Reply::error(
        503,
        &format!(
            "the model is not ready: the server is {}",
            app.phase().name()
        ),
    )
}

#[derive(Serialize)]
struct EvaluationBody {
    accuracy: f64,
    correct: usize,
    total: usize,
    seconds: f64,
    mode: &'static str,
    threads: usize,
}

/// `GET /`: evaluates the model on the whole test split.
fn evaluate(app: &App) -> Reply {
    let Some(loaded) = app.ready_model() else {
        return not_ready(app);
    };
    let Some(dataset) = &loaded.dataset else {
        return Reply::error(503, "no test data loaded: start serve with --data PATH");
    };

    let result = app
        .pool
        .install(|| model::evaluate(&loaded.network, &dataset.test, EVALUATION_BATCH));
    match result {
        Ok(evaluation) => Reply::json(
            200,
            &EvaluationBody {
                accuracy: evaluation.accuracy(),
                correct: evaluation.correct,
                total: evaluation.total,
                seconds: evaluation.seconds,
                mode: app.settings.mode.name(),
                threads: app.settings.threads,
            },
        ),
        Err(error) => Reply::error(500, &format!("evaluation failed: {error}")),
    }
}

#[derive(Serialize)]
struct PredictionBody<'a> {
    class_index: usize,
    class_name: &'a str,
    probabilities: [f32; model::CLASSES],
}

/// `POST /predict`: classifies one raw CIFAR-layout image.
fn predict(app: &App, exchange: &mut Exchange) -> Reply {
    let Some(loaded) = app.ready_model() else {
        return not_ready(app);
    };
    let image = match exchange.read_body(MAX_BODY_BYTES) {
        Ok(image) => image,
        Err(error) => return error.into_reply(),
    };
    if image.len() != IMAGE_BYTES {
        return Reply::error(
            400,
            &format!(
                "invalid image size: received {} bytes, expected {IMAGE_BYTES} \
                 (one 32x32 RGB image in CIFAR layout, no label byte)",
                image.len()
            ),
        );
    }

    match app.pool.install(|| loaded.network.predict(&image)) {
        Ok(rows) => match rows.first() {
            Some(probabilities) => prediction_reply(loaded, probabilities),
            None => Reply::error(500, "the network returned no prediction"),
        },
        Err(error) => Reply::error(500, &format!("prediction failed: {error}")),
    }
}

fn prediction_reply(loaded: &LoadedModel, probabilities: &[f32; model::CLASSES]) -> Reply {
    let class_index = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(index, _)| index);
    let class_name = loaded
        .class_names
        .get(class_index)
        .map_or("unknown", String::as_str);
    Reply::json(
        200,
        &PredictionBody {
            class_index,
            class_name,
            probabilities: *probabilities,
        },
    )
}
