//! Secrets and `--print-config`: what each key shows comes from its entry in the table
//! (keys.rs), and every key whose flag is a [`Secret`] is shown as `<redacted>`.

use std::fmt;
use std::time::Duration;

use toml::Value;

use crate::keys::{Key, Show, KEYS};
use crate::Config;

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
    /// source (that has it) otherwise; redacted when secret.
    pub fn shown(&self, config: &Config) -> Vec<Value> {
        let values: Vec<Value> = match self.show {
            Show::Top(get) => get(config).into_iter().collect(),
            Show::Source(get) => config.sources.iter().filter_map(get).collect(),
        };
        match self.secret {
            true => values.into_iter().map(redact).collect(),
            false => values,
        }
    }
}

impl Config {
    /// The effective configuration as TOML, with every secret replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        let mut top = toml::Table::new();
        let mut sources: Vec<toml::Table> = self
            .sources
            .iter()
            .map(|s| {
                toml::Table::from_iter([("name".into(), Value::String(s.source.name.clone()))])
            })
            .collect();
        for key in KEYS {
            let shown = |value| match key.secret {
                true => redact(value),
                false => value,
            };
            match key.show {
                Show::Top(get) => {
                    if let Some(value) = get(self) {
                        top.insert(key.name.into(), shown(value));
                    }
                }
                Show::Source(get) => {
                    for (table, source) in sources.iter_mut().zip(&self.sources) {
                        if let Some(value) = get(source) {
                            table.insert(key.name.into(), shown(value));
                        }
                    }
                }
            }
        }
        let sources = sources.into_iter().map(Value::Table).collect();
        top.insert("sources".into(), Value::Array(sources));
        toml::to_string(&top).unwrap_or_default()
    }
}
