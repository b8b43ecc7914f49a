//! Every contender the harness knows, in report order. Adding one (numatree's
//! adapter) is one line in [`all`].

use crate::contender::ContenderFactory;
use crate::peers;

/// The name whose rows get the "x best peer" column.
pub const TARGET: &str = "numatree";

/// Names of contenders that bound the others rather than compete with them
/// (left out of "best peer").
pub const CEILINGS: &[&str] = &["vec-ceiling"];

/// Every registered contender.
pub fn all() -> Vec<ContenderFactory> {
    vec![
        crate::numatree_adapter::factory(),
        peers::btree_rwlock(),
        peers::btree_sharded(),
        peers::skiplist(),
        peers::scc_tree(),
        peers::series_vec(),
        peers::vec_ceiling(),
    ]
}

/// The names of every registered contender, in report order.
pub fn names() -> Vec<String> {
    all().iter().map(|f| f.name().to_owned()).collect()
}

/// The registered contenders named in `names` (all when empty), in the order
/// given; an unknown name is an error listing the known ones.
pub fn select(names: &[String]) -> Result<Vec<ContenderFactory>, String> {
    let mut pool: Vec<Option<ContenderFactory>> = all().into_iter().map(Some).collect();
    if names.is_empty() {
        return Ok(pool.into_iter().flatten().collect());
    }
    let known: Vec<String> = pool.iter().flatten().map(|f| f.name().to_owned()).collect();
    names
        .iter()
        .map(|n| {
            pool.iter_mut()
                .find(|f| f.as_ref().is_some_and(|f| f.name() == n))
                .and_then(Option::take)
                .ok_or_else(|| {
                    format!(
                        "unknown or repeated contender '{n}': known are {}",
                        known.join(", ")
                    )
                })
        })
        .collect()
}
