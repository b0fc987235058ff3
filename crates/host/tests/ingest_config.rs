#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Configuration: file < environment < flag, and bad values stop start-up with a message
//! naming the key, before anything listens.

mod ingest_support;

use std::collections::HashMap;
use std::process::Command;

use clap::Parser as _;
use inmoment_host::cli::{Cli, Command as CliCommand};
use inmoment_host::config::{AccountFlags, Config, ConfigFlags};

use ingest_support::config_file;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

const FILE: &str = r#"
listen = "127.0.0.1:1001"
max_event_bytes = 20000
account_token = "NPS-4aeb53c1"
write_keys = "file-key"
"#;

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let dir = config_file(FILE);
    let path = dir.join("config.toml");
    let none = ConfigFlags::default();
    let file_only = Config::load(Some(&path), &env_of(&[]), &none).unwrap();
    assert_eq!(file_only.listen.port(), 1001);
    assert_eq!(file_only.max_event_bytes, 20_000);

    let env = env_of(&[
        ("INMOMENT_LISTEN", "127.0.0.1:1002"),
        ("INMOMENT_MAX_EVENT_BYTES", "30000"),
    ]);
    let with_env = Config::load(Some(&path), &env, &none).unwrap();
    assert_eq!(with_env.listen.port(), 1002);
    assert_eq!(with_env.max_event_bytes, 30_000);

    let cli = Cli::try_parse_from([
        "inmoment-destination",
        "serve",
        "--listen",
        "127.0.0.1:1003",
        "--write-keys",
        "flag-key-1, flag-key-2",
    ])
    .unwrap();
    let CliCommand::Serve(args) = cli.command else {
        panic!("not serve")
    };
    let with_flag = Config::load(Some(&path), &env, &args.flags).unwrap();
    assert_eq!(with_flag.listen.port(), 1003);
    assert_eq!(
        with_flag.max_event_bytes, 30_000,
        "the environment still wins over the file"
    );
    let keys: Vec<&str> = with_flag.sources[0]
        .write_keys
        .iter()
        .map(|k| k.expose())
        .collect();
    assert_eq!(keys, ["flag-key-1", "flag-key-2"]);
}

fn load_error(file: Option<&str>, env: &[(&str, &str)], flags: ConfigFlags) -> String {
    let dir = file.map(config_file);
    let path = dir.as_ref().map(|dir| dir.join("config.toml"));
    Config::load(path.as_deref(), &env_of(env), &flags)
        .unwrap_err()
        .to_string()
}

fn keyed() -> ConfigFlags {
    ConfigFlags {
        write_keys: Some("k".into()),
        account: AccountFlags {
            account_token: Some("NPS-4aeb53c1".into()),
            ..AccountFlags::default()
        },
        ..ConfigFlags::default()
    }
}

#[test]
fn bad_values_name_the_key_its_variable_and_where_it_was_set() {
    let token = load_error(
        None,
        &[
            ("INMOMENT_ACCOUNT_TOKEN", "nope"),
            ("INMOMENT_WRITE_KEYS", "k"),
        ],
        ConfigFlags::default(),
    );
    assert!(
        token.starts_with(
            "account_token (INMOMENT_ACCOUNT_TOKEN): `nope` is not an InMoment Account Token"
        ),
        "{token}"
    );
    assert!(
        token.ends_with("(set by INMOMENT_ACCOUNT_TOKEN)"),
        "{token}"
    );

    let missing = load_error(
        None,
        &[("INMOMENT_WRITE_KEYS", "k")],
        ConfigFlags::default(),
    );
    assert!(
        missing.starts_with("account_token (INMOMENT_ACCOUNT_TOKEN): missing"),
        "{missing}"
    );

    let listen = load_error(
        None,
        &[],
        ConfigFlags {
            listen: Some("nowhere".into()),
            ..keyed()
        },
    );
    assert_eq!(
        listen,
        "listen (INMOMENT_LISTEN): expected an address and port like 127.0.0.1:8080, got `nowhere` (set by --listen)"
    );

    let format = load_error(
        None,
        &[],
        ConfigFlags {
            log_format: Some("xml".into()),
            ..keyed()
        },
    );
    assert!(
        format.starts_with("log_format (INMOMENT_LOG_FORMAT): expected `text` or `json`"),
        "{format}"
    );

    let sizes = load_error(
        Some("max_event_bytes = 40000\nmax_batch_bytes = 30000\n"),
        &[],
        keyed(),
    );
    assert!(
        sizes.starts_with("max_batch_bytes (INMOMENT_MAX_BATCH_BYTES): must be at least 40000"),
        "{sizes}"
    );
    assert!(sizes.contains("set in"), "{sizes}");

    let url = load_error(None, &[("INMOMENT_API_URL", "ftp://x")], keyed());
    assert!(url.starts_with("api_url (INMOMENT_API_URL):"), "{url}");
}

#[test]
fn no_write_key_says_how_to_add_one() {
    let message = load_error(
        None,
        &[("INMOMENT_ACCOUNT_TOKEN", "NPS-4aeb53c1")],
        ConfigFlags::default(),
    );
    assert!(message.contains("no write key"), "{message}");
    assert!(message.contains("INMOMENT_WRITE_KEYS"), "{message}");
    assert!(message.contains("[[sources]]"), "{message}");
}

#[test]
fn file_mistakes_name_the_key_or_the_source_table() {
    let unknown = load_error(Some("listn = \"127.0.0.1:1\"\n"), &[], keyed());
    assert!(unknown.contains("unknown key `listn`"), "{unknown}");

    let no_key = load_error(
        Some("[[sources]]\nname = \"eu\"\naccount_token = \"NPS-EU-4aeb53c1\"\n"),
        &[],
        ConfigFlags::default(),
    );
    assert!(
        no_key.starts_with("sources[0].write_key: missing"),
        "{no_key}"
    );

    let bad_token = load_error(
        Some("[[sources]]\nname = \"eu\"\nwrite_key = \"x\"\naccount_token = \"EU-1\"\n"),
        &[],
        ConfigFlags::default(),
    );
    assert!(
        bad_token.starts_with("sources[0].account_token: `EU-1`"),
        "{bad_token}"
    );

    let twice = load_error(
        Some(
            "[[sources]]\nname = \"eu\"\nwrite_key = \"k\"\naccount_token = \"NPS-EU-4aeb53c1\"\n",
        ),
        &[],
        keyed(),
    );
    assert!(twice.contains("write key of source `eu`"), "{twice}");

    let syntax = load_error(Some("listen = \n"), &[], keyed());
    assert!(syntax.starts_with("config file "), "{syntax}");
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"));
    command.env_clear();
    command
}

#[test]
fn print_config_shows_the_effective_config_without_secrets() {
    let output = binary()
        .args(["serve", "--print-config", "--max-event-bytes", "4096"])
        .env("INMOMENT_WRITE_KEYS", "secret-write-key")
        .env("INMOMENT_ACCOUNT_TOKEN", "NPS-4aeb53c1")
        .env("INMOMENT_CLIENT_SECRET", "secret-client")
        .env("INMOMENT_WEBHOOK_SECRET", "secret-hook")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("max_event_bytes = 4096"), "{text}");
    assert!(text.contains("account_token = \"NPS-4aeb53c1\""), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("secret-"), "a secret leaked:\n{text}");
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(parsed["listen"].as_str(), Some("127.0.0.1:8080"));
}

#[test]
fn serve_with_a_bad_config_exits_2_naming_the_key() {
    let output = binary()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("INMOMENT_WRITE_KEYS", "k")
        .env("INMOMENT_ACCOUNT_TOKEN", "wrong")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: account_token (INMOMENT_ACCOUNT_TOKEN): `wrong`"),
        "{stderr}"
    );
    assert!(!stderr.contains("Listening"), "{stderr}");
}

#[test]
fn a_bad_data_dir_stops_serve_before_it_takes_the_port() {
    let dir = inmoment_testkit::TempDir::new("bad-data");
    let file = dir.write("a-file", "not a directory");
    // The port is taken: were it bound first, the error would be about `listen`.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = binary()
        .args(["serve", "--listen", &address])
        .env("INMOMENT_WRITE_KEYS", "k")
        .env("INMOMENT_ACCOUNT_TOKEN", "NPS-4aeb53c1")
        .env("INMOMENT_DATA_DIR", file.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: data_dir `"), "{stderr}");
    assert!(!stderr.contains("listen"), "{stderr}");
}
