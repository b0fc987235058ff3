//! `inmoment-destination map`: preview what InMoment would receive for a file of events.

use std::io::{self, BufRead, Write};

use inmoment_core::{Event, MappedEvent, MappingError, Registry, Settings};
use serde::Serialize;

use crate::mapper::StreamMapper;

/// What the run saw, for the exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MapSummary {
    pub mapped: usize,
    pub failed: usize,
}

#[derive(Serialize)]
struct FailedLine<'a> {
    line: usize,
    error: &'a MappingError,
}

/// Reads NDJSON events and writes one JSON line per non-blank input line: the mapped event,
/// or `{"line": N, "error": {"path", "message"}}`. A bad line never stops the run.
/// Events without a `messageId` get `line-N`.
pub fn run(
    registry: &Registry,
    settings: &Settings,
    input: impl BufRead,
    out: &mut impl Write,
) -> io::Result<MapSummary> {
    let mut mapper = StreamMapper::new(registry, settings);
    let mut summary = MapSummary::default();
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = line?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => {
                let error = MappingError::new("", format!("not valid UTF-8: {e}"));
                write_failure(out, number, &error)?;
                summary.failed += 1;
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let result = Event::from_json(text).and_then(|mut event| {
            event
                .message_id
                .get_or_insert_with(|| format!("line-{number}"));
            let output = mapper.map(&event)?;
            serde_json::to_writer(&mut *out, &MappedEvent::new(&event, settings, &output))
                .map_err(|e| MappingError::new("", format!("could not write output: {e}")))?;
            Ok(())
        });
        match result {
            Ok(()) => {
                out.write_all(b"\n")?;
                summary.mapped += 1;
            }
            Err(error) => {
                write_failure(out, number, &error)?;
                summary.failed += 1;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

fn write_failure(out: &mut impl Write, line: usize, error: &MappingError) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &FailedLine { line, error })?;
    out.write_all(b"\n")
}
