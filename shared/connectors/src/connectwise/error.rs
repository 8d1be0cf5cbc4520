//! ConnectWise failures -> [`ConnectorError`]: the error body `{code, message, errors[]}`
//! (psa-apis.md 1.3) read into a clear message, the status classified once (via
//! [`crate::http::kind_for_status`]) plus the ConnectWise-specific rules below.

use std::time::Duration;

use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};

use super::models::ErrorBody;
use crate::http;
use crate::transport::{Classify, Failure};

/// The classifier the transport uses for ConnectWise answers: [`from_response`] for the
/// connection's company.
#[derive(Clone, Copy, Debug)]
pub struct Api<'a> {
    /// The ConnectWise company id of the connection.
    pub company_id: &'a str,
}

impl Classify for Api<'_> {
    fn classify(&self, f: &Failure<'_>) -> ConnectorError {
        let ctx = Context { company_id: self.company_id, endpoint: f.endpoint };
        from_response(f.status, f.retry_after, f.content_type, f.body, ctx)
    }
}

/// What a failed request was about, so the message can say it.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The ConnectWise company id of the connection.
    pub company_id: &'a str,
    /// The endpoint path asked for, e.g. `/company/companies`.
    pub endpoint: &'a str,
}

/// The error for a non-success answer: kind by status (401 Unauthorized, 403 Forbidden,
/// 404 NotFound, 429 RateLimited, 408/5xx Transient, other 4xx Invalid), with the CW error
/// body summarised (anything else quoted only as [`http::excerpt`]), and the `Retry-After`
/// kept.
///
/// ConnectWise-specific rule: psa-apis.md 1.2 (S3) says a refused login may come back as
/// `code: "ConnectWiseApi", message: "UserNotAuthenticated"`; whatever its status, that is
/// Unauthorized (the status it comes with is UNCONFIRMED).
pub fn from_response(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
    ctx: Context<'_>,
) -> ConnectorError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let detail = match &parsed {
        Some(b) if b.code.is_some() || b.message.is_some() || !b.errors.is_empty() => http::sanitise(&summarise(b)),
        _ => http::excerpt(content_type, body),
    };
    let not_authenticated = parsed
        .as_ref()
        .and_then(|b| b.message.as_deref())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("UserNotAuthenticated"));
    let kind = if not_authenticated { ErrorKind::Unauthorized } else { http::kind_for_status(status) };
    let answer = match detail.is_empty() {
        true => format!("{status} {}", reason(status)),
        false => format!("{status} {}: {detail}", reason(status)),
    };
    let Context { company_id, endpoint } = ctx;
    let message = match kind {
        ErrorKind::Unauthorized => {
            format!("ConnectWise rejected the public/private key pair for company '{company_id}' ({answer})")
        }
        ErrorKind::Forbidden => format!(
            "the ConnectWise API member of company '{company_id}' is not allowed to use {endpoint}; \
             grant its security role access ({answer})"
        ),
        ErrorKind::NotFound => format!("ConnectWise has no {endpoint} ({answer})"),
        ErrorKind::RateLimited => match retry_after {
            Some(wait) => {
                format!("ConnectWise is rate limiting {endpoint}, retry after {}s ({answer})", wait.as_secs())
            }
            None => format!("ConnectWise is rate limiting {endpoint} ({answer})"),
        },
        ErrorKind::Transient => format!("ConnectWise failed on {endpoint} ({answer})"),
        ErrorKind::Invalid | ErrorKind::UnknownAccount | ErrorKind::Unreachable => {
            format!("ConnectWise refused {endpoint} ({answer})")
        }
    };
    let mut err = ConnectorError::new(System::ConnectWise, kind, message);
    err.status = Some(status);
    err.retry_after = retry_after;
    err.code = parsed.and_then(|b| b.code).map(|c| http::sanitise(&c));
    err
}

/// Whether `err` is ConnectWise refusing a write because the value of `field` is already in
/// use (psa-apis.md 1.3: 400 with an `ObjectExists` error item, which [`summarise`] writes as
/// `field: message (ObjectExists)`). Nothing was written, so the write may be changed and
/// sent again.
pub fn is_taken(err: &ConnectorError, field: &str) -> bool {
    err.kind == ErrorKind::Invalid
        && err.message.contains(&format!("{field}: "))
        && err.message.contains("(ObjectExists)")
}

/// `code: message; field: message (code); ...` from an error body.
pub fn summarise(body: &ErrorBody) -> String {
    let head = match (body.code.as_deref(), body.message.as_deref()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => String::new(),
    };
    let items = body.errors.iter().map(|e| {
        let mut s = String::new();
        if let Some(field) = e.field.as_deref().filter(|f| !f.is_empty()) {
            s.push_str(field);
            s.push_str(": ");
        }
        s.push_str(e.message.as_deref().unwrap_or("invalid"));
        if let Some(code) = e.code.as_deref() {
            s.push_str(&format!(" ({code})"));
        }
        s
    });
    std::iter::once(head).chain(items).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ")
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context<'static> = Context { company_id: "acme", endpoint: "/company/contacts" };

    fn err(status: u16, body: &str) -> ConnectorError {
        from_response(status, None, Some("application/json"), body.as_bytes(), CTX)
    }

    #[test]
    fn each_status_gets_its_kind_and_retryability() {
        let cases = [
            (400, ErrorKind::Invalid, false),
            (401, ErrorKind::Unauthorized, false),
            (403, ErrorKind::Forbidden, false),
            (404, ErrorKind::NotFound, false),
            (408, ErrorKind::Transient, true),
            (409, ErrorKind::Invalid, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Transient, true),
            (502, ErrorKind::Transient, true),
            (503, ErrorKind::Transient, true),
        ];
        for (status, kind, retryable) in cases {
            let e = err(status, r#"{"code":"X","message":"y"}"#);
            assert_eq!((e.kind, e.retryable, e.status), (kind, retryable, Some(status)), "{status}");
        }
    }

    #[test]
    fn an_unauthorized_answer_names_the_company_and_the_cw_message() {
        let e = err(401, r#"{"code":"Unauthorized","message":"Invalid credentials"}"#);
        assert_eq!(
            e.message,
            "ConnectWise rejected the public/private key pair for company 'acme' (401 Unauthorized: Unauthorized: Invalid credentials)"
        );
    }

    #[test]
    fn the_vendors_own_error_code_is_kept_as_a_field() {
        assert_eq!(
            err(400, r#"{"code":"InvalidObject","message":"name is required"}"#).code.as_deref(),
            Some("InvalidObject")
        );
        assert_eq!(err(502, "<html>Bad gateway</html>").code, None);
    }

    #[test]
    fn user_not_authenticated_is_unauthorized_whatever_the_status() {
        let e = err(400, r#"{"code":"ConnectWiseApi","message":"UserNotAuthenticated"}"#);
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn the_validation_sample_lists_the_field_errors() {
        let body = include_str!("../../tests/fixtures/write_contacts_bad-request.json");
        let e = err(400, body);
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(!e.retryable);
        assert!(
            e.message.contains("InvalidObject: contact object is invalid; firstName: The firstName field is required. (MissingRequiredField)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_callback_sample_lists_every_field_error() {
        let body = include_str!("../../tests/fixtures/subscriber_test_create_create-webhook-bad-request-1.json");
        let e = err(400, body);
        assert!(e.message.contains("url: Invalid URL (InvalidField)"), "{}", e.message);
        assert!(e.message.contains("level: Unrecognized level for type"), "{}", e.message);
    }

    #[test]
    fn the_not_found_samples_are_not_found() {
        for body in [
            include_str!("../../tests/fixtures/read_not-found.json"),
            include_str!("../../tests/fixtures/delete_contact-not-found.json"),
        ] {
            let e = err(404, body);
            assert_eq!(e.kind, ErrorKind::NotFound);
            assert!(e.message.contains("404 Not Found: "), "{}", e.message);
        }
        assert!(
            err(404, include_str!("../../tests/fixtures/read_not-found.json"))
                .message
                .contains("The endpoint does not exist.")
        );
    }

    #[test]
    fn a_rate_limit_keeps_the_wait_the_server_asked_for() {
        let e = from_response(429, Some(Duration::from_secs(1)), None, b"", CTX);
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
        assert!(e.message.contains("retry after 1s"), "{}", e.message);
    }

    #[test]
    fn an_html_body_is_never_quoted_and_other_text_only_short_on_one_line() {
        let page = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let e = from_response(502, None, Some("text/html"), page.as_bytes(), CTX);
        let html = format!("502 Bad Gateway: an HTML page ({} bytes)", page.len());
        assert!(e.message.contains(&html) && !e.message.contains("<html>"), "{}", e.message);
        let text = format!("upstream\n\u{1b}[1mfailed\u{1b}[0m {}", "x".repeat(500));
        let e = from_response(502, None, Some("text/plain"), text.as_bytes(), CTX);
        assert!(e.message.contains("502 Bad Gateway: upstream failed xxx"), "{}", e.message);
        assert!(e.message.len() < 400 && e.message.ends_with("...)"), "{}", e.message);
    }

    #[test]
    fn a_taken_identifier_is_told_apart_from_other_refusals() {
        let taken = err(
            400,
            r#"{"code":"InvalidObject","message":"company object is invalid","errors":[
                {"code":"ObjectExists","message":"The identifier 'Acme' is already in use.","resource":"company","field":"identifier"}]}"#,
        );
        assert!(is_taken(&taken, "identifier"), "{}", taken.message);
        assert!(!is_taken(&taken, "name"));
        let missing = err(400, include_str!("../../tests/fixtures/write_contacts_bad-request.json"));
        assert!(!is_taken(&missing, "firstName"));
    }

    #[test]
    fn a_forbidden_answer_says_what_to_fix() {
        let e = err(403, r#"{"code":"Forbidden","message":"You do not have access"}"#);
        assert!(e.message.contains("security role") && e.message.contains("/company/contacts"), "{}", e.message);
    }
}
