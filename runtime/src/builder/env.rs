//! Settings the environment gives when the code does not:
//! `NUMATREE_NODES` (which nodes), `NUMATREE_MERGE_NICE` (the merge
//! priority), `NUMATREE_MERGE_HELPERS` (writers that may help merge at
//! once) and `NUMATREE_HUGE_PAGES` (huge pages for frozen blocks), each
//! checked as strictly as the setter it stands for.
//! (`NUMATREE_TOPOLOGY` is the topology module's.)

use super::{check_range, HUGE_PAGES_ENV, MAX_WRITERS_PER_NODE, MERGE_HELPERS_ENV, NODES_ENV};
use crate::priority::{MERGE_NICE_ENV, NICE_RANGE};
use crate::Error;

/// Checks a nice value against [`NICE_RANGE`].
pub(super) fn check_nice(what: &str, nice: i32) -> Result<(), Error> {
    let (first, last) = (*NICE_RANGE.start(), *NICE_RANGE.end());
    check_range(
        what,
        nice,
        first,
        last,
        "(nice values: the lowest runs first)",
    )
}

/// Parses `NUMATREE_MERGE_NICE`, if set and non-empty.
pub(super) fn merge_nice_from_env() -> Result<Option<i32>, Error> {
    match std::env::var(MERGE_NICE_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_nice(&v).map(Some),
        _ => Ok(None),
    }
}

/// Parses a `NUMATREE_MERGE_NICE` value.
fn parse_nice(v: &str) -> Result<i32, Error> {
    let nice = v.trim().parse().map_err(|_| {
        Error::InvalidConfig(format!(
            "{MERGE_NICE_ENV}={v:?} is invalid: expected a nice value like -5"
        ))
    })?;
    check_nice(MERGE_NICE_ENV, nice)?;
    Ok(nice)
}

/// Checks a number of helper seats: at least one, at most a node's writers.
pub(super) fn check_merge_helpers(what: &str, n: usize) -> Result<(), Error> {
    check_range(what, n, 1, MAX_WRITERS_PER_NODE, "writers merging at once")
}

/// Parses `NUMATREE_MERGE_HELPERS`, if set and non-empty.
pub(super) fn merge_helpers_from_env() -> Result<Option<usize>, Error> {
    match std::env::var(MERGE_HELPERS_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_merge_helpers(&v).map(Some),
        _ => Ok(None),
    }
}

/// Parses a `NUMATREE_MERGE_HELPERS` value.
fn parse_merge_helpers(v: &str) -> Result<usize, Error> {
    let n = v.trim().parse().map_err(|_| {
        Error::InvalidConfig(format!(
            "{MERGE_HELPERS_ENV}={v:?} is invalid: expected a number of writers like 4"
        ))
    })?;
    check_merge_helpers(MERGE_HELPERS_ENV, n)?;
    Ok(n)
}

/// Parses `NUMATREE_HUGE_PAGES`, if set and non-empty.
pub(super) fn huge_pages_from_env() -> Result<Option<bool>, Error> {
    match std::env::var(HUGE_PAGES_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_switch(&v).map(Some),
        _ => Ok(None),
    }
}

/// Parses a `NUMATREE_HUGE_PAGES` value: `0` or `1`.
fn parse_switch(v: &str) -> Result<bool, Error> {
    match v.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(Error::InvalidConfig(format!(
            "{HUGE_PAGES_ENV}={v:?} is invalid: expected 0 (off) or 1 (on)"
        ))),
    }
}

/// Parses `NUMATREE_NODES`, if set and non-empty.
pub(super) fn nodes_from_env() -> Result<Option<Vec<usize>>, Error> {
    match std::env::var(NODES_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_node_list(&v).map(Some),
        _ => Ok(None),
    }
}

/// Parses a comma-separated list of node indexes.
fn parse_node_list(list: &str) -> Result<Vec<usize>, Error> {
    list.split(',')
        .map(|n| {
            n.trim().parse().map_err(|_| {
                Error::InvalidConfig(format!(
                    "{NODES_ENV}={list:?} is invalid: expected node indexes like 0 or 0,2"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_parse_or_name_the_bad_value() {
        assert_eq!(parse_node_list("1").unwrap(), [1]);
        assert_eq!(parse_node_list("0, 2").unwrap(), [0, 2]);
        let err = parse_node_list("0,x").unwrap_err().to_string();
        assert!(err.contains("NUMATREE_NODES=\"0,x\" is invalid"), "{err}");
    }

    #[test]
    fn huge_page_switches_parse_or_name_the_bad_value() {
        assert!(!parse_switch(" 0 ").unwrap());
        assert!(parse_switch("1").unwrap());
        let err = parse_switch("yes").unwrap_err().to_string();
        assert!(
            err.contains("NUMATREE_HUGE_PAGES=\"yes\" is invalid: expected 0 (off) or 1 (on)"),
            "{err}"
        );
    }

    #[test]
    fn merge_helper_counts_parse_or_name_the_bad_value() {
        assert_eq!(parse_merge_helpers(" 4 ").unwrap(), 4);
        assert_eq!(parse_merge_helpers("4096").unwrap(), 4096);
        let err = parse_merge_helpers("all").unwrap_err().to_string();
        assert!(
            err.contains("NUMATREE_MERGE_HELPERS=\"all\" is invalid: expected a number"),
            "{err}"
        );
        for bad in ["0", "4097"] {
            let err = parse_merge_helpers(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("NUMATREE_MERGE_HELPERS = {bad} is invalid")),
                "{err}"
            );
        }
    }

    #[test]
    fn nice_values_parse_or_name_the_bad_value() {
        assert_eq!(parse_nice(" -5 ").unwrap(), -5);
        assert_eq!(parse_nice("19").unwrap(), 19);
        let err = parse_nice("high").unwrap_err().to_string();
        assert!(
            err.contains("NUMATREE_MERGE_NICE=\"high\" is invalid"),
            "{err}"
        );
        let err = parse_nice("-21").unwrap_err().to_string();
        assert!(
            err.contains("NUMATREE_MERGE_NICE = -21 is invalid") && err.contains("-20"),
            "{err}"
        );
    }
}
