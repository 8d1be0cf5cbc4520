//! How an MSP typically maps its Salesforce option lists onto the CRM, by option name as
//! the Salesforce connector names its choices (profile names, picklist labels, the fixed
//! activity choices `Call`, `Email`, `Task`, `Event`, and `(no type)`). Used by demos to
//! save mappings and by the ground truth. Same type as ConnectWise's, catalog lists empty.

use crate::connectwise::typical::table;
pub use crate::connectwise::typical::{NO_TYPE, OptionTable, TypicalMapping};

/// The mapping an MSP typically chooses (some options left unmapped on purpose).
pub fn typical_mapping() -> TypicalMapping {
    TypicalMapping {
        roles: table(&[
            ("System Administrator", Some("admin")),
            ("Standard User", Some("salesperson")),
            ("Marketing User", Some("marketer")),
            ("Contract Manager", None),
            ("Read Only", None),
        ]),
        company_types: table(&[
            ("Prospect", Some("prospect")),
            ("Customer - Direct", Some("client")),
            ("Customer - Channel", Some("client")),
            ("Channel Partner / Reseller", Some("partner")),
            ("Installation Partner", Some("partner")),
            ("Technology Partner", None),
            ("Other", None),
            (NO_TYPE, Some("no_type")),
        ]),
        contact_types: table(&[
            ("New", Some("no_status")),
            ("Working", Some("working_it")),
            ("Nurturing", Some("educating")),
            ("Qualified", Some("talking")),
            ("Unqualified", None),
            ("Do Not Contact", None),
            (NO_TYPE, Some("no_status")),
        ]),
        catalog_types: Vec::new(),
        catalog_categories: Vec::new(),
        billing_options: Vec::new(),
        activity_types: table(&[
            ("Call", Some("call")),
            ("Email", Some("email")),
            ("Task", None),
            ("Event", Some("meeting")),
        ]),
        opportunity_statuses: table(&[
            ("Prospecting", Some("open")),
            ("Qualification", Some("open")),
            ("Needs Analysis", Some("open")),
            ("Value Proposition", Some("open")),
            ("Id. Decision Makers", Some("open")),
            ("Perception Analysis", None),
            ("Proposal/Price Quote", Some("open")),
            ("Negotiation/Review", Some("open")),
            ("Closed Won", Some("won")),
            ("Closed Lost", Some("lost")),
        ]),
    }
}

/// The activity option name of a Task subtype or an Event, as the connector names it:
/// `Call`, `Email` and `Task` for those Task subtypes, `Event` for events; other subtypes
/// (`ListEmail`, `Cadence`, `LinkedIn`) keep their own name and are offered by no list.
pub(crate) fn activity_option(subtype: Option<&str>) -> String {
    match subtype {
        None => "Event".into(),
        Some("") => "Task".into(),
        Some(s) => s.to_string(),
    }
}
