//! Secrets and `--print-config`: what each key shows comes from its entry in the table
//! (keys.rs), and every key whose flag is a [`Secret`] is shown as `<redacted>`.

use std::fmt;
use std::time::Duration;

use toml::Value;

use crate::keys::{Key, Show, KEYS};
use crate::{Config, SourceConfig};

const REDACTED: &str = "<redacted>";

/// A credential: shown as `<redacted>` by `Debug` so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it (auth, signing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

pub(crate) fn text(value: impl fmt::Display) -> Option<Value> {
    Some(Value::String(value.to_string()))
}

pub(crate) fn int(n: impl TryInto<i64>) -> Option<Value> {
    Some(Value::Integer(n.try_into().unwrap_or(i64::MAX)))
}

pub(crate) fn millis(duration: Duration) -> Option<Value> {
    int(duration.as_millis())
}

pub(crate) fn secs(duration: Duration) -> Option<Value> {
    int(duration.as_secs())
}

pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<Value> {
    Some(Value::Array(
        items.into_iter().map(|s| Value::String(s.into())).collect(),
    ))
}

/// The value with every string replaced by `<redacted>`.
fn redact(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        _ => Value::String(REDACTED.into()),
    }
}

impl Key {
    /// What `--print-config` shows for this key: one value when top-level, one per
    /// source (that has it) otherwise.
    pub fn shown(&self, config: &Config) -> Vec<Value> {
        match self.show {
            Show::Top(_) => self.shown_in(config, None).into_iter().collect(),
            Show::Source(_) => config
                .sources
                .iter()
                .filter_map(|s| self.shown_in(config, Some(s)))
                .collect(),
        }
    }

    /// The value shown at the top level (`source` is `None`) or in a source's table;
    /// redacted when secret.
    fn shown_in(&self, config: &Config, source: Option<&SourceConfig>) -> Option<Value> {
        let value = match (self.show, source) {
            (Show::Top(get), None) => get(config),
            (Show::Source(get), Some(source)) => get(source),
            _ => None,
        }?;
        Some(match self.secret {
            true => redact(value),
            false => value,
        })
    }
}

impl Config {
    /// The effective configuration as TOML, with every secret replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        let mut top = toml::Table::new();
        let mut sources = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            let mut table = toml::Table::new();
            table.insert("name".into(), Value::String(source.source.name.clone()));
            for key in KEYS {
                if let Some(value) = key.shown_in(self, Some(source)) {
                    table.insert(key.name.into(), value);
                }
            }
            sources.push(Value::Table(table));
        }
        for key in KEYS {
            if let Some(value) = key.shown_in(self, None) {
                top.insert(key.name.into(), value);
            }
        }
        top.insert("sources".into(), Value::Array(sources));
        toml::to_string(&top).unwrap_or_default()
    }
}
