//! Turns a journal row into the one call to send now: an event is mapped with its user's
//! state, under the current settings of its source, when it is that user's turn (so a
//! fix to the mapping or the settings reaches every event not yet delivered). Mapping is
//! pure, so mapping the same row again (the next call, a retry, a restart) gives the same
//! calls; `done_calls` says which of them is next.

use std::collections::HashMap;

use inmoment_core::email_survey;
use inmoment_core::{
    map_event_owned, Event, EventFields, InMomentCall, Payload, Registry, Settings, SkipReason,
    SurveySkip, UserState,
};

use inmoment_store::{Journal, JournalError, PendingRow, StateUpdate};

/// One row made ready: its next call, or nothing left to send.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    pub message_id: String,
    pub event_type: String,
    pub accepted_at_ms: i64,
    /// Attempts of this call so far.
    pub attempts: i64,
    /// The call to send now; none when the row has nothing (more) to send.
    pub call: Option<InMomentCall>,
    /// The call's place among the row's calls, and how many there are.
    pub index: i64,
    pub total: i64,
    /// The user's state after the event, stored when the row finishes (none: unchanged).
    pub state_after: Option<StateUpdate>,
    /// The user's state after the event, once mapped: delivery keeps it for the user's
    /// next event instead of reading it back.
    pub state: Option<UserState>,
    /// Why the event makes no calls, counted when the row finishes.
    pub skipped: Option<SkipReason>,
    /// Why the row cannot be mapped; it is then parked whole as a dead letter.
    pub unmappable: Option<String>,
    /// The row's body, for that dead letter.
    pub body: String,
    /// For a track event of a source that surveys by email: the survey call to send if
    /// InMoment answers eligible, or why there is none (decided at the answer).
    pub survey: Option<Result<Box<InMomentCall>, SurveySkip>>,
}

impl Job {
    /// Whether the call about to be settled is the row's last.
    pub fn is_last(&self) -> bool {
        self.index + 1 >= self.total
    }
}

/// What mapping needs: the handlers and each source's settings of now.
pub struct Mapping<'a> {
    pub registry: &'a Registry,
    pub sources: &'a HashMap<String, Settings>,
}

/// Prepares `row` with the user's state as their previous event left it: `known` when
/// delivery kept it, else read from the journal. An error is a failed read (try again
/// later).
pub async fn prepare(
    row: PendingRow,
    known: Option<UserState>,
    mapping: &Mapping<'_>,
    journal: &dyn Journal,
) -> Result<Job, JournalError> {
    let mut job = Job {
        id: row.id,
        source: row.source,
        user_key: row.user_key,
        message_id: row.message_id,
        event_type: String::new(),
        accepted_at_ms: row.accepted_at_ms,
        attempts: row.attempts,
        call: None,
        index: row.done_calls,
        total: 0,
        state_after: None,
        state: None,
        skipped: None,
        unmappable: None,
        body: String::new(),
        survey: None,
    };
    if row.kind == "call" {
        match serde_json::from_str::<InMomentCall>(&row.body) {
            Ok(call) if row.done_calls == 0 => {
                job.event_type = call.kind().to_string();
                job.call = Some(call);
                job.total = 1;
            }
            Ok(_) => {}
            Err(error) => job.unmappable = Some(format!("the stored call cannot be read: {error}")),
        }
        job.body = row.body;
        return Ok(job);
    }
    job.body = row.body;
    // Read first, then map purely: `queue remap` maps with the same function.
    let before = match known {
        Some(state) => state,
        None => journal.user_state(&job.source, &job.user_key).await?,
    };
    match map_stored(&job.body, &job.source, before, mapping) {
        Mapped::Unmappable { event_type, reason } => {
            job.event_type = event_type;
            job.unmappable = Some(reason);
        }
        Mapped::Calls {
            event_type,
            calls,
            state,
            changed,
            skipped,
            survey,
        } => {
            job.event_type = event_type;
            job.survey = survey;
            if changed {
                job.state_after = serde_json::to_string(&state).ok().map(|text| StateUpdate {
                    source: job.source.clone(),
                    user_key: job.user_key.clone(),
                    state: text,
                });
            }
            job.state = Some(*state);
            job.skipped = skipped;
            job.total = i64::try_from(calls.len()).unwrap_or(i64::MAX);
            job.call = usize::try_from(job.index)
                .ok()
                .and_then(|index| calls.into_iter().nth(index));
        }
    }
    Ok(job)
}

/// What a stored event maps to under the current settings.
#[derive(Debug, Clone)]
pub enum Mapped {
    /// Its calls in order (none when skipped), and the user's state after it (as
    /// stored: see [`persisted`]) and whether the event changed it.
    Calls {
        event_type: String,
        calls: Vec<InMomentCall>,
        state: Box<UserState>,
        changed: bool,
        skipped: Option<SkipReason>,
        /// The email survey its eligibility answer may lead to (see [`Job::survey`]).
        survey: Option<Result<Box<InMomentCall>, SurveySkip>>,
    },
    /// It cannot be read or mapped (or its source is gone): why.
    Unmappable { event_type: String, reason: String },
}

/// Maps a stored event (`body`, its JSON) of `source` with the user's state `before`:
/// pure, the one mapping function of delivery and of `queue remap`, so a remap preview
/// shows exactly what delivery would send.
pub fn map_stored(body: &str, source: &str, before: UserState, mapping: &Mapping<'_>) -> Mapped {
    let event = serde_json::from_str::<EventFields>(body)
        .map_err(|e| e.to_string())
        .and_then(|fields| Event::from_fields(fields, None).map_err(|e| e.to_string()));
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            return Mapped::Unmappable {
                event_type: String::new(),
                reason: format!("the stored event cannot be read: {error}"),
            }
        }
    };
    let event_type = event.event_type().as_str().to_string();
    let Some(settings) = mapping.sources.get(source) else {
        return Mapped::Unmappable {
            event_type,
            reason: format!(
                "source `{source}` is not configured any more; configure it again, then replay the dead letters"
            ),
        };
    };
    let before = persisted(before);
    // Only what a survey needs of the event is kept: the handler takes the rest.
    let survey_event = match &event.payload {
        Payload::Track { event: name, .. } if settings.email_survey.enabled => Some((
            event.message_id.clone().unwrap_or_default(),
            name.clone(),
            event.user_id.clone(),
        )),
        _ => None,
    };
    // The event is given away: the handler moves its properties instead of copying.
    match map_event_owned(mapping.registry, event, before.clone(), settings) {
        Ok(output) => {
            // Drafted from the state before it is trimmed: the survey carries the
            // properties the event gave the user.
            let survey = survey_event.and_then(|(message_id, name, user_id)| {
                email_survey::for_track(
                    settings,
                    &message_id,
                    &name,
                    user_id.as_deref(),
                    &output.calls,
                    &output.state,
                )
                .map(|survey| survey.map(Box::new))
            });
            let after = persisted(output.state);
            Mapped::Calls {
                event_type,
                calls: output.calls,
                changed: after != before,
                state: Box::new(after),
                skipped: output.skipped,
                survey,
            }
        }
        Err(error) => Mapped::Unmappable {
            event_type,
            reason: format!(
                "the event cannot be mapped any more: {}: {}",
                error.path, error.message
            ),
        },
    }
}

/// What a user's next event needs of their state and cannot derive. The event name,
/// properties and page info are rewritten by every event before use, and
/// `segment_user_id` is set again from the event's ids (identify always, the others when
/// missing), so storing them would only turn each track into a random write.
fn persisted(state: UserState) -> UserState {
    UserState {
        event_name: None,
        properties: Default::default(),
        page_info: None,
        segment_user_id: None,
        ..state
    }
}
