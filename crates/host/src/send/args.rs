//! The command line of `send`: the input, the outputs, and the `serve` settings that say
//! where events go (so a backfill reaches exactly the account `serve` would send to).

use std::path::PathBuf;

use clap::Args;

use crate::config::{ConfigFlags, Secret};

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
    pub flags: SendFlags,
}

/// The configuration keys that matter when sending (those of listening are left out).
#[derive(Debug, Clone, Default, Args)]
pub struct SendFlags {
    /// InMoment Account Token (`NPS-…`).
    #[arg(long)]
    pub account_token: Option<String>,
    /// InMoment API client id (needed for end users, responses and declines).
    #[arg(long)]
    pub client_id: Option<String>,
    /// InMoment API client secret (prefer INMOMENT_CLIENT_SECRET).
    #[arg(long)]
    pub client_secret: Option<Secret>,
    /// Track event name that records a survey response.
    #[arg(long)]
    pub response_event: Option<String>,
    /// Track event name that records a survey decline.
    #[arg(long)]
    pub decline_event: Option<String>,
    /// InMoment eligibility base URL override.
    #[arg(long)]
    pub eligibility_url: Option<String>,
    /// InMoment API base URL override.
    #[arg(long)]
    pub api_url: Option<String>,
    /// InMoment calls in flight at once [default: 8].
    #[arg(long)]
    pub delivery_concurrency: Option<String>,
    /// First retry delay in ms [default: 1000].
    #[arg(long)]
    pub retry_base_ms: Option<String>,
    /// Longest retry delay in ms [default: 300000].
    #[arg(long)]
    pub retry_cap_ms: Option<String>,
    /// At most this many InMoment calls per minute [default: unlimited].
    #[arg(long)]
    pub rate_limit_per_minute: Option<String>,
}

impl SendFlags {
    /// The same keys as `serve`'s flags, for the shared configuration loader.
    pub fn config_flags(&self) -> ConfigFlags {
        ConfigFlags {
            account_token: self.account_token.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            response_event: self.response_event.clone(),
            decline_event: self.decline_event.clone(),
            eligibility_url: self.eligibility_url.clone(),
            api_url: self.api_url.clone(),
            delivery_concurrency: self.delivery_concurrency.clone(),
            retry_base_ms: self.retry_base_ms.clone(),
            retry_cap_ms: self.retry_cap_ms.clone(),
            rate_limit_per_minute: self.rate_limit_per_minute.clone(),
            ..ConfigFlags::default()
        }
    }
}
