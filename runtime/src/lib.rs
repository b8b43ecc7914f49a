//! numatree runtime (being built: see issue 3).

mod error;

pub use error::Error;
