//! `inmoment-destination send [FILE]`: maps a file of Segment events (a backfill or a
//! replay) and delivers it to InMoment now, with `serve`'s settings and delivery stack,
//! without the store: each user's events in order, users in parallel, memory bounded by a
//! read-ahead window whatever the file's size. Every event ends delivered, skipped or
//! failed; failed events' lines can be kept (`--failed`) to send again.

mod args;
mod dry_run;
mod input;
mod lanes;
mod outcome;
mod prepare;
mod progress;
mod tally;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use inmoment_core::Registry;
use tokio::io::AsyncBufRead;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::Semaphore;

pub use args::SendArgs;
pub use progress::Progress;
pub use tally::{Failures, Summary};

use crate::config::ConfigError;
use crate::mapper::StreamMapper;
use inmoment_delivery::{Attempts, Deliver, InMomentDeliver, SurveyBatcher, SURVEY_BATCH_WINDOW};
use inmoment_store::accept::Source;
use input::Input;
use lanes::{Job, Lanes};
use outcome::{Answers, Settled, Verdict};
use prepare::{prepare, Prepared};
use tally::Tally;

/// Events read ahead of their delivery at most (queued in lanes or in flight).
pub const WINDOW: usize = 4096;

/// Why `send` could not run (exit 2); failed events are not errors but counts.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("--failed: cannot write {}: {source}", path.display())]
    FailedFile { path: PathBuf, source: io::Error },
    #[error("--failed: {} is the input file; name another file", .0.display())]
    FailedIsInput(PathBuf),
    #[error("--failed: cannot write the failed events' lines: {0}")]
    FailedLines(io::Error),
    #[error("reading the events: {0}")]
    Read(io::Error),
    #[error("writing the summary: {0}")]
    Summary(io::Error),
    #[error("cannot start: {0}")]
    Start(String),
}

/// Runs the command; exit 0 when every event was delivered or skipped, 1 when any failed.
pub fn command(args: SendArgs, registry: &Registry) -> Result<ExitCode, SendError> {
    let (config, source) = args.settings.load()?;
    if args.dry_run {
        return dry_run::run(registry, &source, args.file.as_deref());
    }
    let input = Input::open(args.file.as_deref())?;
    let total = Input::count_events(args.file.as_deref());
    let mut failed_out = args
        .failed
        .as_deref()
        .map(|path| create_failed(path, args.file.as_deref()))
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| SendError::Start(format!("the async runtime: {e}")))?;
    let summary = runtime.block_on(async {
        let deliver = InMomentDeliver::from_config(&config, Attempts::QuickRetries)
            .map_err(SendError::Start)?;
        let deliver = SurveyBatcher::new(Arc::new(deliver), SURVEY_BATCH_WINDOW);
        let failed = failed_out.as_mut().map(|w| w as &mut dyn Write);
        let reader = input.into_reader();
        run(
            registry,
            &source,
            Arc::new(deliver),
            reader,
            failed,
            Progress::new(total),
        )
        .await
    });
    let summary = summary?;
    if let Some(out) = failed_out.as_mut() {
        out.flush().map_err(SendError::FailedLines)?;
    }
    print_summary(&summary, args.summary_json, args.failed.as_deref())?;
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `--failed` file, created empty (refusing the input file itself).
fn create_failed(path: &Path, input: Option<&Path>) -> Result<BufWriter<File>, SendError> {
    input::check_distinct(input, path)?;
    let file = File::create(path).map_err(|source| SendError::FailedFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(BufWriter::new(file))
}

/// The summary on stdout: text for people, or one JSON object for scripts.
fn print_summary(summary: &Summary, json: bool, failed: Option<&Path>) -> Result<(), SendError> {
    let text = if json {
        serde_json::to_string(summary)
            .map(|json| json + "\n")
            .map_err(|e| SendError::Summary(e.into()))?
    } else {
        summary.text(failed)
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(SendError::Summary)
}

/// The named source, or the first one configured.
/// Sends every event of `input` with `source`'s settings through `deliver`; failed
/// events' lines go to `failed`. Returns when every event read has settled.
pub async fn run(
    registry: &Registry,
    source: &Source,
    deliver: Arc<dyn Deliver>,
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    mut failed: Option<&mut dyn Write>,
    mut progress: Progress,
) -> Result<Summary, SendError> {
    let started = Instant::now();
    let window = Arc::new(Semaphore::new(WINDOW));
    let (settled_tx, mut settled_rx) = mpsc::unbounded_channel::<Settled>();
    let resurvey = source.settings.email_survey.min_interval_days == 0;
    let lanes = Lanes::new(deliver, source.name.clone(), settled_tx.clone(), resurvey);
    let mut mapper = StreamMapper::new(registry, &source.settings);
    let read = read_all(&mut mapper, input.as_mut(), lanes, settled_tx, window);
    let collect = async {
        let mut tally = Tally::default();
        while let Some(settled) = settled_rx.recv().await {
            let Settled {
                line,
                text,
                verdict,
                answers,
                slot,
            } = settled;
            tally.add(line, &verdict, answers);
            if let (Some(out), Verdict::Failed(_)) = (failed.as_mut(), &verdict) {
                out.write_all(&text)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(SendError::FailedLines)?;
            }
            drop(slot); // counted and written: the reader may read one more event
            progress.update(&tally);
        }
        Ok::<Tally, SendError>(tally)
    };
    let (read, tally) = tokio::join!(read, collect);
    progress.finish();
    read.map_err(SendError::Read)?;
    Ok(tally?.finish(started.elapsed()))
}

/// Reads, maps and hands out events, never more than the window ahead of delivery.
async fn read_all(
    mapper: &mut StreamMapper<'_>,
    input: &mut (dyn AsyncBufRead + Unpin + Send),
    lanes: Arc<Lanes>,
    settled: UnboundedSender<Settled>,
    window: Arc<Semaphore>,
) -> io::Result<()> {
    let mut line = Vec::new();
    let mut number = 0u64;
    while input::next_line(input, &mut line).await? {
        number += 1;
        if input::is_blank(&line) {
            continue;
        }
        let Ok(slot) = window.clone().acquire_owned().await else {
            return Ok(());
        };
        if settled.is_closed() {
            return Ok(()); // the tally stopped (its output failed): stop reading
        }
        match prepare(mapper, number, &line) {
            Prepared::Send { user, work, survey } => lanes.submit(
                user,
                Job {
                    line: number,
                    text: line.clone(),
                    work,
                    survey,
                    slot,
                },
            ),
            Prepared::Done(verdict) => {
                let _ = settled.send(Settled {
                    line: number,
                    text: line.clone(),
                    verdict,
                    answers: Answers::default(),
                    slot,
                });
            }
        }
    }
    Ok(())
}
