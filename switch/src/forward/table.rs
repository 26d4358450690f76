//! The learning table of one L2 domain: MAC → port.
//!
//! Two kinds of entries share one hash map, like the Linux bridge's FDB:
//!
//! - **static** entries for the MACs the control plane bound to a port (each endpoint's MAC, the
//!   gateway's MAC). They never age and never move: that is how "learning never lets a MAC move
//!   to a port whose policy does not own it" is enforced, in the one place every learn goes
//!   through. They also let the switch deliver to a container that has not spoken yet instead
//!   of flooding its traffic to every other container.
//! - **learned** entries, from [`PortPolicy::Open`](crate::PortPolicy::Open) ports, which age
//!   out after [`TableConfig::ageing_time`] without traffic (300 s, the Linux bridge default) and
//!   are capped per port and per domain.
//!
//! # Why a std `HashMap` with foldhash, and why it never allocates per frame
//!
//! A MAC is a 48-bit integer, so the key is a `u64` and the hash is foldhash's folded multiply: a
//! few nanoseconds, with a random per-process seed so a container choosing source MACs cannot
//! aim them at one bucket chain (and the per-port cap bounds how many it gets to choose). A
//! hand-written open-addressing table would save little over hashbrown's SIMD probing and would
//! need its own deletion and resize logic.
//!
//! hashbrown only allocates when an insert finds the table full *and* more than half of its
//! capacity holds live items; otherwise it rehashes in place to reclaim deleted slots. The table
//! is therefore sized, whenever a port is added (the control plane's time), for twice the most
//! entries it can ever hold: the static entries plus the learning budget
//! (`min(max_learned, learning ports × max_learned_per_port)`). Learning checks both caps
//! before inserting, so no insert on the data path allocates. A domain without learning ports
//! reserves nothing for learning.

use std::collections::HashMap;
use std::time::Duration;

use foldhash::fast::RandomState;

use super::{PortId, Timestamp};
use crate::counters::DropReason;
use crate::frame::MacAddr;

/// Limits of a domain's learning table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableConfig {
    /// How long a learned entry lives without traffic from its MAC: 300 s, like the Linux
    /// bridge's `ageing_time` default (and IEEE 802.1D's recommended value). Counted in whole
    /// seconds (at least 1).
    pub ageing_time: Duration,
    /// Most MACs one port may have learned at once: 1024 by default. A legitimate learning port
    /// (a container running a nested bridge or a handful of VMs) stays far below it; a port
    /// flooding random source MACs stops there, so it cannot evict or crowd out anyone else.
    pub max_learned_per_port: usize,
    /// Most learned MACs in the whole domain: 8192 by default (eight ports at their cap). It
    /// bounds the table's memory (~48 bytes per possible entry, reserved up front) however many
    /// learning ports there are. Static entries do not count against it.
    pub max_learned: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            ageing_time: Duration::from_secs(300),
            max_learned_per_port: 1024,
            max_learned: 8192,
        }
    }
}

/// 8 bytes, so a 16-byte bucket with its key: four to a cache line, which matters once the
/// table outgrows the cache (100 000 MACs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    port: PortId,
    /// Whole seconds since the epoch when the MAC last sent, or [`STATIC`]. Seconds are as
    /// fine as ageing needs (Open vSwitch's MAC learning counts them too), and 32 bits of them
    /// last 136 years.
    seen: u32,
}

/// `Entry::seen` of a static entry.
const STATIC: u32 = u32::MAX;

impl Entry {
    fn learned(self) -> bool {
        self.seen != STATIC
    }
}

/// `now` in the table's unit, whole seconds, kept below [`STATIC`].
fn seconds(now: Timestamp) -> u32 {
    u32::try_from(now.millis() / 1000)
        .unwrap_or(STATIC - 1)
        .min(STATIC - 1)
}

/// MAC → port for one domain; see the module docs.
#[derive(Debug)]
pub(crate) struct MacTable {
    entries: HashMap<u64, Entry, RandomState>,
    /// Learned entries per learning port; a port is present exactly while it may learn.
    learned_per_port: HashMap<PortId, usize, RandomState>,
    learned: usize,
    statics: usize,
    ageing_secs: u32,
    max_per_port: usize,
    max_learned: usize,
}

impl MacTable {
    pub(crate) fn new(config: TableConfig) -> Self {
        MacTable {
            entries: HashMap::default(),
            learned_per_port: HashMap::default(),
            learned: 0,
            statics: 0,
            ageing_secs: u32::try_from(config.ageing_time.as_secs())
                .unwrap_or(u32::MAX)
                .max(1),
            max_per_port: config.max_learned_per_port,
            max_learned: config.max_learned,
        }
    }

    fn is_fresh(&self, entry: &Entry, now: Timestamp) -> bool {
        !entry.learned() || seconds(now).saturating_sub(entry.seen) < self.ageing_secs
    }

    /// The port `mac` lives behind, if it is bound there or was learned there recently enough.
    pub(crate) fn lookup(&self, mac: MacAddr, now: Timestamp) -> Option<PortId> {
        self.entries
            .get(&mac.key())
            .filter(|e| self.is_fresh(e, now))
            .map(|e| e.port)
    }

    /// The port `mac` is statically bound to, if any.
    pub(crate) fn static_owner(&self, mac: MacAddr) -> Option<PortId> {
        self.entries
            .get(&mac.key())
            .filter(|e| !e.learned())
            .map(|e| e.port)
    }

    /// Records that `mac` sent from `port` (a learning port) at `now`, or says why it may not.
    pub(crate) fn learn(
        &mut self,
        mac: MacAddr,
        port: PortId,
        now: Timestamp,
    ) -> Result<(), DropReason> {
        let key = mac.key();
        if let Some(entry) = self.entries.get_mut(&key) {
            if entry.port == port {
                if entry.learned() {
                    entry.seen = seconds(now);
                }
                return Ok(());
            }
            if !entry.learned() {
                return Err(DropReason::MacOwnedElsewhere);
            }
            // A learned MAC moving between learning ports, as a VM migrating does; the Linux
            // bridge allows it too. Only the new port's cap applies: the domain total is
            // unchanged.
            let count = self
                .learned_per_port
                .get_mut(&port)
                .ok_or(DropReason::PortMacLimit)?;
            if *count >= self.max_per_port {
                return Err(DropReason::PortMacLimit);
            }
            *count += 1;
            let old = std::mem::replace(&mut entry.port, port);
            entry.seen = seconds(now);
            if let Some(old_count) = self.learned_per_port.get_mut(&old) {
                *old_count -= 1;
            }
            return Ok(());
        }
        let count = self
            .learned_per_port
            .get_mut(&port)
            .ok_or(DropReason::PortMacLimit)?;
        if *count >= self.max_per_port {
            return Err(DropReason::PortMacLimit);
        }
        if self.learned >= self.max_learned {
            return Err(DropReason::TableFull);
        }
        *count += 1;
        self.learned += 1;
        self.entries.insert(
            key,
            Entry {
                port,
                seen: seconds(now),
            },
        );
        Ok(())
    }

    /// Binds `mac` to `port` for good, replacing a learned entry (the owner claims its MAC).
    /// Refused with the current owner if another port holds it statically.
    pub(crate) fn add_static(&mut self, mac: MacAddr, port: PortId) -> Result<(), PortId> {
        if let Some(owner) = self.static_owner(mac) {
            return Err(owner);
        }
        let entry = Entry { port, seen: STATIC };
        if let Some(old) = self.entries.insert(mac.key(), entry) {
            self.forget_learned(old.port);
        }
        self.statics += 1;
        self.reserve();
        Ok(())
    }

    /// Lets `port` learn MACs from now on.
    pub(crate) fn add_learning_port(&mut self, port: PortId) {
        self.learned_per_port.insert(port, 0);
        self.reserve();
    }

    /// Drops every entry of `port`, static and learned, and its right to learn.
    pub(crate) fn remove_port(&mut self, port: PortId) {
        let (mut statics, mut learned) = (0, 0);
        self.entries.retain(|_, e| {
            if e.port != port {
                return true;
            }
            if e.learned() {
                learned += 1;
            } else {
                statics += 1;
            }
            false
        });
        self.statics -= statics;
        self.learned -= learned;
        self.learned_per_port.remove(&port);
    }

    /// Removes learned entries that have aged out; returns how many. Lookups already ignore
    /// them, so this only frees their slots and their share of the caps: the runtime should call
    /// it every few seconds (the Linux bridge's garbage collection runs at most every 10 s).
    pub(crate) fn expire(&mut self, now: Timestamp) -> usize {
        let (now, ageing_secs) = (seconds(now), self.ageing_secs);
        let per_port = &mut self.learned_per_port;
        let before = self.learned;
        let mut removed = 0;
        self.entries.retain(|_, e| {
            let stale = e.learned() && now.saturating_sub(e.seen) >= ageing_secs;
            if stale {
                removed += 1;
                if let Some(count) = per_port.get_mut(&e.port) {
                    *count -= 1;
                }
            }
            !stale
        });
        self.learned = before - removed;
        removed
    }

    /// Learned entries, stale ones not yet expired included.
    pub(crate) fn learned_len(&self) -> usize {
        self.learned
    }

    /// Learned entries of one port.
    pub(crate) fn learned_on(&self, port: PortId) -> usize {
        self.learned_per_port.get(&port).copied().unwrap_or(0)
    }

    fn forget_learned(&mut self, port: PortId) {
        self.learned -= 1;
        if let Some(count) = self.learned_per_port.get_mut(&port) {
            *count -= 1;
        }
    }

    /// Sizes the map for twice the most entries it can hold, so that learning never allocates
    /// (see the module docs).
    fn reserve(&mut self) {
        let budget = self.max_learned.min(
            self.learned_per_port
                .len()
                .saturating_mul(self.max_per_port),
        );
        let target = self.statics.saturating_add(budget).saturating_mul(2);
        if self.entries.capacity() < target {
            self.entries.reserve(target - self.entries.len());
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::mac;

    const P1: PortId = PortId(1);
    const P2: PortId = PortId(2);
    const P3: PortId = PortId(3);

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    fn table(per_port: usize, total: usize) -> MacTable {
        let mut t = MacTable::new(TableConfig {
            max_learned_per_port: per_port,
            max_learned: total,
            ..TableConfig::default()
        });
        t.add_learning_port(P1);
        t.add_learning_port(P2);
        t
    }

    #[test]
    fn learned_entries_age_out_after_300_s() {
        let mut t = table(10, 100);
        t.learn(mac(1), P1, at(0)).unwrap();
        assert_eq!(t.lookup(mac(1), at(299)), Some(P1));
        assert_eq!(t.lookup(mac(1), at(300)), None);
        // Traffic refreshes the entry.
        t.learn(mac(1), P1, at(200)).unwrap();
        assert_eq!(t.lookup(mac(1), at(499)), Some(P1));
        assert_eq!(t.expire(at(499)), 0);
        assert_eq!(t.expire(at(500)), 1);
        assert_eq!((t.learned_len(), t.learned_on(P1)), (0, 0));
    }

    #[test]
    fn static_entries_never_age_and_never_move() {
        let mut t = table(10, 100);
        t.add_static(mac(7), P3).unwrap();
        assert_eq!(t.lookup(mac(7), at(1_000_000)), Some(P3));
        assert_eq!(
            t.learn(mac(7), P1, at(1)),
            Err(DropReason::MacOwnedElsewhere)
        );
        assert_eq!(t.expire(at(1_000_000)), 0);
        assert_eq!(t.lookup(mac(7), at(1_000_000)), Some(P3));
        assert_eq!(t.add_static(mac(7), P1), Err(P3));
    }

    #[test]
    fn a_static_binding_takes_over_a_learned_mac() {
        let mut t = table(10, 100);
        t.learn(mac(7), P1, at(0)).unwrap();
        t.add_static(mac(7), P3).unwrap();
        assert_eq!(t.lookup(mac(7), at(1)), Some(P3));
        assert_eq!((t.learned_len(), t.learned_on(P1)), (0, 0));
    }

    #[test]
    fn learned_macs_move_between_learning_ports() {
        let mut t = table(10, 100);
        t.learn(mac(1), P1, at(0)).unwrap();
        t.learn(mac(1), P2, at(1)).unwrap();
        assert_eq!(t.lookup(mac(1), at(1)), Some(P2));
        assert_eq!(
            (t.learned_on(P1), t.learned_on(P2), t.learned_len()),
            (0, 1, 1)
        );
    }

    #[test]
    fn only_learning_ports_learn() {
        let mut t = table(10, 100);
        assert_eq!(t.learn(mac(1), P3, at(0)), Err(DropReason::PortMacLimit));
        assert_eq!(t.lookup(mac(1), at(0)), None);
    }

    #[test]
    fn per_port_and_overall_caps() {
        let mut t = table(2, 3);
        t.learn(mac(1), P1, at(0)).unwrap();
        t.learn(mac(2), P1, at(0)).unwrap();
        assert_eq!(t.learn(mac(3), P1, at(0)), Err(DropReason::PortMacLimit));
        // A move onto a full port is refused as well.
        t.learn(mac(4), P2, at(0)).unwrap();
        assert_eq!(t.learn(mac(4), P1, at(0)), Err(DropReason::PortMacLimit));
        assert_eq!(t.learn(mac(5), P2, at(0)), Err(DropReason::TableFull));
        // Known MACs keep working at the caps.
        t.learn(mac(1), P1, at(5)).unwrap();
        assert_eq!(t.learned_len(), 3);
        // Ageing frees the slots: mac(2) from 0 s and mac(1) from 5 s, not mac(4) from 100 s.
        t.learn(mac(4), P2, at(100)).unwrap();
        assert_eq!(t.expire(at(304)), 1);
        assert_eq!(t.expire(at(305)), 1);
        t.learn(mac(3), P1, at(305)).unwrap();
        t.learn(mac(5), P2, at(305)).unwrap();
        assert_eq!((t.learned_on(P1), t.learned_on(P2)), (1, 2));
    }

    #[test]
    fn removing_a_port_forgets_its_entries() {
        let mut t = table(10, 100);
        t.add_static(mac(9), P1).unwrap();
        t.learn(mac(1), P1, at(0)).unwrap();
        t.learn(mac(2), P2, at(0)).unwrap();
        t.remove_port(P1);
        assert_eq!(t.lookup(mac(9), at(0)), None);
        assert_eq!(t.lookup(mac(1), at(0)), None);
        assert_eq!(t.lookup(mac(2), at(0)), Some(P2));
        assert_eq!(t.learned_len(), 1);
        assert_eq!(t.learn(mac(3), P1, at(0)), Err(DropReason::PortMacLimit));
    }

    /// Churn through the caps for a long time: the map never needs to grow, so learning never
    /// allocates.
    #[test]
    fn churn_does_not_grow_the_table() {
        let mut t = table(64, 100);
        for n in 0..10 {
            t.add_static(mac(1_000_000 + n), P3).unwrap();
        }
        let reserved = t.capacity();
        assert!(reserved >= 2 * (10 + 100), "{reserved}");
        let mut next = 0;
        for second in 0..2000 {
            for _ in 0..50 {
                let port = if next % 2 == 0 { P1 } else { P2 };
                let _ = t.learn(mac(next), port, at(second));
                next += 1;
            }
            t.expire(at(second));
            assert!(t.learned_len() <= 100);
        }
        // `capacity()` counts live items plus free slots; a grown table would exceed the
        // reservation.
        assert!(t.capacity() <= reserved, "{} > {reserved}", t.capacity());
    }
}
