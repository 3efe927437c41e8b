//! Placeholder; the scaling benchmark comes later.
fn main() {}
