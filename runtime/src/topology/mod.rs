//! NUMA topology: which NUMA nodes exist, which CPUs each one owns, and the
//! two hwloc operations the runtime needs — binding a thread to CPUs and
//! binding a memory area to a node.
//!
//! This is the only module that talks to hwloc (through `hwlocality`). Every
//! other module sees plain data ([`NumaNode`], [`NodeId`], [`CpuId`]) so that
//! placement logic can be unit-tested on any machine, and so that a test can
//! swap the real machine for an hwloc *synthetic* description
//! (`pack:2 numa:2 core:4 pu:1`) or an hwloc XML file of a real server
//! ([`TopologySource`], or the `NUMATREE_TOPOLOGY` variable). On such a
//! replacement topology everything is computed from it, but nothing is bound:
//! [`Topology::is_this_system`] is false, [`Topology::binding`] reports no
//! support, and the `bind_*` calls return `Ok(false)` ("skipped").
//!
//! # How CPUs are assigned to nodes
//!
//! hwloc 2 gives every NUMA node the cpuset of the object it is attached to,
//! so several nodes can share CPUs: a package with DRAM plus HBM or CXL memory
//! has two nodes with one cpuset. The runtime needs each CPU in exactly one
//! node, so a PU belongs to the *first* NUMA node (in hwloc logical order)
//! whose cpuset contains it. Later nodes sharing those CPUs are kept, with an
//! empty `cpus` list ([`NumaNode::has_cpus`] is false): memory can still be
//! bound to them, but the placement plan puts no partition on them. PUs the
//! process may not run on (cgroup/cpuset limits) are not listed at all.
//!
//! Within a node, CPUs are listed in hwloc's logical PU order, which keeps the
//! SMT siblings of a core next to each other, so splitting the list into two
//! contiguous runs keeps whole cores together.
//!
//! # Identifiers
//!
//! [`NodeId`] is the hwloc *logical* index of a NUMA node (0..n, dense,
//! stable for a topology); the OS number that `numactl` shows is kept in
//! [`NumaNode::os_index`]. [`CpuId`] is the OS index of a PU, the number the
//! kernel uses for affinity.
//!
//! # Loading
//!
//! Loading the real system with hwloc's x86 backend briefly binds the calling
//! thread to each PU in turn (to run `cpuid` there) and then restores its
//! binding, so load the topology once, up front, not from pinned hot threads.
//!
//! `hwlocality`'s `from_xml_file` panics on a missing file, so an XML file is
//! read by this module and its text handed to hwloc.
//!
//! # Sharing
//!
//! [`Topology`] is `Send + Sync`; load it once and share it with `Arc`. hwloc
//! topologies are safe for concurrent read-only use, which includes binding.
//!
//! # Memory binding
//!
//! [`Topology::bind_memory`] sets an area's policy to "bind to this node".
//! `hwlocality` 1.0.0-alpha.13 rejects the `MIGRATE` flag for area binding
//! (it returns `BadFlags` without calling hwloc), so pages that were already
//! touched stay where they are; only pages first touched after the call land
//! on the node. Bind fresh memory before touching it, or touch it from a thread
//! pinned to the node. The call is not `STRICT`: on Linux hwloc then asks the
//! kernel for a *preferred* node (`mbind(MPOL_PREFERRED_MANY)` with hwloc 2.9;
//! `STRICT` would give `MPOL_BIND`), so a full node spills to another node
//! instead of invoking the OOM killer. Binding acts on whole pages: the pages that hold
//! the first and last bytes of the area are bound too, with whatever else they
//! contain. [`Topology::memory_location`] reports where the resident pages of
//! an area actually are.
//!
//! # Miri
//!
//! Miri cannot call C. Under `cfg(miri)` no hwloc function is called: a
//! `System` topology is one node with `available_parallelism()` CPUs, a
//! synthetic string is parsed by a small Rust parser that understands the
//! `type:count ...` form (enough for `pack:2 numa:2 core:4 pu:1`), XML files
//! are refused, and binding is reported unsupported (`Ok(false)`). This lets
//! Miri tests of the rest of the runtime build and run.

mod ids;
mod source;

#[cfg(not(miri))]
mod hwloc_backend;
#[cfg(not(miri))]
use hwloc_backend::Backend;

#[cfg(any(miri, test))]
mod fake_backend;
#[cfg(test)]
use fake_backend::fake_synthetic_nodes;
#[cfg(miri)]
use fake_backend::Backend;

pub(crate) use ids::CpuList;
pub use ids::{CpuId, NodeId};
pub use source::TopologySource;

use crate::Error;
use std::collections::BTreeSet;
use std::fmt;

/// One NUMA node of a [`Topology`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NumaNode {
    /// hwloc logical index, 0..n.
    pub id: NodeId,
    /// OS number of the node (what `numactl --hardware` shows).
    pub os_index: u32,
    /// CPUs that belong to this node, in hwloc logical PU order. Empty for a
    /// memory-only node (see the module doc for how shared cpusets are split).
    pub cpus: Vec<CpuId>,
}

impl NumaNode {
    /// Whether any CPU belongs to this node; memory-only nodes get no
    /// partition in the plan.
    pub fn has_cpus(&self) -> bool {
        !self.cpus.is_empty()
    }
}

/// Which binding operations [`Topology`] will really perform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BindingSupport {
    /// Binding the calling thread to a set of CPUs.
    pub cpu: bool,
    /// Binding a memory area to a NUMA node.
    pub memory: bool,
}

/// The NUMA topology the runtime places its threads and memory on.
///
/// `Send + Sync`; share it with `Arc`.
pub struct Topology {
    source: TopologySource,
    nodes: Vec<NumaNode>,
    /// Every CPU of every node, sorted by OS index.
    cpus: Vec<CpuId>,
    this_system: bool,
    binding: BindingSupport,
    /// Whether hwloc can say on which node an area's pages are.
    location_query: bool,
    backend: Backend,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Topology>();
};

impl Topology {
    /// Loads the topology from `source`.
    ///
    /// # Errors
    ///
    /// [`Error::Topology`] when hwloc rejects the synthetic string or the XML
    /// file, or when the topology has no NUMA node with CPUs.
    pub fn load(source: &TopologySource) -> Result<Self, Error> {
        let loaded = Backend::load(source)?;
        let mut cpus: Vec<CpuId> = loaded
            .nodes
            .iter()
            .flat_map(|n| n.cpus.iter().copied())
            .collect();
        cpus.sort_unstable();
        if cpus.is_empty() {
            return Err(Error::Topology {
                source_desc: source.to_string(),
                reason: format!(
                    "none of its {} NUMA nodes has a CPU the process may use",
                    loaded.nodes.len()
                ),
            });
        }
        let this_system = loaded.this_system;
        Ok(Self {
            source: source.clone(),
            nodes: loaded.nodes,
            cpus,
            this_system,
            binding: BindingSupport {
                cpu: this_system && loaded.binding.cpu,
                memory: this_system && loaded.binding.memory,
            },
            location_query: this_system && loaded.location_query,
            backend: loaded.backend,
        })
    }

    /// Where this topology came from.
    pub fn source(&self) -> &TopologySource {
        &self.source
    }

    /// All NUMA nodes, in logical order (`nodes()[i].id == NodeId::new(i)`),
    /// including memory-only ones.
    pub fn nodes(&self) -> &[NumaNode] {
        &self.nodes
    }

    /// The node with this id, if it exists.
    pub fn node(&self, id: NodeId) -> Option<&NumaNode> {
        self.nodes.get(id.index())
    }

    /// Number of CPUs (PUs) over all nodes.
    pub fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// Whether this topology describes the machine the process runs on (false
    /// for synthetic and XML topologies).
    pub fn is_this_system(&self) -> bool {
        self.this_system
    }

    /// What binding this topology performs; both false when
    /// [`Topology::is_this_system`] is false.
    pub fn binding(&self) -> BindingSupport {
        self.binding
    }

    /// One line: source, node and CPU counts, binding support.
    pub fn summary(&self) -> String {
        let with_cpus = self.nodes.iter().filter(|n| n.has_cpus()).count();
        let mut line = format!(
            "{}: {} NUMA node{}",
            self.source,
            self.nodes.len(),
            if self.nodes.len() == 1 { "" } else { "s" }
        );
        if with_cpus != self.nodes.len() {
            line.push_str(&format!(" ({with_cpus} with CPUs)"));
        }
        line.push_str(&format!(", {} CPUs, binding: ", self.cpu_count()));
        line.push_str(match (self.binding.cpu, self.binding.memory) {
            (true, true) => "cpu+memory",
            (true, false) => "cpu only",
            (false, true) => "memory only",
            (false, false) if !self.this_system => "none (not this system)",
            (false, false) => "none (unsupported)",
        });
        line
    }

    /// Binds the calling thread to `cpus` (hwloc `THREAD` binding).
    ///
    /// Returns `Ok(false)` without doing anything when CPU binding is not
    /// supported or the topology is not this system.
    ///
    /// # Errors
    ///
    /// [`Error::Binding`] when `cpus` is empty, names a CPU that is not in the
    /// topology, or hwloc fails to bind.
    pub fn bind_current_thread(&self, cpus: &[CpuId]) -> Result<bool, Error> {
        if cpus.is_empty() {
            return Err(Error::Binding(
                "cannot bind a thread to an empty CPU list".into(),
            ));
        }
        if let Some(bad) = cpus.iter().find(|c| self.cpus.binary_search(c).is_err()) {
            return Err(Error::Binding(format!(
                "cpu {bad} is not in this topology (cpus {})",
                CpuList(&self.cpus)
            )));
        }
        if !self.binding.cpu {
            return Ok(false);
        }
        self.backend
            .bind_thread(cpus)
            .map(|()| true)
            .map_err(|reason| {
                Error::Binding(format!(
                    "binding this thread to cpus {}: {reason}",
                    CpuList(cpus)
                ))
            })
    }

    /// Binds the pages of `area` to `node` (policy *bind*, not strict).
    ///
    /// Only pages first touched after the call are placed on `node`; see the
    /// module doc ("Memory binding") for why already-touched pages do not
    /// move. An empty area is trivially bound. Returns `Ok(false)` without
    /// doing anything when memory binding is not supported or the topology is
    /// not this system.
    ///
    /// # Errors
    ///
    /// [`Error::Binding`] when `node` is not in the topology or hwloc fails.
    pub fn bind_memory<T>(&self, area: &[T], node: NodeId) -> Result<bool, Error> {
        let Some(numa) = self.node(node) else {
            return Err(Error::Binding(format!(
                "node {node} is not in this topology (it has {} NUMA nodes)",
                self.nodes.len()
            )));
        };
        if !self.binding.memory {
            return Ok(false);
        }
        self.backend
            .bind_area(area, numa.os_index)
            .map(|()| true)
            .map_err(|reason| {
                Error::Binding(format!(
                    "binding {} bytes of memory to node {node}: {reason}",
                    std::mem::size_of_val(area)
                ))
            })
    }

    /// The nodes on which the resident pages of `area` are, in logical order.
    ///
    /// Pages never touched are not resident and count for no node, so an
    /// untouched or empty area gives an empty list.
    ///
    /// # Errors
    ///
    /// [`Error::Binding`] when the topology is not this system, the OS cannot
    /// report page locations, or hwloc fails.
    pub fn memory_location<T>(&self, area: &[T]) -> Result<Vec<NodeId>, Error> {
        if !self.location_query {
            return Err(Error::Binding(format!(
                "cannot query where memory pages are on {}",
                if self.this_system {
                    "this system (unsupported by the OS)".to_string()
                } else {
                    format!("{} (not this system)", self.source)
                }
            )));
        }
        if std::mem::size_of_val(area) == 0 {
            return Ok(Vec::new());
        }
        let os_nodes = self
            .backend
            .area_location(area)
            .map_err(|reason| Error::Binding(format!("querying page locations: {reason}")))?;
        os_nodes
            .into_iter()
            .map(|os| {
                self.nodes
                    .iter()
                    .find(|n| n.os_index == os)
                    .map(|n| n.id)
                    .ok_or_else(|| {
                        Error::Binding(format!("pages are on OS node {os}, unknown to hwloc"))
                    })
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(|set| set.into_iter().collect())
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        for node in &self.nodes {
            write!(
                f,
                "\n  node {} (os {}): cpus {}",
                node.id,
                node.os_index,
                CpuList(&node.cpus)
            )?;
            if !node.has_cpus() {
                f.write_str(" (memory only)")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("source", &self.source)
            .field("nodes", &self.nodes)
            .field("this_system", &self.this_system)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

/// What a backend found; `binding` and `location_query` say what the OS
/// supports, before the `this_system` check.
struct Loaded {
    backend: Backend,
    nodes: Vec<NumaNode>,
    this_system: bool,
    binding: BindingSupport,
    location_query: bool,
}

fn topology_error(source: &TopologySource, reason: impl fmt::Display) -> Error {
    Error::Topology {
        source_desc: source.to_string(),
        reason: reason.to_string(),
    }
}

fn to_u32(value: usize, what: &str, source: &TopologySource) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| topology_error(source, format!("{what} {value} exceeds u32")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(desc: &str) -> Topology {
        Topology::load(&TopologySource::Synthetic(desc.into()))
            .unwrap_or_else(|e| panic!("{desc}: {e}"))
    }

    #[test]
    fn env_value_empty_or_blank_means_default() {
        assert_eq!(TopologySource::parse(""), None);
        assert_eq!(TopologySource::parse("   "), None);
    }

    #[test]
    fn env_value_ending_in_xml_is_an_xml_file() {
        assert_eq!(
            TopologySource::parse("/no/such/server.XML"),
            Some(TopologySource::XmlFile("/no/such/server.XML".into()))
        );
    }

    #[test]
    fn env_value_naming_an_existing_file_is_an_xml_file() {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert_eq!(
            TopologySource::parse(manifest),
            Some(TopologySource::XmlFile(manifest.into()))
        );
    }

    #[test]
    fn env_value_system_and_other_strings() {
        assert_eq!(
            TopologySource::parse("system"),
            Some(TopologySource::System)
        );
        assert_eq!(
            TopologySource::parse(" pack:2 numa:1 core:2 pu:1 "),
            Some(TopologySource::Synthetic(
                "pack:2 numa:1 core:2 pu:1".into()
            ))
        );
    }

    #[test]
    fn cpu_list_formats_runs_as_ranges() {
        let cpus = |ids: &[u32]| ids.iter().copied().map(CpuId::new).collect::<Vec<_>>();
        assert_eq!(CpuList(&cpus(&[])).to_string(), "-");
        assert_eq!(CpuList(&cpus(&[3])).to_string(), "3");
        assert_eq!(
            CpuList(&cpus(&[11, 0, 1, 2, 3, 8, 10])).to_string(),
            "0-3,8,10-11"
        );
    }

    #[test]
    fn synthetic_nodes_get_their_package_cpus_in_logical_order() {
        let topo = synthetic("pack:2 numa:2 core:4 pu:2");
        assert_eq!(topo.nodes().len(), 4);
        assert_eq!(topo.cpu_count(), 32);
        for (i, node) in topo.nodes().iter().enumerate() {
            assert_eq!(node.id, NodeId::new(i as u32));
            assert_eq!(node.os_index, i as u32);
            let first = 8 * i as u32;
            assert_eq!(
                node.cpus,
                (first..first + 8).map(CpuId::new).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "the Miri stand-in has no [numa] attach")]
    fn nodes_sharing_a_cpuset_leave_cpus_to_the_first_one() {
        // Two nodes attached to each package, like DRAM + HBM.
        let topo = synthetic("pack:2 [numa] [numa] core:2 pu:1");
        let cpus: Vec<usize> = topo.nodes().iter().map(|n| n.cpus.len()).collect();
        assert_eq!(cpus, [2, 0, 2, 0]);
        assert!(topo.to_string().contains("(memory only)"), "{topo}");
        assert!(topo.summary().contains("4 NUMA nodes (2 with CPUs)"));
    }

    #[test]
    fn synthetic_topology_binds_nothing() {
        let topo = synthetic("pack:2 numa:1 core:2 pu:1");
        assert!(!topo.is_this_system());
        assert_eq!(topo.binding(), BindingSupport::default());
        let cpus = topo.nodes()[1].cpus.clone();
        assert_eq!(topo.bind_current_thread(&cpus), Ok(false));
        let data = vec![0u64; 1024];
        assert_eq!(topo.bind_memory(&data, NodeId::new(1)), Ok(false));
        let err = topo.memory_location(&data).unwrap_err();
        assert!(err.to_string().contains("not this system"), "{err}");
    }

    #[test]
    fn binding_rejects_unknown_cpus_and_nodes() {
        let topo = synthetic("pack:2 numa:1 core:2 pu:1");
        let err = topo.bind_current_thread(&[CpuId::new(9)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "binding failed: cpu 9 is not in this topology (cpus 0-3)"
        );
        assert!(topo.bind_current_thread(&[]).is_err());
        let err = topo.bind_memory(&[1u8], NodeId::new(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "binding failed: node 2 is not in this topology (it has 2 NUMA nodes)"
        );
    }

    #[test]
    #[cfg(not(miri))] // exports XML through hwloc
    fn xml_file_loads_like_the_topology_it_was_exported_from() {
        let original = synthetic("pack:2 numa:1 core:3 pu:1");
        let path = std::env::temp_dir().join(format!("numatree-topo-{}.xml", std::process::id()));
        original
            .backend
            .0
            .export_xml_file(
                Some(&path),
                hwlocality::topology::export::xml::XMLExportFlags::empty(),
            )
            .expect("export XML");
        let loaded = Topology::load(&TopologySource::XmlFile(path.clone()));
        std::fs::remove_file(&path).ok();
        let loaded = loaded.expect("load exported XML");
        assert_eq!(loaded.nodes(), original.nodes());
        assert!(!loaded.is_this_system());
        assert!(loaded.summary().starts_with("XML file "));
    }

    #[test]
    #[cfg_attr(miri, ignore = "no XML under Miri")]
    fn missing_xml_file_is_a_topology_error() {
        let source = TopologySource::XmlFile("/no/such/numatree-topology.xml".into());
        match Topology::load(&source) {
            Err(Error::Topology {
                source_desc,
                reason,
            }) => {
                assert_eq!(source_desc, "XML file /no/such/numatree-topology.xml");
                assert!(reason.starts_with("cannot read it: "), "{reason}");
            }
            other => panic!("expected a topology error, got {other:?}"),
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "compares with hwloc")]
    fn miri_stand_in_parses_synthetic_strings_like_hwloc() {
        for desc in [
            "pu:1",
            "core:2 pu:1",
            "pack:4 core:2 pu:1",
            "numa:2 core:2 pu:1",
            "pack:2 numa:1 core:2 pu:1",
            "pack:2 numa:2 core:4 pu:1",
            "pack:2 numa:2 core:4 pu:2",
            "pack:4 numa:1 l3:1 core:2 pu:2",
        ] {
            let source = TopologySource::Synthetic(desc.into());
            let fake = fake_synthetic_nodes(desc, &source).unwrap();
            assert_eq!(fake, synthetic(desc).nodes(), "{desc}");
        }
    }
}
