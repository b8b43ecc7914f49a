//! Where the index's memory is: the page checks, and the oracle's reads
//! from the last node after which all of it must still be in place (it is
//! all bound: slot buffers, and the arena's hot and frozen blocks).

use std::time::{Duration, Instant};

use numatree::{Index, NodeMemory, Topology};

use super::{ingest, Report, SERIES};

/// Which memory a page check looks at.
#[derive(Clone, Copy)]
pub(crate) enum Pages {
    /// Free slot buffers.
    Slots,
    /// Hot column blocks (what `tree-pages` looks at).
    Tree,
    /// Frozen blocks, which must exist (after an ingest).
    Frozen,
}

/// [`check_pages`] for each of `which`, on the index's placement now.
pub(crate) fn check_placement(index: &Index, which: &[Pages]) -> Result<String, String> {
    let memory = index.memory_placement().map_err(|e| e.to_string())?;
    let mut parts = Vec::new();
    for &pages in which {
        parts.push(format!(
            "{}: {}",
            pages.label(),
            check_pages(&memory, pages)?
        ));
    }
    Ok(parts.join("; "))
}

impl Pages {
    /// All of the index's memory, every kind bound to its node.
    pub(crate) const ALL: [Pages; 3] = [Pages::Slots, Pages::Tree, Pages::Frozen];

    /// How a check's detail names these pages.
    fn label(self) -> &'static str {
        match self {
            Pages::Slots => "slots",
            Pages::Tree => "tree",
            Pages::Frozen => "frozen",
        }
    }
}

pub(crate) fn check_pages(memory: &[NodeMemory], which: Pages) -> Result<String, String> {
    let mut detail = Vec::new();
    for m in memory {
        let (what, count, pages) = match which {
            Pages::Slots => ("slot buffers", m.slots, &m.slot_pages),
            Pages::Tree => ("hot column blocks", m.blocks, &m.block_pages),
            Pages::Frozen => ("frozen blocks", m.frozen_blocks, &m.frozen_block_pages),
        };
        if pages.as_slice() != [m.node_id] {
            let on = if pages.is_empty() {
                "no node (nothing resident)".to_owned()
            } else {
                pages
                    .iter()
                    .map(|n| format!("node {n}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            };
            return Err(format!(
                "node {}'s {count} {what} have pages on {on}",
                m.node_id
            ));
        }
        detail.push(format!(
            "node {}: {count} {what} on node {}",
            m.node_id, m.node_id
        ));
    }
    Ok(detail.join(", "))
}

/// `ingest-oracle` and `bound-pages-after-reads`: the oracle reads from a
/// thread of its own, bound to the last node with CPUs (its reads are
/// remote for every other node, and no thread that spawns later work is
/// left bound), then reads on for [`READ_ON`]; a line says how many pages
/// the kernel migrated meanwhile, and no memory of the index may have
/// moved (hot blocks moved to the reader's node when they were heap
/// memory, placed by first touch only: the fifteenth session's CI record).
pub(crate) fn remote_reads(
    topology: &Topology,
    index: &Index,
    ingested: Result<f64, String>,
    report: &mut Report,
) {
    let secs = match ingested {
        Ok(secs) => secs,
        Err(e) => {
            report.check("ingest-oracle", Err(e));
            return report.skip("bound-pages-after-reads", "the ingest failed");
        }
    };
    let migrated_before = vmstat("numa_pages_migrated");
    let reader_cpus = topology
        .nodes()
        .iter()
        .rev()
        .find(|n| n.has_cpus())
        .map(|n| n.cpus.clone());
    let (checked, pinned, passes) = std::thread::scope(|s| {
        s.spawn(|| {
            let pinned = reader_cpus
                .as_deref()
                .is_some_and(|cpus| topology.bind_current_thread(cpus).unwrap_or(false));
            let checked = ingest::compare_with_oracle(index, secs);
            // Reading on long enough for the kernel's NUMA balancing to
            // scan this thread's accesses (it starts after about a second
            // of a thread's run time): what it may move, it moves now,
            // before the next check looks.
            (checked, pinned, read_for(index, READ_ON))
        })
        .join()
        .expect("the oracle thread does not panic")
    });
    report.check("ingest-oracle", checked);
    println!(
        "# after the oracle's reads and {passes} more scans of every series in {:.1} s ({}): numa_pages_migrated {} -> {} (the kernel's NUMA balancing, {})",
        READ_ON.as_secs_f64(),
        if pinned { "from the last node" } else { "unpinned" },
        migrated_before.map_or("?".into(), |n| n.to_string()),
        vmstat("numa_pages_migrated").map_or("?".into(), |n| n.to_string()),
        std::fs::read_to_string("/proc/sys/kernel/numa_balancing")
            .map_or("setting absent".into(), |s| format!("numa_balancing {}", s.trim())),
    );
    report.check(
        "bound-pages-after-reads",
        check_placement(index, &Pages::ALL),
    );
}

/// How long the oracle's thread reads on after its check.
const READ_ON: Duration = Duration::from_secs(3);

/// Scans every series whole, again and again, for `time`; returns how
/// many times.
fn read_for(index: &Index, time: Duration) -> usize {
    let start = Instant::now();
    let mut passes = 0;
    let mut out = Vec::new();
    while start.elapsed() < time {
        for series in 0..SERIES {
            out.clear();
            index.scan_into(series, .., &mut out);
        }
        passes += 1;
    }
    passes
}

/// A counter of `/proc/vmstat`, where there is one.
fn vmstat(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/vmstat").ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
