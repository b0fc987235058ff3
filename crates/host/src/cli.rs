//! Command-line interface of `inmoment-destination`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use inmoment_core::{AccountToken, ClientId, Settings, SettingsError};

#[derive(Debug, Parser)]
#[command(
    name = "inmoment-destination",
    version,
    about = "Delivers Segment identify, track and page events to InMoment (formerly Wootric)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registered event handlers (event type, crate, version).
    Handlers,
    /// Preview the mapping: read Segment events as NDJSON (FILE or stdin) and write one
    /// JSON line per event with the survey settings and the InMoment calls it produces.
    Map(MapArgs),
}

#[derive(Debug, Args)]
pub struct MapArgs {
    /// NDJSON file of Segment events; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// The InMoment account settings, from flags or the environment.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// InMoment Account Token (`NPS-…`, from Settings > Installation).
    #[arg(long, env = "INMOMENT_ACCOUNT_TOKEN", hide_env_values = true)]
    pub account_token: Option<String>,
    /// InMoment API Client ID (Settings > API); needed for the API/mobile path.
    #[arg(long, env = "INMOMENT_CLIENT_ID")]
    pub client_id: Option<String>,
}

impl SettingsArgs {
    /// Validates the settings, naming the bad one.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let token = self
            .account_token
            .as_deref()
            .ok_or(SettingsError::MissingAccountToken)?;
        let mut settings = Settings::new(AccountToken::parse(token)?);
        settings.client_id = self.client_id.as_deref().map(ClientId::parse).transpose()?;
        Ok(settings)
    }
}
