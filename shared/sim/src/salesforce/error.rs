//! The Salesforce error bodies and the errors the simulator answers with, each turned into
//! its HTTP response in one place: REST errors are a JSON array
//! `[{"message", "errorCode", "fields"?}]` (salesforce-api.md 5.1), OAuth errors an object
//! `{"error", "error_description"}` (1.4).

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::schema::Field;
use crate::common::{RETRY_AFTER_SECONDS, json_response};

/// How the simulator answers requests above the configured rate.
///
/// UNCONFIRMED (salesforce-api.md 5.3/5.4): Salesforce refuses over-limit calls with
/// `REQUEST_LIMIT_EXCEEDED` on HTTP 403 and no documented `Retry-After`; a plain 429 is
/// what proxies and the generic HTTP contract give. Both are offered, 429 by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ThrottleAnswer {
    /// 429 with `Retry-After` and a `REQUEST_LIMIT_EXCEEDED` body.
    #[default]
    TooManyRequests,
    /// 403 `REQUEST_LIMIT_EXCEEDED` ("ConcurrentPerOrgLongTxn Limit exceeded."), no `Retry-After`.
    RequestLimitExceeded,
}

#[derive(Serialize)]
struct Item<'a> {
    message: &'a str,
    #[serde(rename = "errorCode")]
    error_code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [String],
}

/// A REST error answer: status plus one `{message, errorCode, fields}` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: Vec::new() }
    }

    /// 401 for a missing, unknown or expired token (restforce `expired_session_response.json`).
    pub fn invalid_session() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
    }

    /// 404 for a path the API does not have (restforce `sobject_describe_error_response.json`).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }

    /// 400 for SOQL that does not parse.
    pub fn malformed_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", message)
    }

    /// 400 for a field the object does not have (restforce `write_error_response.json`).
    pub fn invalid_field(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", message)
    }

    /// 400 for an object the org does not have.
    pub fn invalid_type(object: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!(
                "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name."
            ),
        )
    }

    /// 400 for required fields missing on create.
    pub fn required_missing(fields: Vec<String>) -> Self {
        let message = format!("Required fields are missing: [{}]", fields.join(", "));
        Self { status: StatusCode::BAD_REQUEST, code: "REQUIRED_FIELD_MISSING", message, fields }
    }

    /// 400 `REQUIRED_FIELD_MISSING` with a message of its own (a collection delete without ids,
    /// restforce `composite_sobjects_delete_error` as quoted in salesforce-api.md 4.2).
    pub fn required_missing_message(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "REQUIRED_FIELD_MISSING", message)
    }

    /// 400 for a value a restricted picklist does not hold.
    pub fn bad_picklist(field: &str, value: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            message: format!("{field}: bad value for restricted picklist field: {value}"),
            fields: vec![field.to_string()],
        }
    }

    /// 400 for a text longer than its field's `length`. UNCONFIRMED (the reference lists no
    /// such code): the code and message are those Salesforce is widely reported to give,
    /// the message naming the field by its label.
    pub fn string_too_long(field: &Field, value: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "STRING_TOO_LONG",
            message: format!("{}: data value too large: {value} (max length={})", field.label, field.length()),
            fields: vec![field.name.to_string()],
        }
    }

    /// 400 for a write to a field that exists but is not createable / updateable (a
    /// formula, a system or derived field; salesforce-api.md 5.3).
    pub fn not_writable(field: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_FIELD_FOR_INSERT_UPDATE",
            message: format!(
                "Unable to create/update fields: {field}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
            ),
            fields: vec![field.to_string()],
        }
    }

    /// 400 for a save an org validation rule refused: the rule's own message, and the
    /// field the rule shows its error on (salesforce-api.md 5.3).
    pub fn custom_validation(message: &str, field: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            message: message.to_string(),
            fields: vec![field.to_string()],
        }
    }

    /// 400 for a body that is not a JSON object of field values.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
    }

    /// 400 for an id that is not a well-formed id of the object.
    pub fn malformed_id(object: &str, id: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", format!("{object} ID: id value of incorrect type: {id}"))
    }

    /// A record of an all-or-none collection that was undone because another failed.
    pub fn rolled_back() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
        )
    }

    /// The `{statusCode, message, fields}` item of this error in a collection's save
    /// result (salesforce-api.md 4.2: `statusCode`, not `errorCode`).
    pub fn save_error(&self) -> serde_json::Value {
        serde_json::json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }

    /// 404 for a record in the recycle bin (salesforce-api.md 5.2: "404 … record not found, or
    /// deleted"; 5.3 `ENTITY_IS_DELETED` "entity is deleted"). UNCONFIRMED which code a read
    /// (rather than an update or delete) of a deleted record carries; this one is assumed.
    pub fn entity_is_deleted() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ENTITY_IS_DELETED", "entity is deleted")
    }

    /// 400 for a `deleted/` window Salesforce refuses: start not before end, start older
    /// than the delete log reaches (15 days), a date missing or unreadable. UNCONFIRMED: the
    /// reference (salesforce-api.md 6.4) says these are refused but names no code; this is
    /// the code Salesforce's replication calls are believed to give.
    pub fn invalid_replication_date(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE", message)
    }

    /// 404 for an upsert key field that is not an external id (restforce `upsert_error_response.json`).
    pub fn bad_external_id(field: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
        )
    }

    /// 400 for a `nextRecordsUrl` locator the server no longer holds.
    pub fn invalid_locator() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator")
    }

    /// 403 once the daily allocation is used up (salesforce-api.md 5.3).
    pub fn daily_limit() -> Self {
        Self::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    }

    /// The answer above the configured request rate.
    pub fn throttled(answer: ThrottleAnswer) -> Self {
        match answer {
            ThrottleAnswer::TooManyRequests => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                format!("Too many requests. Retry after {RETRY_AFTER_SECONDS} second(s)."),
            ),
            ThrottleAnswer::RequestLimitExceeded => {
                Self::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
            }
        }
    }

    /// 405 for a method the resource does not take.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are GET,HEAD,PATCH,POST,DELETE"),
        )
    }

    /// An injected failure with `status`, shaped like what Salesforce sends with it.
    pub fn injected(status: u16) -> Self {
        let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match s.as_u16() {
            401 => Self::invalid_session(),
            403 => Self::daily_limit(),
            404 => Self::not_found(),
            429 => Self::throttled(ThrottleAnswer::TooManyRequests),
            503 => Self::new(s, "SERVER_UNAVAILABLE", "Server is temporarily unavailable (injected)."),
            500..=599 => Self::new(
                s,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567-8901 (-1)",
            ),
            _ => Self::new(s, "INVALID_FIELD", format!("Injected failure {status}.")),
        }
    }

    /// The HTTP response, with `headers` added (and `Retry-After` on 429).
    pub fn into_response_with(self, headers: &[(&'static str, String)]) -> Response {
        let mut all = headers.to_vec();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            all.push(("retry-after", RETRY_AFTER_SECONDS.to_string()));
        }
        let body = [Item { message: &self.message, error_code: self.code, fields: &self.fields }];
        json_response(self.status, &body, &all)
    }
}

/// An OAuth token-endpoint error. UNCONFIRMED (salesforce-api.md 1.4): the status is
/// assumed 400 for every refused grant; `error` values follow the restforce fixtures and
/// common Salesforce answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct OAuthError {
    pub error: &'static str,
    pub error_description: &'static str,
}

impl OAuthError {
    /// An unknown `client_id`.
    pub fn unknown_client() -> Self {
        Self { error: "invalid_client_id", error_description: "client identifier invalid" }
    }

    /// A wrong `client_secret`.
    pub fn bad_secret() -> Self {
        Self { error: "invalid_client", error_description: "invalid client credentials" }
    }

    /// A refresh token that is not (or no longer) valid (restforce `refresh_error_response.json`).
    pub fn bad_refresh_token() -> Self {
        Self { error: "invalid_grant", error_description: "expired access/refresh token" }
    }

    /// A missing or unsupported `grant_type`.
    pub fn unsupported_grant() -> Self {
        Self { error: "unsupported_grant_type", error_description: "grant type not supported" }
    }

    /// The 400 response.
    pub fn into_response(self) -> Response {
        json_response(StatusCode::BAD_REQUEST, &self, &[])
    }
}
