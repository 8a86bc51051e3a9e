//! Prometheus metrics for `GET /metrics`: request counts and durations,
//! inference batch sizes and times, the model's state, and the Linux
//! process collector of the `prometheus` crate, all in a registry of this
//! server's own and rendered by the crate's text encoder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use tiny_http::Method;

use crate::cli::Mode;
use crate::http::Reply;

/// `Content-Type` of the Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the request and inference duration buckets.
///
/// Health probes and scrapes take well under 1 ms. A single-image
/// prediction took a mean of 1.8 ms over 200 test images on a 2-core
/// x86-64 machine with other builds running. `GET /`, an evaluation of the
/// whole test split, takes several seconds. So the 1-2.5-5 steps run from
/// 0.5 ms to 30 s, which leaves room for a slow evaluation on a busy machine.
pub const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of the batch size buckets: powers of two up to 256 images.
pub const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Label value of a route that no handler serves.
pub const OTHER_ROUTE: &str = "other";

/// Routes whose path is their label, one label per handler path.
const FIXED_ROUTES: [&str; 8] = [
    "/",
    "/predict",
    "/_/health",
    "/_/ready",
    "/metrics",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
];

/// Every series the server exports, in a registry of its own.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    in_flight: IntGauge,
    batch_size: Histogram,
    inference_duration: Histogram,
    model_ready: IntGauge,
    model_load_duration: Gauge,
    open_connections: IntGauge,
    rejections: IntCounterVec,
}

impl Metrics {
    /// Creates every series for a server in `mode` and registers them, with
    /// the process collector, in a new registry.
    pub fn new(mode: Mode) -> Self {
        // Every name, label and bucket list is a constant of this module, and
        // the unit tests build both modes, so an error here is a bug.
        Self::try_new(mode)
            .unwrap_or_else(|error| unreachable!("invalid metric definition: {error}"))
    }

    fn try_new(mode: Mode) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route, method and status code.",
            ),
            &["route", "method", "code"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving an HTTP request to sending its response.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let in_flight = IntGauge::new(
            "http_requests_in_flight",
            "HTTP requests received and not yet answered, the scrape that reads it included.",
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "cifaas_prediction_batch_size",
                "Images per forward pass of the network.",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )?;
        let inference_duration = Histogram::with_opts(
            HistogramOpts::new(
                "cifaas_inference_seconds",
                "Time of one forward pass of the network.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let model_ready = IntGauge::new(
            "cifaas_model_ready",
            "1 while the model is loaded and the server is ready, else 0.",
        )?;
        let model_load_duration = Gauge::new(
            "cifaas_model_load_seconds",
            "Time start-up took to make the model ready: opening the dataset, loading or \
             training, and the warm-up inference.",
        )?;
        let build_info = IntGauge::with_opts(
            Opts::new(
                "cifaas_build_info",
                "Always 1, labelled with the serve version and mode.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION"))
            .const_label("mode", mode.name()),
        )?;
        build_info.set(1);
        let open_connections =
            IntGauge::new("cifaas_open_connections", "Client connections open now.")?;
        let rejections = IntCounterVec::new(
            Opts::new(
                "cifaas_http_rejections_total",
                "Requests and connections the front end rejected or cut before they reached a \
                 handler, by reason.",
            ),
            &["reason"],
        )?;

        register(&registry, requests.clone())?;
        register(&registry, request_duration.clone())?;
        register(&registry, in_flight.clone())?;
        register(&registry, batch_size.clone())?;
        register(&registry, inference_duration.clone())?;
        register(&registry, model_ready.clone())?;
        register(&registry, model_load_duration.clone())?;
        register(&registry, build_info)?;
        register(&registry, open_connections.clone())?;
        register(&registry, rejections.clone())?;
        // NOTE: this collector (prometheus 0.14) rounds the CPU time down to
        // whole seconds, so `process_cpu_seconds_total` moves in steps of 1.
        register(&registry, ProcessCollector::for_self())?;

        Ok(Self {
            registry,
            requests,
            request_duration,
            in_flight,
            batch_size,
            inference_duration,
            model_ready,
            model_load_duration,
            open_connections,
            rejections,
        })
    }

    /// Sets the count of open client connections.
    pub fn set_open_connections(&self, open: usize) {
        self.open_connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Counts one rejection of the front end; `reason` is a constant label.
    pub fn count_rejection(&self, reason: &'static str) {
        self.rejections.with_label_values(&[reason]).inc();
    }

    /// Counts a request received now as in flight until the returned value
    /// is finished or dropped. `target` is the request's path, with or
    /// without a query.
    pub fn start_request(self: &Arc<Self>, method: &Method, target: &str) -> InFlightRequest {
        self.in_flight.inc();
        InFlightRequest {
            metrics: Arc::clone(self),
            route: route_label(target),
            method: method_label(method),
            received: Instant::now(),
        }
    }

    /// Records one request whose response was sent. `route` and `method`
    /// are label values from [`route_label`] and [`method_label`].
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let code = status.to_string();
        self.requests
            .with_label_values(&[route, method, code.as_str()])
            .inc();
        self.request_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Records the number of images in one forward pass.
    pub fn observe_batch(&self, images: usize) {
        self.batch_size.observe(images as f64);
    }

    /// Records the time of one forward pass.
    pub fn observe_inference(&self, elapsed: Duration) {
        self.inference_duration.observe(elapsed.as_secs_f64());
    }

    /// Sets `cifaas_model_ready` to 1 when `ready`, else 0.
    pub fn set_model_ready(&self, ready: bool) {
        self.model_ready.set(i64::from(ready));
    }

    /// Sets `cifaas_model_load_seconds`.
    pub fn set_model_load_time(&self, elapsed: Duration) {
        self.model_load_duration.set(elapsed.as_secs_f64());
    }

    /// Renders every series in the text exposition format.
    ///
    /// # Errors
    /// When the encoder rejects a metric family.
    pub fn render(&self) -> prometheus::Result<String> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }

    /// Builds the reply to `GET /metrics`, which needs no model.
    pub fn reply(&self) -> Reply {
        match self.render() {
            Ok(text) => Reply::with_body(200, text, CONTENT_TYPE),
            Err(error) => {
                log::error!("failed to render the metrics: {error}");
                Reply::error(500, &format!("failed to render the metrics: {error}"))
            }
        }
    }
}

fn register(registry: &Registry, collector: impl Collector + 'static) -> prometheus::Result<()> {
    registry.register(Box::new(collector))
}

/// A request counted in `http_requests_in_flight`; dropping it without
/// [`finish`](Self::finish) only ends the count.
pub struct InFlightRequest {
    metrics: Arc<Metrics>,
    route: &'static str,
    method: &'static str,
    received: Instant,
}

impl InFlightRequest {
    /// Records the request with the status of its response, once that
    /// response is sent.
    pub fn finish(self, status: u16) {
        self.metrics
            .observe_request(self.route, self.method, status, self.received.elapsed());
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// Maps a request path to its `route` label: the path of a known route,
/// the V2 model path shape with `{name}` in place of the model name, or
/// `other`, so that clients cannot create new label values. A query
/// string is ignored.
pub fn route_label(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    if let Some(route) = FIXED_ROUTES.iter().find(|route| **route == path) {
        return route;
    }
    model_route_label(path)
}

/// Maps `/v2/models/{name}`, `/v2/models/{name}/ready` and
/// `/v2/models/{name}/infer` to their labels, with a non-empty name
/// without `/`, and any other path to `other`.
fn model_route_label(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix("/v2/models/") else {
        return OTHER_ROUTE;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [name] if !name.is_empty() => "/v2/models/{name}",
        [name, "ready"] if !name.is_empty() => "/v2/models/{name}/ready",
        [name, "infer"] if !name.is_empty() => "/v2/models/{name}/infer",
        _ => OTHER_ROUTE,
    }
}

/// Maps a method to its `method` label: the standard method's name, or
/// `other` for a non-standard one, which a client could vary without end.
pub fn method_label(method: &Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::NonStandard(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the value of the sample whose line starts with `series`,
    /// the name and the labels exactly as the encoder writes them.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok())?
            })
    }

    #[test]
    fn route_label_of_fixed_routes() {
        for route in FIXED_ROUTES {
            assert_eq!(route_label(route), route);
        }
        assert_eq!(route_label("/predict?verbose=1"), "/predict");
        assert_eq!(route_label("/?"), "/");
    }

    #[test]
    fn route_label_of_model_routes() {
        let cases = [
            ("/v2/models/cifar10", "/v2/models/{name}"),
            ("/v2/models/x", "/v2/models/{name}"),
            ("/v2/models/cifar10/ready", "/v2/models/{name}/ready"),
            ("/v2/models/cifar10/infer", "/v2/models/{name}/infer"),
            (
                "/v2/models/other-model/infer?x=1",
                "/v2/models/{name}/infer",
            ),
        ];
        for (path, label) in cases {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn route_label_of_unknown_paths() {
        let cases = [
            "",
            "/predict/",
            "/PREDICT",
            "/metrics/x",
            "/v2/",
            "/v2/models",
            "/v2/models/",
            "/v2/models//ready",
            "/v2/models/a/b",
            "/v2/models/a/ready/x",
            "/v2/models/a/versions/1/infer",
            "/v2/health",
            "//predict",
            "/favicon.ico",
            "*",
        ];
        for path in cases {
            assert_eq!(route_label(path), OTHER_ROUTE, "{path:?}");
        }
    }

    #[test]
    fn method_label_bounds_nonstandard() {
        assert_eq!(method_label(&Method::Get), "GET");
        assert_eq!(method_label(&Method::Patch), "PATCH");
        let brew: Method = "BREW".parse().unwrap();
        assert_eq!(method_label(&brew), "other");
    }

    #[test]
    fn content_type_extends_crate_format() {
        assert!(CONTENT_TYPE.starts_with(prometheus::TEXT_FORMAT));
    }

    #[test]
    fn render_lists_every_series() {
        let metrics = Metrics::new(Mode::Function);
        let text = metrics.render().unwrap();
        for name in [
            "http_requests_in_flight",
            "cifaas_prediction_batch_size",
            "cifaas_inference_seconds",
            "cifaas_model_ready",
            "cifaas_model_load_seconds",
            "cifaas_build_info",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "no {name}:\n{text}"
            );
        }
        let version = env!("CARGO_PKG_VERSION");
        let build_info = format!("cifaas_build_info{{mode=\"function\",version=\"{version}\"}}");
        assert_eq!(sample(&text, &build_info), Some(1.0), "{text}");
        assert_eq!(sample(&text, "cifaas_model_ready"), Some(0.0));
        assert_eq!(sample(&text, "http_requests_in_flight"), Some(0.0));
    }

    #[test]
    fn render_counts_requests() {
        let metrics = Metrics::new(Mode::Server);
        metrics.observe_request("other", "GET", 404, Duration::from_millis(2));
        metrics.observe_request("other", "GET", 404, Duration::from_millis(40));
        metrics.observe_request("/predict", "POST", 200, Duration::from_millis(3));
        let text = metrics.render().unwrap();

        let not_found = r#"http_requests_total{code="404",method="GET",route="other"}"#;
        assert_eq!(sample(&text, not_found), Some(2.0), "{text}");
        let predicted = r#"http_requests_total{code="200",method="POST",route="/predict"}"#;
        assert_eq!(sample(&text, predicted), Some(1.0), "{text}");
        let count = r#"http_request_duration_seconds_count{method="GET",route="other"}"#;
        assert_eq!(sample(&text, count), Some(2.0), "{text}");
        let fast =
            r#"http_request_duration_seconds_bucket{method="GET",route="other",le="0.0025"}"#;
        assert_eq!(sample(&text, fast), Some(1.0), "{text}");
        let slow = r#"http_request_duration_seconds_bucket{method="GET",route="other",le="0.05"}"#;
        assert_eq!(sample(&text, slow), Some(2.0), "{text}");
        let sum = r#"http_request_duration_seconds_sum{method="GET",route="other"}"#;
        let sum = sample(&text, sum).unwrap();
        assert!((sum - 0.042).abs() < 1e-9, "sum {sum}");
    }

    #[test]
    fn in_flight_request_counts_until_dropped() {
        let metrics = Arc::new(Metrics::new(Mode::Server));
        let first = metrics.start_request(&Method::Get, "/_/health");
        let second = metrics.start_request(&Method::Post, "/nowhere");
        assert_eq!(metrics.in_flight.get(), 2);
        first.finish(200);
        assert_eq!(metrics.in_flight.get(), 1);
        drop(second);
        assert_eq!(metrics.in_flight.get(), 0);

        let text = metrics.render().unwrap();
        let health = r#"http_requests_total{code="200",method="GET",route="/_/health"}"#;
        assert_eq!(sample(&text, health), Some(1.0), "{text}");
        assert!(
            !text.contains(r#"route="other""#),
            "a dropped request was counted:\n{text}"
        );
    }

    #[test]
    fn render_counts_batches_and_model_state() {
        let metrics = Metrics::new(Mode::Server);
        metrics.observe_batch(1);
        metrics.observe_batch(3);
        metrics.observe_batch(300);
        metrics.observe_inference(Duration::from_millis(4));
        metrics.set_model_ready(true);
        metrics.set_model_load_time(Duration::from_millis(1500));
        let text = metrics.render().unwrap();

        let batch = |suffix: &str| sample(&text, &format!("cifaas_prediction_batch_size{suffix}"));
        assert_eq!(batch("_count"), Some(3.0), "{text}");
        assert_eq!(batch("_sum"), Some(304.0));
        assert_eq!(batch(r#"_bucket{le="1"}"#), Some(1.0));
        assert_eq!(batch(r#"_bucket{le="2"}"#), Some(1.0));
        assert_eq!(batch(r#"_bucket{le="4"}"#), Some(2.0));
        assert_eq!(batch(r#"_bucket{le="256"}"#), Some(2.0));
        assert_eq!(batch(r#"_bucket{le="+Inf"}"#), Some(3.0));
        let inference = sample(&text, "cifaas_inference_seconds_count");
        assert_eq!(inference, Some(1.0));
        assert_eq!(sample(&text, "cifaas_model_ready"), Some(1.0));
        assert_eq!(sample(&text, "cifaas_model_load_seconds"), Some(1.5));

        metrics.set_model_ready(false);
        let text = metrics.render().unwrap();
        assert_eq!(sample(&text, "cifaas_model_ready"), Some(0.0));
    }
}
