//! Packument representations, rendered once and kept (spec §1.5): each form's exact bytes,
//! gzipped once, with a strong ETag per representation (a hash of its bytes; the gzip one
//! tagged apart), `Last-Modified` from `time.modified`, and a cache bounded in bytes that
//! drops the least recently used packages first.
//!
//! An entry is fresh for [`Config::fresh_for`](crate::Config::fresh_for); after that the
//! next request is still answered from it while one refresh asks the source again
//! (stale-while-revalidate, so a hot package never waits on the source). A refresh that finds
//! the same document (same [`fingerprint`]) keeps the rendered bytes.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use indexer::model::Packument;
use indexer::upstream::RegistryUrl;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::negotiate::Form;

/// One representation's bytes, plain and gzipped, with their ETags (quoted, strong).
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) identity: Bytes,
    pub(crate) gzip: Bytes,
    pub(crate) etag: String,
    pub(crate) gzip_etag: String,
}

impl Rendered {
    fn new(identity: Vec<u8>) -> Rendered {
        let hash = hex::encode(&Sha256::digest(&identity)[..16]);
        // Level 5: within a few percent of level 9's size on packuments, at a fraction of its
        // time; each representation is compressed once.
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(identity.len() / 6), flate2::Compression::new(5));
        let gzip = match gz.write_all(&identity).and_then(|()| gz.finish()) {
            Ok(bytes) => bytes,
            Err(_) => Vec::new(), // writing to a Vec cannot fail; an empty gzip is never sent
        };
        Rendered {
            identity: Bytes::from(identity),
            gzip: Bytes::from(gzip),
            etag: format!("\"{hash}\""),
            gzip_etag: format!("\"{hash}-gz\""),
        }
    }

    /// Whether an `If-None-Match` value matches either representation (a weak comparison,
    /// as RFC 9110 has it for `If-None-Match`).
    pub(crate) fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| {
            t == "*" || t == self.etag || t == self.gzip_etag
        })
    }

    fn bytes(&self) -> usize {
        self.identity.len() + self.gzip.len()
    }
}

/// A package as the proxy serves it: the packument as the source gave it (its tarball URLs
/// are where the source fetches from), and its representations, rendered on first use with
/// tarball URLs pointing at the proxy.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) packument: Arc<Packument>,
    public: RegistryUrl,
    fingerprint: [u8; 32],
    /// `Last-Modified`, from `time.modified`.
    pub(crate) last_modified: Option<String>,
    /// As seconds since the epoch, for `If-Modified-Since`.
    pub(crate) modified_secs: Option<u64>,
    got: Instant,
    full: OnceCell<Arc<Rendered>>,
    abbreviated: OnceCell<Arc<Rendered>>,
    used: AtomicU64,
    pub(crate) refreshing: AtomicBool,
}

impl Entry {
    /// The entry for a packument as the source gave it, served with tarball URLs at `public`.
    pub(crate) fn new(source: Arc<Packument>, public: &RegistryUrl) -> Entry {
        let p = source;
        let modified = p.time.get("modified").or(p.modified.as_ref());
        let millis = modified.and_then(|m| indexer::npm_time_millis(m)).and_then(|ms| u64::try_from(ms).ok());
        let modified_secs = millis.map(|ms| ms / 1000);
        let last_modified =
            millis.map(|ms| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms)));
        Entry {
            fingerprint: fingerprint(&p),
            packument: p,
            public: public.clone(),
            last_modified,
            modified_secs,
            got: Instant::now(),
            full: OnceCell::new(),
            abbreviated: OnceCell::new(),
            used: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        }
    }

    /// The same document again, got now: keeps what was rendered.
    pub(crate) fn renewed(&self) -> Entry {
        let keep = |c: &OnceCell<Arc<Rendered>>| match c.get() {
            Some(r) => OnceCell::new_with(Some(r.clone())),
            None => OnceCell::new(),
        };
        Entry {
            packument: self.packument.clone(),
            public: self.public.clone(),
            fingerprint: self.fingerprint,
            last_modified: self.last_modified.clone(),
            modified_secs: self.modified_secs,
            got: Instant::now(),
            full: keep(&self.full),
            abbreviated: keep(&self.abbreviated),
            used: AtomicU64::new(self.used.load(Ordering::Relaxed)),
            refreshing: AtomicBool::new(false),
        }
    }

    /// Whether `source` is the document this entry was made from.
    pub(crate) fn same_document(&self, source: &Packument) -> bool {
        self.fingerprint == fingerprint(source)
    }

    pub(crate) fn is_fresh(&self, fresh_for: Duration) -> bool {
        self.got.elapsed() < fresh_for
    }

    /// The bytes of `form`, rendered on first use (off the async workers: a big packument
    /// takes tens of milliseconds to serialise and compress).
    pub(crate) async fn rendered(&self, form: Form) -> Arc<Rendered> {
        let cell = match form {
            Form::Full => &self.full,
            Form::Abbreviated => &self.abbreviated,
        };
        cell.get_or_init(|| async {
            let (p, public) = (self.packument.clone(), self.public.clone());
            let render = move || {
                let json = match form {
                    Form::Full => serde_json::to_vec(&rewritten(&p, &public)),
                    Form::Abbreviated => {
                        let mut corgi = p.abbreviated();
                        for (version, m) in &mut corgi.versions {
                            m.dist.tarball = Some(public.tarball(&p.name, version));
                        }
                        serde_json::to_vec(&corgi)
                    }
                };
                // Serialising plain maps and strings cannot fail.
                Arc::new(Rendered::new(json.unwrap_or_default()))
            };
            match tokio::task::spawn_blocking(render.clone()).await {
                Ok(r) => r,
                Err(_) => render(),
            }
        })
        .await
        .clone()
    }

    /// Bytes this entry holds (rendered forms, or an estimate of the document before).
    fn bytes(&self) -> usize {
        let rendered: usize = [&self.full, &self.abbreviated].iter().filter_map(|c| c.get()).map(|r| r.bytes()).sum();
        let document = match self.full.get() {
            Some(r) => r.identity.len(),
            None => self.packument.versions.len() * 1500 + 1000,
        };
        rendered + document
    }
}

/// `p` with every tarball URL at `public`, in the canonical pattern (literal `/` in scoped
/// names, spec §1.4): clients fetch tarballs from the proxy whatever upstream's URLs were.
pub(crate) fn rewritten(p: &Packument, public: &RegistryUrl) -> Packument {
    let mut p = p.clone();
    let name = p.name.clone();
    for (version, m) in &mut p.versions {
        m.dist.tarball = Some(public.tarball(&name, version));
    }
    p
}

/// What decides whether a packument changed: dist-tags, each version's key and integrity,
/// deprecations, `time.modified` and the tombstone.
fn fingerprint(p: &Packument) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    field(&p.name);
    for (tag, v) in &p.dist_tags {
        field(tag);
        field(v);
    }
    field("\0versions");
    for (v, m) in &p.versions {
        field(v);
        field(m.dist.integrity.as_deref().or(m.dist.shasum.as_deref()).unwrap_or(""));
        field(m.deprecated.as_deref().unwrap_or(""));
    }
    field(p.time.get("modified").map(String::as_str).unwrap_or(""));
    field(if p.unpublished.is_some() { "unpublished" } else { "" });
    h.finalize().into()
}

/// Packages by name, bounded in bytes.
#[derive(Debug)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    budget: usize,
    tick: AtomicU64,
    held: AtomicUsize,
}

impl Cache {
    pub(crate) fn new(budget: usize) -> Cache {
        Cache { entries: Mutex::default(), budget, tick: AtomicU64::new(1), held: AtomicUsize::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Entry>> {
        let entry = self.lock().get(name).cloned()?;
        entry.used.store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(entry)
    }

    pub(crate) fn insert(&self, name: &str, entry: Arc<Entry>) {
        entry.used.store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.lock().insert(name.to_owned(), entry);
        self.trim();
    }

    pub(crate) fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Drop the least recently used entries until the cache is within its budget (called
    /// after an insert and after a representation was rendered). Entries being served stay
    /// alive through their `Arc` until the response is sent.
    pub(crate) fn trim(&self) {
        let mut entries = self.lock();
        let mut total: usize = entries.values().map(|e| e.bytes()).sum();
        if total > self.budget {
            let mut by_age: Vec<(u64, String, usize)> =
                entries.iter().map(|(k, e)| (e.used.load(Ordering::Relaxed), k.clone(), e.bytes())).collect();
            by_age.sort_unstable();
            for (_, name, bytes) in by_age {
                if total <= self.budget * 3 / 4 {
                    break;
                }
                entries.remove(&name);
                total -= bytes;
            }
        }
        self.held.store(total, Ordering::Relaxed);
    }

    /// Bytes held after the last trim.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// `If-Modified-Since` as seconds since the epoch.
pub(crate) fn parse_http_date(value: &str) -> Option<u64> {
    httpdate::parse_http_date(value).ok()?.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(versions: &[&str], modified: &str) -> Packument {
        let mut vs = serde_json::Map::new();
        for v in versions {
            vs.insert(
                (*v).into(),
                serde_json::json!({"name":"@s/a","version":v,"dist":{"integrity":format!("sha512-{v}"),"tarball":"https://elsewhere.example/x.tgz"}}),
            );
        }
        Packument::from_value(serde_json::json!({
            "name":"@s/a","dist-tags":{"latest":versions[0]},"versions":vs,
            "time":{"modified":modified}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn representations_are_rewritten_tagged_and_kept() {
        let public = RegistryUrl::parse("http://127.0.0.1:4873/").unwrap();
        let e = Entry::new(Arc::new(doc(&["1.0.0"], "2024-05-06T07:08:09.000Z")), &public);
        assert_eq!(e.last_modified.as_deref(), Some("Mon, 06 May 2024 07:08:09 GMT"));
        let full = e.rendered(Form::Full).await;
        let v: serde_json::Value = serde_json::from_slice(&full.identity).unwrap();
        assert_eq!(v["versions"]["1.0.0"]["dist"]["tarball"], "http://127.0.0.1:4873/@s/a/-/a-1.0.0.tgz");
        assert_eq!(e.packument.versions["1.0.0"].dist.tarball.as_deref(), Some("https://elsewhere.example/x.tgz"), "the source's URL is kept for fetching");
        assert_eq!(v["time"]["modified"], "2024-05-06T07:08:09.000Z");
        let corgi = e.rendered(Form::Abbreviated).await;
        let c: serde_json::Value = serde_json::from_slice(&corgi.identity).unwrap();
        assert_eq!(c["versions"]["1.0.0"]["dist"]["tarball"], "http://127.0.0.1:4873/@s/a/-/a-1.0.0.tgz");
        assert!(c.get("time").is_none());
        assert_ne!(full.etag, corgi.etag, "one ETag per representation");
        assert_ne!(full.etag, full.gzip_etag);
        assert!(full.matches(&full.etag) && full.matches(&format!("W/{}, \"x\"", full.gzip_etag)));
        assert!(!full.matches(&corgi.etag));
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&full.gzip[..]), &mut unzipped).unwrap();
        assert_eq!(unzipped, full.identity);
        assert!(Arc::ptr_eq(&full, &e.rendered(Form::Full).await), "rendered once");
        assert!(e.same_document(&doc(&["1.0.0"], "2024-05-06T07:08:09.000Z")));
        assert!(!e.same_document(&doc(&["1.0.0", "1.0.1"], "2024-05-07T07:08:09.000Z")));
        assert!(Arc::ptr_eq(&full, &e.renewed().rendered(Form::Full).await), "a renewal keeps the bytes");
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_budget_dropping_the_least_recently_used() {
        let public = RegistryUrl::parse("http://127.0.0.1:4873/").unwrap();
        let cache = Cache::new(20_000);
        for i in 0..40 {
            let e = Arc::new(Entry::new(Arc::new(doc(&["1.0.0", "1.0.1"], "2024-05-06T07:08:09.000Z")), &public));
            cache.insert(&format!("p{i}"), e);
            assert!(cache.get("p0").is_some() || i > 0, "the hot entry is kept");
        }
        assert!(cache.held() <= 20_000, "{}", cache.held());
        assert!(cache.get("p0").is_some(), "used on every round, so never the oldest");
        assert!(cache.get("p1").is_none(), "an old, unused one was dropped");
        assert!(cache.len() < 40);
    }
}
