//! hypertrie: a hash array mapped trie over one hypercore, byte-compatible with JS hypertrie 5.
