//! The command line of `send`: the input, the outputs, and the `serve` settings that say
//! where events go (so a backfill reaches exactly the account `serve` would send to).

use std::path::PathBuf;

use clap::Args;

use crate::source_args::SourceArgs;

/// `send [FILE]`: every setting can also come from `INMOMENT_<KEY>` or the `--config` file
/// (flag > variable > file), as for `serve`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// NDJSON file of Segment events; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    /// Write the lines of events that failed to this file, to send it again later.
    #[arg(long, value_name = "FILE")]
    pub failed: Option<PathBuf>,
    /// Print the final summary as one JSON object instead of text.
    #[arg(long)]
    pub summary_json: bool,
    /// Send nothing: map the events and print, for each track event of a source with
    /// `survey_channel = "email"`, the survey an eligible answer would send (or why none).
    #[arg(long, conflicts_with = "failed")]
    pub dry_run: bool,
    /// Where the events go: `serve`'s configuration and the source to send with.
    #[command(flatten)]
    pub settings: SourceArgs,
}
