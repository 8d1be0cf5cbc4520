//! Syncro failures -> [`ConnectorError`]: the error bodies (`{error}`, `{message}`,
//! `{errors}`; psa-apis.md 3.2, 3.5) read into a clear message, the status classified once
//! (via [`crate::http::kind_for_status`]) plus the Syncro-specific rules below.

use std::time::Duration;

use serde_json::Value;
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};

use super::models::ErrorBody;
use crate::http;
use crate::transport::{Classify, Failure};

/// The classifier the transport uses for Syncro answers: [`from_response`] for the
/// connection's API root.
#[derive(Clone, Copy, Debug)]
pub struct Api<'a> {
    /// The API root of the connection.
    pub root: &'a str,
}

impl Classify for Api<'_> {
    fn classify(&self, f: &Failure<'_>) -> ConnectorError {
        let ctx = Context { root: self.root, endpoint: f.endpoint };
        from_response(f.status, f.retry_after, f.content_type, f.body, ctx)
    }
}

/// How long to wait after a 429 that carries no `Retry-After`. UNCONFIRMED (psa-apis.md
/// 3.7: whether Syncro sends the header is unknown). The limit is 180 requests a minute,
/// so a fifth of the window is a sensible pause; the retry policy's `max_retry_after` caps it.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(12);

/// What a failed request was about, so the message can say it.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The API root of the connection, e.g. `https://acme.syncromsp.com/api/v1`.
    pub root: &'a str,
    /// The endpoint path asked for, e.g. `/customers`.
    pub endpoint: &'a str,
}

/// The error for a non-success answer: kind by status (401 Unauthorized, 403 Forbidden,
/// 404 NotFound, 429 RateLimited, 408/5xx Transient, other 4xx Invalid), the body summarised.
///
/// Syncro-specific rules: a 401 whose body asks to "update your group permissions" (sample
/// `contact_401_permission.json`) is Forbidden, not a bad token; a 429 without
/// `Retry-After` waits [`DEFAULT_RATE_LIMIT_WAIT`]. A body that is not Syncro's error object
/// is quoted only as [`http::excerpt`].
pub fn from_response(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
    ctx: Context<'_>,
) -> ConnectorError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let detail = match &parsed {
        Some(b) if b.error.is_some() || b.message.is_some() || b.errors.is_some() => http::sanitise(&summarise(b)),
        _ => http::excerpt(content_type, body),
    };
    let permission = status == 401 && detail.to_lowercase().contains("permission");
    let kind = if permission { ErrorKind::Forbidden } else { http::kind_for_status(status) };
    let retry_after = match kind {
        ErrorKind::RateLimited => Some(retry_after.unwrap_or(DEFAULT_RATE_LIMIT_WAIT)),
        _ => retry_after,
    };
    let answer = match detail.is_empty() {
        true => format!("{status} {}", reason(status)),
        false => format!("{status} {}: {detail}", reason(status)),
    };
    let Context { root, endpoint } = ctx;
    let message = match kind {
        ErrorKind::Unauthorized => format!("Syncro rejected the API token for {root} ({answer})"),
        ErrorKind::Forbidden => format!(
            "the Syncro API token may not use {endpoint}; give the token the permission in Admin > API tokens ({answer})"
        ),
        ErrorKind::NotFound => format!("Syncro has no {endpoint} at {root} ({answer})"),
        ErrorKind::RateLimited => format!(
            "Syncro is rate limiting {endpoint} (180 requests a minute), retry after {}s ({answer})",
            retry_after.unwrap_or(DEFAULT_RATE_LIMIT_WAIT).as_secs()
        ),
        ErrorKind::Transient => format!("Syncro failed on {endpoint} ({answer})"),
        ErrorKind::Invalid | ErrorKind::UnknownAccount | ErrorKind::Unreachable => {
            format!("Syncro refused {endpoint} ({answer})")
        }
    };
    let mut err = ConnectorError::new(System::Syncro, kind, message);
    err.status = Some(status);
    err.retry_after = retry_after;
    err
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Array(items) => items.iter().map(text_of).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `error; message; errors` of an error body, blank parts left out.
pub fn summarise(body: &ErrorBody) -> String {
    [&body.error, &body.message, &body.errors]
        .into_iter()
        .flatten()
        .map(text_of)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context<'static> = Context { root: "https://acme.syncromsp.com/api/v1", endpoint: "/contacts" };

    fn err(status: u16, body: &str) -> ConnectorError {
        from_response(status, None, Some("application/json; charset=utf-8"), body.as_bytes(), CTX)
    }

    #[test]
    fn each_status_gets_its_kind_and_retryability() {
        for (status, kind, retryable) in [
            (400, ErrorKind::Invalid, false),
            (401, ErrorKind::Unauthorized, false),
            (403, ErrorKind::Forbidden, false),
            (404, ErrorKind::NotFound, false),
            (422, ErrorKind::Invalid, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Transient, true),
            (503, ErrorKind::Transient, true),
        ] {
            let e = err(status, r#"{"error":"x"}"#);
            assert_eq!((e.kind, e.retryable, e.status), (kind, retryable, Some(status)), "{status}");
        }
    }

    #[test]
    fn the_permission_sample_is_forbidden_not_a_bad_token() {
        let e = err(401, include_str!("../../tests/fixtures/syncro_contact_401_permission.json"));
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(
            e.message.contains("update your group permissions") && e.message.contains("/contacts"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_validation_sample_lists_every_message() {
        let e = err(422, include_str!("../../tests/fixtures/syncro_customer_create_422.json"));
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("Email is not an email; Email Only able to parse up to"), "{}", e.message);
    }

    #[test]
    fn a_rate_limit_without_retry_after_waits_the_default() {
        let e = from_response(429, None, None, b"", CTX);
        assert_eq!(e.retry_after, Some(DEFAULT_RATE_LIMIT_WAIT));
        let e = from_response(429, Some(Duration::from_secs(3)), None, b"", CTX);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn an_html_body_is_never_quoted_and_other_text_only_short_on_one_line() {
        let page = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let e = err(502, &page);
        let html = format!("502 Bad Gateway: an HTML page ({} bytes)", page.len());
        assert!(e.message.contains(&html) && !e.message.contains("<body>"), "{}", e.message);
        let text = format!("Rack\r\n  error {}", "y".repeat(5000));
        let e = from_response(500, None, Some("text/plain"), text.as_bytes(), CTX);
        assert!(e.message.contains("500 Internal Server Error: Rack error yyy"), "{}", e.message);
        assert!(e.message.len() < 400, "{}", e.message);
    }
}
