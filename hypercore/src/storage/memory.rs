//! The memory backend: the log as a list of shared segments (no file, no sync).

/// An in-memory log: contiguous segments covering `0..len`, keyed by their offset. Large
/// writes keep their own buffer ([`super::Store::write_owned`] takes it without a copy), so the log
/// is never copied as it grows, unlike one `Vec` that is reallocated.
#[derive(Default)]
pub(super) struct MemoryLog {
    segments: std::collections::BTreeMap<u64, bytes::Bytes>,
    pub(super) len: u64,
}

impl MemoryLog {
    /// A new log holding only `header`.
    pub(super) fn with_header(header: &[u8]) -> Self {
        let mut log = Self::default();
        log.write(0, header.to_vec());
        log
    }

    pub(super) fn truncate(&mut self, len: u64) {
        if len >= self.len {
            return;
        }
        let _ = self.segments.split_off(&len);
        if let Some((&at, seg)) = self.segments.iter_mut().next_back() {
            seg.truncate((len - at) as usize);
        }
        self.len = len;
    }

    /// `truncate(offset)` (zero-filling up to `offset` if the log is shorter), then `bytes`.
    pub(super) fn write(&mut self, offset: u64, bytes: Vec<u8>) {
        self.truncate(offset);
        if offset > self.len {
            let gap = (offset - self.len) as usize;
            self.segments.insert(self.len, vec![0; gap].into());
            self.len = offset;
        }
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len() as u64;
        self.segments.insert(offset, bytes.into());
    }

    /// The `len` bytes at `offset` if they lie in one segment, without a copy.
    pub(super) fn view(&self, offset: u64, len: usize) -> Option<bytes::Bytes> {
        let (&at, seg) = self.segments.range(..=offset).next_back()?;
        let from = (offset - at) as usize;
        let to = from.checked_add(len).filter(|&to| to <= seg.len())?;
        Some(seg.slice(from..to))
    }

    /// Copies out `buf.len()` bytes at `offset`; false if that runs past the end.
    pub(super) fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.len) {
            return false;
        }
        let mut done = 0;
        for (&at, seg) in self.segments.range(..offset + buf.len() as u64).rev() {
            // Walk back from the last segment that starts before the end of the read.
            let seg_end = at + seg.len() as u64;
            let from = offset.max(at);
            let to = (offset + buf.len() as u64).min(seg_end);
            if from < to {
                let (dst, src) = ((from - offset) as usize, (from - at) as usize);
                let n = (to - from) as usize;
                buf[dst..dst + n].copy_from_slice(&seg[src..src + n]);
                done += n;
            }
            if at <= offset {
                break;
            }
        }
        done == buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryLog;

    fn read(log: &MemoryLog, offset: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0xee; len];
        log.read(offset, &mut buf).then_some(buf)
    }

    #[test]
    fn memory_log_reads_across_segments_and_truncates_inside_one() {
        let mut log = MemoryLog::default();
        log.write(0, b"head".to_vec());
        log.write(4, (0..100u8).collect());
        log.write(104, b"tail".to_vec());
        assert_eq!(log.len, 108);
        let whole: Vec<u8> = b"head".iter().copied().chain(0..100u8).chain(*b"tail").collect();
        assert_eq!(read(&log, 0, 108).as_deref(), Some(&whole[..]));
        assert_eq!(read(&log, 2, 10).as_deref(), Some(&whole[2..12]));
        assert_eq!(read(&log, 100, 8).as_deref(), Some(&whole[100..108]));
        assert_eq!(read(&log, 108, 0).as_deref(), Some(&[][..]));
        assert_eq!(read(&log, 100, 9), None);
        assert_eq!(read(&log, u64::MAX, 2), None);
        // Cut inside the middle segment, then write over the cut.
        log.truncate(50);
        assert_eq!(log.len, 50);
        assert_eq!(read(&log, 0, 50).as_deref(), Some(&whole[..50]));
        assert_eq!(read(&log, 49, 2), None);
        log.write(20, b"new".to_vec());
        assert_eq!(log.len, 23);
        assert_eq!(read(&log, 18, 5).as_deref(), Some(&[whole[18], whole[19], b'n', b'e', b'w'][..]));
        // A write past the end zero-fills the gap, as a file would.
        log.write(30, b"x".to_vec());
        assert_eq!(read(&log, 22, 9).as_deref(), Some(&[b'w', 0, 0, 0, 0, 0, 0, 0, b'x'][..]));
        log.truncate(0);
        assert_eq!((log.len, log.segments.len()), (0, 0));
    }
}
