//! The current record snapshot, swapped whole by the control plane, read lock-free by the server.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::records::Records;

/// Holds the [`Records`] the server answers from.
///
/// Share it as `Arc<RecordStore>`: the daemon calls [`RecordStore::replace`] after each change to
/// containers or networks, the server calls [`RecordStore::load`] once per query. A query sees one
/// consistent snapshot from start to finish, never a half-applied change.
#[derive(Debug, Default)]
pub struct RecordStore {
    current: ArcSwap<Records>,
}

impl RecordStore {
    /// A store serving `records` until the first replacement.
    pub fn new(records: Records) -> Self {
        Self {
            current: ArcSwap::from_pointee(records),
        }
    }

    /// The current snapshot, without locking. Hold the guard for one query only: a held guard
    /// keeps an old snapshot alive after it has been replaced.
    pub fn load(&self) -> Guard<Arc<Records>> {
        self.current.load()
    }

    /// Makes `records` the snapshot every later [`RecordStore::load`] sees.
    pub fn replace(&self, records: Records) {
        self.current.store(Arc::new(records));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn with(name: &str, ip: Ipv4Addr) -> Records {
        let mut b = Records::builder();
        b.add_container("net", name, ip).unwrap();
        b.build()
    }

    #[test]
    fn empty_by_default() {
        let store = RecordStore::default();
        assert_eq!(store.load().lookup("net", "web"), None);
    }

    #[test]
    fn replace_swaps_the_whole_snapshot() {
        let old_ip = Ipv4Addr::new(172, 18, 0, 2);
        let new_ip = Ipv4Addr::new(172, 18, 0, 3);
        let store = RecordStore::new(with("web", old_ip));
        let before = store.load();

        store.replace(with("db", new_ip));

        // A query in flight keeps the snapshot it started with.
        assert_eq!(before.lookup("net", "web"), Some(&[old_ip][..]));
        assert_eq!(before.lookup("net", "db"), None);
        // Later queries see only the new one.
        let after = store.load();
        assert_eq!(after.lookup("net", "web"), None);
        assert_eq!(after.lookup("net", "db"), Some(&[new_ip][..]));
        assert_eq!(after.ptr("net", old_ip), None);
        assert_eq!(after.ptr("net", new_ip), Some("db.net."));
    }
}
