//! The one HTTP transport every connector's client configures: it paces a prepared request
//! through the connection's bucket ([`crate::pacing`]), sends it (host policy first),
//! classifies a failed answer with the system's own classifier (its `error.rs`), scrubs
//! secrets from every message, honours a capped `Retry-After`, and retries only what is
//! safe to repeat.
//!
//! # Which requests are retried
//!
//! An idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, or any request the caller marks
//! idempotent, e.g. a token request or a POST carrying the vendor's idempotency key) is
//! retried on any retryable error, as the [`RetryPolicy`] allows.
//!
//! A request that is not idempotent (a POST that creates, a PATCH) is retried only when it
//! certainly did not take effect: the connection could not be made (nothing was sent), or
//! the vendor refused it before processing it (a rate-limit refusal, or 503 with
//! `Retry-After`). After a timeout, a broken connection, a 5xx or a 408 its outcome is
//! unknown: it is returned at once as kind `Transient` with `retryable = false` (see
//! [`outcome_unknown`]) and a message saying so, so that the caller searches for a
//! duplicate before sending it again, and the work queue does not redeliver it blindly.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::SecretString;
use url::Url;

use crate::hosts::HostPolicy;
use crate::http::{self, RetryPolicy, Settings};
use crate::pacing::{self, Pacer, Rate, Usage};

/// The shortest secret scrubbed from messages: replacing a letter or two would garble
/// every message while hiding nothing.
pub const MIN_SCRUBBED_LEN: usize = 6;

/// What the message of a request whose outcome is unknown ends with.
pub const OUTCOME_UNKNOWN_NOTE: &str =
    "it may have been carried out, so it is not repeated: look for a duplicate before sending it again";

/// A prepared request: everything the transport needs to send it, and send it again.
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The full URL, query included.
    pub url: Url,
    /// Headers, authentication included (mark secret values sensitive: they are scrubbed).
    pub headers: HeaderMap,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// Whether sending it twice has the effect of sending it once (see the module doc).
    pub idempotent: bool,
    /// What the request is, for messages: an endpoint path such as `/company/companies`.
    pub endpoint: String,
    /// A timeout for this request instead of the client's [`http::REQUEST_TIMEOUT`].
    pub timeout: Option<Duration>,
}

impl Request {
    /// A request of `method` to `url`; idempotent as the method is (GET, HEAD, PUT, DELETE,
    /// OPTIONS are; POST and PATCH are not).
    pub fn new(method: Method, url: Url, endpoint: impl Into<String>) -> Self {
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS);
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            idempotent,
            endpoint: endpoint.into(),
            timeout: None,
        }
    }

    /// A GET of `url`.
    pub fn get(url: Url, endpoint: impl Into<String>) -> Self {
        Self::new(Method::GET, url, endpoint)
    }

    /// With one more header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// With a body of `content_type`.
    pub fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.body = Some(body.into());
        self
    }

    /// Marked idempotent or not, whatever the method (a token request, a create carrying
    /// the vendor's idempotency key).
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// With its own timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("idempotent", &self.idempotent)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A successful (2xx) answer.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, unparsed.
    pub body: Vec<u8>,
}

/// A non-success answer, as a system's classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    /// The status.
    pub status: u16,
    /// The `Retry-After` the system sent, if readable.
    pub retry_after: Option<Duration>,
    /// The `Content-Type`, if readable.
    pub content_type: Option<&'a str>,
    /// All headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
    /// The request's endpoint, for the message.
    pub endpoint: &'a str,
}

/// A system's classification of a failed answer into a [`ConnectorError`] (kind by status,
/// then the vendor's own code overriding it, the code kept in [`ConnectorError::code`]).
/// Each system's lives in its `error.rs`; closures work too.
pub trait Classify: Send + Sync {
    /// The error for `failure`.
    fn classify(&self, failure: &Failure<'_>) -> ConnectorError;
}

impl<F> Classify for F
where
    F: Fn(&Failure<'_>) -> ConnectorError + Send + Sync,
{
    fn classify(&self, failure: &Failure<'_>) -> ConnectorError {
        self(failure)
    }
}

/// Reads a vendor's budget usage from an answer's headers (e.g. Salesforce
/// `Sforce-Limit-Info`).
pub type UsageHeader = fn(&HeaderMap) -> Option<Usage>;

/// What a system tells the transport about its limits (constants in the system's folder).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The rate to pace at unless [`Settings::pacing`] says otherwise.
    pub rate: Rate,
    /// How to read the vendor's usage header, when it sends one.
    pub usage: Option<UsageHeader>,
}

/// The transport of one connection. `Debug` never shows a secret.
#[derive(Clone)]
pub struct Transport {
    system: System,
    http: reqwest::Client,
    hosts: HostPolicy,
    pacer: Option<Arc<Pacer>>,
    usage: Option<UsageHeader>,
    secrets: Vec<SecretString>,
    /// The connector's request count ([`Settings::calls`]).
    calls: http::CallCounter,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("system", &self.system)
            .field("pacing", &self.pacer.as_ref().map(|p| p.current()))
            .finish_non_exhaustive()
    }
}

/// How far a failed attempt got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reached {
    /// Nothing was sent (the connection could not be made, or the request was refused here).
    No,
    /// The server may have received it; no answer says what it did.
    Maybe,
    /// The server answered this status.
    Answered(u16),
}

impl Transport {
    /// The transport of one connection of `system`, named `connection` (its base URL and
    /// account: connectors of the same connection share one pacing bucket), paced as
    /// `settings.pacing` says given the system's `limits`.
    pub fn new(system: System, http: reqwest::Client, settings: &Settings, connection: &str, limits: Limits) -> Self {
        let pacer = settings.pacing.rate(limits.rate).map(|rate| pacing::shared(system, connection, rate));
        Self {
            system,
            http,
            hosts: settings.hosts(),
            pacer,
            usage: limits.usage,
            secrets: Vec::new(),
            calls: settings.calls.clone(),
        }
    }

    /// Also scrubs `secret` from every message (values shorter than [`MIN_SCRUBBED_LEN`]
    /// are left alone).
    pub fn scrubbing(mut self, secret: &SecretString) -> Self {
        if secret.expose().trim().len() >= MIN_SCRUBBED_LEN {
            self.secrets.push(secret.clone());
        }
        self
    }

    /// The system.
    pub fn system(&self) -> System {
        self.system
    }

    /// The connection's pacing bucket, when pacing is on.
    pub fn pacer(&self) -> Option<&Arc<Pacer>> {
        self.pacer.as_ref()
    }

    /// Sends `request` until it succeeds, fails for good, or may not be repeated (module
    /// doc), waiting as `policy` says between attempts. A failed answer is classified by
    /// `classify`; every error is scrubbed of secrets.
    pub async fn send(
        &self,
        request: &Request,
        policy: &RetryPolicy,
        classify: &dyn Classify,
    ) -> Result<Answer, ConnectorError> {
        http::send_with_retry(policy, || async {
            self.attempt(request, policy, classify).await.map_err(|e| self.scrub_for(e, request))
        })
        .await
        .map_err(|e| self.scrub_for(e, request))
    }

    /// One attempt, its error already marked not retryable when repeating it is unsafe.
    async fn attempt(
        &self,
        request: &Request,
        policy: &RetryPolicy,
        classify: &dyn Classify,
    ) -> Result<Answer, ConnectorError> {
        let (err, reached) = match self.exchange(request, policy, classify).await {
            Ok(answer) => return Ok(answer),
            Err(failed) => failed,
        };
        if !err.retryable || request.idempotent || may_repeat(reached, &err) {
            return Err(err);
        }
        Err(outcome_unknown_error(err))
    }

    async fn exchange(
        &self,
        request: &Request,
        policy: &RetryPolicy,
        classify: &dyn Classify,
    ) -> Result<Answer, (ConnectorError, Reached)> {
        let system = self.system;
        let what = format!("requesting {}", request.endpoint);
        self.hosts.check_url(&request.url).map_err(|refused| (refused.into_error(system, "host"), Reached::No))?;
        if let Some(pacer) = &self.pacer {
            self.paced(pacer, request).await.map_err(|e| (e, Reached::No))?;
        }
        let mut builder =
            self.http.request(request.method.clone(), request.url.clone()).headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        if let Some(timeout) = request.timeout {
            builder = builder.timeout(timeout);
        }
        http::note_host(&request.url);
        self.calls.sent();
        let response = builder.send().await.map_err(|e| {
            let reached = if e.is_connect() || e.is_builder() || crate::hosts::refusal_in(&e).is_some() {
                Reached::No
            } else {
                Reached::Maybe
            };
            (http::transport_error(system, &e, &what), reached)
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let (Some(pacer), Some(read)) = (&self.pacer, self.usage)
            && let Some(usage) = read(&headers)
        {
            pacer.usage(usage);
        }
        let body = response.bytes().await.map_err(|e| {
            let what = format!("reading {}", request.endpoint);
            (http::transport_error(system, &e, &what), Reached::Maybe)
        })?;
        if (200..300).contains(&status) {
            if let Some(pacer) = &self.pacer {
                pacer.answered();
            }
            return Ok(Answer { status, headers, body: body.to_vec() });
        }
        let retry_after = http::retry_after(&headers);
        let content_type = http::content_type(&headers);
        let failure = Failure {
            status,
            retry_after,
            content_type: content_type.as_deref(),
            headers: &headers,
            body: &body,
            endpoint: &request.endpoint,
        };
        let err = classify.classify(&failure);
        if let Some(pacer) = &self.pacer {
            if err.kind == ErrorKind::RateLimited || status == 429 {
                pacer.throttled(err.retry_after.map(|wait| wait.min(policy.max_retry_after)));
            } else {
                pacer.answered();
            }
        }
        Err((err, Reached::Answered(status)))
    }

    /// Waits for the connection's next slot. Inside a credential check, a slot later than
    /// the check can wait fails at once (a rate-limited connection is paused).
    async fn paced(&self, pacer: &Pacer, request: &Request) -> Result<(), ConnectorError> {
        let now = tokio::time::Instant::now();
        let at = pacer.reserve_at(now);
        if let Some(left) = http::check_time_left()
            && at.saturating_duration_since(now) >= left
        {
            let mut err = ConnectorError::new(
                self.system,
                ErrorKind::RateLimited,
                format!(
                    "requests to {} are paused by a rate limit for {} s more, longer than a credential check waits; try again later",
                    request.url.host_str().unwrap_or("the host"),
                    at.saturating_duration_since(now).as_secs().max(1)
                ),
            );
            err.retryable = false;
            return Err(err);
        }
        tokio::time::sleep_until(at).await;
        pacer.sent_at(tokio::time::Instant::now());
        Ok(())
    }

    /// `err` with every secret, and every sensitive header value of `request`, replaced.
    fn scrub_for(&self, err: ConnectorError, request: &Request) -> ConnectorError {
        let sensitive = request.headers.values().filter(|v| v.is_sensitive()).filter_map(|v| v.to_str().ok());
        let mut values: Vec<String> = self.secrets.iter().map(|s| s.expose().trim().to_string()).collect();
        for value in sensitive {
            values.push(value.to_string());
            if let Some((_scheme, token)) = value.split_once(' ') {
                values.push(token.trim().to_string());
            }
        }
        scrub(err, &values)
    }

    /// `err` with every configured secret replaced by `***`.
    pub fn scrub(&self, err: ConnectorError) -> ConnectorError {
        let values: Vec<String> = self.secrets.iter().map(|s| s.expose().trim().to_string()).collect();
        scrub(err, &values)
    }
}

/// `err` with each of `values` (at least [`MIN_SCRUBBED_LEN`] long) replaced by `***` in its
/// message and code, longest first so a secret inside another is not left half shown.
pub fn scrub(mut err: ConnectorError, values: &[String]) -> ConnectorError {
    let mut values: Vec<&str> = values.iter().map(String::as_str).filter(|v| v.len() >= MIN_SCRUBBED_LEN).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        if err.message.contains(value) {
            err.message = err.message.replace(value, "***");
        }
        if let Some(code) = err.code.as_mut().filter(|c| c.contains(value)) {
            *code = code.replace(value, "***");
        }
    }
    err
}

/// Whether a request that is not idempotent may be sent again after `err`: only when it
/// certainly was not carried out.
fn may_repeat(reached: Reached, err: &ConnectorError) -> bool {
    match reached {
        Reached::No => true,
        Reached::Maybe => false,
        Reached::Answered(status) => {
            err.kind == ErrorKind::RateLimited || status == 429 || (status == 503 && err.retry_after.is_some())
        }
    }
}

fn outcome_unknown_error(mut err: ConnectorError) -> ConnectorError {
    err.kind = ErrorKind::Transient;
    err.retryable = false;
    err.message = format!("{}; {OUTCOME_UNKNOWN_NOTE}", err.message);
    err
}

/// Whether `err` is a request that is not idempotent whose outcome is unknown (it timed out
/// or failed after it may have been carried out): kind `Transient` but not retryable. The
/// caller searches for a duplicate before sending it again.
pub fn outcome_unknown(err: &ConnectorError) -> bool {
    err.outcome_unknown()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind, status: Option<u16>, retry_after: Option<Duration>) -> ConnectorError {
        let mut e = ConnectorError::new(System::Halo, kind, "x");
        e.status = status;
        e.retry_after = retry_after;
        e
    }

    #[test]
    fn a_create_is_repeated_only_when_it_certainly_was_not_carried_out() {
        let wait = Some(Duration::from_secs(1));
        assert!(may_repeat(Reached::No, &err(ErrorKind::Unreachable, None, None)), "never sent");
        assert!(may_repeat(Reached::Answered(429), &err(ErrorKind::RateLimited, Some(429), wait)));
        assert!(may_repeat(Reached::Answered(403), &err(ErrorKind::RateLimited, Some(403), None)), "limit code");
        assert!(may_repeat(Reached::Answered(503), &err(ErrorKind::Transient, Some(503), wait)));
        assert!(!may_repeat(Reached::Answered(503), &err(ErrorKind::Transient, Some(503), None)));
        assert!(!may_repeat(Reached::Answered(500), &err(ErrorKind::Transient, Some(500), None)));
        assert!(!may_repeat(Reached::Maybe, &err(ErrorKind::Transient, None, None)), "timed out");
    }

    #[test]
    fn an_unknown_outcome_is_transient_not_retryable_and_says_to_look_for_a_duplicate() {
        let e = outcome_unknown_error(err(ErrorKind::Transient, Some(500), None));
        assert!(outcome_unknown(&e));
        assert!(e.message.ends_with(OUTCOME_UNKNOWN_NOTE), "{}", e.message);
        assert!(!outcome_unknown(&err(ErrorKind::Transient, Some(500), None)));
    }

    #[test]
    fn methods_are_idempotent_as_http_defines_them() {
        let url = Url::parse("https://x.example.com/a").unwrap();
        for (m, yes) in [(Method::GET, true), (Method::PUT, true), (Method::POST, false), (Method::PATCH, false)] {
            assert_eq!(Request::new(m.clone(), url.clone(), "/a").idempotent, yes, "{m}");
        }
        assert!(Request::new(Method::POST, url, "/token").idempotent(true).idempotent);
    }

    #[test]
    fn secrets_are_scrubbed_from_message_and_code_longest_first_and_short_ones_left() {
        let mut e = err(ErrorKind::Invalid, Some(400), None);
        e.message = "bad key abcdef-123456 (abcdef) for x".into();
        e.code = Some("abcdef-123456".into());
        let e = scrub(e, &["abcdef".into(), "abcdef-123456".into(), "x".into()]);
        assert_eq!(e.message, "bad key *** (***) for x");
        assert_eq!(e.code.as_deref(), Some("***"));
    }
}
