//! The `_changes` follower (spec §6.1): page through ids, fetch each changed packument,
//! tombstone deletions, and store the checkpoint in the trie with the last batch of each page,
//! so that a run killed at any point resumes without losing or repeating anything.

use std::collections::HashMap;

use serde_json::Value;

use super::{Event, Ingest, IngestError, IngestReport};
use crate::Checkpoint;

/// One row of a changes page.
struct Row {
    id: String,
    deleted: bool,
}

/// A sequence value as a string (npm's are numbers, CouchDB's were strings: opaque to us).
fn seq_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The numeric part of a sequence (`"123-abc"` -> 123), for noticing resets.
fn seq_number(s: &str) -> u64 {
    s.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse().ok()).unwrap_or(0)
}

fn changes_url(feed: &str) -> String {
    if feed.contains("_changes") {
        feed.to_owned()
    } else if feed.ends_with('/') {
        format!("{feed}_changes")
    } else {
        format!("{feed}/_changes")
    }
}

impl Ingest {
    /// Follow the `_changes` feed at `feed` (a replica base URL or the `_changes` URL itself)
    /// from the stored checkpoint until caught up (an empty page) or `max_pages`.
    pub async fn follow(&self, feed: &str) -> Result<IngestReport, IngestError> {
        let url = changes_url(feed);
        let mut report = IngestReport::default();
        let mut cp = match self.index.checkpoint().await? {
            Some(cp) if cp.feed == url => cp,
            Some(cp) => {
                tracing::warn!(stored = %cp.feed, now = %url, "the checkpoint is for another feed; starting from 0");
                Checkpoint { feed: url.clone(), since: "0".into(), ..cp }
            }
            None => Checkpoint { feed: url.clone(), since: "0".into(), ..Checkpoint::default() },
        };
        while self.options.max_pages.is_none_or(|max| report.pages < max) {
            let page_url = format!("{url}?since={}&limit={}", cp.since, self.options.page_size);
            let page = self
                .upstream
                .json(&page_url)
                .await?
                .map_err(|reason| IngestError::Feed { url: page_url.clone(), reason })?;
            let bad = |reason: &str| IngestError::Feed { url: page_url.clone(), reason: reason.to_owned() };
            let results =
                page.get("results").and_then(Value::as_array).ok_or_else(|| bad("no results array"))?;
            let last_seq = page.get("last_seq").and_then(seq_string).ok_or_else(|| bad("no last_seq"))?;
            if results.is_empty() || last_seq == cp.since {
                break;
            }
            // Deduplicate ids within the page: the last row for an id wins.
            let mut order: Vec<String> = Vec::new();
            let mut rows: HashMap<String, Row> = HashMap::new();
            for r in results {
                let Some(id) = r.get("id").and_then(Value::as_str) else { continue };
                if id.starts_with("_design/") {
                    continue;
                }
                let deleted = r.get("deleted").and_then(Value::as_bool).unwrap_or(false);
                if rows.insert(id.to_owned(), Row { id: id.to_owned(), deleted }).is_none() {
                    order.push(id.to_owned());
                }
            }
            self.emit(Event::Planned(order.len()));
            let deletions: Vec<(String, Option<String>)> =
                order.iter().filter(|id| rows[*id].deleted).map(|id| (rows[id].id.clone(), None)).collect();
            let fetch: Vec<String> = order.iter().filter(|id| !rows[*id].deleted).cloned().collect();

            let highest = seq_number(&last_seq);
            if highest < cp.highest_seq {
                tracing::warn!(
                    last_seq,
                    highest = cp.highest_seq,
                    "the feed's sequence went backwards (a reset upstream)"
                );
            }
            let next = Checkpoint {
                feed: url.clone(),
                since: last_seq.clone(),
                highest_seq: cp.highest_seq.max(highest),
                changes: cp.changes + results.len() as u64,
            };
            let chunks: Vec<&[String]> = fetch.chunks(self.options.batch_documents.max(1)).collect();
            let n = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let (mut update, missing) = self.fetch_chunk(chunk, true, &mut report).await?;
                // A changed package that now 404s was unpublished.
                update.deletions.extend(missing.into_iter().map(|m| (m, None)));
                if i + 1 == n {
                    update.deletions.extend(deletions.iter().cloned());
                    update.checkpoint = Some(next.clone());
                }
                let w = self.index.write(update).await?;
                self.emit(Event::Written(&w));
                report.add(&w);
            }
            if n == 0 {
                let update = crate::Update {
                    deletions: deletions.clone(),
                    checkpoint: Some(next.clone()),
                    ..Default::default()
                };
                let w = self.index.write(update).await?;
                report.add(&w);
            }
            for id in order.iter().filter(|id| rows[*id].deleted) {
                self.emit(Event::Done(id));
            }
            cp = next;
            report.pages += 1;
            self.emit(Event::Page { since: &cp.since, rows: results.len() });
        }
        report.since = Some(cp.since);
        Ok(report)
    }
}
