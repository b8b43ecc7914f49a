//! Binding the calling thread to the first node's CPUs succeeds on this
//! machine (or is reported as skipped where unsupported). Alone in its binary
//! because it changes the binding of the test thread.

use numatree::{Topology, TopologySource};

#[test]
fn binding_the_current_thread_to_the_first_nodes_cpus_succeeds() {
    let topo = Topology::load(&TopologySource::System).unwrap();
    let node = topo.nodes().iter().find(|n| n.has_cpus()).unwrap();
    let bound = topo.bind_current_thread(&node.cpus).unwrap();
    assert_eq!(bound, topo.binding().cpu);
    // A single CPU too.
    assert_eq!(topo.bind_current_thread(&node.cpus[..1]), Ok(bound));
}
