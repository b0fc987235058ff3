//! `cargo xtask bench`: every figure from one run on loopback, reported as medians of 5 and,
//! for HTTP, as a ratio to a bare server driven by the same load generator in the same run.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Runs this many times and reports the median.
const RUNS: usize = 5;
const CONNECTIONS: &str = "32";

struct Row {
    what: String,
    figure: String,
    note: String,
}

pub fn run(cargo: &str, root: &Path) -> Result<(), String> {
    let mut rows = Vec::new();
    step(
        cargo,
        root,
        &[
            "build",
            "--release",
            "-p",
            "inmoment-loadgen",
            "-p",
            "inmoment-host",
        ],
    )?;

    println!("==> 1. mapping (criterion)");
    step(
        cargo,
        root,
        &[
            "bench",
            "-p",
            "inmoment-host",
            "--bench",
            "mapping",
            "--",
            "--noplot",
        ],
    )?;
    let estimates =
        root.join("target/criterion/mapping/identify_track_page_mix/new/estimates.json");
    let text =
        std::fs::read_to_string(&estimates).map_err(|e| format!("{}: {e}", estimates.display()))?;
    let median_ns = number_after(&text, "\"median\"", "\"point_estimate\":")
        .ok_or("no median in criterion's estimates.json")?;
    let events_per_sec = 3.0 / (median_ns * 1e-9);
    rows.push(Row {
        what: "Mapping, identify (20 traits) + track (10 properties) + page, one core".into(),
        figure: format!("{} events/s", thousands(events_per_sec)),
        note: format!("median {median_ns:.0} ns per 3 events (target ≥ 1,000,000/s)"),
    });

    println!("==> 2. physical limit: bare server");
    let bare = Server::start(root.join("target/release/bare-server"), &["127.0.0.1:0"])?;
    let limit = median_load(root, &bare.addr, "/v1/track", "100000", TRACK_TEMPLATE)?;
    drop(bare);
    rows.push(Row {
        what: format!("Bare hyper server, POST, {CONNECTIONS} connections"),
        figure: format!("{} req/s", thousands(limit.rps)),
        note: format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; the 100 % every HTTP ratio refers to",
            limit.p50, limit.p99, limit.p999
        ),
    });

    ingest(root, &limit, &mut rows)?;
    end_to_end(root, &mut rows)?;
    backlog(root, &mut rows)?;
    write_report(root, &rows)
}

const WRITE_KEY: &str = "bench-key";

fn auth_headers() -> Vec<String> {
    // base64("bench-key:")
    vec![
        "Authorization: Basic YmVuY2gta2V5Og==".to_string(),
        "Content-Type: application/json".to_string(),
    ]
}

/// `serve` (release) with its store in a fresh directory and InMoment at `inmoment`.
pub(crate) fn start_serve(
    root: &Path,
    name: &str,
    inmoment: &str,
    extra: &[(&str, &str)],
) -> Result<Server, String> {
    let data = root.join("target/bench").join(name);
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut command = Command::new(root.join("target/release/inmoment-destination"));
    command
        .arg("serve")
        .env("INMOMENT_LISTEN", &listen)
        .env("INMOMENT_DATA_DIR", &data)
        .env("INMOMENT_ACCOUNT_TOKEN", "NPS-d3m0d3m0")
        .env("INMOMENT_WRITE_KEYS", WRITE_KEY)
        .env("INMOMENT_ELIGIBILITY_URL", inmoment)
        .env("INMOMENT_API_URL", inmoment)
        .env("INMOMENT_MAX_PENDING_CALLS", "5000000")
        .env("RUST_LOG", "error");
    for (key, value) in extra {
        command.env(key, value);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("serve: {e}"))?;
    let server = Server {
        child,
        addr: listen,
    };
    wait_for(
        || http_get(&server.addr, "/healthz").is_ok_and(|r| r.contains(" 200 ")),
        "serve to listen",
    )?;
    Ok(server)
}

pub(crate) fn start_sandbox(
    root: &Path,
    listen: &str,
    rate_limit: Option<&str>,
) -> Result<Server, String> {
    let mut args = vec!["sandbox", "--listen", listen];
    if let Some(limit) = rate_limit {
        args.extend(["--rate-limit-per-minute", limit]);
    }
    let mut server = Server::start(root.join("target/release/inmoment-destination"), &args)?;
    let url = server
        .addr
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or("no sandbox address")?;
    server.addr = url.trim_start_matches("http://").to_string();
    Ok(server)
}

/// 3. Durable ingest: single events and batches of 100, against the bare server's figure.
fn ingest(root: &Path, limit: &Load, rows: &mut Vec<Row>) -> Result<(), String> {
    println!("==> 3. durable ingest");
    let sandbox = start_sandbox(root, "127.0.0.1:0", None)?;
    let serve = start_serve(
        root,
        "data-ingest",
        &format!("http://{}", sandbox.addr),
        &[],
    )?;
    let single = median_load(root, &serve.addr, "/v1/track", "40000", TRACK_TEMPLATE)?;
    rows.push(Row {
        what: format!("Durable ingest, single events (`/v1/track`), {CONNECTIONS} connections"),
        figure: format!(
            "{} events/s ({:.0} % of bare)",
            thousands(single.rps),
            100.0 * single.rps / limit.rps
        ),
        note: format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms (target ≥ 50 %)",
            single.p50, single.p99, single.p999
        ),
    });
    let batch_template = batch_template(100);
    let batches = median_load(root, &serve.addr, "/v1/batch", "800", &batch_template)?;
    rows.push(Row {
        what: format!("Durable ingest, batches of 100 (`/v1/batch`), {CONNECTIONS} connections"),
        figure: format!("{} events/s", thousands(batches.rps * 100.0)),
        note: format!("{:.0} requests/s ({:.0} % of bare); p50 {:.2} ms, p99 {:.2} ms (target ≥ 300,000 events/s)", batches.rps, 100.0 * batches.rps / limit.rps, batches.p50, batches.p99),
    });
    let offered = one_load(
        root,
        &serve.addr,
        "/v1/track",
        "8",
        "20000",
        TRACK_TEMPLATE,
        Some("2000"),
    )?;
    rows.push(Row {
        what: "Durable ingest at 2,000 events/s offered (single events)".into(),
        figure: format!("p99 {:.2} ms", offered.p99),
        note: format!(
            "p50 {:.2} ms, p99.9 {:.2} ms (target p99 < 5 ms)",
            offered.p50, offered.p999
        ),
    });
    drop(serve);
    drop(sandbox);

    // The same with the sandbox at the API's 600 calls/min: delivery mostly waits, as it
    // does against the real InMoment, so this is what ingest alone costs.
    let sandbox = start_sandbox(root, "127.0.0.1:0", Some("600"))?;
    let serve = start_serve(
        root,
        "data-ingest-limited",
        &format!("http://{}", sandbox.addr),
        &[],
    )?;
    let single = median_load(root, &serve.addr, "/v1/track", "40000", TRACK_TEMPLATE)?;
    rows.push(Row {
        what: "Durable ingest, single events, InMoment limited to 600 calls/min".into(),
        figure: format!(
            "{} events/s ({:.0} % of bare)",
            thousands(single.rps),
            100.0 * single.rps / limit.rps
        ),
        note: format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; delivery waits on the limit, so it takes no CPU from ingest",
            single.p50, single.p99, single.p999
        ),
    });
    Ok(())
}

/// 4. End to end: first request to last call recorded by the sandbox.
fn end_to_end(root: &Path, rows: &mut Vec<Row>) -> Result<(), String> {
    println!("==> 4. end to end");
    for (limit, events) in [(None, 20_000u64), (Some("600"), 1_300)] {
        let sandbox = start_sandbox(root, "127.0.0.1:0", limit)?;
        let serve = start_serve(root, "data-e2e", &format!("http://{}", sandbox.addr), &[])?;
        let started = std::time::Instant::now();
        one_load(
            root,
            &serve.addr,
            "/v1/track",
            CONNECTIONS,
            &events.to_string(),
            TRACK_TEMPLATE,
            None,
        )?;
        wait_for_long(
            || counter(&sandbox.addr, "eligible") >= events,
            "the sandbox to record every call",
            600,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let throttled = http_get(&sandbox.addr, "/_sandbox/requests?route=eligible")
            .map(|text| text.matches("\"status\":429").count())
            .unwrap_or(0);
        let (what, note) = match limit {
            None => ("End to end, sandbox without rate limit".to_string(), format!("{events} events, {seconds:.1} s")),
            Some(l) => (format!("End to end, sandbox limited to {l}/min"), format!("{events} events in {seconds:.0} s; {throttled} answers were 429 (the client follows X-Rate-Limit-Remaining)")),
        };
        rows.push(Row {
            what,
            figure: format!("{} events/s", thousands(events as f64 / seconds)),
            note,
        });
    }
    Ok(())
}

/// 5. Backlog: a million events while InMoment is down, then the drain.
fn backlog(root: &Path, rows: &mut Vec<Row>) -> Result<(), String> {
    println!("==> 5. backlog of 1,000,000 events");
    let port = free_port()?;
    let down = format!("http://127.0.0.1:{port}");
    let serve = start_serve(
        root,
        "data-backlog",
        &down,
        &[("INMOMENT_RETRY_CAP_MS", "2000")],
    )?;
    let pid = serve.child.id();
    let mut rss = Vec::new();
    let template = batch_template(100);
    for _ in 0..10 {
        one_load(
            root,
            &serve.addr,
            "/v1/batch",
            CONNECTIONS,
            "1000",
            &template,
            None,
        )?;
        rss.push(proc_status_kb(pid, "VmRSS:").unwrap_or(0) / 1024);
    }
    let peak = proc_status_kb(pid, "VmHWM:").unwrap_or(0) / 1024;
    let bytes = dir_size(&root.join("target/bench/data-backlog"));
    rows.push(Row {
        what: "Backlog: 1,000,000 events accepted while InMoment is down".into(),
        figure: format!(
            "peak RSS {peak} MB; {} bytes on disk per event",
            bytes / 1_000_000
        ),
        note: format!(
            "RSS after each 100,000 events (MB): {:?} (target < 100 MB, flat)",
            rss
        ),
    });
    let sandbox = start_sandbox(root, &format!("127.0.0.1:{port}"), None)?;
    let started = std::time::Instant::now();
    wait_for_long(
        || counter(&sandbox.addr, "eligible") >= 1_000_000,
        "the backlog to drain",
        3600,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    rows.push(Row {
        what: "Backlog drain once InMoment is up".into(),
        figure: format!("{} events/s", thousands(1_000_000.0 / seconds)),
        note: format!("1,000,000 calls delivered in {seconds:.0} s"),
    });
    Ok(())
}

pub(crate) fn batch_template(items: usize) -> String {
    let events: Vec<String> = (0..items)
        .map(|i| format!(r#"{{"type":"track","messageId":"bench-{{{{run}}}}-{{{{n}}}}-{i}","userId":"user-{{{{n}}}}-{}","event":"Invoice Paid","properties":{{"amount_amount":4900,"currency":"EUR","plan":"business"}}}}"#, i % 10))
        .collect();
    format!(r#"{{"batch":[{}]}}"#, events.join(","))
}

pub(crate) fn one_load(
    root: &Path,
    addr: &str,
    path: &str,
    connections: &str,
    total: &str,
    template: &str,
    rate: Option<&str>,
) -> Result<Load, String> {
    let body = unique_body(root, template)?;
    let mut args = vec![
        addr.to_string(),
        path.to_string(),
        connections.to_string(),
        total.to_string(),
        body.display().to_string(),
        rate.unwrap_or("-").to_string(),
    ];
    args.extend(auth_headers());
    let output = Command::new(root.join("target/release/loadgen"))
        .args(&args)
        .output()
        .map_err(|e| format!("loadgen: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() || number_after(&text, "\"failed\"", ":").unwrap_or(1.0) > 0.0 {
        return Err(format!(
            "loadgen failed: {text} {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(Load {
        rps: number_after(&text, "\"requests_per_sec\"", ":").ok_or("no requests_per_sec")?,
        p50: number_after(&text, "\"p50_ms\"", ":").unwrap_or(0.0),
        p99: number_after(&text, "\"p99_ms\"", ":").unwrap_or(0.0),
        p999: number_after(&text, "\"p999_ms\"", ":").unwrap_or(0.0),
    })
}

/// Writes `template` with a fresh run id, so no two runs repeat a messageId (the server
/// would answer repeats as duplicates without storing them).
fn unique_body(root: &Path, template: &str) -> Result<PathBuf, String> {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    write_body(
        root,
        &format!("body-{run}.json"),
        &template.replace("{{run}}", &run.to_string()),
    )
}

/// A minimal HTTP/1.1 GET (xtask stays dependency-free); returns the whole response.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The sandbox's never-trimmed counter of one route.
pub(crate) fn counter(addr: &str, route: &str) -> u64 {
    http_get(addr, "/_sandbox/counters")
        .ok()
        .and_then(|text| number_after(&text, &format!("\"{route}\""), ":"))
        .map_or(0, |n| n as u64)
}

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) -> Result<(), String> {
    wait_for_long(&mut done, what, 30)
}

pub(crate) fn wait_for_long(
    mut done: impl FnMut() -> bool,
    what: &str,
    seconds: u64,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed().as_secs() > seconds {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A load result (median run by requests/s).
pub(crate) struct Load {
    pub(crate) rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

fn median_load(
    root: &Path,
    addr: &str,
    path: &str,
    total: &str,
    template: &str,
) -> Result<Load, String> {
    let mut runs = (0..RUNS)
        .map(|_| one_load(root, addr, path, CONNECTIONS, total, template, None))
        .collect::<Result<Vec<Load>, String>>()?;
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    Ok(runs.swap_remove(RUNS / 2))
}

/// A child server that prints its address on its first stdout line; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Server {
    fn start(program: PathBuf, args: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(&program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(Server {
            child,
            addr: line.trim().to_string(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TRACK_TEMPLATE: &str = r#"{"type":"track","messageId":"bench-{{run}}-{{n}}","userId":"user-{{n}}","event":"Invoice Paid","properties":{"amount_amount":4900,"currency":"EUR","paidAt":"2026-11-02T09:15:20Z","invoice_id":"inv_88121","plan":"business"}}"#;

fn write_body(root: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

pub(crate) fn step(cargo: &str, root: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

fn write_report(root: &Path, rows: &[Row]) -> Result<(), String> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut table = String::from("| What | Figure | Notes |\n|---|---|---|\n");
    for row in rows {
        let _ = writeln!(table, "| {} | {} | {} |", row.what, row.figure, row.note);
    }
    println!("\n{table}");
    let mut report = format!(
        "# Benchmarks\n\nMeasured by `cargo xtask bench` on {} with {cores} cores (loopback; the load generator and the server share the machine). Medians of {RUNS} runs; HTTP figures are also given as a ratio to the bare server measured in the same run.\n\n{table}",
        today()
    );
    // Only the table above is this run's: the sections after it (before/after comparisons
    // written by hand, `cargo xtask bench pg`'s figures) stay as they are.
    let previous = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap_or_default();
    report.push_str(kept_sections(&previous));
    std::fs::write(root.join("BENCHMARKS.md"), report).map_err(|e| e.to_string())
}

/// The part of a previous report from its first `## ` section on, after a blank line.
fn kept_sections(previous: &str) -> &str {
    previous.find("\n## ").map_or("", |at| &previous[at..])
}

/// The number after `label` and then `key` in `text` (enough JSON for our own outputs).
fn number_after(text: &str, label: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(label)? + label.len()..];
    let rest = &rest[rest.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+')
        })
        .unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Today as YYYY-MM-DD (UTC), from the system clock, without a date crate.
pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_after_their_key() {
        let text = r#"{"mean":{"point_estimate":1.5},"median":{"point_estimate":5995.38,"x":1}}"#;
        assert_eq!(
            number_after(text, "\"median\"", "\"point_estimate\":"),
            Some(5995.38)
        );
        assert_eq!(
            number_after(r#"{"failed":0,"p50_ms":0.12}"#, "\"p50_ms\"", ":"),
            Some(0.12)
        );
    }

    #[test]
    fn a_new_table_keeps_every_section_after_the_old_one() {
        let previous = "# Benchmarks\n\nold intro\n\n| old | table |\n\n## Before and after\n\nby hand\n\n## Several nodes on one PostgreSQL\n\npg rows\n";
        let kept = kept_sections(previous);
        assert!(kept.starts_with("\n## Before and after\n"), "{kept}");
        assert!(kept.contains("by hand") && kept.contains("pg rows"));
        assert!(!kept.contains("old intro") && !kept.contains("old | table"));
        assert_eq!(kept_sections("# Benchmarks\n\n| only | a table |\n"), "");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
