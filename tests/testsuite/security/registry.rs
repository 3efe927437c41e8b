//! Attacks from a hostile registry: see `SECURITY.md`.
