//! The upload half of a connection: a peer's Want answered with what we hold (Haves),
//! its Requests with Data and the minimal proof for its digest (wire spec §8.2–8.5), our
//! feeds' appends and downloads announced to peers that sent a Want, and peers' prefetches
//! answered (`ims/prefetch`, wire spec §7.5). Writes of these messages are batched by the
//! message stream (`protocol/stream.rs`).

use std::collections::BTreeSet;

use super::{Conn, MAX_HAVE_RANGE};
use crate::crypto::DiscoveryKey;
use crate::proof::ProofOptions;
use crate::protocol::{Have, Message, Request, Want, rle};
use crate::replicate::ReplicateError;
use crate::replicate::prefetch::{
    MAX_HAVE_BYTES, MAX_PREFETCH_BLOCKS, PREFETCH_EXTENSION, PrefetchMessage, data_message,
};
use crate::state::FeedEvent;

impl Conn {
    pub(super) async fn on_want(&mut self, local_id: u64, want: Want) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let length = want.length.unwrap_or(0);
        // JS ignores unaligned Wants (wire spec §8.2).
        if !want.start.is_multiple_of(8192) || !length.is_multiple_of(8192) {
            return Ok(());
        }
        if want.start > crate::replicate::MAX_BLOCK_INDEX {
            return Err(ReplicateError::Announce {
                feed: chan.dk,
                reason: "a Want past the largest block index",
            });
        }
        // What answering costs: the range of our bitfield encoded (clipped below).
        chan.charge_announcements(
            length.min(MAX_HAVE_RANGE).min(chan.feed.len().saturating_sub(want.start)),
        )?;
        chan.remote_wants = true;
        let feed = chan.feed.clone();
        let len = feed.len();
        chan.announced = chan.announced.max(len);
        if len > 0 && feed.has(len - 1) {
            self.send(local_id, Message::Have(Have { start: len - 1, ..Default::default() })).await?;
        }
        let bits = feed.bitfield();
        let end = want.start.saturating_add(length.min(MAX_HAVE_RANGE)).min(bits.bit_len().max(want.start));
        let bytes = bits.bytes(want.start / 8, end.div_ceil(8));
        let have =
            Have { start: want.start, length: Some(length), bitfield: Some(rle::encode(&bytes)), ack: None };
        self.send(local_id, Message::Have(have)).await?;
        Ok(())
    }

    pub(super) async fn on_request(&mut self, local_id: u64, req: Request) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get(&local_id) else { return Ok(()) };
        let feed = chan.feed.clone();
        let seq = match req.bytes {
            Some(bytes) if bytes > 0 => match feed.seek(bytes) {
                Ok((seq, _)) => seq,
                Err(_) => return Ok(()),
            },
            _ => req.index,
        };
        if !feed.has(seq) {
            return Ok(());
        }
        let hash = req.hash.unwrap_or(false);
        let opts = ProofOptions { digest: req.nodes.unwrap_or(0), hash };
        let value = if hash { None } else { feed.get_local_shared(seq).ok().flatten() };
        let proof = match feed.proof_with(seq, opts) {
            Ok((proof, _)) => proof,
            Err(e) => {
                tracing::debug!(feed = %chan.dk, seq, error = %e, "cannot prove a requested block");
                return Ok(());
            }
        };
        if !hash && value.is_none() {
            return Ok(());
        }
        self.send(local_id, Message::Data(data_message(value, &proof))).await?;
        self.stats.uploaded += 1;
        Ok(())
    }

    pub(super) async fn on_feed_event(
        &mut self,
        dk: DiscoveryKey,
        ev: FeedEvent,
    ) -> Result<(), ReplicateError> {
        let ids: Vec<u64> =
            self.chans.iter().filter(|(_, c)| c.dk == dk && c.joined).map(|(id, _)| *id).collect();
        for id in ids {
            let Some(chan) = self.chans.get_mut(&id) else { continue };
            if !chan.remote_wants {
                continue;
            }
            let have = match ev {
                FeedEvent::Append { len } if len > chan.announced => {
                    let start = chan.announced;
                    chan.announced = len;
                    let length = (len - start > 1).then_some(len - start);
                    Have { start, length, ..Default::default() }
                }
                FeedEvent::Download { seq } if chan.remote.get(seq) => continue,
                FeedEvent::Download { seq } => Have { start: seq, ..Default::default() },
                _ => continue,
            };
            self.send(id, Message::Have(have)).await?;
        }
        Ok(())
    }

    /// Answers the peer's prefetch: the blocks its lookups touch that it lacks, each with the
    /// proof it needs after the ones before (see [`crate::replicate::prefetch::answer`]), then
    /// how many were sent.
    pub(super) async fn answer_prefetch(
        &mut self,
        local_id: u64,
        msg: PrefetchMessage,
    ) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get(&local_id) else { return Ok(()) };
        let dk = chan.dk;
        let have = match &msg.have {
            Some(rle_bits) => rle::decode(rle_bits, MAX_HAVE_BYTES)
                .map_err(|e| ReplicateError::Prefetch { feed: dk, reason: e.to_string() })?,
            None => Vec::new(),
        };
        let feed = chan.feed.clone();
        let blocks = match &self.opts.planner {
            Some(planner) => planner.blocks(&feed, &msg.keys).await.unwrap_or_else(|e| {
                tracing::debug!(feed = %dk, error = %e, "prefetch planning failed");
                BTreeSet::new()
            }),
            None => BTreeSet::new(),
        };
        let has_bit = |seq: u64| {
            usize::try_from(seq / 8)
                .ok()
                .and_then(|i| have.get(i))
                .is_some_and(|b| b & (0x80 >> (seq % 8)) != 0)
        };
        let seqs: Vec<u64> = blocks
            .into_iter()
            .filter(|&seq| !has_bit(seq) && feed.has(seq))
            .take(MAX_PREFETCH_BLOCKS as usize)
            .collect();
        let mut sent = 0u64;
        for data in crate::replicate::prefetch::answer(&feed, &seqs, &have, msg.length) {
            self.send(local_id, Message::Data(data)).await?;
            sent += 1;
        }
        self.stats.uploaded += sent;
        let reply = PrefetchMessage { sent: Some(sent), ..PrefetchMessage::default() }.to_bytes();
        if let Some(msg) = self.session.extension(Some(local_id), PREFETCH_EXTENSION, reply) {
            self.out.send(&msg).await?;
        }
        Ok(())
    }
}
