//! What the registry client trusts and which proxy it goes through, as npm does.
//!
//! Trust is the union of: the roots compiled into ims (webpki), the platform store, and extra
//! PEM roots (npm's `cafile`/`ca`, `NODE_EXTRA_CA_CERTS`, given by the caller as bytes with
//! where they came from). npm replaces its default CAs with `ca`/`cafile`; ims adds them, so a
//! corporate CA never makes public registries untrusted.
//!
//! The platform store is read with `rustls-native-certs` (the crate reqwest's
//! `rustls-tls-native-roots` feature uses): lean and well kept, it reads the system bundle
//! (found the way OpenSSL does) or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set. It is loaded here
//! rather than through the reqwest feature so that the client knows how many roots each source
//! gave and can say so when a certificate is not trusted ([`TrustReport`]).
//! `rustls-platform-verifier` would also do, but brings a verifier per OS and nothing more for
//! the Linux machines behind a proxy CA that this is for.
//!
//! Proxies: `https`/`http` as resolved by the caller (npm's `https-proxy`, `proxy`, the
//! `HTTPS_PROXY`/`HTTP_PROXY` variables) and `no_proxy` (npm's `noproxy` / `NO_PROXY`). The
//! choice is always explicit: with no proxy configured the client uses none, whatever the
//! process environment says.

use std::collections::HashSet;
use std::fmt;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// What the client trusts beyond the compiled-in roots.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Extra PEM roots, each with where it came from.
    pub extra_roots: Vec<ExtraRoot>,
    /// Read the platform store (`SSL_CERT_FILE` / `SSL_CERT_DIR` or the system bundle).
    pub platform: bool,
    /// `false` is npm's `strict-ssl=false`: any certificate is accepted.
    pub strict: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { extra_roots: Vec::new(), platform: true, strict: true }
    }
}

/// PEM certificates to trust, and where they came from (`cafile /x.pem`, `NODE_EXTRA_CA_CERTS`).
#[derive(Debug, Clone)]
pub struct ExtraRoot {
    /// Where they came from, as the user would recognise it.
    pub origin: String,
    /// The PEM text (one or more `CERTIFICATE` blocks).
    pub pem: Vec<u8>,
}

/// The proxies the client goes through (none unless given).
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// For https:// targets (through `CONNECT`).
    pub https: Option<String>,
    /// For http:// targets.
    pub http: Option<String>,
    /// Hosts reached directly (npm's `noproxy`, comma-separated).
    pub no_proxy: Option<String>,
}

/// Why the trust or proxy configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Extra roots hold no usable certificate.
    #[error("{origin} holds no usable PEM certificate{}", if *.rejected > 0 { format!(" ({} rejected)", .rejected) } else { String::new() })]
    NoCertificate {
        /// Where they came from.
        origin: String,
        /// How many certificates were found but rejected.
        rejected: usize,
    },
    /// A proxy URL is not usable.
    #[error("the proxy {url:?} is not a usable URL")]
    Proxy {
        /// The value.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
}

/// What a client trusts, for messages: one line per source read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustReport {
    /// Each source with how many roots it gave.
    pub sources: Vec<String>,
    /// `strict-ssl=false`.
    pub insecure: bool,
}

impl fmt::Display for TrustReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sources.join("; "))?;
        if self.insecure {
            f.write_str(" (strict-ssl=false: certificates are not checked)")?;
        }
        Ok(())
    }
}

/// Trust and proxies applied to `builder`.
pub(super) fn configure(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsConfig,
    proxy: &ProxyConfig,
) -> Result<(reqwest::ClientBuilder, TrustReport), NetError> {
    let mut report =
        TrustReport { sources: vec!["the roots built into ims (webpki)".to_owned()], insecure: !tls.strict };
    let mut seen = HashSet::new();
    builder = builder.tls_built_in_webpki_certs(true);
    if tls.platform {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::debug!(error = %e, "reading the platform certificate store");
        }
        let (b, n, _) = add_roots(builder, loaded.certs, &mut seen);
        builder = b;
        report.sources.push(format!("the platform store: {n} roots"));
    }
    for extra in &tls.extra_roots {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&extra.pem).filter_map(Result::ok).collect();
        let (b, n, rejected) = add_roots(builder, certs, &mut seen);
        builder = b;
        if n == 0 {
            return Err(NetError::NoCertificate { origin: extra.origin.clone(), rejected });
        }
        report.sources.push(format!("{}: {n} roots", extra.origin));
    }
    if !tls.strict {
        tracing::warn!("strict-ssl=false: registry certificates are not checked");
        builder = builder.danger_accept_invalid_certs(true);
    }
    // Never the environment's proxies behind the caller's back: only what was resolved.
    builder = builder.no_proxy();
    let no_proxy = proxy.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
    for (url, https) in [(&proxy.https, true), (&proxy.http, false)] {
        if let Some(url) = url {
            let p =
                if https { reqwest::Proxy::https(url.as_str()) } else { reqwest::Proxy::http(url.as_str()) };
            let p = p.map_err(|source| NetError::Proxy { url: url.clone(), source })?;
            builder = builder.proxy(p.no_proxy(no_proxy.clone()));
        }
    }
    Ok((builder, report))
}

/// Add each certificate rustls accepts as a trust anchor, once; (builder, added, rejected).
fn add_roots(
    mut builder: reqwest::ClientBuilder,
    certs: Vec<CertificateDer<'static>>,
    seen: &mut HashSet<Vec<u8>>,
) -> (reqwest::ClientBuilder, usize, usize) {
    let (mut added, mut rejected) = (0, 0);
    for der in certs {
        // The same check reqwest makes when it builds its store: a rejected one would fail it.
        if RootCertStore::empty().add(der.clone()).is_err() {
            rejected += 1;
            continue;
        }
        added += 1;
        if !seen.insert(der.to_vec()) {
            continue;
        }
        match reqwest::Certificate::from_der(&der) {
            Ok(c) => builder = builder.add_root_certificate(c),
            Err(_) => rejected += 1,
        }
    }
    (builder, added, rejected)
}

/// Whether `err` (or a cause) is a TLS failure: a rustls error somewhere in the chain (also
/// inside an `io::Error`), else, last resort, a message that names a certificate.
pub fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        let msg = e.to_string();
        if msg.contains("invalid peer certificate") || msg.contains("UnknownIssuer") {
            return true;
        }
        cur = e.source();
    }
    false
}
