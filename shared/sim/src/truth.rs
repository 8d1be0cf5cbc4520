//! The ground-truth machinery every simulator shares: stage names, what a full import does
//! with one record, the import's rules for the stages every system has (users, companies,
//! contacts, activities), and the count table built from per-record outcomes. Each
//! simulator's own `truth.rs` keeps its record plans and feeds their facts in here.

use crate::connectwise::typical::TypicalMapping;
use crate::seed::{Expected, tally};

/// Stage names as the ground truth keys them.
pub(crate) const USERS: &str = "users";
pub(crate) const COMPANIES: &str = "companies";
pub(crate) const CONTACTS: &str = "contacts";
pub(crate) const SOLUTIONS: &str = "solutions";
pub(crate) const ACTIVITIES: &str = "activities";
pub(crate) const OPPORTUNITIES: &str = "opportunities";

/// What a full import does with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Created,
    Linked,
    Skipped(&'static str),
}

impl Outcome {
    /// The outcome key: `created`, `linked` or `skipped:<reason>`.
    pub(crate) fn label(self) -> String {
        match self {
            Outcome::Created => "created".into(),
            Outcome::Linked => "linked".into(),
            Outcome::Skipped(reason) => format!("skipped:{reason}"),
        }
    }

    /// True when the record ends up in the CRM (created or linked).
    pub(crate) fn in_crm(self) -> bool {
        !matches!(self, Outcome::Skipped(_))
    }
}

/// The last rule of every linkable stage: linked when built to link, else created.
fn linked_or_created(link: bool) -> Outcome {
    if link { Outcome::Linked } else { Outcome::Created }
}

/// inactive -> no email -> role not mapped -> linked / created (a system without an
/// inactive flag passes `false`).
pub(crate) fn user_outcome(inactive: bool, has_email: bool, role: &str, link: bool, m: &TypicalMapping) -> Outcome {
    if inactive {
        Outcome::Skipped("inactive")
    } else if !has_email {
        Outcome::Skipped("no_email")
    } else if TypicalMapping::lookup(&m.roles, role).is_none() {
        Outcome::Skipped("role_not_mapped")
    } else {
        linked_or_created(link)
    }
}

/// deleted -> inactive -> type not mapped -> linked / created. A system without one of the
/// flags passes `false`; `kind` is the option name the type rule looks up (`None`: the
/// system's import has no type rule for companies).
pub(crate) fn company_outcome(
    deleted: bool,
    inactive: bool,
    kind: Option<&str>,
    link: bool,
    m: &TypicalMapping,
) -> Outcome {
    if deleted {
        Outcome::Skipped("deleted")
    } else if inactive {
        Outcome::Skipped("inactive")
    } else if kind.is_some_and(|k| TypicalMapping::lookup(&m.company_types, k).is_none()) {
        Outcome::Skipped("type_not_mapped")
    } else {
        linked_or_created(link)
    }
}

/// inactive -> type not mapped -> company not imported -> linked / created. A system
/// without an inactive flag passes `false`; `kind` is the option name the type rule looks
/// up (`None`: no type rule for contacts); `company` indexes `companies`.
pub(crate) fn contact_outcome(
    inactive: bool,
    kind: Option<&str>,
    company: Option<usize>,
    link: bool,
    companies: &[Outcome],
    m: &TypicalMapping,
) -> Outcome {
    if inactive {
        Outcome::Skipped("inactive")
    } else if kind.is_some_and(|k| TypicalMapping::lookup(&m.contact_types, k).is_none()) {
        Outcome::Skipped("type_not_mapped")
    } else if company.and_then(|i| companies.get(i)).is_some_and(|o| !o.in_crm()) {
        Outcome::Skipped("company_not_imported")
    } else {
        linked_or_created(link)
    }
}

/// An activity as built.
#[derive(Clone, Debug)]
pub(crate) struct ActivityPlan {
    /// The activity type option it is mapped by: a ConnectWise type name, a Halo action
    /// outcome or `CRM_NOTE_KIND`, a Salesforce activity option (`typical::activity_option`).
    pub kind: String,
    /// Index of its contact among the generated contacts; `None`: no contact (or a lead).
    pub contact: Option<usize>,
    /// Index of its creator among the generated users; `None`: someone who is not one.
    pub creator: Option<usize>,
}

/// type not mapped -> contact not in CRM -> creator not linked -> created.
pub(crate) fn activity_outcome(
    p: &ActivityPlan,
    contacts: &[Outcome],
    users: &[Outcome],
    m: &TypicalMapping,
) -> Outcome {
    if TypicalMapping::lookup(&m.activity_types, &p.kind).is_none() {
        Outcome::Skipped("type_not_mapped")
    } else if !p.contact.and_then(|i| contacts.get(i)).is_some_and(|o| o.in_crm()) {
        Outcome::Skipped("contact_not_in_crm")
    } else if !p.creator.and_then(|i| users.get(i)).is_some_and(|o| o.in_crm()) {
        Outcome::Skipped("creator_not_linked")
    } else {
        Outcome::Created
    }
}

/// The count table of every record's outcome per stage, plus `opportunities` opportunities
/// (all created).
pub(crate) fn count_table(stages: &[(&str, &[Outcome])], opportunities: usize) -> Expected {
    let mut e = Expected::new();
    for (stage, list) in stages {
        for outcome in *list {
            tally(&mut e, stage, &outcome.label());
        }
    }
    for _ in 0..opportunities {
        tally(&mut e, OPPORTUNITIES, &Outcome::Created.label());
    }
    e
}

/// What the simulators' truth tests share: the CRM-link lookups of their independent
/// re-derivation of the ground truth (from the generated JSON, not from the plans), and
/// checks on the resulting count table.
#[cfg(test)]
pub(crate) mod check {
    use std::collections::BTreeMap;

    use crate::normalise::{email_key, name_key, phone_key, website_key};
    use crate::seed::{Expected, SeedCompany, SeedContact};

    /// The import's company link: the first CRM seed company not yet `taken` with the
    /// phone key, else the website key, else the name key (`None`: that match is not
    /// tried). `"linked"` (marking it taken) or `"created"`.
    pub(crate) fn link_company(
        seeds: &[SeedCompany],
        taken: &mut [bool],
        phone: Option<String>,
        site: Option<String>,
        name: Option<String>,
    ) -> &'static str {
        let by_phone = |s: &SeedCompany| phone.is_some() && s.phone.as_deref().and_then(phone_key) == phone;
        let by_site = |s: &SeedCompany| site.is_some() && s.website.as_deref().and_then(website_key) == site;
        let by_name = |s: &SeedCompany| name.is_some() && name_key(&s.name) == name;
        let found = [&by_phone as &dyn Fn(&SeedCompany) -> bool, &by_site, &by_name]
            .iter()
            .find_map(|f| (0..seeds.len()).find(|i| !taken[*i] && f(&seeds[*i])));
        take(taken, found)
    }

    /// The import's contact link: the first CRM seed contact not yet `taken` with the
    /// email key `key`. `"linked"` (marking it taken) or `"created"`.
    pub(crate) fn link_contact(seeds: &[SeedContact], taken: &mut [bool], key: Option<String>) -> &'static str {
        let found = key.and_then(|k| {
            (0..seeds.len()).find(|i| !taken[*i] && seeds[*i].email.as_deref().and_then(email_key).as_ref() == Some(&k))
        });
        take(taken, found)
    }

    fn take(taken: &mut [bool], found: Option<usize>) -> &'static str {
        match found {
            Some(i) => {
                taken[i] = true;
                "linked"
            }
            None => "created",
        }
    }

    /// Records per stage of a count table.
    pub(crate) fn stage_totals(e: &Expected) -> BTreeMap<String, usize> {
        e.iter().map(|(k, v)| (k.clone(), v.values().sum::<u64>() as usize)).collect()
    }

    /// Asserts every `(stage, outcomes)` of `want` has a non-zero count in `e`.
    pub(crate) fn assert_every_outcome_shows_up(e: &Expected, want: &[(&str, &[&str])]) {
        for (stage, outcomes) in want {
            for o in *outcomes {
                assert!(e.get(*stage).and_then(|m| m.get(*o)).is_some_and(|n| *n > 0), "{stage} {o} missing: {e:?}");
            }
        }
    }
}
