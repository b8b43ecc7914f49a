//! The plan of a phase, drawn from the seed alone before anything runs:
//! its fault, the shape of the index a lifetime uses, and each writer's
//! steps (inserts, batches, late and duplicate points, flushes, reopens)
//! with every value each key may take, plus the phase's retention calls
//! and snapshot. Drawing is kept apart from running so that the seed alone
//! fixes every phase: the same seed replays the same phases, however the
//! threads that run them are scheduled.

use std::collections::{HashMap, HashSet};

use numatree::Record;
use rand::RngExt as _;

use crate::retention::{self, Ops};
use crate::{snapshot, Key, Rng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    /// Merges block on a gate until writers are seen waiting.
    Delay,
    /// The merge hook panics on this merge (0-based).
    Panic(usize),
    /// A fresh index with this memory budget, in bytes.
    Budget(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum Step {
    Insert(Record),
    Batch(Vec<Record>),
    /// `Writer::flush`.
    Flush,
    /// `Index::flush`, from the writer's thread.
    IndexFlush,
    /// Drop the writer (sealing its partial slots) and take a new one.
    Reopen,
}

pub(crate) struct Phase {
    pub(crate) fault: Fault,
    pub(crate) writers: Vec<Vec<Step>>,
    /// Run the writers through `Index::run_writers` (per node) instead of
    /// plain scoped threads.
    pub(crate) run_writers: bool,
    pub(crate) readers: usize,
    pub(crate) flusher: bool,
    /// Every value each key may take during the phase.
    pub(crate) values: HashMap<Key, HashSet<u64>>,
    /// Retention calls made during and after the phase.
    pub(crate) ops: Ops,
    /// Whether the writers write few series of many points (blocks fill
    /// and freeze; late points thaw them).
    pub(crate) long: bool,
    /// Whether the series ids are spread over all of `u32` (a shard's
    /// directory finds them through its hash table, not by rank).
    pub(crate) sparse: bool,
    /// A snapshot taken during the phase, then restored and checked.
    pub(crate) snapshot: Option<snapshot::Plan>,
}

impl Phase {
    /// One line saying what the phase does, for progress, the watchdog
    /// and failure messages.
    pub(crate) fn label(&self, shape: Shape) -> String {
        format!(
            "{:?}, {} writers{}, {} readers{}, {} {}records{}{}, {:?}",
            self.fault,
            self.writers.len(),
            if self.run_writers {
                " (run_writers)"
            } else {
                ""
            },
            self.readers,
            if self.flusher { ", flusher" } else { "" },
            self.values.len(),
            match (self.long, self.sparse) {
                (true, true) => "long-series sparse-id ",
                (true, false) => "long-series ",
                (false, true) => "sparse-id ",
                (false, false) => "",
            },
            if self.ops.is_empty() {
                ""
            } else {
                ", retention "
            },
            self.ops.label(),
            shape
        ) + &self
            .snapshot
            .map_or(String::new(), |p| format!(", snapshot {p:?}"))
    }
}

/// The shape of the index a lifetime uses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) slot_capacity: usize,
    pub(crate) slots_per_node: usize,
    pub(crate) shards_per_node: usize,
    /// `Builder::freeze_blocks`.
    pub(crate) freeze: bool,
    /// `Builder::retain`, in timestamp units.
    pub(crate) retain: Option<i64>,
    /// `Builder::freeze_idle_after`, in timestamp units (freezing on only).
    pub(crate) freeze_idle: Option<i64>,
}

pub(crate) fn draw_shape(rng: &mut Rng, budget: bool) -> Shape {
    let freeze = rng.random_ratio(80, 100);
    let slot_capacity = [64, 64, 128, 256, 1024][rng.random_range(0..5) as usize];
    let slots_per_node = rng.random_range(1..=3) as usize;
    let shards_per_node = rng.random_range(1..=4) as usize;
    let retain = (!budget && rng.random_ratio(20, 100))
        .then(|| [64, 300, 1_000, 4_000][rng.random_range(0..4) as usize]);
    // Idle series freeze whole and thaw while readers verify (an age below
    // the retention window: the builder refuses others).
    let freeze_idle = (freeze && rng.random_ratio(30, 100))
        .then(|| [16, 200, 2_000][rng.random_range(0..3) as usize])
        .filter(|&age| retain.is_none_or(|window| age < window));
    Shape {
        slot_capacity,
        slots_per_node,
        shards_per_node,
        freeze,
        retain,
        freeze_idle,
    }
}

pub(crate) const NODES: usize = 2;

/// Draws a phase; its writers start near `base` (each index's clock moves
/// on from phase to phase, so retention cutoffs follow the data).
pub(crate) fn draw_phase(rng: &mut Rng, fault: Fault, shape: Shape, base: i64) -> Phase {
    let run_writers = fault != Fault::Delay && rng.random_ratio(20, 100);
    let writer_count = if run_writers {
        NODES * rng.random_range(1..=2) as usize
    } else {
        rng.random_range(1..=4) as usize
    };
    let error_possible = matches!(fault, Fault::Panic(_) | Fault::Budget(_));
    // Enough records that the pools run dry under a merge delay.
    let min_records = 4 * shape.slot_capacity * (shape.slots_per_node + writer_count + 1);
    // Long phases: a few series of thousands of points, so blocks fill
    // (256 points) and freeze, and deep late points land in frozen blocks.
    let long = rng.random_ratio(35, 100);
    let series_count = if long {
        rng.random_range(1..=3) as u32
    } else {
        rng.random_range(2..=24) as u32
    };
    let extra = if long { 8_000 } else { 4_000 };
    // A quarter of the phases spread their ids over `u32` (an odd
    // multiplier: distinct ids stay distinct).
    let sparse = rng.random_ratio(25, 100);
    let spread = |series: u32| {
        if sparse {
            series.wrapping_mul(0x9E37_79B1)
        } else {
            series
        }
    };
    // With `retain`, one `i64::MAX` makes every other point expire: rare.
    let extremes = shape.retain.is_none() || rng.random_ratio(5, 100);
    let mut values: HashMap<Key, HashSet<u64>> = HashMap::new();
    let mut writers = Vec::new();
    for w in 0..writer_count {
        let least = (min_records / writer_count) as u64;
        let records = rng.random_range(least..=least + extra) as usize;
        let mut next_ts: HashMap<u32, i64> = HashMap::new();
        let mut steps = Vec::new();
        let mut batch: Vec<Record> = Vec::new();
        let mut written = 0;
        while written < records {
            // Mostly this writer's own series; some shared ones (a key
            // written by several writers keeps one of their values).
            let series = spread(if rng.random_ratio(15, 100) {
                rng.random_range(0..2) as u32
            } else {
                2 + (w as u32)
                    + writer_count as u32 * rng.random_range(0..u64::from(series_count)) as u32
            });
            let head = next_ts
                .entry(series)
                .or_insert(base + rng.random_range(0..1000) as i64 - 500);
            let ts = match rng.random_range(0..100) {
                0..=79 => {
                    *head += 1 + rng.random_range(0..3) as i64;
                    *head
                }
                80..=85 => *head - rng.random_range(1..=200) as i64, // late point
                // Deep late point: into a frozen block of a long series.
                86..=89 => *head - rng.random_range(1..=4_000) as i64,
                98 if extremes => i64::MIN + rng.random_range(0..4) as i64,
                99 if extremes => i64::MAX - rng.random_range(0..4) as i64,
                _ => *head, // duplicate key, new value
            };
            let value = rng.random::<u64>();
            values.entry((series, ts)).or_default().insert(value);
            let record = Record::new(series, ts, value);
            written += 1;
            if !error_possible && rng.random_ratio(30, 100) {
                batch.push(record);
                if batch.len() >= rng.random_range(1..=300) as usize {
                    steps.push(Step::Batch(std::mem::take(&mut batch)));
                }
            } else {
                if !batch.is_empty() {
                    steps.push(Step::Batch(std::mem::take(&mut batch)));
                }
                steps.push(Step::Insert(record));
            }
            match rng.random_range(0..2_000) {
                0..=3 => steps.push(Step::Flush),
                4 if fault != Fault::Delay => steps.push(Step::IndexFlush),
                5..=6 if !run_writers => {
                    if !batch.is_empty() {
                        steps.push(Step::Batch(std::mem::take(&mut batch)));
                    }
                    steps.push(Step::Reopen);
                }
                _ => {}
            }
        }
        if !batch.is_empty() {
            steps.push(Step::Batch(batch));
        }
        writers.push(steps);
    }
    let steps = writers.iter().map(|w| w.len() as u64).sum();
    let ops = if matches!(fault, Fault::None | Fault::Delay) {
        let mut series: Vec<u32> = values.keys().map(|k| k.0).collect();
        series.sort_unstable();
        series.dedup();
        retention::draw_ops(rng, base, &series, steps)
    } else {
        Ops::default()
    };
    let snapshot = (matches!(fault, Fault::None | Fault::Delay) && rng.random_ratio(15, 100))
        .then(|| snapshot::draw(rng, steps));
    Phase {
        fault,
        writers,
        run_writers,
        readers: rng.random_range(0..3) as usize,
        flusher: fault != Fault::Delay && rng.random_ratio(40, 100),
        values,
        ops,
        long,
        sparse,
        snapshot,
    }
}

pub(crate) fn draw_fault(rng: &mut Rng) -> Fault {
    match rng.random_range(0..100) {
        0..=54 => Fault::None,
        55..=74 => Fault::Delay,
        75..=89 => Fault::Panic(rng.random_range(0..12) as usize),
        _ => Fault::Budget(rng.random_range(32 << 10..=1 << 20) as usize),
    }
}
