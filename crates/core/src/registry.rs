//! Handler discovery: each handler crate registers with one
//! [`register_handler!`](crate::register_handler), and the host builds a [`Registry`] once
//! at start-up.
//!
//! Start-up refuses two handlers for one event type (naming both crates) and a linked
//! handler crate that registered nothing (a crate that is linked but never registers is
//! almost always a packaging mistake that would silently drop events).

use std::collections::BTreeMap;

use crate::event::EventType;
use crate::handler::EventHandler;

/// One handler's entry in the registry: plain constants, no logic.
pub struct HandlerRegistration {
    pub event_type: EventType,
    pub crate_name: &'static str,
    pub crate_version: &'static str,
    pub handler: &'static dyn EventHandler,
}

impl HandlerRegistration {
    pub const fn new(
        event_type: EventType,
        crate_name: &'static str,
        crate_version: &'static str,
        handler: &'static dyn EventHandler,
    ) -> HandlerRegistration {
        HandlerRegistration {
            event_type,
            crate_name,
            crate_version,
            handler,
        }
    }
}

inventory::collect!(HandlerRegistration);

/// Registers a handler crate's handler for one event type, under the crate's own package
/// name and version (what `handlers` lists and start-up checks). The one line a handler
/// crate needs, so no crate copies the registration by hand:
///
/// ```ignore
/// inmoment_core::register_handler!(EventType::Page, PageHandler);
/// ```
#[macro_export]
macro_rules! register_handler {
    ($event_type:expr, $handler:expr $(,)?) => {
        $crate::inventory::submit! {
            $crate::HandlerRegistration::new(
                $event_type,
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
                &$handler,
            )
        }
    };
}

/// Why the registry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("two handlers claim `{event_type}` events: `{first}` and `{second}`; remove one of them from the host's dependencies")]
    Duplicate {
        event_type: EventType,
        first: &'static str,
        second: &'static str,
    },
    #[error("handler crate `{crate_name}` is linked into the host but registered no handler; add `inmoment_core::register_handler!` to it or remove it from the host's dependencies")]
    NothingRegistered { crate_name: String },
}

/// The handlers of this binary, one per event type.
#[derive(Clone)]
pub struct Registry {
    handlers: BTreeMap<EventType, &'static HandlerRegistration>,
}

impl Registry {
    /// Builds the registry from everything linked into this binary. `linked_crates` are
    /// the handler crates the host depends on; each must have registered something.
    pub fn from_inventory(linked_crates: &[&str]) -> Result<Registry, RegistryError> {
        Registry::build(inventory::iter::<HandlerRegistration>(), linked_crates)
    }

    /// Builds the registry from the given registrations (testable without inventory).
    pub fn build(
        registrations: impl IntoIterator<Item = &'static HandlerRegistration>,
        linked_crates: &[&str],
    ) -> Result<Registry, RegistryError> {
        let mut handlers: BTreeMap<EventType, &'static HandlerRegistration> = BTreeMap::new();
        for registration in registrations {
            if let Some(existing) = handlers.insert(registration.event_type, registration) {
                let (first, second) = if existing.crate_name <= registration.crate_name {
                    (existing.crate_name, registration.crate_name)
                } else {
                    (registration.crate_name, existing.crate_name)
                };
                return Err(RegistryError::Duplicate {
                    event_type: registration.event_type,
                    first,
                    second,
                });
            }
        }
        for crate_name in linked_crates {
            if !handlers.values().any(|r| r.crate_name == *crate_name) {
                return Err(RegistryError::NothingRegistered {
                    crate_name: (*crate_name).to_string(),
                });
            }
        }
        Ok(Registry { handlers })
    }

    pub fn get(&self, event_type: EventType) -> Option<&'static HandlerRegistration> {
        self.handlers.get(&event_type).copied()
    }

    /// All registrations, sorted by event type so listings are deterministic.
    pub fn iter(&self) -> impl Iterator<Item = &'static HandlerRegistration> + '_ {
        self.handlers.values().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MappingError;
    use crate::event::Event;
    use crate::handler::HandlerOutput;
    use crate::settings::Settings;
    use crate::state::UserState;

    struct Nothing;
    impl EventHandler for Nothing {
        fn handle(
            &self,
            _: std::borrow::Cow<'_, Event>,
            state: UserState,
            _: &Settings,
        ) -> Result<HandlerOutput, MappingError> {
            Ok(HandlerOutput {
                state,
                ..HandlerOutput::default()
            })
        }
    }

    static A: HandlerRegistration =
        HandlerRegistration::new(EventType::Identify, "crate-b", "1.0.0", &Nothing);
    static B: HandlerRegistration =
        HandlerRegistration::new(EventType::Identify, "crate-a", "1.0.0", &Nothing);
    static C: HandlerRegistration =
        HandlerRegistration::new(EventType::Track, "crate-c", "1.0.0", &Nothing);

    #[test]
    fn duplicate_event_types_name_both_crates_sorted() {
        let err = Registry::build([&A, &C, &B], &[]).err().unwrap();
        assert_eq!(
            err,
            RegistryError::Duplicate {
                event_type: EventType::Identify,
                first: "crate-a",
                second: "crate-b"
            }
        );
        assert!(err.to_string().contains("`crate-a` and `crate-b`"));
    }

    #[test]
    fn a_linked_crate_without_registration_is_refused() {
        let err = Registry::build([&A, &C], &["crate-b", "crate-c", "crate-x"])
            .err()
            .unwrap();
        assert_eq!(
            err,
            RegistryError::NothingRegistered {
                crate_name: "crate-x".into()
            }
        );
    }

    struct Registered;
    impl EventHandler for Registered {
        fn handle(
            &self,
            event: std::borrow::Cow<'_, Event>,
            state: UserState,
            settings: &Settings,
        ) -> Result<HandlerOutput, MappingError> {
            Nothing.handle(event, state, settings)
        }
    }

    crate::register_handler!(EventType::Alias, Registered);

    #[test]
    fn the_macro_registers_under_the_calling_crate_s_name_and_version() {
        let registration = inventory::iter::<HandlerRegistration>()
            .find(|r| r.event_type == EventType::Alias)
            .unwrap();
        assert_eq!(registration.crate_name, env!("CARGO_PKG_NAME"));
        assert_eq!(registration.crate_version, env!("CARGO_PKG_VERSION"));
        let registry = Registry::from_inventory(&["inmoment-core"]).unwrap();
        assert!(registry.get(EventType::Alias).is_some());
    }

    #[test]
    fn lookup_and_sorted_listing() {
        let registry = Registry::build([&C, &A], &["crate-b", "crate-c"]).unwrap();
        assert_eq!(
            registry.get(EventType::Track).unwrap().crate_name,
            "crate-c"
        );
        assert!(registry.get(EventType::Page).is_none());
        let order: Vec<EventType> = registry.iter().map(|r| r.event_type).collect();
        assert_eq!(order, [EventType::Identify, EventType::Track]);
    }
}
