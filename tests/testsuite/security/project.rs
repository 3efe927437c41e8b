//! Attacks from a hostile project: see `SECURITY.md`.
