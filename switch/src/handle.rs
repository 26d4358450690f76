//! The switch as a task: a command channel in, a oneshot reply out for each request.

use std::net::SocketAddrV4;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::counters::{Counters, PortStats};
use crate::domain::{DomainConfig, DomainId};
use crate::forward::{PortId, PortPolicy};
use crate::nat::{Listener, NatStats, Netns, PublishId};
use crate::poll::BusyPoll;
use crate::runtime::DataPath;
use crate::switch::{Command, Switch, SwitchError};
use crate::tap::AsyncTap;

/// Room for requests waiting on the task. Control-plane changes are rare; a bound gives the
/// senders backpressure instead of unbounded memory if the task ever stalls.
const CHANNEL_CAPACITY: usize = 64;

/// What travels over the channel: a command or a query, each with the way back to its caller.
#[derive(Debug)]
enum Request {
    Apply {
        command: Command,
        reply: oneshot::Sender<Result<(), SwitchError>>,
    },
    Domains {
        reply: oneshot::Sender<Vec<(DomainId, DomainConfig)>>,
    },
    AddPort {
        domain: DomainId,
        policy: PortPolicy,
        tap: AsyncTap,
        reply: oneshot::Sender<Result<PortId, SwitchError>>,
    },
    RemovePort {
        port: PortId,
        delete: bool,
        reply: oneshot::Sender<Result<(), SwitchError>>,
    },
    PortStats {
        port: PortId,
        reply: oneshot::Sender<Option<PortStats>>,
    },
    Publish {
        domain: DomainId,
        target: SocketAddrV4,
        listeners: Vec<Listener>,
        netns: Option<Netns>,
        reply: oneshot::Sender<Result<PublishId, SwitchError>>,
    },
    Unpublish {
        id: PublishId,
        reply: oneshot::Sender<()>,
    },
    NatStats {
        domain: DomainId,
        reply: oneshot::Sender<Option<NatStats>>,
    },
}

/// Why a [`SwitchHandle`] call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The switch received the command and refused it; nothing changed.
    #[error("the switch refused the command")]
    Refused(#[from] SwitchError),
    /// The switch task has stopped (cancelled, or it panicked), so the request was not handled
    /// or its outcome is unknown.
    #[error("the switch task has stopped")]
    Stopped,
}

/// The control plane's side of a running switch. Cheap to clone; the task stops when the
/// cancellation token fires or when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct SwitchHandle {
    requests: mpsc::Sender<Request>,
    counters: Arc<Counters>,
    busy_poll: Option<BusyPoll>,
}

/// Starts `switch` as a task in `tasks`, which runs until `cancel` fires or every handle is
/// dropped. The caller owns the `JoinSet`, so shutdown is `cancel.cancel()` then draining it.
///
/// Must be called from within a tokio runtime.
pub fn spawn(tasks: &mut JoinSet<()>, switch: Switch, cancel: CancellationToken) -> SwitchHandle {
    let (requests, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let counters = switch.counters();
    let busy_poll = switch.busy_poll();
    tasks.spawn(run(switch, rx, cancel));
    SwitchHandle {
        requests,
        counters,
        busy_poll,
    }
}

async fn run(mut switch: Switch, mut rx: mpsc::Receiver<Request>, cancel: CancellationToken) {
    let mut path = DataPath::new(switch.counters(), switch.busy_poll(), cancel.child_token());
    loop {
        let request = tokio::select! {
            // Cancellation wins over queued requests: their callers see `Stopped`.
            biased;
            () = cancel.cancelled() => return,
            request = rx.recv() => match request {
                Some(request) => request,
                None => return,
            },
        };
        // A failed reply means the caller stopped waiting; the command has taken effect (or
        // not) all the same, so there is nothing to undo.
        match request {
            Request::Apply { command, reply } => {
                let effect = command.clone();
                let result = switch.apply(command);
                if result.is_ok() {
                    match effect {
                        Command::AddDomain { id, config } => {
                            // The switch validated the config, so the bridge accepts it.
                            if let Err(e) = path.add_domain(id, &config) {
                                tracing::error!(%id, error = %e, "domain has no data path");
                            }
                        }
                        Command::RemoveDomain { id } => path.remove_domain(id),
                    }
                }
                let _ = reply.send(result);
            }
            Request::AddPort {
                domain,
                policy,
                tap,
                reply,
            } => {
                let result = path
                    .add_port(domain, policy, tap)
                    .map_err(SwitchError::from);
                if let Err(e) = &result {
                    switch.counters().count(e.reason());
                }
                let _ = reply.send(result);
            }
            Request::RemovePort {
                port,
                delete,
                reply,
            } => {
                let result = path.remove_port(port, delete).map_err(SwitchError::from);
                if let Err(e) = &result {
                    switch.counters().count(e.reason());
                }
                let _ = reply.send(result);
            }
            Request::PortStats { port, reply } => {
                let _ = reply.send(path.port_stats(port));
            }
            Request::Publish {
                domain,
                target,
                listeners,
                netns,
                reply,
            } => {
                let result = path
                    .publish(domain, target, listeners, netns)
                    .await
                    .map_err(SwitchError::from);
                let _ = reply.send(result);
            }
            Request::Unpublish { id, reply } => {
                path.unpublish(id).await;
                let _ = reply.send(());
            }
            Request::NatStats { domain, reply } => {
                let _ = reply.send(path.nat_stats(domain));
            }
            Request::Domains { reply } => {
                let _ = reply.send(switch.domains().map(|(id, c)| (id, *c)).collect());
            }
        }
    }
}

impl SwitchHandle {
    /// Creates a domain; returns once the switch has applied it.
    pub async fn add_domain(&self, id: DomainId, config: DomainConfig) -> Result<(), HandleError> {
        self.apply(Command::AddDomain { id, config }).await
    }

    /// Deletes a domain; returns once the switch has applied it.
    pub async fn remove_domain(&self, id: DomainId) -> Result<(), HandleError> {
        self.apply(Command::RemoveDomain { id }).await
    }

    /// Sends any command and waits until the switch has applied or refused it.
    pub async fn apply(&self, command: Command) -> Result<(), HandleError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Apply { command, reply }, rx)
            .await??;
        Ok(())
    }

    /// The live domains in id order, as of the moment the switch handled the request.
    pub async fn domains(&self) -> Result<Vec<(DomainId, DomainConfig)>, HandleError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Domains { reply }, rx).await
    }

    /// Adds `tap` as a port of `domain`; frames flow as soon as this returns.
    pub async fn add_port(
        &self,
        domain: DomainId,
        policy: PortPolicy,
        tap: AsyncTap,
    ) -> Result<PortId, HandleError> {
        let (reply, rx) = oneshot::channel();
        Ok(self
            .request(
                Request::AddPort {
                    domain,
                    policy,
                    tap,
                    reply,
                },
                rx,
            )
            .await??)
    }

    /// Forwards everything `listeners` receive to `target` (a container's address and port on
    /// `domain`), showing the container the client's real address where it can: the
    /// published ports of `-p`. The caller binds the sockets, so it reports bind failures in
    /// its own words; the switch serves them until [`SwitchHandle::unpublish`].
    ///
    /// With `netns` (the container's network namespace), TCP clients on the daemon's loopback
    /// take the splice fast path instead of the gateway (see `nat::splice`): the container
    /// then sees them come from its own address.
    pub async fn publish(
        &self,
        domain: DomainId,
        target: SocketAddrV4,
        listeners: Vec<Listener>,
        netns: Option<Netns>,
    ) -> Result<PublishId, HandleError> {
        let (reply, rx) = oneshot::channel();
        Ok(self
            .request(
                Request::Publish {
                    domain,
                    target,
                    listeners,
                    netns,
                    reply,
                },
                rx,
            )
            .await??)
    }

    /// Stops serving a publication and closes its sockets; connections already carried may
    /// finish. An id whose domain is gone is not an error.
    pub async fn unpublish(&self, id: PublishId) -> Result<(), HandleError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Unpublish { id, reply }, rx).await
    }

    /// A domain's live translation flows, or `None` for an unknown domain.
    pub async fn nat_stats(&self, domain: DomainId) -> Result<Option<NatStats>, HandleError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::NatStats { domain, reply }, rx).await
    }

    /// Removes a port; with `delete` its device goes away when the switch closes it.
    pub async fn remove_port(&self, port: PortId, delete: bool) -> Result<(), HandleError> {
        let (reply, rx) = oneshot::channel();
        Ok(self
            .request(
                Request::RemovePort {
                    port,
                    delete,
                    reply,
                },
                rx,
            )
            .await??)
    }

    /// A port's counters, if the port exists.
    pub async fn port_stats(&self, port: PortId) -> Result<Option<PortStats>, HandleError> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::PortStats { port, reply }, rx).await
    }

    /// The switch's counters; readable at any time, even after the task has stopped.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The switch's busy-polling window, if its ports poll ([`Switch::with_busy_poll`]).
    pub fn busy_poll(&self) -> Option<BusyPoll> {
        self.busy_poll
    }

    async fn request<T>(
        &self,
        request: Request,
        rx: oneshot::Receiver<T>,
    ) -> Result<T, HandleError> {
        self.requests
            .send(request)
            .await
            .map_err(|_| HandleError::Stopped)?;
        rx.await.map_err(|_| HandleError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Reason;
    use crate::domain::tests::bridge;

    fn start() -> (JoinSet<()>, SwitchHandle, CancellationToken) {
        let mut tasks = JoinSet::new();
        let cancel = CancellationToken::new();
        let handle = spawn(&mut tasks, Switch::new(), cancel.clone());
        (tasks, handle, cancel)
    }

    #[tokio::test]
    async fn commands_take_effect_in_order() {
        let (_tasks, handle, _cancel) = start();
        let internal = DomainConfig {
            internal: true,
            host_loopback: false,
            dns: None,
            ..bridge()
        };
        handle.add_domain(DomainId(2), bridge()).await.unwrap();
        handle.add_domain(DomainId(1), internal).await.unwrap();
        assert_eq!(
            handle.domains().await.unwrap(),
            vec![(DomainId(1), internal), (DomainId(2), bridge())]
        );
        handle.remove_domain(DomainId(2)).await.unwrap();
        assert_eq!(
            handle.domains().await.unwrap(),
            vec![(DomainId(1), internal)]
        );
    }

    #[tokio::test]
    async fn refusals_reach_the_caller_and_the_counters() {
        let (_tasks, handle, _cancel) = start();
        handle.add_domain(DomainId(1), bridge()).await.unwrap();
        assert_eq!(
            handle.add_domain(DomainId(1), bridge()).await,
            Err(HandleError::Refused(SwitchError::DuplicateDomain {
                id: DomainId(1)
            }))
        );
        assert_eq!(
            handle.remove_domain(DomainId(9)).await,
            Err(HandleError::Refused(SwitchError::UnknownDomain {
                id: DomainId(9)
            }))
        );
        assert_eq!(handle.counters().get(Reason::DuplicateDomain), 1);
        assert_eq!(handle.counters().get(Reason::UnknownDomain), 1);
        assert_eq!(handle.domains().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn cancel_stops_the_task() {
        let (mut tasks, handle, cancel) = start();
        handle.add_domain(DomainId(1), bridge()).await.unwrap();
        cancel.cancel();
        tasks.join_next().await.unwrap().unwrap();
        assert_eq!(handle.domains().await, Err(HandleError::Stopped));
        assert_eq!(
            handle.remove_domain(DomainId(1)).await,
            Err(HandleError::Stopped)
        );
    }

    #[tokio::test]
    async fn dropping_every_handle_stops_the_task() {
        let (mut tasks, handle, _cancel) = start();
        let clone = handle.clone();
        drop(handle);
        clone.add_domain(DomainId(1), bridge()).await.unwrap();
        drop(clone);
        tasks.join_next().await.unwrap().unwrap();
    }
}
