//! Why a configuration cannot be used.

use std::path::PathBuf;

use crate::keys::env_name;

/// A configuration that cannot be used; the message names the key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("config file {}: unknown key `{key}`; known keys: {known}", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("{key} ({}): {message}", env_name(key))]
    Invalid { key: &'static str, message: String },
    #[error("sources[{index}].{key}: {message}")]
    Source {
        index: usize,
        key: &'static str,
        message: String,
    },
    #[error("no write key is configured, so no client could send events; set write_keys (INMOMENT_WRITE_KEYS=key1,key2 or --write-keys) together with account_token, or add a [[sources]] table with name, write_key and account_token to the config file")]
    NoWriteKey,
    #[error("write key of source `{second}` is also the write key of source `{first}`; each write key must belong to one source")]
    DuplicateWriteKey { first: String, second: String },
    #[error("source name `{0}` is used twice; give each [[sources]] table its own name")]
    DuplicateSourceName(String),
    #[error("source: no source is named `{name}`; configured: {known}")]
    UnknownSource { name: String, known: String },
}
