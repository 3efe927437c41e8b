//! `GET /-/v1/search?text=&size=&from=` over the packages the source holds (`npm search`,
//! `pnpm search`), in the registry's response shape. Terms match names (exact, prefix,
//! substring) and the descriptions and keywords of the packages whose names matched or that
//! the qualifiers name; `keywords:a,b`, `not:unstable`/`is:unstable` and `boost-exact:false`
//! are understood, `author:`/`maintainer:`/`scope:` filter on what the index keeps.

use std::sync::Arc;
use std::time::Instant;

use axum::response::Response;
use indexer::model::Packument;

use crate::error::ApiError;
use crate::router::{App, json};
use crate::source::Source;

/// The most names scanned, and the most documents read to fill in descriptions.
const SCAN_LIMIT: usize = 1_000_000;
const READ_LIMIT: usize = 250;

#[derive(Debug, Default)]
struct Query {
    terms: Vec<String>,
    keywords: Vec<String>,
    scope: Option<String>,
    unstable: Option<bool>,
    boost_exact: bool,
    size: usize,
    from: usize,
}

fn parse(query: &str) -> Query {
    let mut q = Query { size: 20, boost_exact: true, ..Query::default() };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v.replace('+', " ");
        let v = percent_encoding::percent_decode_str(&v).decode_utf8_lossy().into_owned();
        match k {
            "text" => {
                for word in v.split_whitespace().take(32) {
                    match word.split_once(':') {
                        Some(("keywords", ks)) => {
                            q.keywords.extend(ks.split(',').filter(|k| !k.is_empty()).map(str::to_lowercase))
                        }
                        Some(("scope", s)) => q.scope = Some(s.trim_start_matches('@').to_lowercase()),
                        Some(("not", "unstable")) => q.unstable = Some(false),
                        Some(("is", "unstable")) => q.unstable = Some(true),
                        Some(("boost-exact", b)) => q.boost_exact = b != "false",
                        // author:/maintainer: — the index keeps neither; they match nothing
                        Some(("author" | "maintainer", _)) => q.terms.push("\0".into()),
                        _ => q.terms.push(word.to_lowercase()),
                    }
                }
            }
            "size" => q.size = v.parse::<usize>().unwrap_or(20).clamp(1, 250),
            "from" => q.from = v.parse::<usize>().unwrap_or(0).min(10_000),
            _ => {}
        }
    }
    q
}

/// How well a name matches the terms (0 = not at all).
fn name_score(name: &str, q: &Query) -> f64 {
    if let Some(scope) = &q.scope
        && !name.strip_prefix('@').is_some_and(|n| n.split('/').next() == Some(scope.as_str()))
    {
        return 0.0;
    }
    if q.terms.is_empty() {
        return if q.keywords.is_empty() && q.scope.is_none() { 0.0 } else { 0.1 };
    }
    let lower = name.to_lowercase();
    let bare = lower.rsplit('/').next().unwrap_or(&lower).to_owned();
    let whole = q.terms.join(" ");
    if q.boost_exact && (lower == whole || bare == whole) {
        return 100.0;
    }
    let mut score = 0.0;
    for t in &q.terms {
        score += if bare == *t {
            1.0
        } else if bare.starts_with(t.as_str()) {
            0.8
        } else if lower.contains(t.as_str()) {
            0.5
        } else {
            return 0.0;
        };
    }
    score / q.terms.len() as f64
}

pub(crate) async fn search<S: Source>(app: &Arc<App<S>>, query: &str) -> Result<Response, ApiError> {
    let started = Instant::now();
    let q = parse(query);
    let names = app.source.names(SCAN_LIMIT).await?;
    let mut hits: Vec<(f64, String)> =
        names.into_iter().map(|n| (name_score(&n, &q), n)).filter(|(s, _)| *s > 0.0).collect();
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.len().cmp(&b.1.len())).then_with(|| a.1.cmp(&b.1)));
    let mut objects = Vec::new();
    let mut total = 0usize;
    for (score, name) in hits.into_iter().take(READ_LIMIT) {
        let Ok(entry) = super::packument::entry(app, &name).await else { continue };
        let p = &entry.packument;
        let Some(latest) = p.latest() else { continue };
        let keywords: Vec<String> = p.keywords.iter().map(|k| k.to_lowercase()).collect();
        if !q.keywords.iter().all(|k| keywords.contains(k)) {
            continue;
        }
        let unstable = latest.version.starts_with("0.") || latest.version.contains('-');
        if q.unstable.is_some_and(|want| want != unstable) {
            continue;
        }
        total += 1;
        if total <= q.from || objects.len() >= q.size {
            continue;
        }
        objects.push(object(p, &latest.version, score, &app.config.public_url));
    }
    Ok(json(&serde_json::json!({
        "objects": objects,
        "total": total,
        "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
        "took_ms": started.elapsed().as_millis() as u64,
    })))
}

fn object(p: &Packument, version: &str, score: f64, public: &indexer::upstream::RegistryUrl) -> serde_json::Value {
    let final_score = score.min(1.0);
    serde_json::json!({
        "package": {
            "name": p.name,
            "version": version,
            "description": p.description,
            "keywords": p.keywords,
            "date": p.time.get(version).or_else(|| p.time.get("modified")),
            "links": { "npm": format!("{}{}", public.as_str(), indexer::names::url_segment(&p.name)) },
            "publisher": serde_json::Value::Null,
            "maintainers": [],
        },
        "score": { "final": final_score, "detail": { "quality": 0.0, "popularity": 0.0, "maintenance": 0.0 } },
        "searchScore": score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_and_scores() {
        let q = parse("text=react+keywords:ui,hooks+not:unstable&size=5000&from=x");
        assert_eq!(q.terms, ["react"]);
        assert_eq!(q.keywords, ["ui", "hooks"]);
        assert_eq!(q.unstable, Some(false));
        assert_eq!((q.size, q.from), (250, 0));
        assert_eq!(name_score("react", &q), 100.0);
        assert!(name_score("react-dom", &q) > name_score("preact", &q));
        assert_eq!(name_score("vue", &q), 0.0);
        let scoped = parse("text=core%20scope:babel");
        assert!(name_score("@babel/core", &scoped) > 0.0);
        assert_eq!(name_score("core", &scoped), 0.0);
        assert_eq!(name_score("x", &parse("text=author:someone")), 0.0);
    }
}
