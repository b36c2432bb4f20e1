//! `widedeep load-test`: concurrent keep-alive clients posting one body to an HTTP server for a
//! fixed time; requests/s, latency percentiles and errors. Meant for 127.0.0.1.
use crate::error::{CliError, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What a load test measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadReport {
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds the clients ran.
    pub seconds: f64,
    /// Answered requests (any status).
    pub requests: usize,
    /// Requests without a 200 answer (other status, broken connection).
    pub errors: usize,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency in milliseconds.
    pub p99_ms: f64,
}

/// Reads one HTTP response from `s` (keep-alive); returns its status.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                buf.drain(..end + 4 + len);
                return Ok(status);
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Runs `clients` threads posting `body` to `path` on `addr` for `duration`.
pub fn load_test(
    addr: SocketAddr,
    path: &str,
    body: &str,
    clients: usize,
    duration: Duration,
) -> Result<LoadReport> {
    if clients == 0 {
        return Err(CliError::Usage("--clients must be positive".into()));
    }
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let start = Instant::now();
    let deadline = start + duration;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || {
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                let mut conn: Option<TcpStream> = None;
                let mut buf = Vec::new();
                while Instant::now() < deadline {
                    if conn.is_none() {
                        match TcpStream::connect(addr) {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                                conn = Some(s);
                                buf.clear();
                            }
                            Err(_) => {
                                errors += 1;
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        }
                    }
                    let Some(s) = conn.as_mut() else { continue };
                    let t = Instant::now();
                    let status = s
                        .write_all(&request)
                        .and_then(|_| read_response(s, &mut buf));
                    match status {
                        Ok(200) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                        Ok(_) => {
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                            errors += 1;
                        }
                        Err(_) => {
                            errors += 1;
                            conn = None;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t
            .join()
            .map_err(|_| CliError::Usage("a load-test client panicked".into()))?;
        latencies.extend(l);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if latencies.is_empty() {
            f64::NAN
        } else {
            latencies[((latencies.len() - 1) as f64 * q).round() as usize]
        }
    };
    Ok(LoadReport {
        clients,
        seconds,
        requests: latencies.len(),
        errors,
        requests_per_s: latencies.len() as f64 / seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    })
}
