//! The security group (`cargo test --test testsuite security::`): one test per attack in the
//! threat model of `SECURITY.md`. Each builds the hostile input — a cloned project with symlinks
//! and a crafted lockfile, a registry on 127.0.0.1 serving crafted packuments or trickling, a
//! crafted tarball, a misbehaving peer written with the project's own protocol types — and asserts
//! that nothing outside the project changed, that the store and the index hold only verified
//! content, and that ims ended with a clear error within a bound.

mod global;
mod peer;
mod project;
mod registry;
mod store;
