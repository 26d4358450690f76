//! Busy polling: an opt-in trade of CPU time for latency.
//!
//! By default a port task that finds its TAP empty parks until the kernel reports the next
//! frame, and the wake-up of a parked thread (on a virtual machine: of a halted vCPU) is most of
//! the time a sparse exchange spends in the switch (a ping, a request and its answer). With a
//! [`BusyPoll`] window, a port whose frames come sparsely (batches at least [`SPARSE_GAP`]
//! apart, see [`Pace`]) keeps reading its TAP after each batch for up to the window before it
//! parks, yielding to the runtime and to the CPU's other threads between reads, so the next
//! frame is usually picked up without a wake-up. Dense traffic is not polled: its next frame
//! arrives before a park costs much, and polling would take CPU time from the senders and
//! receivers. Nor is a busy CPU: when the yields show that other threads want it
//! ([`Contention`]), the port parks. The price is CPU: up to one core per polled port while the
//! sparse traffic lasts, plus the window after it.

use std::time::Duration;

/// The quiet time before a batch from which the batch counts as sparse: long enough for an idle
/// vCPU to have halted (a guest's haltpoll polls up to 200 us first) and far above the gaps
/// inside bulk traffic (with 200 us, bulk TCP still polled a few hundred frames a second).
pub(crate) const SPARSE_GAP: Duration = Duration::from_millis(1);

/// How many sparse batches in a row make a port sparse (polled after each batch).
const SPARSE_RUN: u8 = 2;

/// A port's pace: whether its recent batches came sparsely.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    sparse_run: u8,
}

impl Pace {
    /// Records a batch that came after `gap` of quiet; true when the port should be polled
    /// after it.
    pub(crate) fn batch(&mut self, gap: Duration) -> bool {
        self.sparse_run = if gap >= SPARSE_GAP {
            self.sparse_run.saturating_add(1).min(SPARSE_RUN)
        } else {
            0
        };
        self.sparse_run >= SPARSE_RUN
    }
}

/// A yield of the polling thread that took longer than this ran another thread meanwhile.
const YIELD_RAN_OTHERS: Duration = Duration::from_micros(5);

/// How long a poll runs before [`Contention`] judges it.
const JUDGE_AFTER: Duration = Duration::from_micros(200);

/// Whether the polling thread's CPU is wanted by other threads: the time its yields handed out
/// (those that took longer than [`YIELD_RAN_OTHERS`]) against the time polled. A sparse
/// exchange leaves the CPU to the poller nearly all the time (its peers sleep between frames);
/// bulk traffic keeps the senders and receivers runnable, and the poller should park instead of
/// competing with them.
#[derive(Debug, Default)]
pub(crate) struct Contention {
    handed_out: Duration,
}

impl Contention {
    /// Records one yield that took `took`, `polled` into the poll; true when polling should
    /// stop: past [`JUDGE_AFTER`], more than half of the time went to other threads.
    pub(crate) fn yielded(&mut self, took: Duration, polled: Duration) -> bool {
        if took > YIELD_RAN_OTHERS {
            self.handed_out += took;
        }
        polled >= JUDGE_AFTER && self.handed_out * 2 > polled
    }
}

/// How long a port with sparse traffic keeps polling after its last frame (`netloom daemon
/// --busy-poll`). Between [`BusyPoll::MIN`] and [`BusyPoll::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyPoll {
    window: Duration,
    /// Whether a poll stops when other threads want the CPU ([`Contention`]); only the
    /// switch's own tests turn it off, to see polling happen on a busy machine.
    yields_to_others: bool,
}

/// Why a busy-poll window was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BusyPollError {
    /// Outside [`BusyPoll::MIN`]..=[`BusyPoll::MAX`].
    #[error(
        "busy-poll window of {micros} us is out of range: give 1 to 1000000 microseconds (1 s), or leave busy polling off"
    )]
    OutOfRange {
        /// The window asked for, in microseconds.
        micros: u128,
    },
}

impl BusyPoll {
    /// The shortest window.
    pub const MIN: Duration = Duration::from_micros(1);
    /// The longest window: one second of polling after the last frame.
    pub const MAX: Duration = Duration::from_secs(1);

    /// A window of `window`, if it is within [`BusyPoll::MIN`]..=[`BusyPoll::MAX`].
    pub fn new(window: Duration) -> Result<BusyPoll, BusyPollError> {
        if (BusyPoll::MIN..=BusyPoll::MAX).contains(&window) {
            Ok(BusyPoll {
                window,
                yields_to_others: true,
            })
        } else {
            Err(BusyPollError::OutOfRange {
                micros: window.as_micros(),
            })
        }
    }

    /// The window.
    pub fn window(self) -> Duration {
        self.window
    }

    /// Whether polling gives way to other threads that want the CPU (always, but in tests).
    pub(crate) fn yields_to_others(self) -> bool {
        self.yields_to_others
    }

    /// A window that keeps polling however busy the CPU is: for tests that must see polling
    /// happen while the rest of the test suite loads the machine.
    #[cfg(test)]
    pub(crate) fn regardless_of_load(window: Duration) -> BusyPoll {
        BusyPoll {
            window,
            yields_to_others: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn only_ports_whose_batches_come_sparsely_in_a_row_are_polled() {
        let mut p = Pace::default();
        assert!(!p.batch(us(10_000)), "one sparse batch is not a pace");
        assert!(p.batch(us(10_000)));
        assert!(p.batch(SPARSE_GAP));
        assert!(!p.batch(us(30)), "a dense batch ends it");
        assert!(!p.batch(us(500)), "500 us is not sparse");
        assert!(!p.batch(us(1500)));
        assert!(p.batch(us(1500)));
        // Bulk traffic with an occasional longer gap is never polled.
        let mut p = Pace::default();
        let gaps = [20, 30, 250, 10, 1200, 300, 5, 20, 2100, 30];
        assert!(gaps.iter().all(|&g| !p.batch(us(g))));
    }

    #[test]
    fn polling_stops_when_other_threads_take_most_of_the_cpu() {
        // Quick yields (nothing else ran): never contended, however long the poll.
        let mut c = Contention::default();
        assert!((1..=10_000).all(|i| !c.yielded(us(1), us(i))));
        // A sparse peer running now and then (20 us every 1000 us): still the poller's CPU.
        let mut c = Contention::default();
        assert!((1..=20).all(|i| !c.yielded(us(20), us(i * 1000))));
        // Bulk traffic: one yield hands out 1 ms; judged once the poll is old enough.
        let mut c = Contention::default();
        assert!(!c.yielded(us(150), us(150)), "too early to judge");
        assert!(c.yielded(us(1000), us(1150)));
        // Exactly half is not more than half.
        let mut c = Contention::default();
        assert!(!c.yielded(us(100), us(200)));
        assert!(c.yielded(us(6), us(210)));
    }

    #[test]
    fn windows_outside_the_range_are_refused() {
        assert_eq!(
            BusyPoll::new(Duration::from_micros(50)).map(BusyPoll::window),
            Ok(Duration::from_micros(50))
        );
        assert_eq!(
            BusyPoll::new(BusyPoll::MIN).map(BusyPoll::window),
            Ok(BusyPoll::MIN)
        );
        assert_eq!(
            BusyPoll::new(BusyPoll::MAX).map(BusyPoll::window),
            Ok(BusyPoll::MAX)
        );
        assert_eq!(
            BusyPoll::new(Duration::ZERO),
            Err(BusyPollError::OutOfRange { micros: 0 })
        );
        let err = BusyPoll::new(Duration::from_millis(1001)).unwrap_err();
        assert_eq!(err, BusyPollError::OutOfRange { micros: 1_001_000 });
        assert!(
            err.to_string().contains("1 to 1000000 microseconds"),
            "{err}"
        );
    }
}
