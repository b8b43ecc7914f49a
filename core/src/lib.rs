//! numatree-core: allocation-free building blocks of numatree (being built).
#![cfg_attr(not(test), no_std)]

mod record;

pub use record::{Key, Record, RECORD_BYTES};
