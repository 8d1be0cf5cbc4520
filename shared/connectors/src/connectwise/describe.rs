//! What ConnectWise PSA supports and how its records differ (psa-apis.md section 1).

use tandem_domain::describe::{COMMON_ACTIVITY_KINDS, Description, Precision, Webhooks};
use tandem_domain::{RecordKind, System};

/// ConnectWise, described. A re-import updates every opportunity field it imports
/// (PRODUCT.md section 4); `_info.lastUpdated` has whole seconds (psa-apis.md 1.8);
/// callbacks are registered through `/system/callbacks`. The writable fields are what the
/// export maps onto ConnectWise's company, contact, opportunity and activity bodies.
pub const DESCRIPTION: Description = Description {
    system: System::ConnectWise,
    stages: System::ConnectWise.stages(),
    typed_records: true,
    contact_list: None,
    opportunity_updates: None,
    activity_kinds: COMMON_ACTIVITY_KINDS,
    writable: &[
        (RecordKind::Company, &["name", "phone", "website", "address", "company_type"]),
        (RecordKind::Contact, &["first_name", "last_name", "email", "phone", "title", "company"]),
        (RecordKind::Opportunity, &["name", "status", "stage", "close_date", "value", "company", "contact", "notes"]),
        (RecordKind::Activity, &["subject", "body", "kind", "date", "done", "contact", "company"]),
    ],
    precision: Precision::Seconds,
    webhooks: Webhooks::Registered,
};
