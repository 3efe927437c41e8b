//! What a request can fail with, as clients expect it (spec §1.7): `404 {"error":"Not found"}`
//! for what does not exist, `503` with a JSON error when the answer cannot be reached (never a
//! 404 for "upstream down"), `405` for writes to a read-only mirror. The detail of an internal
//! failure is logged, never sent: a client sees a fixed sentence per kind.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a [`Source`](crate::Source) could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Neither the index, the peers nor upstream could be reached (or `--offline` and no
    /// local copy): the client should retry later.
    #[error("not reachable: {0}")]
    Unreachable(String),
    /// Upstream or a peer answered with something unusable (bytes that fail their integrity,
    /// a document that is not a packument, ...).
    #[error("bad answer: {0}")]
    Invalid(String),
}

/// A failed request, turned into the response clients expect.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("read-only: {0}")]
    ReadOnly(&'static str),
    #[error("login is not served")]
    NoLogin,
    #[error("retired endpoint")]
    Gone,
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("timed out")]
    Timeout,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            ApiError::BadRequest(why) => (StatusCode::BAD_REQUEST, *why),
            ApiError::ReadOnly(why) => (StatusCode::METHOD_NOT_ALLOWED, *why),
            ApiError::NoLogin => {
                (StatusCode::UNAUTHORIZED, "ims serve is a read-only mirror: there is no login or publishing")
            }
            ApiError::Gone => (StatusCode::GONE, "this endpoint is retired; npm audit uses the bulk advisories endpoint"),
            ApiError::Source(SourceError::Unreachable(detail)) => {
                tracing::warn!(%detail, "answered 503");
                (StatusCode::SERVICE_UNAVAILABLE, "the package index, the peers and the upstream registry could not be reached for this request")
            }
            ApiError::Source(SourceError::Invalid(detail)) => {
                tracing::warn!(%detail, "answered 502");
                (StatusCode::BAD_GATEWAY, "upstream answered with data that failed verification")
            }
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "the answer took too long to reach"),
        };
        let body = serde_json::json!({ "error": message }).to_string();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            ApiError::ReadOnly(_) => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            ApiError::NoLogin => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ims\""));
            }
            ApiError::Source(SourceError::Unreachable(_)) | ApiError::Timeout => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}
