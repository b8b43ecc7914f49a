//! An index under test, for its lifetime: built with a drawn shape, the
//! merge hook of its fault injector and a fresh oracle; run through phases
//! while its clock moves on; then closed and its shutdown checked.

use std::collections::HashSet;
use std::sync::Arc;

use numatree::{Error, Index, TopologySource};

use crate::inject::Injector;
use crate::oracle::{verify, Oracle};
use crate::plan::Shape;
use crate::report::Totals;
use crate::retention::Mutant;
use crate::{ensure, Outcome, Rng};

pub(crate) struct Lifetime {
    pub(crate) index: Index,
    pub(crate) injector: Arc<Injector>,
    pub(crate) shape: Shape,
    pub(crate) oracle: Oracle,
    /// Where the next phase's writers start.
    pub(crate) clock: i64,
}

/// The budget an index of `shape` gets for a drawn `budget`: at least a
/// slot per node (2 nodes here), or `build` refuses it.
pub(crate) fn effective_budget(shape: Shape, budget: usize) -> usize {
    budget.max(2 * shape.slot_capacity * size_of::<numatree::Record>())
}

pub(crate) fn build(
    shape: Shape,
    budget: Option<usize>,
    mutant: Mutant,
) -> Result<Lifetime, String> {
    let injector = Injector::new();
    let hook = Arc::clone(&injector);
    let mut builder = Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:2 numa:1 core:2 pu:1".into(),
        ))
        .merge_threads_per_node(1)
        .shards_per_node(shape.shards_per_node)
        .slot_capacity(shape.slot_capacity)
        .slots_per_node(shape.slots_per_node)
        .freeze_blocks(shape.freeze)
        .merge_hook(move |_| hook.on_merge());
    if let Some(bytes) = budget {
        builder = builder.memory_budget(effective_budget(shape, bytes));
    }
    if let Some(window) = shape.retain {
        builder = builder.retain(window);
    }
    if let Some(age) = shape.freeze_idle {
        builder = builder.freeze_idle_after(age);
    }
    let index = builder.build().map_err(|e| format!("build: {e}"))?;
    Ok(Lifetime {
        index,
        injector,
        shape,
        oracle: Oracle::new(shape.retain, mutant),
        clock: 0,
    })
}

/// Closes the index and checks shutdown: Ok with every record accounted
/// for, inserts refused, close twice fine, queries still right.
pub(crate) fn close_and_check(life: &mut Lifetime, rng: &mut Rng, totals: &mut Totals) -> Outcome {
    let stats = life.index.close().map_err(|e| format!("close: {e}"))?;
    stats.verify_accounting().map_err(|e| e.to_string())?;
    totals.points_dropped += stats.total.points_dropped;
    totals.records_expired += stats.total.records_expired;
    let mut w = life.index.writer();
    ensure!(
        matches!(w.insert(1, 1, 1), Err(Error::Closed)),
        "insert after close must be Closed"
    );
    drop(w);
    life.index
        .close()
        .map_err(|e| format!("second close: {e}"))?;
    totals.closes += 1;
    verify(life, rng, totals, &HashSet::new())
}
