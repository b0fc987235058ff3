#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as _, FromArgMatches as _};
use inmoment_testkit::TempDir;

use crate::layering::scalar_text;
use crate::*;

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

/// A file in a fresh directory, removed with it when the returned `TempDir` drops.
fn file(name: &str, text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("config");
    let path = dir.write(name, text);
    (dir, path)
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
    let (_dir, path) = file("example.toml", EXAMPLE);
    let config = Config::load(Some(&path), &no_env, &ConfigFlags::default()).unwrap();
    assert_eq!(config.sources.len(), 2);
    assert_eq!(config.sources[0].write_keys.len(), 2);
    let eu = config.source("eu-shop").unwrap();
    assert_eq!(eu.source.settings.account_token.as_str(), "NPS-EU-4aeb53c1");
    assert_eq!(
        eu.source.settings.response_event, "NPS Survey Answered",
        "an omitted setting falls back to the top-level one"
    );
    assert_eq!(config.delivery.rate_limit_per_minute, Some(600));
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

#[test]
fn email_surveys_are_off_by_default_and_set_per_source() {
    let config = Config::load(None, &no_env, &flags("k1", "NPS-4aeb53c1")).unwrap();
    assert!(!config.sources[0].source.settings.email_survey.enabled);

    let text = "survey_channel = \"email\"\nsurvey_events = \"Invoice Paid, Ticket Closed\"\n\
                survey_delay_days = 3\n\
                [[sources]]\nname = \"quiet\"\nwrite_key = \"wk-quiet\"\naccount_token = \"NPS-4aeb53c1\"\n\
                survey_channel = \"none\"\n\
                [[sources]]\nname = \"eu\"\nwrite_key = \"wk-eu\"\naccount_token = \"NPS-4aeb53c1\"\n\
                survey_events = \"Renewed\"\nsurvey_min_interval_days = \"7\"\n";
    let (_dir, path) = file("surveys.toml", text);
    let config = Config::load(Some(&path), &no_env, &flags("k1", "NPS-4aeb53c1")).unwrap();
    let survey = |name: &str| {
        config
            .source(name)
            .unwrap()
            .source
            .settings
            .email_survey
            .clone()
    };
    let default = survey("default");
    assert!(default.enabled);
    assert_eq!(default.events, ["Invoice Paid", "Ticket Closed"]);
    assert_eq!(
        (default.delay_days, default.min_interval_days),
        (Some(3), 30)
    );
    assert!(
        !survey("quiet").enabled,
        "a source turns the top-level channel off"
    );
    let eu = survey("eu");
    assert!(eu.enabled, "a source falls back to the top-level channel");
    assert_eq!(
        (eu.events.as_slice(), eu.min_interval_days),
        (&["Renewed".to_string()][..], 7)
    );

    let env = |name: &str| (name == "INMOMENT_SURVEY_DELAY_DAYS").then(|| "40".into());
    let err = Config::load(None, &env, &flags("k1", "NPS-4aeb53c1")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "survey_delay_days (INMOMENT_SURVEY_DELAY_DAYS): expected a whole number of days from 1 to 31, got `40` (set by INMOMENT_SURVEY_DELAY_DAYS)"
    );
}

// The tests below check that each key's one definition (keys.rs) reaches everything.

/// The only setting of the baseline: an account, so `send`'s configuration loads.
const BASE_TOKEN: &str = "NPS-ba5e0000";

fn base_env(name: &str) -> Option<String> {
    (name == "INMOMENT_ACCOUNT_TOKEN").then(|| BASE_TOKEN.to_string())
}

/// The example value of a key as the text of a variable or a flag.
fn example_text(key: &Key) -> String {
    let table: toml::Table = toml::from_str(&format!("v = {}", key.example)).unwrap();
    scalar_text(&table["v"]).unwrap()
}

fn parse_flags(args: &[&str]) -> ConfigFlags {
    let command = ConfigFlags::augment_args(clap::Command::new("serve"));
    let matches = command.try_get_matches_from(args).unwrap();
    ConfigFlags::from_arg_matches(&matches).unwrap()
}

#[test]
fn every_key_is_read_from_file_variable_and_flag_and_printed() {
    let baseline = Config::load_for_send(None, &base_env, &ConfigFlags::default()).unwrap();
    for key in KEYS {
        let name = key.name;
        let default = key.shown(&baseline);
        let text = example_text(key);

        let mut toml = format!("{name} = {}\n", key.example);
        if name != "account_token" {
            toml.push_str(&format!("account_token = \"{BASE_TOKEN}\"\n"));
        }
        let (_dir, path) = file(&format!("{name}.toml"), &toml);
        let from_file = Config::load_for_send(Some(&path), &no_env, &ConfigFlags::default())
            .unwrap_or_else(|e| panic!("{name} in a file: {e}"));
        let env = |var: &str| match var == key.env_name() {
            true => Some(text.clone()),
            false => base_env(var),
        };
        let from_env = Config::load_for_send(None, &env, &ConfigFlags::default())
            .unwrap_or_else(|e| panic!("{name} in {}: {e}", key.env_name()));
        let flag = key.flag_name();
        let flags = parse_flags(&["serve", &flag, &text]);
        let from_flag = Config::load_for_send(None, &base_env, &flags)
            .unwrap_or_else(|e| panic!("{name} as {flag}: {e}"));

        let shown = key.shown(&from_file);
        assert_ne!(
            shown, default,
            "{name}: the example is its default, or unread"
        );
        assert_eq!(key.shown(&from_env), shown, "{name} from the variable");
        assert_eq!(key.shown(&from_flag), shown, "{name} from the flag");

        let printed = from_file.redacted_toml();
        assert!(
            printed.contains(&format!("{name} = ")),
            "{name}:\n{printed}"
        );
        if key.secret {
            assert!(
                !printed.contains(text.as_str()),
                "{name} leaked:\n{printed}"
            );
        }
    }
}

#[test]
fn the_example_sets_every_key_to_something_else_than_its_default() {
    let table: toml::Table = toml::from_str(EXAMPLE).unwrap();
    let (_dir, path) = file("every-key.toml", EXAMPLE);
    let example = Config::load(Some(&path), &no_env, &ConfigFlags::default()).unwrap();
    let baseline = Config::load_for_send(None, &base_env, &ConfigFlags::default()).unwrap();
    for key in KEYS {
        assert!(table.contains_key(key.name), "{} not in EXAMPLE", key.name);
        let first = |config: &Config| key.shown(config).into_iter().next();
        assert_ne!(first(&example), first(&baseline), "{}", key.name);
    }
}

#[test]
fn every_bad_value_names_its_key_variable_and_flag() {
    for key in KEYS {
        let bad = match key.kind {
            Kind::Address => "nowhere",
            Kind::Path | Kind::NonEmpty => "",
            Kind::Bool => "no",
            Kind::Number { .. } => "lots",
            Kind::Url => "ftp://x",
            Kind::PostgresUrl => "mysql://x",
            Kind::Origins => "https://shop.example/checkout",
            Kind::Choice(_) => "xml",
            Kind::Duration => "soon",
            Kind::Text | Kind::List => continue,
        };
        let flag = key.flag_name();
        let flags = parse_flags(&["serve", &flag, bad]);
        let error = Config::load_for_send(None, &base_env, &flags)
            .unwrap_err()
            .to_string();
        let start = format!("{} ({}): ", key.name, key.env_name());
        assert!(error.starts_with(&start), "{error}");
        assert!(error.ends_with(&format!("(set by {flag})")), "{error}");
    }
}

#[test]
fn help_names_every_flag_with_its_default() {
    let command = ConfigFlags::augment_args(clap::Command::new("serve"));
    let args: Vec<&clap::Arg> = command.get_arguments().collect();
    assert_eq!(
        args.len(),
        KEYS.len(),
        "a flag that is no key, or a key without one"
    );
    for key in KEYS {
        let arg = args
            .iter()
            .find(|a| a.get_id() == key.name)
            .unwrap_or_else(|| panic!("no flag for {}", key.name));
        assert_eq!(
            arg.get_long().map(|l| format!("--{l}")),
            Some(key.flag_name())
        );
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        assert!(help.len() > 10, "{}: {help}", key.name);
        if let Some(default) = key.default {
            assert!(help.ends_with(&format!("[default: {default}]")), "{help}");
        }
    }
}

#[test]
fn the_readme_settings_table_has_every_key_and_its_default() {
    let readme = include_str!("../../../README.md");
    let settings = readme
        .split("\n## Settings\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    for key in KEYS {
        let name = format!("`{}`", key.name);
        let row = settings
            .lines()
            .find(|l| l.starts_with("| ") && l.contains(&name))
            .unwrap_or_else(|| panic!("README's Settings table has no row for {name}"));
        if let Some(default) = key.default {
            assert!(row.contains(&format!("`{default}`")), "{row}");
        }
    }
}
