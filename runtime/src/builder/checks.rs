//! The checks `build` runs before anything starts: each setting's range
//! and the settings that contradict each other ([`Builder::check_settings`]),
//! then whether the slots and the reservation fit the address space, the
//! machine and the budget ([`Builder::check_memory`]). Every failure is an
//! [`Error::InvalidConfig`] that names the setting and its value, and the
//! limit or the setting it contradicts.

use super::env::{check_merge_helpers, check_nice};
use super::{
    Builder, DEFAULT_SLOT_CAPACITY, MAX_SLOTS_PER_NODE, MAX_SLOT_CAPACITY, MIN_SLOT_CAPACITY,
};
use crate::plan::Plan;
use crate::storage::{shard_share, ShardStorage};
use crate::Error;

impl Builder {
    /// Checks every setting that does not need the topology (ranges, and
    /// settings that contradict each other); returns the slot capacity to
    /// use.
    pub(super) fn check_settings(&self) -> Result<usize, Error> {
        let slot_capacity = self.slot_capacity.unwrap_or(DEFAULT_SLOT_CAPACITY);
        check_range(
            "slot_capacity",
            slot_capacity,
            MIN_SLOT_CAPACITY,
            MAX_SLOT_CAPACITY,
            "records",
        )?;
        if let Some(n) = self.slots_per_node {
            check_range("slots_per_node", n, 1, MAX_SLOTS_PER_NODE, "slots")?;
        }
        if let Some(series) = self.reserve_series {
            if series == 0 {
                return Err(Error::InvalidConfig(
                    "reserve_series = 0 is invalid: at least 1 series, or leave it unset".into(),
                ));
            }
            if self.reserve_records == 0 {
                return Err(Error::InvalidConfig(format!(
                    "reserve_series = {series} needs reserve_records: set how many records to reserve memory for"
                )));
            }
        }
        if self.memory_budget == Some(0) {
            return Err(Error::InvalidConfig(
                "memory_budget = 0 is invalid: must be > 0 bytes".into(),
            ));
        }
        if let Some(window) = self.retain.filter(|&w| w < 1) {
            return Err(Error::InvalidConfig(format!(
                "retain = {window} is invalid: the window must be >= 1 timestamp unit"
            )));
        }
        if let Some(age) = self.freeze_idle_after {
            if age < 1 {
                return Err(Error::InvalidConfig(format!(
                    "freeze_idle_after = {age} is invalid: the age must be >= 1 timestamp unit"
                )));
            }
            if let Some(window) = self.retain.filter(|&w| age >= w) {
                return Err(Error::InvalidConfig(format!(
                    "freeze_idle_after = {age} must be below retain = {window}: retention drops every point older than the window before its series could count as idle"
                )));
            }
            if self.keep_blocks_hot {
                return Err(Error::InvalidConfig(
                    "freeze_idle_after needs freezing on: remove freeze_blocks(false) or freeze_idle_after"
                        .into(),
                ));
            }
        }
        if let Some(nice) = self.merge_nice {
            check_nice("merge_nice", nice)?;
        }
        if let Some(n) = self.merge_helpers {
            check_merge_helpers("merge_helpers_per_node", n)?;
        }
        if self.wait_for_memory && self.memory_budget.is_none() {
            return Err(Error::InvalidConfig(
                "wait_for_memory needs a memory_budget: without one no writer ever waits for memory"
                    .into(),
            ));
        }
        Ok(slot_capacity)
    }

    /// Checks that the slots and the reservation fit the address space, the
    /// machine and the budget.
    pub(super) fn check_memory(&self, plan: &Plan, slot_capacity: usize) -> Result<Memory, Error> {
        let nodes = plan.node_count();
        let in_flight = self.slots_in_flight(plan);
        let slot_memory = self.check_slot_memory(&in_flight, slot_capacity)?;
        let reserve_per_node = self.reserve_records.div_ceil(nodes);
        let series_per_node = self.reserve_series.map(|n| n.div_ceil(nodes));
        if self.reserve_records > 0 {
            self.check_reserve(plan, slot_memory, reserve_per_node, series_per_node)?;
        }
        Ok(Memory {
            in_flight,
            reserve_per_node,
            series_per_node,
        })
    }

    /// In-flight slots of each node, in plan order: `slots_per_node`, or
    /// two per merge thread and two more.
    fn slots_in_flight(&self, plan: &Plan) -> Vec<usize> {
        plan.nodes()
            .iter()
            .map(|np| {
                self.slots_per_node.unwrap_or_else(|| {
                    np.merge_threads()
                        .saturating_mul(2)
                        .saturating_add(2)
                        .min(MAX_SLOTS_PER_NODE)
                })
            })
            .collect()
    }

    /// The bytes of every node's slots (`in_flight`, one entry a node, of
    /// `slot_capacity` records), checked against the address space, the
    /// machine and the budget (one slot a node at least).
    fn check_slot_memory(&self, in_flight: &[usize], slot_capacity: usize) -> Result<usize, Error> {
        let nodes = in_flight.len();
        let slot_bytes = slot_capacity
            .checked_mul(numatree_core::RECORD_BYTES)
            .ok_or_else(|| {
                Error::InvalidConfig(format!("slot_capacity = {slot_capacity} overflows"))
            })?;
        let mut slot_memory: usize = 0;
        for &slots in in_flight {
            slot_memory = slots
                .checked_mul(slot_bytes)
                .and_then(|b| slot_memory.checked_add(b))
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "slots_per_node = {slots} x slot_capacity = {slot_capacity} records \
                         does not fit in memory: lower either"
                    ))
                })?;
        }
        if let Some(machine) = physical_memory().filter(|&m| slot_memory > m) {
            return Err(Error::InvalidConfig(format!(
                "slots_per_node x slot_capacity = {slot_capacity} records needs up to \
                 {slot_memory} bytes of slots over {nodes} node(s), more than this machine's \
                 {machine} bytes of memory: lower either"
            )));
        }
        let one_slot_per_node = slot_bytes.saturating_mul(nodes);
        if let Some(budget) = self.memory_budget {
            if budget < one_slot_per_node {
                return Err(Error::InvalidConfig(format!(
                    "memory_budget = {budget} bytes is below one slot per node \
                     ({nodes} node(s) x {slot_bytes} bytes = {one_slot_per_node}): \
                     raise it or lower slot_capacity"
                )));
            }
        }
        Ok(slot_memory)
    }

    /// Checks that the reservation (`reserve_per_node` records of each
    /// node, over its shards), with the slots' `slot_memory`, fits the
    /// budget and the machine.
    fn check_reserve(
        &self,
        plan: &Plan,
        slot_memory: usize,
        reserve_per_node: usize,
        series_per_node: Option<usize>,
    ) -> Result<(), Error> {
        let reserved = plan
            .nodes()
            .iter()
            .try_fold(slot_memory, |acc, np| {
                let (per_shard, series) = shard_share(reserve_per_node, series_per_node, np.shards);
                ShardStorage::reserved_bytes(per_shard, series, !self.keep_blocks_hot)
                    .and_then(|b| b.checked_mul(np.shards))
                    .and_then(|b| acc.checked_add(b))
            })
            .unwrap_or(usize::MAX);
        let records = self.reserve_records;
        if let Some(budget) = self.memory_budget.filter(|&b| reserved > b) {
            return Err(Error::InvalidConfig(format!(
                "reserve_records = {records} needs about {reserved} bytes with the slots, \
                 above memory_budget = {budget} bytes: reserve less or raise the budget"
            )));
        }
        if let Some(machine) = physical_memory().filter(|&m| reserved > m) {
            return Err(Error::InvalidConfig(format!(
                "reserve_records = {records} needs about {reserved} bytes with the slots, \
                 more than this machine's {machine} bytes of memory"
            )));
        }
        Ok(())
    }
}

/// What `check_memory` settled.
pub(super) struct Memory {
    /// In-flight slots of each node, in plan order.
    pub(super) in_flight: Vec<usize>,
    /// Records to reserve on each node.
    pub(super) reserve_per_node: usize,
    /// Series they belong to on each node, when known.
    pub(super) series_per_node: Option<usize>,
}

/// `Err(InvalidConfig)` naming `name`, its value and the range, unless
/// `value` is in `min..=max`.
pub(crate) fn check_range<T: PartialOrd + Copy + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(Error::InvalidConfig(format!(
        "{name} = {value} is invalid: must be in {min}..={max} {unit}"
    )))
}

/// This machine's physical memory in bytes, where the OS says.
fn physical_memory() -> Option<usize> {
    #[cfg(all(unix, not(miri)))]
    {
        // SAFETY: `sysconf` only reads system configuration; it has no
        // preconditions and returns -1 for an unknown name.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let pages = usize::try_from(pages).ok()?;
        let page = usize::try_from(page).ok()?;
        pages.checked_mul(page)
    }
    #[cfg(not(all(unix, not(miri))))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_value_and_the_limits() {
        assert!(check_range("x", 5, 1, 5, "slots").is_ok());
        let err = check_range("x", 6, 1, 5, "slots").unwrap_err().to_string();
        assert!(
            err.contains("x = 6 is invalid: must be in 1..=5 slots"),
            "{err}"
        );
    }
}
