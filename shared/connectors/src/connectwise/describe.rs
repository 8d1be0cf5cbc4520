//! What ConnectWise PSA supports and how its records differ (psa-apis.md section 1).

use tandem_domain::describe::{COMMON_ACTIVITY_KINDS, Description, Precision, Webhooks};
use tandem_domain::{RecordKind, System};

/// ConnectWise, described. A re-import updates every opportunity field it imports
/// (PRODUCT.md section 4); `_info.lastUpdated` has whole seconds (psa-apis.md 1.8);
/// callbacks are registered through `/system/callbacks`. The writable fields are what the
/// export maps onto ConnectWise's company, contact, opportunity and activity bodies. An
/// opportunity's `value` and `line_items` are not fields of the opportunity (psa-apis.md
/// 1.6: "no amount field on the opportunity itself"): they are written as its forecast
/// items, on a create and on every update that changes them (see
/// `mapping::forecast_changes` for how the forecast is brought in step). Its `stage` is not
/// written: it is a reference into the tenant's own `/sales/stages` list while the record
/// carries only a stage name, with no mapping onto that list.
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
        (
            RecordKind::Opportunity,
            &["name", "status", "close_date", "value", "line_items", "company", "contact", "notes"],
        ),
        (RecordKind::Activity, &["subject", "body", "kind", "date", "done", "contact", "company"]),
    ],
    // S1 `Company.types`: "can be passed in only during new company creation (post)".
    created_only: &[(RecordKind::Company, &["company_type"])],
    precision: Precision::Seconds,
    webhooks: Webhooks::Registered,
};
