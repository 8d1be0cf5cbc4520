//! Machinery every simulator shares: the run-time knobs (rate limit, latency, injected
//! failures) and request counters, UTC timestamps in the `YYYY-MM-DDTHH:MM:SSZ` form,
//! JSON responses, and serving an axum router on 127.0.0.1 until stopped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::webhooks::Outbox;

/// How a simulator behaves under load; changeable while it runs through its handle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Authenticated requests allowed per one-second window; above it the simulator
    /// answers 429 with `Retry-After`. `None`: no limit.
    pub requests_per_second: Option<u32>,
    /// Delay added before answering every request.
    pub latency: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { requests_per_second: None, latency: Duration::ZERO }
    }
}

/// Counters of what a simulator answered since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Every request received, answered or not.
    pub requests: u64,
    /// Requests refused for bad or missing credentials (401).
    pub unauthorized: u64,
    /// Requests refused for missing rights (403).
    pub forbidden: u64,
    /// Requests answered 429 by the rate limit.
    pub throttled: u64,
    /// Requests answered with an injected failure (see `fail_next`).
    pub injected_failures: u64,
    /// Successful GETs per endpoint pattern (ids shown as `{id}`), e.g. `company/contacts`.
    pub gets_by_path: BTreeMap<String, u64>,
    /// Writes that were committed but answered with a failure (see
    /// [`Controls::lose_write_answers`]).
    #[serde(default)]
    pub lost_answers: u64,
    /// Committed API writes per method (`POST`, `PUT`, `PATCH`, `DELETE`): those answered
    /// 2xx, and those committed whose answer was lost. Refused writes are not counted.
    #[serde(default)]
    pub writes_by_method: BTreeMap<String, u64>,
}

impl SimStats {
    /// Committed API writes of every method.
    pub fn writes(&self) -> u64 {
        self.writes_by_method.values().sum()
    }
}

/// Seconds a throttled client is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// What the knobs decide for one authenticated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Answer normally.
    Allowed,
    /// Over the rate limit: answer 429.
    Throttled,
    /// An injected failure: answer with this status.
    Inject(u16),
}

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// The live knobs and counters of one running simulator.
#[derive(Debug)]
pub struct Controls {
    /// Requests per second; 0 means no limit.
    limit: AtomicU32,
    latency_micros: AtomicU64,
    fail_remaining: AtomicU32,
    fail_status: AtomicU16,
    window: Mutex<Window>,
    requests: AtomicU64,
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    throttled: AtomicU64,
    injected: AtomicU64,
    gets: Mutex<BTreeMap<String, u64>>,
    writes_by_method: Mutex<BTreeMap<String, u64>>,
    lose_every: AtomicU32,
    lose_status: AtomicU16,
    writes: AtomicU64,
    lost: AtomicU64,
    outbox: Outbox,
}

impl Controls {
    /// Knobs set from `cfg`, counters at zero.
    pub fn new(cfg: &SimConfig) -> Self {
        let c = Self {
            limit: AtomicU32::new(0),
            latency_micros: AtomicU64::new(0),
            fail_remaining: AtomicU32::new(0),
            fail_status: AtomicU16::new(500),
            window: Mutex::new(Window { started: Instant::now(), count: 0 }),
            requests: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            forbidden: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            gets: Mutex::new(BTreeMap::new()),
            writes_by_method: Mutex::new(BTreeMap::new()),
            lose_every: AtomicU32::new(0),
            lose_status: AtomicU16::new(502),
            writes: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            outbox: Outbox::default(),
        };
        c.set_requests_per_second(cfg.requests_per_second);
        c.set_latency(cfg.latency);
        c
    }

    /// Changes the rate limit (`None` or `Some(0)`: none).
    pub fn set_requests_per_second(&self, limit: Option<u32>) {
        self.limit.store(limit.unwrap_or(0), Ordering::SeqCst);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        *w = Window { started: Instant::now(), count: 0 };
    }

    /// Changes the delay added before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.latency_micros.store(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// The next `n` authenticated requests answer `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.fail_status.store(status, Ordering::SeqCst);
        self.fail_remaining.store(n, Ordering::SeqCst);
    }

    /// From now on every `every`-th successful write (POST, PUT, PATCH, DELETE) is
    /// committed but answered `status`, as when a gateway times out after the vendor
    /// saved: the client cannot tell the write happened. `every` 0 turns it off.
    pub fn lose_write_answers(&self, every: u32, status: u16) {
        self.lose_status.store(status, Ordering::SeqCst);
        self.writes.store(0, Ordering::SeqCst);
        self.lose_every.store(every, Ordering::SeqCst);
    }

    /// For a request answered `answered` (the status it was to get): the status to answer
    /// instead when it is a committed write whose answer is to be lost. Every simulator calls
    /// it for each API answer, so it also counts the committed writes per method
    /// ([`SimStats::writes_by_method`]).
    pub fn lost_answer(&self, method: &axum::http::Method, answered: u16) -> Option<u16> {
        use axum::http::Method;
        let every = u64::from(self.lose_every.load(Ordering::SeqCst));
        let write = matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
        if write && (200..300).contains(&answered) {
            let mut writes = self.writes_by_method.lock().unwrap_or_else(|e| e.into_inner());
            *writes.entry(method.as_str().to_string()).or_insert(0) += 1;
        }
        if every == 0 || !write || !(200..300).contains(&answered) {
            return None;
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if !n.is_multiple_of(every) {
            return None;
        }
        self.lost.fetch_add(1, Ordering::Relaxed);
        Some(self.lose_status.load(Ordering::SeqCst))
    }

    /// The system's outgoing webhooks: their queue, imperfect-delivery knobs and record.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Counts a received request and waits the configured latency.
    pub async fn arrive(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let micros = self.latency_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
    }

    /// Counts a request refused with 401.
    pub fn count_unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused with 403.
    pub fn count_forbidden(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a successful GET of an endpoint pattern.
    pub fn count_get(&self, pattern: &str) {
        let mut gets = self.gets.lock().unwrap_or_else(|e| e.into_inner());
        *gets.entry(pattern.to_string()).or_insert(0) += 1;
    }

    /// Decides an authenticated request: rate limit first (only admitted requests use up
    /// the window), then injected failures.
    pub fn admit(&self) -> Admission {
        let limit = self.limit.load(Ordering::SeqCst);
        if limit > 0 {
            let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if now.duration_since(w.started) >= Duration::from_secs(1) {
                w.started = now;
                w.count = 0;
            }
            if w.count >= limit {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                return Admission::Throttled;
            }
            w.count += 1;
        }
        if self.fail_remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Admission::Inject(self.fail_status.load(Ordering::SeqCst));
        }
        Admission::Allowed
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        SimStats {
            requests: self.requests.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            forbidden: self.forbidden.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            injected_failures: self.injected.load(Ordering::Relaxed),
            gets_by_path: self.gets.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            lost_answers: self.lost.load(Ordering::Relaxed),
            writes_by_method: self.writes_by_method.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// A JSON response with `Content-Type: application/json; charset=utf-8` and extra headers.
pub fn json_response(status: StatusCode, body: &impl Serialize, headers: &[(&'static str, String)]) -> Response {
    let (status, bytes) = match serde_json::to_vec(body) {
        Ok(b) => (status, b),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{{\"message\":\"cannot serialise: {e}\"}}").into_bytes())
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    resp
}

/// A response whose body is already serialised JSON.
pub fn raw_json_response(status: StatusCode, body: Vec<u8>, headers: &[(&'static str, String)]) -> Response {
    let mut resp = empty_response(status, headers);
    *resp.body_mut() = Body::from(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// An empty response (e.g. 204 after a delete) with extra headers.
pub fn empty_response(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    resp
}

/// A router served on 127.0.0.1 in a background task; stopped by [`Served::stop`] or drop.
#[derive(Debug)]
pub struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// Binds 127.0.0.1:`port` (0: any free port) and serves the router that `make`
    /// builds from the base URL (`http://127.0.0.1:PORT`). Needs a Tokio runtime.
    pub async fn start(port: u16, make: impl FnOnce(String) -> Router) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let router = make(format!("http://{addr}"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serving.await {
                tracing::warn!("simulator server stopped with an error: {e}");
            }
        });
        Ok(Served { addr, stop: Some(tx), task: Some(task) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets open requests finish (at most 5 s), then ends the task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// (year, month, day) -> days since 1970-01-01, proleptic Gregorian.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn format_unix(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYY-MM-DD` for a Unix time.
pub fn format_date(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{mo:02}-{d:02}")
}

/// True when `s` is exactly `YYYY-MM-DDTHH:MM:SSZ`: such strings order like their instants.
pub fn is_canonical_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ`, any RFC 3339 timestamp, or a bare `YYYY-MM-DD`
/// (midnight UTC) into Unix seconds.
pub fn parse_timestamp(raw: &str) -> Option<i64> {
    let s = raw.trim();
    if is_canonical_timestamp(s) {
        let n = |a: usize, b: usize| s[a..b].parse::<i64>().ok();
        let (y, mo, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
        let (h, mi, se) = (n(11, 13)?, n(14, 16)?, n(17, 19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        return Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se);
    }
    if s.len() == 10 {
        let b = s.as_bytes();
        if b[4] == b'-' && b[7] == b'-' {
            let y = s[0..4].parse::<i64>().ok()?;
            let mo = s[5..7].parse::<u32>().ok()?;
            let d = s[8..10].parse::<u32>().ok()?;
            if (1..=12).contains(&mo) && (1..=31).contains(&d) {
                return Some(days_from_civil(y, mo, d) * 86_400);
            }
            return None;
        }
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_the_canonical_text() {
        for secs in [0, 951_782_400, 1_704_067_199, 1_719_792_000, 4_102_444_800] {
            let text = format_unix(secs);
            assert!(is_canonical_timestamp(&text), "{text}");
            assert_eq!(parse_timestamp(&text), Some(secs), "{text}");
        }
        assert_eq!(format_unix(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(parse_timestamp("2024-01-01"), Some(1_704_067_200));
        assert_eq!(parse_timestamp("2024-01-01T01:00:00+01:00"), Some(1_704_067_200));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn the_rate_limit_refuses_requests_beyond_the_window() {
        let c = Controls::new(&SimConfig { requests_per_second: Some(2), latency: Duration::ZERO });
        assert_eq!(c.admit(), Admission::Allowed);
        assert_eq!(c.admit(), Admission::Allowed);
        assert_eq!(c.admit(), Admission::Throttled);
        assert_eq!(c.stats().throttled, 1);
    }

    #[test]
    fn injected_failures_run_out_after_the_requested_count() {
        let c = Controls::new(&SimConfig::default());
        c.fail_next(2, 503);
        assert_eq!(c.admit(), Admission::Inject(503));
        assert_eq!(c.admit(), Admission::Inject(503));
        assert_eq!(c.admit(), Admission::Allowed);
        assert_eq!(c.stats().injected_failures, 2);
    }
}
