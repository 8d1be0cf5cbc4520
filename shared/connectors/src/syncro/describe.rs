//! What Syncro supports and how its records differ (psa-apis.md section 3).

use tandem_domain::describe::{Description, Precision, Webhooks};
use tandem_domain::{RecordKind, System};

/// Syncro, described. Customers and contacts have no types, so all come in, every
/// contact into "Syncro General"; a re-import updates a lead's name and status
/// (PRODUCT.md section 4); there is no activity stage. `updated_at` has milliseconds and
/// an offset; webhooks are notification sets an administrator sets up by hand.
///
/// Writable: a customer has no website field (psa-apis.md 3.4, confirmed absent from Y1's
/// Customer body) and no type, so neither is written; Syncro has no activity Tandem writes
/// (only ticket comments, on tickets Tandem does not sync).
pub const DESCRIPTION: Description = Description {
    system: System::Syncro,
    stages: System::Syncro.stages(),
    typed_records: false,
    contact_list: Some("Syncro General"),
    opportunity_updates: Some(&["name", "status"]),
    activity_kinds: &[],
    writable: &[
        (RecordKind::Company, &["name", "phone", "address"]),
        (RecordKind::Contact, &["first_name", "last_name", "email", "phone", "title", "company"]),
        (RecordKind::Opportunity, &["name", "status", "company", "contact"]),
    ],
    created_only: &[],
    precision: Precision::Milliseconds,
    webhooks: Webhooks::Manual,
};
