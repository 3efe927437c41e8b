//! The log record codec: one record per append call or verified put (layout in `storage.rs`).

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;

use crate::crypto::Signature;
use crate::tree::Node;

/// Record magic: ASCII "HCR1".
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"HCR1";
/// Bytes before the meta: magic, meta_len (u32be), data_len (u64be), checksum (32).
pub(crate) const PREFIX_LEN: usize = 4 + 4 + 8 + 32;
/// Largest meta section accepted when reading; appends are capped at
/// [`crate::feed::MAX_BATCH`] blocks, whose nodes take well under this.
pub(crate) const MAX_META_LEN: u32 = 1 << 30;
const NODE_LEN: usize = 8 + 32 + 8;

/// The decoded meta section of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// First block seq whose data this record holds.
    pub(crate) first_seq: u64,
    /// Number of blocks whose data follows (their leaf nodes are among `nodes`).
    pub(crate) block_count: u32,
    /// The signature made or received, with its slot (signed length - 1).
    pub(crate) signature: Option<(u64, Signature)>,
    /// Tree nodes this record adds.
    pub(crate) nodes: Vec<Node>,
}

fn checksum(prefix16: &[u8], meta: &[u8]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    h.update(b"ims-hypercore-record");
    h.update(prefix16);
    h.update(meta);
    h.finalize().into()
}

/// Encode a record into `out` (cleared first); `blocks` are the data of `meta.block_count`
/// blocks in order.
pub(crate) fn encode<B: AsRef<[u8]>>(meta: &Meta, blocks: &[B], out: &mut Vec<u8>) {
    out.clear();
    let data_len: u64 = blocks.iter().map(|b| b.as_ref().len() as u64).sum();
    let meta_len = 8 + 4 + 4 + 1 + if meta.signature.is_some() { 8 + 64 } else { 0 }
        + NODE_LEN * meta.nodes.len();
    out.reserve(PREFIX_LEN + meta_len + data_len as usize);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&(meta_len as u32).to_be_bytes());
    out.extend_from_slice(&data_len.to_be_bytes());
    out.extend_from_slice(&[0u8; 32]);
    out.extend_from_slice(&meta.first_seq.to_be_bytes());
    out.extend_from_slice(&meta.block_count.to_be_bytes());
    out.extend_from_slice(&(meta.nodes.len() as u32).to_be_bytes());
    match &meta.signature {
        Some((slot, sig)) => {
            out.push(1);
            out.extend_from_slice(&slot.to_be_bytes());
            out.extend_from_slice(sig.as_bytes());
        }
        None => out.push(0),
    }
    for n in &meta.nodes {
        out.extend_from_slice(&n.index.to_be_bytes());
        out.extend_from_slice(&n.hash);
        out.extend_from_slice(&n.size.to_be_bytes());
    }
    let sum = checksum(&out[..16], &out[PREFIX_LEN..]);
    out[16..PREFIX_LEN].copy_from_slice(&sum);
    for b in blocks {
        out.extend_from_slice(b.as_ref());
    }
}

/// The fixed prefix of a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix {
    pub(crate) meta_len: u32,
    pub(crate) data_len: u64,
    pub(crate) checksum: [u8; 32],
}

/// Parse the prefix; `None` if the magic is wrong.
pub(crate) fn parse_prefix(bytes: &[u8; PREFIX_LEN]) -> Option<Prefix> {
    if bytes[..4] != RECORD_MAGIC {
        return None;
    }
    let meta_len = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
    let data_len = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
    let checksum = bytes[16..48].try_into().ok()?;
    Some(Prefix { meta_len, data_len, checksum })
}

/// Check the checksum and decode the meta; `Err(reason)` if it is not a valid record.
pub(crate) fn decode_meta(prefix_bytes: &[u8; PREFIX_LEN], prefix: &Prefix, meta: &[u8]) -> Result<Meta, &'static str> {
    if checksum(&prefix_bytes[..16], meta) != prefix.checksum {
        return Err("record checksum mismatch");
    }
    let mut r = Reader { buf: meta };
    let first_seq = r.u64()?;
    let block_count = r.u32()?;
    let node_count = r.u32()? as usize;
    let signature = match r.u8()? {
        0 => None,
        1 => {
            let slot = r.u64()?;
            let sig = Signature::from_bytes(r.take(64)?).map_err(|_| "bad signature")?;
            Some((slot, sig))
        }
        _ => return Err("bad signature flag"),
    };
    if r.buf.len() != node_count.checked_mul(NODE_LEN).ok_or("node count overflow")? {
        return Err("node count does not match record length");
    }
    let mut nodes = Vec::with_capacity(node_count);
    for _ in 0..node_count {
        let index = r.u64()?;
        let hash: [u8; 32] = r.take(32)?.try_into().map_err(|_| "short node")?;
        let size = r.u64()?;
        nodes.push(Node { index, hash, size });
    }
    Ok(Meta { first_seq, block_count, signature, nodes })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.buf.len() < n {
            return Err("record meta too short");
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "short")?))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "short")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_checksum() {
        let meta = Meta {
            first_seq: 7,
            block_count: 1,
            signature: Some((7, Signature::from_bytes(&[9u8; 64]).unwrap())),
            nodes: vec![Node { index: 14, hash: [3u8; 32], size: 2 }],
        };
        let mut out = Vec::new();
        encode(&meta, &[b"hi"], &mut out);
        let pb: [u8; PREFIX_LEN] = out[..PREFIX_LEN].try_into().unwrap();
        let p = parse_prefix(&pb).unwrap();
        assert_eq!(p.data_len, 2);
        let m = &out[PREFIX_LEN..PREFIX_LEN + p.meta_len as usize];
        assert_eq!(decode_meta(&pb, &p, m).unwrap(), meta);
        let mut bad = m.to_vec();
        bad[3] ^= 1;
        assert!(decode_meta(&pb, &p, &bad).is_err());
    }
}
