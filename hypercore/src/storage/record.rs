//! The log record codec: one record per append call or verified put, or one group record for
//! several committed together (layout in `storage.rs`).

use crate::crypto::Signature;
use crate::tree::Node;

/// Magic of a record of one append call or put: ASCII "HCR1".
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"HCR1";
/// Magic of a group record (several calls committed together): ASCII "HCR2".
pub(crate) const GROUP_MAGIC: [u8; 4] = *b"HCR2";
/// Bytes before the meta: magic, meta_len (u32be), data_len (u64be), checksum (32).
pub(crate) const PREFIX_LEN: usize = 4 + 4 + 8 + 32;
/// Largest meta section accepted when reading; appends are capped at
/// [`crate::feed::MAX_BATCH`] blocks, whose nodes take well under this.
pub(crate) const MAX_META_LEN: u32 = 1 << 30;
const NODE_LEN: usize = 8 + 32 + 8;

/// The decoded meta of one append call or put (a group record holds several).
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

impl Meta {
    /// Bytes this meta takes in a record.
    pub(crate) fn encoded_len(&self) -> usize {
        8 + 4 + 4 + 1 + if self.signature.is_some() { 8 + 64 } else { 0 } + NODE_LEN * self.nodes.len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(&self.block_count.to_be_bytes());
        out.extend_from_slice(&(self.nodes.len() as u32).to_be_bytes());
        match &self.signature {
            Some((slot, sig)) => {
                out.push(1);
                out.extend_from_slice(&slot.to_be_bytes());
                out.extend_from_slice(sig.as_bytes());
            }
            None => out.push(0),
        }
        for n in &self.nodes {
            out.extend_from_slice(&n.index.to_be_bytes());
            out.extend_from_slice(&n.hash);
            out.extend_from_slice(&n.size.to_be_bytes());
        }
    }
}

fn checksum(prefix16: &[u8], meta: &[u8]) -> [u8; 32] {
    let mut h = crate::crypto::hash::state_256();
    h.update(b"ims-hypercore-record");
    h.update(prefix16);
    h.update(meta);
    crate::crypto::hash::to_32(&h.finalize())
}

/// Append the prefix and meta of a record holding `metas` (an "HCR1" record for one, a group
/// "HCR2" record for several) whose data, `data_len` bytes, follows right after.
pub(crate) fn encode_header(metas: &[&Meta], data_len: u64, out: &mut Vec<u8>) {
    let base = out.len();
    let group = metas.len() != 1;
    let meta_len = metas.iter().map(|m| m.encoded_len()).sum::<usize>() + if group { 4 } else { 0 };
    out.reserve(PREFIX_LEN + meta_len);
    out.extend_from_slice(if group { &GROUP_MAGIC } else { &RECORD_MAGIC });
    out.extend_from_slice(&(meta_len as u32).to_be_bytes());
    out.extend_from_slice(&data_len.to_be_bytes());
    out.extend_from_slice(&[0u8; 32]);
    if group {
        out.extend_from_slice(&(metas.len() as u32).to_be_bytes());
    }
    for m in metas {
        m.encode(out);
    }
    let record = &mut out[base..];
    let sum = checksum(&record[..16], &record[PREFIX_LEN..]);
    record[16..PREFIX_LEN].copy_from_slice(&sum);
}

/// Append a whole one-call record to `out`; `blocks` are the data of `meta.block_count`
/// blocks in order.
#[cfg(test)]
pub(crate) fn encode<B: AsRef<[u8]>>(meta: &Meta, blocks: &[B], out: &mut Vec<u8>) {
    let data_len: u64 = blocks.iter().map(|b| b.as_ref().len() as u64).sum();
    encode_header(&[meta], data_len, out);
    for b in blocks {
        out.extend_from_slice(b.as_ref());
    }
}

/// The fixed prefix of a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix {
    /// A group record ("HCR2"): the meta starts with a u32be count of metas.
    pub(crate) group: bool,
    pub(crate) meta_len: u32,
    pub(crate) data_len: u64,
    pub(crate) checksum: [u8; 32],
}

/// Parse the prefix; `None` if the magic is wrong.
pub(crate) fn parse_prefix(bytes: &[u8; PREFIX_LEN]) -> Option<Prefix> {
    let group = match bytes[..4].try_into().ok()? {
        RECORD_MAGIC => false,
        GROUP_MAGIC => true,
        _ => return None,
    };
    let meta_len = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
    let data_len = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
    let checksum = bytes[16..48].try_into().ok()?;
    Some(Prefix { group, meta_len, data_len, checksum })
}

/// Check the checksum and decode the metas (one, or a group's), in log order; `Err(reason)`
/// if it is not a valid record.
pub(crate) fn decode_meta(
    prefix_bytes: &[u8; PREFIX_LEN],
    prefix: &Prefix,
    meta: &[u8],
) -> Result<Vec<Meta>, &'static str> {
    if checksum(&prefix_bytes[..16], meta) != prefix.checksum {
        return Err("record checksum mismatch");
    }
    let mut r = Reader { buf: meta };
    let count = if prefix.group { r.u32()? as usize } else { 1 };
    // Each meta takes at least 17 bytes: bound the allocation by what is there.
    let mut metas = Vec::with_capacity(count.min(meta.len() / 17 + 1));
    for _ in 0..count {
        metas.push(decode_one(&mut r)?);
    }
    if !r.buf.is_empty() {
        return Err("node count does not match record length");
    }
    Ok(metas)
}

fn decode_one(r: &mut Reader<'_>) -> Result<Meta, &'static str> {
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
    if r.buf.len() < node_count.checked_mul(NODE_LEN).ok_or("node count overflow")? {
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
        assert_eq!(decode_meta(&pb, &p, m).unwrap(), vec![meta.clone()]);
        let mut bad = m.to_vec();
        bad[3] ^= 1;
        assert!(decode_meta(&pb, &p, &bad).is_err());
    }

    #[test]
    fn group_record_roundtrip() {
        let a = Meta {
            first_seq: 3,
            block_count: 1,
            signature: None,
            nodes: vec![Node { index: 6, hash: [1; 32], size: 1 }],
        };
        let b = Meta {
            first_seq: 9,
            block_count: 1,
            signature: Some((9, Signature::from_bytes(&[5u8; 64]).unwrap())),
            nodes: vec![Node { index: 18, hash: [2; 32], size: 2 }],
        };
        let mut out = Vec::new();
        encode_header(&[&a, &b], 3, &mut out);
        let pb: [u8; PREFIX_LEN] = out[..PREFIX_LEN].try_into().unwrap();
        let p = parse_prefix(&pb).unwrap();
        assert!(p.group && p.data_len == 3);
        assert_eq!(decode_meta(&pb, &p, &out[PREFIX_LEN..]).unwrap(), vec![a, b]);
    }
}
