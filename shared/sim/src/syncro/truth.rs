//! Ground truth of a full Syncro import with the typical mapping, worked out from what each
//! generated record was built to exercise (its plan), not by running an import. The rules
//! (checks in order, first that applies decides) are those of the import for Syncro's
//! stages: users, companies (customers), contacts; opportunities (leads) are all created.

use super::typical::TypicalMapping;
use crate::seed::Expected;
use crate::truth::count_table;
pub(crate) use crate::truth::{COMPANIES, CONTACTS, OPPORTUNITIES, Outcome, USERS};

/// A user as built (Syncro users have no inactive flag).
#[derive(Clone, Debug)]
pub(crate) struct UserPlan {
    pub has_email: bool,
    pub group: String,
    /// A CRM seed user has this user's email (another letter case).
    pub link: bool,
}

/// A customer as built.
#[derive(Clone, Debug)]
pub(crate) struct CompanyPlan {
    pub disabled: bool,
    /// Built to link to a CRM seed company that no earlier customer takes.
    pub link: bool,
}

/// A contact as built (every contact has a customer).
#[derive(Clone, Debug)]
pub(crate) struct ContactPlan {
    /// Index of its customer among the generated customers.
    pub company: usize,
    /// Built to link to a CRM seed contact that no earlier contact takes.
    pub link: bool,
}

/// Every record's plan, in id order per stage.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plans {
    pub users: Vec<UserPlan>,
    pub companies: Vec<CompanyPlan>,
    pub contacts: Vec<ContactPlan>,
    pub leads: usize,
}

/// no email -> group not mapped -> linked / created.
pub(crate) fn user_outcome(p: &UserPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::user_outcome(false, p.has_email, &p.group, p.link, m)
}

/// disabled -> (no type: mapped, or `no_type` by default) -> linked / created.
pub(crate) fn company_outcome(p: &CompanyPlan, m: &TypicalMapping) -> Outcome {
    crate::truth::company_outcome(false, p.disabled, None, p.link, m)
}

/// (no type: always passes) -> customer not imported -> linked / created.
pub(crate) fn contact_outcome(p: &ContactPlan, companies: &[Outcome], m: &TypicalMapping) -> Outcome {
    crate::truth::contact_outcome(false, None, Some(p.company), p.link, companies, m)
}

/// The count table of a full import under mapping `m`.
pub(crate) fn expected(plans: &Plans, m: &TypicalMapping) -> Expected {
    let users: Vec<Outcome> = plans.users.iter().map(|p| user_outcome(p, m)).collect();
    let companies: Vec<Outcome> = plans.companies.iter().map(|p| company_outcome(p, m)).collect();
    let contacts: Vec<Outcome> = plans.contacts.iter().map(|p| contact_outcome(p, &companies, m)).collect();
    count_table(&[(USERS, &users), (COMPANIES, &companies), (CONTACTS, &contacts)], plans.leads)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use serde_json::Value;

    use super::*;
    use crate::normalise::{email_key, name_key, phone_key};
    use crate::seed::tally;
    use crate::syncro::{GenConfig, NO_TYPE, Tenant, typical_mapping};
    use crate::truth::check::{assert_every_outcome_shows_up, link_company, link_contact, stage_totals};

    fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    /// A from-scratch import of the generated JSON (normalised matching, links taken at
    /// most once, ascending ids): an independent check of the planned truth.
    fn independent(t: &Tenant) -> Expected {
        let m = typical_mapping();
        let mut e = Expected::new();
        let seed_users: HashSet<String> = t.crm_seed().users.iter().filter_map(|u| email_key(&u.email)).collect();
        for u in t.records("users") {
            let email = text(u, "email").and_then(email_key);
            let outcome = if email.is_none() {
                "skipped:no_email"
            } else if TypicalMapping::lookup(&m.roles, text(u, "group").unwrap_or(NO_TYPE)).is_none() {
                "skipped:role_not_mapped"
            } else if email.is_some_and(|k| seed_users.contains(&k)) {
                "linked"
            } else {
                "created"
            };
            tally(&mut e, USERS, outcome);
        }

        let seeds = &t.crm_seed().companies;
        let mut taken = vec![false; seeds.len()];
        let mut companies: HashMap<i64, bool> = HashMap::new();
        for c in t.records("customers") {
            let outcome = if c["disabled"] == true {
                "skipped:inactive"
            } else {
                let phone = text(c, "phone").and_then(phone_key);
                let name = match text(c, "business_name") {
                    Some(b) => name_key(b),
                    None => name_key(&format!(
                        "{} {}",
                        text(c, "firstname").unwrap_or(""),
                        text(c, "lastname").unwrap_or("")
                    )),
                };
                link_company(seeds, &mut taken, phone, None, name)
            };
            companies.insert(c["id"].as_i64().unwrap_or_default(), !outcome.starts_with("skipped"));
            tally(&mut e, COMPANIES, outcome);
        }

        let seed_contacts = &t.crm_seed().contacts;
        let mut taken = vec![false; seed_contacts.len()];
        for c in t.records("contacts") {
            let company_ok = c["customer_id"].as_i64().is_none_or(|id| companies.get(&id).copied().unwrap_or(false));
            let outcome = if !company_ok {
                "skipped:company_not_imported"
            } else {
                let key = text(c, "email").and_then(email_key);
                link_contact(seed_contacts, &mut taken, key)
            };
            tally(&mut e, CONTACTS, outcome);
        }
        for _ in t.records("leads") {
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
            (USERS, &["created", "linked", "skipped:no_email", "skipped:role_not_mapped"]),
            (COMPANIES, &["created", "linked", "skipped:inactive"]),
            (CONTACTS, &["created", "linked", "skipped:company_not_imported"]),
            (OPPORTUNITIES, &["created"]),
        ];
        assert_every_outcome_shows_up(e, want);
    }

    #[test]
    fn the_generated_data_carries_the_documented_mess() {
        let t = Tenant::generate(&GenConfig::default());
        let customers = t.records("customers");
        assert!(customers.iter().any(|c| c["business_name"].is_null()), "a person customer");
        assert!(customers.iter().any(|c| c["disabled"] == true), "a disabled customer");
        let mut phones: HashMap<String, usize> = HashMap::new();
        for c in customers {
            if let Some(k) = text(c, "phone").and_then(phone_key) {
                *phones.entry(k).or_default() += 1;
            }
        }
        assert!(phones.values().any(|n| *n > 1), "two customers share a phone");
        let users: HashSet<i64> = t.records("users").iter().filter_map(|u| u["id"].as_i64()).collect();
        let leads = t.records("leads");
        assert!(
            leads.iter().any(|l| l["user_id"].as_i64().is_some_and(|u| !users.contains(&u))),
            "a lead of a gone user"
        );
        let statuses: HashSet<&str> = leads.iter().filter_map(|l| l["status"].as_str()).collect();
        assert!(statuses.iter().all(|s| TypicalMapping::lookup(&typical_mapping().opportunity_statuses, s).is_some()));
    }
}
