//! The one place AWS SDK failures are classified: every call's error becomes an [`AwsError`]
//! with a [`AwsErrorKind`] (throttling, 5xx and timeouts are transient; failed conditions
//! are conflicts; missing or existing resources, refused access and invalid requests each
//! have their own kind) and a message naming the service, the operation and AWS's error
//! code. The adapters turn it into the domain's error types with the `From` impls here.
//!
//! Messages are built from the error code and the service's message only, never from the
//! request, so a secret sent to Secrets Manager can never end up in an error or a log.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tandem_domain::ports::{QueueError, SecretError, StoreError};

/// What went wrong with an AWS call, as far as a caller needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Throttling, a 5xx answer, a timeout or a broken connection: worth retrying.
    Transient,
    /// A write's condition failed (DynamoDB `ConditionalCheckFailedException` and
    /// cancelled transactions).
    Conflict,
    /// The table, queue, secret or bus does not exist.
    NotFound,
    /// The resource to create exists already.
    AlreadyExists,
    /// The credentials were refused or lack a permission: a deployment problem.
    Denied,
    /// AWS refused the request as invalid (or it could not be built): a bug.
    Invalid,
}

impl AwsErrorKind {
    fn describe(self) -> &'static str {
        match self {
            AwsErrorKind::Transient => "transient, retryable",
            AwsErrorKind::Conflict => "condition failed",
            AwsErrorKind::NotFound => "not found",
            AwsErrorKind::AlreadyExists => "already exists",
            AwsErrorKind::Denied => "access refused; check the deployment",
            AwsErrorKind::Invalid => "invalid request",
        }
    }
}

/// A failed AWS call: its kind, AWS's error code when there was one, and a clear message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} failed ({}): {message}", kind.describe())]
pub struct AwsError {
    /// The class of the failure.
    pub kind: AwsErrorKind,
    /// The service, e.g. `DynamoDB`.
    pub service: &'static str,
    /// The API operation, e.g. `TransactWriteItems`.
    pub operation: &'static str,
    /// AWS's error code, e.g. `ThrottlingException`, when the service answered.
    pub code: Option<String>,
    /// What happened, in words (the code and AWS's message, or the transport failure).
    pub message: String,
}

/// Error codes that mean "slow down" or "try again later", across the four services.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "TransactionInProgressException",
    "TransactionConflictException",
    "InternalServerError",
    "InternalServerErrorException",
    "InternalFailure",
    "InternalServiceError",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KmsThrottled",
    "KMSThrottlingException",
];

const CONFLICT_CODES: &[&str] = &["ConditionalCheckFailedException", "TransactionCanceledException"];

const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "TableNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
];

const EXISTS_CODES: &[&str] = &[
    "ResourceInUseException",
    "ResourceExistsException",
    "ResourceAlreadyExistsException",
    "TableAlreadyExistsException",
    "QueueAlreadyExists",
    "QueueNameExists",
    "BucketAlreadyOwnedByYou",
    "BucketAlreadyExists",
];

const DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "ExpiredTokenException",
    "ExpiredToken",
    "KMS.AccessDeniedException",
    "KmsAccessDenied",
];

/// The kind of a service error, from its code and, failing that, its HTTP status.
pub fn kind_of_code(code: Option<&str>, status: Option<u16>) -> AwsErrorKind {
    let is = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
    if is(TRANSIENT_CODES) {
        AwsErrorKind::Transient
    } else if is(CONFLICT_CODES) {
        AwsErrorKind::Conflict
    } else if is(NOT_FOUND_CODES) {
        AwsErrorKind::NotFound
    } else if is(EXISTS_CODES) {
        AwsErrorKind::AlreadyExists
    } else if is(DENIED_CODES) {
        AwsErrorKind::Denied
    } else {
        match status {
            Some(s) if s >= 500 || s == 429 => AwsErrorKind::Transient,
            Some(401 | 403) => AwsErrorKind::Denied,
            _ => AwsErrorKind::Invalid,
        }
    }
}

impl AwsError {
    /// Classifies an SDK error of `service`'s `operation`.
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let (kind, code, message) = match err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                let status = service_err.raw().status().as_u16();
                let code = e.code().map(str::to_string);
                let text = e.message().unwrap_or("no message");
                let message = match &code {
                    Some(c) => format!("{c}: {text} (HTTP {status})"),
                    None => format!("{text} (HTTP {status})"),
                };
                (kind_of_code(code.as_deref(), Some(status)), code, message)
            }
            SdkError::TimeoutError(_) => (AwsErrorKind::Transient, None, "timed out".to_string()),
            SdkError::DispatchFailure(_) => {
                (AwsErrorKind::Transient, None, format!("could not reach AWS: {}", DisplayErrorContext(err)))
            }
            SdkError::ResponseError(_) => {
                (AwsErrorKind::Transient, None, format!("unreadable answer: {}", DisplayErrorContext(err)))
            }
            SdkError::ConstructionFailure(_) => {
                (AwsErrorKind::Invalid, None, format!("could not build the request: {}", DisplayErrorContext(err)))
            }
            _ => (AwsErrorKind::Invalid, None, DisplayErrorContext(err).to_string()),
        };
        Self { kind, service, operation, code, message }
    }

    /// A request this crate could not build (a required field missing).
    pub fn build(service: &'static str, operation: &'static str, err: &BuildError) -> Self {
        Self {
            kind: AwsErrorKind::Invalid,
            service,
            operation,
            code: None,
            message: format!("could not build the request: {err}"),
        }
    }

    /// An answer that lacks something it should hold.
    pub fn unexpected(service: &'static str, operation: &'static str, what: impl fmt::Display) -> Self {
        Self {
            kind: AwsErrorKind::Invalid,
            service,
            operation,
            code: None,
            message: format!("unexpected answer: {what}"),
        }
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, AwsErrorKind::Transient | AwsErrorKind::Conflict)
    }
}

impl From<AwsError> for StoreError {
    /// Transient failures and missing or refused resources (fixable by a deployment, so
    /// worth retrying later) are `Unavailable`; failed conditions are `Conflict`; requests
    /// DynamoDB refuses as invalid are bugs, reported as the non-retryable `Corrupt`.
    fn from(e: AwsError) -> Self {
        match e.kind {
            AwsErrorKind::Conflict => StoreError::Conflict(e.to_string()),
            AwsErrorKind::Transient | AwsErrorKind::NotFound | AwsErrorKind::Denied | AwsErrorKind::AlreadyExists => {
                StoreError::Unavailable(e.to_string())
            }
            AwsErrorKind::Invalid => StoreError::Corrupt(e.to_string()),
        }
    }
}

impl From<AwsError> for QueueError {
    fn from(e: AwsError) -> Self {
        QueueError(e.to_string())
    }
}

impl From<AwsError> for SecretError {
    /// Everything but a missing secret (which the store maps to `NotFound` with the
    /// secret's name itself) is `Unavailable`.
    fn from(e: AwsError) -> Self {
        SecretError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for code in ["ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"] {
            assert_eq!(kind_of_code(Some(code), Some(400)), AwsErrorKind::Transient, "{code}");
        }
        assert_eq!(kind_of_code(Some("SomethingNew"), Some(503)), AwsErrorKind::Transient);
        assert_eq!(kind_of_code(None, Some(500)), AwsErrorKind::Transient);
        assert_eq!(kind_of_code(None, Some(429)), AwsErrorKind::Transient);
    }

    #[test]
    fn failed_conditions_are_conflicts() {
        assert_eq!(kind_of_code(Some("ConditionalCheckFailedException"), Some(400)), AwsErrorKind::Conflict);
        assert_eq!(kind_of_code(Some("TransactionCanceledException"), Some(400)), AwsErrorKind::Conflict);
    }

    #[test]
    fn missing_existing_refused_and_invalid_requests_are_told_apart() {
        assert_eq!(kind_of_code(Some("ResourceNotFoundException"), Some(400)), AwsErrorKind::NotFound);
        assert_eq!(kind_of_code(Some("QueueDoesNotExist"), Some(400)), AwsErrorKind::NotFound);
        assert_eq!(kind_of_code(Some("ResourceInUseException"), Some(400)), AwsErrorKind::AlreadyExists);
        assert_eq!(kind_of_code(Some("AccessDeniedException"), Some(400)), AwsErrorKind::Denied);
        assert_eq!(kind_of_code(None, Some(403)), AwsErrorKind::Denied);
        assert_eq!(kind_of_code(Some("ValidationException"), Some(400)), AwsErrorKind::Invalid);
    }

    #[test]
    fn store_errors_keep_retryability_and_the_message() {
        let e = |kind| AwsError {
            kind,
            service: "DynamoDB",
            operation: "GetItem",
            code: Some("X".into()),
            message: "X: boom (HTTP 400)".into(),
        };
        let unavailable = StoreError::from(e(AwsErrorKind::Transient));
        assert!(unavailable.is_retryable());
        assert!(unavailable.to_string().contains("DynamoDB GetItem failed (transient, retryable): X: boom"));
        assert!(matches!(StoreError::from(e(AwsErrorKind::Conflict)), StoreError::Conflict(_)));
        let invalid = StoreError::from(e(AwsErrorKind::Invalid));
        assert!(!invalid.is_retryable());
        assert!(invalid.to_string().contains("invalid request"), "{invalid}");
    }
}
