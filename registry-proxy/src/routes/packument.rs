//! `GET /NAME` in both forms, `/NAME/VERSION` and `/NAME/TAG`, `/-/package/NAME/dist-tags`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::caching::{Entry, parse_http_date};
use crate::error::ApiError;
use crate::negotiate;
use crate::router::{App, json};
use crate::source::Source;

/// The package as served, from memory when fresh; a stale entry is answered at once while one
/// refresh runs in the background; a missing one is fetched once however many ask.
pub(crate) async fn entry<S: Source>(app: &Arc<App<S>>, name: &str) -> Result<Arc<Entry>, ApiError> {
    if let Some(entry) = app.cache.get(name) {
        if !entry.is_fresh(app.config.fresh_for) && !entry.refreshing.swap(true, Ordering::AcqRel) {
            let (app, name, stale) = (app.clone(), name.to_owned(), entry.clone());
            tokio::spawn(async move {
                if let Err(error) = fetch(&app, &name, Some(stale.clone())).await {
                    tracing::debug!(package = name, %error, "refresh failed; serving the copy held");
                    stale.refreshing.store(false, Ordering::Release);
                }
            });
        }
        return Ok(entry);
    }
    match fetch(app, name, None).await? {
        Some(entry) => Ok(entry),
        None => Err(ApiError::NotFound),
    }
}

/// The package asked of the source again now (a version the copy in memory lacks).
pub(crate) async fn refetch<S: Source>(
    app: &Arc<App<S>>,
    name: &str,
    held: Arc<Entry>,
) -> Result<Arc<Entry>, ApiError> {
    if held.is_fresh(std::time::Duration::from_secs(1)) {
        return Ok(held);
    }
    fetch(app, name, Some(held)).await?.ok_or(ApiError::NotFound)
}

async fn fetch<S: Source>(
    app: &Arc<App<S>>,
    name: &str,
    previous: Option<Arc<Entry>>,
) -> Result<Option<Arc<Entry>>, ApiError> {
    let got = app
        .packuments
        .run(name, || async {
            match app.source.packument(name).await? {
                None => {
                    if previous.is_some() {
                        app.cache.remove(name);
                    }
                    Ok(None)
                }
                Some(p) => {
                    let entry = match &previous {
                        Some(prev) if prev.same_document(&p) => prev.renewed(),
                        _ => Entry::new(p, &app.config.public_url),
                    };
                    let entry = Arc::new(entry);
                    app.cache.insert(name, entry.clone());
                    Ok(Some(entry))
                }
            }
        })
        .await;
    Ok(got?)
}

/// `GET /NAME`: the form `Accept` asks for, gzipped when allowed, `304` on a matching
/// validator only.
pub(crate) async fn packument<S: Source>(
    app: &Arc<App<S>>,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let entry = entry(app, name).await?;
    let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let form = negotiate::form(text(header::ACCEPT));
    let gzip = negotiate::gzip(text(header::ACCEPT_ENCODING));
    let rendered = entry.rendered(form).await;
    app.cache.trim();
    let not_modified = match (text(header::IF_NONE_MATCH), text(header::IF_MODIFIED_SINCE)) {
        (Some(tags), _) => rendered.matches(tags),
        (None, Some(since)) => match (parse_http_date(since), entry.modified_secs) {
            (Some(since), Some(modified)) => modified <= since,
            _ => false,
        },
        (None, None) => false,
    };
    let (body, etag) = if gzip {
        (rendered.gzip.clone(), &rendered.gzip_etag)
    } else {
        (rendered.identity.clone(), &rendered.etag)
    };
    let mut res = if not_modified {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        Response::new(Body::from(body))
    };
    let h = res.headers_mut();
    if !not_modified {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(form.content_type()));
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if let Some(v) = entry.last_modified.as_deref().and_then(|m| HeaderValue::from_str(m).ok()) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", app.config.max_age.as_secs())) {
        h.insert(header::CACHE_CONTROL, v);
    }
    Ok(res)
}

/// `GET /NAME/VERSION` or `/NAME/TAG`: one full version object (as in `versions[v]`).
pub(crate) async fn version<S: Source>(app: &Arc<App<S>>, name: &str, asked: &str) -> Result<Response, ApiError> {
    let entry = entry(app, name).await?;
    let p = &entry.packument;
    let version = p.dist_tags.get(asked).map(String::as_str).unwrap_or(asked);
    let mut manifest = p.versions.get(version).ok_or(ApiError::NotFound)?.clone();
    manifest.dist.tarball = Some(app.config.public_url.tarball(&p.name, version));
    let value = serde_json::to_value(&manifest).map_err(|_| ApiError::NotFound)?;
    let mut res = json(&value);
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", app.config.max_age.as_secs())) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    Ok(res)
}

/// `GET /-/package/NAME/dist-tags` (`npm dist-tag ls`).
pub(crate) async fn dist_tags<S: Source>(app: &Arc<App<S>>, name: &str) -> Result<Response, ApiError> {
    let entry = entry(app, name).await?;
    let tags = serde_json::to_value(&entry.packument.dist_tags).map_err(|_| ApiError::NotFound)?;
    Ok(json(&tags))
}
