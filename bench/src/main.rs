//! `numatree-bench` (being built).

fn main() {}
