//! Which source's settings a command uses, read by `serve`'s own configuration loader:
//! `send` delivers with them and `map` previews with them, so neither can drift from what
//! `serve` does for that source (`response_event`, `decline_event`, client id, …).

use std::path::PathBuf;

use clap::Args;

use crate::config::{AccountFlags, Config, ConfigError, ConfigFlags};
use inmoment_store::accept::Source;

/// `--config`, `--source` and the account flags; every setting can also come from
/// `INMOMENT_<KEY>` or the file (flag > variable > file), as for `serve`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// TOML configuration file (the one `serve` uses).
    #[arg(long, env = "INMOMENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Use this source's InMoment account and settings [default: the first source].
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub flags: AccountFlags,
}

impl SourceArgs {
    /// The whole configuration and the chosen source's settings. No write key is needed:
    /// without write keys or `[[sources]]`, the top-level account is the `default` source.
    pub fn load(&self) -> Result<(Config, Source), ConfigError> {
        let flags = ConfigFlags {
            account: self.flags.clone(),
            ..ConfigFlags::default()
        };
        let config = Config::from_process_for_send(self.config.as_deref(), &flags)?;
        let source = config.pick_source(self.source.as_deref())?.source.clone();
        Ok((config, source))
    }
}
