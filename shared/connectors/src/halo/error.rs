//! HaloPSA failures -> [`ConnectorError`], classified once: token-endpoint answers
//! (OAuth `{error, error_description}`, psa-apis.md 2.2) and `/api` answers (status via
//! [`crate::http::kind_for_status`], psa-apis.md 2.2/2.7), each with a clear message that
//! never holds a secret.

use std::time::Duration;

use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};

use super::models::{ApiErrorBody, OAuthError};
use crate::http;
use crate::transport::{Classify, Failure};

/// The classifier the transport uses for `/api` answers: [`from_response`].
#[derive(Clone, Copy, Debug)]
pub struct Api;

impl Classify for Api {
    fn classify(&self, f: &Failure<'_>) -> ConnectorError {
        from_response(f.status, f.retry_after, f.content_type, f.body, f.endpoint)
    }
}

/// The classifier the transport uses for token answers: [`from_token_response`].
#[derive(Clone, Copy, Debug)]
pub struct Token<'a> {
    /// The tenant asked for, if any.
    pub tenant: Option<&'a str>,
}

impl Classify for Token<'_> {
    fn classify(&self, f: &Failure<'_>) -> ConnectorError {
        from_token_response(f.status, f.retry_after, f.content_type, f.body, self.tenant)
    }
}

/// OAuth error codes that mean "no such tenant" (UNCONFIRMED, psa-apis.md 2.2 and 5.2:
/// Halo's answer to a wrong or missing `?tenant=` is not documented; the simulator answers
/// `invalid_tenant` / `invalid_request` naming the tenant). Change here only.
pub const UNKNOWN_TENANT_ERRORS: &[&str] = &["invalid_tenant", "tenant_not_found"];

/// The error for a failed `POST /auth/token`. `invalid_client` / `unauthorized_client`
/// (or 401): the client id or secret is wrong (Unauthorized). An unknown tenant, or a
/// `?tenant=` the instance requires but did not get, or 404 (no token endpoint there):
/// UnknownAccount. 429/5xx: retryable as usual.
pub fn from_token_response(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
    tenant: Option<&str>,
) -> ConnectorError {
    let parsed: OAuthError = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.as_deref().unwrap_or("").trim().to_ascii_lowercase();
    let description = parsed.error_description.as_deref().unwrap_or("").trim().to_string();
    let detail = match (code.is_empty(), description.is_empty()) {
        (true, true) => http::excerpt(content_type, body),
        (false, true) => http::sanitise(&code),
        (true, false) => http::sanitise(&description),
        (false, false) => http::sanitise(&format!("{code}: {description}")),
    };
    let tenant_text = tenant.map_or("no tenant".to_string(), |t| format!("tenant '{t}'"));
    let mentions_tenant = description.to_ascii_lowercase().contains("tenant");
    let (kind, message) = if UNKNOWN_TENANT_ERRORS.contains(&code.as_str())
        || (code == "invalid_request" && mentions_tenant)
        || status == 404
    {
        (
            ErrorKind::UnknownAccount,
            format!(
                "HaloPSA does not know {tenant_text} on this instance; check the tenant name and the site ({status}: {detail})"
            ),
        )
    } else if matches!(code.as_str(), "invalid_client" | "unauthorized_client") || status == 401 {
        (ErrorKind::Unauthorized, format!("HaloPSA rejected the client id or client secret ({status}: {detail})"))
    } else {
        let kind = http::kind_for_status(status);
        (kind, format!("HaloPSA's token endpoint refused the request ({status}: {detail})"))
    };
    let mut err = ConnectorError::new(System::Halo, kind, message);
    err.status = Some(status);
    err.retry_after = retry_after;
    err.code = (!code.is_empty()).then(|| http::sanitise(&code));
    err
}

/// The error for a non-success `/api` answer: kind by status (401 Unauthorized, 403
/// Forbidden, 404 NotFound, 429 RateLimited, 408/5xx Transient, other 4xx Invalid). Halo's
/// `{message}` / `{error}` is quoted; any other body only as [`http::excerpt`].
pub fn from_response(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
    endpoint: &str,
) -> ConnectorError {
    let parsed: ApiErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let detail =
        parsed.message.or(parsed.error).map_or_else(|| http::excerpt(content_type, body), |m| http::sanitise(&m));
    let answer = if detail.is_empty() { status.to_string() } else { format!("{status}: {detail}") };
    let kind = http::kind_for_status(status);
    let message = match kind {
        ErrorKind::Unauthorized => format!("HaloPSA refused the access token on {endpoint} ({answer})"),
        ErrorKind::Forbidden => format!(
            "the HaloPSA API application may not use {endpoint}; check its agent's role and the scope ({answer})"
        ),
        ErrorKind::NotFound => format!("HaloPSA has no {endpoint} ({answer})"),
        ErrorKind::RateLimited => match retry_after {
            Some(wait) => format!("HaloPSA is rate limiting {endpoint}, retry after {}s ({answer})", wait.as_secs()),
            None => format!("HaloPSA is rate limiting {endpoint} ({answer})"),
        },
        ErrorKind::Transient => format!("HaloPSA failed on {endpoint} ({answer})"),
        ErrorKind::Invalid | ErrorKind::UnknownAccount | ErrorKind::Unreachable => {
            format!("HaloPSA refused {endpoint} ({answer})")
        }
    };
    http::status_error(System::Halo, status, retry_after, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_secret_is_unauthorized_and_an_unknown_tenant_is_an_unknown_account() {
        let bad = from_token_response(400, None, None, br#"{"error":"invalid_client"}"#, Some("acme"));
        assert_eq!((bad.kind, bad.retryable), (ErrorKind::Unauthorized, false));
        let tenant =
            from_token_response(400, None, None, br#"{"error":"invalid_tenant","error_description":"no"}"#, Some("x"));
        assert_eq!(tenant.kind, ErrorKind::UnknownAccount);
        assert!(tenant.message.contains("tenant 'x'"), "{}", tenant.message);
        let missing = from_token_response(
            400,
            None,
            None,
            br#"{"error":"invalid_request","error_description":"the tenant query parameter is required"}"#,
            None,
        );
        assert_eq!(missing.kind, ErrorKind::UnknownAccount);
        assert_eq!(from_token_response(503, None, None, b"", None).kind, ErrorKind::Transient);
    }

    #[test]
    fn api_statuses_get_their_kind_and_retryability() {
        for (status, kind, retryable) in [
            (400, ErrorKind::Invalid, false),
            (401, ErrorKind::Unauthorized, false),
            (403, ErrorKind::Forbidden, false),
            (404, ErrorKind::NotFound, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Transient, true),
            (503, ErrorKind::Transient, true),
        ] {
            let e = from_response(status, None, None, br#"{"message":"x"}"#, "/Client");
            assert_eq!((e.kind, e.retryable, e.status), (kind, retryable, Some(status)), "{status}");
        }
        let e = from_response(429, Some(Duration::from_secs(1)), None, b"", "/Client");
        assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
        assert!(e.message.contains("retry after 1s"));
    }

    #[test]
    fn an_html_answer_is_never_quoted_but_halo_s_own_message_is() {
        let page = b"<!doctype html><html><head><title>Login</title></head><body>sign in</body></html>";
        let e = from_token_response(400, None, Some("text/html"), page, None);
        assert!(e.message.contains("an HTML page (") && !e.message.contains("<html>"), "{}", e.message);
        let e = from_response(500, None, None, page, "/Agent/me");
        assert!(e.message.contains("an HTML page (") && !e.message.contains("Login"), "{}", e.message);
        let e = from_response(400, None, None, br#"{"message":"Bad\n\u001b[31mrequest"}"#, "/Client");
        assert!(e.message.ends_with("(400: Bad request)"), "{}", e.message);
    }
}
