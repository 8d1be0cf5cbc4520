//! The Syncro error bodies (psa-apis.md 3.2 and 3.5; samples `contact_401_permission.json`,
//! `customer_create_422.json`) and the errors the simulator answers with, each turned into
//! its HTTP response in one place. Every UNCONFIRMED body text is a constant here.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::common::json_response;

/// 401 body text for a missing, unknown or expired token. UNCONFIRMED (psa-apis.md 3.2:
/// only the status is known; Y3 reports "Invalid or expired API key").
pub(crate) const BAD_TOKEN_MESSAGE: &str = "Not authorized. Invalid or expired API token.";
/// 401 body text for a token whose group lacks a permission (sample `contact_401_permission.json`).
pub(crate) const PERMISSION_MESSAGE: &str =
    "Not authorized. Please ask account admin to update your group permissions.";
/// 429 body text. UNCONFIRMED (psa-apis.md 3.7: only the status is known).
pub(crate) const RATE_LIMIT_MESSAGE: &str = "Rate limit exceeded: 180 requests per minute.";

/// The body shapes Syncro answers errors with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ErrorBody {
    /// `{"error": "..."}` (auth, permission, rate limit).
    Error(String),
    /// `{"message": "..."}` (404 "Not found", server errors).
    Message(String),
    /// Customers and leads: `{"success": false, "message": [...], "params": {...}}`.
    Params { messages: Vec<String>, params: Value },
    /// Contacts: `{"record": {...}, "errors": "..."}`.
    Record { record: Value, errors: String },
}

/// An error answer: status, body and, on 429, the seconds to wait.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, body: ErrorBody) -> Self {
        Self { status, body, retry_after: None }
    }

    /// 401 for a missing or unknown token.
    pub fn bad_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorBody::Error(BAD_TOKEN_MESSAGE.into()))
    }

    /// 401 for a token whose group lacks the permission (psa-apis.md 3.2: Syncro answers 401, not 403).
    pub fn permission() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorBody::Error(PERMISSION_MESSAGE.into()))
    }

    /// 404 `{"message": "Not found"}` (psa-apis.md 3.5), also for unknown paths and methods.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorBody::Message("Not found".into()))
    }

    /// 422 in the customer/lead shape.
    pub fn invalid_params(messages: Vec<String>, params: Value) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorBody::Params { messages, params })
    }

    /// 422 in the contact shape.
    pub fn invalid_record(record: Value, errors: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorBody::Record { record, errors: errors.into() })
    }

    /// 400 for a body that is not JSON. UNCONFIRMED body shape.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorBody::Error(message.into()))
    }

    /// 429 with `Retry-After: seconds` (the header is UNCONFIRMED, psa-apis.md 3.7).
    pub fn too_many_requests(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorBody::Error(RATE_LIMIT_MESSAGE.into()))
        }
    }

    /// An injected failure with `status`.
    pub fn injected(status: u16) -> Self {
        let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match s.as_u16() {
            401 => Self::bad_token(),
            404 => Self::not_found(),
            429 => Self::too_many_requests(1),
            _ => {
                Self::new(s, ErrorBody::Message(format!("We're sorry, but something went wrong (injected {status}).")))
            }
        }
    }

    /// The HTTP response, with `headers` added (and `Retry-After` on 429).
    pub fn into_response_with(self, headers: &[(&'static str, String)]) -> Response {
        let mut all = headers.to_vec();
        if let Some(secs) = self.retry_after {
            all.push(("retry-after", secs.to_string()));
        }
        let body = match self.body {
            ErrorBody::Error(e) => json!({ "error": e }),
            ErrorBody::Message(m) => json!({ "message": m }),
            ErrorBody::Params { messages, params } => {
                json!({ "success": false, "message": messages, "params": params })
            }
            ErrorBody::Record { record, errors } => json!({ "record": record, "errors": errors }),
        };
        json_response(self.status, &body, &all)
    }
}
