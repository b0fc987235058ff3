//! Command-line interface of `inmoment-destination`.

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::path::PathBuf;

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

/// Parses the command line. The `--help` of `map`, `serve` and `send` names each setting's
/// `INMOMENT_*` variable (read by the config loader, not by clap, so that a flag, the
/// environment and the file keep their order of precedence).
pub fn parse() -> Cli {
    let command = Cli::command()
        .mut_subcommand("map", with_variable_names)
        .mut_subcommand("serve", with_variable_names)
        .mut_subcommand("send", with_variable_names);
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

fn with_variable_names(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| {
        let key = arg.get_id().as_str().to_string();
        if !crate::config::is_key(&key) {
            return arg;
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        arg.help(format!("{help} [env: {}]", crate::config::env_name(&key)))
    })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registered event handlers (event type, crate, version).
    Handlers,
    /// Preview the mapping: read Segment events as NDJSON (FILE or stdin) and write one
    /// JSON line per event with the survey settings and the InMoment calls `serve` would
    /// make for it, with a source's settings from `serve`'s configuration.
    Map(Box<MapArgs>),
    /// Inspect and repair the delivery queue (works while `serve` runs).
    Queue(QueueArgs),
    /// Run the HTTP server: Segment's Tracking API in, InMoment calls out.
    Serve(Box<ServeArgs>),
    /// Map and deliver a file of Segment events now (a backfill or a replay): each user's
    /// events in order, users in parallel, with `serve`'s settings; exit 1 if any failed.
    Send(Box<crate::send::SendArgs>),
    /// Run the InMoment sandbox (a faithful fake of InMoment's API) to try a tracking plan.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Answer 429 past this many requests per minute and account (with X-Rate-Limit-*).
    #[arg(long)]
    pub rate_limit_per_minute: Option<u32>,
}

/// `serve`: every configuration key is a flag, an `INMOMENT_<KEY>` variable or a key of
/// the `--config` file (flag > variable > file).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "INMOMENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Run with an in-process InMoment sandbox, its demo account and the demo write key:
    /// nothing to set up, nothing reaches the real InMoment.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub flags: crate::config::ConfigFlags,
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The data directory of `serve`.
    #[arg(
        long,
        env = "INMOMENT_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The shared PostgreSQL journal of `serve --store`; replaces `--data-dir`.
    #[arg(long, env = "INMOMENT_STORE", global = true, hide_env_values = true)]
    pub store: Option<String>,
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Pending, in retry, dead and the oldest pending age, per source (JSON lines).
    Stats,
    /// Dead letters: calls that failed for good or ran out of retries.
    Dead {
        #[command(subcommand)]
        command: DeadCommand,
    },
    /// Map delivered events of a time range (or dead letters) again with the configuration
    /// of now, after a fix: show what would change (`--dry-run`) or queue the events whose
    /// calls change for delivery again.
    Remap(Box<RemapArgs>),
}

/// `queue remap`: which events, and the configuration to map them with (read as `serve`
/// reads it: `--config`, `INMOMENT_<KEY>`, flags).
#[derive(Debug, Args)]
pub struct RemapArgs {
    /// Delivered events accepted at or after this time: RFC 3339
    /// (`2026-12-01T08:00:00Z`) or an age (`2h`: two hours ago).
    #[arg(long, required_unless_present = "dead", conflicts_with = "dead")]
    pub since: Option<String>,
    /// ...and before this time (same forms) [default: now].
    #[arg(long, requires = "since")]
    pub until: Option<String>,
    /// Only delivered events of this source.
    #[arg(long, conflicts_with = "dead")]
    pub source: Option<String>,
    /// Remap dead letters (their ids from `dead list`, or `--all`) instead.
    #[arg(long)]
    pub dead: bool,
    /// With `--dead`: every dead letter.
    #[arg(long, requires = "dead", conflicts_with = "ids")]
    pub all: bool,
    /// With `--dead`: dead letter ids.
    #[arg(requires = "dead")]
    pub ids: Vec<i64>,
    /// Print what would change (old and new calls per event, then a count); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// TOML configuration file (the one `serve` uses).
    #[arg(long, env = "INMOMENT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: crate::config::AccountFlags,
}

#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// List dead letters as JSON lines, oldest first.
    List {
        /// Show at most this many dead letters.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back to pending (after fixing the cause, e.g. the token).
    Replay {
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Dead letter ids (from `dead list`).
        ids: Vec<i64>,
    },
    /// Delete dead letters that died before the given age (`7d`, `12h`, `30m`).
    Purge {
        /// Delete those that died longer ago than this: a number and a unit (s, m, h, d).
        #[arg(long, value_name = "AGE")]
        older_than: String,
    },
}

#[derive(Debug, Args)]
pub struct MapArgs {
    /// NDJSON file of Segment events; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    /// The settings to map with: a source of `serve`'s configuration, read as `serve`
    /// reads it, so the preview is what `serve` would send.
    #[command(flatten)]
    pub settings: crate::source_args::SourceArgs,
}
