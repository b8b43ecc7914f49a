//! Merges the JSON reports of several `numatree-bench` processes (one per
//! NUMA node, see `scripts/bench-per-node.sh`) into one report: every
//! node's summary side by side, and per (shape, phase, contender, threads)
//! the summed throughput of all nodes running at once.
//!
//! Usage: `numatree-bench-merge OUT.json NODE0.json NODE1.json ...`

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{json, Value};

/// Throughput metrics that add up across nodes running concurrently.
const ADDITIVE: &[&str] = &[
    "mops_e2e",
    "mops_writer",
    "mops",
    "kops",
    "mrecords_per_s",
    "records",
    "records_returned",
    "writer_mops",
    "reader_mops",
];

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("numatree-bench-merge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let [out, inputs @ ..] = args.as_slice() else {
        return Err("usage: numatree-bench-merge OUT.json NODE0.json [NODE1.json ...]".into());
    };
    if inputs.is_empty() {
        return Err("no node reports given".into());
    }
    let reports: Vec<Value> = inputs
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"))?;
            serde_json::from_str(&text).map_err(|e| format!("parsing {p}: {e}"))
        })
        .collect::<Result<_, String>>()?;
    type Row = (String, String, String, u64);
    let mut combined: BTreeMap<Row, BTreeMap<String, f64>> = BTreeMap::new();
    for report in &reports {
        let failures = report["outcome"]["failures"].as_array().map_or(0, Vec::len);
        if failures > 0 {
            return Err(format!(
                "a node report holds {failures} verification failure(s)"
            ));
        }
        for s in report["summary"]
            .as_array()
            .ok_or("report without a summary")?
        {
            // Reports before schema 2 have one shape, the default.
            let key = (
                s["shape"].as_str().unwrap_or("default").to_owned(),
                s["phase"].as_str().unwrap_or("?").to_owned(),
                s["contender"].as_str().unwrap_or("?").to_owned(),
                s["threads"].as_u64().unwrap_or(0),
            );
            let entry = combined.entry(key).or_default();
            for metric in ADDITIVE {
                if let Some(v) = s["metrics"][*metric]["median"].as_f64() {
                    *entry.entry((*metric).to_owned()).or_default() += v;
                }
            }
        }
    }
    println!("| shape | phase | contender | threads per node | nodes | summed median metrics |");
    println!("|---|---|---|---|---|---|");
    let rows: Vec<Value> = combined
        .iter()
        .map(|((shape, phase, contender, threads), metrics)| {
            let text: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
            println!("| {shape} | {phase} | {contender} | {threads} | {} | {} |", reports.len(), text.join(", "));
            json!({ "shape": shape, "phase": phase, "contender": contender, "threads_per_node": threads, "sum_of_medians": metrics })
        })
        .collect();
    let doc = json!({ "nodes": reports.len(), "combined": rows, "per_node": reports });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(out, text).map_err(|e| format!("writing {out}: {e}"))?;
    println!("\ncombined report: {out}");
    Ok(())
}
