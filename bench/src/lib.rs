//! numatree-bench: the predecessor's insert / lookup / scan benchmark, run on
//! numatree and its peers in one process over the same data, verified
//! against an oracle in every run.
//!
//! The data flow follows the modules: [`workload`] generates per-writer
//! record streams and the [`oracle`] of their final state; [`registry`]
//! lists the [`contender`]s ([`peers`] and, later, numatree); [`phases`]
//! drives the measurements (with [`memory`] and [`cpu`] counting what they
//! cost) and [`verify`] checks each one; [`report`] prints
//! the tables and writes the JSON, [`plot`] the SVG; [`progress`] tells
//! how much of the run is done and estimates the time left.
//!
//! ```no_run
//! use numatree_bench::{config::BenchConfig, phases, registry};
//!
//! let cfg = BenchConfig::profile("ci").unwrap();
//! let factories = registry::select(&cfg.contenders).unwrap();
//! let outcome = phases::run(&cfg, &factories, &phases::Progress::new(false)).unwrap();
//! assert!(outcome.failures.is_empty());
//! ```

pub mod config;
pub mod contender;
pub mod cpu;
pub mod life;
pub mod memory;
pub mod numatree_adapter;
pub mod oracle;
pub mod peers;
pub mod phases;
#[cfg(test)]
mod planted;
pub mod plot;
pub mod progress;
pub mod registry;
pub mod report;
pub mod vec_store;
pub mod verify;
pub mod workload;
