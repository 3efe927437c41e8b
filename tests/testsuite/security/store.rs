//! Attacks on the tarball store (integrity strings that name several hashes, reused unpacked directories): see `SECURITY.md`.
