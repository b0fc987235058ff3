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
    let body = write_body(root, "track.json", TRACK_TEMPLATE)?;
    let bare = Server::start(root.join("target/release/bare-server"), &["127.0.0.1:0"])?;
    let limit = median_load(root, &bare.addr, "/v1/track", "100000", &body, &[])?;
    drop(bare);
    rows.push(Row {
        what: format!("Bare hyper server, POST, {CONNECTIONS} connections"),
        figure: format!("{} req/s", thousands(limit.rps)),
        note: format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; the 100 % every HTTP ratio refers to",
            limit.p50, limit.p99, limit.p999
        ),
    });

    write_report(root, &rows)
}

/// A load result (median run by requests/s).
struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

fn median_load(
    root: &Path,
    addr: &str,
    path: &str,
    total: &str,
    body: &Path,
    headers: &[String],
) -> Result<Load, String> {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let mut args = vec![
            addr.to_string(),
            path.to_string(),
            CONNECTIONS.to_string(),
            total.to_string(),
            body.display().to_string(),
            "-".to_string(),
        ];
        args.extend(headers.iter().cloned());
        let output = Command::new(root.join("target/release/loadgen"))
            .args(&args)
            .output()
            .map_err(|e| format!("loadgen: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            return Err(format!(
                "loadgen failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let failed = number_after(&text, "\"failed\"", ":").unwrap_or(0.0);
        if failed > 0.0 {
            return Err(format!("loadgen saw {failed} failed requests: {text}"));
        }
        runs.push(Load {
            rps: number_after(&text, "\"requests_per_sec\"", ":").ok_or("no requests_per_sec")?,
            p50: number_after(&text, "\"p50_ms\"", ":").unwrap_or(0.0),
            p99: number_after(&text, "\"p99_ms\"", ":").unwrap_or(0.0),
            p999: number_after(&text, "\"p999_ms\"", ":").unwrap_or(0.0),
        });
    }
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    Ok(runs.swap_remove(RUNS / 2))
}

/// A child server that prints its address on its first stdout line; killed on drop.
struct Server {
    child: Child,
    addr: String,
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

const TRACK_TEMPLATE: &str = r#"{"type":"track","messageId":"bench-{{n}}","userId":"user-{{n}}","event":"Invoice Paid","properties":{"amount_amount":4900,"currency":"EUR","paidAt":"2026-11-02T09:15:20Z","invoice_id":"inv_88121","plan":"business"}}"#;

fn write_body(root: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

fn step(cargo: &str, root: &Path, args: &[&str]) -> Result<(), String> {
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
    let report = format!(
        "# Benchmarks\n\nMeasured by `cargo xtask bench` on {} with {cores} cores (loopback; the load generator and the server share the machine). Medians of {RUNS} runs; HTTP figures are also given as a ratio to the bare server measured in the same run.\n\n{table}",
        today()
    );
    std::fs::write(root.join("BENCHMARKS.md"), report).map_err(|e| e.to_string())
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

fn thousands(value: f64) -> String {
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
fn today() -> String {
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
    fn thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
