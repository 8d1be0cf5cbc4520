//! What ConnectWise PSA supports and how its records differ (psa-apis.md section 1).

use tandem_domain::describe::{COMMON_ACTIVITY_KINDS, Description, Precision, Webhooks};
use tandem_domain::{RecordKind, System};

/// ConnectWise, described. A re-import updates every opportunity field it imports
/// (PRODUCT.md section 4); `_info.lastUpdated` has whole seconds (psa-apis.md 1.8);
/// callbacks are registered through `/system/callbacks`. The writable fields are what the
/// export maps onto ConnectWise's company, contact, opportunity and activity bodies, less two
/// opportunity fields ConnectWise does not hold as values of the opportunity: its `value` is
/// the sum of its forecast lines (psa-apis.md 1.6: "no amount field on the opportunity
/// itself"), separate records with their own required type and status, and its `stage` is a
/// reference into the tenant's own `/sales/stages` list while the record carries only a
/// stage name, with no mapping onto that list. Writing either would mean inventing forecast
/// lines or guessing a stage by name, so neither is written.
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
        (RecordKind::Opportunity, &["name", "status", "close_date", "company", "contact", "notes"]),
        (RecordKind::Activity, &["subject", "body", "kind", "date", "done", "contact", "company"]),
    ],
    precision: Precision::Seconds,
    webhooks: Webhooks::Registered,
};
