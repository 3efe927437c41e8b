//! `/-/ping`, `GET /`, the registry keys, and the audit endpoint answered at once.

use std::sync::Arc;

use axum::response::Response;

use crate::error::ApiError;
use crate::router::{App, json};
use crate::source::Source;

/// `GET /-/ping`: `200 {}`.
pub(crate) fn ping() -> Response {
    json(&serde_json::json!({}))
}

/// `POST /-/npm/v1/security/advisories/bulk`: `200 {}` without reading the body — there is
/// no advisory database here, and npm waits on this call at the end of every install.
pub(crate) fn audit_bulk() -> Response {
    json(&serde_json::json!({}))
}

/// The most names counted for `doc_count`.
const COUNT_LIMIT: usize = 10_000_000;

/// `GET /`: `{db_name, doc_count, update_seq}` for followers of this mirror.
pub(crate) async fn root<S: Source>(app: &Arc<App<S>>) -> Result<Response, ApiError> {
    let names = app.source.names(COUNT_LIMIT).await?;
    Ok(json(&serde_json::json!({
        "db_name": "ims",
        "doc_count": names.len(),
        "update_seq": 0,
        "ims": { "packuments_in_memory": app.cache.len(), "bytes_in_memory": app.cache.held() },
    })))
}

/// `GET /-/npm/v1/keys`: upstream's signing keys, passed through.
pub(crate) async fn keys<S: Source>(app: &Arc<App<S>>) -> Result<Response, ApiError> {
    match app.source.keys().await? {
        Some(keys) => Ok(json(&keys)),
        None => Err(ApiError::NotFound),
    }
}
