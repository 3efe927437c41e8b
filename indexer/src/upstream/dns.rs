//! Host lookups for the registry client: one lookup per host at a time, shared by every
//! connection that needs it, and kept for a while.
//!
//! reqwest's default resolver calls `getaddrinfo` once per new connection. An install opens
//! dozens of connections to the same host at once, and a resolver that drops bursts of
//! queries (seen here: 40 concurrent lookups took 5 s, one took 1 ms, the libc retry timeout)
//! then stalls the install for seconds. npm, pnpm and bun all cache lookups; so does this.
//! Written by hand: it is a small wrapper over tokio's `lookup_host`, and the resolver crates
//! (hickory) would bring a whole DNS stack for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long an answer is reused (a seeder runs for days; an install for seconds).
const TTL: Duration = Duration::from_secs(300);

/// A lookup in flight or done: the addresses, or the error's text (shared, so cloned).
type Lookup = Shared<BoxFuture<'static, Result<Arc<Vec<SocketAddr>>, Arc<str>>>>;

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
#[error("looking up {host}: {reason}")]
struct LookupError {
    host: String,
    reason: Arc<str>,
}

/// A single-flight, caching resolver for [`reqwest::ClientBuilder::dns_resolver`].
#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    entries: Mutex<HashMap<String, (Instant, Lookup)>>,
}

impl CachingResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, lookup)) = entries.get(host) {
            // A failed lookup is not kept: the next connection asks again.
            let failed = matches!(lookup.peek(), Some(Err(_)));
            if now.duration_since(*at) < TTL && !failed {
                return lookup.clone();
            }
        }
        let name = host.to_owned();
        let lookup = async move {
            // The port is replaced by the connector; any will do here.
            match tokio::net::lookup_host((name.as_str(), 0)).await {
                Ok(addrs) => Ok(Arc::new(addrs.collect::<Vec<_>>())),
                Err(e) => Err(Arc::<str>::from(e.to_string())),
            }
        }
        .boxed()
        .shared();
        entries.insert(host.to_owned(), (now, lookup.clone()));
        lookup
    }
}

impl Resolve for CachingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.lookup(&host);
        Box::pin(async move {
            match lookup.await {
                Ok(addrs) => {
                    let addrs: Addrs = Box::new(addrs.as_ref().clone().into_iter());
                    Ok(addrs)
                }
                Err(reason) => Err(Box::new(LookupError { host, reason }) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_lookup_serves_concurrent_connections_and_failures_are_not_kept() {
        let r = CachingResolver::default();
        let a = r.lookup("localhost");
        let b = r.lookup("localhost");
        assert!(a.ptr_eq(&b), "a second connection started its own lookup");
        let addrs = a.await.unwrap();
        assert!(addrs.iter().any(|s| s.ip().is_loopback()), "{addrs:?}");
        let bad = r.lookup("");
        assert!(bad.clone().await.is_err());
        assert!(!r.lookup("").ptr_eq(&bad), "a failure was cached");
    }
}
