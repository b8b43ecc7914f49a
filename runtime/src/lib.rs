//! numatree runtime (being built: see issue 3).

mod error;
pub mod topology;

pub use error::Error;
pub use topology::{BindingSupport, CpuId, NodeId, NumaNode, Topology, TopologySource};
