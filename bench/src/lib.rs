//! numatree-bench: the predecessor's insert / lookup / scan benchmark, run on
//! numatree and its peers in one process over the same data, verified
//! against an oracle in every run (being built).

pub mod config;
pub mod contender;
pub mod oracle;
pub mod peers;
pub mod phases;
pub mod registry;
pub mod rng;
pub mod verify;
pub mod workload;
