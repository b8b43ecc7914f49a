//! numatree benchmark harness (being built: see issue 4).
