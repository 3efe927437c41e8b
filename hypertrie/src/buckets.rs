//! The trie field of a node (`trieBuffer`, spec §6.6; JS `lib/trie.js`): per path position, a
//! bucket of slots, slot `v + 5m` holding the `m`-th pointer (a block seq) for digit `v`.

use crate::error::DecodeError;
use crate::varint;

/// The most slots a bucket can have: JS builds the slot mask with 32-bit integer operations.
pub(crate) const MAX_SLOTS: usize = 31;

/// A decoded trie field: the buckets of a stored node, by ascending path position.
///
/// One allocation per node, because a node is decoded for every block a lookup reads that is not
/// cached: `data` holds, for each bucket in order, a header `position << 32 | slot count` and
/// then its slots (0 = empty). A node has a few dozen buckets at most, so a lookup scans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Buckets {
    data: Vec<u64>,
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
        // Each pointer takes at least one byte, so this is the right size for real fields; a
        // hostile one with sparse masks grows it to at most 16 entries per byte.
        let mut data = Vec::with_capacity(buf.len() + 8);
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
            let len = (32 - mask.leading_zeros()) as usize;
            data.push(u64::from(pos32) << 32 | len as u64);
            for bit in 0..len {
                let pointer = if mask & (1 << bit) != 0 { varint::decode(&mut buf)? } else { 0 };
                if pointer != 0 && pointer >= seq {
                    return Err(DecodeError::PointerNotBefore { pointer });
                }
                data.push(pointer);
            }
        }
        Ok(Self { data, declared_len })
    }

    /// The slots of the bucket at path position `i` (empty if there is none).
    #[inline]
    pub(crate) fn bucket(&self, i: usize) -> &[u64] {
        let mut k = 0;
        while let Some(&header) = self.data.get(k) {
            let position = (header >> 32) as usize;
            let len = (header & 0xff) as usize;
            if position == i {
                return self.data.get(k + 1..k + 1 + len).unwrap_or(&[]);
            }
            if position > i {
                break;
            }
            k += 1 + len;
        }
        &[]
    }

    /// The buckets as `(position, slots)`, ascending.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (usize, &[u64])> {
        let mut k = 0;
        std::iter::from_fn(move || {
            let header = *self.data.get(k)?;
            let len = (header & 0xff) as usize;
            let slots = &self.data[k + 1..k + 1 + len];
            k += 1 + len;
            Some(((header >> 32) as usize, slots))
        })
    }

    /// Roughly the bytes this takes in memory.
    pub(crate) fn weight(&self) -> usize {
        self.data.len() * 8
    }

    /// The array form JS decodes to: by position, `None` or the bucket's slots.
    #[cfg(test)]
    pub(crate) fn to_dense(&self) -> Vec<Option<Vec<u64>>> {
        let mut out = vec![None; self.declared_len as usize];
        for (pos, slots) in self.iter() {
            if pos >= out.len() {
                out.resize(pos + 1, None);
            }
            out[pos] = Some(slots.to_vec());
        }
        out
    }
}

/// The trie of a node being written: buckets are filled by [`BucketsBuilder::push`], exactly as
/// JS `put.js` fills them, then encoded.
///
/// Flat and allocation-light: one vector of fixed-size buckets sorted by position (a put pushes
/// in ascending position order, so the bucket wanted is almost always the last one).
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketsBuilder {
    buckets: Vec<BuiltBucket>,
    /// The first position where a push found no free slot below [`MAX_SLOTS`].
    overfull: Option<usize>,
}

#[derive(Debug, Clone)]
struct BuiltBucket {
    position: usize,
    len: usize,
    slots: [u64; MAX_SLOTS],
}

impl BucketsBuilder {
    /// Place pointer `seq` for digit `v` at position `i`: the first free slot among `v`, `v+5`, …,
    /// unless `seq` is already somewhere in that bucket.
    pub(crate) fn push(&mut self, i: usize, v: usize, seq: u64) {
        let at = match self.buckets.last() {
            Some(b) if b.position == i => self.buckets.len() - 1,
            Some(b) if b.position < i => self.insert(self.buckets.len(), i),
            _ => match self.buckets.binary_search_by_key(&i, |b| b.position) {
                Ok(at) => at,
                Err(at) => self.insert(at, i),
            },
        };
        let bucket = &mut self.buckets[at];
        let used = &bucket.slots[..bucket.len];
        let mut v = v % 5;
        while v < used.len() && used[v] != 0 {
            v += 5;
        }
        if used.contains(&seq) {
            return;
        }
        if v >= MAX_SLOTS {
            self.overfull.get_or_insert(i);
            return;
        }
        bucket.slots[v] = seq;
        bucket.len = bucket.len.max(v + 1);
    }

    fn insert(&mut self, at: usize, position: usize) -> usize {
        self.buckets.insert(at, BuiltBucket { position, len: 0, slots: [0; MAX_SLOTS] });
        at
    }

    /// The first position where more keys collided than a bucket can address, if any.
    pub(crate) fn overfull(&self) -> Option<usize> {
        self.overfull
    }

    /// Encode as the trie field: `varint(length)`, then per bucket `varint(i) varint(mask)` and
    /// the non-zero slots.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = self.buckets.last().map_or(0, |b| b.position + 1);
        varint::encode(len as u64, out);
        for b in &self.buckets {
            varint::encode(b.position as u64, out);
            let slots = &b.slots[..b.len];
            let mask = slots.iter().enumerate().fold(0u64, |m, (s, &seq)| m | (u64::from(seq != 0) << s));
            varint::encode(mask, out);
            for &seq in slots.iter().filter(|&&s| s != 0) {
                varint::encode(seq, out);
            }
        }
    }

    /// The decoded form of what [`encode`](Self::encode) writes, without a round trip through
    /// bytes.
    pub(crate) fn to_buckets(&self) -> Buckets {
        let mut data = Vec::with_capacity(self.buckets.iter().map(|b| b.len + 1).sum());
        for b in &self.buckets {
            // Positions come from a key path (a few hundred at most) and slots are < 32.
            data.push((b.position as u64) << 32 | b.len as u64);
            data.extend_from_slice(&b.slots[..b.len]);
        }
        Buckets { data, declared_len: self.buckets.last().map_or(0, |b| b.position as u64 + 1) }
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
        b.push(3, 1, 4); // an earlier position, inserted in order
        assert_eq!(b.to_buckets().bucket(32), &[0, 0, 7, 0, 0, 0, 0, 9]);
        assert_eq!(b.to_buckets().bucket(3), &[0, 4]);
        let mut field = Vec::new();
        b.encode(&mut field);
        assert_eq!(Buckets::decode(&field, 10).unwrap(), b.to_buckets());
        for k in 0..7 {
            b.push(40, 0, 100 + k);
        }
        assert_eq!(b.overfull(), None, "slots 0, 5, …, 30 used");
        b.push(40, 0, 200);
        assert_eq!(b.overfull(), Some(40), "the eighth colliding pointer has no slot");
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
