//! The Salesforce webhook reader (pure): verify a call, parse its notices. NOT BUILT YET:
//! every call is refused.

use tandem_domain::System;
use tandem_domain::webhook::{Delivery, WebhookCall, WebhookError, WebhookReader};

/// Salesforce's webhook calls, read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reader;

/// The one reader.
pub const READER: Reader = Reader;

impl WebhookReader for Reader {
    fn system(&self) -> System {
        System::Salesforce
    }

    fn verify(&self, _call: &WebhookCall, _secret: &[u8]) -> Result<(), WebhookError> {
        Err(WebhookError::Unauthenticated("Salesforce webhooks are not built yet".into()))
    }

    fn parse(&self, _call: &WebhookCall) -> Result<Delivery, WebhookError> {
        Err(WebhookError::Malformed("Salesforce webhooks are not built yet".into()))
    }
}
