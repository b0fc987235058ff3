//! Layering: the file, then the environment, then the flags; the last layer that sets a
//! key wins, and its origin is kept for error messages. Keys nobody sets take the default
//! of their table entry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::keys::{env_name, flag_name, ConfigFlags, KEYS};
use crate::{Config, ConfigError};

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "set in {}", path.display()),
            Origin::Env(name) => write!(f, "set by {name}"),
            Origin::Flag(name) => write!(f, "set by {name}"),
        }
    }
}

/// What the configuration is for. `serve` listens for Segment clients, so it needs write
/// keys; `send` reads events from a file and needs only the InMoment account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Serve,
    Send,
}

/// The winning text of each key that some layer sets, with its origin.
#[derive(Default)]
pub(crate) struct Values {
    pub(crate) set: BTreeMap<&'static str, (String, Origin)>,
}

impl Config {
    /// Reads the configuration from the file, the process environment and the flags.
    pub fn from_process(file: Option<&Path>, flags: &ConfigFlags) -> Result<Config, ConfigError> {
        Config::load(file, &|name| std::env::var(name).ok(), flags)
    }

    /// Reads the configuration: file < environment (`env` looks a variable up) < flags.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &ConfigFlags,
    ) -> Result<Config, ConfigError> {
        load_as(Purpose::Serve, file, env, flags)
    }

    /// [`Config::from_process`] for `send`, which needs no write key.
    pub fn from_process_for_send(
        file: Option<&Path>,
        flags: &ConfigFlags,
    ) -> Result<Config, ConfigError> {
        Config::load_for_send(file, &|name| std::env::var(name).ok(), flags)
    }

    /// [`Config::load`] for `send`, which listens for nothing: without write keys or
    /// `[[sources]]` the top-level account settings make the `default` source.
    pub fn load_for_send(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &ConfigFlags,
    ) -> Result<Config, ConfigError> {
        load_as(Purpose::Send, file, env, flags)
    }
}

fn load_as(
    purpose: Purpose,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &ConfigFlags,
) -> Result<Config, ConfigError> {
    let (mut values, source_tables) = match file {
        Some(path) => read_file(path)?,
        None => (Values::default(), Vec::new()),
    };
    for key in KEYS {
        let name = env_name(key.name);
        if let Some(text) = env(&name).filter(|t| !t.trim().is_empty()) {
            values.set.insert(key.name, (text, Origin::Env(name)));
        }
    }
    for (key, text) in flags.values() {
        if let Some(text) = text {
            let origin = Origin::Flag(flag_name(key));
            values.set.insert(key, (text.to_string(), origin));
        }
    }
    values.build(source_tables, purpose)
}

/// Reads the file's scalar keys into values and returns its `[[sources]]` tables.
fn read_file(path: &Path) -> Result<(Values, Vec<toml::Table>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let mut values = Values::default();
    let mut sources = Vec::new();
    for (key, value) in table {
        if key == "sources" {
            sources = source_tables(path, value)?;
            continue;
        }
        let Some(known) = KEYS.iter().find(|k| k.name == key) else {
            let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key,
                known: names.join(", ") + ", [[sources]]",
            });
        };
        let text = scalar_text(&value).ok_or_else(|| ConfigError::Invalid {
            key: known.name,
            message: format!(
                "expected a string or a number, found {} (set in {})",
                value.type_str(),
                path.display()
            ),
        })?;
        values
            .set
            .insert(known.name, (text, Origin::File(path.to_path_buf())));
    }
    Ok((values, sources))
}

fn source_tables(path: &Path, value: toml::Value) -> Result<Vec<toml::Table>, ConfigError> {
    let toml::Value::Array(items) = value else {
        return Err(ConfigError::Parse {
            path: path.to_path_buf(),
            message: "`sources` must be an array of tables ([[sources]])".into(),
        });
    };
    let mut tables = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let toml::Value::Table(item) = item else {
            return Err(ConfigError::Source {
                index,
                key: "name",
                message: "each entry of `sources` must be a table ([[sources]])".into(),
            });
        };
        tables.push(item);
    }
    Ok(tables)
}

/// A TOML scalar (or an array of strings, joined with commas) as text.
pub(crate) fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}
