//! Fault injection for the bench's own tests: a contender that corrupts
//! what it ingests, which every verification must catch.

use numatree::Record;

use crate::contender::{Caps, Contender, ContenderFactory, IngestTiming};
use crate::peers::BTreeRwLock;

/// A btree-rwlock whose ingest first lets `plant` rewrite writer 0's
/// records (drop one, change a value, ...).
pub(crate) struct Planted<F> {
    name: &'static str,
    plant: F,
    inner: BTreeRwLock,
}

impl<F: Fn(&mut Vec<Record>) + Send + Sync> Planted<F> {
    /// A contender named `name` that ingests what `plant` leaves.
    pub(crate) fn new(name: &'static str, plant: F) -> Self {
        Planted {
            name,
            plant,
            inner: BTreeRwLock::default(),
        }
    }
}

impl Planted<fn(&mut Vec<Record>)> {
    /// A factory of contenders named `name` that ingest what `plant` leaves
    /// (with queries; no reserved mode), for a bench run in a test.
    pub(crate) fn factory(name: &'static str, plant: fn(&mut Vec<Record>)) -> ContenderFactory {
        ContenderFactory::new(
            name,
            Caps {
                queries: true,
                reserved: false,
            },
            move |_| Box::new(Planted::new(name, plant)),
        )
    }
}

impl<F: Fn(&mut Vec<Record>) + Send + Sync> Contender for Planted<F> {
    fn name(&self) -> &str {
        self.name
    }
    fn ingest(&self, parts: &[&[Record]], batch: usize) -> IngestTiming {
        let mut owned: Vec<Vec<Record>> = parts.iter().map(|p| p.to_vec()).collect();
        if let Some(first) = owned.first_mut() {
            (self.plant)(first);
        }
        let parts: Vec<&[Record]> = owned.iter().map(Vec::as_slice).collect();
        self.inner.ingest(&parts, batch)
    }
    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.inner.get(series, ts)
    }
    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        self.inner.scan(series, t0, t1, out)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}
