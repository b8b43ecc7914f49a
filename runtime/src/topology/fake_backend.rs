//! Miri cannot call hwloc: a Rust-only stand-in (parent module doc,
//! "Miri"), and its synthetic-string parser, which the tests compare with
//! hwloc's own.

use super::{to_u32, topology_error, CpuId, NodeId};
#[cfg(miri)]
use super::{BindingSupport, Loaded};
use super::{Error, NumaNode, TopologySource};

#[cfg(miri)]
pub(super) struct Backend;

#[cfg(miri)]
const NO_HWLOC: &str = "hwloc is not available under Miri";

#[cfg(miri)]
impl Backend {
    pub(super) fn load(source: &TopologySource) -> Result<Loaded, Error> {
        let nodes = match source {
            TopologySource::System => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                vec![NumaNode {
                    id: NodeId::new(0),
                    os_index: 0,
                    cpus: (0..cpus as u32).map(CpuId::new).collect(),
                }]
            }
            TopologySource::Synthetic(desc) => fake_synthetic_nodes(desc, source)?,
            TopologySource::XmlFile(_) => return Err(topology_error(source, NO_HWLOC)),
        };
        Ok(Loaded {
            backend: Self,
            nodes,
            this_system: *source == TopologySource::System,
            binding: BindingSupport::default(),
            location_query: false,
        })
    }

    pub(super) fn bind_thread(&self, _cpus: &[CpuId]) -> Result<(), String> {
        Err(NO_HWLOC.into())
    }

    pub(super) fn bind_area<T>(&self, _area: &[T], _os_node: u32) -> Result<(), String> {
        Err(NO_HWLOC.into())
    }

    pub(super) fn area_location<T>(&self, _area: &[T]) -> Result<Vec<u32>, String> {
        Err(NO_HWLOC.into())
    }
}

/// The Miri stand-in for hwloc's synthetic parser: `type:count` levels from
/// the root down to `pu`, attributes in parentheses ignored, NUMA nodes at the
/// `numa` level (one node for the machine when there is none). Unit-tested
/// against hwloc itself.
pub(super) fn fake_synthetic_nodes(
    desc: &str,
    source: &TopologySource,
) -> Result<Vec<NumaNode>, Error> {
    let mut levels = Vec::new();
    for token in desc.split_whitespace() {
        let token = token.split('(').next().unwrap_or_default();
        let (kind, count) = token
            .split_once(':')
            .ok_or_else(|| topology_error(source, format!("level {token:?} is not type:count")))?;
        let count: usize = count
            .parse()
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| topology_error(source, format!("bad count in level {token:?}")))?;
        levels.push((kind.to_ascii_lowercase(), count));
    }
    if levels.last().map(|(kind, _)| kind.as_str()) != Some("pu") {
        return Err(topology_error(source, "the last level must be pu:N"));
    }
    let total: usize = levels.iter().map(|&(_, c)| c).product();
    let numa_level = levels
        .iter()
        .position(|(kind, _)| matches!(kind.as_str(), "numa" | "numanode" | "node"));
    let nodes: usize = numa_level.map_or(1, |at| levels[..=at].iter().map(|&(_, c)| c).product());
    let per_node = total / nodes;
    (0..nodes)
        .map(|n| {
            Ok(NumaNode {
                id: NodeId::new(to_u32(n, "NUMA logical index", source)?),
                os_index: to_u32(n, "NUMA OS index", source)?,
                cpus: (n * per_node..(n + 1) * per_node)
                    .map(|c| to_u32(c, "PU OS index", source).map(CpuId::new))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}
