//! How an MSP typically maps its HaloPSA option lists onto the CRM: used by the demo to
//! save mappings, and by the ground truth to decide what a full import does. Options are
//! named as the Halo connector names its choices; the table type is shared with the other
//! simulators so one set-up routine serves them all.

use crate::connectwise::typical::table;
pub use crate::connectwise::typical::{NO_TYPE, OptionTable, TypicalMapping};

/// The name of the activity kind CRM notes (`/api/CRMNote`) come in as: not an action
/// outcome, so the connector offers it as a choice of its own.
pub const CRM_NOTE_KIND: &str = "CRM Note";

/// The mapping an MSP typically chooses (some options left unmapped on purpose). Halo has
/// no contact types: the only choice is [`NO_TYPE`], mapped, so no contact is skipped for
/// its type. Halo activities may map only onto `note`. No catalog lists (no solutions stage).
pub fn typical_mapping() -> TypicalMapping {
    TypicalMapping {
        roles: table(&[
            ("Administrator", Some("admin")),
            ("Sales", Some("salesperson")),
            ("Marketing", Some("marketer")),
            ("Technician", None),
            ("API", None),
        ]),
        company_types: table(&[
            ("Customer", Some("client")),
            ("Prospect", Some("prospect")),
            ("Partner", Some("partner")),
            ("Supplier", None),
            ("Competitor", None),
            (NO_TYPE, Some("no_type")),
        ]),
        contact_types: table(&[(NO_TYPE, Some("no_status"))]),
        catalog_types: Vec::new(),
        catalog_categories: Vec::new(),
        billing_options: Vec::new(),
        activity_types: table(&[
            ("Note", Some("note")),
            ("Phone Call", Some("note")),
            ("Email", Some("note")),
            ("Meeting", Some("note")),
            (CRM_NOTE_KIND, Some("note")),
            ("Follow-up", None),
            ("Private Note", None),
        ]),
        opportunity_statuses: table(&[
            ("Open", Some("open")),
            ("Won", Some("won")),
            ("Lost", Some("lost")),
            ("On Hold", None),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_with_choices_leaves_one_unmapped_except_contact_types() {
        let m = typical_mapping();
        for t in [&m.roles, &m.company_types, &m.activity_types, &m.opportunity_statuses] {
            assert!(t.iter().any(|(_, v)| v.is_none()));
        }
        assert!(m.activity_types.iter().all(|(_, v)| v.as_deref().is_none_or(|k| k == "note")));
    }
}
