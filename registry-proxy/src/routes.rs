//! The handlers, one file per route family.

pub(crate) mod misc;
pub(crate) mod packument;
pub(crate) mod search;
pub(crate) mod tarball;
