//! hypercore: a signed Merkle log, byte-compatible with JS hypercore 9.
