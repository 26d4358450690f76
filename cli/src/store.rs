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
//! - `addresses`: `"<network id>/<ipv4>"` → owner (`network:<id>` for a gateway,
//!   `endpoint:<id>` for an endpoint)
//! - `containers`: container id → JSON [`ContainerRecord`]
//! - `container_names`: name → container id (uniqueness index)
//! - `endpoints`: endpoint id → JSON [`EndpointRecord`]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::{ContainerRecord, EndpointRecord, NetworkId, NetworkRecord};

const NETWORKS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("networks");
const NETWORK_NAMES: TableDefinition<'_, &str, &str> = TableDefinition::new("network_names");
const SUBNETS: TableDefinition<'_, &str, &str> = TableDefinition::new("subnets");
const ADDRESSES: TableDefinition<'_, &str, &str> = TableDefinition::new("addresses");
const CONTAINERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("containers");
const CONTAINER_NAMES: TableDefinition<'_, &str, &str> = TableDefinition::new("container_names");
const ENDPOINTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("endpoints");

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
    /// The database could not be opened again after an I/O error.
    #[error(
        "the state database {path} is unavailable after an I/O error; free disk space and restart the netloom daemon"
    )]
    Unavailable {
        /// The file.
        path: String,
    },
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
    path: PathBuf,
    /// The open database; replaced by [`Store::recover`] after redb refuses to go on. `None`
    /// only while a replacement failed.
    db: Mutex<Option<Arc<redb::Database>>>,
    /// Held (write) by [`Store::write`] around a commit and the bump of `generation` that
    /// follows it, and (read) by whoever pairs a transaction with a generation: a transaction
    /// begun under the read side sees exactly the commits `generation` counts.
    commits: RwLock<()>,
    /// How many commits [`Store::write`] has made.
    generation: AtomicU64,
    /// The decoded record tables as of one generation: a request that reads every record
    /// (most do) decodes them once per change instead of once per request.
    cache: Mutex<Cache>,
}

/// Decoded tables, all as of `generation`.
#[derive(Debug, Default)]
struct Cache {
    generation: u64,
    networks: Option<Arc<Vec<NetworkRecord>>>,
    containers: Option<Arc<Vec<ContainerRecord>>>,
    endpoints: Option<Arc<Vec<EndpointRecord>>>,
}

type JsonTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// The record types [`Cache`] holds, with the table each comes from.
trait CachedRecords: Sized + Clone + serde::de::DeserializeOwned {
    /// Its bit in [`WriteTx::dirty`].
    const BIT: u8;
    const TABLE: JsonTable;
    fn slot(cache: &mut Cache) -> &mut Option<Arc<Vec<Self>>>;
    /// Its key in [`Self::TABLE`] (the tables are read in key order).
    fn key(&self) -> &str;
}

/// Implements [`CachedRecords`] for a record type: its dirty bit, table and cache slot.
macro_rules! cached_records {
    ($record:ty, $bit:expr, $table:expr, $slot:ident) => {
        impl CachedRecords for $record {
            const BIT: u8 = $bit;
            const TABLE: JsonTable = $table;
            fn slot(cache: &mut Cache) -> &mut Option<Arc<Vec<Self>>> {
                &mut cache.$slot
            }
            fn key(&self) -> &str {
                self.id.as_str()
            }
        }
    };
}

cached_records!(NetworkRecord, 1, NETWORKS, networks);
cached_records!(ContainerRecord, 2, CONTAINERS, containers);
cached_records!(EndpointRecord, 4, ENDPOINTS, endpoints);

/// A change a write transaction made to a cached table: the record now under a key, or none.
#[derive(Debug)]
enum Change {
    Network(String, Option<NetworkRecord>),
    Container(String, Option<ContainerRecord>),
    Endpoint(String, Option<EndpointRecord>),
}

impl Cache {
    /// Applies what a transaction that started at `from` committed, if the cache holds that
    /// generation: it then holds the next one, and nothing has to be decoded again.
    fn advance(&mut self, from: u64, changes: Vec<Change>) {
        if self.generation != from {
            return;
        }
        for change in changes {
            match change {
                Change::Network(k, r) => self.apply(&k, r),
                Change::Container(k, r) => self.apply(&k, r),
                Change::Endpoint(k, r) => self.apply(&k, r),
            }
        }
        self.generation = from + 1;
    }

    fn apply<T: CachedRecords>(&mut self, key: &str, record: Option<T>) {
        let Some(records) = T::slot(self) else {
            return;
        };
        let records = Arc::make_mut(records);
        match (records.binary_search_by(|r| r.key().cmp(key)), record) {
            (Ok(i), Some(r)) => records[i] = r,
            (Ok(i), None) => {
                records.remove(i);
            }
            (Err(i), Some(r)) => records.insert(i, r),
            (Err(_), None) => {}
        }
    }

    fn get<T: CachedRecords>(&mut self, generation: u64) -> Option<Arc<Vec<T>>> {
        if self.generation != generation {
            return None;
        }
        T::slot(self).clone()
    }

    fn put<T: CachedRecords>(&mut self, generation: u64, records: Arc<Vec<T>>) {
        if self.generation != generation {
            if generation < self.generation {
                return;
            }
            *self = Cache {
                generation,
                ..Cache::default()
            };
        }
        *T::slot(self) = Some(records);
    }
}

/// How long [`Store::recover`] waits for the transactions still running on a database it
/// replaces.
const RECOVER_WAIT: Duration = Duration::from_secs(5);

/// Whether redb refuses a transaction because an earlier one failed to reach the disk (a full
/// disk, say): it then refuses every transaction until the database is opened again.
fn is_previous_io(e: &redb::TransactionError) -> bool {
    matches!(
        e,
        redb::TransactionError::Storage(redb::StorageError::PreviousIo)
    )
}

/// Who holds an address: the key is the network, the value says why.
fn address_key(network: &NetworkId, ip: Ipv4Addr) -> String {
    format!("{network}/{ip}")
}

/// The owner string a network's gateway address is recorded with.
fn gateway_owner(network: &NetworkId) -> String {
    format!("network:{network}")
}

/// The owner string an endpoint's address is recorded with.
fn endpoint_owner(endpoint: &EndpointRecord) -> String {
    format!("endpoint:{}", endpoint.id)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
        key: key.to_owned(),
        source,
    })
}

/// Every record of a JSON table, in key order.
fn all<T, K>(table: &K) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned,
    K: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        out.push(decode(k.value(), v.value())?);
    }
    Ok(out)
}

/// The whole state, read in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// All networks.
    pub networks: Arc<Vec<NetworkRecord>>,
    /// All containers and sandboxes.
    pub containers: Arc<Vec<ContainerRecord>>,
    /// All endpoints.
    pub endpoints: Arc<Vec<EndpointRecord>>,
}

impl Store {
    /// Opens (creating when missing) the database file and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Self::create(path)?;
        let store = Store {
            path: path.to_owned(),
            db: Mutex::new(Some(Arc::new(db))),
            commits: RwLock::new(()),
            generation: AtomicU64::new(0),
            cache: Mutex::new(Cache::default()),
        };
        store.write(|tx| {
            tx.txn.open_table(NETWORKS)?;
            tx.txn.open_table(NETWORK_NAMES)?;
            tx.txn.open_table(SUBNETS)?;
            tx.txn.open_table(ADDRESSES)?;
            tx.txn.open_table(CONTAINERS)?;
            tx.txn.open_table(CONTAINER_NAMES)?;
            tx.txn.open_table(ENDPOINTS)?;
            Ok::<_, StoreError>(())
        })?;
        Ok(store)
    }

    fn create(path: &Path) -> Result<redb::Database, StoreError> {
        redb::Database::create(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })
    }

    /// The open database.
    fn db(&self) -> Result<Arc<redb::Database>, StoreError> {
        let slot = self.db.lock().expect("store lock poisoned");
        slot.clone().ok_or_else(|| StoreError::Unavailable {
            path: self.path.display().to_string(),
        })
    }

    /// Opens the database again after redb refused `failed` for an earlier I/O error, once the
    /// transactions still running on it are over (at most [`RECOVER_WAIT`]). What was committed
    /// before the error is on disk; the failed transaction left nothing.
    fn recover(&self, failed: Arc<redb::Database>) -> Result<(), StoreError> {
        let mut slot = self.db.lock().expect("store lock poisoned");
        let current = match slot.take() {
            Some(db) if Arc::ptr_eq(&db, &failed) => db,
            // Replaced already by another request.
            other => {
                *slot = other;
                return Ok(());
            }
        };
        drop(failed);
        let deadline = Instant::now() + RECOVER_WAIT;
        let mut current = current;
        let old = loop {
            match Arc::try_unwrap(current) {
                Ok(db) => break db,
                Err(still_used) if Instant::now() < deadline => {
                    current = still_used;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(still_used) => {
                    *slot = Some(still_used);
                    return Err(StoreError::Unavailable {
                        path: self.path.display().to_string(),
                    });
                }
            }
        };
        // redb locks the file: the old handle must be closed before the new one opens.
        drop(old);
        tracing::warn!(
            path = %self.path.display(),
            "reopening the state database after an I/O error (a full disk?)"
        );
        *slot = Some(Arc::new(Self::create(&self.path)?));
        Ok(())
    }

    /// Starts a write transaction, reopening the database first if an earlier I/O error made
    /// redb refuse it.
    fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        let db = self.db()?;
        match db.begin_write() {
            Err(e) if is_previous_io(&e) => {
                self.recover(db)?;
                Ok(self.db()?.begin_write()?)
            }
            r => Ok(r?),
        }
    }

    /// Starts a read transaction, as [`Self::begin_write`].
    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        let db = self.db()?;
        match db.begin_read() {
            Err(e) if is_previous_io(&e) => {
                self.recover(db)?;
                Ok(self.db()?.begin_read()?)
            }
            r => Ok(r?),
        }
    }

    /// Runs `f` in one write transaction and commits it if `f` succeeds; on error nothing changes.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.begin_write()?;
        // redb lets this transaction begin once the previous one has committed; the read side
        // waits until that commit is counted too.
        let generation = {
            let _counted = self.commits.read().expect("store commit lock poisoned");
            self.generation.load(Ordering::Acquire)
        };
        let mut tx = WriteTx {
            txn,
            store: self,
            generation,
            dirty: 0,
            changes: Vec::new(),
        };
        let out = f(&mut tx)?;
        let WriteTx { txn, changes, .. } = tx;
        let _committing = self.commits.write().expect("store commit lock poisoned");
        let committed = txn.commit();
        // Counted even if the commit failed: the cache is then left behind (invalid).
        let from = self.generation.fetch_add(1, Ordering::AcqRel);
        committed.map_err(StoreError::from)?;
        if from == generation {
            self.cache
                .lock()
                .expect("cache lock poisoned")
                .advance(from, changes);
        }
        Ok(out)
    }

    /// A read transaction and the generation it sees; no generation (no caching) when the
    /// database first had to be opened again.
    fn read_at(&self) -> Result<(Option<u64>, redb::ReadTransaction), StoreError> {
        {
            let _counted = self.commits.read().expect("store commit lock poisoned");
            let generation = self.generation.load(Ordering::Acquire);
            match self.db()?.begin_read() {
                Ok(txn) => return Ok((Some(generation), txn)),
                Err(e) if is_previous_io(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((None, self.begin_read()?))
    }

    /// `T`'s records as of `generation`: from the cache, or decoded by `read` (which must see
    /// exactly that generation) and cached.
    fn cached<T: CachedRecords>(
        &self,
        generation: Option<u64>,
        read: impl FnOnce() -> Result<Vec<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        Ok(Arc::unwrap_or_clone(self.cached_shared(generation, read)?))
    }

    /// Like [`Self::cached`], without copying the records.
    fn cached_shared<T: CachedRecords>(
        &self,
        generation: Option<u64>,
        read: impl FnOnce() -> Result<Vec<T>, StoreError>,
    ) -> Result<Arc<Vec<T>>, StoreError> {
        let Some(generation) = generation else {
            return read().map(Arc::new);
        };
        if let Some(v) = self
            .cache
            .lock()
            .expect("cache lock poisoned")
            .get(generation)
        {
            return Ok(v);
        }
        let v = Arc::new(read()?);
        self.cache
            .lock()
            .expect("cache lock poisoned")
            .put(generation, v.clone());
        Ok(v)
    }

    /// All containers and sandboxes, in id order, shared with the cache (for lookups that
    /// need one record and should not copy them all).
    pub fn containers_shared(&self) -> Result<Arc<Vec<ContainerRecord>>, StoreError> {
        let (generation, txn) = self.read_at()?;
        self.cached_shared(generation, || all(&txn.open_table(CONTAINERS)?))
    }

    /// All networks, in id order.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let (generation, txn) = self.read_at()?;
        self.cached(generation, || all(&txn.open_table(NETWORKS)?))
    }

    /// Everything, as of one moment.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let (generation, txn) = self.read_at()?;
        Ok(Snapshot {
            networks: self.cached_shared(generation, || all(&txn.open_table(NETWORKS)?))?,
            containers: self.cached_shared(generation, || all(&txn.open_table(CONTAINERS)?))?,
            endpoints: self.cached_shared(generation, || all(&txn.open_table(ENDPOINTS)?))?,
        })
    }

    /// Checks the cross-references between tables and lists every inconsistency found: an
    /// allocation without its owner, an owner without its allocation, an index entry that
    /// points nowhere, an endpoint of a missing container or network. An empty list means the
    /// state is consistent.
    pub fn check_consistency(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.begin_read()?;
        let networks: Vec<NetworkRecord> = all(&txn.open_table(NETWORKS)?)?;
        let containers: Vec<ContainerRecord> = all(&txn.open_table(CONTAINERS)?)?;
        let endpoints: Vec<EndpointRecord> = all(&txn.open_table(ENDPOINTS)?)?;
        let names = txn.open_table(NETWORK_NAMES)?;
        let container_names = txn.open_table(CONTAINER_NAMES)?;
        let subnets = txn.open_table(SUBNETS)?;
        let addresses = txn.open_table(ADDRESSES)?;
        let mut problems = Vec::new();
        let network = |id: &str| networks.iter().find(|n| n.id.as_str() == id);

        // Owners → their allocations and index entries.
        for n in &networks {
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
        for c in &containers {
            match container_names.get(c.name.as_str())? {
                Some(id) if id.value() == c.id.as_str() => {}
                other => problems.push(format!(
                    "container {} ({}) has name index entry {:?}",
                    c.name,
                    c.id,
                    other.map(|g| g.value().to_owned())
                )),
            }
        }
        for e in &endpoints {
            if !containers.iter().any(|c| c.id == e.container) {
                problems.push(format!(
                    "endpoint {} belongs to missing container {}",
                    e.id, e.container
                ));
            }
            if network(e.network.as_str()).is_none() {
                problems.push(format!(
                    "endpoint {} is on missing network {}",
                    e.id, e.network
                ));
            }
            let key = address_key(&e.network, e.ip);
            match addresses.get(key.as_str())? {
                Some(owner) if owner.value() == endpoint_owner(e) => {}
                other => problems.push(format!(
                    "endpoint {} address {} allocation says {:?}",
                    e.id,
                    e.ip,
                    other.map(|g| g.value().to_owned())
                )),
            }
        }

        // Allocations and index entries → their owners.
        for row in names.iter()? {
            let (name, id) = row?;
            if network(id.value()).is_none_or(|n| n.name.as_str() != name.value()) {
                problems.push(format!(
                    "name {} points to missing network {}",
                    name.value(),
                    id.value()
                ));
            }
        }
        for row in container_names.iter()? {
            let (name, id) = row?;
            let owned = containers
                .iter()
                .any(|c| c.id.as_str() == id.value() && c.name.as_str() == name.value());
            if !owned {
                problems.push(format!(
                    "container name {} points to missing {}",
                    name.value(),
                    id.value()
                ));
            }
        }
        for row in subnets.iter()? {
            let (subnet, id) = row?;
            let owned = network(id.value())
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
            let owned = if let Some(id) = owner.value().strip_prefix("network:") {
                id == net
                    && network(id)
                        .and_then(|n| n.ipam.as_ref())
                        .is_some_and(|i| i.gateway.to_string() == ip)
            } else if let Some(id) = owner.value().strip_prefix("endpoint:") {
                endpoints.iter().any(|e| {
                    e.id.as_str() == id && e.network.as_str() == net && e.ip.to_string() == ip
                })
            } else {
                false
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
pub struct WriteTx<'s> {
    txn: redb::WriteTransaction,
    store: &'s Store,
    /// The commits the transaction started from.
    generation: u64,
    /// The cached tables this transaction has changed (their cached records are stale here).
    dirty: u8,
    /// What it changed in them, for the cache to follow the commit.
    changes: Vec<Change>,
}

impl WriteTx<'_> {
    /// A table's records as of this transaction, shared with the cache until the transaction
    /// changes that table (a request at 1000 containers must not copy 1000 records to find one).
    fn records<T: CachedRecords>(&self) -> Result<Arc<Vec<T>>, StoreError> {
        let read = || all(&self.txn.open_table(T::TABLE)?);
        if self.dirty & T::BIT != 0 {
            return read().map(Arc::new);
        }
        self.store.cached_shared(Some(self.generation), read)
    }

    /// All networks as of this transaction.
    pub fn networks(&self) -> Result<Arc<Vec<NetworkRecord>>, StoreError> {
        self.records()
    }

    /// All containers as of this transaction.
    pub fn containers(&self) -> Result<Arc<Vec<ContainerRecord>>, StoreError> {
        self.records()
    }

    /// All endpoints as of this transaction.
    pub fn endpoints(&self) -> Result<Arc<Vec<EndpointRecord>>, StoreError> {
        self.records()
    }

    /// Adds a container with its name index entry.
    pub fn insert_container(&mut self, c: &ContainerRecord) -> Result<(), StoreError> {
        self.dirty |= <ContainerRecord as CachedRecords>::BIT;
        let json = serde_json::to_vec(c).expect("container records always serialize");
        self.txn
            .open_table(CONTAINERS)?
            .insert(c.id.as_str(), json.as_slice())?;
        // The record table changed: the cache follows it at commit.
        self.changes
            .push(Change::Container(c.id.as_str().to_owned(), Some(c.clone())));
        self.txn
            .open_table(CONTAINER_NAMES)?
            .insert(c.name.as_str(), c.id.as_str())?;
        Ok(())
    }

    /// Removes a container and its name index entry (its endpoints must be gone already).
    pub fn remove_container(&mut self, c: &ContainerRecord) -> Result<(), StoreError> {
        self.dirty |= <ContainerRecord as CachedRecords>::BIT;
        self.txn.open_table(CONTAINERS)?.remove(c.id.as_str())?;
        // The record table changed: the cache follows it at commit.
        self.changes
            .push(Change::Container(c.id.as_str().to_owned(), None));
        self.txn
            .open_table(CONTAINER_NAMES)?
            .remove(c.name.as_str())?;
        Ok(())
    }

    /// Adds an endpoint and allocates its address.
    pub fn insert_endpoint(&mut self, e: &EndpointRecord) -> Result<(), StoreError> {
        self.dirty |= <EndpointRecord as CachedRecords>::BIT;
        let json = serde_json::to_vec(e).expect("endpoint records always serialize");
        self.txn
            .open_table(ENDPOINTS)?
            .insert(e.id.as_str(), json.as_slice())?;
        // The record table changed: the cache follows it at commit.
        self.changes
            .push(Change::Endpoint(e.id.as_str().to_owned(), Some(e.clone())));
        let key = address_key(&e.network, e.ip);
        self.txn
            .open_table(ADDRESSES)?
            .insert(key.as_str(), endpoint_owner(e).as_str())?;
        Ok(())
    }

    /// Removes an endpoint and releases its address.
    pub fn remove_endpoint(&mut self, e: &EndpointRecord) -> Result<(), StoreError> {
        self.dirty |= <EndpointRecord as CachedRecords>::BIT;
        self.txn.open_table(ENDPOINTS)?.remove(e.id.as_str())?;
        // The record table changed: the cache follows it at commit.
        self.changes
            .push(Change::Endpoint(e.id.as_str().to_owned(), None));
        let key = address_key(&e.network, e.ip);
        self.txn.open_table(ADDRESSES)?.remove(key.as_str())?;
        Ok(())
    }

    /// Adds a network with its name index entry, its subnet and its gateway allocation.
    pub fn insert_network(&mut self, n: &NetworkRecord) -> Result<(), StoreError> {
        self.dirty |= <NetworkRecord as CachedRecords>::BIT;
        let json = serde_json::to_vec(n).expect("network records always serialize");
        self.txn
            .open_table(NETWORKS)?
            .insert(n.id.as_str(), json.as_slice())?;
        // The record table changed: the cache follows it at commit.
        self.changes
            .push(Change::Network(n.id.as_str().to_owned(), Some(n.clone())));
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
        self.dirty |= <NetworkRecord as CachedRecords>::BIT;
        self.txn.open_table(NETWORKS)?.remove(n.id.as_str())?;
        // The record table changed: the cache follows it at commit.
        self.changes
            .push(Change::Network(n.id.as_str().to_owned(), None));
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

    /// The decoded-records cache never shows a transaction or a snapshot anything but its
    /// own view: commits invalidate it, a transaction sees its own uncommitted changes, and a
    /// failed transaction leaves nothing behind in it.
    #[test]
    fn cached_records_follow_every_commit_and_a_transactions_own_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let a = network("a", "172.18.0.0/16", [172, 18, 0, 1]);
        let b = network("b", "172.19.0.0/16", [172, 19, 0, 1]);
        store.write(|tx| tx.insert_network(&a)).unwrap();
        assert_eq!(*store.snapshot().unwrap().networks, vec![a.clone()]);
        assert_eq!(store.networks().unwrap(), vec![a.clone()]);
        let r: Result<(), StoreError> = store.write(|tx| {
            assert_eq!(*tx.networks()?, vec![a.clone()]);
            tx.insert_network(&b)?;
            assert_eq!(
                tx.networks()?.len(),
                2,
                "the transaction sees its own insert"
            );
            Err(StoreError::Unavailable { path: "x".into() })
        });
        assert!(r.is_err());
        assert_eq!(*store.snapshot().unwrap().networks, vec![a.clone()]);
        store.write(|tx| tx.insert_network(&b)).unwrap();
        assert_eq!(store.snapshot().unwrap().networks.len(), 2);
        store.write(|tx| tx.remove_network(&a)).unwrap();
        assert_eq!(store.networks().unwrap(), vec![b.clone()]);
        store
            .write(|tx| {
                assert_eq!(*tx.networks()?, vec![b.clone()]);
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    /// The cache follows each commit (inserts, updates, removals, in key order) instead of
    /// being decoded again, and always equals what a fresh decode of the tables gives.
    #[test]
    fn the_cache_follows_commits_and_matches_a_fresh_decode() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let fresh = |store: &Store| {
            let txn = store.begin_read().unwrap();
            let networks: Vec<NetworkRecord> = all(&txn.open_table(NETWORKS).unwrap()).unwrap();
            networks
        };
        let nets: Vec<NetworkRecord> = (0..6)
            .map(|i| network(&format!("n{i}"), &format!("10.{i}.0.0/16"), [10, i, 0, 1]))
            .collect();
        // Warm the cache, then change the table in every way, checking after each commit.
        assert!(store.snapshot().unwrap().networks.is_empty());
        for n in &nets {
            store.write(|tx| tx.insert_network(n)).unwrap();
            assert_eq!(*store.snapshot().unwrap().networks, fresh(&store));
        }
        let generation = store.cache.lock().unwrap().generation;
        assert_eq!(
            generation,
            store.generation.load(Ordering::Acquire),
            "the cache advanced with the commits instead of being dropped"
        );
        let mut relabelled = nets[2].clone();
        relabelled.labels.insert("k".into(), "v".into());
        store
            .write(|tx| {
                tx.remove_network(&nets[0])?;
                tx.insert_network(&relabelled)?;
                tx.remove_network(&nets[4])
            })
            .unwrap();
        let snap = store.snapshot().unwrap();
        assert_eq!(*snap.networks, fresh(&store));
        assert_eq!(snap.networks.len(), 4);
        assert!(snap.networks.contains(&relabelled));
        // A failed transaction leaves the cache as it was.
        let r: Result<(), StoreError> = store.write(|tx| {
            tx.remove_network(&nets[1])?;
            Err(StoreError::Unavailable { path: "x".into() })
        });
        assert!(r.is_err());
        assert_eq!(*store.snapshot().unwrap().networks, fresh(&store));
        assert_eq!(store.snapshot().unwrap().networks.len(), 4);
    }

    /// Readers racing a writer never see a network count go back, and the writer's own
    /// transactions always start from the last commit (a stale cached view there would
    /// hand out what another commit already took).
    #[test]
    fn cached_records_are_never_stale_under_concurrent_commits() {
        const WRITES: usize = 60;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, done) = (store.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut last = 0;
                    let mut reads = 0;
                    while !done.load(Ordering::Acquire) || reads == 0 {
                        let n = store.snapshot().unwrap().networks.len();
                        assert!(
                            n >= last,
                            "a snapshot went back from {last} to {n} networks"
                        );
                        last = n;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for i in 0..WRITES {
            let n = network(
                &format!("n{i}"),
                &format!("10.{i}.0.0/16"),
                [10, i as u8, 0, 1],
            );
            store
                .write(|tx| {
                    assert_eq!(
                        tx.networks()?.len(),
                        i,
                        "the transaction starts from the last commit"
                    );
                    tx.insert_network(&n)
                })
                .unwrap();
        }
        done.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(store.snapshot().unwrap().networks.len(), WRITES);
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
