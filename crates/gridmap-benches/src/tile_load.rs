//! `gridmap-bench tile-load`: requests every path of a list exactly once over
//! N keep-alive HTTP/1.1 connections and prints throughput and latency
//! percentiles. wrk and oha run for a duration or pick URLs at random, while a
//! cold-cache measurement must ask for each tile once and stop.
//!
//! With `--rate R` the load is open-loop: request `i` is due at `i / R`
//! seconds after the start, whether or not earlier answers have come back,
//! and its latency counts from when it was due, or, when the connection was
//! idle and waited for that moment, from when the timer woke it (tokio's
//! timer ticks in milliseconds, which would add up to a millisecond of the
//! load generator's own lateness to every answer). A closed loop (wrk, or this
//! tool without a rate) saturates the server, where latency is only the
//! queue length over the throughput (Little's law); a fixed offered rate
//! measures the latency a caller sees at that load, including time spent
//! waiting for a free connection (no coordinated omission).

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    body_bytes: u64,
    not_ok: u64,
}

/// Prints `tiles_per_s p50_ms p99_ms requests mean_body_bytes non_200`.
pub async fn run(
    address: &str,
    prefix: &str,
    list: &std::path::Path,
    connections: usize,
    accept_encoding: &str,
    rate: Option<f64>,
) -> anyhow::Result<()> {
    if let Some(rate) = rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of requests per second, got {rate}"
        );
    }
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("reading the tile list {}", list.display()))?;
    let paths: Arc<Vec<String>> = Arc::new(
        text.lines()
            .filter(|line| !line.is_empty())
            .map(|line| format!("{prefix}{line}"))
            .collect(),
    );
    anyhow::ensure!(!paths.is_empty(), "the tile list is empty");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (paths, next) = (paths.clone(), next.clone());
        let (address, accept_encoding) = (address.to_owned(), accept_encoding.to_owned());
        tasks.push(tokio::spawn(async move {
            drive(
                &address,
                &paths,
                &next,
                &accept_encoding,
                rate.map(|rate| (started, rate)),
            )
            .await
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.context("a connection task panicked")??;
        total.latencies.extend(tally.latencies);
        total.body_bytes += tally.body_bytes;
        total.not_ok += tally.not_ok;
    }
    let elapsed = started.elapsed();
    total.latencies.sort_unstable();
    let percentile = |p: f64| {
        // Nearest rank; the list is non-empty.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within the list's length"
        )]
        let rank =
            ((p * total.latencies.len() as f64).ceil() as usize).clamp(1, total.latencies.len());
        total.latencies[rank - 1].as_secs_f64() * 1e3
    };
    let n = total.latencies.len();
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let (rate, mean_bytes) = (
        n as f64 / elapsed.as_secs_f64(),
        total.body_bytes as f64 / n as f64,
    );
    writeln!(
        std::io::stdout().lock(),
        "{rate:.1} {:.2} {:.2} {n} {mean_bytes:.0} {}",
        percentile(0.5),
        percentile(0.99),
        total.not_ok
    )?;
    Ok(())
}

/// One keep-alive connection taking paths from the shared list until it runs
/// out; with `schedule` (start, requests/s) each request waits until it is
/// due and its latency counts from then.
async fn drive(
    address: &str,
    paths: &[String],
    next: &AtomicUsize,
    accept_encoding: &str,
    schedule: Option<(Instant, f64)>,
) -> anyhow::Result<Tally> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
    tokio::spawn(connection);
    let mut tally = Tally::default();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = paths.get(index) else {
            return Ok(tally);
        };
        let request = hyper::Request::get(path.as_str())
            .header(hyper::header::HOST, address)
            .header(hyper::header::ACCEPT_ENCODING, accept_encoding)
            .body(Empty::<Bytes>::new())
            .context("building a request")?;
        let sent = match schedule {
            Some((start, rate)) => {
                #[expect(clippy::cast_precision_loss, reason = "indices far below 2^52")]
                let due = start + Duration::from_secs_f64(index as f64 / rate);
                if Instant::now() < due {
                    // tokio's timer wakes on millisecond ticks, up to a
                    // millisecond after `due`: that lateness is the load
                    // generator's, so the clock starts when it wakes.
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                } else {
                    // Behind schedule because this connection's previous
                    // answer came late: the wait counts against the server
                    // (no coordinated omission).
                    due
                }
            }
            None => Instant::now(),
        };
        sender.ready().await.context("connection closed")?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading {path}"))?
            .to_bytes();
        tally.latencies.push(sent.elapsed());
        tally.body_bytes += body.len() as u64;
        if status != hyper::StatusCode::OK {
            tally.not_ok += 1;
        }
    }
}
