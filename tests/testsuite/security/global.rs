//! Attacks through a global install (`-g`): see `SECURITY.md`.
