//! `inmoment-destination queue`: inspect and repair the delivery queue of a data directory,
//! also while `serve` runs (SQLite WAL lets both use the file).

use std::io::{self, Write};
use std::path::Path;

use crate::config::{parse_duration, DURATION_HINT};
use inmoment_store::{Admin, Reader, Replayed, Selection, StoreConfig};

/// Why a queue command failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("data_dir `{0}`: no store there (start `serve` once, or pass --data-dir){1}")]
    NoStore(String, &'static str),
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("shared store: {0}")]
    Shared(String),
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
    #[error("--older-than `{0}`: expected {hint}", hint = DURATION_HINT)]
    BadAge(String),
    #[error(
        "`{0}`: expected an RFC 3339 time (2026-12-01T08:00:00Z) or an age ({1}: that long ago)"
    )]
    BadTime(String, &'static str),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

pub(crate) fn database(data_dir: &Path) -> Result<std::path::PathBuf, QueueError> {
    let path = StoreConfig::new(data_dir).database_path();
    if !path.exists() {
        let demo = StoreConfig::new(crate::demo::DATA_DIR).database_path();
        let hint = if demo.exists() {
            "; `serve --demo` keeps its store in ./demo-data: pass --data-dir ./demo-data"
        } else {
            ""
        };
        return Err(QueueError::NoStore(data_dir.display().to_string(), hint));
    }
    Ok(path)
}

/// One JSON line per source: pending, in retry, dead, oldest pending age. An empty queue
/// prints nothing on `out` and says so on `note` (so JSON readers see no lines).
pub fn stats(
    data_dir: &Path,
    out: &mut impl Write,
    note: &mut impl Write,
) -> Result<(), QueueError> {
    let reader = Reader::open(&database(data_dir)?)?;
    let sources = reader.stats(chrono::Utc::now().timestamp_millis())?;
    if sources.is_empty() {
        writeln!(
            note,
            "the queue is empty: no call pending and no dead letter in {}",
            data_dir.display()
        )?;
    }
    for source in sources {
        serde_json::to_writer(&mut *out, &source).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Dead letters as JSON lines, oldest first.
pub fn dead_list(data_dir: &Path, limit: usize, out: &mut impl Write) -> Result<(), QueueError> {
    let reader = Reader::open(&database(data_dir)?)?;
    for letter in reader.dead_letters(limit)? {
        serde_json::to_writer(&mut *out, &letter).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Puts dead letters back to pending; says how many, and which ids were no dead letter.
pub fn dead_replay(data_dir: &Path, selection: &Selection) -> Result<Replayed, QueueError> {
    Ok(Admin::open(&database(data_dir)?)?.replay_reporting(selection)?)
}

/// Deletes dead letters older than `age` (e.g. `7d`); returns how many.
pub fn dead_purge(data_dir: &Path, age: &str) -> Result<usize, QueueError> {
    let age = parse_duration(age).ok_or_else(|| QueueError::BadAge(age.to_string()))?;
    let cutoff = chrono::Utc::now().timestamp_millis()
        - i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 2);
    Ok(Admin::open(&database(data_dir)?)?.purge_older_than(cutoff)?)
}
