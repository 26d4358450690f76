//! `POST /containers/{id}/rename?name=NEW`: a new name for a container, running or not.
//!
//! Only the record changes: the embedded DNS follows at once because every successful change
//! is followed by a reconcile that swaps in a fresh record snapshot; the hostname and the
//! container's files keep the old name, as in Docker.

use crate::daemon::engine::{Engine, EngineError, find_container};
use crate::model::ContainerName;

impl Engine {
    /// Renames the container `term` (id, name or unique id prefix) to `new_name`, with
    /// Docker's checks and texts (moby `daemon/rename.go`).
    pub fn rename_container(&self, term: &str, new_name: &str) -> Result<(), EngineError> {
        if term.is_empty() || new_name.is_empty() {
            return Err(EngineError::RenameEmpty);
        }
        let wanted = new_name.strip_prefix('/').unwrap_or(new_name);
        self.store().write(|tx| {
            let containers = tx.containers()?;
            let c = find_container(&containers, term)?.clone();
            if c.name.as_str() == wanted {
                return Err(EngineError::RenameSame);
            }
            let name: ContainerName = wanted
                .parse()
                .map_err(|e| EngineError::RenameTo(Box::new(EngineError::from(e))))?;
            if let Some(other) = containers.iter().find(|o| o.name == name) {
                return Err(EngineError::RenameTo(Box::new(EngineError::NameInUse {
                    name: other.name.to_string(),
                    id: other.id.to_string(),
                })));
            }
            tx.remove_container(&c)?;
            let mut renamed = c;
            renamed.name = name;
            tx.insert_container(&renamed)?;
            Ok(())
        })
    }
}
