//! The frozen blocks' 2 MiB chunks (`Builder::huge_pages`, on by
//! default): an index of one shard a node ingests enough random values
//! that each node's arena goes past its small chunks into slices of the
//! node's huge ones.
//! Their frozen blocks' pages must be on their node as the small chunks'
//! are, and where the kernel has transparent huge pages the process's
//! memory in huge pages must have grown with them.

use numatree::{Index, TopologySource};

use super::{check_pages, Pages};

/// Points a series; 16 series a node of random values freeze to ~8.2
/// bytes a point: ~2.6 MB a node's arena, past its 496 KiB of small
/// chunks.
const POINTS: i64 = 20_000;

/// Runs the check; `mis_place` binds each node's arenas to the next
/// node's memory (the negative control), so it must fail.
pub(crate) fn check(mis_place: bool) -> Result<String, String> {
    let before = anon_huge_kib().unwrap_or(0);
    let index = Index::builder()
        .topology(TopologySource::System)
        .shards_per_node(1)
        .plant_frozen_elsewhere(mis_place)
        .build()
        .map_err(|e| format!("index build: {e}"))?;
    if !index.huge_pages() {
        return Err("huge pages are off (NUMATREE_HUGE_PAGES=0?): nothing to check".into());
    }
    let series = 16 * index.plan().node_count() as u32;
    let mut writer = index.writer();
    for i in 0..POINTS {
        for s in 0..series {
            let mut x = (u64::from(s) << 40) ^ i as u64;
            x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            writer
                .insert(s, i * 10, x ^ (x >> 29))
                .map_err(|e| format!("insert: {e}"))?;
        }
    }
    writer.flush().map_err(|e| format!("flush: {e}"))?;
    drop(writer);
    index.flush().map_err(|e| format!("flush: {e}"))?;
    let frozen = index.stats().total.frozen_bytes;
    let placed = index
        .memory_placement()
        .map_err(|e| e.to_string())
        .and_then(|memory| check_pages(&memory, Pages::Frozen))?;
    let huge = match transparent_huge_pages() {
        None => "this kernel has no transparent huge pages".to_owned(),
        Some(mode) if mode == "never" => "transparent huge pages are off here".to_owned(),
        Some(mode) => match anon_huge_kib() {
            Some(kib) if kib > before => {
                format!("{} KiB more in huge pages (transparent huge pages: [{mode}])", kib - before)
            }
            Some(kib) => {
                return Err(format!(
                    "transparent huge pages are [{mode}], but the process's memory in huge pages went {before} -> {kib} KiB with {frozen} bytes of frozen blocks"
                ))
            }
            None => "no AnonHugePages line in /proc/self/smaps_rollup".to_owned(),
        },
    };
    index.close().map_err(|e| e.to_string())?;
    Ok(format!("{frozen} bytes of frozen blocks; {placed}; {huge}"))
}

/// The kernel's transparent huge page mode (`always`, `madvise` or
/// `never`), if it has them.
fn transparent_huge_pages() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_owned())
}

/// KiB of this process's anonymous memory in huge pages.
fn anon_huge_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = text.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
