//! Tarballs at their canonical paths (`/NAME/-/BASE-VERSION.tgz`, both scoped spellings):
//! from the store, else fetched once (peers, then upstream) and verified against the
//! integrity the index holds before a byte is sent; streamed with `Content-Length`, immutable.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::error::{ApiError, SourceError};
use crate::router::App;
use crate::source::Source;

pub(crate) async fn tarball<S: Source>(
    app: &Arc<App<S>>,
    name: &str,
    file: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let version = crate::name::tarball_version(name, file).ok_or(ApiError::NotFound)?;
    let mut entry = super::packument::entry(app, name).await?;
    if !entry.packument.versions.contains_key(version) {
        // Published since the copy in memory was made? Ask the source once more.
        entry = super::packument::refetch(app, name, entry).await?;
    }
    let manifest = entry.packument.versions.get(version).ok_or(ApiError::NotFound)?;
    let integrity = manifest.dist.best_integrity().ok_or_else(|| {
        SourceError::Invalid(format!("{name}@{version} has neither an integrity nor a shasum to verify it by"))
    })?;
    let etag = format!("\"{}\"", integrity.replace('"', ""));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|t| {
        t.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
    }) {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        set(res.headers_mut(), header::ETAG, &etag);
        return Ok(res);
    }
    let path = app.tarballs.run(&integrity, || app.source.tarball(name, version, manifest)).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| SourceError::Unreachable(format!("opening {}: {e}", path.display())))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| SourceError::Unreachable(format!("reading {}: {e}", path.display())))?
        .len();
    let mut res = Response::new(Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 << 10)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    set(h, header::ETAG, &etag);
    Ok(res)
}

fn set(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}
