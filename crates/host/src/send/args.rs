//! The command line of `send`: the input, the outputs, and the `serve` settings that say
//! where events go (so a backfill reaches exactly the account `serve` would send to).

use std::path::PathBuf;

use clap::Args;

use crate::config::{AccountFlags, ConfigFlags};

/// `send [FILE]`: every setting can also come from `INMOMENT_<KEY>` or the `--config` file
/// (flag > variable > file), as for `serve`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// NDJSON file of Segment events; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    /// TOML configuration file (the one `serve` uses).
    #[arg(long, env = "INMOMENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Send with this source's InMoment account [default: the first source].
    #[arg(long)]
    pub source: Option<String>,
    /// Write the lines of events that failed to this file, to send it again later.
    #[arg(long, value_name = "FILE")]
    pub failed: Option<PathBuf>,
    /// Print the final summary as one JSON object instead of text.
    #[arg(long)]
    pub summary_json: bool,
    #[command(flatten)]
    pub flags: AccountFlags,
}

impl SendArgs {
    /// `serve`'s flags with only the account ones set, for the shared configuration loader.
    pub fn config_flags(&self) -> ConfigFlags {
        ConfigFlags {
            account: self.flags.clone(),
            ..ConfigFlags::default()
        }
    }
}
