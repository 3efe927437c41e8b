//! The trie field of a node (`trieBuffer`, spec §6.6; JS `lib/trie.js`): per path position, a
//! bucket of slots, slot `v + 5m` holding the `m`-th pointer (a block seq) for digit `v`.

use crate::error::DecodeError;
use crate::varint;

/// The most slots a bucket can have: JS builds the slot mask with 32-bit integer operations.
pub(crate) const MAX_SLOTS: usize = 31;

/// A decoded trie field: the buckets of a stored node, by ascending path position.
///
/// Kept compact (one index entry per bucket, all slots in one vector) because a node is decoded
/// for every block a lookup visits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Buckets {
    /// `(position, start in slots, slot count)`, ascending by position.
    index: Vec<(u32, u32, u32)>,
    /// The slots of every bucket, 0 = empty.
    slots: Vec<u64>,
    /// The array length the field declares (JS `trie.length`).
    declared_len: u64,
}

impl Buckets {
    /// Decode a trie field of the node stored at block `seq`. Every pointer must name an earlier
    /// block, which also rules out cycles: each step of a walk goes to a smaller seq.
    pub(crate) fn decode(mut buf: &[u8], seq: u64) -> Result<Self, DecodeError> {
        if buf.is_empty() {
            return Ok(Self::default());
        }
        let declared_len = varint::decode(&mut buf)?;
        let mut out = Self { declared_len, ..Self::default() };
        let mut last: Option<u64> = None;
        while !buf.is_empty() {
            let position = varint::decode(&mut buf)?;
            if last.is_some_and(|l| position <= l) {
                return Err(DecodeError::BucketOrder { position });
            }
            last = Some(position);
            let mask = varint::decode(&mut buf)?;
            let (Ok(pos32), Ok(mask)) = (u32::try_from(position), u32::try_from(mask)) else {
                return Err(DecodeError::BucketTooLarge { position });
            };
            let start = out.slots.len();
            let count = (32 - mask.leading_zeros()) as usize;
            for bit in 0..count {
                let pointer = if mask & (1 << bit) != 0 { varint::decode(&mut buf)? } else { 0 };
                if pointer != 0 && pointer >= seq {
                    return Err(DecodeError::PointerNotBefore { pointer });
                }
                out.slots.push(pointer);
            }
            // At most 32 slots per bucket and the buffer bounds the bucket count, so these fit.
            out.index.push((pos32, start as u32, count as u32));
        }
        Ok(out)
    }

    /// The slots of the bucket at path position `i` (empty if there is none).
    #[inline]
    pub(crate) fn bucket(&self, i: usize) -> &[u64] {
        let Ok(i) = u32::try_from(i) else { return &[] };
        match self.index.binary_search_by_key(&i, |e| e.0) {
            Ok(at) => {
                let (_, start, count) = self.index[at];
                &self.slots[start as usize..(start + count) as usize]
            }
            Err(_) => &[],
        }
    }

    /// The array form JS decodes to: by position, `None` or the bucket's slots.
    #[cfg(test)]
    pub(crate) fn to_dense(&self) -> Vec<Option<Vec<u64>>> {
        let mut out = vec![None; self.declared_len as usize];
        for &(pos, start, count) in &self.index {
            if pos as usize >= out.len() {
                out.resize(pos as usize + 1, None);
            }
            out[pos as usize] = Some(self.slots[start as usize..(start + count) as usize].to_vec());
        }
        out
    }
}

/// The trie of a node being written: buckets are filled by [`BucketsBuilder::push`], exactly as
/// JS `put.js` fills them, then encoded.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketsBuilder {
    /// By position; an empty vector means no bucket (a pushed bucket is never empty).
    buckets: Vec<Vec<u64>>,
}

impl BucketsBuilder {
    /// Place pointer `seq` for digit `v` at position `i`: the first free slot among `v`, `v+5`, …,
    /// unless `seq` is already somewhere in that bucket.
    pub(crate) fn push(&mut self, i: usize, v: usize, seq: u64) {
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Vec::new);
        }
        let bucket = &mut self.buckets[i];
        let mut v = v % 5;
        while v < bucket.len() && bucket[v] != 0 {
            v += 5;
        }
        if bucket.contains(&seq) {
            return;
        }
        if bucket.len() <= v {
            bucket.resize(v + 1, 0);
        }
        bucket[v] = seq;
    }

    /// The first position whose bucket has more slots than the format allows, if any.
    pub(crate) fn overfull(&self) -> Option<usize> {
        self.buckets.iter().position(|b| b.len() > MAX_SLOTS)
    }

    /// Encode as the trie field: `varint(length)`, then per bucket `varint(i) varint(mask)` and
    /// the non-zero slots. Buckets must not be [`overfull`](Self::overfull).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = self.buckets.iter().rposition(|b| !b.is_empty()).map_or(0, |p| p + 1);
        varint::encode(len as u64, out);
        for (i, bucket) in self.buckets[..len].iter().enumerate() {
            if bucket.is_empty() {
                continue;
            }
            varint::encode(i as u64, out);
            let mask = bucket.iter().enumerate().fold(0u64, |m, (s, &seq)| m | (u64::from(seq != 0) << s));
            varint::encode(mask, out);
            for &seq in bucket.iter().filter(|&&s| s != 0) {
                varint::encode(seq, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_round_trips() {
        // `a/b` at seq 3: length 34, position 3 slot 3 -> 1, position 33 slot 4 -> 2.
        let bytes = [0x22, 0x03, 0x08, 0x01, 0x21, 0x10, 0x02];
        let b = Buckets::decode(&bytes, 3).unwrap();
        assert_eq!(b.bucket(3), &[0, 0, 0, 1]);
        assert_eq!(b.bucket(33), &[0, 0, 0, 0, 2]);
        assert_eq!(b.bucket(4), &[] as &[u64]);
        let mut builder = BucketsBuilder::default();
        builder.push(3, 3, 1);
        builder.push(33, 4, 2);
        let mut out = Vec::new();
        builder.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn push_uses_collision_slots_and_dedupes() {
        let mut b = BucketsBuilder::default();
        b.push(32, 2, 7);
        b.push(32, 7, 9); // 7 mod 5 = 2, taken -> slot 7
        b.push(32, 2, 7); // already there
        assert_eq!(b.buckets[32], vec![0, 0, 7, 0, 0, 0, 0, 9]);
        let mut empty = Vec::new();
        BucketsBuilder::default().encode(&mut empty);
        assert_eq!(empty, [0]);
    }

    #[test]
    fn rejects_bad_fields() {
        // pointer 5 in the node at seq 5
        assert_eq!(Buckets::decode(&[0x02, 0x01, 0x01, 0x05], 5), Err(DecodeError::PointerNotBefore { pointer: 5 }));
        // positions out of order
        assert_eq!(
            Buckets::decode(&[0x05, 0x03, 0x01, 0x01, 0x02, 0x01, 0x01], 9),
            Err(DecodeError::BucketOrder { position: 2 })
        );
        // truncated: mask says one pointer, none follows
        assert_eq!(Buckets::decode(&[0x02, 0x01, 0x01], 9), Err(DecodeError::Truncated));
        // mask wider than 32 bits
        assert_eq!(
            Buckets::decode(&[0x02, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10], 9),
            Err(DecodeError::BucketTooLarge { position: 1 })
        );
    }
}
