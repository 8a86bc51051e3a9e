//! Paths of the V2 API and the endpoint each one names.

use tiny_http::Method;

/// An endpoint of the V2 API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v2`.
    ServerMetadata,
    /// `GET /v2/health/live`.
    ServerLive,
    /// `GET /v2/health/ready`.
    ServerReady,
    /// `GET /v2/models/{name}[/versions/{version}]`.
    ModelMetadata,
    /// `GET /v2/models/{name}[/versions/{version}]/ready`.
    ModelReady,
    /// `POST /v2/models/{name}[/versions/{version}]/infer`.
    Infer,
}

impl Endpoint {
    /// Returns the value of the `Allow` header: the methods this endpoint accepts.
    pub fn allowed_methods(self) -> &'static str {
        match self {
            Endpoint::Infer => "POST",
            _ => "GET, HEAD",
        }
    }

    /// True when `method` is one of [`Endpoint::allowed_methods`].
    pub fn accepts(self, method: &Method) -> bool {
        match self {
            Endpoint::Infer => *method == Method::Post,
            _ => matches!(method, Method::Get | Method::Head),
        }
    }
}

/// A model named in a path, and the version segment if the path has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelPath<'a> {
    /// The `{name}` segment, not percent-decoded.
    pub name: &'a str,
    /// The `{version}` segment of `/versions/{version}`.
    pub version: Option<&'a str>,
}

/// A parsed V2 path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    /// The endpoint the path names.
    pub endpoint: Endpoint,
    /// The model, for the endpoints under `/v2/models/`.
    pub model: Option<ModelPath<'a>>,
}

impl<'a> Route<'a> {
    /// Parses a path without its query string, or returns `None` when it
    /// names no V2 endpoint.
    pub fn parse(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() {
            return Some(Self::server(Endpoint::ServerMetadata));
        }
        let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
        match segments.as_slice() {
            ["health", "live"] => Some(Self::server(Endpoint::ServerLive)),
            ["health", "ready"] => Some(Self::server(Endpoint::ServerReady)),
            ["models", name, tail @ ..] if !name.is_empty() => Self::model(name, tail),
            _ => None,
        }
    }

    fn server(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            model: None,
        }
    }

    fn model(name: &'a str, tail: &[&'a str]) -> Option<Self> {
        let (version, tail) = match tail {
            ["versions", version, tail @ ..] if !version.is_empty() => (Some(*version), tail),
            _ => (None, tail),
        };
        let endpoint = match tail {
            [] => Endpoint::ModelMetadata,
            ["ready"] => Endpoint::ModelReady,
            ["infer"] => Endpoint::Infer,
            _ => return None,
        };
        Some(Self {
            endpoint,
            model: Some(ModelPath { name, version }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_route(
        endpoint: Endpoint,
        name: &'static str,
        version: Option<&'static str>,
    ) -> Route<'static> {
        Route {
            endpoint,
            model: Some(ModelPath { name, version }),
        }
    }

    #[test]
    fn server_paths() {
        let cases = [
            ("/v2", Endpoint::ServerMetadata),
            ("/v2/health/live", Endpoint::ServerLive),
            ("/v2/health/ready", Endpoint::ServerReady),
        ];
        for (path, endpoint) in cases {
            let route = Route::parse(path);
            assert_eq!(route.map(|r| r.endpoint), Some(endpoint), "{path}");
            assert_eq!(route.and_then(|r| r.model), None, "{path}");
        }
    }

    #[test]
    fn model_paths_with_and_without_version() {
        let cases = [
            (
                "/v2/models/cifar10",
                model_route(Endpoint::ModelMetadata, "cifar10", None),
            ),
            (
                "/v2/models/cifar10/ready",
                model_route(Endpoint::ModelReady, "cifar10", None),
            ),
            (
                "/v2/models/cifar10/infer",
                model_route(Endpoint::Infer, "cifar10", None),
            ),
            (
                "/v2/models/m/versions/1",
                model_route(Endpoint::ModelMetadata, "m", Some("1")),
            ),
            (
                "/v2/models/m/versions/7/ready",
                model_route(Endpoint::ModelReady, "m", Some("7")),
            ),
            (
                "/v2/models/m/versions/1/infer",
                model_route(Endpoint::Infer, "m", Some("1")),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(Route::parse(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn unknown_paths() {
        for path in [
            "/v2/",
            "/v2x",
            "/v2/health",
            "/v2/health/live/",
            "/v2/models",
            "/v2/models/",
            "/v2/models//ready",
            "/v2/models/m/config",
            "/v2/models/m/versions",
            "/v2/models/m/versions//infer",
            "/v2/models/m/infer/x",
            "/v2/repository/index",
        ] {
            assert_eq!(Route::parse(path), None, "{path}");
        }
    }

    #[test]
    fn methods_per_endpoint() {
        assert!(Endpoint::Infer.accepts(&Method::Post));
        assert!(!Endpoint::Infer.accepts(&Method::Get));
        assert_eq!(Endpoint::Infer.allowed_methods(), "POST");
        assert!(Endpoint::ModelReady.accepts(&Method::Get));
        assert!(Endpoint::ServerLive.accepts(&Method::Head));
        assert!(!Endpoint::ServerMetadata.accepts(&Method::Post));
        assert_eq!(Endpoint::ModelMetadata.allowed_methods(), "GET, HEAD");
    }
}
