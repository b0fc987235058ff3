//! `send --dry-run`: who would be surveyed by email, without sending anything. InMoment
//! decides eligibility only when asked, so each survey is shown as the call an eligible
//! answer would lead to.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use inmoment_core::email_survey::SurveyPreview;
use inmoment_core::Registry;
use serde::Serialize;

use super::prepare::{prepare, Prepared};
use super::SendError;
use crate::mapper::StreamMapper;
use inmoment_store::accept::Source;

/// One line of the dry run: an event and the survey it may lead to.
#[derive(Serialize)]
struct Line<'a> {
    line: u64,
    user: &'a str,
    email_survey: SurveyPreview,
}

/// Maps every event of `file` (stdin when none) with `source`'s settings and prints one
/// JSON line per event that may lead to an email survey, then a count on stderr.
pub fn run(
    registry: &Registry,
    source: &Source,
    file: Option<&Path>,
) -> Result<ExitCode, SendError> {
    let reader: Box<dyn BufRead> = match file.filter(|path| path.as_os_str() != "-") {
        Some(path) => Box::new(BufReader::new(File::open(path).map_err(|source| {
            SendError::Open {
                path: path.to_path_buf(),
                source,
            }
        })?)),
        None => Box::new(io::stdin().lock()),
    };
    let mut mapper = StreamMapper::new(registry, &source.settings);
    let mut out = io::stdout().lock();
    let mut events = 0u64;
    let mut users = HashSet::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(SendError::Read)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        events += 1;
        let number = u64::try_from(index + 1).unwrap_or(u64::MAX);
        let Prepared::Send {
            user,
            survey: Some(survey),
            work: Ok(_),
        } = prepare(&mut mapper, number, &line)
        else {
            continue;
        };
        if survey.is_ok() {
            users.insert(user.clone());
        }
        let line = Line {
            line: number,
            user: &user,
            email_survey: SurveyPreview::new(survey),
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| SendError::Summary(e.into()))?;
        out.write_all(b"\n").map_err(SendError::Summary)?;
    }
    out.flush().map_err(SendError::Summary)?;
    eprintln!(
        "dry run: {events} events read, nothing sent; {} users would be surveyed by email if InMoment finds them eligible",
        users.len()
    );
    Ok(ExitCode::SUCCESS)
}
