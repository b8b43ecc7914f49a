//! Who runs a node's merges: its pinned rayon pool in production, model
//! threads under loom/shuttle (which cannot drive rayon). The node pipeline
//! only ever asks for "run this job once, soon", so the model tests run the
//! real pipeline code with nothing but the executor swapped.

use std::thread::{self, JoinHandle};

use crate::health::{panic_message, Health};
use crate::priority;
use crate::sync::{lock, Arc, Mutex};
use crate::topology::{CpuId, Topology};
use crate::Error;

/// A job the pipeline hands to its executor: merge the oldest sealed slot.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Runs a node's merge jobs.
pub(crate) trait Executor: Send + Sync {
    /// Arranges for `job` to run once, soon, on the node's merge threads.
    fn spawn(&self, job: Job);

    /// Runs `f` on one of the node's merge threads (pinned to the node) and
    /// returns when it is done: how memory is touched on the right node.
    fn install(&self, f: &(dyn Fn() + Sync));
}

/// A node's merge pool: rayon threads pinned to the node's merge CPUs.
pub(crate) struct RayonPool(rayon::ThreadPool);

impl Executor for RayonPool {
    fn spawn(&self, job: Job) {
        self.0.spawn(job);
    }

    fn install(&self, f: &(dyn Fn() + Sync)) {
        self.0.install(f);
    }
}

/// Starts node `index`'s merge pool: one thread per merge CPU, each pinned
/// at start (when `bind`) and set to nice value `nice` (when given;
/// `refused` is called when the system refuses), a panic outside a merge job
/// poisoning the index, and every thread's join handle pushed to `joins`
/// so `close` can join them all.
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge_pool(
    index: usize,
    cpus: Vec<CpuId>,
    bind: bool,
    nice: Option<i32>,
    topology: &Arc<Topology>,
    health: &Arc<Health>,
    refused: impl Fn() + Send + Sync + 'static,
    joins: &Arc<Mutex<Vec<JoinHandle<()>>>>,
) -> Result<RayonPool, Error> {
    let threads = cpus.len().max(1);
    let topo = Arc::clone(topology);
    let h = Arc::clone(health);
    let joins = Arc::clone(joins);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .spawn_handler(move |thread| {
            let name = format!("numatree-merge-n{index}-{}", thread.index());
            let handle = thread::Builder::new().name(name).spawn(|| thread.run())?;
            lock(&joins).push(handle);
            Ok(())
        })
        .start_handler(move |_| {
            if bind {
                // Best effort: an unbound merge thread is slower, not wrong.
                let _ = topo.bind_current_thread(&cpus);
            }
            if let Some(nice) = nice {
                if priority::set_current(nice).is_err() {
                    refused();
                }
            }
        })
        // Merges catch their own panics (see `NodePipeline::merge_next`);
        // this covers anything else a pool thread runs.
        .panic_handler(move |payload| h.poison(panic_message(&*payload)))
        .build()
        .map_err(|e| Error::Thread {
            what: format!("merge pool of node {index}"),
            reason: e.to_string(),
        })?;
    Ok(RayonPool(pool))
}
