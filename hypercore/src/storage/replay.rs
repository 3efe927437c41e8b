//! Crash replay on open: scan the record headers in order, hand each call to the caller, and
//! cut off a torn tail record (the rules are in the parent module's "Crash safety").

use super::record::Meta;
use super::{HEADER_LEN, Store, corrupt};
use crate::crypto::leaf_hash;
use crate::error::StorageError;

/// Replay every record: calls `apply(meta, data_offset)` in order and returns the log end.
/// Cuts off an incomplete tail record (see the parent module docs); reports other damage.
pub(crate) fn replay(
    store: &Store,
    mut apply: impl FnMut(Meta, u64) -> Result<(), String>,
) -> Result<u64, StorageError> {
    let path = store.path().to_path_buf();
    let file_len = store.len()?;
    let mut pos = HEADER_LEN;
    let mut reader = ReadAhead { store, file_len, start: 0, buf: Vec::new() };
    let mut prefix_bytes = [0u8; super::record::PREFIX_LEN];
    let mut meta_buf = Vec::new();
    while pos < file_len {
        let torn = |reason: &str| {
            tracing::warn!(file = %path.display(), offset = pos, reason, "cutting off incomplete tail record");
        };
        if file_len - pos < super::record::PREFIX_LEN as u64 {
            torn("short prefix");
            store.truncate(pos)?;
            return Ok(pos);
        }
        reader.read(pos, &mut prefix_bytes)?;
        let Some(prefix) = super::record::parse_prefix(&prefix_bytes) else {
            if is_zero_tail(store, pos, file_len)? {
                torn("zero-filled tail");
                store.truncate(pos)?;
                return Ok(pos);
            }
            return Err(corrupt(&path, pos, "bad record magic"));
        };
        let meta_start = pos + super::record::PREFIX_LEN as u64;
        let data_start = meta_start + u64::from(prefix.meta_len);
        let end = data_start.saturating_add(prefix.data_len);
        if prefix.meta_len > super::record::MAX_META_LEN || end > file_len {
            torn("record runs past the end of the file");
            store.truncate(pos)?;
            return Ok(pos);
        }
        let is_last = end == file_len;
        meta_buf.resize(prefix.meta_len as usize, 0);
        reader.read(meta_start, &mut meta_buf)?;
        let metas = match super::record::decode_meta(&prefix_bytes, &prefix, &meta_buf) {
            Ok(metas) => metas,
            Err(reason) if is_last => {
                torn(reason);
                store.truncate(pos)?;
                return Ok(pos);
            }
            Err(reason) => return Err(corrupt(&path, pos, reason)),
        };
        // The leaf nodes of each call's blocks must account for exactly the record's data.
        let sizes: Vec<Vec<u64>> = metas.iter().map(leaf_sizes).collect();
        let total = sizes.iter().flatten().try_fold(0u64, |acc, s| acc.checked_add(*s));
        if total != Some(prefix.data_len)
            || metas.iter().zip(&sizes).any(|(m, s)| s.len() != m.block_count as usize)
        {
            if is_last {
                torn("leaf sizes do not match data length");
                store.truncate(pos)?;
                return Ok(pos);
            }
            return Err(corrupt(&path, pos, "leaf sizes do not match data length"));
        }
        if is_last && !tail_data_ok(store, &metas, data_start)? {
            torn("data does not match leaf hashes");
            store.truncate(pos)?;
            return Ok(pos);
        }
        let mut data_offset = data_start;
        for (meta, sizes) in metas.into_iter().zip(&sizes) {
            apply(meta, data_offset).map_err(|reason| corrupt(&path, pos, reason))?;
            data_offset += sizes.iter().sum::<u64>();
        }
        pos = end;
    }
    Ok(pos)
}

/// Bytes read ahead at a time while replaying: record headers are small and mostly adjacent,
/// so this turns two syscalls per record into one per megabyte.
const READ_AHEAD: usize = 1 << 20;

/// A read-ahead window over the log for the sequential replay scan.
struct ReadAhead<'a> {
    store: &'a Store,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl ReadAhead<'_> {
    /// Fill `out` from `offset`; the caller has checked the range lies within the file.
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), StorageError> {
        let end = offset + out.len() as u64;
        if offset < self.start || end > self.start + self.buf.len() as u64 {
            if out.len() > READ_AHEAD {
                return self.store.read_at(offset, out);
            }
            let n = (self.file_len.saturating_sub(offset)).min(READ_AHEAD as u64) as usize;
            self.buf.resize(n.max(out.len()), 0);
            self.store.read_at(offset, &mut self.buf)?;
            self.start = offset;
        }
        let i = (offset - self.start) as usize;
        out.copy_from_slice(&self.buf[i..i + out.len()]);
        Ok(())
    }
}

/// The sizes of the leaf nodes of a call's blocks, in block order (shorter if some are
/// missing). Linear in the nodes: a batch may hold a million blocks.
fn leaf_sizes(meta: &Meta) -> Vec<u64> {
    leaves(meta).into_iter().map_while(|l| l.map(|n| n.size)).collect()
}

/// The leaf node of each of a call's blocks, in block order, `None` where it is missing.
fn leaves(meta: &Meta) -> Vec<Option<&crate::tree::Node>> {
    let count = meta.block_count as usize;
    let mut out = vec![None; count.min(meta.nodes.len())];
    for n in &meta.nodes {
        if n.index % 2 == 0
            && let Some(k) = (n.index / 2).checked_sub(meta.first_seq)
            && let Some(slot) = out.get_mut(k as usize)
            && slot.is_none()
        {
            *slot = Some(n);
        }
    }
    out
}

fn tail_data_ok(store: &Store, metas: &[Meta], data_start: u64) -> Result<bool, StorageError> {
    let mut off = data_start;
    let mut buf = Vec::new();
    for meta in metas {
        let leaves = leaves(meta);
        if leaves.len() != meta.block_count as usize {
            return Ok(false);
        }
        for leaf in leaves {
            let Some(leaf) = leaf else { return Ok(false) };
            buf.resize(leaf.size as usize, 0);
            store.read_at(off, &mut buf)?;
            if leaf_hash(&buf) != leaf.hash {
                return Ok(false);
            }
            off += leaf.size;
        }
    }
    Ok(true)
}

fn is_zero_tail(store: &Store, pos: u64, file_len: u64) -> Result<bool, StorageError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = pos;
    while off < file_len {
        let n = ((file_len - off) as usize).min(buf.len());
        store.read_at(off, &mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        off += n as u64;
    }
    Ok(true)
}
