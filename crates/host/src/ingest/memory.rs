//! An [`Acceptor`] that keeps everything in memory: for tests and for trying the server
//! without the durable store. Nothing survives a restart, so a 200 from it is NOT a
//! durability promise.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::{map_event, Event, InMomentCall, Registry, SkipReason, UserState};

use crate::accept::{AcceptError, Acceptor, EventOutcome, Source};

/// One accepted (or refused) event as the acceptor saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub source: String,
    pub event: Event,
    pub outcome: EventOutcome,
    pub calls: Vec<InMomentCall>,
}

#[derive(Default)]
struct Memory {
    /// Each user's survey state, per source (keyed like `StreamMapper`: userId, else
    /// anonymousId).
    users: HashMap<(String, String), UserState>,
    /// `messageId`s seen per source (no window: memory is short-lived anyway).
    seen: HashSet<(String, String)>,
    records: Vec<Record>,
}

/// Maps events with the registry per source and user, behind one mutex, so a request's
/// events are "stored" all together, in order.
pub struct MemoryAcceptor {
    registry: Registry,
    memory: Mutex<Memory>,
}

impl MemoryAcceptor {
    pub fn new(registry: Registry) -> MemoryAcceptor {
        MemoryAcceptor {
            registry,
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Everything accepted so far, in order.
    pub fn records(&self) -> Vec<Record> {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .clone()
    }

    /// The events accepted so far (duplicates and rejections left out).
    pub fn events(&self) -> Vec<Event> {
        self.records()
            .into_iter()
            .filter(|r| matches!(r.outcome, EventOutcome::Stored | EventOutcome::Skipped(_)))
            .map(|r| r.event)
            .collect()
    }
}

#[async_trait]
impl Acceptor for MemoryAcceptor {
    async fn accept(
        &self,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError> {
        let mut memory = self.memory.lock().map_err(|_| AcceptError::Unavailable {
            reason: "the in-memory acceptor failed earlier".into(),
            retry_after: Duration::from_secs(1),
        })?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let message_id = event.message_id.clone().unwrap_or_default();
            let seen_key = (source.name.clone(), message_id);
            let (outcome, calls) = if memory.seen.contains(&seen_key) {
                (EventOutcome::Duplicate, Vec::new())
            } else {
                let user_key = (source.name.clone(), event.user_key().to_string());
                let state = memory.users.get(&user_key).cloned().unwrap_or_default();
                match map_event(&self.registry, &event, state, &source.settings) {
                    Ok(output) => {
                        memory.users.insert(user_key, output.state);
                        memory.seen.insert(seen_key);
                        let outcome = match output.skipped {
                            Some(
                                reason @ (SkipReason::NoHandler | SkipReason::DestinationDisabled),
                            ) => EventOutcome::Skipped(reason),
                            _ => EventOutcome::Stored,
                        };
                        (outcome, output.calls)
                    }
                    Err(error) => (EventOutcome::Rejected(error), Vec::new()),
                }
            };
            memory.records.push(Record {
                source: source.name.clone(),
                event,
                outcome: outcome.clone(),
                calls,
            });
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}
