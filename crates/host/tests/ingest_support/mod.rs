//! Shared helpers of the `ingest_*` tests: a server on 127.0.0.1 in front of the real
//! embedded store (in a temporary directory, read back through the store's own reader), a
//! raw HTTP/1.1 client (so tests control every byte sent), a gate that holds requests on
//! their way to the store, and a store whose disk is full.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use inmoment_core::{AccountToken, Event, Registry, Settings};
use inmoment_host::config::{AccountFlags, Config, ConfigFlags};
use inmoment_ingest::metrics::Metrics;
use inmoment_store::accept::{AcceptError, Acceptor, EventOutcome, Source};
use inmoment_store::{PendingRow, Reader, Store, StoreConfig};
use inmoment_testkit::TempDir;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

/// The write key of the default source in [`config`].
pub const KEY: &str = "wk-default";
pub const TOKEN: &str = "NPS-4aeb53c1";

pub fn registry() -> Registry {
    inmoment_host::linked::registry().unwrap()
}

/// The real store, empty, in a fresh temporary directory.
pub fn store() -> Arc<TestStore> {
    TestStore::open(|_| {})
}

/// The embedded store the server runs on, in its own temporary directory (removed after
/// the store is closed). What it accepted is read back from its journal.
pub struct TestStore {
    // Dropped in this order: the store (which closes it) before its directory.
    store: Store,
    dir: TempDir,
}

impl TestStore {
    /// A store with [`StoreConfig`]'s defaults, changed by `configure`.
    pub fn open(configure: impl FnOnce(&mut StoreConfig)) -> Arc<TestStore> {
        let dir = TempDir::new("ingest-store");
        let mut config = StoreConfig::new(dir.path());
        configure(&mut config);
        let store = Store::open(config, registry()).unwrap();
        Arc::new(TestStore { store, dir })
    }

    /// A store on a full disk: its file is capped (`max_page_count`) and filled until not
    /// even a small event fits, so every commit fails as on a full disk.
    pub async fn full() -> Arc<TestStore> {
        let store = TestStore::open(|config| config.max_page_count = Some(24));
        let source = Source {
            name: "filler".into(),
            settings: Settings::new(AccountToken::parse(TOKEN).unwrap()),
        };
        let big = "x".repeat(30_000);
        for properties in [json!({"note": big}), json!({})] {
            let mut refused = false;
            for i in 0..1_000 {
                let event = Event::from_value(
                    json!({"type":"track","userId":"f","event":"E","messageId":format!("{i}-{}", properties.as_object().unwrap().len()),"properties":properties}),
                    None,
                )
                .unwrap();
                if store.store.accept(&source, vec![event]).await.is_err() {
                    refused = true;
                    break;
                }
            }
            assert!(refused, "the capped store never filled up");
        }
        assert!(!store.ready(), "a full store must not say ready");
        store
    }

    /// The journal: every event stored and not yet delivered, in order.
    pub fn rows(&self) -> Vec<PendingRow> {
        let reader = Reader::open(&self.dir.join("inmoment.sqlite3")).unwrap();
        reader.scan_after(0, 1_000_000).unwrap()
    }

    /// The events stored, as the journal holds them.
    pub fn events(&self) -> Vec<Event> {
        self.rows()
            .iter()
            .map(|row| Event::from_value(serde_json::from_str(&row.body).unwrap(), None).unwrap())
            .collect()
    }
}

#[async_trait]
impl Acceptor for TestStore {
    async fn accept(
        &self,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError> {
        self.store.accept(source, events).await
    }

    fn ready(&self) -> bool {
        self.store.ready()
    }
}

/// One source (`default`, write key [`KEY`]) and every default.
pub fn config() -> Config {
    let flags = ConfigFlags {
        write_keys: Some(KEY.into()),
        account: AccountFlags {
            account_token: Some(TOKEN.into()),
            ..AccountFlags::default()
        },
        ..ConfigFlags::default()
    };
    Config::load(None, &|_| None, &flags).unwrap()
}

/// A fresh temporary directory holding `config.toml` with this text.
pub fn config_file(text: &str) -> TempDir {
    let dir = TempDir::new("ingest-config");
    dir.write("config.toml", text);
    dir
}

/// A config read from TOML text alone.
pub fn config_from_toml(text: &str) -> Config {
    let dir = config_file(text);
    Config::load(
        Some(&dir.join("config.toml")),
        &|_| None,
        &ConfigFlags::default(),
    )
    .unwrap()
}

/// A running server on an ephemeral port of 127.0.0.1.
pub struct Server {
    pub port: u16,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<io::Result<()>>,
}

impl Server {
    pub async fn start(config: Config, acceptor: Arc<dyn Acceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let metrics = Arc::new(Metrics::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(inmoment_ingest::serve::serve(
            config,
            acceptor,
            metrics.clone(),
            listener,
            shutdown,
        ));
        Server {
            port,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        post(self.port, path, headers, body).await
    }

    /// POST with the default write key as Basic auth.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let auth = basic(KEY);
        let body = serde_json::to_vec(body).unwrap();
        post(self.port, path, &[("Authorization", &auth)], &body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        send_raw(self.port, request.as_bytes()).await
    }
}

pub fn basic(key: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    format!("Basic {encoded}")
}

/// A POST with `Content-Length` and `Connection: close`; `headers` are added as given.
pub async fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    let has_type = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !has_type {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(port, &bytes).await
}

/// Writes the bytes as they are and reads the answer until the server closes.
pub async fn send_raw(port: u16, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    Reply::parse(&response)
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Waits in `accept` until released, then passes the events to the real store. Each call
/// announces itself on `entered`, so tests know a request is in flight without sleeping.
pub struct GatedAcceptor {
    pub store: Arc<TestStore>,
    release: Semaphore,
    entered: mpsc::UnboundedSender<()>,
}

impl GatedAcceptor {
    pub fn new() -> (Arc<GatedAcceptor>, mpsc::UnboundedReceiver<()>) {
        let (entered, receiver) = mpsc::unbounded_channel();
        let gate = GatedAcceptor {
            store: store(),
            release: Semaphore::new(0),
            entered,
        };
        (Arc::new(gate), receiver)
    }

    /// Lets `n` waiting (or future) calls through.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }
}

#[async_trait]
impl Acceptor for GatedAcceptor {
    async fn accept(
        &self,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError> {
        let _ = self.entered.send(());
        let permit = self.release.acquire().await.unwrap();
        permit.forget();
        self.store.accept(source, events).await
    }
}

/// Waits for `n` announcements from a gated acceptor (bounded, so a bug fails the test).
pub async fn wait_entered(entered: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(10), entered.recv())
            .await
            .expect("a request should reach the acceptor")
            .unwrap();
    }
}
