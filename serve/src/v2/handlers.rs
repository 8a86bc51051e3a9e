//! Dispatch of `/v2` requests and the health and metadata handlers.

use serde_json::json;
use tiny_http::Method;

use crate::app::App;
use crate::http::{Exchange, Reply};
use crate::routes::Outcome;

use super::infer::infer;
use super::metadata;
use super::route::{Endpoint, ModelPath, Route};
use super::MODEL_VERSION;

/// Handles one request whose path (without the query string) is under `/v2`.
pub fn handle(app: &App, exchange: &mut Exchange, method: &Method, path: &str) -> Outcome {
    let Some(route) = Route::parse(path) else {
        return no_route(path).into();
    };
    if let Some(model) = route.model {
        if let Err(reply) = check_model(app, model) {
            return reply.into();
        }
    }
    if !route.endpoint.accepts(method) {
        return Reply::method_not_allowed(method.as_str(), path, route.endpoint.allowed_methods())
            .into();
    }
    if route.endpoint == Endpoint::Infer {
        return infer(app, exchange, model_path(app, route.model));
    }
    reply(app, route.endpoint, model_path(app, route.model))
}

fn model_path<'a>(app: &'a App, model: Option<ModelPath<'a>>) -> ModelPath<'a> {
    model.unwrap_or(ModelPath {
        name: served_name(app),
        version: None,
    })
}

/// Builds the reply of every endpoint but inference.
fn reply(app: &App, endpoint: Endpoint, model: ModelPath<'_>) -> Outcome {
    let reply = match endpoint {
        Endpoint::ServerMetadata => Reply::json(200, &metadata::server()),
        Endpoint::ServerLive => Reply::json(200, &json!({ "live": true })),
        Endpoint::ServerReady => {
            let ready = app.is_ready();
            Reply::json(ready_status(ready), &json!({ "ready": ready }))
        }
        Endpoint::ModelMetadata => Reply::json(200, &metadata::model(model.name)),
        Endpoint::ModelReady => {
            let ready = app.is_ready();
            let body = json!({ "name": model.name, "ready": ready });
            Reply::json(ready_status(ready), &body)
        }
        Endpoint::Infer => unreachable!("inference is dispatched before the other endpoints"),
    };
    reply.into()
}

/// Builds the 503 reply to a model request that arrives before the model
/// is ready or after shutdown has begun.
pub fn model_not_ready(app: &App, name: &str) -> Reply {
    Reply::error(
        503,
        &format!(
            "model '{name}' is not ready: the server is {}",
            app.phase().name()
        ),
    )
}

fn served_name(app: &App) -> &str {
    &app.settings.model_name
}

fn ready_status(ready: bool) -> u16 {
    if ready {
        200
    } else {
        503
    }
}

/// Returns a 404 reply unless `model` names the served model and version.
fn check_model(app: &App, model: ModelPath<'_>) -> Result<(), Reply> {
    let served = served_name(app);
    if model.name != served {
        return Err(Reply::error(
            404,
            &format!(
                "model '{}' not found: this server serves '{served}'",
                model.name
            ),
        ));
    }
    match model.version {
        Some(version) if version != MODEL_VERSION => Err(Reply::error(
            404,
            &format!(
                "model '{served}' has no version '{version}': this server serves version \
                 '{MODEL_VERSION}'"
            ),
        )),
        _ => Ok(()),
    }
}

fn no_route(path: &str) -> Reply {
    Reply::error(
        404,
        &format!(
            "no route for {path}: the V2 routes are GET /v2, GET /v2/health/live, \
             GET /v2/health/ready, GET /v2/models/{{name}}[/versions/1][/ready] and \
             POST /v2/models/{{name}}[/versions/1]/infer"
        ),
    )
}

#[cfg(test)]
mod tests;
