//! Errors and warnings that point at the offending field of an event.

use serde::Serialize;

/// Why an event could not be mapped; `path` names the field (e.g. `traits.createdAt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct MappingError {
    pub path: String,
    pub message: String,
}

impl MappingError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        MappingError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A problem that left one value out but let the rest of the event through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl Warning {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            path: path.into(),
            message: message.into(),
        }
    }
}
