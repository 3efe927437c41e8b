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
/// Built directly in the decoded form of [`Buckets`] (one vector of headers and slots): a put
/// pushes in ascending position order, so only the last bucket ever grows, at the end of the
/// vector. A push to an earlier position (never made by `put`) takes a slower path.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketsBuilder {
    data: Vec<u64>,
    /// Where the last bucket's header is in `data`.
    last: Option<usize>,
    /// The first position where a push found no free slot below [`MAX_SLOTS`].
    overfull: Option<usize>,
}

fn header(position: usize, len: usize) -> u64 {
    (position as u64) << 32 | len as u64
}

impl BucketsBuilder {
    /// An empty builder with room for a typical node's buckets.
    pub(crate) fn new() -> Self {
        Self { data: Vec::with_capacity(96), last: None, overfull: None }
    }

    /// Place pointer `seq` for digit `v` at position `i`: the first free slot among `v`, `v+5`, …,
    /// unless `seq` is already somewhere in that bucket.
    pub(crate) fn push(&mut self, i: usize, v: usize, seq: u64) {
        let at = match self.last {
            Some(at) if (self.data[at] >> 32) as usize == i => at,
            Some(at) if ((self.data[at] >> 32) as usize) < i => self.open_last(i),
            None => self.open_last(i),
            Some(_) => return self.push_earlier(i, v, seq),
        };
        let len = (self.data[at] & 0xff) as usize;
        let used = &self.data[at + 1..at + 1 + len];
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
        if v >= len {
            self.data.resize(at + 1 + v + 1, 0);
            self.data[at] = header(i, v + 1);
        }
        self.data[at + 1 + v] = seq;
    }

    /// Start a new last bucket at position `i`.
    fn open_last(&mut self, i: usize) -> usize {
        let at = self.data.len();
        self.data.push(header(i, 0));
        self.last = Some(at);
        at
    }

    /// A push before the last bucket: rebuild through a per-bucket form.
    fn push_earlier(&mut self, i: usize, v: usize, seq: u64) {
        let mut buckets: Vec<(usize, Vec<u64>)> = Vec::new();
        let mut k = 0;
        while let Some(&h) = self.data.get(k) {
            let len = (h & 0xff) as usize;
            buckets.push(((h >> 32) as usize, self.data[k + 1..k + 1 + len].to_vec()));
            k += 1 + len;
        }
        let at = match buckets.binary_search_by_key(&i, |b| b.0) {
            Ok(at) => at,
            Err(at) => {
                buckets.insert(at, (i, Vec::new()));
                at
            }
        };
        let bucket = &mut buckets[at].1;
        let mut v = v % 5;
        while v < bucket.len() && bucket[v] != 0 {
            v += 5;
        }
        if !bucket.contains(&seq) {
            if v >= MAX_SLOTS {
                self.overfull.get_or_insert(i);
            } else {
                if bucket.len() <= v {
                    bucket.resize(v + 1, 0);
                }
                bucket[v] = seq;
            }
        }
        self.data.clear();
        for (position, slots) in buckets {
            self.last = Some(self.data.len());
            self.data.push(header(position, slots.len()));
            self.data.extend_from_slice(&slots);
        }
    }

    /// The first position where more keys collided than a bucket can address, if any.
    pub(crate) fn overfull(&self) -> Option<usize> {
        self.overfull
    }

    /// Encode as the trie field: `varint(length)`, then per bucket `varint(i) varint(mask)` and
    /// the non-zero slots.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = self.last.map_or(0, |at| (self.data[at] >> 32) + 1);
        varint::encode(len, out);
        let mut k = 0;
        while let Some(&h) = self.data.get(k) {
            let slots = &self.data[k + 1..k + 1 + (h & 0xff) as usize];
            varint::encode(h >> 32, out);
            let mask = slots.iter().enumerate().fold(0u64, |m, (s, &seq)| m | (u64::from(seq != 0) << s));
            varint::encode(mask, out);
            for &seq in slots.iter().filter(|&&s| s != 0) {
                varint::encode(seq, out);
            }
            k += 1 + slots.len();
        }
    }

    /// The decoded form of what [`encode`](Self::encode) writes, without a round trip through
    /// bytes.
    pub(crate) fn into_buckets(self) -> Buckets {
        let declared_len = self.last.map_or(0, |at| (self.data[at] >> 32) + 1);
        Buckets { data: self.data, declared_len }
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
        let mut builder = BucketsBuilder::new();
        builder.push(3, 3, 1);
        builder.push(33, 4, 2);
        let mut out = Vec::new();
        builder.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn push_uses_collision_slots_and_dedupes() {
        let mut b = BucketsBuilder::new();
        b.push(32, 2, 7);
        b.push(32, 7, 9); // 7 mod 5 = 2, taken -> slot 7
        b.push(32, 2, 7); // already there
        b.push(3, 1, 4); // an earlier position, inserted in order
        assert_eq!(b.clone().into_buckets().bucket(32), &[0, 0, 7, 0, 0, 0, 0, 9]);
        assert_eq!(b.clone().into_buckets().bucket(3), &[0, 4]);
        let mut field = Vec::new();
        b.encode(&mut field);
        assert_eq!(Buckets::decode(&field, 10).unwrap(), b.clone().into_buckets());
        for k in 0..7 {
            b.push(40, 0, 100 + k);
        }
        assert_eq!(b.overfull(), None, "slots 0, 5, …, 30 used");
        b.push(40, 0, 200);
        assert_eq!(b.overfull(), Some(40), "the eighth colliding pointer has no slot");
        let mut empty = Vec::new();
        BucketsBuilder::new().encode(&mut empty);
        assert_eq!(empty, [0]);
    }

    #[test]
    fn rejects_bad_fields() {
        // pointer 5 in the node at seq 5
        assert_eq!(
            Buckets::decode(&[0x02, 0x01, 0x01, 0x05], 5),
            Err(DecodeError::PointerNotBefore { pointer: 5 })
        );
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
