//! Mappings from an external system's choices to CRM values, one section per import
//! stage, saved in the system's order (PRODUCT.md section 3), and the connection they live on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::describe::Description;
use crate::error::DomainError;
use crate::external::{Choice, OptionList};
use crate::ids::{Stage, System, TenantId};
use crate::normalise::Timestamp;
use crate::vocab::{Role, is_slug};

/// One mapping section: per option list, external option id -> CRM value.
/// An option left out is unmapped: records with it are skipped.
pub type SectionMapping = BTreeMap<OptionList, BTreeMap<String, String>>;

/// The option lists a section is built from, per stage.
pub fn section_lists(stage: Stage) -> &'static [OptionList] {
    match stage {
        Stage::Users => &[OptionList::Roles],
        Stage::Companies => &[OptionList::CompanyTypes],
        Stage::Contacts => &[OptionList::ContactTypes],
        Stage::Solutions => &[OptionList::CatalogTypes, OptionList::CatalogCategories, OptionList::BillingOptions],
        Stage::Activities => &[OptionList::ActivityTypes],
        Stage::Opportunities => &[OptionList::OpportunityStatuses],
    }
}

fn check_label(system: &Description, list: OptionList, id: &str, value: &str) -> Result<(), DomainError> {
    let allowed: Vec<&str> = match list {
        OptionList::Roles => Role::ALL.iter().map(|r| r.as_str()).collect(),
        OptionList::ActivityTypes => system.activity_kinds.iter().map(|k| k.as_str()).collect(),
        _ if is_slug(value) => return Ok(()),
        _ => {
            return Err(DomainError::invalid(format!(
                "{}: option {id:?} maps to {value:?}; CRM values are 1-64 lower-case letters, digits or '_'",
                list.as_str()
            )));
        }
    };
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(DomainError::invalid(format!(
        "{}: option {id:?} maps to {value:?}, which is not one of: {}",
        list.as_str(),
        allowed.join(", ")
    )))
}

/// Checks a section body's shape before anything else (no connection or network needed):
/// a JSON object whose keys are all lists of the `stage`'s section, each an object.
/// Every unknown key is named.
pub fn check_section_shape(stage: Stage, body: &serde_json::Value) -> Result<(), DomainError> {
    let obj =
        body.as_object().ok_or_else(|| DomainError::invalid("a mapping must be a JSON object of option lists"))?;
    let lists = section_lists(stage);
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| *k != EXPORT_KEY && !lists.iter().any(|l| l.as_str() == *k))
        .collect();
    if !unknown.is_empty() {
        return Err(DomainError::invalid(format!(
            "unknown field(s) {}: the {stage} mapping takes {}",
            unknown.join(", "),
            lists.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some((key, _)) = obj.iter().find(|(_, v)| !v.is_object()) {
        return Err(DomainError::invalid(format!("{key} must be an object of option id -> CRM value")));
    }
    Ok(())
}

/// Parses a section body such as `{"company_types": {"12": "client"}}` for `stage`,
/// checking the lists belong to the section, that every option id is one the system
/// offers (`offered`), and that every value is a valid CRM value.
pub fn parse_section(
    system: &Description,
    stage: Stage,
    body: &serde_json::Value,
    offered: &BTreeMap<OptionList, Vec<Choice>>,
) -> Result<SectionMapping, DomainError> {
    let obj =
        body.as_object().ok_or_else(|| DomainError::invalid("a mapping must be a JSON object of option lists"))?;
    let lists = section_lists(stage);
    let mut out = SectionMapping::new();
    for (key, entries) in obj.iter().filter(|(k, _)| *k != EXPORT_KEY) {
        let list = OptionList::parse(key)?;
        if !lists.contains(&list) {
            return Err(DomainError::invalid(format!(
                "the {stage} mapping takes {}, not {key}",
                lists.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let entries = entries
            .as_object()
            .ok_or_else(|| DomainError::invalid(format!("{key} must be an object of option id -> CRM value")))?;
        let choices = offered.get(&list).map(Vec::as_slice).unwrap_or_default();
        let mut map = BTreeMap::new();
        for (id, value) in entries {
            if value.is_null() {
                continue;
            }
            let value = value
                .as_str()
                .ok_or_else(|| DomainError::invalid(format!("{key}: option {id:?} must map to a string or null")))?;
            if !choices.iter().any(|c| &c.id == id) {
                return Err(DomainError::invalid(format!(
                    "{key}: {id:?} is not an option the system offers (known: {})",
                    choices.iter().map(|c| format!("{}={}", c.id, c.name)).collect::<Vec<_>>().join(", ")
                )));
            }
            check_label(system, list, id, value)?;
            map.insert(id.clone(), value.to_string());
        }
        out.insert(list, map);
    }
    for list in lists {
        out.entry(*list).or_default();
    }
    Ok(out)
}

/// Connection status.
/// Whether `crm` is a vocabulary's "none" (a company without type, a contact without status).
fn is_none_value(crm: &str) -> bool {
    crm == crate::vocab::CompanyType::none().as_str() || crm == crate::vocab::ContactStatus::none().as_str()
}

/// The key of a mapping body that names, per list, the external option a CRM value goes
/// out as where several options map to it: `"export": {"company_types": {"client": "1"}}`.
pub const EXPORT_KEY: &str = "export";

/// Per option list, CRM value -> the external option export and sync out write.
pub type ExportChoices = BTreeMap<OptionList, BTreeMap<String, String>>;

/// The export choices of a mapping body (`"export"`), each checked against the section
/// being saved: the option chosen must be one that maps to that CRM value.
pub fn parse_export(
    stage: Stage,
    body: &serde_json::Value,
    section: &SectionMapping,
) -> Result<ExportChoices, DomainError> {
    let Some(export) = body.get(EXPORT_KEY) else { return Ok(ExportChoices::new()) };
    let lists = export
        .as_object()
        .ok_or_else(|| DomainError::invalid("export must be an object of option list -> {CRM value: option id}"))?;
    let mut out = ExportChoices::new();
    for (key, choices) in lists {
        let list = OptionList::parse(key)?;
        let mapped = section
            .get(&list)
            .ok_or_else(|| DomainError::invalid(format!("export: the {stage} mapping has no list {key}")))?;
        let choices = choices.as_object().ok_or_else(|| {
            DomainError::invalid(format!("export: {key} must be an object of CRM value -> option id"))
        })?;
        let mut chosen = BTreeMap::new();
        for (crm, option) in choices {
            let option = option
                .as_str()
                .ok_or_else(|| DomainError::invalid(format!("export: {key}: {crm:?} must name an option id")))?;
            if mapped.get(option).map(String::as_str) != Some(crm.as_str()) {
                return Err(DomainError::invalid(format!(
                    "export: {key}: option {option:?} does not map to {crm:?} in this mapping, so {crm:?} cannot go out as it"
                )));
            }
            chosen.insert(crm.clone(), option.to_string());
        }
        out.insert(list, chosen);
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Credentials validated and saved.
    Connected,
}

/// One tenant's link to one external system: account summary (never a secret),
/// mappings and which stages have completed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub tenant: TenantId,
    pub system: System,
    pub status: ConnectionStatus,
    /// Non-secret account details (site, company id, public key).
    pub account: serde_json::Value,
    /// The name of the secret holding the credentials.
    pub secret_name: String,
    /// Saved mapping sections.
    #[serde(default)]
    pub mappings: BTreeMap<Stage, SectionMapping>,
    /// When each stage last completed an import.
    #[serde(default)]
    pub completed_stages: BTreeMap<Stage, Timestamp>,
    /// The tenant's settings for this connection's flows.
    #[serde(default)]
    pub settings: crate::settings::ConnectionSettings,
    /// Where several external options map to one CRM value, the one export writes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub export_choices: ExportChoices,
    /// Where the system calls with changes, once inbound sync was switched on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::sync::WebhookEndpoint>,
    /// When the last complete poll of each stage started: the next poll's watermark.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub polled: BTreeMap<Stage, Timestamp>,
    /// What each stage's last id reconciliation found (hard deletes; see
    /// `usecases::sweep`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub swept: BTreeMap<Stage, crate::sync::SweepReport>,
    /// Sync out's catch-up watermark: every CRM change up to this instant was queued for
    /// this connection (see `usecases::sync_out::catch_up`). Set when outbound sync is
    /// switched on, so changes from before are never pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayed: Option<Timestamp>,
    /// Salesforce's field-level mode: the saved field map, checked against Salesforce's
    /// describe when saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_map: Option<crate::field_map::FieldMap>,
    /// Salesforce's field-level mode: which CRM records are sent, from when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selective_sync: Option<crate::selective::SelectiveSync>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    #[serde(default)]
    pub version: u64,
}

impl Connection {
    /// The CRM value `option` maps to in `stage`'s `list`, if mapped.
    pub fn mapped(&self, stage: Stage, list: OptionList, option: &str) -> Option<&str> {
        self.mappings.get(&stage)?.get(&list)?.get(option).map(String::as_str)
    }

    /// The external option a CRM value goes out as in `stage`'s `list` (export, sync out):
    /// the one option mapped to it, or the export choice where several are; `None` for the
    /// CRM's "none" value when no option maps to it. Why not, when it cannot go out.
    pub fn export_option(&self, stage: Stage, list: OptionList, crm: &str) -> Result<Option<String>, String> {
        let mapped = self.mappings.get(&stage).and_then(|s| s.get(&list));
        let options: Vec<&String> =
            mapped.map(|m| m.iter().filter(|(_, v)| v.as_str() == crm).map(|(k, _)| k).collect()).unwrap_or_default();
        let system = self.system.display_name();
        match options.as_slice() {
            [] if is_none_value(crm) => Ok(None),
            [] => Err(format!("{crm} maps to no {system} option in {}: map one in the {stage} mapping", list.as_str())),
            [one] if one.as_str() == crate::external::NO_TYPE => Ok(None),
            [one] => Ok(Some((*one).clone())),
            // The CRM's "none" goes out as no type when "(no type)" is among its options.
            several if several.iter().any(|o| o.as_str() == crate::external::NO_TYPE) && is_none_value(crm) => Ok(None),
            several => match self.export_choices.get(&list).and_then(|c| c.get(crm)) {
                Some(chosen) if several.contains(&chosen) => Ok(Some(chosen.clone())),
                _ => Err(format!(
                    "several {system} {} map to {crm} ({}): choose the one export writes in the {stage} mapping's \"export\"",
                    list.as_str(),
                    several.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )),
            },
        }
    }

    /// Refuses saving `stage`'s mapping while an earlier one in the system's order is missing.
    pub fn check_mapping_order(&self, stage: Stage) -> Result<(), DomainError> {
        let order = self.system.stages();
        let Some(pos) = order.iter().position(|s| *s == stage) else {
            return Err(DomainError::invalid(format!(
                "{} has no {stage} mapping; its mappings are: {}",
                self.system.display_name(),
                order.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        let missing: Vec<&str> =
            order[..pos].iter().filter(|s| !self.mappings.contains_key(s)).map(|s| s.as_str()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DomainError::refused(format!(
                "save the {} mapping first: {} mappings go in the order {}",
                missing.join(", "),
                self.system.display_name(),
                order.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" -> ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::fixtures::like;
    use serde_json::json;

    fn offered() -> BTreeMap<OptionList, Vec<Choice>> {
        let c = |id: &str, name: &str| Choice { id: id.into(), name: name.into() };
        BTreeMap::from([
            (
                OptionList::CompanyTypes,
                vec![c("1", "Client"), c("2", "Vendor"), c(crate::external::NO_TYPE, "(no type)")],
            ),
            (OptionList::ActivityTypes, vec![c("5", "Call")]),
        ])
    }

    #[test]
    fn a_section_maps_offered_options_to_crm_values_and_drops_nulls() {
        let m = parse_section(
            like(System::ConnectWise),
            Stage::Companies,
            &json!({"company_types": {"1": "client", "2": null, "(none)": "no_type"}}),
            &offered(),
        )
        .unwrap();
        let types = &m[&OptionList::CompanyTypes];
        assert_eq!(types.get("1").map(String::as_str), Some("client"));
        assert!(!types.contains_key("2"));
        assert_eq!(types.get("(none)").map(String::as_str), Some("no_type"));
    }

    #[test]
    fn an_option_the_system_does_not_offer_is_refused_by_name() {
        let err = parse_section(
            like(System::ConnectWise),
            Stage::Companies,
            &json!({"company_types": {"99": "client"}}),
            &offered(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"99\" is not an option"), "{err}");
    }

    #[test]
    fn a_list_from_another_section_is_refused() {
        let err = parse_section(
            like(System::ConnectWise),
            Stage::Companies,
            &json!({"activity_types": {"5": "call"}}),
            &offered(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("takes company_types"), "{err}");
    }

    #[test]
    fn activity_types_map_only_onto_call_email_note_and_meeting() {
        let err = parse_section(
            like(System::ConnectWise),
            Stage::Activities,
            &json!({"activity_types": {"5": "lunch"}}),
            &offered(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("call, email, note, meeting"), "{err}");
        assert!(
            parse_section(
                like(System::ConnectWise),
                Stage::Activities,
                &json!({"activity_types": {"5": "call"}}),
                &offered()
            )
            .is_ok()
        );
    }

    #[test]
    fn halo_activities_map_onto_notes_only() {
        let err =
            parse_section(like(System::Halo), Stage::Activities, &json!({"activity_types": {"5": "call"}}), &offered())
                .unwrap_err();
        assert!(err.to_string().contains("not one of: note"), "{err}");
        assert!(
            parse_section(like(System::Halo), Stage::Activities, &json!({"activity_types": {"5": "note"}}), &offered())
                .is_ok()
        );
    }

    fn connection_with(section: SectionMapping, choices: ExportChoices) -> Connection {
        let mut c = crate::describe::fixtures::connection(System::ConnectWise);
        c.mappings.insert(Stage::Companies, section);
        c.export_choices = choices;
        c
    }

    #[test]
    fn a_crm_value_goes_out_as_its_one_option_or_the_chosen_one_of_several() {
        let body = json!({"company_types": {"1": "client", "2": "client", "(none)": "no_type"}});
        let section = parse_section(like(System::ConnectWise), Stage::Companies, &body, &offered()).unwrap();
        let c = connection_with(section.clone(), ExportChoices::new());
        let list = OptionList::CompanyTypes;
        let err = c.export_option(Stage::Companies, list, "client").unwrap_err();
        assert!(err.contains("several") && err.contains("1, 2") && err.contains("\"export\""), "{err}");
        assert_eq!(c.export_option(Stage::Companies, list, "no_type"), Ok(None));
        let err = c.export_option(Stage::Companies, list, "prospect").unwrap_err();
        assert!(err.contains("prospect maps to no ConnectWise option"), "{err}");
        let with_choice =
            json!({"company_types": {"1": "client", "2": "client"}, "export": {"company_types": {"client": "2"}}});
        let choices = parse_export(Stage::Companies, &with_choice, &section).unwrap();
        let c = connection_with(section.clone(), choices);
        assert_eq!(c.export_option(Stage::Companies, list, "client"), Ok(Some("2".into())));
    }

    #[test]
    fn an_export_choice_must_be_an_option_mapped_to_that_value() {
        let body =
            json!({"company_types": {"1": "client", "2": "vendor"}, "export": {"company_types": {"client": "2"}}});
        check_section_shape(Stage::Companies, &body).unwrap();
        let section = parse_section(like(System::ConnectWise), Stage::Companies, &body, &offered()).unwrap();
        let err = parse_export(Stage::Companies, &body, &section).unwrap_err();
        assert!(err.to_string().contains("does not map to \"client\""), "{err}");
    }

    #[test]
    fn crm_values_must_be_plain_labels() {
        let err = parse_section(
            like(System::ConnectWise),
            Stage::Companies,
            &json!({"company_types": {"1": "Big Client!"}}),
            &offered(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("lower-case"), "{err}");
    }
}
