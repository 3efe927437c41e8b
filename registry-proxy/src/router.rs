//! [`router`]: the npm registry API as an axum [`Router`] over a [`Source`].
//!
//! Paths are routed by hand ([`crate::name::route`]) rather than by axum's path patterns:
//! a scoped name is one segment (`@s%2fa`) or two (`@s/a`), and `/@s/a` against `/a/1.0.0`
//! or `/@s/a/1.0.0` against `/a/-/a-1.0.0.tgz` are told apart only by their contents (the
//! routing trap of spec §1.1). Every route answers `GET` and `HEAD`; writes get a `405` with
//! a JSON error.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use indexer::upstream::RegistryUrl;

use crate::caching::Cache;
use crate::error::ApiError;
use crate::fill::Flights;
use crate::name::{PathError, Route};
use crate::routes;
use crate::error::SourceError;
use crate::source::Source;

/// How the API answers.
#[derive(Debug, Clone)]
pub struct Config {
    /// The base URL clients reach the proxy at: tarball URLs point here (never built from a
    /// request's `Host` header).
    pub public_url: RegistryUrl,
    /// How long a packument is answered from memory before the source is asked again (the
    /// answer is still sent at once from memory while that refresh runs).
    pub fresh_for: Duration,
    /// The most bytes of rendered packuments kept in memory.
    pub cache_bytes: usize,
    /// The longest a request waits for its answer (a fetch upstream, a peer) before a 503.
    pub answer_timeout: Duration,
    /// `Cache-Control: max-age` sent with packuments (the public registry sends 300).
    pub max_age: Duration,
}

impl Config {
    /// Defaults for a proxy reached at `public_url`.
    pub fn new(public_url: RegistryUrl) -> Config {
        Config {
            public_url,
            fresh_for: Duration::from_secs(30),
            cache_bytes: 256 << 20,
            answer_timeout: Duration::from_secs(120),
            max_age: Duration::from_secs(300),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct App<S> {
    pub(crate) source: S,
    pub(crate) config: Config,
    pub(crate) cache: Cache,
    pub(crate) packuments: Flights<Result<Option<Arc<crate::caching::Entry>>, SourceError>>,
    pub(crate) tarballs: Flights<Result<std::path::PathBuf, SourceError>>,
}

/// The registry API over `source`.
pub fn router<S: Source>(source: S, config: Config) -> Router {
    let app = Arc::new(App {
        source,
        cache: Cache::new(config.cache_bytes),
        config,
        packuments: Flights::default(),
        tarballs: Flights::default(),
    });
    Router::new().fallback(handle::<S>).with_state(app)
}

async fn handle<S: Source>(State(app): State<Arc<App<S>>>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().chars().take(200).collect::<String>());
    let res = answer(app, req).await;
    // One access line per request (`-v`); never a header (clients send credentials).
    tracing::info!(target: "ims::access", %method, path, status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64);
    res
}

async fn answer<S: Source>(app: Arc<App<S>>, req: Request) -> Response {
    let route = match crate::name::route(req.uri().path()) {
        Ok(route) => route,
        Err(PathError::Encoding) => return ApiError::BadRequest("bad percent-encoding in the path").into_response(),
        Err(PathError::Name(_)) => return ApiError::NotFound.into_response(),
    };
    let (parts, _body) = req.into_parts();
    let method = parts.method.clone();
    let reading = method == Method::GET || method == Method::HEAD;
    let answer = async {
        match route {
            Route::AuditBulk if method == Method::POST => Ok(routes::misc::audit_bulk()),
            Route::AuditLegacy => Err(ApiError::Gone),
            Route::Login => Err(ApiError::NoLogin),
            _ if !reading => Err(ApiError::ReadOnly(
                "ims serve is a read-only mirror: publishing, unpublishing and dist-tag changes go to the upstream registry",
            )),
            Route::Root => routes::misc::root(&app).await,
            Route::Ping => Ok(routes::misc::ping()),
            Route::Search => routes::search::search(&app, parts.uri.query().unwrap_or("")).await,
            Route::Keys => routes::misc::keys(&app).await,
            Route::DistTags(name) => routes::packument::dist_tags(&app, &name).await,
            Route::Packument(name) => routes::packument::packument(&app, &name, &parts.headers).await,
            Route::Version(name, version) => routes::packument::version(&app, &name, &version).await,
            Route::Tarball(name, file) => routes::tarball::tarball(&app, &name, &file, &parts.headers).await,
            Route::AuditBulk | Route::Unknown => Err(ApiError::NotFound),
        }
    };
    let result = match tokio::time::timeout(app.config.answer_timeout, answer).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::Timeout),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A JSON body with its content type.
pub(crate) fn json(value: &serde_json::Value) -> Response {
    let mut res = Response::new(Body::from(value.to_string()));
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    res
}
