//! Sources: the default one (from `write_keys` and the top-level account keys) and each
//! `[[sources]]` table, whose omitted settings fall back to the top-level ones.

use std::collections::{BTreeMap, BTreeSet};

use inmoment_core::{AccountToken, ClientId, Settings, SettingsError};

use crate::keys::{key, Key};
use crate::layering::{Purpose, Values};
use crate::redaction::Secret;
use crate::survey::email_survey;
use crate::{Config, ConfigError};

/// The name of the source that `write_keys` map to.
pub const DEFAULT_SOURCE_NAME: &str = "default";

/// The keys of a `[[sources]]` table besides `name` and `write_key`; each is also a
/// top-level key, its fallback.
const SOURCE_KEYS: [Key; 12] = [
    key::account_token,
    key::client_id,
    key::client_secret,
    key::response_event,
    key::decline_event,
    key::survey_channel,
    key::survey_events,
    key::survey_delay_days,
    key::survey_immediately,
    key::survey_subject,
    key::survey_intro,
    key::survey_min_interval_days,
];

/// One configured source: a write key's label (safe to log; the key itself never is) and
/// the InMoment account its events go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub settings: Settings,
}

/// One source: its write keys and the InMoment account (and OAuth secret) its events go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub source: Source,
    pub write_keys: Vec<Secret>,
    /// The InMoment API client secret for `source.settings.client_id`.
    pub client_secret: Option<Secret>,
}

impl Config {
    /// The source called `name`, when configured.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.source.name == name)
    }

    /// The source called `name`, or the first source when `None`.
    pub fn pick_source(&self, name: Option<&str>) -> Result<&SourceConfig, ConfigError> {
        let found = match name {
            Some(name) => self.source(name),
            None => self.sources.first(),
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self
                .sources
                .iter()
                .map(|s| s.source.name.as_str())
                .collect();
            ConfigError::UnknownSource {
                name: name.unwrap_or_default().to_string(),
                known: known.join(", "),
            }
        })
    }
}

impl Values {
    /// The default source (from `write_keys`, or for `send` the top-level account when
    /// nothing else is configured) and every `[[sources]]` table.
    pub(crate) fn sources(
        &self,
        tables: Vec<toml::Table>,
        purpose: Purpose,
    ) -> Result<Vec<SourceConfig>, ConfigError> {
        let write_keys: Vec<Secret> = self
            .list(&key::write_keys)
            .into_iter()
            .map(Secret::new)
            .collect();
        let mut sources = Vec::new();
        let account_only = purpose == Purpose::Send && tables.is_empty();
        if !write_keys.is_empty() || account_only {
            let settings = self.default_settings(purpose)?;
            sources.push(SourceConfig {
                source: Source {
                    name: DEFAULT_SOURCE_NAME.to_string(),
                    settings,
                },
                write_keys,
                client_secret: self.text(&key::client_secret).map(Secret::new),
            });
        }
        for (index, table) in tables.into_iter().enumerate() {
            sources.push(self.table_source(index, table)?);
        }
        if sources.is_empty() {
            return Err(ConfigError::NoWriteKey);
        }
        check_unique(&sources)?;
        Ok(sources)
    }

    /// Settings of the default source; `account_token` is required once a write key is set.
    fn default_settings(&self, purpose: Purpose) -> Result<Settings, ConfigError> {
        let token_key = &key::account_token;
        let token = AccountToken::parse(self.text(token_key).unwrap_or_default()).map_err(|e| {
            self.invalid(
                token_key,
                match e {
                    SettingsError::MissingAccountToken if purpose == Purpose::Send => "missing; set the InMoment Account Token the events go to (e.g. `NPS-4aeb53c1`, from Settings > Installation)".to_string(),
                    SettingsError::MissingAccountToken => "missing; write_keys are set, so their InMoment Account Token is needed (e.g. `NPS-4aeb53c1`, from Settings > Installation)".to_string(),
                    other => without_key_prefix(&other),
                },
            )
        })?;
        let mut settings = Settings::new(token);
        if let Some(id) = self.text(&key::client_id) {
            let id = ClientId::parse(id)
                .map_err(|e| self.invalid(&key::client_id, without_key_prefix(&e)))?;
            settings.client_id = Some(id);
        }
        for (key, slot) in [
            (&key::response_event, &mut settings.response_event),
            (&key::decline_event, &mut settings.decline_event),
        ] {
            if let Some(name) = self.text(key) {
                if name.is_empty() {
                    return Err(self.invalid(key, "must not be empty"));
                }
                *slot = name.to_string();
            }
        }
        settings.skip_repeated_pages = self.boolean(&key::skip_repeated_pages)?;
        settings.email_survey = email_survey(
            |key| self.text(key),
            |key, message| self.invalid(key, message),
        )?;
        Ok(settings)
    }

    /// One `[[sources]]` table; its omitted settings fall back to the top-level ones.
    fn table_source(&self, index: usize, table: toml::Table) -> Result<SourceConfig, ConfigError> {
        let err = |key: &'static str, message: String| ConfigError::Source {
            index,
            key,
            message,
        };
        let mut text = BTreeMap::new();
        let names = ["name", "write_key"]
            .into_iter()
            .chain(SOURCE_KEYS.iter().map(|k| k.name));
        let names: Vec<&'static str> = names.collect();
        for (key, value) in &table {
            let Some(known) = names.iter().copied().find(|k| k == key) else {
                return Err(err(
                    "name",
                    format!("unknown key `{key}`; known keys: {}", names.join(", ")),
                ));
            };
            let Some(value) = value.as_str() else {
                return Err(err(
                    known,
                    format!("expected a string, found {}", value.type_str()),
                ));
            };
            text.insert(known, value.trim().to_string());
        }
        let get = |key: &Key| {
            text.get(key.name)
                .map(String::as_str)
                .or_else(|| self.text(key))
                .filter(|t| !t.is_empty())
        };
        let required = |name: &'static str, why: &str| {
            text.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| err(name, format!("missing; {why}")))
        };
        let name = required("name", "give the source a name for logs and metrics")?;
        let write_key = required("write_key", "the Segment write key its clients send")?;
        let token = AccountToken::parse(get(&key::account_token).unwrap_or_default())
            .map_err(|e| err("account_token", without_key_prefix(&e)))?;
        let mut settings = Settings::new(token);
        settings.client_id = get(&key::client_id)
            .map(ClientId::parse)
            .transpose()
            .map_err(|e| err("client_id", without_key_prefix(&e)))?;
        if let Some(name) = get(&key::response_event) {
            settings.response_event = name.to_string();
        }
        if let Some(name) = get(&key::decline_event) {
            settings.decline_event = name.to_string();
        }
        settings.skip_repeated_pages = self.boolean(&key::skip_repeated_pages)?;
        settings.email_survey = email_survey(
            |key| match text.get(key.name) {
                Some(value) => Some(value.as_str()).filter(|v| !v.is_empty()),
                None => self.text(key),
            },
            |key, message| err(key.name, message),
        )?;
        Ok(SourceConfig {
            source: Source { name, settings },
            write_keys: vec![Secret::new(write_key)],
            client_secret: get(&key::client_secret).map(Secret::new),
        })
    }
}

/// Core's settings errors start with the key (`account_token: …`); ours add the variable.
fn without_key_prefix(error: &SettingsError) -> String {
    let text = error.to_string();
    match text.split_once(": ") {
        Some((_, rest)) => rest.to_string(),
        None => text,
    }
}

fn check_unique(sources: &[SourceConfig]) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for source in sources {
        let name = source.source.name.as_str();
        if !names.insert(name) {
            return Err(ConfigError::DuplicateSourceName(name.to_string()));
        }
        for key in &source.write_keys {
            if let Some(first) = owners.insert(key.expose(), name) {
                return Err(ConfigError::DuplicateWriteKey {
                    first: first.to_string(),
                    second: name.to_string(),
                });
            }
        }
    }
    Ok(())
}
