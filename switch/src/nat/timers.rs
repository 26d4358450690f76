//! Flow deadlines kept lazily: refreshing a flow's deadline on every packet costs nothing; a
//! heap entry that has gone stale is re-queued (or forgotten) only when it comes up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

/// Deadlines of flows identified by `K`, earliest first.
#[derive(Debug)]
pub(crate) struct LazyTimers<K: Ord + Copy> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> Default for LazyTimers<K> {
    fn default() -> Self {
        LazyTimers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Copy> LazyTimers<K> {
    /// Queues `id` to be looked at `deadline`.
    pub(crate) fn push(&mut self, deadline: Instant, id: K) {
        self.heap.push(Reverse((deadline, id)));
    }

    /// The flows whose current deadline (`current(id)`; `None`: the flow is gone) is due at
    /// `now`, and when to look again.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        mut current: impl FnMut(K) -> Option<Instant>,
    ) -> (Vec<K>, Option<Instant>) {
        let mut due = Vec::new();
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            let Some(deadline) = current(id) else {
                self.heap.pop();
                continue;
            };
            if deadline > at {
                // Refreshed since this entry was pushed.
                self.heap.pop();
                self.heap.push(Reverse((deadline, id)));
                continue;
            }
            if at > now {
                break;
            }
            self.heap.pop();
            due.push(id);
        }
        (due, self.heap.peek().map(|&Reverse((at, _))| at))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn refreshed_deadlines_move_and_gone_flows_are_forgotten() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut deadlines: HashMap<u32, Instant> =
            [(1, t0 + s(10)), (2, t0 + s(20)), (3, t0 + s(5))].into();
        let mut timers = LazyTimers::default();
        for (&id, &at) in &deadlines {
            timers.push(at, id);
        }
        // 1 was refreshed, 3 is gone.
        deadlines.insert(1, t0 + s(30));
        deadlines.remove(&3);
        let (due, next) = timers.expire(t0 + s(25), |id| deadlines.get(&id).copied());
        assert_eq!(due, [2]);
        assert_eq!(next, Some(t0 + s(30)));
        deadlines.remove(&2);
        let (due, next) = timers.expire(t0 + s(30), |id| deadlines.get(&id).copied());
        assert_eq!(due, [1]);
        assert_eq!(next, None);
    }
}
