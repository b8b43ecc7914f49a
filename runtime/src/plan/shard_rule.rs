//! The partition rule's second half, per node: which of the node's shards
//! owns a series, and the series' rank there (what the shard's directory
//! is ordered by). Apart from the plan because the rule runs on every
//! record a merge groups and before every lookup's first load, so its
//! divisions are reciprocals.

use std::fmt;

use strength_reduce::StrengthReducedU32;

/// The second half of the partition rule, for one node: which of the
/// node's shards owns a series. The one place the rule is written; the
/// plan's [`route`](super::Plan::route) and the node pipelines both use it.
///
/// Its divisors are known only at run time, so each is kept with its
/// reciprocal (`strength_reduce`): a division becomes a multiplication and
/// a shift. A lookup computed four divisions before its first load (its
/// shard, then its rank in the shard), and a merge's sort two per record
/// it groups.
#[derive(Clone, Copy)]
pub struct ShardRule {
    node_count: u32,
    /// Shards of the node, `1..=256`.
    shards: u32,
    by_nodes: StrengthReducedU32,
    by_shards: StrengthReducedU32,
    /// `node_count * shards`: a rank is `series / (node_count * shards)`.
    by_stride: StrengthReducedU32,
}

// Equality, hashing and `Debug` look at the two counts only: the
// reciprocals are made from them.
impl PartialEq for ShardRule {
    fn eq(&self, other: &Self) -> bool {
        (self.node_count, self.shards) == (other.node_count, other.shards)
    }
}

impl Eq for ShardRule {}

impl fmt::Debug for ShardRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardRule")
            .field("node_count", &self.node_count)
            .field("shards", &self.shards)
            .finish()
    }
}

impl std::hash::Hash for ShardRule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.node_count, self.shards).hash(state);
    }
}

impl ShardRule {
    /// The rule for a node of a plan with `node_count` nodes and `shards`
    /// shards on this node (both at least 1, their product a `u32`: a
    /// plan has at most `u32::MAX / 256` nodes of at most 256 shards).
    pub(crate) fn new(node_count: u32, shards: u32) -> ShardRule {
        let stride = node_count
            .checked_mul(shards)
            .expect("nodes times shards fits a u32");
        ShardRule {
            node_count,
            shards,
            by_nodes: StrengthReducedU32::new(node_count),
            by_shards: StrengthReducedU32::new(shards),
            by_stride: StrengthReducedU32::new(stride),
        }
    }

    /// The node of `series` (an index into the plan's nodes):
    /// `series % node_count`.
    #[inline]
    pub(crate) fn node_of(self, series: u32) -> usize {
        (series % self.by_nodes) as usize
    }

    /// The shard of `series`: `(series / node_count) % shards`.
    #[inline]
    pub fn shard_of(self, series: u32) -> usize {
        ((series / self.by_nodes) % self.by_shards) as usize
    }

    /// Shards of the node.
    pub fn shards(self) -> usize {
        self.shards as usize
    }

    /// The series' rank among the series of its shard when ids are dense:
    /// `series / node_count / shards` (what the shard's directory orders
    /// its table by, so a sorted run walks it in order).
    #[inline]
    pub fn local_index(self, series: u32) -> u32 {
        series / self.by_stride
    }

    /// What `series` keeps of its id beside its rank:
    /// `series - local_index(series) * node_count * shards`, the same for
    /// every series of a shard (its node and shard), so that the rank and
    /// the shard give the id back.
    #[inline]
    pub(crate) fn residue(self, series: u32) -> u32 {
        series % self.by_stride
    }

    /// The series of rank `local` whose ids leave `residue`.
    #[inline]
    pub(crate) fn series_of(self, local: u32, residue: u32) -> u32 {
        local * self.node_count * self.shards + residue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The rule's reciprocals give exactly what the divisions they
        /// replace give, at every id, the extremes included.
        #[test]
        fn shard_rule_matches_plain_division(
            node_count in 1u32..=64,
            shards in 1u32..=256,
            series in proptest::prop_oneof![
                proptest::prelude::any::<u32>(),
                (u32::MAX - 1024)..=u32::MAX,
                0u32..1024,
            ],
        ) {
            let rule = ShardRule::new(node_count, shards);
            proptest::prop_assert_eq!(rule.node_of(series), (series % node_count) as usize);
            proptest::prop_assert_eq!(
                rule.shard_of(series),
                ((series / node_count) % shards) as usize
            );
            let rank = series / node_count / shards;
            proptest::prop_assert_eq!(rule.local_index(series), rank);
            let residue = series - rank * node_count * shards;
            proptest::prop_assert_eq!(rule.residue(series), residue);
            proptest::prop_assert_eq!(rule.series_of(rank, residue), series);
        }
    }
}
