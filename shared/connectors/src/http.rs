//! The HTTP pieces every connector shares: one reqwest client, settings, retry with
//! exponential backoff honouring a capped `Retry-After`, the credential check's deadline,
//! the status / transport -> [`ErrorKind`] classification, and the one way a vendor's error
//! body is quoted ([`excerpt`]). Requests themselves go through [`crate::transport`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::hosts::{GuardedResolver, HostPolicy, refusal_in};
use crate::pacing::Pacing;

/// How long establishing a TCP/TLS connection may take, per attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole request (including reading the body) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a credential check may take by default, every attempt and wait included.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(15);
/// The longest `Retry-After` honoured by default.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The largest page any of the systems serves (ConnectWise: psa-apis.md 1.5).
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The most characters of a vendor's error text quoted in a message.
pub const MAX_EXCERPT_CHARS: usize = 200;
/// The most bytes of an error body looked at for an excerpt.
const MAX_EXCERPT_SCAN: usize = 4096;
/// Redirects followed at most (reqwest's default policy allows 10 too).
const MAX_REDIRECTS: usize = 10;

/// How requests are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first backoff delay; each later one doubles, plus jitter.
    pub base_delay: Duration,
    /// No backoff wait is longer than this (a `Retry-After` is capped by `max_retry_after`).
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured: a system asking for more is retried after this
    /// long (logged), so one answer cannot park a worker for an hour.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// The same policy with at most `attempts` attempts (used where a user is waiting).
    pub fn capped(self, attempts: u32) -> Self {
        Self { max_attempts: self.max_attempts.min(attempts).max(1), ..self }
    }

    /// The wait before the next attempt after `err`: the system's `Retry-After` (capped by
    /// `max_retry_after`) when it gave one, else `backoff` (capped by `max_delay`).
    fn delay_for(&self, err: &ConnectorError, backoff: Duration) -> Duration {
        match err.retry_after {
            Some(wait) => wait.min(self.max_retry_after),
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
    /// Whether sites on private, loopback and CGNAT ranges (and `localhost`) may be called:
    /// true for the local runner, whose simulators live on loopback; the Lambda functions
    /// set false. Link-local and cloud-metadata addresses are refused either way.
    pub allow_private_hosts: bool,
    /// How long a credential check may take in all, retries and waits included.
    pub check_deadline: Duration,
    /// How requests are paced per connection: at each system's own rate (the default), at
    /// one given rate (tests, the local runner), or not at all.
    pub pacing: Pacing,
    /// Counts the requests sent with these settings: the factory gives each connector it
    /// builds a fresh counter ([`CallCounter::fresh`]), shared by its transports.
    pub calls: CallCounter,
}

/// How many requests a connector's transports sent (every attempt that went on the wire,
/// retries and token requests included). Clones share one count. Two counters compare
/// equal whatever they hold: settings compare by what they configure.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl CallCounter {
    /// A counter of its own, at 0.
    pub fn fresh() -> Self {
        Self::default()
    }

    /// Counts one request sent.
    pub fn sent(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The requests counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for CallCounter {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for CallCounter {}

impl Default for Settings {
    fn default() -> Self {
        Self {
            page_size: MAX_PAGE_SIZE,
            retry: RetryPolicy::default(),
            allow_private_hosts: true,
            check_deadline: CHECK_DEADLINE,
            pacing: Pacing::Published,
            calls: CallCounter::default(),
        }
    }
}

impl Settings {
    /// The page size actually sent: at least 1, at most [`MAX_PAGE_SIZE`].
    pub fn effective_page_size(&self) -> u32 {
        self.page_size.clamp(1, MAX_PAGE_SIZE)
    }

    /// The hosts connectors may call under these settings.
    pub fn hosts(&self) -> HostPolicy {
        HostPolicy { allow_private: self.allow_private_hosts }
    }
}

/// Builds the one reqwest client all connectors share: rustls, connect and request
/// timeouts, a DNS resolver that refuses names resolving to addresses `hosts` refuses, and
/// redirects followed only to hosts `hosts` allows.
pub fn build_client(hosts: HostPolicy) -> Result<reqwest::Client, reqwest::Error> {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        match hosts.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    reqwest::Client::builder()
        .tls_backend_rustls()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .dns_resolver(GuardedResolver { policy: hosts })
        .redirect(redirects)
        .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The `Content-Type` of an answer, if readable.
pub fn content_type(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A running credential check: its deadline, and the host last asked (named if it passes).
#[derive(Clone, Debug)]
struct CheckScope {
    deadline: tokio::time::Instant,
    limit: Duration,
    host: Arc<Mutex<String>>,
}

tokio::task_local! {
    static CHECK: CheckScope;
}

/// Remembers the host a credential check is waiting on, for the deadline's message.
pub(crate) fn note_host(url: &url::Url) {
    let _ = CHECK.try_with(|scope| {
        if let Some(host) = url.host_str() {
            *scope.host.lock().unwrap_or_else(|e| e.into_inner()) = host.to_string();
        }
    });
}

/// How long the running credential check has left, when called inside one.
pub(crate) fn check_time_left() -> Option<Duration> {
    CHECK.try_with(|scope| scope.deadline.saturating_duration_since(tokio::time::Instant::now())).ok()
}

/// `15 s`, `1.5 s`, `300 ms`.
fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        if d.subsec_millis() == 0 { format!("{} s", d.as_secs()) } else { format!("{:.1} s", d.as_secs_f64()) }
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Runs a credential check `check` within `limit` in all (every request, retry and wait
/// inside it). Past the limit it fails: "the host {host} did not answer within {limit}",
/// naming the host last asked (`host` until a request is sent). Inside, [`send_with_retry`]
/// never waits beyond the limit: a `Retry-After` longer than what is left fails at once.
/// The errors are not retryable; Unreachable is answered 503 to our caller.
pub async fn within_check_deadline<T, F>(
    system: System,
    limit: Duration,
    host: &str,
    check: F,
) -> Result<T, ConnectorError>
where
    F: Future<Output = Result<T, ConnectorError>>,
{
    let scope = CheckScope {
        deadline: tokio::time::Instant::now() + limit,
        limit,
        host: Arc::new(Mutex::new(host.to_string())),
    };
    let (deadline, last_host) = (scope.deadline, scope.host.clone());
    match tokio::time::timeout_at(deadline, CHECK.scope(scope, check)).await {
        Ok(result) => result,
        Err(_) => {
            let host = last_host.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut err = ConnectorError::new(
                system,
                ErrorKind::Unreachable,
                format!("the host {host} did not answer within {}", human(limit)),
            );
            err.retryable = false;
            Err(err)
        }
    }
}

/// The error when a credential check's host asks for a longer wait than the check has left.
fn asked_too_long(err: ConnectorError, asked: Duration) -> ConnectorError {
    let (host, limit) = CHECK
        .try_with(|scope| (scope.host.lock().unwrap_or_else(|e| e.into_inner()).clone(), scope.limit))
        .unwrap_or_else(|_| ("the host".to_string(), Duration::ZERO));
    let mut out = ConnectorError::new(
        err.system,
        err.kind,
        format!(
            "the host {host} asked us to retry after {} s, longer than a credential check waits ({}); \
             try again later",
            asked.as_secs(),
            human(limit)
        ),
    );
    out.retryable = false;
    out.status = err.status;
    out.retry_after = err.retry_after;
    out
}

/// Runs `op` until it succeeds, fails with an error that is not `retryable`, or the
/// policy's attempts run out. Waits exponentially longer (with jitter, capped by
/// `max_delay`) between attempts, or the error's `retry_after` when it carries one, capped
/// by `max_retry_after` (and logged when capped). Inside a credential check
/// ([`within_check_deadline`]) a wait that would outlast the check is not waited: the last
/// error is returned, and one that asked for that wait says so.
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
    let refused_wait: Mutex<Option<Duration>> = Mutex::new(None);
    let result = op
        .retry(backoff)
        .when(|e: &ConnectorError| e.retryable)
        .adjust(|e: &ConnectorError, next: Option<Duration>| {
            let wait = policy.delay_for(e, next?);
            if let Some(left) = check_time_left()
                && wait >= left
            {
                if let Some(asked) = e.retry_after.filter(|asked| *asked >= left) {
                    *refused_wait.lock().unwrap_or_else(|e| e.into_inner()) = Some(asked);
                }
                return None;
            }
            if let Some(asked) = e.retry_after.filter(|asked| *asked > wait) {
                tracing::warn!(
                    system = %e.system.display_name(),
                    asked_s = asked.as_secs(),
                    waited_s = wait.as_secs(),
                    "the vendor asked us to retry after {} s; waiting {} instead (max_retry_after)",
                    asked.as_secs(),
                    human(wait)
                );
            }
            Some(wait)
        })
        .notify(|e: &ConnectorError, wait: Duration| {
            tracing::debug!(kind = ?e.kind, status = e.status, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
        })
        .await;
    let refused_wait = refused_wait.into_inner().unwrap_or_else(|e| e.into_inner());
    result.map_err(|e| match refused_wait {
        Some(asked) => asked_too_long(e, asked),
        None => e,
    })
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
/// we could not even build is Invalid; a host the address policy refused (in the resolver or
/// a redirect) is UnknownAccount, as in [`crate::transport::Transport::send`]. `what` says what we were doing.
pub fn transport_error(system: System, err: &reqwest::Error, what: &str) -> ConnectorError {
    if let Some(refused) = refusal_in(err) {
        return refused.clone().into_error(system, "host");
    }
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

/// What of a vendor's error body goes into a message, the one way every connector quotes
/// one: never markup (HTML answers "an HTML page (N bytes)", XML "an XML document (N
/// bytes)"), else the text made safe by [`sanitise`]. Empty for an empty body. A vendor's
/// structured error (its JSON error fields) is read by the system's error module and
/// quoted through [`sanitise`] instead.
pub fn excerpt(content_type: Option<&str>, body: &[u8]) -> String {
    let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
    let head = String::from_utf8_lossy(&body[..body.len().min(MAX_EXCERPT_SCAN)]);
    let start = head.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let xml = (content_type.contains("xml") && !content_type.contains("html")) || start.starts_with("<?xml");
    if content_type.contains("html") || start.starts_with('<') {
        let what = if xml { "an XML document" } else { "an HTML page" };
        return format!("{what} ({} bytes)", body.len());
    }
    clean(&head, body.len() > MAX_EXCERPT_SCAN)
}

/// A vendor's text made safe to quote in one line: terminal escape sequences, control and
/// invisible formatting characters removed, whitespace collapsed, at most
/// [`MAX_EXCERPT_CHARS`] characters (then `...`).
pub fn sanitise(text: &str) -> String {
    clean(text, false)
}

fn clean(text: &str, more: bool) -> String {
    let mut plain = String::with_capacity(text.len().min(MAX_EXCERPT_SCAN));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI, the one-byte form of `ESC [`.
            '\u{9b}' => skip_until(&mut chars, |c| ('\u{40}'..='\u{7e}').contains(&c)),
            c if c.is_control() => plain.push(' '),
            '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}' => {}
            c => plain.push(c),
        }
    }
    let line = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", line[..cut].trim_end()),
        None if more && !line.is_empty() => format!("{line}..."),
        None => line,
    }
}

/// Skips an escape sequence after its `ESC`: CSI (`ESC [` ... final byte), OSC / DCS / SOS /
/// PM / APC strings (to `BEL` or `ESC \\`), or a two-character escape.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_until(chars, |c| ('\u{40}'..='\u{7e}').contains(&c)),
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || c == '\u{9c}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
        }
        _ => {}
    }
}

fn skip_until(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, last: impl Fn(char) -> bool) {
    for c in chars.by_ref() {
        if last(c) {
            break;
        }
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
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        }
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
    async fn a_retry_after_of_an_hour_is_waited_only_up_to_max_retry_after() {
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
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn a_short_retry_after_is_waited_in_full_even_beyond_the_backoff_cap() {
        let policy = RetryPolicy { max_retry_after: Duration::from_secs(1), ..fast() };
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let out = send_with_retry(&policy, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(status_error(System::Halo, 429, Some(Duration::from_millis(300)), "slow down"))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(out.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn inside_a_credential_check_a_retry_after_beyond_the_deadline_fails_at_once_and_says_so() {
        let policy = RetryPolicy { max_retry_after: Duration::from_secs(60), ..fast() };
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let out: Result<(), _> =
            within_check_deadline(System::Syncro, Duration::from_secs(5), "acme.syncromsp.com", async {
                send_with_retry(&policy, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(status_error(System::Syncro, 429, Some(Duration::from_secs(999_999)), "slow down"))
                })
                .await
            })
            .await;
        let err = out.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!((err.kind, err.retryable, err.status), (ErrorKind::RateLimited, false, Some(429)));
        assert_eq!(
            err.message,
            "the host acme.syncromsp.com asked us to retry after 999999 s, longer than a credential check waits (5 s); try again later"
        );
    }

    #[tokio::test]
    async fn a_credential_check_past_its_deadline_names_the_host_and_the_limit() {
        let started = std::time::Instant::now();
        let out: Result<(), _> =
            within_check_deadline(System::Halo, Duration::from_millis(200), "acme.halopsa.com", async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
            .await;
        let err = out.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!((err.kind, err.retryable), (ErrorKind::Unreachable, false));
        assert_eq!(err.message, "the host acme.halopsa.com did not answer within 200 ms");
    }

    #[test]
    fn an_html_error_page_is_never_quoted() {
        let page = format!("\n  <!DOCTYPE html><html><body><script>alert(1)</script>{}</body></html>", "x".repeat(500));
        assert_eq!(
            excerpt(Some("text/html; charset=utf-8"), page.as_bytes()),
            format!("an HTML page ({} bytes)", page.len())
        );
        assert_eq!(excerpt(None, page.as_bytes()), format!("an HTML page ({} bytes)", page.len()));
        assert_eq!(excerpt(Some("text/html"), b"Bad gateway"), "an HTML page (11 bytes)");
        assert_eq!(excerpt(Some("application/xml"), b"<?xml version=\"1.0\"?><e/>"), "an XML document (25 bytes)");
    }

    #[test]
    fn a_long_text_body_is_cut_to_a_short_excerpt() {
        let body = "word ".repeat(1000);
        let quoted = excerpt(Some("text/plain"), body.as_bytes());
        assert!(quoted.ends_with("...") && quoted.chars().count() <= MAX_EXCERPT_CHARS + 3, "{quoted}");
        assert!(quoted.starts_with("word word"), "{quoted}");
    }

    #[test]
    fn escape_sequences_control_characters_and_newlines_are_removed() {
        let body = "\u{1b}[31mError:\u{1b}[0m bad\r\n\tthing\u{7}\u{0}\u{1b}]0;title\u{7} here\u{202e}txt\u{9b}2Jend";
        assert_eq!(excerpt(Some("text/plain"), body.as_bytes()), "Error: bad thing heretxtend");
        assert_eq!(sanitise("  many\n\n  lines  "), "many lines");
        assert_eq!(excerpt(None, b""), "");
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
