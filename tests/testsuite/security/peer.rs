//! Attacks from a hostile peer: see `SECURITY.md`.
