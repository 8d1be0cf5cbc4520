//! Ground truth of a full Salesforce import with the typical mapping, worked out from what
//! each generated record was built to exercise (its plan), not by running an import. The
//! checks, first that applies decides, are the import's (domain `rules.rs`, `import.rs`):
//! users, companies, contacts, activities; opportunities are all created.

use super::typical::{NO_TYPE, TypicalMapping};
use crate::seed::Expected;
pub(crate) use crate::truth::ActivityPlan;
pub(crate) use crate::truth::{ACTIVITIES, COMPANIES, CONTACTS, OPPORTUNITIES, Outcome, USERS};
use crate::truth::{activity_outcome, count_table};

/// A User as built.
#[derive(Clone, Debug)]
pub(crate) struct UserPlan {
    pub inactive: bool,
    pub has_email: bool,
    /// Its profile's name.
    pub profile: String,
    /// A CRM seed user has its email (in another letter case).
    pub link: bool,
}

/// An Account as built (deleted accounts are never read by `query`, so have no plan).
#[derive(Clone, Debug)]
pub(crate) struct CompanyPlan {
    /// `Type`; `None` = empty.
    pub account_type: Option<String>,
    /// Built to link to a CRM seed company no earlier account takes.
    pub link: bool,
}

/// A Contact as built.
#[derive(Clone, Debug)]
pub(crate) struct ContactPlan {
    /// The status field's value; `None` = empty.
    pub status: Option<String>,
    /// Index of its account among the planned companies.
    pub company: Option<usize>,
    /// Built to link to a CRM seed contact.
    pub link: bool,
}

/// Every record's plan, in id order per stage (activities: Tasks, then Events).
#[derive(Clone, Debug, Default)]
pub(crate) struct Plans {
    pub users: Vec<UserPlan>,
    pub companies: Vec<CompanyPlan>,
    pub contacts: Vec<ContactPlan>,
    pub activities: Vec<ActivityPlan>,
    pub opportunities: usize,
}

/// inactive -> no email -> profile not mapped -> linked / created.
pub(crate) fn user_outcome(p: &UserPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::user_outcome(p.inactive, p.has_email, &p.profile, p.link, m)
}

/// type not mapped (empty = the no-type choice) -> linked / created. Accounts have no
/// inactive notion here, and deleted ones are not read.
pub(crate) fn company_outcome(p: &CompanyPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::company_outcome(false, false, Some(p.account_type.as_deref().unwrap_or(NO_TYPE)), p.link, m)
}

/// status not mapped -> account not imported -> linked / created (contacts have no
/// inactive notion here).
pub(crate) fn contact_outcome(p: &ContactPlan, companies: &[Outcome], m: &TypicalMapping) -> Outcome {
    let status = p.status.as_deref().unwrap_or(NO_TYPE);
    crate::truth::contact_outcome(false, Some(status), p.company, p.link, companies, m)
}

/// The count table of a full import under mapping `m`.
pub(crate) fn expected(plans: &Plans, m: &TypicalMapping) -> Expected {
    let users: Vec<Outcome> = plans.users.iter().map(|p| user_outcome(p, m)).collect();
    let companies: Vec<Outcome> = plans.companies.iter().map(|p| company_outcome(p, m)).collect();
    let contacts: Vec<Outcome> = plans.contacts.iter().map(|p| contact_outcome(p, &companies, m)).collect();
    let activities: Vec<Outcome> = plans.activities.iter().map(|p| activity_outcome(p, &contacts, &users, m)).collect();
    let stages: [(&str, &[Outcome]); 4] =
        [(USERS, &users), (COMPANIES, &companies), (CONTACTS, &contacts), (ACTIVITIES, &activities)];
    count_table(&stages, plans.opportunities)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use serde_json::Value;

    use super::*;
    use crate::normalise::{email_key, name_key, phone_key, website_key};
    use crate::salesforce::generator::PROFILES;
    use crate::salesforce::store::make_id;
    use crate::salesforce::typical::activity_option;
    use crate::salesforce::{GenConfig, Tenant, typical_mapping};
    use crate::seed::tally;
    use crate::truth::check::{assert_every_outcome_shows_up, link_company, link_contact, stage_totals};

    fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v[key].as_str().filter(|s| !s.trim().is_empty())
    }

    /// A from-scratch import of the generated rows as `query` serves them (deleted rows
    /// left out, ascending ids, links taken at most once): an independent check.
    fn independent(t: &Tenant) -> Expected {
        let m = typical_mapping();
        let mapped = |table: &[(String, Option<String>)], name: &str| TypicalMapping::lookup(table, name).is_some();
        let mut e = Expected::new();
        let profiles: HashMap<String, &str> =
            PROFILES.iter().enumerate().map(|(i, p)| (make_id("00e", i as u64 + 1), *p)).collect();
        let seed_users: HashSet<String> = t.crm_seed().users.iter().filter_map(|u| email_key(&u.email)).collect();
        let mut users: HashMap<String, bool> = HashMap::new();
        for r in t.records("User") {
            let profile = text(&r, "ProfileId").and_then(|p| profiles.get(p)).copied().unwrap_or(NO_TYPE);
            let email = text(&r, "Email").and_then(email_key);
            let outcome = if r["IsActive"] == false {
                "skipped:inactive"
            } else if email.is_none() {
                "skipped:no_email"
            } else if !mapped(&m.roles, profile) {
                "skipped:role_not_mapped"
            } else if email.is_some_and(|k| seed_users.contains(&k)) {
                "linked"
            } else {
                "created"
            };
            users.insert(text(&r, "Id").unwrap_or_default().to_string(), !outcome.starts_with("skipped"));
            tally(&mut e, USERS, outcome);
        }
        let seeds = &t.crm_seed().companies;
        let mut taken = vec![false; seeds.len()];
        let mut companies: HashMap<String, bool> = HashMap::new();
        for r in t.records("Account").into_iter().filter(|r| r["IsDeleted"] != true) {
            let outcome = if !mapped(&m.company_types, text(&r, "Type").unwrap_or(NO_TYPE)) {
                "skipped:type_not_mapped"
            } else {
                let phone = text(&r, "Phone").and_then(phone_key);
                let site = text(&r, "Website").and_then(website_key);
                let name = text(&r, "Name").and_then(name_key);
                link_company(seeds, &mut taken, phone, site, name)
            };
            companies.insert(text(&r, "Id").unwrap_or_default().to_string(), !outcome.starts_with("skipped"));
            tally(&mut e, COMPANIES, outcome);
        }
        let seed_contacts = &t.crm_seed().contacts;
        let mut taken = vec![false; seed_contacts.len()];
        let mut contacts: HashMap<String, bool> = HashMap::new();
        for r in t.records("Contact") {
            let company_ok = text(&r, "AccountId").is_none_or(|id| companies.get(id).copied().unwrap_or(false));
            let outcome = if !mapped(&m.contact_types, text(&r, "Contact_Status__c").unwrap_or(NO_TYPE)) {
                "skipped:type_not_mapped"
            } else if !company_ok {
                "skipped:company_not_imported"
            } else {
                let key = text(&r, "Email").and_then(email_key);
                link_contact(seed_contacts, &mut taken, key)
            };
            contacts.insert(text(&r, "Id").unwrap_or_default().to_string(), !outcome.starts_with("skipped"));
            tally(&mut e, CONTACTS, outcome);
        }
        for _ in t.records("Opportunity") {
            tally(&mut e, OPPORTUNITIES, "created");
        }
        let tasks =
            t.records("Task").into_iter().map(|r| (activity_option(Some(text(&r, "TaskSubtype").unwrap_or(""))), r));
        let events = t.records("Event").into_iter().map(|r| (activity_option(None), r));
        for (option, r) in tasks.chain(events) {
            let outcome = if !mapped(&m.activity_types, &option) {
                "skipped:type_not_mapped"
            } else if !text(&r, "WhoId").is_some_and(|w| contacts.get(w).copied().unwrap_or(false)) {
                "skipped:contact_not_in_crm"
            } else if !text(&r, "CreatedById").is_some_and(|u| users.get(u).copied().unwrap_or(false)) {
                "skipped:creator_not_linked"
            } else {
                "created"
            };
            tally(&mut e, ACTIVITIES, outcome);
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
            (USERS, &["created", "linked", "skipped:inactive", "skipped:role_not_mapped"]),
            (COMPANIES, &["created", "linked", "skipped:type_not_mapped"]),
            (CONTACTS, &["created", "linked", "skipped:type_not_mapped", "skipped:company_not_imported"]),
            (
                ACTIVITIES,
                &["created", "skipped:type_not_mapped", "skipped:contact_not_in_crm", "skipped:creator_not_linked"],
            ),
            (OPPORTUNITIES, &["created"]),
        ];
        assert_every_outcome_shows_up(e, want);
    }
}
