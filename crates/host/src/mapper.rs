//! Maps a stream of events the way one browser session per user would see them.

use std::collections::HashMap;

use inmoment_core::{map_event, Event, HandlerOutput, MappingError, Registry, Settings, UserState};

/// Keeps each user's survey state between their events (keyed by userId, else anonymousId).
pub struct StreamMapper<'a> {
    registry: &'a Registry,
    settings: &'a Settings,
    states: HashMap<String, UserState>,
}

impl<'a> StreamMapper<'a> {
    pub fn new(registry: &'a Registry, settings: &'a Settings) -> StreamMapper<'a> {
        StreamMapper {
            registry,
            settings,
            states: HashMap::new(),
        }
    }

    /// The settings events are mapped with.
    pub fn settings(&self) -> &'a Settings {
        self.settings
    }

    /// Maps one event and remembers the user's new state. A failed event leaves the
    /// user's state as it was.
    pub fn map(&mut self, event: &Event) -> Result<HandlerOutput, MappingError> {
        let key = event.user_key();
        let state = self.states.get(key).cloned().unwrap_or_default();
        let output = map_event(self.registry, event, state, self.settings)?;
        match self.states.get_mut(key) {
            Some(slot) => *slot = output.state.clone(),
            None => {
                self.states.insert(key.to_string(), output.state.clone());
            }
        }
        Ok(output)
    }
}
