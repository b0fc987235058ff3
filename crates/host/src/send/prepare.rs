//! One input line made ready to send: parsed, mapped with its user's state (as one browser
//! session would see the user's events), or the reason it cannot be sent.

use inmoment_core::email_survey;
use inmoment_core::{Event, InMomentCall, MappingError, SurveySkip};

use super::outcome::Verdict;
use crate::mapper::StreamMapper;

/// What to do with one line.
#[derive(Debug)]
pub enum Prepared {
    /// Goes to the user's lane: the calls to make in order, or a mapping failure that
    /// still keeps its place among the user's events (so `--failed` keeps their order).
    Send {
        user: String,
        work: Result<Vec<InMomentCall>, String>,
        /// With `survey_channel = "email"`: the survey an eligible answer leads to, or
        /// why none.
        survey: Option<Result<InMomentCall, SurveySkip>>,
    },
    /// Settled already: not an event (no user), or nothing to send.
    Done(Verdict),
}

/// Parses and maps line `number`; an event without a `messageId` gets `line-N`.
pub fn prepare(mapper: &mut StreamMapper<'_>, number: u64, bytes: &[u8]) -> Prepared {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Prepared::Done(Verdict::Failed(format!("not valid UTF-8: {e}"))),
    };
    let mut event = match Event::from_json(text) {
        Ok(event) => event,
        Err(error) => return Prepared::Done(Verdict::Failed(reason(&error))),
    };
    event
        .message_id
        .get_or_insert_with(|| format!("line-{number}"));
    let user = event.user_key().to_string();
    match mapper.map(&event) {
        Ok(output) if output.calls.is_empty() => Prepared::Done(Verdict::Skipped),
        Ok(output) => Prepared::Send {
            user,
            survey: email_survey::for_event(
                mapper.settings(),
                &event,
                &output.calls,
                &output.state,
            ),
            work: Ok(output.calls),
        },
        Err(error) => Prepared::Send {
            user,
            work: Err(reason(&error)),
            survey: None,
        },
    }
}

/// `path: message`, or the message alone for an error of the whole line.
fn reason(error: &MappingError) -> String {
    if error.path.is_empty() {
        error.message.clone()
    } else {
        format!("{}: {}", error.path, error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inmoment_core::{AccountToken, EventType, Settings};

    fn with_mapper(test: impl FnOnce(&mut StreamMapper<'_>)) {
        let registry = crate::linked::registry().unwrap();
        let settings = Settings::new(AccountToken::parse("NPS-4aeb53c1").unwrap());
        let mut mapper = StreamMapper::new(&registry, &settings);
        test(&mut mapper);
    }

    #[test]
    fn a_line_without_a_message_id_gets_its_line_number() {
        with_mapper(|mapper| {
            let line = br#"{"type":"track","userId":"u1","event":"Paid"}"#;
            let Prepared::Send { user, work, .. } = prepare(mapper, 7, line) else {
                panic!("expected calls");
            };
            assert_eq!(user, "u1");
            assert_eq!(work.unwrap()[0].message_id(), "line-7");
        });
    }

    #[test]
    fn bad_lines_say_why() {
        with_mapper(|mapper| {
            let not_json = prepare(mapper, 1, b"{oops");
            assert!(
                matches!(&not_json, Prepared::Done(Verdict::Failed(r)) if r.starts_with("not valid JSON")),
                "{not_json:?}"
            );
            let no_type = prepare(mapper, 2, br#"{"userId":"u1"}"#);
            assert!(
                matches!(&no_type, Prepared::Done(Verdict::Failed(r)) if r.starts_with("type: missing")),
                "{no_type:?}"
            );
        });
    }

    /// Any event type no linked handler claims (none left: nothing to check).
    #[test]
    fn an_event_without_a_handler_is_skipped() {
        let registry = crate::linked::registry().unwrap();
        let Some(unhandled) = EventType::ALL
            .into_iter()
            .find(|t| registry.get(*t).is_none())
        else {
            return;
        };
        with_mapper(|mapper| {
            let line = serde_json::json!({"type": unhandled.as_str(), "userId": "u1", "event": "E", "groupId": "g", "previousId": "p"});
            let prepared = prepare(mapper, 3, line.to_string().as_bytes());
            assert!(
                matches!(prepared, Prepared::Done(Verdict::Skipped)),
                "{prepared:?}"
            );
        });
    }
}
