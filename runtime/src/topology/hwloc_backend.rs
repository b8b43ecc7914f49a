//! The real backend: hwloc through `hwlocality`.

use super::{to_u32, topology_error, BindingSupport, CpuId, Loaded, NodeId, NumaNode};
use super::{Error, TopologySource};
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::memory::binding::{MemoryBindingFlags, MemoryBindingPolicy};
use hwlocality::memory::nodeset::NodeSet;
use hwlocality::object::types::ObjectType;
use std::collections::BTreeSet;

pub(super) struct Backend(pub(super) hwlocality::Topology);

impl Backend {
    pub(super) fn load(source: &TopologySource) -> Result<Loaded, Error> {
        let builder = hwlocality::Topology::builder();
        let builder = match source {
            TopologySource::System => builder,
            TopologySource::Synthetic(desc) => builder
                .from_synthetic(desc)
                .map_err(|e| topology_error(source, e))?,
            // `from_xml_file` panics (`unreachable!`) when the file is
            // missing, so read it here and hand hwloc the text.
            TopologySource::XmlFile(path) => {
                let xml = std::fs::read_to_string(path)
                    .map_err(|e| topology_error(source, format!("cannot read it: {e}")))?;
                builder
                    .from_xml(&xml)
                    .map_err(|e| topology_error(source, e))?
            }
        };
        let hw = builder
            .build()
            .map_err(|e| topology_error(source, format!("hwloc failed to build it: {e}")))?;

        let pus: Vec<usize> = hw
            .objects_with_type(ObjectType::PU)
            .filter_map(|pu| pu.os_index())
            .collect();
        let mut claimed = BTreeSet::new();
        let mut nodes = Vec::new();
        for numa in hw.objects_with_type(ObjectType::NUMANode) {
            let os_index = numa.os_index().ok_or_else(|| {
                topology_error(
                    source,
                    format!("NUMA node L#{} has no OS index", numa.logical_index()),
                )
            })?;
            let mut cpus = Vec::new();
            if let Some(cpuset) = numa.cpuset() {
                for &pu in &pus {
                    if cpuset.is_set(pu) && claimed.insert(pu) {
                        cpus.push(CpuId::new(to_u32(pu, "PU OS index", source)?));
                    }
                }
            }
            nodes.push(NumaNode {
                id: NodeId::new(to_u32(numa.logical_index(), "NUMA logical index", source)?),
                os_index: to_u32(os_index, "NUMA OS index", source)?,
                cpus,
            });
        }

        let support = hw.feature_support();
        let cpu = support
            .cpu_binding()
            .is_some_and(|s| s.set_current_thread());
        let (memory, location_query) = support.memory_binding().map_or((false, false), |s| {
            (
                s.set_area() && s.bind_policy(),
                s.get_area_memory_location(),
            )
        });
        Ok(Loaded {
            this_system: hw.is_this_system(),
            nodes,
            binding: BindingSupport { cpu, memory },
            location_query,
            backend: Self(hw),
        })
    }

    pub(super) fn bind_thread(&self, cpus: &[CpuId]) -> Result<(), String> {
        let set: CpuSet =
            cpus.iter()
                .map(|c| c.get() as usize)
                .fold(CpuSet::new(), |mut set, cpu| {
                    set.set(cpu);
                    set
                });
        self.0
            .bind_cpu(&set, CpuBindingFlags::THREAD)
            .map_err(|e| e.to_string())
    }

    pub(super) fn bind_area<T>(&self, area: &[T], os_node: u32) -> Result<(), String> {
        let mut set = NodeSet::new();
        set.set(os_node as usize);
        // MIGRATE would move already-touched pages, but hwlocality rejects
        // it for areas (module doc, "Memory binding").
        self.0
            .bind_memory_area(
                area,
                &set,
                MemoryBindingPolicy::Bind,
                MemoryBindingFlags::empty(),
            )
            .map_err(|e| e.to_string())
    }

    pub(super) fn area_location<T>(&self, area: &[T]) -> Result<Vec<u32>, String> {
        let set: NodeSet = self
            .0
            .area_memory_location(area, MemoryBindingFlags::empty())
            .map_err(|e| e.to_string())?;
        set.iter_set()
            .map(|os| u32::try_from(usize::from(os)).map_err(|e| e.to_string()))
            .collect()
    }
}
