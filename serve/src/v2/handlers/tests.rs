use std::time::Duration;

use serde_json::Value;
use tiny_http::TestRequest;

use super::*;
use crate::app::{LoadedModel, Settings};
use crate::cli::Mode;

fn app() -> App {
    let settings = Settings {
        mode: Mode::Server,
        threads: 1,
        bind: "127.0.0.1:0".parse().unwrap(),
        model: None,
        builtin_model: false,
        data: None,
        unpack_dir: None,
        epochs: 1,
        seed: 0,
        save: None,
        lock_file: "unused.lock".into(),
        drain_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        max_connections: 16,
        exec_timeout: None,
        healthcheck_interval: Duration::ZERO,
        max_inflight: None,
        max_queue: 1,
        suppress_lock: false,
        log_callid: false,
        batch: crate::batcher::BatchLimits {
            max_batch: 1,
            max_wait: Duration::ZERO,
        },
        model_name: "net".into(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    App::new(settings, pool)
}

fn loaded_model() -> LoadedModel {
    let stats = data::ChannelStats {
        mean: [0.5; 3],
        std: [0.25; 3],
    };
    LoadedModel {
        network: model::Network::new(1, 0.25, stats).unwrap(),
        dataset: None,
        class_names: Vec::new(),
    }
}

fn request(app: &App, method: Method, path: &str, body: &str) -> Reply {
    let test = TestRequest::new()
        .with_method(method.clone())
        .with_path(path)
        // `with_body` takes a `&'static str`; each test leaks a few bodies.
        .with_body(body.to_owned().leak());
    let mut exchange = Exchange::new(test.into());
    match handle(app, &mut exchange, &method, path) {
        Outcome::Reply(reply) => reply,
        // The batcher's runners are not started here, so run the network directly.
        Outcome::Predict(prediction) => {
            let network = &app.ready_model().expect("a loaded model").network;
            let rows = match &prediction.pixels {
                crate::batcher::Pixels::Bytes(bytes) => network.predict(bytes),
                crate::batcher::Pixels::Floats(values) => network.predict_pixels(values),
            };
            (prediction.respond)(rows.expect("the forward pass"))
        }
    }
}

fn get(app: &App, path: &str) -> Reply {
    request(app, Method::Get, path, "")
}

fn json(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap()
}

fn infer_body() -> String {
    serde_json::json!({
        "id": "a1",
        "inputs": [{"name": "x", "datatype": "UINT8", "shape": [1, 3, 32, 32], "data": vec![9; 3072]}],
    })
    .to_string()
}

#[test]
fn ready_follows_phase() {
    let app = app();
    let ready_paths = [
        "/v2/health/ready",
        "/v2/models/net/ready",
        "/v2/models/net/versions/1/ready",
    ];
    for path in ready_paths {
        let reply = get(&app, path);
        assert_eq!(reply.status, 503, "{path} while starting");
        assert_eq!(json(&reply)["ready"], false, "{path}");
    }
    let live = get(&app, "/v2/health/live");
    assert_eq!(live.status, 200);
    assert_eq!(json(&live), serde_json::json!({"live": true}));

    assert!(app.make_ready(loaded_model()).unwrap());
    for path in ready_paths {
        let reply = get(&app, path);
        assert_eq!(reply.status, 200, "{path} once ready");
        assert_eq!(json(&reply)["ready"], true, "{path}");
    }
    assert_eq!(json(&get(&app, "/v2/models/net/ready"))["name"], "net");

    app.begin_draining();
    for path in ready_paths {
        assert_eq!(get(&app, path).status, 503, "{path} while draining");
    }
    assert_eq!(get(&app, "/v2/health/live").status, 200);
}

#[test]
fn infer_not_ready_is_503() {
    let app = app();
    let reply = request(&app, Method::Post, "/v2/models/net/infer", &infer_body());
    assert_eq!(reply.status, 503);
    let message = json(&reply)["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("model 'net' is not ready: the server is starting"),
        "{message}"
    );
}

#[test]
fn infer_once_ready() {
    let app = app();
    app.make_ready(loaded_model()).unwrap();
    let reply = request(
        &app,
        Method::Post,
        "/v2/models/net/versions/1/infer",
        &infer_body(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = json(&reply);
    assert_eq!(body["model_name"], "net");
    assert_eq!(body["model_version"], "1");
    assert_eq!(body["id"], "a1");
    let output = &body["outputs"][0];
    assert_eq!(output["name"], "probabilities");
    assert_eq!(output["datatype"], "FP32");
    assert_eq!(output["shape"], serde_json::json!([1, 10]));
    assert_eq!(output["data"].as_array().unwrap().len(), 10);

    let reply = request(&app, Method::Post, "/v2/models/net/infer", &infer_body());
    let body = json(&reply);
    assert!(body.get("model_version").is_none(), "{body}");
}

#[test]
fn unknown_model_and_version_are_404() {
    let app = app();
    let reply = get(&app, "/v2/models/cifar10");
    assert_eq!(reply.status, 404);
    assert_eq!(
        json(&reply)["error"],
        "model 'cifar10' not found: this server serves 'net'"
    );
    let reply = request(&app, Method::Post, "/v2/models/other/infer", "{}");
    assert_eq!(reply.status, 404);
    let reply = get(&app, "/v2/models/net/versions/2/ready");
    assert_eq!(reply.status, 404);
    assert_eq!(
        json(&reply)["error"],
        "model 'net' has no version '2': this server serves version '1'"
    );
}

#[test]
fn wrong_method_is_405() {
    let app = app();
    let reply = request(&app, Method::Get, "/v2/models/net/infer", "");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.allow, Some("POST"));
    let reply = request(&app, Method::Post, "/v2/health/live", "");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.allow, Some("GET, HEAD"));
    let reply = request(&app, Method::Delete, "/v2/models/net", "");
    assert_eq!(reply.status, 405);
}

#[test]
fn unknown_route_is_404() {
    let app = app();
    let reply = get(&app, "/v2/models/net/config");
    assert_eq!(reply.status, 404);
    let message = json(&reply)["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("no route for /v2/models/net/config"),
        "{message}"
    );
    assert!(
        message.contains("POST /v2/models/{name}[/versions/1]/infer"),
        "{message}"
    );
}

#[test]
fn metadata_before_ready() {
    let app = app();
    let server = get(&app, "/v2");
    assert_eq!(server.status, 200);
    assert_eq!(json(&server)["name"], "cifaas");
    let model = get(&app, "/v2/models/net/versions/1");
    assert_eq!(model.status, 200);
    assert_eq!(json(&model)["name"], "net");
}
