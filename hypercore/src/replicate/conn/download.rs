//! The download half of a connection: Data received (verified with the leaf hash its burst
//! computed, stored without waiting for the sync, a bounded number in flight), what the peer
//! announced (Haves), the Wants and Requests we send (wire spec §8.2–8.6), our prefetch
//! (started by a router command, done once its answer is stored), and request timeouts.

use tokio::time::Instant;

use super::{Chan, Conn, Incoming, MAX_HAVE_RANGE, Pending, WINDOW};
use crate::crypto::{DiscoveryKey, Signature, leaf_hash, leaf_hashes};
use crate::error::VerifyError;
use crate::feed::{Prehashed, PutOptions};
use crate::proof::Proof;
use crate::protocol::{ChannelMessage, Data, Have, Message, Request, Want, rle};
use crate::replicate::prefetch::{MAX_PREFETCH_BLOCKS, PREFETCH_EXTENSION, PrefetchMessage};
use crate::replicate::router::Command;
use crate::replicate::{MAX_BLOCK_INDEX, MAX_UNSOLICITED, MAX_UNSOLICITED_BYTES, ReplicateError};
use crate::tree::Node;

/// How far past our own length the peer's announced blocks are remembered (2 MiB of bits).
const MAX_REMOTE_AHEAD: u64 = 1 << 24;
/// Verified blocks whose write may still be in progress before we wait for the oldest.
const MAX_STORING: usize = 32;

pub(super) fn data_value(msg: &ChannelMessage) -> Option<&[u8]> {
    match &msg.message {
        Message::Data(data) => data.value.as_deref(),
        _ => None,
    }
}

/// The leaf hashes of the values of a burst's Data messages, in order, computed together
/// ([`leaf_hashes`]: four at a time with AVX2).
pub(super) fn burst_leaves(burst: &Incoming) -> std::vec::IntoIter<[u8; 32]> {
    let values: Vec<&[u8]> = burst.iter().filter_map(data_value).collect();
    leaf_hashes(&values).into_iter()
}

fn to_proof(dk: DiscoveryKey, data: &Data) -> Result<Proof, ReplicateError> {
    let bad = |reason| ReplicateError::BadData { feed: dk, seq: data.index, reason };
    // Flat-tree indexes of blocks up to MAX_BLOCK_INDEX stay below 2^55: nothing the tree
    // computes from them can overflow.
    if data.index > MAX_BLOCK_INDEX {
        return Err(bad("block index past the largest a feed can have"));
    }
    if data.nodes.iter().any(|n| n.index > 4 * MAX_BLOCK_INDEX) {
        return Err(bad("tree node index past the largest a feed can have"));
    }
    let nodes = data
        .nodes
        .iter()
        .map(|n| {
            Ok(Node {
                index: n.index,
                hash: n.hash.as_slice().try_into().map_err(|_| bad("node hash is not 32 bytes"))?,
                size: n.size,
            })
        })
        .collect::<Result<Vec<_>, ReplicateError>>()?;
    let signature = match &data.signature {
        Some(s) => Some(Signature::from_bytes(s).map_err(|_| bad("signature is not 64 bytes"))?),
        None => None,
    };
    Ok(Proof { index: data.index, nodes, signature })
}

impl Conn {
    /// `leaf`: the value's leaf hash, if it was computed with its burst's.
    pub(super) async fn on_data(
        &mut self,
        local_id: u64,
        data: Data,
        leaf: Option<[u8; 32]>,
    ) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let (dk, seq) = (chan.dk, data.index);
        let requested = chan.inflight.remove(&seq).is_some();
        let prefetched = !requested
            && match &mut chan.prefetch {
                Some(p) if p.received < MAX_PREFETCH_BLOCKS => {
                    p.received += 1;
                    true
                }
                _ => false,
            };
        let proof = to_proof(dk, &data)?;
        let value: Vec<u8> =
            data.value.ok_or(ReplicateError::BadData { feed: dk, seq, reason: "no value" })?.into();
        let verify = |source| ReplicateError::Verify { feed: dk, source };
        if !requested && !prefetched {
            // JS drops Data it did not ask for. A forged one still ends the connection, and a
            // run of them is a flood: bounded by count and bytes.
            chan.feed.verify(seq, &value, &proof).map_err(verify)?;
            chan.unsolicited.0 += 1;
            chan.unsolicited.1 += value.len() as u64;
            let (count, bytes) = chan.unsolicited;
            if count > MAX_UNSOLICITED || bytes > MAX_UNSOLICITED_BYTES {
                return Err(ReplicateError::Unrequested { feed: dk, seq, count });
            }
            tracing::trace!(feed = %dk, seq, count, "dropped a valid block we did not request");
            return Ok(());
        }
        chan.unsolicited = (0, 0);
        let leaf = leaf.unwrap_or_else(|| leaf_hash(&value));
        // Verify now; the write and its sync overlap with the next blocks (shared syncs).
        let pending = if prefetched {
            // A shared proof may rely on nodes of an earlier block still being written (on
            // disk they are applied once synced): on failure, wait for those and check again.
            let every_node = PutOptions { every_node: true };
            let block = || Prehashed { seq, data: &value[..], leaf, proof: &proof };
            match chan.feed.put_blocks(block(), every_node).await {
                Ok(p) => p,
                Err(_) if !chan.storing.is_empty() => {
                    for (_, earlier) in chan.storing.drain(..) {
                        earlier.durable().await.map_err(|e| verify(VerifyError::Storage(e)))?;
                    }
                    chan.feed.put_blocks(block(), every_node).await.map_err(verify)?
                }
                Err(e) => return Err(verify(e)),
            }
        } else {
            // Handed over: stored without another copy.
            let block = Prehashed { seq, data: value, leaf, proof: &proof };
            chan.feed.put_blocks(block, PutOptions::default()).await.map_err(verify)?
        };
        chan.storing.push_back((seq, pending));
        while chan.storing.len() > MAX_STORING {
            if let Some((_, oldest)) = chan.storing.pop_front() {
                oldest.durable().await.map_err(|e| verify(VerifyError::Storage(e)))?;
            }
        }
        self.stats.downloaded += 1;
        // Refill the window once a quarter of it is free, not after every block: the
        // Requests then leave in one write and reach the peer in one read.
        let max = self.opts.max_inflight.max(1);
        if self.chans.get(&local_id).is_some_and(|c| c.inflight.len() + max / 4 <= max) {
            self.request_more(local_id).await?;
        }
        Ok(())
    }

    /// Requests the blocks this feed wants that the peer has, up to the in-flight limit.
    pub(super) async fn request_more(&mut self, local_id: u64) -> Result<(), ReplicateError> {
        let max = self.opts.max_inflight.max(1);
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        if !chan.joined || !chan.remote_uploading || chan.feed.writable() || chan.inflight.len() >= max {
            return Ok(());
        }
        let feed = chan.feed.clone();
        let mut candidates = Vec::new();
        // Live: learn a longer signed length by fetching the peer's last block.
        if chan.remote_len > feed.len() {
            candidates.push(chan.remote_len - 1);
        }
        if let Some(router) = &self.opts.router {
            candidates.extend(router.wanted(&chan.dk, |s| !feed.has(s)));
        }
        let mut out = Vec::new();
        let mut ask = |chan: &mut Chan, seq: u64| {
            if chan.inflight.contains_key(&seq) || feed.has(seq) || chan.is_storing(seq) {
                return;
            }
            let window = seq / WINDOW;
            if chan.windows.insert(window) {
                out.push(Message::Want(Want { start: window * WINDOW, length: Some(WINDOW) }));
            }
            if chan.remote.get(seq) {
                chan.inflight.insert(seq, Instant::now());
                out.push(Message::Request(Request::new(seq, false, feed.digest(seq))));
            }
        };
        for seq in candidates {
            if chan.inflight.len() >= max {
                break;
            }
            ask(chan, seq);
        }
        if self.opts.download_all {
            // In order; a block the peer has not announced yet stops the walk until it does.
            while chan.cursor < chan.remote_len && chan.inflight.len() < max {
                let seq = chan.cursor;
                if !feed.has(seq)
                    && !chan.inflight.contains_key(&seq)
                    && !chan.is_storing(seq)
                    && !chan.remote.get(seq)
                {
                    break;
                }
                chan.cursor += 1;
                ask(chan, seq);
            }
        }
        for m in out {
            if matches!(m, Message::Request(_)) {
                self.stats.requests += 1;
            }
            self.send(local_id, m).await?;
        }
        Ok(())
    }

    pub(super) async fn on_command(&mut self, dk: DiscoveryKey, cmd: Command) -> Result<(), ReplicateError> {
        let Command::Prefetch { keys, done } = cmd;
        let Some((&id, chan)) = self.chans.iter_mut().find(|(_, c)| c.dk == dk && c.joined) else {
            let _ = done.send(Err(ReplicateError::NoPeer { feed: dk }));
            return Ok(());
        };
        if !chan.remote_prefetch {
            // The peer does not speak it (e.g. JS): the reader falls back to requests.
            let _ = done.send(Ok(0));
            return Ok(());
        }
        if chan.prefetch.is_some() {
            let _ = done.send(Err(ReplicateError::Busy { feed: dk }));
            return Ok(());
        }
        let bits = chan.feed.bitfield();
        let have = rle::encode(&bits.bytes(0, chan.feed.len().div_ceil(8)));
        let length = Some(chan.feed.len());
        let payload = PrefetchMessage { keys, have: Some(have), sent: None, length }.to_bytes();
        chan.prefetch = Some(Pending { done, received: 0, since: Instant::now() });
        if let Some(msg) = self.session.extension(Some(id), PREFETCH_EXTENSION, payload) {
            self.out.send(&msg).await?;
        }
        Ok(())
    }

    /// The end of our prefetch's answer (`sent` Data in it): done once every block of it is
    /// readable.
    pub(super) async fn on_prefetch_answered(
        &mut self,
        local_id: u64,
        sent: u64,
    ) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let dk = chan.dk;
        // The end of our prefetch's answer. Its last blocks may still be being written:
        // the prefetch is done once every one is readable, so the reads it was made for
        // find them instead of asking the peer again.
        if let Some(p) = chan.prefetch.take() {
            for (_, pending) in chan.storing.drain(..) {
                pending
                    .durable()
                    .await
                    .map_err(|e| ReplicateError::Verify { feed: dk, source: VerifyError::Storage(e) })?;
            }
            tracing::debug!(feed = %dk, sent, received = p.received, "prefetch answered");
            let _ = p.done.send(Ok(p.received));
        }
        self.request_more(local_id).await?;
        Ok(())
    }

    pub(super) fn check_timeouts(&mut self) -> Result<(), ReplicateError> {
        let after = self.opts.request_timeout;
        for chan in self.chans.values() {
            if let Some((&seq, _)) = chan.inflight.iter().find(|(_, t)| t.elapsed() > after) {
                return Err(ReplicateError::RequestTimeout { feed: chan.dk, seq, after });
            }
            if chan.prefetch.as_ref().is_some_and(|p| p.since.elapsed() > after) {
                return Err(ReplicateError::Prefetch {
                    feed: chan.dk,
                    reason: format!("no answer within {after:?}"),
                });
            }
        }
        Ok(())
    }
}

/// Records what a Have says the peer holds. Bits are kept only below our length plus
/// [`MAX_REMOTE_AHEAD`], so Haves at scattered far offsets cannot grow memory without bound;
/// a claimed length beyond that is still learned (and must then be proven by a signature).
pub(super) fn on_have(chan: &mut Chan, have: &Have) -> Result<(), ReplicateError> {
    let length = have.length.unwrap_or(1);
    let bad = |reason| ReplicateError::Announce { feed: chan.dk, reason };
    if have.start > MAX_BLOCK_INDEX || have.start.saturating_add(length) > MAX_BLOCK_INDEX + 1 {
        return Err(bad("a Have past the largest block index"));
    }
    let range = length.min(MAX_HAVE_RANGE);
    chan.charge_announcements(range)?;
    let limit = chan.feed.len().saturating_add(MAX_REMOTE_AHEAD);
    match &have.bitfield {
        Some(bits) if have.start.is_multiple_of(8) => {
            // The decoder pads to a multiple of 4 bytes.
            let max = usize::try_from(range.div_ceil(32) * 4).unwrap_or(0);
            let Ok(bytes) = rle::decode(bits, max.max(4)) else { return Ok(()) };
            let mut top = None;
            for (i, b) in bytes.iter().enumerate().filter(|(_, b)| **b != 0) {
                for k in 0..8u64 {
                    if b & (0x80 >> k) != 0 {
                        // start <= 2^53 and i < 2^21: no overflow.
                        let seq = have.start + 8 * i as u64 + k;
                        if seq < limit {
                            chan.remote.set(seq, true);
                        }
                        top = Some(seq);
                    }
                }
            }
            if let Some(top) = top {
                chan.remote_len = chan.remote_len.max(top.saturating_add(1).min(MAX_BLOCK_INDEX + 1));
            }
        }
        Some(_) => {}
        None => {
            let end = have.start.saturating_add(range);
            for seq in have.start..end.min(limit) {
                chan.remote.set(seq, true);
            }
            chan.remote_len = chan.remote_len.max(end);
        }
    }
    Ok(())
}
