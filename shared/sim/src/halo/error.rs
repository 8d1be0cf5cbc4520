//! The HaloPSA error answers the simulator gives: API errors (`{message}` body) and OAuth
//! token-endpoint errors (`{error, error_description}`), each turned into its HTTP response here.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::common::{RETRY_AFTER_SECONDS, json_response};

/// An error answer of the `/api` resource server.
/// UNCONFIRMED (psa-apis.md 2.2/2.7): Halo's error body shapes are not documented; a JSON
/// `{ "message": ... }` body is assumed for every status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// 401 for a missing, unknown or expired bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 404 for an unknown path.
    pub fn no_endpoint() -> Self {
        Self::new(StatusCode::NOT_FOUND, "The requested resource does not exist.")
    }

    /// 404 for an unknown record.
    pub fn not_found(noun: &str, id: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{noun} {id} not found"))
    }

    /// 400 for a bad body or parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 405 for a method the resource does not take.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("The requested resource does not support http method '{method}'."),
        )
    }

    /// 429 from the rate limit (UNCONFIRMED: Halo declares 429; header and body assumed).
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many requests. Retry after {RETRY_AFTER_SECONDS} second(s)."),
        )
    }

    /// An injected failure with `status`.
    pub fn injected(status: u16) -> Self {
        let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match s.as_u16() {
            401 => Self::unauthorized("Injected failure: the bearer token was refused."),
            429 => Self::too_many_requests(),
            _ => Self::new(s, format!("Injected failure {status}.")),
        }
    }

    /// The HTTP response (with `Retry-After` on 429).
    pub fn into_response(self) -> Response {
        let mut headers = Vec::new();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            headers.push(("retry-after", RETRY_AFTER_SECONDS.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.push(("www-authenticate", "Bearer error=\"invalid_token\"".to_string()));
        }
        json_response(self.status, &json!({ "message": self.message }), &headers)
    }
}

/// An OAuth2 error of `POST /auth/token` (RFC 6749 5.2 shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl TokenError {
    /// The answer for `error` with `description`, status 400 (RFC 6749 5.2).
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, description: description.into() }
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response {
        json_response(self.status, &json!({ "error": self.error, "error_description": self.description }), &[])
    }
}
