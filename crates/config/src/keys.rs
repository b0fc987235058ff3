//! Every configuration key, each defined once in the `keys!` table below. From that one
//! entry come the key list, the variable `INMOMENT_<KEY>`, the flag `--<key>` with its
//! help and `[default: …]`, the default itself, the line of [`EXAMPLE`], what
//! `--print-config` shows and whether it is redacted (the flag's type is [`Secret`]).

use clap::Args;
use inmoment_core::settings::{DEFAULT_DECLINE_EVENT, DEFAULT_RESPONSE_EVENT};
use toml::Value;

use crate::duration::format_duration;
use crate::redaction::{int, list, millis, secs, text, Secret};
use crate::{AllowedOrigins, Config, SourceConfig};

/// One configuration key, as written in the table.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The TOML key; the variable and the flag follow from it.
    pub name: &'static str,
    /// One sentence for `--help` and the example file.
    pub help: &'static str,
    /// The value when no layer sets the key; `None` leaves it unset.
    pub default: Option<&'static str>,
    /// A TOML value for [`EXAMPLE`], different from the default (a test checks).
    pub example: &'static str,
    /// What values are accepted.
    pub kind: Kind,
    /// Shown as `<redacted>` by `--print-config` (the flag's type is [`Secret`]).
    pub secret: bool,
    /// Where `--print-config` reads the effective value.
    pub show: Show,
}

/// What values a key accepts; the checks in validation.rs follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An address and port to listen on.
    Address,
    /// A path, not empty.
    Path,
    /// Text, checked where it is used (account tokens and client ids by core).
    Text,
    /// Text that must not be empty when set (an empty signing key could be forged).
    NonEmpty,
    /// `true` or `false`.
    Bool,
    /// A whole number, at least `min`.
    Number { min: u64 },
    /// An `http://` or `https://` URL.
    Url,
    /// Comma-separated text, or a TOML array of strings.
    List,
    /// Browser origins, or `*` for any.
    Origins,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A whole number and a unit: `30s`, `15m`, `24h`, `7d`.
    Duration,
    /// A `postgres://` or `postgresql://` URL.
    PostgresUrl,
}

impl Kind {
    /// The least number accepted (0 for anything but a number).
    pub fn min(self) -> u64 {
        match self {
            Kind::Number { min } => min,
            _ => 0,
        }
    }
}

/// How `--print-config` finds a key's effective value.
#[derive(Debug, Clone, Copy)]
pub enum Show {
    /// A top-level value.
    Top(fn(&Config) -> Option<Value>),
    /// A value of each source, shown in its `[[sources]]` table.
    Source(fn(&SourceConfig) -> Option<Value>),
}

impl Key {
    /// The variable of this key.
    pub fn env_name(&self) -> String {
        env_name(self.name)
    }

    /// The flag of this key.
    pub fn flag_name(&self) -> String {
        flag_name(self.name)
    }

    /// The flag's help: the sentence (without its full stop, as clap shows doc comments)
    /// and the default.
    pub fn flag_help(&self) -> String {
        let help = self.help.trim().trim_end_matches('.');
        match self.default {
            Some(default) => format!("{help} [default: {default}]"),
            None => help.to_string(),
        }
    }
}

/// A flag's value as text; secrets are [`Secret`]s so `Debug` of the flags hides them.
trait FlagValue {
    const SECRET: bool;
    fn text(&self) -> &str;
}

impl FlagValue for String {
    const SECRET: bool = false;
    fn text(&self) -> &str {
        self
    }
}

impl FlagValue for Secret {
    const SECRET: bool = true;
    fn text(&self) -> &str {
        self.expose()
    }
}

/// Whether `name` is a top-level configuration key.
pub fn is_key(name: &str) -> bool {
    KEYS.iter().any(|k| k.name == name)
}

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    format!("INMOMENT_{}", key.to_ascii_uppercase())
}

/// The command-line flag of a key.
pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Expands the table: the `key` module (one [`Key`] const per key), [`KEYS`], [`EXAMPLE`],
/// [`AccountFlags`] and [`ConfigFlags`] with the list of their values. Generated together,
/// so a key cannot be in one and missing from another.
macro_rules! keys {
    (
        account { $(
            $(#[doc = $adoc:literal])+
            $aname:ident: $aty:ty {
                kind: $akind:expr,
                default: $adefault:expr,
                example: $aexample:literal,
                show: $ashow:expr $(,)?
            }
        )* }
        serve { $(
            $(#[doc = $sdoc:literal])+
            $sname:ident: $sty:ty {
                kind: $skind:expr,
                default: $sdefault:expr,
                example: $sexample:literal,
                show: $sshow:expr $(,)?
            }
        )* }
        sources_example: $sources:literal $(,)?
    ) => {
        /// Each key's definition by name, e.g. `key::max_event_bytes`.
        #[allow(non_upper_case_globals)]
        pub mod key {
            use super::*;
            $(
                $(#[doc = $adoc])+
                pub const $aname: Key = Key {
                    name: stringify!($aname),
                    help: concat!($($adoc),+),
                    default: $adefault,
                    example: $aexample,
                    kind: $akind,
                    secret: <$aty as FlagValue>::SECRET,
                    show: $ashow,
                };
            )*
            $(
                $(#[doc = $sdoc])+
                pub const $sname: Key = Key {
                    name: stringify!($sname),
                    help: concat!($($sdoc),+),
                    default: $sdefault,
                    example: $sexample,
                    kind: $skind,
                    secret: <$sty as FlagValue>::SECRET,
                    show: $sshow,
                };
            )*
        }

        /// Every top-level key; each has the variable `INMOMENT_<KEY>` and the flag `--<key>`.
        pub const KEYS: &[Key] = &[$(key::$aname,)* $(key::$sname,)*];

        /// An example configuration file with every key (a test parses it).
        pub const EXAMPLE: &str = concat!(
            "# Every key, each with a value other than its default.\n",
            $( $("#", $adoc, "\n",)+ stringify!($aname), " = ", $aexample, "\n", )*
            $( $("#", $sdoc, "\n",)+ stringify!($sname), " = ", $sexample, "\n", )*
            $sources,
        );

        /// The flags that say which InMoment account gets the calls and how they are
        /// sent: shared by `serve`, `send` and `map`, so each reaches the account `serve`
        /// would.
        #[derive(Debug, Clone, Default, Args)]
        pub struct AccountFlags {
            $(
                #[arg(long, help = key::$aname.flag_help())]
                pub $aname: Option<$aty>,
            )*
        }

        /// The flags of `serve` that override configuration keys (all optional).
        #[derive(Debug, Clone, Default, Args)]
        pub struct ConfigFlags {
            #[command(flatten)]
            pub account: AccountFlags,
            $(
                #[arg(long, help = key::$sname.flag_help())]
                pub $sname: Option<$sty>,
            )*
        }

        impl ConfigFlags {
            /// Each key and its flag's value, if given.
            pub(crate) fn values(&self) -> Vec<(&'static str, Option<&str>)> {
                vec![
                    $((stringify!($aname), self.account.$aname.as_ref().map(FlagValue::text)),)*
                    $((stringify!($sname), self.$sname.as_ref().map(FlagValue::text)),)*
                ]
            }
        }
    };
}

keys! {
    // Shared by `serve`, `send` and `map`.
    account {
        // The default source's InMoment account.
        /// InMoment Account Token of the default source (`NPS-…`).
        account_token: String {
            kind: Kind::Text,
            default: None,
            example: r#""NPS-4aeb53c1""#,
            show: Show::Source(|s| text(s.source.settings.account_token.as_str())),
        }
        /// InMoment API client id of the default source.
        client_id: String {
            kind: Kind::Text,
            default: None,
            example: r#""my-client-id""#,
            show: Show::Source(|s| s.source.settings.client_id.as_ref().and_then(|id| text(id.as_str()))),
        }
        /// InMoment API client secret of the default source (prefer the environment).
        client_secret: Secret {
            kind: Kind::Text,
            default: None,
            example: r#""my-client-secret""#,
            show: Show::Source(|s| s.client_secret.as_ref().and_then(|k| text(k.expose()))),
        }
        /// Track event name that records a survey response.
        response_event: String {
            kind: Kind::Text,
            default: Some(DEFAULT_RESPONSE_EVENT),
            example: r#""NPS Survey Answered""#,
            show: Show::Source(|s| text(&s.source.settings.response_event)),
        }
        /// Track event name that records a survey decline.
        decline_event: String {
            kind: Kind::Text,
            default: Some(DEFAULT_DECLINE_EVENT),
            example: r#""NPS Survey Dismissed""#,
            show: Show::Source(|s| text(&s.source.settings.decline_event)),
        }
        /// Make no call for a page repeating the user's previous URL: true or false.
        skip_repeated_pages: String {
            kind: Kind::Bool,
            default: Some("true"),
            example: "false",
            show: Show::Source(|s| Some(Value::Boolean(s.source.settings.skip_repeated_pages))),
        }
        /// `email`: survey a user by email when InMoment finds them eligible after a track
        /// event (events sent from servers have no browser to show a survey); `none`: off.
        survey_channel: String {
            kind: Kind::Choice(&["none", "email"]),
            default: Some("none"),
            example: r#""email""#,
            show: Show::Source(|s| text(if s.source.settings.email_survey.enabled { "email" } else { "none" })),
        }
        /// Comma-separated track event names that may lead to an email survey (exact
        /// names); unset: every eligible answer.
        survey_events: String {
            kind: Kind::List,
            default: None,
            example: r#""Invoice Paid,Ticket Closed""#,
            show: Show::Source(|s| list(s.source.settings.email_survey.events.iter().map(String::as_str))),
        }
        /// Days InMoment waits before sending an email survey (1-31); unset: its default.
        survey_delay_days: String {
            kind: Kind::Number { min: 1 },
            default: None,
            example: "3",
            show: Show::Source(|s| s.source.settings.email_survey.delay_days.and_then(int)),
        }
        /// Send email surveys at once (true or false); survey_delay_days is then ignored.
        survey_immediately: String {
            kind: Kind::Bool,
            default: Some("false"),
            example: "true",
            show: Show::Source(|s| Some(Value::Boolean(s.source.settings.email_survey.immediately))),
        }
        /// Subject of the survey email; unset: InMoment's.
        survey_subject: String {
            kind: Kind::Text,
            default: None,
            example: r#""How are we doing?""#,
            show: Show::Source(|s| s.source.settings.email_survey.subject.as_deref().and_then(text)),
        }
        /// First line of the survey email; unset: InMoment's.
        survey_intro: String {
            kind: Kind::Text,
            default: None,
            example: r#""Thanks for paying your invoice.""#,
            show: Show::Source(|s| s.source.settings.email_survey.intro.as_deref().and_then(text)),
        }
        /// A user is surveyed by email at most once in this many days (0: no limit beyond
        /// InMoment's own throttling).
        survey_min_interval_days: String {
            kind: Kind::Number { min: 0 },
            default: Some("30"),
            example: "90",
            show: Show::Source(|s| int(s.source.settings.email_survey.min_interval_days)),
        }
        // Delivery to InMoment.
        /// InMoment eligibility base URL override.
        eligibility_url: String {
            kind: Kind::Url,
            default: None,
            example: r#""https://eligibility.wootric.com""#,
            show: Show::Top(|c| c.eligibility_url.as_deref().and_then(text)),
        }
        /// InMoment API base URL override.
        api_url: String {
            kind: Kind::Url,
            default: None,
            example: r#""https://api.wootric.com""#,
            show: Show::Top(|c| c.api_url.as_deref().and_then(text)),
        }
        /// InMoment calls in flight at once (each user's calls still go one at a time);
        /// delivery to a distant InMoment waits on the round trip, so raise it there.
        delivery_concurrency: String {
            kind: Kind::Number { min: 1 },
            default: Some("8"),
            example: "32",
            show: Show::Top(|c| int(c.delivery.concurrency)),
        }
        /// First retry delay in ms.
        retry_base_ms: String {
            kind: Kind::Number { min: 1 },
            default: Some("1000"),
            example: "2000",
            show: Show::Top(|c| millis(c.delivery.retry_base)),
        }
        /// Longest retry delay in ms (at least retry_base_ms).
        retry_cap_ms: String {
            kind: Kind::Number { min: 1 },
            default: Some("300000"),
            example: "600000",
            show: Show::Top(|c| millis(c.delivery.retry_cap)),
        }
        /// At most this many InMoment calls per minute; unlimited when unset.
        rate_limit_per_minute: String {
            kind: Kind::Number { min: 1 },
            default: None,
            example: "600",
            show: Show::Top(|c| c.delivery.rate_limit_per_minute.and_then(int)),
        }
    }
    // `serve` only.
    serve {
        // HTTP.
        /// Address to listen on.
        listen: String {
            kind: Kind::Address,
            default: Some("127.0.0.1:8080"),
            example: r#""0.0.0.0:8080""#,
            show: Show::Top(|c| text(c.listen)),
        }
        /// Comma-separated Segment write keys of the default source.
        write_keys: Secret {
            kind: Kind::List,
            default: None,
            example: r#"["segment-write-key-1", "segment-write-key-2"]"#,
            show: Show::Source(|s| list(s.write_keys.iter().map(Secret::expose))),
        }
        /// Shared secret that signs `/v1/webhook` requests (`X-Signature`).
        webhook_secret: Secret {
            kind: Kind::NonEmpty,
            default: None,
            example: r#""shared-secret""#,
            show: Show::Top(|c| c.webhook_secret.as_ref().and_then(|k| text(k.expose()))),
        }
        /// Comma-separated origins of web pages that may send events from a browser
        /// (`https://shop.example`), or `*` for any.
        cors_allowed_origins: String {
            kind: Kind::Origins,
            default: Some("*"),
            example: r#"["https://www.example.com", "https://app.example.com"]"#,
            show: Show::Top(|c| match &c.cors_allowed_origins {
                AllowedOrigins::Any => list(["*"]),
                AllowedOrigins::List(origins) => list(origins.iter().map(String::as_str)),
            }),
        }
        /// Largest event in bytes.
        max_event_bytes: String {
            kind: Kind::Number { min: 1024 },
            default: Some("32768"),
            example: "65536",
            show: Show::Top(|c| int(c.max_event_bytes)),
        }
        /// Largest batch request in bytes (at least max_event_bytes).
        max_batch_bytes: String {
            kind: Kind::Number { min: 1024 },
            default: Some("532480"),
            example: "1048576",
            show: Show::Top(|c| int(c.max_batch_bytes)),
        }
        /// Most events in one batch or webhook array.
        max_batch_items: String {
            kind: Kind::Number { min: 1 },
            default: Some("5000"),
            example: "1000",
            show: Show::Top(|c| int(c.max_batch_items)),
        }
        /// Requests handed to the store at once; more get 503.
        max_concurrent_requests: String {
            kind: Kind::Number { min: 1 },
            default: Some("1024"),
            example: "256",
            show: Show::Top(|c| int(c.max_concurrent_requests)),
        }
        /// Longest wait for a body or the store, in ms.
        request_timeout_ms: String {
            kind: Kind::Number { min: 1 },
            default: Some("10000"),
            example: "5000",
            show: Show::Top(|c| millis(c.request_timeout)),
        }
        /// Open connections at most.
        max_connections: String {
            kind: Kind::Number { min: 1 },
            default: Some("4096"),
            example: "1024",
            show: Show::Top(|c| int(c.max_connections)),
        }
        /// Time for a whole request head, counted from when the connection opens or goes
        /// idle, in ms.
        header_read_timeout_ms: String {
            kind: Kind::Number { min: 1 },
            default: Some("10000"),
            example: "5000",
            show: Show::Top(|c| millis(c.header_read_timeout)),
        }
        /// How long shutdown waits for in-flight requests, in ms.
        shutdown_deadline_ms: String {
            kind: Kind::Number { min: 0 },
            default: Some("10000"),
            example: "30000",
            show: Show::Top(|c| millis(c.shutdown_deadline)),
        }
        // The store.
        /// Directory of the durable store.
        data_dir: String {
            kind: Kind::Path,
            default: Some("./data"),
            example: r#""/var/lib/inmoment-destination""#,
            show: Show::Top(|c| text(c.data_dir.display())),
        }
        /// A shared PostgreSQL journal (`postgres://user:password@host:5432/db`) for several
        /// `serve` nodes; unset, the embedded store in `data_dir`.
        store: Secret {
            kind: Kind::PostgresUrl,
            default: None,
            example: r#""postgres://inmoment:secret@db.internal:5432/inmoment""#,
            show: Show::Top(|c| c.store.as_ref().and_then(|k| text(k.expose()))),
        }
        /// Partitions delivery is split into on a shared store (fixed when it is created).
        partitions: String {
            kind: Kind::Number { min: 1 },
            default: Some("64"),
            example: "128",
            show: Show::Top(|c| int(c.partitions)),
        }
        /// On a shared store, a stopped node's users are taken over within this (`15s`).
        takeover_within: String {
            kind: Kind::Duration,
            default: Some("15s"),
            example: r#""30s""#,
            show: Show::Top(|c| text(format_duration(c.takeover_within))),
        }
        /// This node's name in a shared store's leases; unset, host name, process id and a
        /// random part.
        node_id: String {
            kind: Kind::Text,
            default: None,
            example: r#""node-a""#,
            show: Show::Top(|c| c.node_id.as_deref().and_then(text)),
        }
        /// De-duplication window of `messageId`s in seconds.
        dedup_window_secs: String {
            kind: Kind::Number { min: 0 },
            default: Some("86400"),
            example: "3600",
            show: Show::Top(|c| secs(c.dedup_window)),
        }
        /// Most `messageId`s remembered for de-duplication, oldest forgotten first.
        dedup_max_ids: String {
            kind: Kind::Number { min: 1 },
            default: Some("2000000"),
            example: "500000",
            show: Show::Top(|c| int(c.dedup_max_ids)),
        }
        /// How long delivered events are kept for `queue remap` (`30m`, `24h`, `7d`; `0s`
        /// keeps none, which saves a write per event).
        keep_delivered: String {
            kind: Kind::Duration,
            default: Some("24h"),
            example: r#""7d""#,
            show: Show::Top(|c| text(format_duration(c.keep_delivered))),
        }
        /// Events waiting for delivery above which ingest answers 503.
        max_pending_calls: String {
            kind: Kind::Number { min: 1 },
            default: Some("1000000"),
            example: "100000",
            show: Show::Top(|c| int(c.max_pending_calls)),
        }
        /// Store size in bytes above which ingest answers 503; unlimited when unset.
        store_max_bytes: String {
            kind: Kind::Number { min: 1 },
            default: None,
            example: "10737418240",
            show: Show::Top(|c| c.store_max_bytes.and_then(int)),
        }
        // Delivery.
        /// Give up after retrying this many seconds.
        retry_max_secs: String {
            kind: Kind::Number { min: 0 },
            default: Some("86400"),
            example: "172800",
            show: Show::Top(|c| secs(c.delivery.retry_max)),
        }
        // Logging.
        /// `text` or `json`.
        log_format: String {
            kind: Kind::Choice(&["text", "json"]),
            default: Some("text"),
            example: r#""json""#,
            show: Show::Top(|c| text(c.log_format.as_str())),
        }
    }
    sources_example: r#"
# Another write key with its own InMoment account; omitted settings fall back to the
# top-level ones.
[[sources]]
name = "eu-shop"
write_key = "segment-write-key-eu"
account_token = "NPS-EU-4aeb53c1"
client_id = "eu-client-id"
client_secret = "eu-client-secret"
"#,
}
