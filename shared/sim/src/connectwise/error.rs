//! The ConnectWise error body (`{code, message, errors?}`) and the errors the simulator
//! answers with, each turned into its HTTP response in one place.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::common::{RETRY_AFTER_SECONDS, json_response};

/// One entry of `errors[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorItem {
    pub code: String,
    pub message: String,
    pub resource: String,
    pub field: String,
}

/// An error answer: status plus the CW body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub errors: Vec<ErrorItem>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ErrorItem],
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_string(), message: message.into(), errors: Vec::new() }
    }

    /// 404 for a path the API does not have (recorded body, psa-apis.md 1.3).
    pub fn no_endpoint() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ConnectWiseApi", "The endpoint does not exist.")
    }

    /// 404 for an unknown record, e.g. "Contact 57919 not found".
    pub fn not_found(noun: &str, id: i64) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", format!("{noun} {id} not found"))
    }

    /// 400 `InvalidObject` "`resource` object is invalid" with the given items.
    pub fn invalid_object(resource: &str, errors: Vec<ErrorItem>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidObject".into(),
            message: format!("{resource} object is invalid"),
            errors,
        }
    }

    /// 400 for a bad query parameter (`conditions`, `orderBy`, `page`...).
    /// UNCONFIRMED: the real body for a malformed `conditions` is not recorded anywhere we
    /// could read; an `InvalidObject` naming the parameter and the problem is assumed.
    pub fn bad_parameter(parameter: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidObject".into(),
            message: format!("{parameter} is invalid: {problem}"),
            errors: vec![ErrorItem {
                code: "InvalidField".into(),
                message: problem,
                resource: parameter.into(),
                field: parameter.into(),
            }],
        }
    }

    /// 400 for a body that is not what the endpoint takes.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidObject", message)
    }

    /// 500 for a failure inside the simulator.
    pub fn server_error(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ServerError", message)
    }

    /// 401 (psa-apis.md 1.2: code `Unauthorized`; exact message text UNCONFIRMED).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    /// 403 for an API member whose security role lacks the module.
    pub fn forbidden(module: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", format!("You do not have access to the {module} module."))
    }

    /// 405 for a method the endpoint does not take.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "ConnectWiseApi",
            format!("The requested resource does not support http method '{method}'."),
        )
    }

    /// 429 from the rate limit. UNCONFIRMED (psa-apis.md 1.9): status, header and body
    /// shape are assumed; CW cloud throttles through Cloudflare.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("Too many requests. Retry after {RETRY_AFTER_SECONDS} second(s)."),
        )
    }

    /// An injected failure with `status`.
    pub fn injected(status: u16) -> Self {
        let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match s.as_u16() {
            401 => Self::unauthorized("Injected failure: the credentials were refused."),
            403 => Self::new(s, "Forbidden", "Injected failure: You do not have access to this module."),
            404 => Self::no_endpoint(),
            429 => Self::too_many_requests(),
            500..=599 => Self::new(s, "ServerError", format!("An error occurred on the server (injected {status}).")),
            _ => Self::new(s, "ConnectWiseApi", format!("Injected failure {status}.")),
        }
    }

    /// The HTTP response, with `headers` added (and `Retry-After` on 429).
    pub fn into_response_with(self, headers: &[(&'static str, String)]) -> Response {
        let mut all = headers.to_vec();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            all.push(("retry-after", RETRY_AFTER_SECONDS.to_string()));
        }
        let body = Body { code: &self.code, message: &self.message, errors: &self.errors };
        json_response(self.status, &body, &all)
    }
}
