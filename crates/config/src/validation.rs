//! Validation: each key's text (from its winning layer, else its default) becomes a typed
//! value of [`Config`], checked as its [`Kind`] says; a bad value names the key and where
//! it was set.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::keys::{key, Key, Kind};
use crate::layering::{Purpose, Values};
use crate::redaction::Secret;
use crate::{AllowedOrigins, Config, ConfigError, DeliveryConfig, LogFormat};

impl Values {
    /// The key's text: the winning layer's, trimmed, else the key's default.
    pub(crate) fn text(&self, key: &Key) -> Option<&str> {
        match self.set.get(key.name) {
            Some((text, _)) => Some(text.trim()),
            None => key.default,
        }
    }

    pub(crate) fn invalid(&self, key: &Key, message: impl fmt::Display) -> ConfigError {
        let message = match self.set.get(key.name) {
            Some((_, origin)) => format!("{message} ({origin})"),
            None => message.to_string(),
        };
        ConfigError::Invalid {
            key: key.name,
            message,
        }
    }

    fn missing(&self, key: &Key) -> ConfigError {
        self.invalid(key, "missing")
    }

    /// A whole number of at least `min`, when set or defaulted.
    fn number_at_least(&self, key: &Key, min: u64) -> Result<Option<u64>, ConfigError> {
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

    fn optional_number(&self, key: &Key) -> Result<Option<u64>, ConfigError> {
        self.number_at_least(key, key.kind.min())
    }

    fn number(&self, key: &Key) -> Result<u64, ConfigError> {
        self.optional_number(key)?.ok_or_else(|| self.missing(key))
    }

    fn to_usize(&self, key: &Key, value: u64) -> Result<usize, ConfigError> {
        usize::try_from(value).map_err(|_| self.invalid(key, "too large"))
    }

    fn usize(&self, key: &Key) -> Result<usize, ConfigError> {
        self.to_usize(key, self.number(key)?)
    }

    fn millis(&self, key: &Key) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(key)?))
    }

    fn secs(&self, key: &Key) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.number(key)?))
    }

    /// A [`Kind::Duration`]: `30m`, `24h`, `7d`.
    fn duration(&self, key: &Key) -> Result<Duration, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.missing(key))?;
        crate::duration::parse_duration(text).ok_or_else(|| {
            self.invalid(
                key,
                format!("expected {}, got `{text}`", crate::duration::DURATION_HINT),
            )
        })
    }

    /// `true` or `false` (a TOML boolean arrives as that text).
    pub(crate) fn boolean(&self, key: &Key) -> Result<bool, ConfigError> {
        match self.text(key) {
            None => Err(self.missing(key)),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(self.invalid(key, format!("expected true or false, got `{other}`"))),
        }
    }

    /// One of the words of a [`Kind::Choice`].
    fn choice(&self, key: &Key) -> Result<&str, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.missing(key))?;
        let Kind::Choice(words) = key.kind else {
            return Ok(text);
        };
        if words.contains(&text) {
            return Ok(text);
        }
        let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
        Err(self.invalid(
            key,
            format!("expected {}, got `{text}`", quoted.join(" or ")),
        ))
    }

    fn address(&self, key: &Key) -> Result<SocketAddr, ConfigError> {
        let text = self.text(key).ok_or_else(|| self.missing(key))?;
        text.parse().map_err(|_| {
            self.invalid(
                key,
                format!("expected an address and port like 127.0.0.1:8080, got `{text}`"),
            )
        })
    }

    fn path(&self, key: &Key) -> Result<PathBuf, ConfigError> {
        match self.text(key) {
            None | Some("") => Err(self.invalid(key, "must not be empty")),
            Some(text) => Ok(PathBuf::from(text)),
        }
    }

    fn url(&self, key: &Key) -> Result<Option<String>, ConfigError> {
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

    /// A PostgreSQL URL (a secret: it may hold a password).
    fn postgres_url(&self, key: &Key) -> Result<Option<Secret>, ConfigError> {
        let Some(text) = self.text(key) else {
            return Ok(None);
        };
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(self.invalid(
                key,
                "expected a postgres:// URL (postgres://user:password@host:5432/database)",
            ));
        }
        Ok(Some(Secret::new(text)))
    }

    /// The items of a comma-separated list, empty ones dropped.
    pub(crate) fn list(&self, key: &Key) -> Vec<&str> {
        self.text(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// An empty secret would sign with an empty key: anyone could forge it.
    fn non_empty_secret(&self, key: &Key) -> Result<Option<Secret>, ConfigError> {
        match self.text(key) {
            None => Ok(None),
            Some("") => Err(self.invalid(
                key,
                "must not be empty; set the secret shared with Segment, or remove the key",
            )),
            Some(text) => Ok(Some(Secret::new(text))),
        }
    }

    /// `*` (or nothing) for any origin, else a list of `scheme://host[:port]` origins as
    /// browsers send them in `Origin`.
    fn origins(&self, key: &Key) -> Result<AllowedOrigins, ConfigError> {
        let items = self.list(key);
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
                    key,
                    format!("`{item}` is not an origin; write `https://host` or `http://host:port` (no path), or `*` alone for any"),
                ));
            }
            list.push(origin.to_ascii_lowercase());
        }
        Ok(AllowedOrigins::List(list))
    }

    /// The whole configuration, every key read once.
    pub(crate) fn build(
        self,
        source_tables: Vec<toml::Table>,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        let listen = self.address(&key::listen)?;
        let data_dir = self.path(&key::data_dir)?;
        let log_format = match self.choice(&key::log_format)? {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(self.invalid(&key::log_format, format!("`{other}` is not handled")))
            }
        };
        let max_event_bytes = self.usize(&key::max_event_bytes)?;
        let batch = &key::max_batch_bytes;
        let max_batch_bytes = self
            .number_at_least(batch, max_event_bytes as u64)?
            .ok_or_else(|| self.missing(batch))?;
        let retry_base_ms = self.number(&key::retry_base_ms)?;
        let cap = &key::retry_cap_ms;
        let retry_cap_ms = self
            .number_at_least(cap, retry_base_ms)?
            .ok_or_else(|| self.missing(cap))?;
        let rate = &key::rate_limit_per_minute;
        let delivery = DeliveryConfig {
            concurrency: self.usize(&key::delivery_concurrency)?,
            retry_base: Duration::from_millis(retry_base_ms),
            retry_cap: Duration::from_millis(retry_cap_ms),
            retry_max: self.secs(&key::retry_max_secs)?,
            rate_limit_per_minute: self
                .optional_number(rate)?
                .map(|n| u32::try_from(n).map_err(|_| self.invalid(rate, "too large")))
                .transpose()?,
        };
        let sources = self.sources(source_tables, purpose)?;
        Ok(Config {
            listen,
            data_dir,
            sources,
            webhook_secret: self.non_empty_secret(&key::webhook_secret)?,
            cors_allowed_origins: self.origins(&key::cors_allowed_origins)?,
            max_event_bytes,
            max_batch_bytes: self.to_usize(batch, max_batch_bytes)?,
            max_batch_items: self.usize(&key::max_batch_items)?,
            dedup_window: self.secs(&key::dedup_window_secs)?,
            dedup_max_ids: self.usize(&key::dedup_max_ids)?,
            keep_delivered: self.duration(&key::keep_delivered)?,
            store: self.postgres_url(&key::store)?,
            partitions: u32::try_from(self.number(&key::partitions)?)
                .map_err(|_| self.invalid(&key::partitions, "too large"))?,
            takeover_within: self.duration(&key::takeover_within)?,
            node_id: self
                .text(&key::node_id)
                .filter(|t| !t.is_empty())
                .map(String::from),
            max_pending_calls: self.number(&key::max_pending_calls)?,
            store_max_bytes: self.optional_number(&key::store_max_bytes)?,
            max_concurrent_requests: self.usize(&key::max_concurrent_requests)?,
            request_timeout: self.millis(&key::request_timeout_ms)?,
            max_connections: self.usize(&key::max_connections)?,
            header_read_timeout: self.millis(&key::header_read_timeout_ms)?,
            shutdown_deadline: self.millis(&key::shutdown_deadline_ms)?,
            log_format,
            eligibility_url: self.url(&key::eligibility_url)?,
            api_url: self.url(&key::api_url)?,
            delivery,
        })
    }
}
