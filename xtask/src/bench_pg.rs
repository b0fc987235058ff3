//! `cargo xtask bench pg`: ingest and drain with 1, 2 and 3 `serve` nodes sharing one
//! PostgreSQL journal (the cluster `cargo xtask prepare` started), with PostgreSQL's CPU
//! per event. Each node count gets a fresh database. The section it writes is kept by a
//! later full `cargo xtask bench`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bench::{
    batch_template, counter, free_port, one_load, start_sandbox, start_serve, step, thousands,
    today, wait_for_long, Server,
};

/// The heading of the section in `BENCHMARKS.md`; everything from it to the next `## ` is
/// this command's.
pub const HEADING: &str = "## Several nodes on one PostgreSQL";
/// Events per node count: 100 per batch.
const EVENTS: u64 = 60_000;
const BATCH: u64 = 100;
/// Load generator connections over all nodes.
const CONNECTIONS: usize = 30;
const PARTITIONS: &str = "64";

/// One node count's figures.
struct Figures {
    nodes: usize,
    ingest_per_sec: f64,
    ingest_per_node: Vec<f64>,
    ingest_cpu_us: f64,
    drain_per_sec: f64,
    drain_cpu_us: f64,
}

pub fn run(cargo: &str, root: &Path) -> Result<(), String> {
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
    let url = std::fs::read_to_string(root.join("target/postgres/url"))
        .map_err(|e| format!("target/postgres/url: {e}; run `cargo xtask prepare` first"))?;
    let url = url.trim().to_string();
    let mut figures = Vec::new();
    for nodes in 1..=3 {
        println!("==> PostgreSQL journal, {nodes} node(s)");
        figures.push(one_count(root, &url, nodes)?);
    }
    let section = section(&figures);
    println!("\n{section}");
    let path = root.join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(&path, with_section(&text, &section)).map_err(|e| e.to_string())
}

fn one_count(root: &Path, cluster: &str, nodes: usize) -> Result<Figures, String> {
    let name = format!(
        "bench_pg_{nodes}_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    psql(cluster, &format!("CREATE DATABASE {name}"))?;
    let result = measure(root, &with_database(cluster, &name), nodes);
    // The cluster is throwaway, but a run's rows are not worth keeping on its disk.
    let _ = psql(
        cluster,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    result
}

fn measure(root: &Path, url: &str, nodes: usize) -> Result<Figures, String> {
    // InMoment is down while events come in (delivery pauses), then comes up on this port.
    let port = free_port()?;
    let inmoment = format!("http://127.0.0.1:{port}");
    let mut servers: Vec<Server> = Vec::new();
    for n in 0..nodes {
        let node = format!("bench-node-{n}");
        servers.push(start_serve(
            root,
            &format!("data-pg-{nodes}-{n}"),
            &inmoment,
            &[
                ("INMOMENT_STORE", url),
                ("INMOMENT_NODE_ID", &node),
                ("INMOMENT_PARTITIONS", PARTITIONS),
                ("INMOMENT_TAKEOVER_WITHIN", "2s"),
                ("INMOMENT_RETRY_BASE_MS", "20"),
                ("INMOMENT_RETRY_CAP_MS", "200"),
            ],
        )?);
    }
    wait_balanced(url, nodes)?;
    let postmaster = postmaster_pid(root)?;

    let template = batch_template(usize::try_from(BATCH).unwrap_or(100));
    let batches = EVENTS / BATCH;
    let cpu_before = cluster_cpu(postmaster)?;
    let started = Instant::now();
    let per_node: Vec<Result<f64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|server| {
                let template = &template;
                let connections = (CONNECTIONS / nodes).max(1).to_string();
                let total = (batches / nodes as u64).to_string();
                scope.spawn(move || {
                    one_load(
                        root,
                        &server.addr,
                        "/v1/batch",
                        &connections,
                        &total,
                        template,
                        None,
                    )
                    .map(|load| load.rps * BATCH as f64)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("loadgen thread".into())))
            .collect()
    });
    let ingest_secs = started.elapsed().as_secs_f64();
    let cpu_ingest = cluster_cpu(postmaster)? - cpu_before;
    let ingest_per_node = per_node.into_iter().collect::<Result<Vec<f64>, String>>()?;
    let sent = batches / nodes as u64 * nodes as u64 * BATCH;

    let cpu_before = cluster_cpu(postmaster)?;
    let sandbox = start_sandbox(root, &format!("127.0.0.1:{port}"), None)?;
    let started = Instant::now();
    wait_for_long(
        || counter(&sandbox.addr, "eligible") >= sent,
        "the shared journal to drain",
        1800,
    )?;
    let drain_secs = started.elapsed().as_secs_f64();
    let cpu_drain = cluster_cpu(postmaster)? - cpu_before;
    drop(servers);
    drop(sandbox);

    let events = sent as f64;
    Ok(Figures {
        nodes,
        ingest_per_sec: events / ingest_secs,
        ingest_per_node,
        ingest_cpu_us: cpu_ingest.as_secs_f64() * 1e6 / events,
        drain_per_sec: events / drain_secs,
        drain_cpu_us: cpu_drain.as_secs_f64() * 1e6 / events,
    })
}

/// Waits until each node holds its fair share of live leases, so that no partition
/// changes hands during the measurement.
fn wait_balanced(url: &str, nodes: usize) -> Result<(), String> {
    let query = "SELECT count(DISTINCT owner) FILTER (WHERE lease_until > now()) || ' ' || \
                 count(*) FILTER (WHERE lease_until IS NULL OR lease_until <= now()) || ' ' || \
                 COALESCE((SELECT max(c) FROM (SELECT count(*) AS c FROM partitions \
                           WHERE lease_until > now() GROUP BY owner) s), 0) FROM partitions";
    let partitions: usize = PARTITIONS.parse().map_err(|_| "partitions")?;
    let share = partitions.div_ceil(nodes);
    wait_for_long(
        || {
            psql(url, query).is_ok_and(|answer| {
                let numbers: Vec<usize> = answer
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                matches!(numbers[..], [owners, 0, most] if owners == nodes && most <= share)
            })
        },
        "the partitions to split between the nodes",
        60,
    )
}

/// Runs one statement with psql and returns its unaligned output.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "psql `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `url` with its database replaced by `name` (the URLs prepare writes have no query).
fn with_database(url: &str, name: &str) -> String {
    match url.rfind('/') {
        Some(at) if at > url.find("://").map_or(0, |s| s + 2) => format!("{}/{name}", &url[..at]),
        _ => format!("{url}/{name}"),
    }
}

/// The postmaster of the cluster under `target/postgres`: the first line of its pid file.
fn postmaster_pid(root: &Path) -> Result<u32, String> {
    let file = root.join("target/postgres/data/postmaster.pid");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("{}: no pid", file.display()))
}

/// CPU used by the whole cluster so far: the postmaster's own and its reaped children's
/// (backends that exited), plus every live child's. All backends are the postmaster's
/// children, so this counts connections opened and closed between two readings too.
fn cluster_cpu(postmaster: u32) -> Result<Duration, String> {
    let own = stat_fields(postmaster).ok_or("cannot read the postmaster's /proc stat")?;
    let mut ticks = own.utime + own.stime + own.cutime + own.cstime;
    for entry in std::fs::read_dir("/proc").map_err(|e| e.to_string())? {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        else {
            continue;
        };
        if let Some(stat) = stat_fields(pid).filter(|s| s.ppid == postmaster) {
            ticks += stat.utime + stat.stime;
        }
    }
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Fields 4 and 14 to 17 of `/proc/<pid>/stat` (after the command name, which may hold
/// spaces and parentheses, hence the split at the last `)`).
fn stat_fields(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
    })
}

/// Clock ticks per second for `/proc` times (`getconf CLK_TCK`; 100 on Linux if absent).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn section(figures: &[Figures]) -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut text = format!(
        "{HEADING}\n\nMeasured by `cargo xtask bench pg` on {} with {cores} cores: {} events \
         (batches of {BATCH}, {CONNECTIONS} connections split over the nodes) taken in while \
         InMoment is down, then drained to the sandbox; {PARTITIONS} partitions; a fresh \
         database per row. PostgreSQL CPU is user + system time of all the cluster's processes \
         per event. The nodes, PostgreSQL, the sandbox and the load generator share these {cores} \
         cores, so more nodes cannot add capacity here: the rows show the overhead of sharing, \
         not how far it scales.\n\n\
         | Nodes | Ingest | Per node | PG CPU per event | Drain | Per node | PG CPU per event |\n\
         |---|---|---|---|---|---|---|\n",
        today(),
        thousands(EVENTS as f64),
    );
    for f in figures {
        let per_node: Vec<String> = f.ingest_per_node.iter().map(|r| thousands(*r)).collect();
        let _ = writeln!(
            text,
            "| {} | {} events/s | {} | {:.0} µs | {} events/s | {} | {:.0} µs |",
            f.nodes,
            thousands(f.ingest_per_sec),
            per_node.join(" / "),
            f.ingest_cpu_us,
            thousands(f.drain_per_sec),
            thousands(f.drain_per_sec / f.nodes as f64),
            f.drain_cpu_us,
        );
    }
    text.push_str(
        "\nIngest per node is each node's own load generator; drain per node is the total \
         divided by the nodes (each delivers its share of the partitions). A drain starts \
         when the sandbox comes up and includes up to 200 ms until paused deliveries \
         resume (the retry cap).\n",
    );
    text
}

/// `text` with its PostgreSQL section replaced by `section` (or `section` appended).
pub fn with_section(text: &str, section: &str) -> String {
    let (before, after) = split_section(text);
    let mut out = before.trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(section.trim_end());
    out.push('\n');
    if !after.is_empty() {
        out.push('\n');
        out.push_str(after);
    }
    out
}

/// Text before this command's section and after it (the next `## ` on).
fn split_section(text: &str) -> (&str, &str) {
    let Some(start) = text.find(HEADING) else {
        return (text, "");
    };
    let rest = &text[start + HEADING.len()..];
    match rest.find("\n## ") {
        Some(at) => (&text[..start], &rest[at + 1..]),
        None => (&text[..start], ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let section = format!("{HEADING}\n\nnew\n");
        assert_eq!(
            with_section("# B\n\ntable\n", &section),
            format!("# B\n\ntable\n\n{HEADING}\n\nnew\n")
        );
        let old = format!("# B\n\n{HEADING}\n\nold\n\n## Later\n\nx\n");
        assert_eq!(
            with_section(&old, &section),
            format!("# B\n\n{HEADING}\n\nnew\n\n## Later\n\nx\n")
        );
    }

    #[test]
    fn stat_fields_skip_the_command_name() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5/postgres", "db"),
            "postgres://u@127.0.0.1:5/db"
        );
        let pid = std::process::id();
        let stat = stat_fields(pid).expect("own stat");
        assert!(stat.ppid > 0);
    }
}
