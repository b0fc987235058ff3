//! A second handler for an event type makes start-up fail, naming both crates.
//! (This test binary links its own extra registration, so it has its own registry.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use inmoment_core::{
    Event, EventHandler, EventType, HandlerOutput, MappingError, RegistryError, Settings, UserState,
};

struct SecondIdentify;

impl EventHandler for SecondIdentify {
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

// Registered as this crate, `inmoment-host`, like any handler crate would be.
inmoment_core::register_handler!(EventType::Identify, SecondIdentify);

#[test]
fn a_duplicate_registration_is_refused_naming_both_crates() {
    let err = inmoment_host::linked::registry()
        .err()
        .expect("duplicate refused");
    assert_eq!(
        err,
        RegistryError::Duplicate {
            event_type: EventType::Identify,
            first: "inmoment-host",
            second: "inmoment-identify",
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("`inmoment-host`") && message.contains("`inmoment-identify`"),
        "{message}"
    );
}
