//! numatree runtime (being built: see issue 3).
