//! Ground truth of a full ConnectWise import with the typical mapping, worked out from
//! what each generated record was built to exercise (its plan), not by running an import.
//! The rules (checks in order, first that applies decides) are those of the import:
//! users, companies, contacts, solutions, activities; opportunities are all created.

use super::typical::{NO_TYPE, TypicalMapping};
use crate::seed::Expected;
pub(crate) use crate::truth::ActivityPlan;
pub(crate) use crate::truth::{ACTIVITIES, COMPANIES, CONTACTS, OPPORTUNITIES, Outcome, SOLUTIONS, USERS};
use crate::truth::{activity_outcome, count_table};

/// A member as built: the facts the user rules read.
#[derive(Clone, Debug)]
pub(crate) struct MemberPlan {
    pub inactive: bool,
    pub has_email: bool,
    pub role: String,
    /// A CRM seed user has this member's email (another letter case).
    pub link: bool,
}

/// A company as built.
#[derive(Clone, Debug)]
pub(crate) struct CompanyPlan {
    pub deleted: bool,
    pub inactive_status: bool,
    pub types: Vec<String>,
    /// Built to link to a CRM seed company that no earlier company takes.
    pub link: bool,
}

/// A contact as built.
#[derive(Clone, Debug)]
pub(crate) struct ContactPlan {
    pub inactive: bool,
    pub types: Vec<String>,
    /// Index of its company among the generated companies.
    pub company: Option<usize>,
    /// Built to link to a CRM seed contact that no earlier contact takes.
    pub link: bool,
}

/// A catalog item as built.
#[derive(Clone, Debug)]
pub(crate) struct SolutionPlan {
    pub inactive: bool,
    pub kind: String,
    pub category: String,
    pub billing: String,
}

/// Every record's plan, in id order per stage.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plans {
    pub members: Vec<MemberPlan>,
    pub companies: Vec<CompanyPlan>,
    pub contacts: Vec<ContactPlan>,
    pub solutions: Vec<SolutionPlan>,
    pub activities: Vec<ActivityPlan>,
    pub opportunities: usize,
}

fn first_type(types: &[String]) -> &str {
    types.first().map_or(NO_TYPE, String::as_str)
}

/// inactive -> no email -> role not mapped -> linked / created.
pub(crate) fn member_outcome(p: &MemberPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::user_outcome(p.inactive, p.has_email, &p.role, p.link, m)
}

/// deleted -> inactive status -> first type not mapped -> linked / created.
pub(crate) fn company_outcome(p: &CompanyPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::company_outcome(p.deleted, p.inactive_status, Some(first_type(&p.types)), p.link, m)
}

/// inactive -> first type not mapped -> company not imported -> linked / created.
pub(crate) fn contact_outcome(p: &ContactPlan, companies: &[Outcome], m: &TypicalMapping) -> Outcome {
    crate::truth::contact_outcome(p.inactive, Some(first_type(&p.types)), p.company, p.link, companies, m)
}

/// inactive -> type -> category -> billing not mapped -> created.
pub(crate) fn solution_outcome(p: &SolutionPlan, m: &TypicalMapping) -> Outcome {
    if p.inactive {
        Outcome::Skipped("inactive")
    } else if TypicalMapping::lookup(&m.catalog_types, &p.kind).is_none() {
        Outcome::Skipped("type_not_mapped")
    } else if TypicalMapping::lookup(&m.catalog_categories, &p.category).is_none() {
        Outcome::Skipped("category_not_mapped")
    } else if TypicalMapping::lookup(&m.billing_options, &p.billing).is_none() {
        Outcome::Skipped("billing_not_mapped")
    } else {
        Outcome::Created
    }
}

/// The count table of a full import under mapping `m`.
pub(crate) fn expected(plans: &Plans, m: &TypicalMapping) -> Expected {
    let members: Vec<Outcome> = plans.members.iter().map(|p| member_outcome(p, m)).collect();
    let companies: Vec<Outcome> = plans.companies.iter().map(|p| company_outcome(p, m)).collect();
    let contacts: Vec<Outcome> = plans.contacts.iter().map(|p| contact_outcome(p, &companies, m)).collect();
    let solutions: Vec<Outcome> = plans.solutions.iter().map(|p| solution_outcome(p, m)).collect();
    let activities: Vec<Outcome> =
        plans.activities.iter().map(|p| activity_outcome(p, &contacts, &members, m)).collect();
    let stages: [(&str, &[Outcome]); 5] = [
        (USERS, &members),
        (COMPANIES, &companies),
        (CONTACTS, &contacts),
        (SOLUTIONS, &solutions),
        (ACTIVITIES, &activities),
    ];
    count_table(&stages, plans.opportunities)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use serde_json::Value;

    use super::*;
    use crate::connectwise::{GenConfig, Tenant, typical_mapping};
    use crate::normalise::{email_key, name_key, phone_key, website_key};
    use crate::seed::tally;
    use crate::truth::check::{assert_every_outcome_shows_up, link_company, link_contact, stage_totals};

    fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
        v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }

    fn first_type_name(v: &Value) -> String {
        text(v, "/types/0/name").unwrap_or(NO_TYPE).to_string()
    }

    /// A from-scratch import of the generated JSON (normalised matching, links taken at
    /// most once, ascending ids): an independent check of the planned truth.
    fn independent(t: &Tenant) -> Expected {
        let m = typical_mapping();
        let mut e = Expected::new();
        let mapped = |table: &[(String, Option<String>)], name: &str| TypicalMapping::lookup(table, name).is_some();

        let seed_users: HashSet<String> = t.crm_seed().users.iter().filter_map(|u| email_key(&u.email)).collect();
        let mut members: HashMap<String, bool> = HashMap::new();
        for r in t.records("system/members") {
            let outcome = if r["inactiveFlag"] == true {
                "skipped:inactive"
            } else if text(r, "/primaryEmail").and_then(email_key).is_none() {
                "skipped:no_email"
            } else if !mapped(&m.roles, text(r, "/securityRole/name").unwrap_or(NO_TYPE)) {
                "skipped:role_not_mapped"
            } else if text(r, "/primaryEmail").and_then(email_key).is_some_and(|k| seed_users.contains(&k)) {
                "linked"
            } else {
                "created"
            };
            members.insert(text(r, "/identifier").unwrap_or_default().to_string(), !outcome.starts_with("skipped"));
            tally(&mut e, USERS, outcome);
        }

        let inactive_status: HashSet<i64> = t
            .records("company/companies/statuses")
            .iter()
            .filter(|s| s["inactiveFlag"] == true)
            .filter_map(|s| s["id"].as_i64())
            .collect();
        let seeds = &t.crm_seed().companies;
        let mut taken = vec![false; seeds.len()];
        let mut companies: HashMap<i64, bool> = HashMap::new();
        for r in t.records("company/companies") {
            let outcome = if r["deletedFlag"] == true {
                "skipped:deleted"
            } else if r["status"]["id"].as_i64().is_some_and(|id| inactive_status.contains(&id)) {
                "skipped:inactive"
            } else if !mapped(&m.company_types, &first_type_name(r)) {
                "skipped:type_not_mapped"
            } else {
                let phone = text(r, "/phoneNumber").and_then(phone_key);
                let site = text(r, "/website").and_then(website_key);
                let name = text(r, "/name").and_then(name_key);
                link_company(seeds, &mut taken, phone, site, name)
            };
            companies.insert(r["id"].as_i64().unwrap_or_default(), !outcome.starts_with("skipped"));
            tally(&mut e, COMPANIES, outcome);
        }

        let seed_contacts = &t.crm_seed().contacts;
        let mut taken = vec![false; seed_contacts.len()];
        let mut contacts: HashMap<i64, bool> = HashMap::new();
        for r in t.records("company/contacts") {
            let company_ok = r["company"]["id"].as_i64().is_none_or(|id| companies.get(&id).copied().unwrap_or(false));
            let outcome = if r["inactiveFlag"] == true {
                "skipped:inactive"
            } else if !mapped(&m.contact_types, &first_type_name(r)) {
                "skipped:type_not_mapped"
            } else if !company_ok {
                "skipped:company_not_imported"
            } else {
                let items: Vec<&Value> = r["communicationItems"]
                    .as_array()
                    .map(|a| a.iter().filter(|i| i["communicationType"] == "Email").collect())
                    .unwrap_or_default();
                let email =
                    items.iter().find(|i| i["defaultFlag"] == true).or(items.first()).and_then(|i| text(i, "/value"));
                let key = email.and_then(email_key);
                link_contact(seed_contacts, &mut taken, key)
            };
            contacts.insert(r["id"].as_i64().unwrap_or_default(), !outcome.starts_with("skipped"));
            tally(&mut e, CONTACTS, outcome);
        }

        for r in t.records("procurement/catalog") {
            let outcome = if r["inactiveFlag"] == true {
                "skipped:inactive"
            } else if !mapped(&m.catalog_types, text(r, "/type/name").unwrap_or(NO_TYPE)) {
                "skipped:type_not_mapped"
            } else if !mapped(&m.catalog_categories, text(r, "/category/name").unwrap_or(NO_TYPE)) {
                "skipped:category_not_mapped"
            } else if !mapped(&m.billing_options, text(r, "/billableOption").unwrap_or(NO_TYPE)) {
                "skipped:billing_not_mapped"
            } else {
                "created"
            };
            tally(&mut e, SOLUTIONS, outcome);
        }

        for r in t.records("sales/activities") {
            let outcome = if !mapped(&m.activity_types, text(r, "/type/name").unwrap_or(NO_TYPE)) {
                "skipped:type_not_mapped"
            } else if !r["contact"]["id"].as_i64().is_some_and(|id| contacts.get(&id).copied().unwrap_or(false)) {
                "skipped:contact_not_in_crm"
            } else if !text(r, "/_info/enteredBy").is_some_and(|who| members.get(who).copied().unwrap_or(false)) {
                "skipped:creator_not_linked"
            } else {
                "created"
            };
            tally(&mut e, ACTIVITIES, outcome);
        }
        for _ in t.records("sales/opportunities") {
            tally(&mut e, OPPORTUNITIES, "created");
        }
        e
    }

    #[test]
    fn the_planned_truth_matches_an_independent_import_of_the_generated_data() {
        for (seed, companies) in [(1, 0), (2, 3), (3, 25), (4, 120), (42, 600), (7, 1800)] {
            let t = Tenant::generate(&GenConfig::with_companies(seed, companies));
            assert_eq!(t.expected(), &independent(&t), "seed {seed}, {companies} companies");
        }
    }

    #[test]
    fn truth_totals_per_stage_equal_the_generated_records_of_that_stage() {
        let t = Tenant::generate(&GenConfig::with_companies(9, 1800));
        let totals = stage_totals(t.expected());
        assert_eq!(totals, t.stage_sizes());
        assert_eq!(totals.values().sum::<usize>(), t.record_count());
        assert!(t.expected().values().all(|m| m.values().all(|n| *n > 0)));
    }

    #[test]
    fn every_kind_of_mess_shows_up_in_the_default_tenant() {
        let t = Tenant::generate(&GenConfig::default());
        let e = t.expected();
        let want: &[(&str, &[&str])] = &[
            (USERS, &["created", "linked", "skipped:inactive", "skipped:no_email", "skipped:role_not_mapped"]),
            (COMPANIES, &["created", "linked", "skipped:deleted", "skipped:inactive", "skipped:type_not_mapped"]),
            (
                CONTACTS,
                &["created", "linked", "skipped:inactive", "skipped:type_not_mapped", "skipped:company_not_imported"],
            ),
            (
                SOLUTIONS,
                &[
                    "created",
                    "skipped:inactive",
                    "skipped:type_not_mapped",
                    "skipped:category_not_mapped",
                    "skipped:billing_not_mapped",
                ],
            ),
            (
                ACTIVITIES,
                &["created", "skipped:type_not_mapped", "skipped:contact_not_in_crm", "skipped:creator_not_linked"],
            ),
            (OPPORTUNITIES, &["created"]),
        ];
        assert_every_outcome_shows_up(e, want);
    }
}
