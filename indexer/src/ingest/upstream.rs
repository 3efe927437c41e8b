//! The HTTP client for an npm registry: one keep-alive connection pool, `If-None-Match` with
//! the stored ETag, bounded bodies, and backoff on 429 and 5xx (spec §1.5, §1.7, §6.1).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ETAG, IF_NONE_MATCH, RETRY_AFTER};

use crate::names;

/// Why a fetch failed for good.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (connection, TLS, timeout), after retries.
    #[error("fetching {url}")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The registry kept answering with an error status.
    #[error("{url} answered {status} (after {attempts} attempts)")]
    Status {
        /// The URL.
        url: String,
        /// The last status.
        status: u16,
        /// How many tries were made.
        attempts: u32,
    },
}

/// What a packument fetch gave.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// A new document, with its ETag.
    Document { body: Vec<u8>, etag: Option<String> },
    /// `304`: what the index has is current.
    NotModified,
    /// `404`: no such package (or it was unpublished).
    NotFound,
    /// The body is larger than allowed.
    TooLarge { bytes: usize },
}

/// Retry and size limits.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_document_bytes: usize,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
}

/// The upper bound on any single wait, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    client: reqwest::Client,
    base: String,
    limits: Limits,
}

impl Upstream {
    pub(crate) fn new(base: &str, limits: Limits) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("ims-indexer/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|source| FetchError::Http { url: base.to_owned(), source })?;
        let base = if base.ends_with('/') { base.to_owned() } else { format!("{base}/") };
        Ok(Self { client, base, limits })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// GET a URL with retries; returns the final response (any status that is not retried).
    async fn send(
        &self,
        url: &str,
        etag: Option<&str>,
        accept: &str,
    ) -> Result<reqwest::Response, FetchError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.client.get(url).header(ACCEPT, accept);
            if let Some(e) = etag {
                req = req.header(IF_NONE_MATCH, e);
            }
            let wait = match req.send().await {
                Ok(res)
                    if res.status() == StatusCode::TOO_MANY_REQUESTS || res.status().is_server_error() =>
                {
                    if attempt > self.limits.retries {
                        return Err(FetchError::Status {
                            url: url.to_owned(),
                            status: res.status().as_u16(),
                            attempts: attempt,
                        });
                    }
                    let retry_after = res
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    tracing::debug!(url, status = %res.status(), attempt, "upstream asks us to back off");
                    retry_after.unwrap_or_default().max(self.backoff(attempt))
                }
                Ok(res) => return Ok(res),
                Err(source) => {
                    if attempt > self.limits.retries {
                        return Err(FetchError::Http { url: url.to_owned(), source });
                    }
                    tracing::debug!(url, %source, attempt, "request failed, retrying");
                    self.backoff(attempt)
                }
            };
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.limits.backoff.saturating_mul(1 << attempt.min(8)).min(MAX_WAIT)
    }

    /// Fetch the full packument of `name`, revalidating with `etag`.
    pub(crate) async fn packument(&self, name: &str, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let url = format!("{}{}", self.base, names::url_segment(name));
        let mut res = self.send(&url, etag, "application/json").await?;
        match res.status() {
            StatusCode::NOT_MODIFIED => return Ok(Fetched::NotModified),
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Fetched::NotFound),
            s if !s.is_success() => return Err(FetchError::Status { url, status: s.as_u16(), attempts: 1 }),
            _ => {}
        }
        let max = self.limits.max_document_bytes;
        if let Some(len) = res.content_length().filter(|l| *l > max as u64) {
            return Ok(Fetched::TooLarge { bytes: usize::try_from(len).unwrap_or(usize::MAX) });
        }
        let etag = res.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Read in chunks and stop at the cap: a server may lie about (or omit) the length.
        let mut body = Vec::new();
        while let Some(chunk) =
            res.chunk().await.map_err(|source| FetchError::Http { url: url.clone(), source })?
        {
            if body.len() + chunk.len() > max {
                return Ok(Fetched::TooLarge { bytes: body.len() + chunk.len() });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Document { body, etag })
    }

    /// GET a JSON document (a `_changes` page), bounded by the same cap.
    pub(crate) async fn json(&self, url: &str) -> Result<Result<serde_json::Value, String>, FetchError> {
        let mut res = self.send(url, None, "application/json").await?;
        if !res.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: res.status().as_u16(),
                attempts: 1,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            res.chunk().await.map_err(|source| FetchError::Http { url: url.to_owned(), source })?
        {
            if body.len() + chunk.len() > self.limits.max_document_bytes {
                return Ok(Err("the response is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(serde_json::from_slice(&body).map_err(|e| e.to_string()))
    }
}
