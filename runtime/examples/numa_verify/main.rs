//! Proves numatree's NUMA placement on a real multi-node Linux kernel.
//!
//! `cargo xtask numa-vm` boots a QEMU guest with `--nodes` NUMA nodes of
//! `--cpus-per-node` CPUs each and runs this program as the guest's only
//! job. It prints one line per check, `PASS <name>: <detail>`,
//! `FAIL <name>: <why>` or `SKIP <name>: <why>`, then the summary
//! `numa-vm: N passed, M failed`, and exits 1 when a check failed:
//!
//! - `topology`: hwloc sees the expected nodes and CPUs, on this system;
//! - `binding-support`: hwloc can bind threads and memory here;
//! - `plan`: every writer and merge CPU of the plan lies in its node;
//! - `merge-thread-affinity`: every merge thread's kernel affinity is its
//!   node's merge CPUs (`/proc/self/task/*/status`);
//! - `slot-pages`, `tree-pages`: the pages of each node's reserved slot pool
//!   and reserved hot blocks are on that node ([`Index::memory_placement`];
//!   hot blocks are pieces of their shard's bound arena, as frozen ones);
//! - `writer-affinity`: every `run_writers` thread's affinity, read on the
//!   thread itself, lies in its node's writer CPUs;
//! - `merge-affinity`: every slot merge (seen through `Builder::merge_hook`)
//!   ran on its node's CPUs, and each node merged at least one slot on a
//!   merge thread of its own;
//! - `pages-after-ingest`: after a scrape workload with late points and
//!   rewrites, written by the pinned writers and flushed, slot and tree
//!   pages, including those allocated during ingest, are still on their
//!   node, and so are the frozen blocks;
//! - `ingest-oracle`: the index matches a `BTreeMap` oracle fed the same
//!   inserts, read by a thread bound to the last node with CPUs (its reads
//!   are remote for every other node), which then scans every series for
//!   3 s more; an informational line says how many pages Linux's NUMA
//!   balancing migrated meanwhile;
//! - `bound-pages-after-reads`: after those reads, slot buffers, hot blocks
//!   and frozen blocks, all bound (a bound area is one the kernel's NUMA
//!   balancing leaves alone), are still on their node. Hot blocks were
//!   heap memory placed by first touch until the sixteenth session, and
//!   such reads moved every one of them to the reader's node;
//! - `close`: close joins everything without error and nothing failed to
//!   allocate;
//! - `huge-chunk-pages`: a second index, one shard a node, ingests enough
//!   that each node's frozen-block arena carves slices of the node's 2 MiB
//!   huge-page chunks;
//!   their pages are on their node, and some memory is in huge pages
//!   where the kernel has them;
//! - `bench-per-node`: `--bench-script PATH --quick` exits 0 (SKIP without it).
//!
//! `--mis-bind` is the negative control: the first writer rebinds itself to
//! another node's CPUs, so `writer-affinity` must FAIL. `--mis-place-frozen`
//! is the arenas' one: each node's arenas (its hot and frozen blocks) are
//! bound to the next node's memory (`Builder::plant_frozen_elsewhere`), so
//! `tree-pages`, `pages-after-ingest`, `bound-pages-after-reads` and
//! `huge-chunk-pages` must FAIL.
//!
//! Outside a multi-node machine it runs too (`cargo run --release --example
//! numa_verify -- --nodes 1 --cpus-per-node $(nproc)`), which is how to try a
//! change before booting a VM.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod huge_chunks;
mod ingest;
mod pages;

use ingest::ingest;
use numatree::{CpuId, Index, MergeEvent, Topology, TopologySource};
use pages::{check_pages, check_placement, remote_reads, Pages};

/// Series in the scrape workload.
const SERIES: u32 = 64;
/// In-order points per series; late points and rewrites come on top.
const POINTS: i64 = 2_000;
/// Records reserved (pre-faulted) per index.
const RESERVE_RECORDS: usize = 200_000;

/// The verifier's command line.
#[derive(Debug)]
struct Args {
    nodes: usize,
    cpus_per_node: usize,
    mis_bind: bool,
    mis_place_frozen: bool,
    bench_script: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 2,
        cpus_per_node: 1,
        mis_bind: false,
        mis_place_frozen: false,
        bench_script: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--nodes" => args.nodes = parse_count(&value("--nodes")?)?,
            "--cpus-per-node" => args.cpus_per_node = parse_count(&value("--cpus-per-node")?)?,
            "--mis-bind" => args.mis_bind = true,
            "--mis-place-frozen" => args.mis_place_frozen = true,
            "--bench-script" => args.bench_script = Some(value("--bench-script")?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn parse_count(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(format!("`{text}` is not a count >= 1"))
}

/// Counts and prints check results.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("PASS {name}: {detail}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }

    fn skip(&self, name: &str, why: &str) {
        println!("SKIP {name}: {why}");
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("numa_verify: {e}");
            println!("FAIL arguments: {e}");
            println!("numa-vm: 0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut report = Report::default();
    run(&args, &mut report);
    println!("# checks took {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "numa-vm: {} passed, {} failed",
        report.passed, report.failed
    );
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(args: &Args, report: &mut Report) {
    let topology = match Topology::load(&TopologySource::System) {
        Ok(t) => t,
        Err(e) => return report.check("topology", Err(e.to_string())),
    };
    println!("# {}", topology.to_string().replace('\n', "\n# "));
    report.check("topology", check_topology(&topology, args));
    let binding = topology.binding();
    report.check(
        "binding-support",
        if binding.cpu && binding.memory {
            Ok("hwloc binds threads and memory".into())
        } else {
            Err(format!("hwloc support: {binding:?}"))
        },
    );

    let merges: Arc<Mutex<Vec<MergeSeen>>> = Arc::default();
    let seen = Arc::clone(&merges);
    let built = Index::builder()
        .topology(TopologySource::System)
        .reserve_records(RESERVE_RECORDS)
        .plant_frozen_elsewhere(args.mis_place_frozen)
        .merge_hook(move |event: MergeEvent| {
            let thread = std::thread::current();
            let seen_here = MergeSeen {
                node: event.node,
                thread: thread.name().unwrap_or("?").to_owned(),
                cpus: thread_cpus(),
            };
            seen.lock().unwrap().push(seen_here);
        })
        .build();
    let index = match built {
        Ok(index) => index,
        Err(e) => return report.check("index-build", Err(e.to_string())),
    };
    println!(
        "# {}",
        index.plan().to_string().trim_end().replace('\n', "\n# ")
    );
    report.check("plan", check_plan(&index));
    report.check("merge-thread-affinity", check_merge_threads(&index));
    match index.memory_placement() {
        Ok(memory) => {
            report.check("slot-pages", check_pages(&memory, Pages::Slots));
            report.check("tree-pages", check_pages(&memory, Pages::Tree));
        }
        Err(e) => {
            report.check("slot-pages", Err(e.to_string()));
            report.check("tree-pages", Err(e.to_string()));
        }
    }

    let (writers, ingested) = ingest(&index, args.mis_bind);
    report.check("writer-affinity", check_writers(&index, &writers));
    report.check(
        "merge-affinity",
        check_merges(&index, &merges.lock().unwrap()),
    );
    // Before any thread reads, and again after the remote reads below
    // (`bound-pages-after-reads`): when hot blocks were heap memory, placed
    // by first touch only, Linux's automatic NUMA balancing moved the pages
    // that a thread on another node read often towards it.
    report.check("pages-after-ingest", check_placement(&index, &Pages::ALL));
    remote_reads(&topology, &index, ingested, report);
    report.check(
        "close",
        match index.close() {
            Ok(stats) => match stats.verify_accounting() {
                Ok(()) => Ok(format!(
                    "{} records merged in {} slots, {} merged by waiting writers",
                    stats.total.records_merged(),
                    stats.total.slots_merged,
                    stats.total.helped_merges
                )),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        },
    );

    report.check(
        "huge-chunk-pages",
        huge_chunks::check(args.mis_place_frozen),
    );

    match &args.bench_script {
        Some(script) => report.check("bench-per-node", run_bench_script(script)),
        None => report.skip(
            "bench-per-node",
            "scripts/bench-per-node.sh is not in this checkout",
        ),
    }
}

// ---------------------------------------------------------------- topology and plan

/// CPUs of node `i` as QEMU numbers them: sockets in order, `cpus_per_node` each.
fn expected_cpus(node: usize, cpus_per_node: usize) -> BTreeSet<u32> {
    let first = (node * cpus_per_node) as u32;
    (first..first + cpus_per_node as u32).collect()
}

fn check_topology(topology: &Topology, args: &Args) -> Result<String, String> {
    if !topology.is_this_system() {
        return Err("hwloc says the topology is not this system".into());
    }
    let nodes: Vec<_> = topology.nodes().iter().filter(|n| n.has_cpus()).collect();
    if nodes.len() != args.nodes {
        return Err(format!(
            "expected {} NUMA nodes with CPUs, hwloc sees {}",
            args.nodes,
            nodes.len()
        ));
    }
    let mut detail = format!(
        "{} node{}:",
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" }
    );
    for (i, node) in nodes.iter().enumerate() {
        let got = cpu_set(&node.cpus);
        let want = expected_cpus(i, args.cpus_per_node);
        if got != want {
            return Err(format!(
                "node {} has CPUs {}, expected {}",
                node.id,
                list(&got),
                list(&want)
            ));
        }
        let _ = write!(detail, " node {} cpus {}", node.id, list(&got));
        if i + 1 < nodes.len() {
            detail.push(',');
        }
    }
    Ok(detail)
}

fn node_cpus(index: &Index, plan_node: usize) -> BTreeSet<u32> {
    let id = index.plan().nodes()[plan_node].node;
    index
        .topology()
        .node(id)
        .map(|n| cpu_set(&n.cpus))
        .unwrap_or_default()
}

fn check_plan(index: &Index) -> Result<String, String> {
    let plan = index.plan();
    if !plan.binding_applied() {
        return Err("the plan does not apply binding".into());
    }
    let mut detail = String::new();
    for (i, np) in plan.nodes().iter().enumerate() {
        let node = node_cpus(index, i);
        for (role, cpus) in [("writer", &np.writer_cpus), ("merge", &np.merge_cpus)] {
            let cpus = cpu_set(cpus);
            if cpus.is_empty() || !cpus.is_subset(&node) {
                return Err(format!(
                    "node {} {role} CPUs {} are not within the node's CPUs {}",
                    np.node,
                    list(&cpus),
                    list(&node)
                ));
            }
        }
        let _ = write!(
            detail,
            "{}node {}: writers {} merges {}",
            if i == 0 { "" } else { ", " },
            np.node,
            list(&cpu_set(&np.writer_cpus)),
            list(&cpu_set(&np.merge_cpus))
        );
    }
    Ok(detail)
}

// ---------------------------------------------------------------- thread affinity

/// The CPUs the calling thread may run on, from the kernel.
fn thread_cpus() -> BTreeSet<u32> {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| cpus_allowed(&s))
        .unwrap_or_default()
}

/// `Cpus_allowed_list` of a `/proc/.../status` text.
fn cpus_allowed(status: &str) -> Option<BTreeSet<u32>> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = BTreeSet::new();
    for part in line.trim().split(',').filter(|p| !p.is_empty()) {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(from.parse::<u32>().ok()?..=to.parse::<u32>().ok()?);
    }
    Some(cpus)
}

fn cpu_set(cpus: &[CpuId]) -> BTreeSet<u32> {
    cpus.iter().map(|c| c.get()).collect()
}

fn list(cpus: &BTreeSet<u32>) -> String {
    if cpus.is_empty() {
        return "(none)".into();
    }
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Every merge thread's affinity, found by name in `/proc/self/task`: the
/// kernel keeps 15 bytes of a name, so `numatree-merge-n0-1` reads as
/// `numatree-merge-` and the node is told by the CPUs alone. The multiset of
/// affinities must be exactly each node's merge CPUs, once per merge thread.
fn check_merge_threads(index: &Index) -> Result<String, String> {
    let mut found: Vec<BTreeSet<u32>> = Vec::new();
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    for task in tasks {
        let path = task.map_err(|e| e.to_string())?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with("numatree-merge") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).map_err(|e| e.to_string())?;
        found.push(cpus_allowed(&status).ok_or("no Cpus_allowed_list")?);
    }
    let mut expected: Vec<BTreeSet<u32>> = index
        .plan()
        .nodes()
        .iter()
        .flat_map(|np| vec![cpu_set(&np.merge_cpus); np.merge_threads()])
        .collect();
    found.sort();
    expected.sort();
    let show = |sets: &[BTreeSet<u32>]| {
        sets.iter()
            .map(|s| format!("[{}]", list(s)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if found == expected {
        Ok(format!(
            "{} merge threads bound to {}",
            found.len(),
            show(&found)
        ))
    } else {
        Err(format!(
            "merge threads may run on {}, expected {}",
            show(&found),
            show(&expected)
        ))
    }
}

/// A writer thread's view of itself.
struct WriterSeen {
    node: usize,
    thread: usize,
    pinned: bool,
    cpus: BTreeSet<u32>,
}

fn check_writers(index: &Index, writers: &[WriterSeen]) -> Result<String, String> {
    if writers.is_empty() {
        return Err("no writer thread ran".into());
    }
    for w in writers {
        let allowed = cpu_set(index.plan().writer_cpus(w.node));
        let name = format!("writer n{}-{}", w.node, w.thread);
        if !w.pinned {
            return Err(format!("{name} reports it is not pinned"));
        }
        if w.cpus.is_empty() || !w.cpus.is_subset(&allowed) {
            return Err(format!(
                "{name} may run on CPUs {}, outside node {}'s writer CPUs {}",
                list(&w.cpus),
                index.plan().nodes()[w.node].node,
                list(&allowed)
            ));
        }
    }
    Ok(format!(
        "{} writer threads, each within its node's writer CPUs",
        writers.len()
    ))
}

/// A slot merge, seen from the merge hook on the thread that ran it.
struct MergeSeen {
    node: usize,
    thread: String,
    cpus: BTreeSet<u32>,
}

fn check_merges(index: &Index, merges: &[MergeSeen]) -> Result<String, String> {
    let nodes = index.plan().node_count();
    let mut on_merge_threads = vec![0usize; nodes];
    let mut by_writers = 0;
    for m in merges {
        let allowed = node_cpus(index, m.node);
        if m.cpus.is_empty() || !m.cpus.is_subset(&allowed) {
            return Err(format!(
                "a merge for node {} ran on thread {} with CPUs {}, outside the node's CPUs {}",
                m.node,
                m.thread,
                list(&m.cpus),
                list(&allowed)
            ));
        }
        if let Some(rest) = m.thread.strip_prefix("numatree-merge-n") {
            let owner: usize = rest
                .split('-')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or(format!("unexpected merge thread name {}", m.thread))?;
            if owner != m.node {
                return Err(format!(
                    "merge thread {} merged a slot of node {}",
                    m.thread, m.node
                ));
            }
            on_merge_threads[m.node] += 1;
        } else {
            by_writers += 1;
        }
    }
    if let Some(idle) = on_merge_threads.iter().position(|&n| n == 0) {
        return Err(format!(
            "no slot of node {idle} was merged on its merge threads ({} merges seen)",
            merges.len()
        ));
    }
    Ok(format!(
        "{} merges on their node's merge threads {:?}, {by_writers} by waiting writers, all on their node's CPUs",
        on_merge_threads.iter().sum::<usize>(),
        on_merge_threads
    ))
}

// ---------------------------------------------------------------- per-node bench script

fn run_bench_script(script: &str) -> Result<String, String> {
    // Run as an executable, so its own `#!` line picks the shell.
    let output = std::process::Command::new(script)
        .arg("--quick")
        // The guest has the bench binaries in /bin, and no cargo to build them.
        .env("NUMATREE_BENCH_BIN", "/bin")
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
    {
        println!("# bench| {line}");
    }
    if output.status.success() {
        Ok(format!("{script} --quick exited 0"))
    } else {
        Err(format!("{script} --quick failed: {}", output.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_allowed_list_reads_ranges_and_singles() {
        let status = "Name:\tx\nCpus_allowed:\tf\nCpus_allowed_list:\t0-2,5\n";
        assert_eq!(cpus_allowed(status), Some(BTreeSet::from([0, 1, 2, 5])));
        assert_eq!(
            cpus_allowed("Cpus_allowed_list:\t3\n"),
            Some(BTreeSet::from([3]))
        );
        assert_eq!(cpus_allowed("Name:\tx\n"), None);
    }
}
