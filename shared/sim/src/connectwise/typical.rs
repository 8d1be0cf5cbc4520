//! How an MSP typically maps its ConnectWise option lists onto the CRM: used by the demo
//! to save mappings, and by the ground truth to decide what a full import does.

use serde::{Deserialize, Serialize};

/// The option name that stands for "records with no type".
pub const NO_TYPE: &str = "(no type)";

/// One option list: (ConnectWise option name, CRM value or `None` = left unmapped).
pub type OptionTable = Vec<(String, Option<String>)>;

/// The typical mapping, one table per option list, options named as ConnectWise names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypicalMapping {
    /// Security role name -> CRM role.
    pub roles: OptionTable,
    /// Company type name (or [`NO_TYPE`]) -> CRM company type.
    pub company_types: OptionTable,
    /// Contact type description (or [`NO_TYPE`]) -> CRM contact status.
    pub contact_types: OptionTable,
    /// Catalog (product) type name -> CRM solution type.
    pub catalog_types: OptionTable,
    /// Catalog category name -> CRM solution category.
    pub catalog_categories: OptionTable,
    /// Billing option (`billableOption`) -> CRM billing.
    pub billing_options: OptionTable,
    /// Activity type name -> CRM activity kind.
    pub activity_types: OptionTable,
    /// Opportunity status name -> CRM opportunity status.
    pub opportunity_statuses: OptionTable,
}

impl TypicalMapping {
    /// The CRM value `option` maps to in `table`; `None` when unmapped or unknown.
    pub fn lookup<'a>(table: &'a [(String, Option<String>)], option: &str) -> Option<&'a str> {
        table.iter().find(|(name, _)| name == option).and_then(|(_, v)| v.as_deref())
    }
}

/// An option table from `(option name, CRM value)` pairs.
pub(crate) fn table(pairs: &[(&str, Option<&str>)]) -> OptionTable {
    pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
}

/// The mapping an MSP typically chooses (some options left unmapped on purpose).
pub fn typical_mapping() -> TypicalMapping {
    TypicalMapping {
        roles: table(&[
            ("Admin", Some("admin")),
            ("Sales", Some("salesperson")),
            ("Marketing", Some("marketer")),
            ("Technician", None),
            ("API", None),
        ]),
        company_types: table(&[
            ("Client", Some("client")),
            ("Prospect", Some("prospect")),
            ("Partner", Some("partner")),
            ("Competitor", None),
            ("Vendor", None),
            (NO_TYPE, Some("no_type")),
        ]),
        contact_types: table(&[
            ("Decision Maker", Some("talking")),
            ("Technical Contact", Some("educating")),
            ("Billing", Some("no_status")),
            ("End User", Some("no_status")),
            ("Vendor Rep", None),
            (NO_TYPE, Some("no_status")),
        ]),
        catalog_types: table(&[
            ("Hardware", Some("hardware")),
            ("Software", Some("software")),
            ("Service", Some("service")),
            ("Agreement", Some("agreement")),
            ("Internal", None),
        ]),
        catalog_categories: table(&[
            ("Managed Services", Some("managed_services")),
            ("Hardware", Some("hardware")),
            ("Software", Some("software")),
            ("Security", Some("security")),
            ("Misc", None),
        ]),
        billing_options: table(&[
            ("Billable", Some("billable")),
            ("NoCharge", Some("no_charge")),
            ("NoDefault", Some("billable")),
            ("DoNotBill", None),
        ]),
        activity_types: table(&[
            ("Call", Some("call")),
            ("Email", Some("email")),
            ("Meeting", Some("meeting")),
            ("Appointment", Some("meeting")),
            ("Note", Some("note")),
            ("Follow-up", None),
            ("Quote", None),
        ]),
        opportunity_statuses: table(&[
            ("Open", Some("open")),
            ("Won", Some("won")),
            ("Lost", Some("lost")),
            ("No Decision", Some("lost")),
        ]),
    }
}
