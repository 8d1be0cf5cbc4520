//! The webhook port: what an external system's change notification says, read by a pure
//! per-system reader (verify, then parse) with no I/O, so the intake can be tested on
//! bytes alone and a forged or malformed call changes nothing.

use std::collections::BTreeMap;

use crate::ids::{RecordKind, System};
use crate::ledger::ExtVersion;

/// One webhook call as it reached us: header names lower-cased, the query string's pairs,
/// and the raw body (signatures are computed over the exact bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookCall {
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl WebhookCall {
    /// A header's value by name, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Created or changed: read it again and reconcile.
    Changed,
    /// Deleted in the system.
    Deleted,
}

/// One record a webhook says changed. The notice names the record; the flow reads the
/// record itself (`Connector::get`) rather than trusting the payload's copy, which some
/// systems trim, serialise oddly or leave undocumented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: RecordKind,
    pub id: String,
    pub action: Action,
    /// When the system says the change happened, if it says.
    pub at: Option<ExtVersion>,
    /// The system marks the change as made by our own API user (ConnectWise's member,
    /// Salesforce's `changeOrigin` client id). A hint for echo suppression, never the only
    /// test.
    pub by_us: bool,
}

/// A parsed delivery: the notices, plus where the system's signing key is fetched from
/// when it signs with a key it hands out per callback (ConnectWise `Metadata.key_url`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub notices: Vec<Notice>,
    pub key_url: Option<String>,
}

/// Why a webhook call was refused; the intake answers 401 or 400 and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The call did not prove it came from the system (401).
    #[error("webhook not authenticated: {0}")]
    Unauthenticated(String),
    /// The call's body or parameters cannot be read (400).
    #[error("webhook malformed: {0}")]
    Malformed(String),
}

/// One system's webhook reader: pure functions of the call's bytes.
pub trait WebhookReader: Send + Sync {
    /// The system whose calls this reads.
    fn system(&self) -> System;
    /// Checks the call proves it came from the system, given the connection's webhook
    /// secret (or, for a system that signs with a key it hands out, that key). Compared in
    /// constant time; the secret never appears in the error.
    fn verify(&self, call: &WebhookCall, secret: &[u8]) -> Result<(), WebhookError>;
    /// The records the call says changed. Kinds Tandem does not sync are left out; a call
    /// about nothing we sync is an empty delivery, not an error.
    fn parse(&self, call: &WebhookCall) -> Result<Delivery, WebhookError>;
    /// The answer the system expects once a call is taken, when it expects its own
    /// (Salesforce's SOAP acknowledgement of an Outbound Message): content type and body.
    /// `None`: any 2xx will do.
    fn acknowledgement(&self, call: &WebhookCall) -> Option<(&'static str, String)> {
        let _ = call;
        None
    }
}

/// Compares two byte strings in time that depends only on their lengths (`subtle`).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case() {
        let call = WebhookCall { headers: BTreeMap::from([("x-sig".into(), "abc".into())]), ..Default::default() };
        assert_eq!(call.header("X-Sig"), Some("abc"));
        assert_eq!(call.header("x-other"), None);
    }

    #[test]
    fn same_bytes_is_equality() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secret", b"secreT"));
        assert!(!same_bytes(b"secret", b"secrets"));
        assert!(same_bytes(b"", b""));
    }
}
