//! Identifiers of NUMA nodes and CPUs, and a compact printer for CPU lists.
//! See the parent module's "Identifiers" section for what the numbers mean.

use std::fmt;

/// A NUMA node: its hwloc logical index (0..n, dense).
///
/// The OS number of the node is [`NumaNode::os_index`](super::NumaNode::os_index).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(u32);

impl NodeId {
    /// The node with hwloc logical index `index`.
    pub const fn new(index: u32) -> Self {
        Self(index)
    }

    /// The logical index.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The logical index as a `usize`, for indexing.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A CPU (hwloc PU, a hardware thread): its OS index, as used for affinity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CpuId(u32);

impl CpuId {
    /// The CPU with OS index `os_index`.
    pub const fn new(os_index: u32) -> Self {
        Self(os_index)
    }

    /// The OS index.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Formats a CPU list compactly, sorted, with runs as ranges: `0-3,8,10-11`,
/// or `-` when empty.
pub(crate) struct CpuList<'a>(pub(crate) &'a [CpuId]);

impl fmt::Display for CpuList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<u32> = self.0.iter().map(|c| c.get()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return f.write_str("-");
        }
        let mut i = 0;
        while i < ids.len() {
            let start = ids[i];
            let mut end = start;
            while i + 1 < ids.len() && ids[i + 1] == end + 1 {
                i += 1;
                end = ids[i];
            }
            if start != ids[0] {
                f.write_str(",")?;
            }
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}
