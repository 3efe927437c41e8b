//! The `ims/prefetch` feed extension: the verifiable form of the original ims `resolve`
//! (wire spec §7.5 carries it; DESIGN.md "The index" asks for it: every block a resolution
//! touches in one round trip).
//!
//! ```text
//! reader ── Extension "ims/prefetch" { keys, have: RLE bitfield of the blocks it holds } ──▶ peer
//! reader ◀── Data(seq, value, shared proof) × n ── every block those lookups touch that the
//!                                                  reader lacks, in ascending order
//! reader ◀── Extension "ims/prefetch" { sent: n } ── end of the batch
//! ```
//!
//! One round trip: the peer runs the lookups on its own copy through a [`BlockPlanner`] (the
//! hypertrie crate supplies one; hypercore knows nothing of tries). The proofs are minimal for
//! the answer as a whole: a block's proof leaves out the nodes the reader holds (the leaves of
//! its `have` blocks and their full parents, the roots of its `length`) and every node (and the
//! signature) an earlier block of the same answer carried; typically only the first block
//! carries the roots and the signature. The reader verifies the Data in order, each with every
//! node of its proof checked and stored (also those above a node it already held), so a later
//! proof can rely on them; a proof that relies on a node the reader does not hold fails
//! verification and ends the connection. Data is accepted unrequested only while the reader's
//! prefetch is outstanding, and at most [`MAX_PREFETCH_BLOCKS`] of it.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use crate::feed::Feed;
use crate::proof::Proof;
use crate::protocol::{Data, DataNode};

/// The extension's name, advertised in `Options.extensions` on every feed channel.
pub const PREFETCH_EXTENSION: &str = "ims/prefetch";
/// Most keys one prefetch may carry (more are refused by the peer).
pub const MAX_PREFETCH_KEYS: usize = 4096;
/// Longest key accepted in a prefetch.
pub const MAX_PREFETCH_KEY_LEN: usize = 4096;
/// Most blocks one prefetch answer carries (the peer stops there; the reader falls back to
/// ordinary requests for the rest, and treats more as unrequested Data: verified, dropped,
/// and the peer disconnected after [`super::MAX_UNSOLICITED`] of them).
pub const MAX_PREFETCH_BLOCKS: u64 = 16_384;
/// Largest `have` bitfield accepted (decoded bytes: 8 Mi blocks).
pub const MAX_HAVE_BYTES: usize = 1 << 20;

/// The future a [`BlockPlanner`] returns.
pub type PlanFuture<'a> = Pin<Box<dyn Future<Output = Result<BTreeSet<u64>, String>> + Send + 'a>>;

/// Says which blocks of `feed` the lookups of `keys` read (e.g. hypertrie's touched set).
/// It runs on the serving peer, over its own local copy.
pub trait BlockPlanner: Send + Sync + 'static {
    /// The union of the block seqs the lookups of `keys` read in `feed`.
    fn blocks<'a>(&'a self, feed: &'a Feed, keys: &'a [String]) -> PlanFuture<'a>;
}

/// The extension's payload: a request (`keys`, `have`) or the end of an answer (`sent`).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PrefetchMessage {
    /// Request: the keys the reader is about to look up.
    #[prost(string, repeated, tag = "1")]
    pub keys: Vec<String>,
    /// Request: RLE bitfield (wire spec §8.3) of the blocks the reader already holds.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub have: Option<Vec<u8>>,
    /// Answer: how many Data messages preceded this one.
    #[prost(uint64, optional, tag = "3")]
    pub sent: Option<u64>,
    /// Request: the reader's verified length (it holds those roots). Optional; an older peer
    /// ignores it and only proves more.
    #[prost(uint64, optional, tag = "4")]
    pub length: Option<u64>,
}

impl PrefetchMessage {
    /// Encodes the payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Decodes and bounds-checks a payload from a peer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let msg: Self = prost::Message::decode(bytes).map_err(|e| e.to_string())?;
        if msg.keys.len() > MAX_PREFETCH_KEYS {
            return Err(format!("{} keys, more than {MAX_PREFETCH_KEYS}", msg.keys.len()));
        }
        if msg.keys.iter().any(|k| k.len() > MAX_PREFETCH_KEY_LEN) {
            return Err(format!("a key longer than {MAX_PREFETCH_KEY_LEN} bytes"));
        }
        Ok(msg)
    }
}

/// The Data messages answering a prefetch for `seqs` (ascending; blocks this feed holds) from a
/// reader whose request carried `have` (decoded: MSB-first bits of the blocks it holds) and
/// `length`: values with shared, minimal proofs (see the module docs), to be verified in this
/// order with [`Feed::put_blocks`] and [`PutOptions::every_node`](crate::PutOptions::every_node). The proofs are built up front (nodes only); each
/// value is read when its Data is taken. Stops at the first block that cannot be read or
/// proved (the later proofs may rely on it).
pub fn answer<'a>(
    feed: &'a Feed,
    seqs: &[u64],
    have: &[u8],
    length: Option<u64>,
) -> impl Iterator<Item = Data> + 'a {
    feed.shared_proofs(seqs, have, length).into_iter().map_while(move |proof| {
        let value = feed.get_local_shared(proof.index).ok().flatten()?;
        Some(data_message(Some(value), &proof))
    })
}

/// The Data message carrying `value` (none for a hash-only answer) with `proof`, for the
/// block `proof.index`.
pub fn data_message(value: Option<bytes::Bytes>, proof: &Proof) -> Data {
    Data {
        index: proof.index,
        value,
        nodes: proof
            .nodes
            .iter()
            .map(|n| DataNode { index: n.index, hash: n.hash.to_vec(), size: n.size })
            .collect(),
        signature: proof.signature.map(|s| s.as_bytes().to_vec()),
    }
}
