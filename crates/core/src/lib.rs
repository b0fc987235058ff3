//! Pure types shared by every part of inmoment-destination.
//!
//! Nothing here does I/O: handlers turn a Segment [`Event`] plus the user's known
//! [`UserState`] into [`InMomentCall`] values, and the host decides how to send them.

pub mod call;
pub mod custom_fields;
pub mod dispatch;
pub mod eligibility;
pub mod email_survey;
pub mod end_user;
pub mod error;
pub mod event;
pub mod event_fields;
mod event_json;
pub mod handler;
pub mod integrations;
pub mod lookup;
pub mod properties;
pub mod registry;
pub mod scalar;
pub mod settings;
pub mod state;
pub mod timestamp;

pub use call::{EndUserRef, Host, HttpRequest, InMomentCall, Method, Params};
pub use dispatch::{map_event, map_event_owned, MappedEvent, SkipReason};
pub use email_survey::{EmailSurveySettings, SurveySkip};
pub use error::{MappingError, Warning};
pub use event::{Context, Event, EventType, Payload};
pub use event_fields::EventFields;
pub use handler::{EventHandler, HandlerOutput};
pub use properties::Properties;
pub use registry::{HandlerRegistration, Registry, RegistryError};
pub use scalar::Scalar;
pub use settings::{AccountToken, ClientId, Region, Settings, SettingsError};
pub use state::{SurveySettings, UserState};

/// Re-exported so handler crates register themselves without naming `inventory` as a dependency.
pub use inventory;

/// Our identifier in the beacon's `version` field, so InMoment can tell our traffic apart.
pub const VERSION: &str = concat!("inmoment-destination/", env!("CARGO_PKG_VERSION"));
