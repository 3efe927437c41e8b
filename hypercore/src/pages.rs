//! Paged sparse storage for per-index data (bits, nodes, block locations).
//!
//! Indexes come from verified but possibly hostile feeds (a writer may sign any length), so
//! memory must follow the pages actually touched, not the highest index: pages below
//! `DENSE_PAGES` live in a vector for O(1) access on the hot path, the rest in a map.

use std::collections::BTreeMap;

/// Pages addressed through the dense vector (beyond: the map).
const DENSE_PAGES: u64 = 1 << 16;

/// A sparse array of lazily allocated pages of type `P`.
#[derive(Debug, Clone)]
pub(crate) struct Pages<P> {
    dense: Vec<Option<Box<P>>>,
    far: BTreeMap<u64, Box<P>>,
}

impl<P> Default for Pages<P> {
    fn default() -> Self {
        Self { dense: Vec::new(), far: BTreeMap::new() }
    }
}

impl<P> Pages<P> {
    /// Page `p`, if allocated.
    #[inline]
    pub(crate) fn get(&self, p: u64) -> Option<&P> {
        if p < DENSE_PAGES { self.dense.get(p as usize)?.as_deref() } else { self.far.get(&p).map(|b| &**b) }
    }

    /// Page `p`, allocated with `make` if missing.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, p: u64, make: impl FnOnce() -> Box<P>) -> &mut P {
        if p < DENSE_PAGES {
            let i = p as usize;
            if i >= self.dense.len() {
                self.dense.resize_with(i + 1, || None);
            }
            self.dense[i].get_or_insert_with(make)
        } else {
            self.far.entry(p).or_insert_with(make)
        }
    }
}
