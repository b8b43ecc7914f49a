//! The runtime's modules depend on one another in one direction only: a
//! record's path runs down the layers (writer -> pipeline -> slot / merge ->
//! storage) and no module imports one that imports it back. Read from the
//! source: every `crate::module` (or `crate::Name` re-exported from a
//! module) is an edge between top-level modules, and every `super::module`
//! inside a folder module is an edge between its files. Test-only model
//! harnesses (`model_tests`) are left out: nothing imports them, and so are
//! comments (doc links are not imports).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Identifiers that follow `prefix` in `text` (`prefix{a, b::c}` counts `a`, `b`).
fn targets(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        let rest = rest.strip_prefix('{').map_or(rest, |inner| inner);
        let group = if text[at + prefix.len()..].starts_with('{') {
            rest.split('}').next().unwrap_or_default()
        } else {
            rest
        };
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
            if !text[at + prefix.len()..].starts_with('{') {
                break;
            }
        }
    }
    out
}

/// `pub use module::{Name, ..}` lines of a root: re-exported name -> module.
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in root.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            map.insert(name.trim().to_string(), module.trim().to_string());
        }
    }
    map
}

fn add_edges(
    graph: &mut Graph,
    from: &str,
    text: &str,
    prefix: &str,
    names: &BTreeMap<String, String>,
    modules: &BTreeSet<String>,
) {
    for target in targets(text, prefix) {
        let to = names.get(&target).cloned().unwrap_or(target);
        if modules.contains(&to) && to != from {
            graph.entry(from.to_string()).or_default().insert(to);
        }
    }
}

/// A cycle in `graph`, if any, as the modules along it.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// Top-level module names (file stems and folder names) of a folder.
fn modules_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            (stem != "lib" && stem != "mod" && stem != "model_tests").then_some(stem)
        })
        .collect()
}

/// A file's code without its comments.
fn code_of(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The code of a module: its file, or every file of its folder and of the
/// folders inside it.
fn source_of(dir: &Path, module: &str) -> String {
    let file = dir.join(format!("{module}.rs"));
    if file.exists() {
        return code_of(&file);
    }
    let folder = dir.join(module);
    let mut text = String::new();
    for entry in fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            text += &source_of(&folder, &name);
        } else {
            text += &code_of(&path);
        }
    }
    text
}

#[test]
fn runtime_modules_form_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let names = reexports(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let modules = modules_in(&src);
    assert!(
        modules.contains("pipeline") && modules.contains("writer"),
        "{modules:?}"
    );
    let mut graph = Graph::new();
    for module in &modules {
        add_edges(
            &mut graph,
            module,
            &source_of(&src, module),
            "crate::",
            &names,
            &modules,
        );
    }
    assert_eq!(
        cycle(&graph),
        None,
        "import cycle between runtime modules: {graph:#?}"
    );
    // The layering the crate docs describe.
    assert!(graph["writer"].contains("pipeline"));
    assert!(!graph["pipeline"].contains("writer") && !graph["pipeline"].contains("index"));
    for folder in ["pipeline", "topology"] {
        let dir = src.join(folder);
        let files = modules_in(&dir);
        let mut graph = Graph::new();
        for file in &files {
            let text = code_of(&dir.join(format!("{file}.rs")));
            add_edges(&mut graph, file, &text, "super::", &BTreeMap::new(), &files);
        }
        assert_eq!(
            cycle(&graph),
            None,
            "import cycle inside {folder}/: {graph:#?}"
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&graph), None);
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        targets("use crate::{slot::Slot, sync::Arc};", "crate::"),
        ["slot", "sync"]
    );
    assert_eq!(targets("crate::Error", "crate::"), ["Error"]);
}
