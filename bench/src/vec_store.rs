//! A growable, heap-backed [`NodeStore`] for benchmarks of the core tree
//! (the runtime's node-local store is internal to the runtime).

use numatree_core::{Node, NodeStore, TreeNodeId};

/// Nodes in one `Vec`; freed ids are reused.
#[derive(Debug, Default)]
pub struct VecStore {
    nodes: Vec<Node>,
    free: Vec<TreeNodeId>,
}

impl NodeStore for VecStore {
    fn alloc(&mut self, node: Node) -> Result<TreeNodeId, Node> {
        if let Some(id) = self.free.pop() {
            self.nodes[id.index()] = node;
            return Ok(id);
        }
        self.nodes.push(node);
        Ok(TreeNodeId(self.nodes.len() as u32 - 1))
    }
    fn free(&mut self, id: TreeNodeId) {
        self.free.push(id);
    }
    fn get(&self, id: TreeNodeId) -> &Node {
        &self.nodes[id.index()]
    }
    fn get_mut(&mut self, id: TreeNodeId) -> &mut Node {
        &mut self.nodes[id.index()]
    }
    fn available(&self) -> usize {
        usize::MAX
    }
    fn allocated(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
    fn bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>()
    }
}
