//! Salesforce failures -> [`ConnectorError`], classified once: the REST error array
//! `[{message, errorCode, fields}]` (salesforce-api.md 5.1-5.3) by `errorCode` first, then
//! by status via [`crate::http::kind_for_status`]; and the OAuth token errors
//! `{error, error_description}` (1.4).

use std::time::Duration;

use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};

use super::models::{ErrorItem, OAuthErrorBody};
use crate::http;
use crate::transport::{Classify, Failure};

/// The classifier the transport uses for REST answers: [`from_response`].
#[derive(Clone, Copy, Debug)]
pub struct Api;

impl Classify for Api {
    fn classify(&self, f: &Failure<'_>) -> ConnectorError {
        from_response(f.status, f.retry_after, f.content_type, f.body, f.endpoint)
    }
}

/// The classifier the transport uses for token answers: [`from_oauth`].
#[derive(Clone, Copy, Debug)]
pub struct OAuth<'a> {
    /// The connected app's client id, named in messages.
    pub client_id: &'a str,
}

impl Classify for OAuth<'_> {
    fn classify(&self, f: &Failure<'_>) -> ConnectorError {
        from_oauth(f.status, f.retry_after, f.content_type, f.body, self.client_id)
    }
}

/// The error code of an expired or invalid token (salesforce-api.md 1.4).
pub const INVALID_SESSION_ID: &str = "INVALID_SESSION_ID";
/// The error code of a query locator the server no longer holds.
pub const INVALID_QUERY_LOCATOR: &str = "INVALID_QUERY_LOCATOR";

/// The kind an `errorCode` means, when it decides on its own (salesforce-api.md 5.3):
/// INVALID_SESSION_ID Unauthorized; REQUEST_LIMIT_EXCEEDED RateLimited (403 for the daily
/// or concurrency limits, retried with backoff); field, query, id and validation errors
/// Invalid; access errors Forbidden; NOT_FOUND / ENTITY_IS_DELETED NotFound; lock
/// contention and server trouble Transient.
pub fn kind_for_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        INVALID_SESSION_ID => ErrorKind::Unauthorized,
        "REQUEST_LIMIT_EXCEEDED" => ErrorKind::RateLimited,
        "INVALID_FIELD"
        | "MALFORMED_QUERY"
        | "INVALID_TYPE"
        | "MALFORMED_ID"
        | "INVALID_QUERY_FILTER_OPERATOR"
        | "INVALID_FIELD_FOR_INSERT_UPDATE"
        | "REQUIRED_FIELD_MISSING"
        | "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        | "DUPLICATES_DETECTED"
        | "DUPLICATE_VALUE"
        | "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        | "JSON_PARSER_ERROR"
        | "EXCEEDED_ID_LIMIT"
        | INVALID_QUERY_LOCATOR => ErrorKind::Invalid,
        "INSUFFICIENT_ACCESS"
        | "INSUFFICIENT_ACCESS_OR_READONLY"
        | "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"
        | "API_DISABLED_FOR_ORG"
        | "API_CURRENTLY_DISABLED"
        | "FUNCTIONALITY_NOT_ENABLED" => ErrorKind::Forbidden,
        "NOT_FOUND" | "ENTITY_IS_DELETED" => ErrorKind::NotFound,
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "UNKNOWN_EXCEPTION" | "QUERY_TIMEOUT" => ErrorKind::Transient,
        _ => return None,
    })
}

/// The error for a non-success REST answer on `endpoint`. The message carries the
/// `errorCode`s, so callers can tell e.g. [`INVALID_QUERY_LOCATOR`] apart; a body that is
/// not Salesforce's error array is quoted only as [`http::excerpt`].
pub fn from_response(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
    endpoint: &str,
) -> ConnectorError {
    let items: Vec<ErrorItem> = serde_json::from_slice::<Vec<ErrorItem>>(body)
        .or_else(|_| serde_json::from_slice::<ErrorItem>(body).map(|i| vec![i]))
        .unwrap_or_default();
    let kind = |code: Option<&str>| code.and_then(kind_for_code).unwrap_or_else(|| http::kind_for_status(status));
    let mut err = from_items(&items, kind, || http::excerpt(content_type, body), &status.to_string(), endpoint);
    err.status = Some(status);
    err.retry_after = retry_after;
    err
}

/// The refusal of one record in an sObject Collections answer (salesforce-api.md 4.2: the
/// call is 200, each failed item carries its own `errors`). The kind comes from the code
/// alone; a code this classifier does not know is Invalid (the record was refused).
pub fn from_save_errors(items: &[ErrorItem], endpoint: &str) -> ConnectorError {
    let kind = |code: Option<&str>| code.and_then(kind_for_code).unwrap_or(ErrorKind::Invalid);
    from_items(items, kind, String::new, "refused", endpoint)
}

/// The error of Salesforce's error `items` on `endpoint`: kind by `kind_of` the first
/// code, the message naming the codes (else `fallback`), prefixed by `answer`.
fn from_items(
    items: &[ErrorItem],
    kind_of: impl Fn(Option<&str>) -> ErrorKind,
    fallback: impl FnOnce() -> String,
    answer: &str,
    endpoint: &str,
) -> ConnectorError {
    let code = items.iter().find_map(|i| i.error_code.as_deref());
    let detail = if items.iter().any(|i| i.error_code.is_some() || i.message.is_some()) {
        http::sanitise(&summarise(items))
    } else {
        fallback()
    };
    let kind = kind_of(code);
    let answer = if detail.is_empty() { answer.to_string() } else { format!("{answer}: {detail}") };
    let message = match kind {
        ErrorKind::Unauthorized => format!("Salesforce refused the session on {endpoint} ({answer})"),
        ErrorKind::Forbidden => {
            format!(
                "the Salesforce integration user may not use {endpoint}; check its profile and permission sets ({answer})"
            )
        }
        ErrorKind::NotFound => format!("Salesforce has no {endpoint} ({answer})"),
        ErrorKind::RateLimited => format!("Salesforce is limiting API requests on {endpoint} ({answer})"),
        ErrorKind::Transient => format!("Salesforce failed on {endpoint} ({answer})"),
        ErrorKind::Invalid | ErrorKind::UnknownAccount | ErrorKind::Unreachable => {
            format!("Salesforce refused {endpoint} ({answer})")
        }
    };
    let mut err = ConnectorError::new(System::Salesforce, kind, message);
    err.code = code.map(http::sanitise);
    err
}

/// The error for a refused token request. Refused grants (`invalid_client_id`,
/// `invalid_client`, `invalid_grant`, ...) are Unauthorized and say what to fix; 429 and
/// 5xx keep their status class.
pub fn from_oauth(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
    client_id: &str,
) -> ConnectorError {
    let parsed: OAuthErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.as_deref().unwrap_or("");
    let description = parsed.error_description.as_deref().unwrap_or("");
    let detail = if code.is_empty() {
        http::excerpt(content_type, body)
    } else {
        http::sanitise(&format!("{code}: {description}"))
    };
    let (kind, message) = match (status, code) {
        (429, _) | (500..=599, _) => {
            (http::kind_for_status(status), format!("the Salesforce token endpoint failed ({status}: {detail})"))
        }
        (_, "invalid_client_id") => (
            ErrorKind::Unauthorized,
            format!("Salesforce does not know the connected app with client id '{client_id}' ({detail})"),
        ),
        (_, "invalid_client") => (
            ErrorKind::Unauthorized,
            format!("Salesforce refused the client secret of connected app '{client_id}' ({detail})"),
        ),
        (_, "invalid_grant") => (
            ErrorKind::Unauthorized,
            format!(
                "Salesforce refused the grant of connected app '{client_id}': the refresh token or run-as user is no longer valid, re-authorise ({detail})"
            ),
        ),
        _ => (ErrorKind::Unauthorized, format!("Salesforce refused the token request ({status}: {detail})")),
    };
    let mut err = ConnectorError::new(System::Salesforce, kind, message);
    err.status = Some(status);
    err.retry_after = retry_after;
    err.code = (!code.is_empty()).then(|| http::sanitise(code));
    err
}

/// Whether an error is a refused session (401 `INVALID_SESSION_ID` or any 401).
pub fn is_invalid_session(err: &ConnectorError) -> bool {
    err.kind == ErrorKind::Unauthorized && err.status == Some(401)
}

/// Whether an error is an expired query locator (by its `errorCode`, which a long error
/// list could push out of the quoted message).
pub fn is_invalid_locator(err: &ConnectorError) -> bool {
    err.code.as_deref() == Some(INVALID_QUERY_LOCATOR) || err.message.contains(INVALID_QUERY_LOCATOR)
}

/// `CODE: message [fields]; ...`.
fn summarise(items: &[ErrorItem]) -> String {
    items
        .iter()
        .map(|i| {
            let mut s = match (i.error_code.as_deref(), i.message.as_deref()) {
                (Some(c), Some(m)) => format!("{c}: {}", m.trim()),
                (Some(one), None) | (None, Some(one)) => one.trim().to_string(),
                (None, None) => String::new(),
            };
            if !i.fields.is_empty() {
                s.push_str(&format!(" [{}]", i.fields.join(", ")));
            }
            s
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_expired_session_is_unauthorized_and_not_retryable() {
        let body = include_str!("../../tests/fixtures/salesforce_expired_session_response.json");
        let e = from_response(401, None, None, body.as_bytes(), "query");
        assert_eq!((e.kind, e.retryable), (ErrorKind::Unauthorized, false));
        assert!(is_invalid_session(&e));
        assert!(e.message.contains("INVALID_SESSION_ID: Session expired or invalid"), "{}", e.message);
    }

    #[test]
    fn request_limit_exceeded_is_a_retryable_rate_limit_even_on_403() {
        let e = from_response(
            403,
            None,
            None,
            br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            "query",
        );
        assert_eq!((e.kind, e.retryable), (ErrorKind::RateLimited, true));
        assert_eq!(e.code.as_deref(), Some("REQUEST_LIMIT_EXCEEDED"), "the errorCode is kept as a field");
    }

    #[test]
    fn an_expired_query_locator_is_told_by_its_error_code_even_when_the_message_is_cut() {
        let mut e = ConnectorError::new(System::Salesforce, ErrorKind::Invalid, "Salesforce refused query (400: ...)");
        assert!(!is_invalid_locator(&e));
        e.code = Some(INVALID_QUERY_LOCATOR.to_string());
        assert!(is_invalid_locator(&e), "the code decides, not the (possibly cut) message");
    }

    #[test]
    fn field_and_query_errors_are_invalid_and_server_errors_transient() {
        let body = include_str!("../../tests/fixtures/salesforce_write_error_response.json");
        let e = from_response(400, None, None, body.as_bytes(), "sobjects/Account");
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("INVALID_FIELD"), "{}", e.message);
        assert_eq!(
            from_response(400, None, None, br#"[{"message":"x","errorCode":"MALFORMED_QUERY"}]"#, "q").kind,
            ErrorKind::Invalid
        );
        let e = from_response(503, None, Some("text/html"), b"<html>busy</html>", "query");
        assert_eq!((e.kind, e.retryable), (ErrorKind::Transient, true));
        assert!(e.message.ends_with("(503: an HTML page (17 bytes))"), "{}", e.message);
        assert_eq!(from_response(404, None, None, b"[]", "x").kind, ErrorKind::NotFound);
    }

    #[test]
    fn the_recorded_auth_errors_are_unauthorized_and_say_what_to_fix() {
        let body = include_str!("../../tests/fixtures/salesforce_auth_error_response.json");
        let e = from_oauth(400, None, None, body.as_bytes(), "3MVGabc");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(e.message.contains("invalid_grant") && e.message.contains("3MVGabc"), "{}", e.message);
        let e = from_oauth(
            400,
            None,
            None,
            br#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
            "app",
        );
        assert!(e.message.contains("client secret"), "{}", e.message);
        assert_eq!(from_oauth(503, None, None, b"", "app").kind, ErrorKind::Transient);
    }
}
