//! Drop and refusal counters, one per reason, readable while the switch runs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the switch refused a command (and, as the data plane grows, why it dropped a frame).
///
/// Adding a reason means adding a variant and listing it in [`Reason::ALL`]; [`Counters`] sizes
/// itself from that list, so nothing else changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `AddDomain` for an id the switch already has.
    DuplicateDomain,
    /// `RemoveDomain` (or any command naming a domain) for an id the switch does not have.
    UnknownDomain,
    /// `AddDomain` with a config that fails [`crate::DomainConfig::validate`].
    InvalidConfig,
}

impl Reason {
    /// Every reason, in counter order, for exporting all counters.
    pub const ALL: [Reason; 3] = [
        Reason::DuplicateDomain,
        Reason::UnknownDomain,
        Reason::InvalidConfig,
    ];

    /// A stable snake_case name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DuplicateDomain => "duplicate_domain",
            Reason::UnknownDomain => "unknown_domain",
            Reason::InvalidConfig => "invalid_config",
        }
    }

    /// The reason's slot in [`Counters`]; the `ALL` order, kept in one match so it cannot drift.
    fn index(self) -> usize {
        match self {
            Reason::DuplicateDomain => 0,
            Reason::UnknownDomain => 1,
            Reason::InvalidConfig => 2,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter per [`Reason`], shared (`Arc<Counters>`) between the switch task, which bumps them,
/// and whoever reports them, which reads them without stopping the switch.
#[derive(Debug, Default)]
pub struct Counters {
    by_reason: [AtomicU64; Reason::ALL.len()],
}

impl Counters {
    /// Counts one refusal or drop.
    pub fn count(&self, reason: Reason) {
        // Relaxed: each counter is an independent statistic; no other memory hangs off it.
        self.by_reason[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The current value of one counter.
    pub fn get(&self, reason: Reason) -> u64 {
        self.by_reason[reason.index()].load(Ordering::Relaxed)
    }

    /// Every counter with its reason, in [`Reason::ALL`] order.
    pub fn snapshot(&self) -> Vec<(Reason, u64)> {
        Reason::ALL.iter().map(|&r| (r, self.get(r))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }

    #[test]
    fn counts_per_reason() {
        let c = Counters::default();
        c.count(Reason::UnknownDomain);
        c.count(Reason::UnknownDomain);
        c.count(Reason::InvalidConfig);
        assert_eq!(
            c.snapshot(),
            vec![
                (Reason::DuplicateDomain, 0),
                (Reason::UnknownDomain, 2),
                (Reason::InvalidConfig, 1),
            ]
        );
    }
}
