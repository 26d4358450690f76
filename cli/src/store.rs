//! Durable control-plane state in one embedded transactional store (redb).
//!
//! Every change the daemon acknowledges is one write transaction, committed with redb's default
//! immediate durability (fsync) before the API answers. A `kill -9` at any moment therefore either
//! loses an unacknowledged change whole or keeps it whole; there is no half-written state.
//!
//! Tables (keys and values are text or JSON so that `netloom` upgrades can read old files):
//! - `networks`: network id → JSON [`NetworkRecord`]
//! - `network_names`: name → network id (uniqueness index)
//! - `subnets`: subnet → network id (pool allocations)
//! - `addresses`: `"<network id>/<ipv4>"` → owner (`network:<id>` for a gateway)

use std::net::Ipv4Addr;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::{NetworkId, NetworkRecord};

const NETWORKS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("networks");
const NETWORK_NAMES: TableDefinition<'_, &str, &str> = TableDefinition::new("network_names");
const SUBNETS: TableDefinition<'_, &str, &str> = TableDefinition::new("subnets");
const ADDRESSES: TableDefinition<'_, &str, &str> = TableDefinition::new("addresses");

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the state database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: redb::DatabaseError,
    },
    /// A transaction could not start.
    #[error("cannot start a state transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error("cannot open a state table: {0}")]
    Table(#[from] redb::TableError),
    /// Reading or writing the file failed.
    #[error("state storage failed: {0}")]
    Storage(#[from] redb::StorageError),
    /// The commit did not reach the disk.
    #[error("cannot commit state: {0}")]
    Commit(#[from] redb::CommitError),
    /// A stored record does not decode (a corrupt or foreign file).
    #[error("stored record {key} is unreadable: {source}")]
    Decode {
        /// Its key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The daemon's durable state.
#[derive(Debug)]
pub struct Store {
    db: redb::Database,
}

/// Who holds an address: the key is the network, the value says why.
fn address_key(network: &NetworkId, ip: Ipv4Addr) -> String {
    format!("{network}/{ip}")
}

/// The owner string a network's gateway address is recorded with.
fn gateway_owner(network: &NetworkId) -> String {
    format!("network:{network}")
}

fn decode_network(key: &str, bytes: &[u8]) -> Result<NetworkRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
        key: key.to_owned(),
        source,
    })
}

impl Store {
    /// Opens (creating when missing) the database file and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = redb::Database::create(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let store = Store { db };
        store.write(|tx| {
            tx.txn.open_table(NETWORKS)?;
            tx.txn.open_table(NETWORK_NAMES)?;
            tx.txn.open_table(SUBNETS)?;
            tx.txn.open_table(ADDRESSES)?;
            Ok::<_, StoreError>(())
        })?;
        Ok(store)
    }

    /// Runs `f` in one write transaction and commits it if `f` succeeds; on error nothing changes.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let mut tx = WriteTx { txn };
        let out = f(&mut tx)?;
        tx.txn.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// All networks, in id order.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NETWORKS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push(decode_network(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Checks the cross-references between tables and lists every inconsistency found: an
    /// allocation without its owner, an owner without its allocation, a name index entry that
    /// points nowhere. An empty list means the state is consistent.
    pub fn check_consistency(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read()?;
        let networks = txn.open_table(NETWORKS)?;
        let names = txn.open_table(NETWORK_NAMES)?;
        let subnets = txn.open_table(SUBNETS)?;
        let addresses = txn.open_table(ADDRESSES)?;
        let mut problems = Vec::new();
        let mut records = Vec::new();
        for row in networks.iter()? {
            let (k, v) = row?;
            records.push(decode_network(k.value(), v.value())?);
        }
        for n in &records {
            match names.get(n.name.as_str())? {
                Some(id) if id.value() == n.id.as_str() => {}
                other => problems.push(format!(
                    "network {} ({}) has name index entry {:?}",
                    n.name,
                    n.id,
                    other.map(|g| g.value().to_owned())
                )),
            }
            if let Some(ipam) = &n.ipam {
                let subnet = ipam.subnet.to_string();
                match subnets.get(subnet.as_str())? {
                    Some(id) if id.value() == n.id.as_str() => {}
                    other => problems.push(format!(
                        "network {} owns subnet {subnet} but the allocation says {:?}",
                        n.name,
                        other.map(|g| g.value().to_owned())
                    )),
                }
                let key = address_key(&n.id, ipam.gateway);
                match addresses.get(key.as_str())? {
                    Some(owner) if owner.value() == gateway_owner(&n.id) => {}
                    other => problems.push(format!(
                        "network {} gateway {} allocation says {:?}",
                        n.name,
                        ipam.gateway,
                        other.map(|g| g.value().to_owned())
                    )),
                }
            }
        }
        let owner_of = |id: &str| records.iter().find(|n| n.id.as_str() == id);
        for row in names.iter()? {
            let (name, id) = row?;
            if owner_of(id.value()).is_none_or(|n| n.name.as_str() != name.value()) {
                problems.push(format!(
                    "name {} points to missing network {}",
                    name.value(),
                    id.value()
                ));
            }
        }
        for row in subnets.iter()? {
            let (subnet, id) = row?;
            let owned = owner_of(id.value())
                .and_then(|n| n.ipam.as_ref())
                .is_some_and(|i| i.subnet.to_string() == subnet.value());
            if !owned {
                problems.push(format!(
                    "subnet {} allocated to missing owner {}",
                    subnet.value(),
                    id.value()
                ));
            }
        }
        for row in addresses.iter()? {
            let (key, owner) = row?;
            let (net, ip) = key.value().split_once('/').unwrap_or((key.value(), ""));
            let owned = match owner.value().strip_prefix("network:") {
                Some(id) => {
                    id == net
                        && owner_of(id)
                            .and_then(|n| n.ipam.as_ref())
                            .is_some_and(|i| i.gateway.to_string() == ip)
                }
                None => false,
            };
            if !owned {
                problems.push(format!(
                    "address {} allocated to missing owner {}",
                    key.value(),
                    owner.value()
                ));
            }
        }
        Ok(problems)
    }
}

/// One open write transaction; see [`Store::write`].
#[allow(missing_debug_implementations)]
pub struct WriteTx {
    txn: redb::WriteTransaction,
}

impl WriteTx {
    /// All networks as of this transaction.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let table = self.txn.open_table(NETWORKS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push(decode_network(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Adds a network with its name index entry, its subnet and its gateway allocation.
    pub fn insert_network(&mut self, n: &NetworkRecord) -> Result<(), StoreError> {
        let json = serde_json::to_vec(n).expect("network records always serialize");
        self.txn
            .open_table(NETWORKS)?
            .insert(n.id.as_str(), json.as_slice())?;
        self.txn
            .open_table(NETWORK_NAMES)?
            .insert(n.name.as_str(), n.id.as_str())?;
        if let Some(ipam) = &n.ipam {
            let subnet = ipam.subnet.to_string();
            self.txn
                .open_table(SUBNETS)?
                .insert(subnet.as_str(), n.id.as_str())?;
            let key = address_key(&n.id, ipam.gateway);
            self.txn
                .open_table(ADDRESSES)?
                .insert(key.as_str(), gateway_owner(&n.id).as_str())?;
        }
        Ok(())
    }

    /// Removes a network and everything it owns in the indexes.
    pub fn remove_network(&mut self, n: &NetworkRecord) -> Result<(), StoreError> {
        self.txn.open_table(NETWORKS)?.remove(n.id.as_str())?;
        self.txn
            .open_table(NETWORK_NAMES)?
            .remove(n.name.as_str())?;
        if let Some(ipam) = &n.ipam {
            let subnet = ipam.subnet.to_string();
            self.txn.open_table(SUBNETS)?.remove(subnet.as_str())?;
        }
        // Every address of the network goes with it (the gateway; endpoints are gone already).
        let prefix = format!("{}/", n.id);
        let mut addresses = self.txn.open_table(ADDRESSES)?;
        addresses.retain(|k, _| !k.starts_with(&prefix))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Driver, IpamRecord, ObjectId};

    fn network(name: &str, subnet: &str, gateway: [u8; 4]) -> NetworkRecord {
        NetworkRecord {
            id: ObjectId::random(),
            name: name.parse().unwrap(),
            driver: Driver::Bridge,
            created: chrono::Local::now().fixed_offset(),
            ipam: Some(IpamRecord {
                subnet: subnet.parse().unwrap(),
                gateway: gateway.into(),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
                user_subnet: false,
                user_gateway: false,
            }),
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            builtin: false,
        }
    }

    #[test]
    fn insert_remove_round_trip_and_consistency() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let a = network("a", "172.18.0.0/16", [172, 18, 0, 1]);
        let b = network("b", "172.19.0.0/16", [172, 19, 0, 1]);
        store
            .write(|tx| {
                tx.insert_network(&a)?;
                tx.insert_network(&b)
            })
            .unwrap();
        assert_eq!(store.networks().unwrap().len(), 2);
        assert!(store.check_consistency().unwrap().is_empty());
        store.write(|tx| tx.remove_network(&a)).unwrap();
        let left = store.networks().unwrap();
        assert_eq!(left, vec![b]);
        assert!(store.check_consistency().unwrap().is_empty());
    }

    #[test]
    fn a_failed_transaction_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let a = network("a", "172.18.0.0/16", [172, 18, 0, 1]);
        let r: Result<(), StoreError> = store.write(|tx| {
            tx.insert_network(&a)?;
            Err(StoreError::Decode {
                key: "x".into(),
                source: serde_json::from_str::<u8>("x").unwrap_err(),
            })
        });
        assert!(r.is_err());
        assert!(store.networks().unwrap().is_empty());
    }

    #[test]
    fn inconsistencies_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let a = network("a", "172.18.0.0/16", [172, 18, 0, 1]);
        store.write(|tx| tx.insert_network(&a)).unwrap();
        // An orphan subnet allocation, an orphan address, and a network whose gateway
        // allocation went missing.
        store
            .write(|tx| {
                tx.txn.open_table(SUBNETS)?.insert("10.0.0.0/8", "nobody")?;
                tx.txn
                    .open_table(ADDRESSES)?
                    .insert("nobody/10.0.0.1", "network:nobody")?;
                let key = address_key(&a.id, [172, 18, 0, 1].into());
                tx.txn.open_table(ADDRESSES)?.remove(key.as_str())?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let problems = store.check_consistency().unwrap();
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }
}
