//! `inmoment-destination queue remap`: after a fix to the mapping or the settings, map
//! delivered events (of a time range) or dead letters again with the configuration of now,
//! compare with what was sent, and show the difference (`--dry-run`) or queue the events
//! whose calls change for delivery again.
//!
//! Mapping is delivery's own pure function ([`map_stored`]), with the user's state as it
//! is now (the state after their last delivered event), not as it was when the event was
//! first delivered.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use inmoment_core::{InMomentCall, Registry, Settings};
use serde::Serialize;
use serde_json::Value;

use crate::cli::RemapArgs;
use crate::config::{parse_duration, Config, ConfigFlags, DURATION_HINT};
use crate::queue_cmd::QueueError;
use crate::remap_store::{self, RemapStore};
use inmoment_delivery::{map_stored, Mapped, Mapping};
use inmoment_store::{RemapFrom, Requeue, Selection};

/// `queue remap`: runs [`run`] with the configuration read as `serve` reads it, and says
/// how it went on stderr. Exit 1 when some event could not be remapped or an id is no
/// dead letter.
pub fn command(
    data_dir: &Path,
    shared: Option<&str>,
    registry: &Registry,
    args: &RemapArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let flags = ConfigFlags {
        account: args.flags.clone(),
        ..ConfigFlags::default()
    };
    let config =
        Config::from_process_for_send(args.config.as_deref(), &flags).map_err(|e| e.to_string())?;
    let sources = crate::service::source_settings(&config);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let target = if args.dead {
        if !args.all && args.ids.is_empty() {
            return Err("remap --dead: name dead letter ids or pass --all".into());
        }
        Target::Dead(if args.all {
            Selection::All
        } else {
            Selection::Ids(args.ids.clone())
        })
    } else {
        let since = args
            .since
            .as_deref()
            .ok_or("remap: pass --since (or --dead)")?;
        Target::Delivered {
            since_ms: parse_time(since, now_ms).map_err(|e| format!("--since {e}"))?,
            until_ms: match args.until.as_deref() {
                Some(until) => parse_time(until, now_ms).map_err(|e| format!("--until {e}"))?,
                None => i64::MAX,
            },
            source: args.source.clone(),
        }
    };
    let mut store = remap_store::open(data_dir, shared).map_err(|e| e.to_string())?;
    let summary = run(&mut *store, registry, &sources, &target, args.dry_run, out)
        .map_err(|e| e.to_string())?;
    if args.dry_run {
        eprintln!(
            "{} events, {} would change",
            summary.events, summary.changed
        );
    } else {
        eprintln!(
            "{} events, {} changed, {} queued again for delivery",
            summary.events, summary.changed, summary.queued
        );
    }
    if summary.failed > 0 {
        eprintln!(
            "{} could not be remapped and were left as they are (see the lines with \"error\")",
            summary.failed
        );
    }
    if !summary.unknown.is_empty() {
        let ids: Vec<String> = summary.unknown.iter().map(i64::to_string).collect();
        eprintln!(
            "no dead letter with id {} (see `queue dead list`)",
            ids.join(", ")
        );
    }
    if summary.failed > 0 || !summary.unknown.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Which stored events to remap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Delivered events accepted in `since_ms..until_ms`, of one source or all.
    Delivered {
        since_ms: i64,
        until_ms: i64,
        source: Option<String>,
    },
    /// Dead letters.
    Dead(Selection),
}

/// What a remap saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemapSummary {
    /// Events looked at.
    pub events: usize,
    /// Events whose calls change under the current configuration.
    pub changed: usize,
    /// Of those, queued again for delivery (0 for a dry run).
    pub queued: usize,
    /// Events that cannot be mapped now, or whose event is not kept (left as they are).
    pub failed: usize,
    /// Selected dead letter ids that are none.
    pub unknown: Vec<i64>,
}

/// One call that differs: what was sent (or died) and what would be sent now.
#[derive(Debug, Serialize)]
struct Change {
    old: Option<Value>,
    new: Option<Value>,
}

/// One output line: an event whose calls change, or one that cannot be remapped.
#[derive(Debug, Serialize)]
struct Line<'a> {
    #[serde(rename = "messageId")]
    message_id: &'a str,
    source: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Parses `--since`/`--until`: an RFC 3339 time, or an age (`2h`: two hours ago).
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, QueueError> {
    if let Some(age) = parse_duration(text) {
        let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(age));
    }
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.timestamp_millis())
        .map_err(|_| QueueError::BadTime(text.to_string(), DURATION_HINT))
}

/// Remaps `target` with `sources` (each source's settings now); writes one JSON line per
/// changed or failed event on `out`. Unless `dry_run`, the changed events are queued again.
pub fn run(
    admin: &mut dyn RemapStore,
    registry: &Registry,
    sources: &HashMap<String, Settings>,
    target: &Target,
    dry_run: bool,
    out: &mut impl Write,
) -> Result<RemapSummary, QueueError> {
    let mapping = Mapping { registry, sources };
    let mut summary = RemapSummary::default();
    let mut pages = Pages::start(admin, target)?;
    let mut queued = HashSet::new();
    loop {
        let page = pages.next(admin, &mut summary)?;
        if page.is_empty() {
            break;
        }
        let mut requeue = Vec::new();
        for candidate in page {
            if let Some(mut event) = remap_one(admin, &mapping, candidate, &mut summary, out)? {
                // An event with several dead calls has several dead letters: it goes back
                // once.
                let key = (
                    event.source.clone(),
                    event.message_id.clone(),
                    event.event.clone(),
                );
                event.queued_already = !queued.insert(key);
                requeue.push(event);
            }
        }
        // Each page is queued in its own transaction, so a large remap never holds the
        // store's write lock for long.
        if !dry_run && !requeue.is_empty() {
            summary.queued += admin.requeue(&requeue)?;
        }
    }
    out.flush()?;
    Ok(summary)
}

/// Candidates read per page.
const PAGE: usize = 500;

/// Where the next page of candidates comes from.
enum Pages<'a> {
    Delivered {
        after_id: i64,
        since_ms: i64,
        until_ms: i64,
        source: Option<&'a str>,
    },
    Dead {
        ids: Vec<i64>,
        next: usize,
    },
}

impl<'a> Pages<'a> {
    fn start(admin: &dyn RemapStore, target: &'a Target) -> Result<Pages<'a>, QueueError> {
        Ok(match target {
            Target::Delivered {
                since_ms,
                until_ms,
                source,
            } => Pages::Delivered {
                after_id: 0,
                since_ms: *since_ms,
                until_ms: *until_ms,
                source: source.as_deref(),
            },
            Target::Dead(selection) => Pages::Dead {
                ids: admin.dead_letter_ids(selection)?,
                next: 0,
            },
        })
    }

    fn next(
        &mut self,
        admin: &dyn RemapStore,
        summary: &mut RemapSummary,
    ) -> Result<Vec<Candidate>, QueueError> {
        match self {
            Pages::Delivered {
                after_id,
                since_ms,
                until_ms,
                source,
            } => {
                let rows = admin.delivered_page(*after_id, *since_ms, *until_ms, *source, PAGE)?;
                if let Some(last) = rows.last() {
                    *after_id = last.id;
                }
                Ok(rows
                    .into_iter()
                    .map(|row| Candidate {
                        from: RemapFrom::Delivered(row.id),
                        old: Old::Delivered(match serde_json::from_str(&row.calls) {
                            Ok(Value::Array(calls)) => calls,
                            _ => Vec::new(),
                        }),
                        source: row.source,
                        user_key: row.user_key,
                        message_id: row.message_id,
                        event: Some(row.event),
                    })
                    .collect())
            }
            Pages::Dead { ids, next } => {
                let end = (*next + PAGE).min(ids.len());
                let chunk = ids[*next..end].to_vec();
                *next = end;
                if chunk.is_empty() {
                    return Ok(Vec::new());
                }
                let (letters, unknown) = admin.dead_events(&Selection::Ids(chunk))?;
                summary.unknown.extend(unknown);
                let page: Vec<Candidate> = letters
                    .into_iter()
                    .map(|letter| Candidate {
                        from: RemapFrom::Dead(letter.id),
                        old: Old::Dead(match letter.kind.as_str() {
                            "unmapped" => None,
                            _ => Some(
                                serde_json::from_str(&letter.call)
                                    .unwrap_or(Value::String(letter.call)),
                            ),
                        }),
                        source: letter.source,
                        user_key: letter.user_key,
                        message_id: letter.message_id,
                        event: letter.event,
                    })
                    .collect();
                if page.is_empty() {
                    // Every id of this chunk was unknown: go on with the next one.
                    return self.next(admin, summary);
                }
                Ok(page)
            }
        }
    }
}

/// Maps one candidate again and writes its line when it changes or fails; returns it to
/// queue again when it changes.
fn remap_one(
    admin: &dyn RemapStore,
    mapping: &Mapping<'_>,
    candidate: Candidate,
    summary: &mut RemapSummary,
    out: &mut impl Write,
) -> Result<Option<Requeue>, QueueError> {
    summary.events += 1;
    let line = |changes, error| Line {
        message_id: &candidate.message_id,
        source: &candidate.source,
        user: &candidate.user_key,
        dead_letter: match candidate.from {
            RemapFrom::Dead(id) => Some(id),
            RemapFrom::Delivered(_) => None,
        },
        changes,
        error,
    };
    let Some(event) = &candidate.event else {
        summary.failed += 1;
        let error = "no event kept (a call replayed from an older store): use `queue dead replay`";
        write_line(out, &line(Vec::new(), Some(error.into())))?;
        return Ok(None);
    };
    let state = admin.user_state(&candidate.source, &candidate.user_key)?;
    let new_calls: Vec<Value> = match map_stored(event, &candidate.source, state, mapping) {
        Mapped::Calls { calls, .. } => calls.iter().filter_map(to_value).collect(),
        Mapped::Unmappable { reason, .. } => {
            summary.failed += 1;
            write_line(out, &line(Vec::new(), Some(reason)))?;
            return Ok(None);
        }
    };
    let changes = match &candidate.old {
        Old::Delivered(old) => delivered_changes(old, &new_calls),
        Old::Dead(dead) => dead_changes(dead.as_ref(), &new_calls),
    };
    if changes.is_empty() {
        return Ok(None);
    }
    summary.changed += 1;
    write_line(out, &line(changes, None))?;
    Ok(Some(Requeue {
        from: candidate.from,
        source: candidate.source.clone(),
        user_key: candidate.user_key.clone(),
        message_id: candidate.message_id.clone(),
        event: event.clone(),
        queued_already: false,
    }))
}

/// What was sent for a stored event: the accepted calls of a delivered one, the dead call
/// of a dead letter (none for an event that could not be mapped).
enum Old {
    Delivered(Vec<Value>),
    Dead(Option<Value>),
}

struct Candidate {
    from: RemapFrom,
    source: String,
    user_key: String,
    message_id: String,
    event: Option<String>,
    old: Old,
}

/// The positions where the delivered calls and the new ones differ.
fn delivered_changes(old: &[Value], new: &[Value]) -> Vec<Change> {
    (0..old.len().max(new.len()))
        .filter_map(|i| {
            let (old, new) = (old.get(i), new.get(i));
            (old != new).then(|| Change {
                old: old.cloned(),
                new: new.cloned(),
            })
        })
        .collect()
}

/// A dead call changes unless the new mapping makes the very same call; it is shown next
/// to the new call of its kind. An event that could not be mapped changes once it maps.
fn dead_changes(dead: Option<&Value>, new: &[Value]) -> Vec<Change> {
    match dead {
        None => new
            .iter()
            .map(|call| Change {
                old: None,
                new: Some(call.clone()),
            })
            .collect(),
        Some(dead) if new.contains(dead) => Vec::new(),
        Some(dead) => {
            let same_kind = new.iter().find(|call| call.get("call") == dead.get("call"));
            vec![Change {
                old: Some(dead.clone()),
                new: same_kind.cloned(),
            }]
        }
    }
}

fn to_value(call: &InMomentCall) -> Option<Value> {
    serde_json::to_value(call).ok()
}

fn write_line(out: &mut impl Write, line: &Line<'_>) -> Result<(), QueueError> {
    serde_json::to_writer(&mut *out, line).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_differing_positions_are_changes() {
        let a = json!({"call": "eligibility_check", "x": 1});
        let b = json!({"call": "eligibility_check", "x": 2});
        assert!(delivered_changes(std::slice::from_ref(&a), std::slice::from_ref(&a)).is_empty());
        let changes = delivered_changes(std::slice::from_ref(&a), &[b.clone(), a.clone()]);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].old.as_ref(), Some(&a));
        assert_eq!(changes[1].old, None);
        assert!(dead_changes(Some(&a), std::slice::from_ref(&a)).is_empty());
        assert_eq!(
            dead_changes(Some(&a), std::slice::from_ref(&b))[0]
                .new
                .as_ref(),
            Some(&b)
        );
        assert_eq!(dead_changes(None, &[b]).len(), 1);
    }

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("2h", now).ok(), Some(now - 7_200_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", now).ok(),
            Some(1_700_000_000_000)
        );
        assert!(parse_time("yesterday", now).is_err());
    }
}
