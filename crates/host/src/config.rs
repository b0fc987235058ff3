//! Configuration of `serve`: one typed [`Config`], read once at start-up and passed down.
//!
//! Every key can come from the TOML file (`--config`), an environment variable
//! (`INMOMENT_<KEY>`) or a flag (`--<key>`); a flag wins over the environment, which wins
//! over the file. A bad value stops start-up before anything listens, with a message that
//! names the key and where the value came from. Secrets (`client_secret`,
//! `webhook_secret`, write keys) are [`Secret`]s: their `Debug` and the `--print-config`
//! output never show them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use inmoment_core::{AccountToken, ClientId, Settings, SettingsError};

use crate::accept::Source;

/// The name of the source that `write_keys` map to.
pub const DEFAULT_SOURCE_NAME: &str = "default";

/// An example configuration file with every key (a test parses it).
pub const EXAMPLE: &str = r#"
listen = "127.0.0.1:8080"
data_dir = "./data"
# The default account; every key of `write_keys` sends its events there.
account_token = "NPS-4aeb53c1"
client_id = "my-client-id"
client_secret = "my-client-secret"
response_event = "Survey Response Submitted"
decline_event = "Survey Declined"
skip_repeated_pages = true
write_keys = ["segment-write-key-1", "segment-write-key-2"]
webhook_secret = "shared-secret"
# Web pages that may send events from a browser (analytics.js); "*" allows any origin.
cors_allowed_origins = ["https://www.example.com", "https://app.example.com"]
max_event_bytes = 32768
max_batch_bytes = 532480
max_batch_items = 5000
dedup_window_secs = 86400
dedup_max_ids = 2000000
max_pending_calls = 1000000
store_max_bytes = 10737418240
max_concurrent_requests = 1024
request_timeout_ms = 10000
max_connections = 4096
header_read_timeout_ms = 10000
shutdown_deadline_ms = 10000
log_format = "text"
eligibility_url = "https://eligibility.wootric.com"
api_url = "https://api.wootric.com"
delivery_concurrency = 8
retry_base_ms = 1000
retry_cap_ms = 300000
retry_max_secs = 86400
rate_limit_per_minute = 600

# Another write key with its own InMoment account; omitted settings fall back to the
# top-level ones.
[[sources]]
name = "eu-shop"
write_key = "segment-write-key-eu"
account_token = "NPS-EU-4aeb53c1"
client_id = "eu-client-id"
client_secret = "eu-client-secret"
"#;

/// Every top-level scalar key; each has the variable `INMOMENT_<KEY>` and the flag `--<key>`.
const KEYS: [&str; 31] = [
    "listen",
    "data_dir",
    "account_token",
    "client_id",
    "client_secret",
    "response_event",
    "decline_event",
    "skip_repeated_pages",
    "write_keys",
    "webhook_secret",
    "cors_allowed_origins",
    "max_event_bytes",
    "max_batch_bytes",
    "max_batch_items",
    "dedup_window_secs",
    "dedup_max_ids",
    "max_pending_calls",
    "store_max_bytes",
    "max_concurrent_requests",
    "request_timeout_ms",
    "max_connections",
    "header_read_timeout_ms",
    "shutdown_deadline_ms",
    "log_format",
    "eligibility_url",
    "api_url",
    "delivery_concurrency",
    "retry_base_ms",
    "retry_cap_ms",
    "retry_max_secs",
    "rate_limit_per_minute",
];

/// The keys of a `[[sources]]` table.
const SOURCE_KEYS: [&str; 7] = [
    "name",
    "write_key",
    "account_token",
    "client_id",
    "client_secret",
    "response_event",
    "decline_event",
];

/// Whether `name` is a top-level configuration key.
pub fn is_key(name: &str) -> bool {
    KEYS.contains(&name)
}

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    format!("INMOMENT_{}", key.to_ascii_uppercase())
}

/// The command-line flag of a key.
pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Which web pages' origins may send events from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (`*`).
    Any,
    /// Exactly these origins, lowercase, without a trailing `/`.
    List(Vec<String>),
}

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
        f.write_str("<redacted>")
    }
}

/// How logs are written: `text` for people, `json` for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// One source: its write keys and the InMoment account (and OAuth secret) its events go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub source: Source,
    pub write_keys: Vec<Secret>,
    /// The InMoment API client secret for `source.settings.client_id`.
    pub client_secret: Option<Secret>,
}

/// How stored calls are sent to InMoment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Calls in flight at once (`delivery_concurrency`, default 8).
    pub concurrency: usize,
    /// First retry delay (`retry_base_ms`, default 1000).
    pub retry_base: Duration,
    /// Longest delay between two attempts (`retry_cap_ms`, default 300000).
    pub retry_cap: Duration,
    /// Give up (dead-letter) after retrying this long (`retry_max_secs`, default 86400).
    pub retry_max: Duration,
    /// At most this many InMoment calls per minute (`rate_limit_per_minute`, default none).
    pub rate_limit_per_minute: Option<u32>,
}

/// The whole configuration of `serve`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on (`listen`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Where the durable store lives (`data_dir`, default `./data`).
    pub data_dir: PathBuf,
    /// Every source, at least one; write keys are unique across them.
    pub sources: Vec<SourceConfig>,
    /// When set, `/v1/webhook` requires a valid `X-Signature` (`webhook_secret`).
    pub webhook_secret: Option<Secret>,
    /// Web pages allowed to send events from a browser (`cors_allowed_origins`, default
    /// any: write keys are public in web pages anyway, so the origin protects nothing).
    pub cors_allowed_origins: AllowedOrigins,
    /// Largest event, decoded (`max_event_bytes`, default 32768 as Segment's 32 KB).
    pub max_event_bytes: usize,
    /// Largest batch request, decoded (`max_batch_bytes`, default 532480: the `analytics`
    /// crate fills 524,288 bytes of events plus the envelope).
    pub max_batch_bytes: usize,
    /// Most events in one batch or webhook array (`max_batch_items`, default 5000: above
    /// Segment's Actions webhook batches of at most 4000); more is refused with 413.
    pub max_batch_items: usize,
    /// A repeated `messageId` within this window is not stored twice (`dedup_window_secs`).
    pub dedup_window: Duration,
    /// At most this many `messageId`s are remembered, ~20 bytes each (`dedup_max_ids`).
    pub dedup_max_ids: usize,
    /// Above this many undelivered calls ingest answers 503 (`max_pending_calls`).
    pub max_pending_calls: u64,
    /// Above this store size ingest answers 503 (`store_max_bytes`, default none).
    pub store_max_bytes: Option<u64>,
    /// Requests handed to the store at once; more are shed with 503
    /// (`max_concurrent_requests`, default 1024).
    pub max_concurrent_requests: usize,
    /// Longest wait for a body or for the store (`request_timeout_ms`, default 10000).
    pub request_timeout: Duration,
    /// Open connections at most; further ones wait in the kernel's backlog until one
    /// closes (`max_connections`, default 4096).
    pub max_connections: usize,
    /// A connection must deliver a whole request head within this from when it opens or
    /// its previous answer was sent (`header_read_timeout_ms`, default 10000): a slow
    /// client cannot hold a connection, and an idle kept-alive one is closed after it.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests (`shutdown_deadline_ms`).
    pub shutdown_deadline: Duration,
    /// `log_format`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// Override of the InMoment eligibility base URL (`eligibility_url`).
    pub eligibility_url: Option<String>,
    /// Override of the InMoment API base URL (`api_url`).
    pub api_url: Option<String>,
    pub delivery: DeliveryConfig,
}

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

/// The flags of `serve` that override configuration keys (all optional). Secret flags
/// are [`Secret`]s so that `Debug` of the parsed command line shows none of them.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    #[command(flatten)]
    pub account: AccountFlags,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// Directory of the durable store [default: ./data].
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Comma-separated Segment write keys of the default source.
    #[arg(long)]
    pub write_keys: Option<Secret>,
    /// Shared secret that signs `/v1/webhook` requests (`X-Signature`).
    #[arg(long)]
    pub webhook_secret: Option<Secret>,
    /// Comma-separated origins of web pages that may send events (`https://shop.example`),
    /// or `*` for any [default: *].
    #[arg(long)]
    pub cors_allowed_origins: Option<String>,
    /// Largest event in bytes [default: 32768].
    #[arg(long)]
    pub max_event_bytes: Option<String>,
    /// Largest batch request in bytes [default: 532480].
    #[arg(long)]
    pub max_batch_bytes: Option<String>,
    /// Most events in one batch or webhook array [default: 5000].
    #[arg(long)]
    pub max_batch_items: Option<String>,
    /// De-duplication window of `messageId`s in seconds [default: 86400].
    #[arg(long)]
    pub dedup_window_secs: Option<String>,
    /// Most `messageId`s remembered for de-duplication, oldest forgotten first [default: 2000000].
    #[arg(long)]
    pub dedup_max_ids: Option<String>,
    /// Undelivered calls above which ingest answers 503 [default: 1000000].
    #[arg(long)]
    pub max_pending_calls: Option<String>,
    /// Store size in bytes above which ingest answers 503 [default: unlimited].
    #[arg(long)]
    pub store_max_bytes: Option<String>,
    /// Requests handed to the store at once; more get 503 [default: 1024].
    #[arg(long)]
    pub max_concurrent_requests: Option<String>,
    /// Longest wait for a body or the store, in ms [default: 10000].
    #[arg(long)]
    pub request_timeout_ms: Option<String>,
    /// Open connections at most [default: 4096].
    #[arg(long)]
    pub max_connections: Option<String>,
    /// Time for a whole request head, counted from when the connection opens or goes
    /// idle, in ms [default: 10000].
    #[arg(long)]
    pub header_read_timeout_ms: Option<String>,
    /// How long shutdown waits for in-flight requests, in ms [default: 10000].
    #[arg(long)]
    pub shutdown_deadline_ms: Option<String>,
    /// `text` or `json` [default: text].
    #[arg(long)]
    pub log_format: Option<String>,
    /// Give up after retrying this many seconds [default: 86400].
    #[arg(long)]
    pub retry_max_secs: Option<String>,
}

/// The flags that say which InMoment account gets the calls and how they are sent:
/// shared by `serve` and `send`, so a backfill reaches exactly the account `serve` would.
#[derive(Debug, Clone, Default, Args)]
pub struct AccountFlags {
    /// InMoment Account Token of the default source (`NPS-…`).
    #[arg(long)]
    pub account_token: Option<String>,
    /// InMoment API client id of the default source.
    #[arg(long)]
    pub client_id: Option<String>,
    /// InMoment API client secret of the default source (prefer the environment).
    #[arg(long)]
    pub client_secret: Option<Secret>,
    /// Track event name that records a survey response.
    #[arg(long)]
    pub response_event: Option<String>,
    /// Track event name that records a survey decline.
    #[arg(long)]
    pub decline_event: Option<String>,
    /// Make no call for a page repeating the user's previous URL: true or false [default: true].
    #[arg(long)]
    pub skip_repeated_pages: Option<String>,
    /// InMoment eligibility base URL override.
    #[arg(long)]
    pub eligibility_url: Option<String>,
    /// InMoment API base URL override.
    #[arg(long)]
    pub api_url: Option<String>,
    /// InMoment calls in flight at once [default: 8].
    #[arg(long)]
    pub delivery_concurrency: Option<String>,
    /// First retry delay in ms [default: 1000].
    #[arg(long)]
    pub retry_base_ms: Option<String>,
    /// Longest retry delay in ms [default: 300000].
    #[arg(long)]
    pub retry_cap_ms: Option<String>,
    /// At most this many InMoment calls per minute [default: unlimited].
    #[arg(long)]
    pub rate_limit_per_minute: Option<String>,
}

impl ConfigFlags {
    fn get(&self, key: &str) -> Option<&str> {
        let secret = match key {
            "client_secret" => Some(&self.account.client_secret),
            "write_keys" => Some(&self.write_keys),
            "webhook_secret" => Some(&self.webhook_secret),
            _ => None,
        };
        if let Some(secret) = secret {
            return secret.as_ref().map(Secret::expose);
        }
        let value = match key {
            "listen" => &self.listen,
            "data_dir" => &self.data_dir,
            "account_token" => &self.account.account_token,
            "client_id" => &self.account.client_id,
            "response_event" => &self.account.response_event,
            "decline_event" => &self.account.decline_event,
            "skip_repeated_pages" => &self.account.skip_repeated_pages,
            "cors_allowed_origins" => &self.cors_allowed_origins,
            "max_event_bytes" => &self.max_event_bytes,
            "max_batch_bytes" => &self.max_batch_bytes,
            "max_batch_items" => &self.max_batch_items,
            "max_connections" => &self.max_connections,
            "header_read_timeout_ms" => &self.header_read_timeout_ms,
            "dedup_window_secs" => &self.dedup_window_secs,
            "dedup_max_ids" => &self.dedup_max_ids,
            "max_pending_calls" => &self.max_pending_calls,
            "store_max_bytes" => &self.store_max_bytes,
            "max_concurrent_requests" => &self.max_concurrent_requests,
            "request_timeout_ms" => &self.request_timeout_ms,
            "shutdown_deadline_ms" => &self.shutdown_deadline_ms,
            "log_format" => &self.log_format,
            "eligibility_url" => &self.account.eligibility_url,
            "api_url" => &self.account.api_url,
            "delivery_concurrency" => &self.account.delivery_concurrency,
            "retry_base_ms" => &self.account.retry_base_ms,
            "retry_cap_ms" => &self.account.retry_cap_ms,
            "retry_max_secs" => &self.retry_max_secs,
            "rate_limit_per_minute" => &self.account.rate_limit_per_minute,
            _ => &None,
        };
        value.as_deref()
    }
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
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
enum Purpose {
    Serve,
    Send,
}

/// The winning text of each key, with its origin.
struct Layers {
    values: BTreeMap<&'static str, (String, Origin)>,
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
        Config::load_as(Purpose::Serve, file, env, flags)
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
        Config::load_as(Purpose::Send, file, env, flags)
    }

    fn load_as(
        purpose: Purpose,
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &ConfigFlags,
    ) -> Result<Config, ConfigError> {
        let (mut layers, source_tables) = match file {
            Some(path) => read_file(path)?,
            None => (Layers::empty(), Vec::new()),
        };
        for key in KEYS {
            let name = env_name(key);
            if let Some(text) = env(&name).filter(|t| !t.trim().is_empty()) {
                layers.values.insert(key, (text, Origin::Env(name)));
            }
            if let Some(text) = flags.get(key) {
                layers
                    .values
                    .insert(key, (text.to_string(), Origin::Flag(flag_name(key))));
            }
        }
        layers.build(source_tables, purpose)
    }

    /// The source that `write_keys` map to, when configured.
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

    /// The effective configuration as TOML, with every secret replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        let mut table = toml::Table::new();
        let mut put = |key: &str, value: toml::Value| {
            table.insert(key.to_string(), value);
        };
        let text = |s: &str| toml::Value::String(s.to_string());
        let int = |n: u64| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let redacted = || text("<redacted>");
        put("listen", text(&self.listen.to_string()));
        put("data_dir", text(&self.data_dir.display().to_string()));
        if self.webhook_secret.is_some() {
            put("webhook_secret", redacted());
        }
        let origins = match &self.cors_allowed_origins {
            AllowedOrigins::Any => vec![text("*")],
            AllowedOrigins::List(list) => list.iter().map(|o| text(o)).collect(),
        };
        put("cors_allowed_origins", toml::Value::Array(origins));
        put("max_event_bytes", int(self.max_event_bytes as u64));
        put("max_batch_bytes", int(self.max_batch_bytes as u64));
        put("max_batch_items", int(self.max_batch_items as u64));
        put("dedup_window_secs", int(self.dedup_window.as_secs()));
        put("dedup_max_ids", int(self.dedup_max_ids as u64));
        put("max_pending_calls", int(self.max_pending_calls));
        if let Some(bytes) = self.store_max_bytes {
            put("store_max_bytes", int(bytes));
        }
        put(
            "max_concurrent_requests",
            int(self.max_concurrent_requests as u64),
        );
        put("request_timeout_ms", int(millis(self.request_timeout)));
        put("max_connections", int(self.max_connections as u64));
        put(
            "header_read_timeout_ms",
            int(millis(self.header_read_timeout)),
        );
        put("shutdown_deadline_ms", int(millis(self.shutdown_deadline)));
        put("log_format", text(self.log_format.as_str()));
        if let Some(url) = &self.eligibility_url {
            put("eligibility_url", text(url));
        }
        if let Some(url) = &self.api_url {
            put("api_url", text(url));
        }
        let delivery = &self.delivery;
        put("delivery_concurrency", int(delivery.concurrency as u64));
        put("retry_base_ms", int(millis(delivery.retry_base)));
        put("retry_cap_ms", int(millis(delivery.retry_cap)));
        put("retry_max_secs", int(delivery.retry_max.as_secs()));
        if let Some(rate) = delivery.rate_limit_per_minute {
            put("rate_limit_per_minute", int(u64::from(rate)));
        }
        let sources = self.sources.iter().map(|s| {
            let settings = &s.source.settings;
            let mut t = toml::Table::new();
            t.insert("name".into(), text(&s.source.name));
            let keys = s.write_keys.iter().map(|_| redacted()).collect();
            t.insert("write_keys".into(), toml::Value::Array(keys));
            t.insert(
                "account_token".into(),
                text(settings.account_token.as_str()),
            );
            if let Some(id) = &settings.client_id {
                t.insert("client_id".into(), text(id.as_str()));
            }
            if s.client_secret.is_some() {
                t.insert("client_secret".into(), redacted());
            }
            t.insert("response_event".into(), text(&settings.response_event));
            t.insert("decline_event".into(), text(&settings.decline_event));
            t.insert(
                "skip_repeated_pages".into(),
                toml::Value::Boolean(settings.skip_repeated_pages),
            );
            toml::Value::Table(t)
        });
        put("sources", toml::Value::Array(sources.collect()));
        toml::to_string(&table).unwrap_or_default()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Reads the file's scalar keys into layers and returns its `[[sources]]` tables.
fn read_file(path: &Path) -> Result<(Layers, Vec<toml::Table>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let mut layers = Layers::empty();
    let mut sources = Vec::new();
    for (key, value) in table {
        if key == "sources" {
            let toml::Value::Array(items) = value else {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: "`sources` must be an array of tables ([[sources]])".into(),
                });
            };
            for (index, item) in items.into_iter().enumerate() {
                let toml::Value::Table(item) = item else {
                    return Err(ConfigError::Source {
                        index,
                        key: "name",
                        message: "each entry of `sources` must be a table ([[sources]])".into(),
                    });
                };
                sources.push(item);
            }
            continue;
        }
        let Some(known) = KEYS.iter().copied().find(|k| *k == key) else {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key,
                known: KEYS.join(", ") + ", [[sources]]",
            });
        };
        let text = scalar_text(&value).ok_or_else(|| ConfigError::Invalid {
            key: known,
            message: format!(
                "expected a string or a number, found {} (set in {})",
                value.type_str(),
                path.display()
            ),
        })?;
        layers
            .values
            .insert(known, (text, Origin::File(path.to_path_buf())));
    }
    Ok((layers, sources))
}

/// A TOML scalar (or an array of strings, joined with commas) as text.
fn scalar_text(value: &toml::Value) -> Option<String> {
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

impl Layers {
    fn empty() -> Layers {
        Layers {
            values: BTreeMap::new(),
        }
    }

    fn text(&self, key: &'static str) -> Option<&str> {
        self.values.get(key).map(|(text, _)| text.trim())
    }

    fn invalid(&self, key: &'static str, message: impl fmt::Display) -> ConfigError {
        let message = match self.values.get(key) {
            Some((_, origin)) => format!("{message} ({origin})"),
            None => message.to_string(),
        };
        ConfigError::Invalid { key, message }
    }

    /// A whole number of at least `min`, or the default when unset.
    fn number(&self, key: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
        Ok(self.optional_number(key, min)?.unwrap_or(default))
    }

    fn optional_number(&self, key: &'static str, min: u64) -> Result<Option<u64>, ConfigError> {
        let Some(text) = self.text(key) else {
            return Ok(None);
        };
        let value: u64 = text
            .replace('_', "")
            .parse()
            .map_err(|_| self.invalid(key, format!("expected a whole number, got `{text}`")))?;
        if value < min {
            return Err(self.invalid(key, format!("must be at least {min}, got {value}")));
        }
        Ok(Some(value))
    }

    /// `true` or `false` (a TOML boolean arrives as that text), or the default when unset.
    fn boolean(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(self.invalid(key, format!("expected true or false, got `{other}`"))),
        }
    }

    fn usize(&self, key: &'static str, default: u64, min: u64) -> Result<usize, ConfigError> {
        let value = self.number(key, default, min)?;
        usize::try_from(value).map_err(|_| self.invalid(key, "too large"))
    }

    /// `*` (or nothing) for any origin, else a list of `scheme://host[:port]` origins as
    /// browsers send them in `Origin`.
    fn allowed_origins(&self) -> Result<AllowedOrigins, ConfigError> {
        let Some(text) = self.text("cors_allowed_origins") else {
            return Ok(AllowedOrigins::Any);
        };
        let items: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        if items.is_empty() || items == ["*"] {
            return Ok(AllowedOrigins::Any);
        }
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            let origin = item.trim_end_matches('/');
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = rest.is_some_and(|host| {
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
            });
            if !valid {
                return Err(self.invalid(
                    "cors_allowed_origins",
                    format!("`{item}` is not an origin; write `https://host` or `http://host:port` (no path), or `*` alone for any"),
                ));
            }
            list.push(origin.to_ascii_lowercase());
        }
        Ok(AllowedOrigins::List(list))
    }

    /// An empty secret would sign with an empty key: anyone could forge it.
    fn webhook_secret(&self) -> Result<Option<Secret>, ConfigError> {
        match self.values.get("webhook_secret") {
            None => Ok(None),
            Some((text, _)) if text.trim().is_empty() => Err(self.invalid(
                "webhook_secret",
                "must not be empty; set the secret shared with Segment, or remove the key",
            )),
            Some((text, _)) => Ok(Some(Secret::new(text.trim()))),
        }
    }

    fn url(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(key) else {
            return Ok(None);
        };
        if !(text.starts_with("http://") || text.starts_with("https://")) {
            return Err(self.invalid(
                key,
                format!("expected an http:// or https:// URL, got `{text}`"),
            ));
        }
        Ok(Some(text.trim_end_matches('/').to_string()))
    }

    fn build(
        self,
        source_tables: Vec<toml::Table>,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        let listen_text = self.text("listen").unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse().map_err(|_| {
            self.invalid(
                "listen",
                format!("expected an address and port like 127.0.0.1:8080, got `{listen_text}`"),
            )
        })?;
        let data_dir = PathBuf::from(self.text("data_dir").unwrap_or("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(self.invalid("data_dir", "must not be empty"));
        }
        let log_format = match self.text("log_format").unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(self.invalid(
                    "log_format",
                    format!("expected `text` or `json`, got `{other}`"),
                ))
            }
        };
        let max_event_bytes = self.usize("max_event_bytes", 32_768, 1024)?;
        let max_batch_bytes = self.usize("max_batch_bytes", 532_480, max_event_bytes as u64)?;
        let retry_base_ms = self.number("retry_base_ms", 1000, 1)?;
        let rate_limit = self.optional_number("rate_limit_per_minute", 1)?;
        let delivery = DeliveryConfig {
            concurrency: self.usize("delivery_concurrency", 8, 1)?,
            retry_base: Duration::from_millis(retry_base_ms),
            retry_cap: Duration::from_millis(self.number(
                "retry_cap_ms",
                300_000,
                retry_base_ms,
            )?),
            retry_max: Duration::from_secs(self.number("retry_max_secs", 86_400, 0)?),
            rate_limit_per_minute: rate_limit
                .map(|n| {
                    u32::try_from(n).map_err(|_| self.invalid("rate_limit_per_minute", "too large"))
                })
                .transpose()?,
        };
        let sources = self.sources(source_tables, purpose)?;
        Ok(Config {
            listen,
            data_dir,
            sources,
            webhook_secret: self.webhook_secret()?,
            cors_allowed_origins: self.allowed_origins()?,
            max_event_bytes,
            max_batch_bytes,
            max_batch_items: self.usize("max_batch_items", 5_000, 1)?,
            dedup_window: Duration::from_secs(self.number("dedup_window_secs", 86_400, 0)?),
            dedup_max_ids: self.usize("dedup_max_ids", 2_000_000, 1)?,
            max_pending_calls: self.number("max_pending_calls", 1_000_000, 1)?,
            store_max_bytes: self.optional_number("store_max_bytes", 1)?,
            max_concurrent_requests: self.usize("max_concurrent_requests", 1024, 1)?,
            request_timeout: Duration::from_millis(self.number("request_timeout_ms", 10_000, 1)?),
            max_connections: self.usize("max_connections", 4_096, 1)?,
            header_read_timeout: Duration::from_millis(self.number(
                "header_read_timeout_ms",
                10_000,
                1,
            )?),
            shutdown_deadline: Duration::from_millis(self.number(
                "shutdown_deadline_ms",
                10_000,
                0,
            )?),
            log_format,
            eligibility_url: self.url("eligibility_url")?,
            api_url: self.url("api_url")?,
            delivery,
        })
    }

    /// The default source (from `write_keys`, or for `send` the top-level account when
    /// nothing else is configured) and every `[[sources]]` table.
    fn sources(
        &self,
        tables: Vec<toml::Table>,
        purpose: Purpose,
    ) -> Result<Vec<SourceConfig>, ConfigError> {
        let write_keys: Vec<Secret> = self
            .text("write_keys")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
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
                client_secret: self.text("client_secret").map(Secret::new),
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
        let token = self.text("account_token").unwrap_or_default();
        let token = AccountToken::parse(token).map_err(|e| {
            self.invalid(
                "account_token",
                match e {
                    SettingsError::MissingAccountToken if purpose == Purpose::Send => "missing; set the InMoment Account Token the events go to (e.g. `NPS-4aeb53c1`, from Settings > Installation)".to_string(),
                    SettingsError::MissingAccountToken => "missing; write_keys are set, so their InMoment Account Token is needed (e.g. `NPS-4aeb53c1`, from Settings > Installation)".to_string(),
                    other => without_key_prefix(&other),
                },
            )
        })?;
        let mut settings = Settings::new(token);
        if let Some(id) = self.text("client_id") {
            let id = ClientId::parse(id)
                .map_err(|e| self.invalid("client_id", without_key_prefix(&e)))?;
            settings.client_id = Some(id);
        }
        for (key, slot) in [
            ("response_event", &mut settings.response_event),
            ("decline_event", &mut settings.decline_event),
        ] {
            if let Some(name) = self.text(key) {
                if name.is_empty() {
                    return Err(self.invalid(key, "must not be empty"));
                }
                *slot = name.to_string();
            }
        }
        settings.skip_repeated_pages = self.boolean("skip_repeated_pages", true)?;
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
        for (key, value) in &table {
            let Some(known) = SOURCE_KEYS.iter().copied().find(|k| k == key) else {
                return Err(err(
                    "name",
                    format!(
                        "unknown key `{key}`; known keys: {}",
                        SOURCE_KEYS.join(", ")
                    ),
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
        let get = |key: &'static str| {
            text.get(key)
                .map(String::as_str)
                .or_else(|| self.text(key))
                .filter(|t| !t.is_empty())
        };
        let name = text
            .get("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                err(
                    "name",
                    "missing; give the source a name for logs and metrics".into(),
                )
            })?
            .clone();
        let write_key = text
            .get("write_key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                err(
                    "write_key",
                    "missing; the Segment write key its clients send".into(),
                )
            })?;
        let token = AccountToken::parse(get("account_token").unwrap_or_default())
            .map_err(|e| err("account_token", without_key_prefix(&e)))?;
        let mut settings = Settings::new(token);
        settings.client_id = get("client_id")
            .map(ClientId::parse)
            .transpose()
            .map_err(|e| err("client_id", without_key_prefix(&e)))?;
        if let Some(name) = get("response_event") {
            settings.response_event = name.to_string();
        }
        if let Some(name) = get("decline_event") {
            settings.decline_event = name.to_string();
        }
        settings.skip_repeated_pages = self.boolean("skip_repeated_pages", true)?;
        Ok(SourceConfig {
            source: Source { name, settings },
            write_keys: vec![Secret::new(write_key.clone())],
            client_secret: get("client_secret").map(Secret::new),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn flags(write_keys: &str, token: &str) -> ConfigFlags {
        ConfigFlags {
            write_keys: Some(write_keys.into()),
            account: AccountFlags {
                account_token: Some(token.into()),
                ..AccountFlags::default()
            },
            ..ConfigFlags::default()
        }
    }

    #[test]
    fn defaults_apply_when_only_a_write_key_is_given() {
        let config = Config::load(None, &no_env, &flags("k1", "NPS-4aeb53c1")).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.max_event_bytes, 32_768);
        assert_eq!(config.max_batch_bytes, 532_480);
        assert_eq!(config.dedup_window, Duration::from_secs(86_400));
        assert_eq!(config.dedup_max_ids, 2_000_000);
        assert_eq!(config.max_concurrent_requests, 1024);
        assert_eq!(config.delivery.concurrency, 8);
        assert_eq!(config.delivery.rate_limit_per_minute, None);
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sources[0].source.name, DEFAULT_SOURCE_NAME);
    }

    #[test]
    fn the_example_parses_with_both_sources() {
        let dir = std::env::temp_dir().join(format!("inmoment-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("example.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let config = Config::load(Some(&path), &no_env, &ConfigFlags::default()).unwrap();
        assert_eq!(config.sources.len(), 2);
        assert_eq!(config.sources[0].write_keys.len(), 2);
        let eu = config.source("eu-shop").unwrap();
        assert_eq!(eu.source.settings.account_token.as_str(), "NPS-EU-4aeb53c1");
        assert_eq!(
            eu.source.settings.response_event,
            "Survey Response Submitted"
        );
        assert_eq!(config.delivery.rate_limit_per_minute, Some(600));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_print() {
        let mut f = flags("write-key-123", "NPS-4aeb53c1");
        f.account.client_secret = Some("client-secret-456".into());
        f.webhook_secret = Some("hook-secret-789".into());
        let config = Config::load(None, &no_env, &f).unwrap();
        let printed = format!("{config:?}\n{}\n{f:?}", config.redacted_toml());
        for secret in ["write-key-123", "client-secret-456", "hook-secret-789"] {
            assert!(!printed.contains(secret), "{secret} leaked:\n{printed}");
        }
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn send_needs_an_account_but_no_write_key() {
        let f = ConfigFlags {
            account: AccountFlags {
                account_token: Some("NPS-4aeb53c1".into()),
                ..AccountFlags::default()
            },
            ..ConfigFlags::default()
        };
        assert!(matches!(
            Config::load(None, &no_env, &f),
            Err(ConfigError::NoWriteKey)
        ));
        let config = Config::load_for_send(None, &no_env, &f).unwrap();
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sources[0].source.name, DEFAULT_SOURCE_NAME);
        assert!(config.sources[0].write_keys.is_empty());
        let err = Config::load_for_send(None, &no_env, &ConfigFlags::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("account_token (INMOMENT_ACCOUNT_TOKEN): missing;"),
            "{err}"
        );
    }

    #[test]
    fn bad_number_names_key_variable_and_origin() {
        let env = |name: &str| (name == "INMOMENT_MAX_EVENT_BYTES").then(|| "lots".to_string());
        let err = Config::load(None, &env, &flags("k", "NPS-4aeb53c1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "max_event_bytes (INMOMENT_MAX_EVENT_BYTES): expected a whole number, got `lots` (set by INMOMENT_MAX_EVENT_BYTES)"
        );
    }

    #[test]
    fn skip_repeated_pages_defaults_on_and_reaches_every_source() {
        let config = Config::load(None, &no_env, &flags("k1", "NPS-4aeb53c1")).unwrap();
        assert!(config.sources[0].source.settings.skip_repeated_pages);

        let env = |name: &str| (name == "INMOMENT_SKIP_REPEATED_PAGES").then(|| "false".into());
        let config = Config::load(None, &env, &flags("k1", "NPS-4aeb53c1")).unwrap();
        assert!(!config.sources[0].source.settings.skip_repeated_pages);
        assert!(config
            .redacted_toml()
            .contains("skip_repeated_pages = false"));

        let env = |name: &str| (name == "INMOMENT_SKIP_REPEATED_PAGES").then(|| "no".into());
        let err = Config::load(None, &env, &flags("k1", "NPS-4aeb53c1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "skip_repeated_pages (INMOMENT_SKIP_REPEATED_PAGES): expected true or false, got `no` (set by INMOMENT_SKIP_REPEATED_PAGES)"
        );
    }
}
