//! The BLAKE2b and Ed25519 constructions of hypercore-crypto 2.x (spec §1): node hashes,
//! the signed "signable", key pairs, discovery keys and the wire capability.

mod discovery;
pub(crate) mod hash;
mod keys;

pub use discovery::{DiscoveryKey, capability};
pub(crate) use hash::blake2b_256;
pub use hash::{Signable, leaf_hash, leaf_hashes, parent_hash, roots_hash, signable};
pub use keys::{KeyError, KeyPair, PublicKey, SecretKey, Signature, Signer, Verifier};
