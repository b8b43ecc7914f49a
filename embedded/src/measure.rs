//! The measuring harness shared by `footprint` and `baseline`: the workload
//! pushed slot by slot through a [`Pipeline`] until its store is full, with
//! instructions counted per phase and the stack painted around every merge.
//!
//! `footprint` plugs in the core (slot, sort, tree); `baseline` plugs in a
//! stand-in that only touches the records. Everything else, this harness,
//! printing and the workload, is the same code in both, so the difference of
//! their ELF sections is what the core itself costs.
//!
//! Output: one `FOOTPRINT <name> <integer>` line per figure, then
//! `footprint: done`; `cargo xtask embedded` turns them into the report.

use cortex_m_semihosting::hprintln;
use numatree_core::Record;

use crate::clock::InstructionClock;
use crate::stack;
use crate::workload;

/// The stages of ingest, as an embedded user strings them together.
pub trait Pipeline {
    /// Appends a record to the slot; `Err(record)` when the slot is full.
    fn push(&mut self, record: Record) -> Result<(), Record>;
    /// Sorts the slot into a run; returns the run's length.
    fn sort(&mut self) -> usize;
    /// Merges the sorted run; `Err(applied)` when the store filled first.
    fn merge(&mut self) -> Result<(), usize>;
    /// Empties the slot for the next batch.
    fn clear_slot(&mut self);
    /// Empties the slot and the tree, for the next workload.
    fn reset(&mut self);
    /// The value of `(series, ts)`: a point lookup.
    fn get(&self, series: u32, ts: i64) -> Option<u64>;
    /// Records of `series` with timestamps in `lo..hi`: a range scan.
    fn scan(&self, series: u32, lo: i64, hi: i64) -> usize;
    /// Levels of the tree (0 for the baseline).
    fn height(&self) -> usize;
    /// Bytes of RAM the pipeline's parts take: slot, sort scratch, tree.
    fn ram_bytes(&self) -> [(&'static str, usize); 3];
}

/// Stop if the store has not filled by then.
const MAX_RECORDS: usize = 100_000;

/// Record `i` of a workload.
type RecordAt = fn(usize) -> Record;

/// The workloads measured, by name: the same points with series ids at both
/// ends of `u32` (the sort's merge-sort path) and with ids `0..6` (its
/// counting-sort path).
const WORKLOADS: [(&str, RecordAt); 2] = [
    ("wide_ids", workload::record),
    ("narrow_ids", workload::record_narrow_ids),
];

/// Runs each workload through `pipeline` until the store is full, printing
/// the `FOOTPRINT` lines, then exits.
pub fn run(pipeline: &mut impl Pipeline, clock: &InstructionClock) -> ! {
    let configuration = [
        ("slot_records", crate::SLOT_RECORDS),
        ("store_nodes", crate::STORE_NODES),
        ("leaf_records", numatree_core::LEAF_CAPACITY),
        ("inner_fanout", numatree_core::INNER_FANOUT),
    ];
    for (name, value) in configuration {
        hprintln!("FOOTPRINT {} {}", name, value);
    }
    for (name, bytes) in pipeline.ram_bytes() {
        hprintln!("FOOTPRINT {}_bytes {}", name, bytes);
    }
    hprintln!(
        "FOOTPRINT milli_instructions_per_tick {}",
        clock.milli_instructions_per_tick()
    );
    hprintln!("FOOTPRINT stack_window_bytes {}", stack::WINDOW);
    for (name, record) in WORKLOADS {
        pipeline.reset();
        ingest(pipeline, clock, name, record);
    }
    hprintln!("footprint: done");
    crate::exit(true)
}

/// Pushes `record(0..)` slot by slot until the store is full.
fn ingest(
    pipeline: &mut impl Pipeline,
    clock: &InstructionClock,
    workload: &str,
    record: RecordAt,
) {
    let mut next = 0;
    let (mut records, mut push, mut sort, mut merge) = (0u64, 0u64, 0u64, 0u64);
    let (mut merges, mut max_stack, mut overflowed) = (0u64, 0usize, false);
    let mut full = false;
    while next < MAX_RECORDS && !full {
        pipeline.clear_slot();
        let (mut pushed, t) = (0, clock.now());
        while next < MAX_RECORDS && pipeline.push(record(next)).is_ok() {
            next += 1;
            pushed += 1;
        }
        let push_insns = clock.instructions_since(t);
        let t = clock.now();
        pipeline.sort();
        let sort_insns = clock.instructions_since(t);

        let painted = stack::paint();
        let t = clock.now();
        let merged = pipeline.merge();
        let merge_insns = clock.instructions_since(t);
        match painted.used() {
            Some(used) => max_stack = max_stack.max(used),
            None => overflowed = true,
        }
        merges += 1;
        // A slot whose run did not fit entirely is not counted: its records
        // were not all ingested.
        full = merged.is_err();
        if !full {
            records += pushed;
            push += push_insns;
            sort += sort_insns;
            merge += merge_insns;
        }
    }
    // Reads of what was ingested: a point lookup of every timestamp of
    // one series, then a scan of each series' whole range.
    let series = record(0).key.series;
    let end = workload::max_ts(next) + 1;
    let t = clock.now();
    let mut found = 0u64;
    for ts in 0..end {
        found += u64::from(pipeline.get(series, ts).is_some());
    }
    let get = clock.instructions_since(t);
    let t = clock.now();
    let mut scanned = 0u64;
    for i in 0..workload::SERIES.len() {
        scanned += pipeline.scan(record(i).key.series, 0, end) as u64;
    }
    let scan = clock.instructions_since(t);
    let figures = [
        ("gets", end as u64),
        ("gets_found", found),
        ("instructions_get", get),
        ("scanned_records", scanned),
        ("instructions_scan", scan),
        ("merge_run_calls", merges),
        ("merge_run_stack_bytes", max_stack as u64),
        ("merge_run_stack_window_overflowed", overflowed as u64),
        ("tree_height", pipeline.height() as u64),
        ("store_full", full as u64),
        ("records", records),
        ("instructions_push", push),
        ("instructions_sort", sort),
        ("instructions_merge", merge),
    ];
    for (name, value) in figures {
        hprintln!("FOOTPRINT {}.{} {}", workload, name, value);
    }
}
