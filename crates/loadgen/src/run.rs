//! The load loop: `connections` tasks, each on its own keep-alive HTTP/1.1 connection,
//! share a counter up to `total`; an optional offered rate paces them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::latency::Percentiles;

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub addr: std::net::SocketAddr,
    pub path: String,
    pub connections: usize,
    pub total: u64,
    /// `{{n}}` is replaced by the request number, so every body (and messageId) differs.
    pub body_template: String,
    pub headers: Vec<(String, String)>,
    /// Requests per second offered across all connections; `None` = as fast as possible.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub latency: Percentiles,
}

/// Runs the load and reports; connection errors count as failed requests.
pub async fn run(config: LoadConfig) -> std::io::Result<LoadReport> {
    let config = Arc::new(config);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.connections);
    for worker in 0..config.connections {
        let config = config.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            connection(worker, &config, &next, started).await
        }));
    }
    let mut samples = Vec::with_capacity(usize::try_from(config.total).unwrap_or(0));
    let (mut ok, mut failed) = (0, 0);
    for task in tasks {
        let (s, o, f) = task.await.map_err(std::io::Error::other)??;
        samples.extend(s);
        ok += o;
        failed += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(LoadReport {
        requests: ok + failed,
        ok,
        failed,
        seconds,
        requests_per_sec: (ok + failed) as f64 / seconds,
        latency: Percentiles::of(&mut samples),
    })
}

type Outcome = (Vec<Duration>, u64, u64);

async fn connection(
    worker: usize,
    config: &LoadConfig,
    next: &AtomicU64,
    started: Instant,
) -> std::io::Result<Outcome> {
    let mut samples = Vec::new();
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut sender = None;
    let host = config.addr.to_string();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= config.total {
            break;
        }
        if let Some(rate) = config.rate {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        if sender.is_none() {
            match connect(config.addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    failed += 1;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let body = config
            .body_template
            .replace("{{n}}", &format!("{worker}-{n}"));
        let mut request = Request::post(config.path.as_str()).header("host", host.as_str());
        for (name, value) in &config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let Ok(request) = request.body(Full::new(Bytes::from(body))) else {
            failed += 1;
            continue;
        };
        let sent = Instant::now();
        let result = async {
            let response = s.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }
        .await;
        let elapsed = sent.elapsed();
        match result {
            Ok(status) if status.as_u16() == 200 => {
                ok += 1;
                samples.push(elapsed);
            }
            Ok(_) => failed += 1,
            Err(_) => {
                failed += 1;
                sender = None;
            }
        }
    }
    Ok((samples, ok, failed))
}

async fn connect(addr: std::net::SocketAddr) -> std::io::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}
