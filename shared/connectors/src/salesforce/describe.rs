//! What Salesforce supports and how its records differ (salesforce-api.md).

use tandem_domain::describe::{COMMON_ACTIVITY_KINDS, Description, Precision, Webhooks};
use tandem_domain::{RecordKind, System};

/// Salesforce, described. A re-import updates an opportunity's name, status (stage),
/// close date and lifetime value (amount) (PRODUCT.md section 4). `LastModifiedDate` is
/// written with milliseconds that are always `.000`, so versions are as precise as
/// seconds. Change notifications need an administrator's set-up (a connected app and
/// Change Data Capture), so they count as manual.
///
/// Writable: activities are written as Tasks, whose `ActivityDate` holds a day only
/// (salesforce-api.md 3.2), so an activity's date cannot read back as sent and `date` is
/// not writable (a new Task still gets the day: `mapping::task_due_day`); a Task's type
/// (`TaskSubtype`) is set on create only (UNCONFIRMED whether an update may change it) and
/// its `AccountId` is derived, so `kind` and `company` are not either. An Opportunity has
/// no contact field.
pub const DESCRIPTION: Description = Description {
    system: System::Salesforce,
    stages: System::Salesforce.stages(),
    typed_records: true,
    contact_list: None,
    opportunity_updates: Some(&["name", "status", "close_date", "lifetime_value"]),
    activity_kinds: COMMON_ACTIVITY_KINDS,
    writable: &[
        (RecordKind::Company, &["name", "phone", "website", "address", "company_type"]),
        (RecordKind::Contact, &["first_name", "last_name", "email", "phone", "title", "company"]),
        (RecordKind::Opportunity, &["name", "status", "close_date", "value", "company"]),
        (RecordKind::Activity, &["subject", "body", "done", "contact"]),
    ],
    created_only: &[],
    precision: Precision::Seconds,
    webhooks: Webhooks::Manual,
};
