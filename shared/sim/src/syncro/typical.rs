//! How an MSP typically maps its Syncro option lists onto the CRM: used by the demo to save
//! mappings, and by the ground truth to decide what a full import does. Syncro has no
//! company or contact types, so those lists hold only the "no type" choice.

use serde::{Deserialize, Serialize};

/// The option name that stands for "records with no type" (the only company and contact
/// type choice Syncro offers).
pub const NO_TYPE: &str = "(no type)";

/// One option list: (Syncro option name, CRM value or `None` = left unmapped).
pub type OptionTable = Vec<(String, Option<String>)>;

/// The typical mapping, one table per option list, options named as Syncro names them.
/// Lists Syncro does not have (catalog, billing, activity types) are empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypicalMapping {
    /// User group name -> CRM role.
    pub roles: OptionTable,
    /// Only [`NO_TYPE`] -> CRM company type.
    pub company_types: OptionTable,
    /// Only [`NO_TYPE`] -> CRM contact status.
    pub contact_types: OptionTable,
    /// Empty: Syncro has no catalog import.
    pub catalog_types: OptionTable,
    /// Empty: Syncro has no catalog import.
    pub catalog_categories: OptionTable,
    /// Empty: Syncro has no catalog import.
    pub billing_options: OptionTable,
    /// Empty: Syncro has no activity import.
    pub activity_types: OptionTable,
    /// Lead status -> CRM opportunity status.
    pub opportunity_statuses: OptionTable,
}

impl TypicalMapping {
    /// The CRM value `option` maps to in `table`; `None` when unmapped or unknown.
    pub fn lookup<'a>(table: &'a [(String, Option<String>)], option: &str) -> Option<&'a str> {
        table.iter().find(|(name, _)| name == option).and_then(|(_, v)| v.as_deref())
    }
}

fn table(pairs: &[(&str, Option<&str>)]) -> OptionTable {
    pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
}

/// The mapping an MSP typically chooses (the `Technicians` group left unmapped on purpose).
pub fn typical_mapping() -> TypicalMapping {
    TypicalMapping {
        roles: table(&[
            ("Admins", Some("admin")),
            ("Managers", Some("admin")),
            ("Sales", Some("salesperson")),
            ("Marketing", Some("marketer")),
            ("Technicians", None),
        ]),
        company_types: table(&[(NO_TYPE, Some("no_type"))]),
        contact_types: table(&[(NO_TYPE, Some("no_status"))]),
        catalog_types: Vec::new(),
        catalog_categories: Vec::new(),
        billing_options: Vec::new(),
        activity_types: Vec::new(),
        opportunity_statuses: table(&[
            ("New", Some("open")),
            ("Lead", Some("open")),
            ("First Contact", Some("open")),
            ("Opportunity", Some("open")),
            ("Prospect", Some("open")),
            ("Waiting on Client", Some("open")),
            ("In Negotiation", Some("open")),
            ("Pending", Some("open")),
            ("Won", Some("won")),
            ("Lost", Some("lost")),
        ]),
    }
}
