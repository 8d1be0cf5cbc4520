//! Ground truth of a full HaloPSA import with the typical mapping, worked out from what
//! each generated record was built to exercise (its plan), not by running an import. The
//! rules (checks in order, first that applies decides) are those of the import: users,
//! companies, contacts, activities; opportunities are all created.

use super::typical::{NO_TYPE, TypicalMapping};
use crate::seed::Expected;
pub(crate) use crate::truth::ActivityPlan;
pub(crate) use crate::truth::{ACTIVITIES, COMPANIES, CONTACTS, OPPORTUNITIES, Outcome, USERS};
use crate::truth::{activity_outcome, count_table};

/// An agent as built.
#[derive(Clone, Debug)]
pub(crate) struct MemberPlan {
    pub inactive: bool,
    pub has_email: bool,
    /// Name of its first role, or [`NO_TYPE`].
    pub role: String,
    /// A CRM seed user has this agent's email (another letter case).
    pub link: bool,
}

/// A client as built.
#[derive(Clone, Debug)]
pub(crate) struct CompanyPlan {
    pub inactive: bool,
    /// Name of its customer type, or [`NO_TYPE`].
    pub kind: String,
    /// Built to link to a CRM seed company that no earlier client takes.
    pub link: bool,
}

/// A user (contact) as built.
#[derive(Clone, Debug)]
pub(crate) struct ContactPlan {
    pub inactive: bool,
    /// Index of its client among the generated clients.
    pub company: Option<usize>,
    /// Built to link to a CRM seed contact that no earlier contact takes.
    pub link: bool,
}

/// Every record's plan, in the order the import reads them per stage.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plans {
    pub members: Vec<MemberPlan>,
    pub companies: Vec<CompanyPlan>,
    pub contacts: Vec<ContactPlan>,
    pub activities: Vec<ActivityPlan>,
    /// Opportunities the list serves (deleted ones are hidden and not counted).
    pub opportunities: usize,
}

/// inactive -> no email -> role not mapped -> linked / created.
pub(crate) fn member_outcome(p: &MemberPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::user_outcome(p.inactive, p.has_email, &p.role, p.link, m)
}

/// inactive -> type not mapped -> linked / created (Halo clients are never "deleted":
/// Halo deletes them for good).
pub(crate) fn company_outcome(p: &CompanyPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::company_outcome(false, p.inactive, Some(&p.kind), p.link, m)
}

/// inactive -> no-type choice not mapped -> client not imported -> linked / created.
pub(crate) fn contact_outcome(p: &ContactPlan, companies: &[Outcome], m: &TypicalMapping) -> Outcome {
    crate::truth::contact_outcome(p.inactive, Some(NO_TYPE), p.company, p.link, companies, m)
}

/// The count table of a full import under mapping `m`.
pub(crate) fn expected(plans: &Plans, m: &TypicalMapping) -> Expected {
    let members: Vec<Outcome> = plans.members.iter().map(|p| member_outcome(p, m)).collect();
    let companies: Vec<Outcome> = plans.companies.iter().map(|p| company_outcome(p, m)).collect();
    let contacts: Vec<Outcome> = plans.contacts.iter().map(|p| contact_outcome(p, &companies, m)).collect();
    let activities: Vec<Outcome> =
        plans.activities.iter().map(|p| activity_outcome(p, &contacts, &members, m)).collect();
    let stages: [(&str, &[Outcome]); 4] =
        [(USERS, &members), (COMPANIES, &companies), (CONTACTS, &contacts), (ACTIVITIES, &activities)];
    count_table(&stages, plans.opportunities)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::Value;

    use super::*;
    use crate::halo::typical::CRM_NOTE_KIND;
    use crate::halo::{GenConfig, Tenant, typical_mapping};
    use crate::normalise::{email_key, name_key, phone_key, website_key};
    use crate::seed::tally;
    use crate::truth::check::{assert_every_outcome_shows_up, link_company, link_contact, stage_totals};

    fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }

    fn id(v: &Value, key: &str) -> Option<i64> {
        v.get(key).and_then(Value::as_i64).filter(|i| *i > 0)
    }

    fn name_by_id(t: &Tenant, resource: &str, field: &str, want: Option<i64>) -> String {
        want.and_then(|w| t.records(resource).iter().find(|r| id(r, "id") == Some(w)))
            .and_then(|r| text(r, field))
            .unwrap_or(NO_TYPE)
            .to_string()
    }

    /// A from-scratch import of the generated JSON (normalised matching, links taken at
    /// most once, ascending ids): an independent check of the planned truth.
    fn independent(t: &Tenant) -> Expected {
        let m = typical_mapping();
        let mapped = |table: &[(String, Option<String>)], name: &str| TypicalMapping::lookup(table, name).is_some();
        let mut e = Expected::new();
        let seed_users: Vec<String> = t.crm_seed().users.iter().filter_map(|u| email_key(&u.email)).collect();
        let mut agents: HashMap<i64, bool> = HashMap::new();
        for r in t.records("agent") {
            // As the connector reads it: the first role's id (a GUID), named by `/Roles`.
            let first = &r["roles"][0]["id"];
            let role = t
                .records("roles")
                .iter()
                .find(|x| first.is_string() && x["id"] == *first)
                .and_then(|x| text(x, "name"))
                .unwrap_or(NO_TYPE);
            let email = text(r, "email").and_then(email_key);
            let outcome = if r["isdisabled"] == true {
                "skipped:inactive"
            } else if email.is_none() {
                "skipped:no_email"
            } else if !mapped(&m.roles, role) {
                "skipped:role_not_mapped"
            } else if email.is_some_and(|k| seed_users.contains(&k)) {
                "linked"
            } else {
                "created"
            };
            agents.insert(r["id"].as_i64().unwrap(), !outcome.starts_with("skipped"));
            tally(&mut e, USERS, outcome);
        }
        let seeds = &t.crm_seed().companies;
        let mut taken = vec![false; seeds.len()];
        let mut clients: HashMap<i64, bool> = HashMap::new();
        for r in t.records("client") {
            let kind = name_by_id(t, "lookup", "name", id(r, "customertype"));
            let outcome = if r["inactive"] == true {
                "skipped:inactive"
            } else if !mapped(&m.company_types, &kind) {
                "skipped:type_not_mapped"
            } else {
                let phone = text(r, "main_phonenumber").and_then(phone_key);
                let site = text(r, "website").and_then(website_key);
                let name = text(r, "name").and_then(name_key);
                link_company(seeds, &mut taken, phone, site, name)
            };
            clients.insert(r["id"].as_i64().unwrap(), !outcome.starts_with("skipped"));
            tally(&mut e, COMPANIES, outcome);
        }
        let seed_contacts = &t.crm_seed().contacts;
        let mut taken = vec![false; seed_contacts.len()];
        let mut users: HashMap<i64, bool> = HashMap::new();
        for r in t.records("users") {
            let outcome = if r["inactive"] == true {
                "skipped:inactive"
            } else if id(r, "client_id").is_some_and(|c| !clients.get(&c).copied().unwrap_or(false)) {
                "skipped:company_not_imported"
            } else {
                let key = text(r, "emailaddress").and_then(email_key);
                link_contact(seed_contacts, &mut taken, key)
            };
            users.insert(r["id"].as_i64().unwrap(), !outcome.starts_with("skipped"));
            tally(&mut e, CONTACTS, outcome);
        }
        let opps: HashMap<i64, Option<i64>> =
            t.records("opportunities").iter().map(|o| (o["id"].as_i64().unwrap(), id(o, "user_id"))).collect();
        let activity = |e: &mut Expected, kind: &str, contact: Option<i64>, who: Option<i64>| {
            let outcome = if !mapped(&m.activity_types, kind) {
                "skipped:type_not_mapped"
            } else if !contact.is_some_and(|c| users.get(&c).copied().unwrap_or(false)) {
                "skipped:contact_not_in_crm"
            } else if !who.is_some_and(|a| agents.get(&a).copied().unwrap_or(false)) {
                "skipped:creator_not_linked"
            } else {
                "created"
            };
            tally(e, ACTIVITIES, outcome);
        };
        for n in t.records("crmnote") {
            activity(&mut e, CRM_NOTE_KIND, id(n, "user_id"), id(n, "who_agentid"));
        }
        for a in t.records("actions") {
            let contact = id(a, "ticket_id").and_then(|tid| opps.get(&tid).copied().flatten());
            activity(&mut e, text(a, "outcome").unwrap_or(NO_TYPE), contact, id(a, "who_agentid"));
        }
        for o in t.records("opportunities") {
            if o["deleted"] != true {
                tally(&mut e, OPPORTUNITIES, "created");
            }
        }
        e
    }

    #[test]
    fn the_planned_truth_matches_an_independent_import_of_the_generated_data() {
        for (seed, companies) in [(1, 0), (2, 3), (3, 25), (4, 120), (42, 600), (7, 1500)] {
            let t = Tenant::generate(&GenConfig::with_companies(seed, companies));
            assert_eq!(t.expected(), &independent(&t), "seed {seed}, {companies} companies");
        }
    }

    #[test]
    fn truth_totals_per_stage_equal_the_generated_records_of_that_stage() {
        let t = Tenant::generate(&GenConfig::with_companies(9, 900));
        let totals = stage_totals(t.expected());
        assert_eq!(totals, t.stage_sizes());
        assert_eq!(totals.values().sum::<usize>(), t.record_count());
    }

    #[test]
    fn every_kind_of_mess_shows_up_in_the_default_tenant() {
        let t = Tenant::generate(&GenConfig::default());
        let e = t.expected();
        let want: &[(&str, &[&str])] = &[
            (USERS, &["created", "linked", "skipped:inactive", "skipped:no_email", "skipped:role_not_mapped"]),
            (COMPANIES, &["created", "linked", "skipped:inactive", "skipped:type_not_mapped"]),
            (CONTACTS, &["created", "linked", "skipped:inactive", "skipped:company_not_imported"]),
            (
                ACTIVITIES,
                &["created", "skipped:type_not_mapped", "skipped:contact_not_in_crm", "skipped:creator_not_linked"],
            ),
            (OPPORTUNITIES, &["created"]),
        ];
        assert_every_outcome_shows_up(e, want);
    }

    #[test]
    fn the_data_carries_the_formatting_mess_of_real_tenants() {
        let t = Tenant::generate(&GenConfig::default());
        let clients = t.records("client");
        let sites: Vec<&str> = clients.iter().filter_map(|c| text(c, "website")).collect();
        assert!(sites.iter().any(|s| s.contains("www.")) && sites.iter().any(|s| !s.contains("www.")));
        let mut phones: HashMap<String, usize> = HashMap::new();
        for p in clients.iter().filter_map(|c| text(c, "main_phonenumber")).filter_map(phone_key) {
            *phones.entry(p).or_default() += 1;
        }
        assert!(phones.values().any(|n| *n > 1), "no two clients share a phone");
        let users = t.records("users");
        assert!(users.iter().any(|u| id(u, "client_id").is_none()), "no user without a client");
        let emails: Vec<&str> = users.iter().filter_map(|u| text(u, "emailaddress")).collect();
        let keys: std::collections::HashSet<String> = emails.iter().filter_map(|e| email_key(e)).collect();
        assert!(keys.len() < emails.len(), "no two users share an email in another case");
        let agents: Vec<i64> = t.records("agent").iter().filter_map(|a| id(a, "id")).collect();
        assert!(t.records("opportunities").iter().any(|o| id(o, "agent_id").is_some_and(|a| !agents.contains(&a))));
        assert!(t.records("crmnote").iter().any(|n| id(n, "who_agentid").is_some_and(|a| !agents.contains(&a))));
    }

    #[test]
    fn the_generator_is_deterministic_for_a_seed() {
        let a = Tenant::generate(&GenConfig::with_companies(5, 80));
        let b = Tenant::generate(&GenConfig::with_companies(5, 80));
        for r in ["agent", "client", "users", "opportunities", "actions", "crmnote"] {
            assert_eq!(a.records(r), b.records(r), "{r}");
        }
        assert_eq!(a.crm_seed(), b.crm_seed());
        let c = Tenant::generate(&GenConfig::with_companies(6, 80));
        assert_ne!(a.records("client"), c.records("client"));
    }
}
