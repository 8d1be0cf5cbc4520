//! How an MSP typically maps its Syncro option lists onto the CRM: used by the demo to save
//! mappings, and by the ground truth to decide what a full import does. Syncro has no
//! company or contact types, so those lists hold only the "no type" choice ([`NO_TYPE`]),
//! and no catalog, billing or activity lists, so those are empty. The table type is
//! shared with the other simulators.

use crate::connectwise::typical::table;
pub use crate::connectwise::typical::{NO_TYPE, OptionTable, TypicalMapping};

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
