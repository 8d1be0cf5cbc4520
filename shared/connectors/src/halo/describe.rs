//! What HaloPSA supports and how its records differ (psa-apis.md section 2).

use tandem_domain::describe::{Description, Precision, Webhooks};
use tandem_domain::vocab::ActivityKind;
use tandem_domain::{RecordKind, System};

/// HaloPSA, described. A re-import updates an opportunity's name and status only, and
/// its activity types map onto notes only (PRODUCT.md section 4); webhooks are created
/// through `/Webhook`. Its dates carry milliseconds and no offset (taken as UTC; see
/// `ExtVersion::parse`), unconfirmed for every endpoint. Activities are written as
/// client-level CRM notes (`/CRMNote`), which have no subject (H1 `AreaNote`: note, detail,
/// date, client, user; they read back as "CRM Note"), so an activity's subject is not
/// written; actions need a ticket Tandem does not have.
pub const DESCRIPTION: Description = Description {
    system: System::Halo,
    stages: System::Halo.stages(),
    typed_records: true,
    contact_list: None,
    opportunity_updates: Some(&["name", "status"]),
    activity_kinds: &[ActivityKind::Note],
    writable: &[
        (RecordKind::Company, &["name", "phone", "website", "address", "company_type"]),
        (RecordKind::Contact, &["first_name", "last_name", "email", "phone", "title", "company"]),
        (RecordKind::Opportunity, &["name", "status", "value", "company", "contact"]),
        (RecordKind::Activity, &["body", "date", "contact", "company"]),
    ],
    created_only: &[],
    precision: Precision::Milliseconds,
    webhooks: Webhooks::Registered,
};
