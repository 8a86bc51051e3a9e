//! Request dispatch: which path and method run which handler, and the JSON
//! each handler returns.

use serde::Serialize;
use tiny_http::Method;

use crate::app::App;
use crate::function::health_reply;
use crate::http::{Exchange, Reply};
use crate::predict::{self, PredictOptions};

/// Bytes of one raw image in CIFAR layout: 1024 red, 1024 green, 1024 blue.
pub const IMAGE_BYTES: usize = data::IMAGE_BYTES;

/// Largest body `POST /predict` reads: 8 MiB, enough for a large photo as
/// a JPEG. A larger declared or actual body gets 413.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

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
        _ => Reply::error(
            404,
            &format!(
                "no route for {path}: use GET /, POST /predict, GET /_/health or GET /_/ready"
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

/// `POST /predict`: classifies the PNG, JPEG, raw or JSON images of the body.
fn predict(app: &App, exchange: &mut Exchange) -> Reply {
    let Some(loaded) = app.ready_model() else {
        return not_ready(app);
    };
    // The body is read before the query is checked, so that a rejected
    // request leaves no unread body behind.
    let body = match exchange.read_body(MAX_BODY_BYTES) {
        Ok(body) => body,
        Err(error) => return error.into_reply(),
    };
    let options = match PredictOptions::from_url(exchange.request().url()) {
        Ok(options) => options,
        Err(reply) => return reply,
    };
    let content_type = exchange
        .request()
        .headers()
        .iter()
        .find(|header| header.field.equiv("Content-Type"))
        .map(|header| header.value.as_str().to_owned());
    predict::predict(app, loaded, content_type.as_deref(), &body, options)
}
