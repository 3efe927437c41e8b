//! The one HTTP client for npm registries, used by ingest, the installer, the seeder and the
//! registry proxy alike (spec `npm-registry-and-installers.md` §1.1, §1.5, §1.7, §5.1 rule 7,
//! §6.1): one keep-alive connection pool, a deadline on every connect and every read,
//! `If-None-Match` with the stored ETag, bodies bounded by a size cap, backoff on 429 and 5xx
//! (a `Retry-After` wins when longer), and tarballs streamed into the [`TarballStore`](crate::tarballs::TarballStore),
//! verified on the way in.
//!
//! ```text
//!  RegistryUrl (the base, normalised once; the one tarball-URL rule)
//!     │
//!  Registry ──packument(name, etag)──▶ Revalidated::{Modified, NotModified, NotFound}
//!           ──document(name, etag)───▶ Document::{Body, NotModified, NotFound, TooLarge} (raw, for ingest)
//!           ──fetch_tarball(store, integrity, url)──▶ Unpacked (download + verify + unpack, once)
//! ```
//!
//! `--offline` is a property of the client ([`Registry::offline`]): every request is then a
//! [`FetchError::Offline`] naming what was wanted, so nothing above it has to remember.

mod dns;
mod net;
mod tarball;
mod url;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ETAG, IF_NONE_MATCH, RETRY_AFTER};

use crate::model::Packument;
pub use net::{ExtraRoot, NetError, ProxyConfig, TlsConfig, TrustReport, is_tls_failure};
pub use tarball::{FetchTarballError, unpack};
pub use url::{NPM_LOCKFILE_PREFIX, RegistryUrl, UrlError};

/// Why a request failed for good.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (connection, TLS, deadline), after retries.
    #[error("GET {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server's certificate was not trusted (or the TLS handshake failed otherwise);
    /// not retried.
    #[error("GET {url} failed: the TLS connection could not be verified (trusted: {trust})")]
    Tls {
        /// The URL.
        url: String,
        /// What the client trusted.
        trust: TrustReport,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The trust or proxy configuration cannot be used.
    #[error("the TLS or proxy configuration cannot be used")]
    Config(#[from] NetError),
    /// The registry answered with an error status (after retries, for 429 and 5xx).
    #[error("GET {url} answered {status} (after {attempts} attempts)")]
    Status {
        /// The URL.
        url: String,
        /// The last status.
        status: u16,
        /// How many tries were made.
        attempts: u32,
    },
    /// A deadline passed: connecting, waiting for the next bytes (a stalled or trickling
    /// server), or the whole request (npm's `fetch-timeout`).
    #[error("GET {url} failed: {deadline} of {}s passed", limit.as_secs_f64())]
    Timeout {
        /// The URL.
        url: String,
        /// Which deadline.
        deadline: Deadline,
        /// Its length.
        limit: Duration,
    },
    /// The body is larger than the cap.
    #[error("{url} sent {bytes} bytes, over the {max} byte cap")]
    TooLarge {
        /// The URL.
        url: String,
        /// How much it sent (or announced) before it was cut off.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// The registry document is not a packument.
    #[error("{url} is not a valid packument")]
    BadPackument {
        /// The URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: crate::model::ParseError,
    },
    /// `--offline`, and this was never recorded into the local index or the store.
    #[error("{what} is not available offline (not in the local index or tarball store of this --home)")]
    Offline {
        /// The package (packument name, or the tarball URL).
        what: String,
    },
    /// A parsing task died.
    #[error("the packument parser task failed: {0}")]
    Join(String),
}

/// The deadlines a request runs under ([`FetchError::Timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deadline {
    /// Establishing the connection ([`RegistryOptions::connect_timeout`]).
    Connect,
    /// Nothing arrived for this long ([`RegistryOptions::read_timeout`]).
    Idle,
    /// The whole request, body included ([`RegistryOptions::total_timeout`], npm's
    /// `fetch-timeout`).
    Total,
}

impl std::fmt::Display for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Deadline::Connect => "the connect deadline",
            Deadline::Idle => "the idle deadline (no byte received)",
            Deadline::Total => "the whole-request deadline (npm's fetch-timeout)",
        })
    }
}

impl FetchError {
    /// Whether the server could not be reached at all (connection refused, DNS, deadline), as
    /// opposed to answering badly: then asking it again for the next package is pointless.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FetchError::Http { source, .. } if source.is_connect() || source.is_timeout())
            || matches!(self, FetchError::Tls { .. } | FetchError::Timeout { .. })
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            FetchError::Timeout { .. } => Some(
                "the registry is too slow or stalled; the deadlines are npm's `fetch-timeout` (ms, whole request) and IMS_FETCH_IDLE_TIMEOUT (ms, between bytes)"
                    .to_owned(),
            ),
            FetchError::TooLarge { .. } => {
                Some("a registry document or tarball this large is refused; check the registry URL".to_owned())
            }
            FetchError::Offline { .. } => {
                Some("run the install once without --offline, or `ims index --from-registry URL NAME`".to_owned())
            }
            FetchError::Tls { trust, .. } if trust.insecure => None,
            FetchError::Tls { .. } => Some(
                "if a corporate proxy or a private registry signs this certificate, give its CA as a PEM file: `cafile=/path/to/ca.pem` in .npmrc (npm reads it too), or NODE_EXTRA_CA_CERTS=/path/to/ca.pem; `strict-ssl=false` in .npmrc turns checking off (insecure)"
                    .to_owned(),
            ),
            FetchError::Config(NetError::NoCertificate { .. }) => Some(
                "point `cafile=` (or NODE_EXTRA_CA_CERTS) at a PEM file with `-----BEGIN CERTIFICATE-----` blocks".to_owned(),
            ),
            FetchError::Config(NetError::Proxy { .. }) => {
                Some("fix `proxy=` / `https-proxy=` in .npmrc or HTTPS_PROXY / HTTP_PROXY".to_owned())
            }
            _ => None,
        }
    }
}

/// How the client behaves: deadlines, retries, the size cap.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Deadline for establishing a connection.
    pub connect_timeout: Duration,
    /// Deadline for each read of a response (a stalled body fails; a slow but moving one
    /// does not).
    pub read_timeout: Duration,
    /// Deadline for a whole request, body included, so a server trickling bytes cannot hold
    /// an install forever (npm's `fetch-timeout`, 5 minutes by default). Each retry gets its
    /// own.
    pub total_timeout: Duration,
    /// Retries per request on 429, 5xx and connection errors.
    pub retries: u32,
    /// The first backoff; it doubles per retry (a `Retry-After` wins when longer).
    pub backoff: Duration,
    /// Larger documents are refused ([`Document::TooLarge`] / [`FetchError::TooLarge`]);
    /// tarballs are bounded by the store's own cap.
    pub max_document_bytes: usize,
    /// Idle keep-alive connections kept per host.
    pub max_idle_per_host: usize,
    /// What is trusted beyond the compiled-in roots (the platform store, npm's `cafile`...).
    pub tls: TlsConfig,
    /// The proxies to go through (none unless given: the environment is not read here).
    pub proxy: ProxyConfig,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            user_agent: concat!("ims/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(300),
            retries: 2,
            backoff: Duration::from_millis(250),
            max_document_bytes: 64 << 20,
            max_idle_per_host: 64,
            tls: TlsConfig::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

/// What a raw packument request gave (ingest keeps the bytes to parse itself).
#[derive(Debug)]
pub enum Document {
    /// A new document, with its ETag.
    Body {
        /// The bytes.
        body: Vec<u8>,
        /// Its `ETag`, for the next `If-None-Match`.
        etag: Option<String>,
    },
    /// `304`: the copy whose `ETag` was sent is current.
    NotModified,
    /// `404` / `410`: no such package (or it was unpublished).
    NotFound,
    /// The body is larger than allowed.
    TooLarge {
        /// How much it sent (or announced) before it was cut off.
        bytes: usize,
    },
}

/// What a (conditional) packument request answered, parsed.
#[derive(Debug)]
pub enum Revalidated {
    /// `200`: the document, parsed, with its `ETag`.
    Modified {
        /// The packument (boxed: it dwarfs the other variants).
        packument: Box<Packument>,
        /// Its `ETag`, for the next `If-None-Match`.
        etag: Option<String>,
    },
    /// `304`: the copy whose `ETag` was sent is current.
    NotModified,
    /// `404` / `410`: no such package.
    NotFound,
}

/// The upper bound on any single wait, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// An npm-compatible registry reached over HTTP; a cheap cloneable handle sharing one pool.
#[derive(Debug, Clone)]
pub struct Registry {
    client: reqwest::Client,
    url: RegistryUrl,
    options: RegistryOptions,
    offline: bool,
    trust: std::sync::Arc<TrustReport>,
}

impl Registry {
    /// A client for the registry at `url`.
    pub fn new(url: RegistryUrl, options: RegistryOptions) -> Result<Self, FetchError> {
        let builder = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .pool_max_idle_per_host(options.max_idle_per_host)
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .timeout(options.total_timeout)
            .dns_resolver(std::sync::Arc::new(dns::CachingResolver::default()));
        let (builder, trust) = net::configure(builder, &options.tls, &options.proxy)?;
        let client = builder.build().map_err(|source| FetchError::Http { url: url.to_string(), source })?;
        Ok(Registry { client, url, options, offline: false, trust: std::sync::Arc::new(trust) })
    }

    /// `--offline`: never touch the network; every request is a [`FetchError::Offline`]
    /// naming what was wanted (tarballs then come from the store only, packuments from the
    /// local index).
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Whether this client refuses the network.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// The registry's base URL.
    pub fn url(&self) -> &RegistryUrl {
        &self.url
    }

    /// The base URL as a string (with its trailing `/`).
    pub fn base(&self) -> &str {
        self.url.as_str()
    }

    /// What the client trusts, source by source.
    pub fn trust(&self) -> &TrustReport {
        &self.trust
    }

    /// A request error as a [`FetchError`]: a TLS failure names what was trusted, a deadline
    /// says which one (`started`: when the attempt began).
    fn http_error(&self, url: &str, started: Instant, source: reqwest::Error) -> FetchError {
        if is_tls_failure(&source) {
            return FetchError::Tls { url: url.to_owned(), trust: (*self.trust).clone(), source };
        }
        if source.is_timeout() {
            let o = &self.options;
            let (deadline, limit) = if started.elapsed() + Duration::from_millis(50) >= o.total_timeout {
                (Deadline::Total, o.total_timeout)
            } else if source.is_connect() {
                (Deadline::Connect, o.connect_timeout)
            } else {
                (Deadline::Idle, o.read_timeout)
            };
            return FetchError::Timeout { url: url.to_owned(), deadline, limit };
        }
        FetchError::Http { url: url.to_owned(), source }
    }

    /// How a failed read of a response body is reported ([`Registry::http_error`]).
    pub(crate) fn body_error<'a>(
        &'a self,
        url: &'a str,
        started: Instant,
    ) -> impl Fn(reqwest::Error) -> FetchError + 'a {
        move |source| self.http_error(url, started, source)
    }

    /// The options it was made with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// GET `url` with retries; returns the final response (any status that is not retried)
    /// and when its attempt started (the whole-request deadline runs from then).
    async fn send(
        &self,
        url: &str,
        etag: Option<&str>,
        accept: &str,
    ) -> Result<(reqwest::Response, Instant), FetchError> {
        if self.offline {
            return Err(FetchError::Offline { what: url.to_owned() });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let mut req = self.client.get(url).header(ACCEPT, accept);
            if let Some(e) = etag {
                req = req.header(IF_NONE_MATCH, e);
            }
            let wait = match req.send().await {
                Ok(res)
                    if res.status() == StatusCode::TOO_MANY_REQUESTS || res.status().is_server_error() =>
                {
                    if attempt > self.options.retries {
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
                Ok(res) => return Ok((res, started)),
                Err(source) => {
                    // An untrusted certificate stays untrusted: no retry.
                    if attempt > self.options.retries || is_tls_failure(&source) {
                        return Err(self.http_error(url, started, source));
                    }
                    tracing::debug!(url, %source, attempt, "request failed, retrying");
                    self.backoff(attempt)
                }
            };
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.options.backoff.saturating_mul(1 << attempt.min(8)).min(MAX_WAIT)
    }

    /// The body of `res`, read in chunks and cut off at `max` (a server may lie about, or
    /// omit, the length). `Err(bytes)` when it is too large.
    async fn bounded_body(
        &self,
        url: &str,
        started: Instant,
        res: &mut reqwest::Response,
        max: usize,
    ) -> Result<Result<Vec<u8>, usize>, FetchError> {
        if let Some(len) = res.content_length().filter(|l| *l > max as u64) {
            return Ok(Err(usize::try_from(len).unwrap_or(usize::MAX)));
        }
        // Sized once from the announced length (bounded above), not grown chunk by chunk.
        let announced = res.content_length().map_or(0, |l| usize::try_from(l).unwrap_or(0).min(max));
        let mut body = Vec::with_capacity(announced);
        while let Some(chunk) = res.chunk().await.map_err(self.body_error(url, started))? {
            if body.len() + chunk.len() > max {
                return Ok(Err(body.len() + chunk.len()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Ok(body))
    }

    /// GET the full packument of `name` as bytes, revalidating with `etag`.
    pub async fn document(&self, name: &str, etag: Option<&str>) -> Result<Document, FetchError> {
        let url = self.url.packument(name);
        // The full document: npm 11 asks for it too (it carries `libc`, `time`).
        let (mut res, started) = self.send(&url, etag, "application/json").await?;
        match res.status() {
            StatusCode::NOT_MODIFIED if etag.is_some() => return Ok(Document::NotModified),
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Document::NotFound),
            s if s != StatusCode::OK => {
                return Err(FetchError::Status { url, status: s.as_u16(), attempts: 1 });
            }
            _ => {}
        }
        let etag = res.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(match self.bounded_body(&url, started, &mut res, self.options.max_document_bytes).await? {
            Ok(body) => Document::Body { body, etag },
            Err(bytes) => Document::TooLarge { bytes },
        })
    }

    /// GET the full packument of `name`, parsed; with `etag`, conditionally
    /// (`If-None-Match`), so an unchanged document costs a `304` and no body.
    pub async fn packument(&self, name: &str, etag: Option<&str>) -> Result<Revalidated, FetchError> {
        if self.offline {
            return Err(FetchError::Offline { what: name.to_owned() });
        }
        let (body, etag) = match self.document(name, etag).await? {
            Document::Body { body, etag } => (body, etag),
            Document::NotModified => return Ok(Revalidated::NotModified),
            Document::NotFound => return Ok(Revalidated::NotFound),
            Document::TooLarge { bytes } => {
                let max = self.options.max_document_bytes;
                return Err(FetchError::TooLarge { url: self.url.packument(name), bytes, max });
            }
        };
        // Parsing a large document is CPU work: keep it off the async workers.
        let parsed = tokio::task::spawn_blocking(move || Packument::from_slice(&body))
            .await
            .map_err(|e| FetchError::Join(e.to_string()))?;
        let packument =
            parsed.map_err(|source| FetchError::BadPackument { url: self.url.packument(name), source })?;
        Ok(Revalidated::Modified { packument: Box::new(packument), etag })
    }

    /// GET a JSON document (a `_changes` page), bounded by the same cap; the inner error
    /// says why the body is not usable JSON.
    pub async fn json(&self, url: &str) -> Result<Result<serde_json::Value, String>, FetchError> {
        let (mut res, started) = self.send(url, None, "application/json").await?;
        if !res.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: res.status().as_u16(),
                attempts: 1,
            });
        }
        Ok(match self.bounded_body(url, started, &mut res, self.options.max_document_bytes).await? {
            Ok(body) => serde_json::from_slice(&body).map_err(|e| e.to_string()),
            Err(_) => Err("the response is too large".into()),
        })
    }
}
