//! The domain's error type: what went wrong, which class it is (for HTTP status and
//! retry decisions) and whether trying again may help.

use crate::ports::{ConnectorError, QueueError, StoreError};

/// The class of a failure, which decides the HTTP status and whether a retry may help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong (bad body, unknown value): 400.
    Invalid,
    /// The thing asked for does not exist: 404.
    NotFound,
    /// Refused in the current state (wrong order, prerequisite missing): 409.
    Refused,
    /// The external system rejected the credentials: 401/403 upstream, 422 to our caller.
    Credentials,
    /// The external system or a store failed in a way that may pass: 502/503.
    Unavailable,
    /// A bug or an unexpected answer: 500.
    Internal,
    /// A caller that did not prove who it is (a forged or unsigned webhook call): 401.
    Unauthenticated,
    /// Well formed, but it cannot work with what the external system is (a field map its
    /// describe refuses): 422, naming each problem.
    Unprocessable,
}

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Bad input; the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Refused in the current state; the message says why and what to do first.
    #[error("{0}")]
    Refused(String),
    /// The external system failed or refused.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The record store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
    /// The caller did not prove who it is; the message says what failed, never a secret.
    #[error("{0}")]
    Unauthenticated(String),
    /// Well formed, but it cannot work with the external system as it is; the message
    /// names each problem.
    #[error("{0}")]
    Unprocessable(String),
}

/// The work queue unreachable: a failure that may pass, like the store's.
impl From<QueueError> for DomainError {
    fn from(e: QueueError) -> Self {
        Self::Store(StoreError::Unavailable(e.to_string()))
    }
}

impl DomainError {
    /// Bad input.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
    /// Something asked for does not exist.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }
    /// Refused in the current state.
    pub fn refused(msg: impl Into<String>) -> Self {
        Self::Refused(msg.into())
    }
    /// An unexpected failure.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }

    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Invalid,
            Self::NotFound(_) => ErrorClass::NotFound,
            Self::Refused(_) => ErrorClass::Refused,
            Self::Connector(e) => e.class(),
            Self::Store(e) => match e {
                StoreError::Conflict(_) => ErrorClass::Refused,
                StoreError::Unavailable(_) => ErrorClass::Unavailable,
                StoreError::Corrupt(_) => ErrorClass::Internal,
                StoreError::InvalidToken(_) => ErrorClass::Invalid,
            },
            Self::Internal(_) => ErrorClass::Internal,
            Self::Unauthenticated(_) => ErrorClass::Unauthenticated,
            Self::Unprocessable(_) => ErrorClass::Unprocessable,
        }
    }

    /// Whether doing the same thing again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connector(e) => e.retryable,
            Self::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}
