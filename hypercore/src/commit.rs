//! Group commit of log records (the durability rule of the `storage` module docs): concurrent
//! appends and puts queue their calls here, and one leader writes everything queued as one
//! record (a group record for several calls) with one write and one `fdatasync`, applies the
//! calls to the in-memory state in log order, and only then answers each caller. So a call
//! still returns only after its own data is durable, but N concurrent calls cost one sync
//! instead of N.
//!
//! The leader is whichever caller found the queue idle; it runs on tokio's blocking pool for
//! disk storage (inline for memory) and drains the queue until it is empty, so it completes
//! even if every caller's future was dropped: the log and the in-memory state never disagree
//! about where the next record goes.
//!
//! A failed write cuts the log back to where the group started and fails the group and every
//! record queued behind it, and bumps the *epoch*: a writer's appends are signed on top of the
//! ones before them, so anything prepared against the old epoch is refused at submit.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};

use crate::error::StorageError;
use crate::state::{FeedEvent, State};
use crate::storage::{Meta, Store, encode_header};

/// A group buffer larger than this is freed after its write instead of being reused.
const KEEP_BUFFER: usize = 4 << 20;
/// Most meta bytes one group record takes (calls beyond wait for the next group): keeps a
/// record far below the meta size replay accepts (`record::MAX_META_LEN`, 1 GiB). One call
/// alone always fits (a maximal append batch has about 100 MiB of meta).
const GROUP_META_LIMIT: usize = 256 << 20;
/// Longest a disk leader waits for the callers of its last group to come back.
const MAX_LINGER: Duration = Duration::from_millis(2);

/// What a commit queue writes to and answers from: the feed's log, its in-memory state and
/// its event channel, with the queue itself. The feed's shared handle implements it, so this
/// module depends on the state and not on the feed (`feed` -> `commit` -> `state`).
pub(crate) trait Target: Send + Sync + 'static {
    /// The feed's commit queue.
    fn committer(&self) -> &Committer;
    /// The feed's log.
    fn store(&self) -> &Store;
    /// The feed's in-memory state, locked.
    fn state(&self) -> MutexGuard<'_, State>;
    /// Where the feed's events go.
    fn events(&self) -> &broadcast::Sender<FeedEvent>;
}

/// What a queued record is, for the events and answers once it is applied.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// A writer's append call; the feed length after it.
    Append {
        /// The length after the append.
        len: u64,
    },
    /// A verified put of block `seq`.
    Put {
        /// The block.
        seq: u64,
    },
}

/// The answer a submitter awaits.
pub(crate) type Done = oneshot::Receiver<Result<(), StorageError>>;

struct Entry {
    /// `None` for a barrier (no bytes; answered when everything before it is applied).
    record: Option<(Kind, Meta)>,
    /// Bytes of block data the call put in the queue's data buffer.
    data_len: u64,
    done: oneshot::Sender<Result<(), StorageError>>,
}

struct Queue {
    /// The block data of the queued calls, end to end.
    buf: Vec<u8>,
    entries: Vec<Entry>,
    /// A leader is running (or about to): new entries will be picked up by it.
    committing: bool,
    /// Log offset where the next group goes.
    end: u64,
    epoch: u64,
    spare: Vec<u8>,
    /// Calls in the last group written, and how long its sync took (see [`linger`]).
    last_group: usize,
    last_sync: Duration,
}

/// The commit queue of one feed.
pub(crate) struct Committer {
    queue: Mutex<Queue>,
    /// Signalled when calls are queued while a leader runs.
    arrived: Condvar,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.lock();
        f.debug_struct("Committer").field("end", &q.end).field("epoch", &q.epoch).finish_non_exhaustive()
    }
}

/// A copy of `e` for each caller of a failed group (`io::Error` is not `Clone`).
fn share(e: &StorageError) -> StorageError {
    match e {
        StorageError::Io { op, path, source } => StorageError::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        StorageError::Corrupt { path, offset, reason } => {
            StorageError::Corrupt { path: path.clone(), offset: *offset, reason: reason.clone() }
        }
    }
}

impl Committer {
    /// A queue whose first record goes at log offset `end`.
    pub(crate) fn new(end: u64) -> Self {
        Self {
            queue: Mutex::new(Queue {
                buf: Vec::new(),
                entries: Vec::new(),
                committing: false,
                end,
                epoch: 0,
                spare: Vec::new(),
                last_group: 0,
                last_sync: Duration::ZERO,
            }),
            arrived: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is only mutated in short sections that cannot panic half-way.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current epoch (bumped by every failed write).
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }
}

/// The data of a queued record: its blocks' bytes, appended to the group buffer. (`pub`
/// because the sealed input trait of `Feed::put_blocks` names it; this module is private.)
pub trait BlockData {
    /// Appends the bytes to `buf`.
    fn append_to(self, buf: &mut Vec<u8>);
}

impl<B: AsRef<[u8]>> BlockData for &[B] {
    fn append_to(self, buf: &mut Vec<u8>) {
        for b in self {
            buf.extend_from_slice(b.as_ref());
        }
    }
}

/// One block's bytes, copied into the group buffer.
#[derive(Debug)]
pub struct Copied<'a>(pub(crate) &'a [u8]);

impl BlockData for Copied<'_> {
    fn append_to(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.0);
    }
}

/// One block's bytes handed over: it becomes the group buffer itself when that is empty (no
/// copy; in memory the log then keeps it as it is).
pub(crate) struct Owned(pub(crate) Vec<u8>);

impl BlockData for Owned {
    fn append_to(self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            *buf = self.0;
        } else {
            buf.extend_from_slice(&self.0);
        }
    }
}

/// Queue records (each: what it is, its meta, its blocks' data) and make sure a leader will
/// write them. Appends pass the `epoch` they were prepared in and are refused if a write
/// failed since; puts (verified against the applied state only) pass `None`.
pub(crate) fn submit<T: Target, D: BlockData>(
    inner: &Arc<T>,
    epoch: Option<u64>,
    records: impl IntoIterator<Item = (Kind, Meta, D)>,
) -> Result<Vec<Done>, StorageError> {
    let mut dones = Vec::new();
    let lead = {
        let mut q = inner.committer().lock();
        if epoch.is_some_and(|e| e != q.epoch) {
            return Err(StorageError::Io {
                op: "write",
                path: inner.store().path().to_path_buf(),
                source: std::io::Error::other("an earlier write of this feed failed; retry"),
            });
        }
        for (kind, meta, blocks) in records {
            let start = q.buf.len();
            blocks.append_to(&mut q.buf);
            let data_len = (q.buf.len() - start) as u64;
            let (done, rx) = oneshot::channel();
            q.entries.push(Entry { record: Some((kind, meta)), data_len, done });
            dones.push(rx);
        }
        !std::mem::replace(&mut q.committing, true)
    };
    if lead {
        start_leader(inner);
    } else {
        inner.committer().arrived.notify_one();
    }
    Ok(dones)
}

/// Wait until every record queued so far is applied (or failed).
pub(crate) async fn barrier(inner: &impl Target) -> Result<(), StorageError> {
    let rx = {
        let mut q = inner.committer().lock();
        if !q.committing {
            return Ok(());
        }
        let (done, rx) = oneshot::channel();
        q.entries.push(Entry { record: None, data_len: 0, done });
        rx
    };
    wait(inner, rx).await
}

/// Await one answer; a leader that vanished (it panicked) is reported as a write error.
pub(crate) async fn wait(inner: &impl Target, rx: Done) -> Result<(), StorageError> {
    rx.await.unwrap_or_else(|_| {
        Err(StorageError::Io {
            op: "write",
            path: inner.store().path().to_path_buf(),
            source: std::io::Error::other("commit task ended without answering"),
        })
    })
}

fn start_leader<T: Target>(inner: &Arc<T>) {
    if inner.store().is_memory() {
        // No I/O to wait for and no await inside: run it here.
        run(inner.as_ref());
    } else {
        let leader = Leader { inner: inner.clone(), finished: false };
        // Detached: it finishes the queue even if every submitter is dropped.
        drop(tokio::task::spawn_blocking(move || leader.lead()));
    }
}

/// Owns a disk leader's task: if the task is dropped without running (the runtime shut down)
/// or `run` panicked, fail what is queued and let the next submitter lead, instead of leaving
/// callers waiting on a leader that will never come.
struct Leader<T: Target> {
    inner: Arc<T>,
    finished: bool,
}

impl<T: Target> Leader<T> {
    fn lead(mut self) {
        run(self.inner.as_ref());
        self.finished = true;
    }
}

impl<T: Target> Drop for Leader<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let entries = {
            let mut q = self.inner.committer().lock();
            q.committing = false;
            q.epoch += 1;
            q.buf.clear();
            std::mem::take(&mut q.entries)
        };
        for entry in entries {
            let _ = entry.done.send(Err(StorageError::Io {
                op: "write",
                path: self.inner.store().path().to_path_buf(),
                source: std::io::Error::other("commit task did not run (runtime shutting down?)"),
            }));
        }
    }
}

/// The leader: write, sync and apply groups until the queue is empty.
fn run(inner: &impl Target) {
    let c = inner.committer();
    let mut header = Vec::new();
    loop {
        let (mut data, entries, at) = {
            let mut q = linger(c, c.lock(), inner.store().is_memory());
            if q.entries.is_empty() {
                q.committing = false;
                return;
            }
            let (count, data_len) = group_size(&q.entries, GROUP_META_LIMIT);
            if count == q.entries.len() {
                let spare = std::mem::take(&mut q.spare);
                let data = std::mem::replace(&mut q.buf, spare);
                (data, std::mem::take(&mut q.entries), q.end)
            } else {
                let rest = q.entries.split_off(count);
                let entries = std::mem::replace(&mut q.entries, rest);
                let rest = q.buf.split_off(data_len);
                (std::mem::replace(&mut q.buf, rest), entries, q.end)
            }
        };
        let metas: Vec<&Meta> = entries.iter().filter_map(|e| e.record.as_ref().map(|(_, m)| m)).collect();
        header.clear();
        let data_len = data.len() as u64;
        let written = if metas.is_empty() {
            Ok(()) // barriers only
        } else {
            encode_header(&metas, data_len, &mut header);
            let store = inner.store();
            let started = Instant::now();
            let data_at = at + header.len() as u64;
            let res = store
                .write_at(at, &header)
                .and_then(|()| {
                    // In memory the log keeps this buffer itself (no copy); disk hands it back.
                    data = store.write_owned(data_at, std::mem::take(&mut data))?.unwrap_or_default();
                    Ok(())
                })
                .and_then(|()| store.sync());
            let mut q = c.lock();
            q.last_group = metas.len();
            q.last_sync = started.elapsed();
            res
        };
        drop(metas);
        if let Err(e) = written {
            tracing::warn!(file = %inner.store().path().display(), offset = at, error = %e, "log write failed");
            // Cut the partial record so the next one starts on a clean tail; if even that
            // fails, replay on open cuts the torn tail.
            let _ = inner.store().truncate(at);
            let later = {
                let mut q = c.lock();
                q.epoch += 1;
                q.buf.clear();
                std::mem::take(&mut q.entries)
            };
            for entry in entries.into_iter().chain(later) {
                let _ = entry.done.send(Err(share(&e)));
            }
            continue;
        }
        let data_at = at + header.len() as u64;
        {
            let mut q = c.lock();
            q.end = data_at + data_len;
            if data.capacity() > 0 && data.capacity() <= KEEP_BUFFER {
                let mut data = data;
                data.clear();
                q.spare = data;
            }
        }
        apply_group(inner, at, data_at, entries);
    }
}

/// How many queued calls the next group takes (at least one; at most `limit` meta bytes
/// unless the first alone is larger), and their data bytes.
fn group_size(entries: &[Entry], limit: usize) -> (usize, usize) {
    let (mut meta, mut data, mut count) = (0usize, 0usize, 0usize);
    for e in entries {
        let m = e.record.as_ref().map_or(0, |(_, m)| m.encoded_len());
        if count > 0 && meta + m > limit {
            break;
        }
        meta += m;
        data += e.data_len as usize;
        count += 1;
    }
    (count, data)
}

/// On disk, after a group of several calls, wait a little (a quarter of the last sync, at
/// most [`MAX_LINGER`]) for as many calls to queue up again before writing: the callers just
/// answered are usually about to submit their next call, and without the wait the next group
/// would hold only the first of them (groups would alternate between 1 and N-1 calls).
/// Sequential callers (groups of one) never wait. Memory storage never waits: its leader runs
/// on the caller's task.
fn linger<'a>(c: &'a Committer, q: MutexGuard<'a, Queue>, memory: bool) -> MutexGuard<'a, Queue> {
    if memory || q.last_group <= 1 || q.entries.len() >= q.last_group {
        return q;
    }
    let wait = (q.last_sync / 4).min(MAX_LINGER);
    let target = q.last_group;
    match c.arrived.wait_timeout_while(q, wait, |q| q.entries.len() < target) {
        Ok((q, _)) => q,
        Err(e) => e.into_inner().0,
    }
}

/// Apply a written group to the state in log order, then wake readers, send events and
/// answer the submitters.
fn apply_group(inner: &impl Target, at: u64, data_at: u64, entries: Vec<Entry>) {
    let mut answers = Vec::with_capacity(entries.len());
    let mut events = Vec::new();
    let mut woken = Vec::new();
    {
        let mut st = inner.state();
        let mut data_offset = data_at;
        for entry in entries {
            let Some((kind, meta)) = &entry.record else {
                answers.push((entry.done, Ok(())));
                continue;
            };
            let old_len = st.length;
            let res = st.apply(meta, data_offset).map_err(|reason| StorageError::Corrupt {
                path: inner.store().path().to_path_buf(),
                offset: at,
                reason,
            });
            data_offset += entry.data_len;
            if res.is_ok() {
                match *kind {
                    Kind::Append { len } => events.push(FeedEvent::Append { len }),
                    Kind::Put { seq } => {
                        woken.extend(st.take_waiters(seq));
                        if st.length > old_len {
                            events.push(FeedEvent::Append { len: st.length });
                        }
                        events.push(FeedEvent::Download { seq });
                    }
                }
            }
            answers.push((entry.done, res));
        }
    }
    for tx in woken {
        let _ = tx.send(());
    }
    for event in events {
        let _ = inner.events().send(event);
    }
    for (done, res) in answers {
        let _ = done.send(res);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Node;

    fn entry(nodes: usize, data_len: u64) -> Entry {
        let node = Node { index: 0, hash: [0; 32], size: 0 };
        let meta = Meta { first_seq: 0, block_count: 1, signature: None, nodes: vec![node; nodes] };
        let (done, _) = oneshot::channel();
        Entry { record: Some((Kind::Put { seq: 0 }, meta)), data_len, done }
    }

    #[test]
    fn groups_are_cut_at_the_meta_limit_but_take_at_least_one_call() {
        // Each meta: 17 bytes + 48 per node.
        let entries = vec![entry(1, 10), entry(1, 20), entry(1, 30)];
        assert_eq!(group_size(&entries, 1 << 20), (3, 60));
        assert_eq!(group_size(&entries, 2 * 65), (2, 30));
        assert_eq!(group_size(&entries, 1), (1, 10));
        let barrier = Entry { record: None, data_len: 0, done: oneshot::channel().0 };
        assert_eq!(group_size(&[barrier], 1), (1, 0));
    }
}
