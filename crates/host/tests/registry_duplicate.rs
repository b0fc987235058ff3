//! A second handler for an event type makes start-up fail, naming both crates.
//! (This test binary links its own extra registration, so it has its own registry.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use inmoment_core::{
    Event, EventHandler, EventType, HandlerOutput, HandlerRegistration, MappingError,
    RegistryError, Settings, UserState,
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

inmoment_core::inventory::submit! {
    HandlerRegistration::new(EventType::Identify, "second-identify", "0.0.0", &SecondIdentify)
}

#[test]
fn a_duplicate_registration_is_refused_naming_both_crates() {
    let err = inmoment_host::linked::registry()
        .err()
        .expect("duplicate refused");
    assert_eq!(
        err,
        RegistryError::Duplicate {
            event_type: EventType::Identify,
            first: "inmoment-identify",
            second: "second-identify",
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("`inmoment-identify`") && message.contains("`second-identify`"),
        "{message}"
    );
}
