//! The HTTP layer every connector shares: one reqwest client, settings, retry with
//! exponential backoff honouring `Retry-After`, and the status / transport -> [`ErrorKind`]
//! classification (classified once, here, near the wire).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// How long establishing a TCP/TLS connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one whole request (including reading the body) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest page any of the systems serves (ConnectWise: psa-apis.md 1.5).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How requests are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first backoff delay; each later one doubles, plus jitter.
    pub base_delay: Duration,
    /// No wait is longer than this, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 6, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The same policy with at most `attempts` attempts (used where a user is waiting).
    pub fn capped(self, attempts: u32) -> Self {
        Self { max_attempts: self.max_attempts.min(attempts).max(1), ..self }
    }

    /// The wait before the next attempt after `err`: the system's `Retry-After` (capped by
    /// `max_delay`) when it gave one, else `backoff`.
    fn delay_for(&self, err: &ConnectorError, backoff: Duration) -> Duration {
        match err.retry_after {
            Some(wait) => wait.min(self.max_delay),
            None => backoff.min(self.max_delay),
        }
    }
}

/// Settings shared by every connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Records asked for per page (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub page_size: u32,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self { page_size: MAX_PAGE_SIZE, retry: RetryPolicy::default() }
    }
}

impl Settings {
    /// The page size actually sent: at least 1, at most [`MAX_PAGE_SIZE`].
    pub fn effective_page_size(&self) -> u32 {
        self.page_size.clamp(1, MAX_PAGE_SIZE)
    }
}

/// Builds the one reqwest client all connectors share (rustls, connect and request timeouts).
pub fn build_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_backend_rustls()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Runs `op` until it succeeds, fails with an error that is not `retryable`, or the
/// policy's attempts run out. Waits exponentially longer (with jitter) between attempts,
/// or exactly the error's `retry_after` (capped by `max_delay`) when it carries one.
pub async fn send_with_retry<T, F, Fut>(policy: &RetryPolicy, op: F) -> Result<T, ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ConnectorError>>,
{
    let retries = policy.max_attempts.saturating_sub(1) as usize;
    let backoff = ExponentialBuilder::new()
        .with_min_delay(policy.base_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(retries)
        .with_jitter()
        .with_jitter_seed(jitter_seed());
    op.retry(backoff)
        .when(|e: &ConnectorError| e.retryable)
        .adjust(|e: &ConnectorError, next: Option<Duration>| next.map(|d| policy.delay_for(e, d)))
        .notify(|e: &ConnectorError, wait: Duration| {
            tracing::debug!(kind = ?e.kind, status = e.status, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
        })
        .await
}

/// A different jitter seed per call (backon without `std` would otherwise use a fixed one).
fn jitter_seed() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Parses a `Retry-After` value: delay seconds (`120`) or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 10.2.3), relative to `now`. A date in the
/// past means "now" (zero); anything unreadable is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let http_date =
        format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    let at = PrimitiveDateTime::parse(value, &http_date).ok()?.assume_utc();
    let now = OffsetDateTime::from(now);
    let wait = at - now;
    Some(if wait.is_negative() { Duration::ZERO } else { wait.unsigned_abs() })
}

/// The `Retry-After` of a response, if it has a readable one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// The error kind an HTTP status means, the same for every system: 401 Unauthorized,
/// 403 Forbidden, 404 NotFound, 429 RateLimited, 408 and 5xx Transient, other 4xx Invalid.
/// Success and redirect statuses reaching here are Invalid (we did not expect them).
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        408 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Invalid,
    }
}

/// An error for an HTTP answer with `status`, classified by [`kind_for_status`], keeping the
/// status and the `Retry-After` the system sent.
pub fn status_error(
    system: System,
    status: u16,
    retry_after: Option<Duration>,
    message: impl Into<String>,
) -> ConnectorError {
    let mut err = ConnectorError::new(system, kind_for_status(status), message);
    err.status = Some(status);
    err.retry_after = retry_after;
    err
}

/// An error for a request that got no HTTP answer: connect failures (refused, DNS, TLS) are
/// Unreachable and name the host; timeouts and broken connections are Transient; a request
/// we could not even build is Invalid. `what` says what we were doing.
pub fn transport_error(system: System, err: &reqwest::Error, what: &str) -> ConnectorError {
    let host = err
        .url()
        .map(|u| match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => u.as_str().to_string(),
        })
        .unwrap_or_else(|| "the host".to_string());
    let cause = root_cause(err);
    if err.is_connect() {
        ConnectorError::new(
            system,
            ErrorKind::Unreachable,
            format!("could not reach {} at {host} while {what}: {cause}", system.display_name()),
        )
    } else if err.is_timeout() {
        ConnectorError::new(system, ErrorKind::Transient, format!("{host} timed out while {what}"))
    } else if err.is_builder() {
        ConnectorError::new(system, ErrorKind::Invalid, format!("could not build the request while {what}: {cause}"))
    } else {
        ConnectorError::new(
            system,
            ErrorKind::Transient,
            format!("the connection to {host} failed while {what}: {cause}"),
        )
    }
}

/// The innermost error text of a chain (e.g. "Connection refused (os error 111)"); request
/// headers never appear in reqwest's error chain, so no secret can leak through it.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn retry_after_reads_delay_seconds() {
        assert_eq!(parse_retry_after("1", SystemTime::now()), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", SystemTime::now()), Some(Duration::from_secs(120)));
    }

    #[test]
    fn retry_after_reads_an_http_date_relative_to_now() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_767); // Sun, 06 Nov 1994 08:49:27 GMT
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_in_the_past_means_no_wait() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
    }

    #[test]
    fn unreadable_retry_after_is_ignored() {
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
        assert_eq!(parse_retry_after("-3", SystemTime::now()), None);
        assert_eq!(parse_retry_after("", SystemTime::now()), None);
    }

    #[test]
    fn statuses_map_to_the_shared_error_kinds() {
        assert_eq!(kind_for_status(401), ErrorKind::Unauthorized);
        assert_eq!(kind_for_status(403), ErrorKind::Forbidden);
        assert_eq!(kind_for_status(404), ErrorKind::NotFound);
        assert_eq!(kind_for_status(429), ErrorKind::RateLimited);
        assert_eq!(kind_for_status(408), ErrorKind::Transient);
        assert_eq!(kind_for_status(500), ErrorKind::Transient);
        assert_eq!(kind_for_status(503), ErrorKind::Transient);
        assert_eq!(kind_for_status(400), ErrorKind::Invalid);
        assert_eq!(kind_for_status(422), ErrorKind::Invalid);
    }

    #[test]
    fn only_rate_limits_and_transient_statuses_are_retryable() {
        for (status, retryable) in [(400, false), (401, false), (403, false), (404, false), (429, true), (503, true)] {
            assert_eq!(status_error(System::ConnectWise, status, None, "x").retryable, retryable, "{status}");
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(20) }
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = send_with_retry(&fast(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(status_error(System::ConnectWise, 503, None, "busy"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn non_retryable_errors_are_returned_at_once() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = send_with_retry(&fast(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status_error(System::ConnectWise, 400, None, "bad"))
        })
        .await;
        assert_eq!(out.map_err(|e| e.kind), Err(ErrorKind::Invalid));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn attempts_stop_at_the_policy_maximum() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = send_with_retry(&fast(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status_error(System::ConnectWise, 500, None, "down"))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn retry_after_is_waited_but_capped_by_the_maximum_delay() {
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let out = send_with_retry(&fast(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(status_error(System::ConnectWise, 429, Some(Duration::from_secs(3600)), "slow down"))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(out.is_ok());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(20) && waited < Duration::from_secs(2), "{waited:?}");
    }

    #[test]
    fn a_capped_policy_never_drops_below_one_attempt() {
        assert_eq!(RetryPolicy::default().capped(2).max_attempts, 2);
        assert_eq!(RetryPolicy::default().capped(0).max_attempts, 1);
        assert_eq!(fast().capped(10).max_attempts, 4);
    }

    #[test]
    fn page_size_is_clamped_to_what_the_systems_serve() {
        let s = |page_size| Settings { page_size, ..Settings::default() };
        assert_eq!(s(0).effective_page_size(), 1);
        assert_eq!(s(50).effective_page_size(), 50);
        assert_eq!(s(5000).effective_page_size(), 1000);
    }
}
