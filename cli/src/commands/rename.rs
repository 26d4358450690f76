//! `netloom rename CONTAINER NEW_NAME`.

use clap::Args;

use crate::client::{Client, escape};
use crate::commands::{StatusError, check_args};

/// `netloom rename CONTAINER NEW_NAME`.
#[derive(Debug, Args)]
pub struct RenameCmd {
    /// CONTAINER NEW_NAME.
    #[arg(value_name = "CONTAINER NEW_NAME")]
    args: Vec<String>,
}

impl RenameCmd {
    /// Renames a container like `docker rename`: the daemon's error on stderr, then
    /// `Error: failed to rename container named OLD`, exit status 1.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom rename", &self.args, 2, Some(2))?;
        let old = self.args[0].trim();
        let new = self.args[1].trim();
        if old.is_empty() || new.is_empty() {
            return Err(StatusError {
                code: 1,
                message: "Error: Neither old nor new names may be empty".into(),
            }
            .into());
        }
        let path = format!("/containers/{}/rename?name={}", escape(old), escape(new));
        if let Err(e) = client.post::<_, serde_json::Value>(&path, &()).await {
            eprintln!("{e}");
            return Err(StatusError {
                code: 1,
                message: format!("Error: failed to rename container named {old}"),
            }
            .into());
        }
        Ok(())
    }
}
