//! The tests' PostgreSQL: a throwaway cluster under `target/postgres`, started by
//! `prepare` and stopped by `postgres-stop`, so that no test needs Docker or a shared
//! server.
//!
//! `target/postgres/url` holds the server's URL (`postgres://inmoment@127.0.0.1:PORT/postgres`,
//! trust authentication); `inmoment-testkit` reads it. When that URL answers, `prepare`
//! reuses the server, so a second run costs one `psql` start. The data is in
//! `target/postgres/data`, the server log in `target/postgres/log`.
//!
//! initdb and postgres refuse to run as root: as root (CI), they run as the `postgres` OS
//! user (Debian's package creates it) or else a system user `inmoment-pg` created here.

use std::env;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The OS user created when running as root and there is no `postgres` user.
const FALLBACK_USER: &str = "inmoment-pg";
/// The database role the tests connect as.
const ROLE: &str = "inmoment";
/// The longest unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where the cluster lives, and how to run its programs.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The unprivileged user to run the server programs as, when we are root.
    run_as: Option<String>,
}

/// Makes sure a cluster is running and its URL is in `target/postgres/url`.
pub fn run(root: &Path) -> Result<(), String> {
    let cluster = Cluster::find(root)?;
    let url_file = cluster.url_file();
    if let Ok(url) = fs::read_to_string(&url_file) {
        if cluster.answers(url.trim()) && cluster.speaks_tls(url.trim()) {
            return Ok(());
        }
    }
    let _ = fs::remove_file(&url_file);
    cluster.prepare_dir()?;
    if cluster.is_running() {
        // Running but not answering on the recorded URL (or the file is gone): start
        // afresh rather than guess its port.
        cluster.pg_ctl(&["stop", "-m", "fast"])?;
    }
    let data = cluster.data();
    if !data.join("PG_VERSION").exists() {
        // A half-made data directory (an interrupted initdb) makes initdb refuse.
        let _ = fs::remove_dir_all(&data);
        println!("==> prepare: initdb {}", data.display());
        let data_text = path_text(&data)?;
        cluster.server_program(
            "initdb",
            &[
                "-D",
                &data_text,
                "--auth=trust",
                &format!("--username={ROLE}"),
                "--encoding=UTF8",
                "--no-locale",
            ],
        )?;
    }
    let port = free_port()?;
    println!("==> prepare: PostgreSQL on 127.0.0.1:{port}");
    let tls = path_text(&cluster.tls_dir())?;
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 -c unix_socket_directories='{}' \
         -c ssl=on -c ssl_cert_file='{tls}/server.crt' -c ssl_key_file='{tls}/server.key'",
        cluster.socket_dir()
    );
    let log = path_text(&cluster.dir.join("log"))?;
    cluster
        .pg_ctl(&["-l", &log, "-o", &options, "-w", "start"])
        .map_err(|e| format!("{e}\n{}", cluster.log_tail()))?;
    let url = format!("postgres://{ROLE}@127.0.0.1:{port}/postgres");
    if !cluster.answers(&url) {
        return Err(format!(
            "PostgreSQL started but `psql {url}` fails\n{}",
            cluster.log_tail()
        ));
    }
    fs::write(&url_file, format!("{url}\n"))
        .map_err(|e| format!("cannot write {}: {e}", url_file.display()))
}

/// Stops the cluster (fast: open sessions are cut) and removes its URL file.
pub fn stop(root: &Path) -> Result<(), String> {
    let cluster = Cluster::find(root)?;
    let _ = fs::remove_file(cluster.url_file());
    if !cluster.is_running() {
        println!(
            "==> postgres-stop: no cluster running in {}",
            cluster.dir.display()
        );
        return Ok(());
    }
    cluster.pg_ctl(&["stop", "-m", "fast"])?;
    println!("==> postgres-stop: stopped");
    Ok(())
}

impl Cluster {
    fn find(root: &Path) -> Result<Cluster, String> {
        let run_as = if is_root()? {
            Some(server_user()?)
        } else {
            None
        };
        Ok(Cluster {
            dir: root.join("target/postgres"),
            bin: bin_dir()?,
            run_as,
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url_file(&self) -> PathBuf {
        self.dir.join("url")
    }

    /// A test CA (`ca.crt`, which the TLS tests trust) and the server's certificate for
    /// 127.0.0.1 signed by it.
    fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// Whether the server has TLS on (a cluster started by an older `prepare` has not).
    fn speaks_tls(&self, url: &str) -> bool {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-d", url, "-c", "show ssl"])
            .output()
            .is_ok_and(|output| output.status.success() && output.stdout.starts_with(b"on"))
    }

    /// Makes the test CA and the server certificate with the `openssl` program, once.
    fn make_certificates(&self) -> Result<(), String> {
        let tls = self.tls_dir();
        if tls.join("server.crt").exists() && tls.join("ca.crt").exists() {
            return Ok(());
        }
        fs::create_dir_all(&tls).map_err(|e| format!("cannot create {}: {e}", tls.display()))?;
        println!(
            "==> prepare: a test CA and a TLS certificate in {}",
            tls.display()
        );
        fs::write(
            tls.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| format!("cannot write {}/server.ext: {e}", tls.display()))?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let openssl = |args: &[&str]| -> Result<(), String> {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&tls)
                .output()
                .map_err(|e| {
                    format!("cannot run openssl (install it: apt-get install openssl): {e}")
                })?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`openssl {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        };
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "3650",
            "-subj",
            "/CN=inmoment test CA",
        ];
        ca.extend_from_slice(&ec);
        ca.extend_from_slice(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&ca)?;
        let mut csr = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ];
        csr.extend_from_slice(&ec);
        openssl(&csr)?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ])?;
        // The server refuses a key others may read.
        fs::set_permissions(tls.join("server.key"), fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot chmod {}/server.key: {e}", tls.display()))
    }

    /// Whether `select 1` succeeds on `url`: the cheap check that lets a second
    /// `prepare` reuse the server.
    fn answers(&self, url: &str) -> bool {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-d", url, "-c", "select 1"])
            .env("PGCONNECT_TIMEOUT", "3")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// `pg_ctl status` says running (exit 0); not running is 3, no data directory 4.
    fn is_running(&self) -> bool {
        self.data().join("PG_VERSION").exists()
            && path_text(&self.data()).is_ok_and(|data| {
                self.output("pg_ctl", &["-D", &data, "status"])
                    .is_ok_and(|output| output.status.success())
            })
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = path_text(&self.data())?;
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.server_program("pg_ctl", &all)
    }

    /// Creates the directory and, as root, hands it to the server user and makes its
    /// parents traversable for that user.
    fn prepare_dir(&self) -> Result<(), String> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        self.make_certificates()?;
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let dir = path_text(&self.dir)?;
        system("chown", &["-R", &format!("{user}:"), &dir])?;
        for parent in self.dir.ancestors().skip(1) {
            let metadata = fs::metadata(parent)
                .map_err(|e| format!("cannot read {}: {e}", parent.display()))?;
            let mode = metadata.permissions().mode();
            if mode & 0o001 == 0 {
                println!(
                    "==> prepare: chmod o+x {} (the {user} user must reach target/postgres)",
                    parent.display()
                );
                fs::set_permissions(parent, fs::Permissions::from_mode(mode | 0o001))
                    .map_err(|e| format!("cannot chmod o+x {}: {e}", parent.display()))?;
            }
        }
        Ok(())
    }

    /// The unix socket directory, or '' (TCP only) when the socket path would be too
    /// long for the kernel or the path needs quoting in the server's options.
    fn socket_dir(&self) -> String {
        let dir = self.dir.display().to_string();
        let plain = dir
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        // The socket file is `.s.PGSQL.<port>`: at most 15 bytes, plus the slash.
        if plain && dir.len() + 16 <= MAX_SOCKET_PATH {
            dir
        } else {
            String::new()
        }
    }

    /// Runs initdb or pg_ctl, as the server user when we are root.
    fn server_program(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let output = self.output(name, args)?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "`{name} {}` failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    fn output(&self, name: &str, args: &[&str]) -> Result<Output, String> {
        let program = self.bin.join(name);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        // The server user may not be allowed into the caller's directory.
        command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))
    }

    /// The end of the server log, for an error message.
    fn log_tail(&self) -> String {
        let log = self.dir.join("log");
        match fs::read_to_string(&log) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                format!("last lines of {}:\n{tail}", log.display())
            }
            Err(_) => format!("(no server log at {})", log.display()),
        }
    }
}

/// The directory with initdb and pg_ctl: Debian's `/usr/lib/postgresql/<highest version>/bin`,
/// else the PATH.
fn bin_dir() -> Result<PathBuf, String> {
    let debian = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = debian {
        return Ok(bin);
    }
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .ok_or_else(|| {
            "no PostgreSQL server programs (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on \
             PATH: install PostgreSQL (`apt-get install postgresql`), or run `.ci/run`"
                .to_string()
        })
}

fn is_root() -> Result<bool, String> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("cannot run `id -u`: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// The unprivileged user for initdb and postgres: `postgres` if it exists, else
/// `inmoment-pg`, created on first use.
fn server_user() -> Result<String, String> {
    let exists = |user: &str| {
        Command::new("id")
            .args(["-u", user])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if exists("postgres") {
        return Ok("postgres".to_string());
    }
    if !exists(FALLBACK_USER) {
        println!(
            "==> prepare: creating system user {FALLBACK_USER} to run PostgreSQL (it refuses root)"
        );
        system("useradd", &["--system", "--no-create-home", FALLBACK_USER])?;
    }
    Ok(FALLBACK_USER.to_string())
}

/// A TCP port free on 127.0.0.1 now; the server takes it a moment later.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a port on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| format!("cannot read the bound port: {e}"))
}

fn path_text(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not UTF-8: move the checkout", path.display()))
}

fn system(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Cluster;
    use std::path::PathBuf;

    fn socket_dir(dir: &str) -> String {
        Cluster {
            dir: PathBuf::from(dir),
            bin: PathBuf::new(),
            run_as: None,
        }
        .socket_dir()
    }

    #[test]
    fn socket_only_for_short_plain_paths() {
        assert_eq!(
            socket_dir("/work/x/target/postgres"),
            "/work/x/target/postgres"
        );
        assert_eq!(
            socket_dir(&format!("/{}/target/postgres", "a".repeat(80))),
            ""
        );
        assert_eq!(socket_dir("/work/my project/target/postgres"), "");
        assert_eq!(socket_dir("/work/it's/target/postgres"), "");
    }
}
