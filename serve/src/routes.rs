//! Request dispatch: which path and method run which handler, and the reply
//! each handler returns.

use serde::Serialize;
use tiny_http::Method;

use crate::app::App;
use crate::batcher::{Pixels, PredictError, Rows};
use crate::function::{health_reply, ready_reply};
use crate::http::{Exchange, Reply};
use crate::predict::{self, PredictOptions};
use crate::server::RequestContext;
use crate::v2;

/// Bytes of one raw image in CIFAR layout: 1024 red, 1024 green, 1024 blue.
pub const IMAGE_BYTES: usize = data::IMAGE_BYTES;

/// Largest body `POST /predict` reads: 8 MiB, enough for a large photo as
/// a JPEG. A larger declared or actual body gets 413.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Largest body of a request to any path but `/predict` and `/v2/...`,
/// none of which reads a body.
pub const OTHER_BODY_BYTES: usize = 64 * 1024;

/// The largest body of requests to one path, and what to do above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    /// Most bytes.
    pub bytes: usize,
    /// Advice for a client whose body is larger.
    pub advice: &'static str,
}

/// The largest body the front end reads for a request to `path`: 8 MiB
/// for `/predict`, 32 MiB under `/v2/`, 64 KiB elsewhere.
pub fn body_limit(path: &str) -> BodyLimit {
    if path == "/predict" {
        BodyLimit {
            bytes: MAX_BODY_BYTES,
            advice: "send a smaller image, or fewer images per request",
        }
    } else if path == "/v2" || path.starts_with("/v2/") {
        BodyLimit {
            bytes: v2::MAX_BODY_BYTES,
            advice: V2_BODY_ADVICE,
        }
    } else {
        BodyLimit {
            bytes: OTHER_BODY_BYTES,
            advice: "this path reads no body: send the request without one",
        }
    }
}

/// Advice of a V2 request above the body limit; the count is `v2::MAX_BATCH`.
const V2_BODY_ADVICE: &str = "send at most 256 images per request, or fewer if the JSON is verbose";

/// Images per batch when `GET /` evaluates the test split.
const EVALUATION_BATCH: usize = 256;

/// True for the requests that run the model, which go through admission
/// control and a compute worker; every other request is answered at once.
pub fn needs_model(request: &tiny_http::Request) -> bool {
    let path = path_of(request.url());
    match *request.method() {
        Method::Get | Method::Head => path == "/",
        Method::Post => path == "/predict" || v2::is_infer_path(path),
        _ => false,
    }
}

fn path_of(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// What a handler produced: a reply, or images for the batcher and a
/// function that turns their rows into the reply.
pub enum Outcome {
    /// The reply, ready to send.
    Reply(Reply),
    /// Images to run through the network.
    Predict(Prediction),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome::Reply(reply)
    }
}

/// Images of one request and how to answer once their rows are known.
pub struct Prediction {
    /// The images, in CIFAR layout.
    pub pixels: Pixels,
    /// Builds the reply from one row per image.
    pub respond: Box<dyn FnOnce(Rows) -> Reply + Send>,
}

/// Dispatches one request to its handler.
pub fn handle(app: &App, exchange: &mut Exchange, context: &RequestContext) -> Outcome {
    let method = exchange.request().method().clone();
    let path = path_of(exchange.request().url()).to_owned();
    let is_get = matches!(method, Method::Get | Method::Head);

    match path.as_str() {
        "/_/health" if is_get => health_reply(app.phase()).into(),
        "/_/ready" if is_get => ready_reply(app.phase(), &app.admission).into(),
        "/metrics" if is_get => app.metrics.reply().into(),
        "/" if is_get => evaluate(app, context).into(),
        "/_/health" | "/_/ready" | "/metrics" | "/" => {
            Reply::method_not_allowed(method.as_str(), &path, "GET, HEAD").into()
        }
        "/predict" if method == Method::Post => predict(app, exchange),
        "/predict" => Reply::method_not_allowed(method.as_str(), &path, "POST").into(),
        _ if v2::is_v2_path(&path) => v2::handle(app, exchange, &method, &path),
        _ => Reply::error(
            404,
            &format!(
                "no route for {path}: use GET /, POST /predict, GET /_/health, GET /_/ready \
                 GET /metrics, or the KServe V2 routes under /v2"
            ),
        )
        .into(),
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

/// The 504 reply of a request that ran out of time.
pub fn timed_out(context: &RequestContext) -> Reply {
    let limit = context.timeout.map_or_else(String::new, |timeout| {
        format!(" of {:.3} s", timeout.as_secs_f64())
    });
    Reply::error(
        504,
        &format!(
            "the request took longer than its time limit{limit} (exec_timeout, or a shorter \
             X-Timeout header); send fewer images or raise exec_timeout"
        ),
    )
}

/// `GET /`: evaluates the model on the whole test split.
fn evaluate(app: &App, context: &RequestContext) -> Reply {
    let Some(loaded) = app.ready_model() else {
        return not_ready(app);
    };
    let Some(dataset) = &loaded.dataset else {
        return Reply::error(503, "no test data loaded: start serve with --data PATH");
    };

    let result = app.pool.install(|| {
        model::evaluate_while(&loaded.network, &dataset.test, EVALUATION_BATCH, || {
            !context.expired()
        })
    });
    match result {
        Ok(None) => timed_out(context),
        Ok(Some(evaluation)) => Reply::json(
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
fn predict(app: &App, exchange: &mut Exchange) -> Outcome {
    let Some(loaded) = app.ready_model() else {
        return not_ready(app).into();
    };
    // The body is read before the query is checked, so that a rejected
    // request leaves no unread body behind.
    let body = match exchange.read_body(MAX_BODY_BYTES) {
        Ok(body) => body,
        Err(error) => return error.into_reply().into(),
    };
    let options = match PredictOptions::from_url(exchange.request().url()) {
        Ok(options) => options,
        Err(reply) => return reply.into(),
    };
    let content_type = exchange
        .request()
        .headers()
        .iter()
        .find(|header| header.field.equiv("Content-Type"))
        .map(|header| header.value.as_str().to_owned());
    predict::predict(loaded, content_type.as_deref(), &body, options)
}

/// The reply of a prediction that produced no rows.
pub fn predict_error_reply(error: &PredictError, context: &RequestContext) -> Reply {
    match error {
        PredictError::TimedOut => timed_out(context),
        PredictError::Failed(message) => {
            log::error!("request {}: prediction failed: {message}", context.id);
            Reply::error(500, &format!("prediction failed: {message}"))
        }
        PredictError::Stopped => Reply::error(503, "the server is shutting down: retry later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_body_advice_names_the_batch_limit() {
        assert!(V2_BODY_ADVICE.contains(&format!("at most {} images", v2::MAX_BATCH)));
        assert_eq!(body_limit("/v2/models/m/infer").bytes, v2::MAX_BODY_BYTES);
        assert_eq!(body_limit("/predict").bytes, MAX_BODY_BYTES);
        assert_eq!(body_limit("/").bytes, OTHER_BODY_BYTES);
    }
}
