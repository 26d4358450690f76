//! The switch's state and the commands that change it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::counters::{Counters, Reason};
use crate::domain::{ConfigError, DomainConfig, DomainId};
use crate::poll::BusyPoll;

/// A change the control plane asks of the data plane. The data plane never calls back into the
/// control plane; everything it needs arrives this way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create an L2 domain for a network.
    AddDomain {
        /// The caller-chosen id, unique among live domains.
        id: DomainId,
        /// Its subnet, gateway, MTU and isolation.
        config: DomainConfig,
    },
    /// Delete an L2 domain.
    RemoveDomain {
        /// The domain to delete.
        id: DomainId,
    },
}

/// Why [`Switch::apply`] refused a command; the switch's state is unchanged when it does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    /// `AddDomain` for an id that is already live.
    #[error("{id} already exists")]
    DuplicateDomain {
        /// The id given.
        id: DomainId,
    },
    /// A command naming a domain the switch does not have.
    #[error("{id} does not exist")]
    UnknownDomain {
        /// The id given.
        id: DomainId,
    },
    /// `AddDomain` with a config that breaks the switch's invariants.
    #[error("invalid config for {id}")]
    InvalidConfig {
        /// The id given.
        id: DomainId,
        /// The broken invariant.
        #[source]
        source: ConfigError,
    },
    /// A port could not be added or removed.
    #[error("port change refused")]
    Port(#[from] crate::runtime::PortError),
}

impl SwitchError {
    /// The counter this refusal is counted under.
    pub fn reason(&self) -> Reason {
        match self {
            SwitchError::DuplicateDomain { .. } => Reason::DuplicateDomain,
            SwitchError::UnknownDomain { .. } => Reason::UnknownDomain,
            SwitchError::InvalidConfig { .. } => Reason::InvalidConfig,
            SwitchError::Port(crate::runtime::PortError::UnknownDomain) => Reason::UnknownDomain,
            SwitchError::Port(crate::runtime::PortError::UnknownPort) => Reason::UnknownPort,
            SwitchError::Port(crate::runtime::PortError::Bridge(_)) => Reason::PortRefused,
        }
    }
}

/// The switch's state: its live domains and its counters.
///
/// Owned by exactly one task ([`crate::spawn`]); [`Switch::apply`] is synchronous and does no I/O,
/// so the same logic is tested directly and later driven by a deterministic simulation.
#[derive(Debug, Default)]
pub struct Switch {
    // A BTreeMap so listings come out in id order without sorting on every request.
    domains: BTreeMap<DomainId, DomainConfig>,
    counters: Arc<Counters>,
    busy_poll: Option<BusyPoll>,
}

impl Switch {
    /// An empty switch with zeroed counters; its ports park when idle (no busy polling).
    pub fn new() -> Self {
        Self::default()
    }

    /// The same switch with busy polling set for the ports it will have (`None`: off); see
    /// [`BusyPoll`].
    pub fn with_busy_poll(mut self, busy_poll: Option<BusyPoll>) -> Self {
        self.busy_poll = busy_poll;
        self
    }

    /// Its busy-polling window, if it polls.
    pub fn busy_poll(&self) -> Option<BusyPoll> {
        self.busy_poll
    }

    /// The counters, to share with whoever reports them.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Applies one command, or refuses it, counts the refusal and leaves the state unchanged.
    pub fn apply(&mut self, command: Command) -> Result<(), SwitchError> {
        let result = match command {
            Command::AddDomain { id, config } => self.add_domain(id, config),
            Command::RemoveDomain { id } => self
                .domains
                .remove(&id)
                .map(drop)
                .ok_or(SwitchError::UnknownDomain { id }),
        };
        if let Err(e) = &result {
            self.counters.count(e.reason());
        }
        result
    }

    fn add_domain(&mut self, id: DomainId, config: DomainConfig) -> Result<(), SwitchError> {
        if self.domains.contains_key(&id) {
            return Err(SwitchError::DuplicateDomain { id });
        }
        config
            .validate()
            .map_err(|source| SwitchError::InvalidConfig { id, source })?;
        self.domains.insert(id, config);
        Ok(())
    }

    /// One domain's config, if it is live.
    pub fn domain(&self, id: DomainId) -> Option<&DomainConfig> {
        self.domains.get(&id)
    }

    /// The live domains in id order.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = (DomainId, &DomainConfig)> + '_ {
        self.domains.iter().map(|(&id, config)| (id, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::bridge;
    use rstest::rstest;
    use std::net::Ipv4Addr;

    fn add(id: u64) -> Command {
        Command::AddDomain {
            id: DomainId(id),
            config: bridge(),
        }
    }

    fn remove(id: u64) -> Command {
        Command::RemoveDomain { id: DomainId(id) }
    }

    fn bad_gateway(id: u64) -> Command {
        Command::AddDomain {
            id: DomainId(id),
            config: DomainConfig {
                gateway: Ipv4Addr::new(10, 0, 0, 1),
                ..bridge()
            },
        }
    }

    /// Applies `setup`, then `command`, and checks the result, the live ids and the counters.
    #[rstest]
    #[case::add(vec![], add(1), None, vec![1])]
    #[case::add_second(vec![add(1)], add(2), None, vec![1, 2])]
    #[case::add_duplicate(vec![add(1)], add(1), Some(Reason::DuplicateDomain), vec![1])]
    #[case::add_invalid(vec![], bad_gateway(1), Some(Reason::InvalidConfig), vec![])]
    #[case::duplicate_before_invalid(
        vec![add(1)], bad_gateway(1), Some(Reason::DuplicateDomain), vec![1]
    )]
    #[case::remove(vec![add(1), add(2)], remove(1), None, vec![2])]
    #[case::remove_unknown(vec![add(1)], remove(2), Some(Reason::UnknownDomain), vec![1])]
    #[case::remove_twice(vec![add(1), remove(1)], remove(1), Some(Reason::UnknownDomain), vec![])]
    #[case::re_add_after_remove(vec![add(1), remove(1)], add(1), None, vec![1])]
    fn apply(
        #[case] setup: Vec<Command>,
        #[case] command: Command,
        #[case] refused: Option<Reason>,
        #[case] live: Vec<u64>,
    ) {
        let mut switch = Switch::new();
        for c in setup {
            switch.apply(c).unwrap();
        }
        let result = switch.apply(command);
        assert_eq!(result.as_ref().err().map(SwitchError::reason), refused);
        let ids: Vec<u64> = switch.domains().map(|(id, _)| id.0).collect();
        assert_eq!(ids, live);
        for reason in Reason::ALL {
            let expected = u64::from(refused == Some(reason));
            assert_eq!(switch.counters().get(reason), expected, "{reason}");
        }
    }

    #[test]
    fn invalid_config_keeps_its_cause() {
        let err = Switch::new().apply(bad_gateway(7)).unwrap_err();
        assert!(matches!(
            err,
            SwitchError::InvalidConfig {
                id: DomainId(7),
                source: ConfigError::GatewayOutsideSubnet { .. }
            }
        ));
        assert_eq!(err.to_string(), "invalid config for domain 7");
    }

    #[test]
    fn domain_returns_its_config() {
        let mut switch = Switch::new();
        switch.apply(add(3)).unwrap();
        assert_eq!(switch.domain(DomainId(3)), Some(&bridge()));
        assert_eq!(switch.domain(DomainId(4)), None);
    }
}
