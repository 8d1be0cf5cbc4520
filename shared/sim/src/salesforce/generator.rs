//! The seeded Salesforce org generator: profiles, users, accounts, contacts, leads,
//! opportunities, tasks and events carrying the mess real orgs have (one phone on two
//! accounts, websites with and without `www`, names differing in case and punctuation,
//! emails differing in case, contacts without an account, inactive users, unmapped account
//! types and contact statuses, opportunities owned by users who are not CRM users,
//! activities on leads or skipped contacts, by unlinked users, of unmapped kinds), the CRM
//! seed some were built to link to, and each record's plan for the ground truth. Same seed
//! and sizes: identical org.

use std::collections::HashSet;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::Access;
use super::schema::{INDUSTRIES, LEAD_STATUSES, OPPORTUNITY_STAGES, OPPORTUNITY_TYPES, TASK_PRIORITIES};
use super::store::{TenantData, make_id, sf_datetime};
use super::truth::{
    ActivityPlan, CompanyPlan, ContactPlan, Outcome, Plans, UserPlan, company_outcome, contact_outcome,
};
use super::typical::{TypicalMapping, activity_option, typical_mapping};
use crate::common::format_date;
use crate::normalise::{email_key, name_key, phone_key, website_key};
use crate::seed::{CrmSeed, SeedCompany, SeedContact, SeedUser};
use crate::words::{
    CITIES, COMPANY_ADJECTIVES, COMPANY_NOUNS, COMPANY_SUFFIXES, CONTACT_TITLES, CRM_COMPANY_WORDS, Draw, FIRST_NAMES,
    LAST_NAMES, STREETS, slug,
};

/// What to generate. Sizes not given follow from `companies`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of (not deleted) accounts (C).
    pub companies: usize,
    /// Users; default 12 + C/100.
    pub users: Option<usize>,
    /// Contacts; default 3·C.
    pub contacts: Option<usize>,
    /// Opportunities; default C/2.
    pub opportunities: Option<usize>,
    /// Tasks and events together (7 in 10 tasks); default C.
    pub activities: Option<usize>,
    /// Leads; default C/5.
    pub leads: Option<usize>,
}

impl GenConfig {
    /// `companies` accounts, every other size derived from it.
    pub fn with_companies(seed: u64, companies: usize) -> Self {
        Self { seed, companies, users: None, contacts: None, opportunities: None, activities: None, leads: None }
    }

    /// Records the import reads (users + accounts + contacts + opportunities + activities).
    pub fn total_records(&self) -> usize {
        let s = self.sizes();
        s.users + s.companies + s.contacts + s.opportunities + s.activities
    }

    pub(crate) fn sizes(&self) -> Sizes {
        let c = self.companies;
        Sizes {
            users: self.users.unwrap_or(12 + c / 100).max(1),
            companies: c,
            contacts: self.contacts.unwrap_or(3 * c),
            opportunities: self.opportunities.unwrap_or(c / 2),
            activities: self.activities.unwrap_or(c),
            leads: self.leads.unwrap_or(c / 5),
        }
    }
}

impl Default for GenConfig {
    /// Seed 42, 600 accounts (about 3,300 imported records).
    fn default() -> Self {
        Self::with_companies(42, 600)
    }
}

/// Record counts per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub users: usize,
    pub companies: usize,
    pub contacts: usize,
    pub opportunities: usize,
    pub activities: usize,
    pub leads: usize,
}

/// Profiles of the org (id = `00e` serial position + 1).
pub(crate) const PROFILES: &[&str] =
    &["System Administrator", "Standard User", "Marketing User", "Contract Manager", "Read Only"];
const MAPPED_PROFILES: &[&str] = &["System Administrator", "Standard User", "Marketing User"];
const UNMAPPED_PROFILES: &[&str] = &["Contract Manager", "Read Only"];
const MAPPED_ACCOUNT_TYPES: &[&str] =
    &["Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller", "Installation Partner"];
const UNMAPPED_ACCOUNT_TYPES: &[&str] = &["Technology Partner", "Other"];
const MAPPED_STATUSES: &[&str] = &["New", "Working", "Nurturing", "Qualified"];
const UNMAPPED_STATUSES: &[&str] = &["Unqualified", "Do Not Contact"];
/// The instant the generated org is "now" (2025-06-01T00:00:00Z), so output is reproducible.
pub(crate) const GENERATED_AT: i64 = 1_748_736_000;
/// The MSP's own email domain (users).
const MSP_DOMAIN: &str = "brightpathit.com";
const DAY: i64 = 86_400;

/// A generated org.
#[derive(Clone, Debug)]
pub(crate) struct Generated {
    pub data: TenantData,
    pub seed: CrmSeed,
    pub plans: Plans,
    pub access: Access,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserKind {
    Created,
    Linked,
    Inactive,
    Unmapped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AccountKind {
    Created,
    LinkPhone,
    LinkSite,
    LinkName,
    Unmapped,
    NoType,
    SharedPhone,
}

struct Gen {
    rng: ChaCha8Rng,
    serial: u64,
    phones: HashSet<String>,
    sites: HashSet<String>,
    names: HashSet<String>,
    emails: HashSet<String>,
    users: Vec<Map<String, Value>>,
    accounts: Vec<Map<String, Value>>,
    deleted: Vec<Map<String, Value>>,
    contacts: Vec<Map<String, Value>>,
    leads: Vec<Map<String, Value>>,
    opportunities: Vec<Map<String, Value>>,
    tasks: Vec<Map<String, Value>>,
    events: Vec<Map<String, Value>>,
    task_plans: Vec<ActivityPlan>,
    event_plans: Vec<ActivityPlan>,
    seed: CrmSeed,
    plans: Plans,
    typical: TypicalMapping,
}

fn fmt_phone(d: &str, style: u8) -> String {
    let (a, b, c) = (&d[0..3], &d[3..6], &d[6..10]);
    match style {
        1 => format!("({a}) {b}-{c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("{a}.{b}.{c}"),
        4 => format!("+1 {a} {b} {c}"),
        _ => d.to_string(),
    }
}

/// A domain as a website: forms 0-2 carry `www.`, 3-5 do not.
fn fmt_site(domain: &str, form: u8) -> String {
    match form {
        0 => format!("www.{domain}"),
        1 => format!("https://www.{domain}/"),
        2 => format!("http://www.{domain}"),
        3 => domain.to_string(),
        4 => format!("https://{domain}"),
        _ => format!("http://{domain}/about"),
    }
}

/// The same company name in other letter case / punctuation (same name key).
fn name_variant(name: &str, style: u8) -> String {
    match style {
        0 => name.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>().to_uppercase(),
        1 => name.to_lowercase(),
        _ => {
            let words: Vec<&str> = name.split_whitespace().collect();
            match words.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{},  {last}", rest.join(" ")),
                _ => name.to_uppercase(),
            }
        }
    }
}

/// The same email in another letter case.
fn email_variant(email: &str, style: u8) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let capital = |s: &str| {
        s.split('.')
            .map(|w| {
                let mut cs = w.chars();
                cs.next().map(|c| c.to_uppercase().chain(cs).collect::<String>()).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    match style {
        0 => email.to_uppercase(),
        1 => format!("{}@{domain}", capital(local)),
        _ => format!("{}@{}", capital(local), domain.to_uppercase()),
    }
}

fn row(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Draw for Gen {
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

impl Gen {
    fn pick<T: Copy>(&mut self, weighted: &[(T, u32)]) -> T {
        let total: u32 = weighted.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.random_range(0..total.max(1));
        for (t, w) in weighted {
            if r < *w {
                return *t;
            }
            r -= w;
        }
        weighted[0].0
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        make_id(prefix, self.serial)
    }

    /// Created / last-modified stamps, both before [`GENERATED_AT`].
    fn stamps(&mut self, by: &str) -> Map<String, Value> {
        let created = GENERATED_AT - self.rng.random_range(30 * DAY..400 * DAY);
        let modified = created + self.rng.random_range(0..(GENERATED_AT - created));
        row(json!({
            "IsDeleted": false,
            "CreatedDate": sf_datetime(created),
            "CreatedById": by,
            "LastModifiedDate": sf_datetime(modified),
            "LastModifiedById": by,
            "SystemModstamp": sf_datetime(modified),
        }))
    }

    fn any_user_id(&mut self) -> String {
        let i = self.below(self.users.len());
        self.users.get(i).and_then(|u| u["Id"].as_str()).unwrap_or_default().to_string()
    }

    fn fresh_phone(&mut self) -> String {
        loop {
            let d = format!(
                "{}{}{:04}",
                self.rng.random_range(201..990),
                self.rng.random_range(200..1000),
                self.rng.random_range(0..10_000)
            );
            if let Some(k) = phone_key(&d)
                && self.phones.insert(k)
            {
                return d;
            }
        }
    }

    fn fresh_company_name(&mut self) -> String {
        for attempt in 0.. {
            let mut name = format!("{} {}", self.word(COMPANY_ADJECTIVES), self.word(COMPANY_NOUNS));
            if attempt > 10 {
                let city = CITIES[self.below(CITIES.len())].0;
                name.push_str(&format!(" {city}"));
            }
            if attempt > 20 {
                name.push_str(&format!(" {attempt}"));
            }
            let suffix = self.word(COMPANY_SUFFIXES);
            if !suffix.is_empty() {
                name.push(' ');
                name.push_str(suffix);
            }
            if let Some(k) = name_key(&name)
                && self.names.insert(k)
            {
                return name;
            }
        }
        String::new()
    }

    fn fresh_crm_name(&mut self) -> String {
        for attempt in 0.. {
            let mut name = format!("{} {}", self.word(CRM_COMPANY_WORDS), self.word(CRM_COMPANY_WORDS));
            if attempt > 5 {
                name.push_str(&format!(" {attempt}"));
            }
            name.push_str(" Partners");
            if let Some(k) = name_key(&name)
                && self.names.insert(k)
            {
                return name;
            }
        }
        String::new()
    }

    fn fresh_domain(&mut self, base: &str) -> String {
        let tlds = [".com", ".net", ".io", ".co"];
        for attempt in 0.. {
            let tld = tlds[self.below(tlds.len())];
            let d = if attempt == 0 { format!("{}{tld}", slug(base)) } else { format!("{}{attempt}{tld}", slug(base)) };
            if let Some(k) = website_key(&d)
                && self.sites.insert(k)
            {
                return d;
            }
        }
        String::new()
    }

    fn fresh_email(&mut self, first: &str, last: &str, domain: &str) -> String {
        for attempt in 0.. {
            let local = if attempt == 0 {
                format!("{}.{}", slug(first), slug(last))
            } else {
                format!("{}.{}{attempt}", slug(first), slug(last))
            };
            let e = format!("{local}@{domain}");
            if let Some(k) = email_key(&e)
                && self.emails.insert(k)
            {
                return e;
            }
        }
        String::new()
    }

    fn gen_users(&mut self, n: usize) {
        let forced = [UserKind::Inactive, UserKind::Unmapped, UserKind::Linked, UserKind::Created];
        for i in 0..n {
            let kind = if i == 0 {
                UserKind::Created
            } else if let Some(k) = forced.get(i - 1) {
                *k
            } else {
                self.pick(&[
                    (UserKind::Created, 45),
                    (UserKind::Linked, 25),
                    (UserKind::Inactive, 12),
                    (UserKind::Unmapped, 18),
                ])
            };
            let (first, last) =
                if i == 0 { ("Integration", "User") } else { (self.word(FIRST_NAMES), self.word(LAST_NAMES)) };
            let email = self.fresh_email(first, last, MSP_DOMAIN);
            let profile = match kind {
                UserKind::Unmapped => self.word(UNMAPPED_PROFILES),
                _ if i == 0 => "System Administrator",
                _ => self.word(MAPPED_PROFILES),
            };
            let profile_id = make_id("00e", PROFILES.iter().position(|p| *p == profile).unwrap_or(0) as u64 + 1);
            let id = self.next_id("005");
            let mut r = self.stamps(&make_id("005", 1));
            r.extend(row(json!({
                "Id": id,
                "Username": format!("{}.sfdc", email.to_lowercase()),
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "IsActive": kind != UserKind::Inactive,
                "ProfileId": profile_id,
                "UserRoleId": null,
                "Title": if i == 0 { "API integration" } else { self.word(CONTACT_TITLES) },
                "TimeZoneSidKey": "America/New_York",
            })));
            if kind == UserKind::Linked {
                let style = self.below(3) as u8;
                self.seed.users.push(SeedUser {
                    email: email_variant(&email, style),
                    name: format!("{first} {last}"),
                    role: "salesperson".into(),
                });
            }
            self.plans.users.push(UserPlan {
                inactive: kind == UserKind::Inactive,
                has_email: true,
                profile: profile.to_string(),
                link: kind == UserKind::Linked,
            });
            self.users.push(r);
        }
    }

    fn account_row(
        &mut self,
        name: &str,
        phone: Option<String>,
        site: Option<String>,
        account_type: Option<&str>,
    ) -> Map<String, Value> {
        let id = self.next_id("001");
        let (city, state, zip) = *CITIES.choose(&mut self.rng).unwrap_or(&("Tampa", "FL", "336"));
        let owner = self.any_user_id();
        let by = self.any_user_id();
        let mut r = self.stamps(&by);
        r.extend(row(json!({
            "Id": id,
            "Name": name,
            "Type": account_type,
            "Phone": phone,
            "Website": site,
            "Industry": self.word(INDUSTRIES),
            "BillingStreet": format!("{} {}", self.rng.random_range(10..9999), self.word(STREETS)),
            "BillingCity": city,
            "BillingState": state,
            "BillingPostalCode": format!("{zip}{:02}", self.below(100)),
            "BillingCountry": "USA",
            "OwnerId": owner,
            "Tandem_Id__c": null,
        })));
        r
    }

    /// One account of `kind` (SharedPhone: two), with its plan and any seed company.
    fn make_account(&mut self, kind: AccountKind, shared_phone: Option<&str>) -> String {
        let name = self.fresh_company_name();
        let digits = match shared_phone {
            Some(d) => d.to_string(),
            None => self.fresh_phone(),
        };
        let domain = self.fresh_domain(&name);
        let form = self.below(6) as u8;
        let phone_style = self.below(5) as u8;
        let has_phone = matches!(kind, AccountKind::LinkPhone | AccountKind::SharedPhone)
            || shared_phone.is_some()
            || self.chance(0.93);
        let has_site = kind == AccountKind::LinkSite || self.chance(0.88);
        let account_type = match kind {
            AccountKind::Unmapped => Some(self.word(UNMAPPED_ACCOUNT_TYPES)),
            AccountKind::NoType => None,
            _ => Some(self.word(MAPPED_ACCOUNT_TYPES)),
        };
        let link = matches!(
            kind,
            AccountKind::LinkPhone | AccountKind::LinkSite | AccountKind::LinkName | AccountKind::SharedPhone
        ) && shared_phone.is_none();
        if link {
            let seed = match kind {
                AccountKind::LinkPhone | AccountKind::SharedPhone => SeedCompany {
                    name: self.fresh_crm_name(),
                    phone: Some(fmt_phone(&digits, (phone_style + 1) % 5)),
                    website: None,
                },
                AccountKind::LinkSite => SeedCompany {
                    name: self.fresh_crm_name(),
                    phone: None,
                    website: Some(fmt_site(&domain, (form + 3) % 6)),
                },
                _ => SeedCompany { name: name_variant(&name, self.below(3) as u8), phone: None, website: None },
            };
            self.seed.companies.push(seed);
        }
        let r = self.account_row(
            &name,
            has_phone.then(|| fmt_phone(&digits, phone_style)),
            has_site.then(|| fmt_site(&domain, form)),
            account_type,
        );
        self.plans.companies.push(CompanyPlan { account_type: account_type.map(str::to_string), link });
        self.accounts.push(r);
        digits
    }

    fn gen_accounts(&mut self, n: usize) {
        use AccountKind::*;
        let forced = [Created, LinkPhone, LinkSite, LinkName, Unmapped, NoType, SharedPhone];
        let mut i = 0;
        while i < n {
            let mut kind = match forced.get(i) {
                Some(k) => *k,
                None => self.pick(&[
                    (Created, 40),
                    (LinkPhone, 8),
                    (LinkSite, 8),
                    (LinkName, 8),
                    (Unmapped, 15),
                    (NoType, 8),
                    (SharedPhone, 5),
                ]),
            };
            if kind == SharedPhone && i + 1 >= n {
                kind = Created;
            }
            let digits = self.make_account(kind, None);
            i += 1;
            if kind == SharedPhone {
                // The second account shares the phone (another format): the seed is taken by
                // the first, so this one is created.
                self.make_account(Created, Some(&digits));
                i += 1;
            }
        }
        // Deleted accounts: only queryAll returns them, so the import never reads them.
        for _ in 0..n / 40 {
            let name = self.fresh_company_name();
            let phone = self.fresh_phone();
            let mut r = self.account_row(&name, Some(phone), None, Some("Prospect"));
            r.insert("IsDeleted".into(), Value::Bool(true));
            self.deleted.push(r);
        }
        for _ in 0..5 + n / 10 {
            let name = self.fresh_crm_name();
            let phone = self.fresh_phone();
            let domain = self.fresh_domain(&name);
            self.seed.companies.push(SeedCompany { name, phone: Some(fmt_phone(&phone, 1)), website: Some(domain) });
        }
    }

    fn gen_contacts(&mut self, n: usize) {
        let companies: Vec<Outcome> = self.plans.companies.iter().map(|p| company_outcome(p, &self.typical)).collect();
        let skipped_account = companies.iter().position(|o| !o.in_crm());
        let mut linked_any = false;
        for i in 0..n {
            let mut account =
                if self.accounts.is_empty() || self.chance(0.1) { None } else { Some(self.below(self.accounts.len())) };
            let mut status: Option<&str> = match self.pick(&[(0u8, 70), (1, 12), (2, 18)]) {
                0 => Some(self.word(MAPPED_STATUSES)),
                1 => Some(self.word(UNMAPPED_STATUSES)),
                _ => None,
            };
            match i {
                0 => (account, status) = (None, Some("New")),
                1 => status = Some("Unqualified"),
                2 if skipped_account.is_some() => (account, status) = (skipped_account, Some("Working")),
                _ => {}
            }
            let (first, last) = (self.word(FIRST_NAMES), self.word(LAST_NAMES));
            let domain = match account.and_then(|a| self.accounts.get(a)) {
                Some(a) => a["Website"].as_str().and_then(website_key).unwrap_or_else(|| "mail.example.com".into()),
                None => "gmail.com".into(),
            };
            let email = (i < 4 || self.chance(0.94)).then(|| self.fresh_email(first, last, &domain));
            let plan = ContactPlan { status: status.map(str::to_string), company: account, link: false };
            let importable = contact_outcome(&plan, &companies, &self.typical).in_crm();
            let link = importable && email.is_some() && ((!linked_any && i >= 3) || self.chance(0.2));
            if let (true, Some(e)) = (link, &email) {
                linked_any = true;
                let style = self.below(3) as u8;
                self.seed.contacts.push(SeedContact {
                    first_name: first.to_string(),
                    last_name: last.to_string(),
                    email: Some(email_variant(e, style)),
                    phone: None,
                });
            }
            let id = self.next_id("003");
            let account_id =
                account.and_then(|a| self.accounts.get(a)).and_then(|a| a["Id"].as_str()).map(str::to_string);
            let owner = self.any_user_id();
            let by = self.any_user_id();
            let mut r = self.stamps(&by);
            let phone = self.fresh_phone();
            let style = self.below(5) as u8;
            r.extend(row(json!({
                "Id": id,
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "Phone": self.chance(0.7).then(|| fmt_phone(&phone, style)),
                "MobilePhone": null,
                "Title": self.word(CONTACT_TITLES),
                "AccountId": account_id,
                "OwnerId": owner,
                "Contact_Status__c": status,
                "Tandem_Id__c": null,
            })));
            self.plans.contacts.push(ContactPlan { link, ..plan });
            self.contacts.push(r);
        }
        for _ in 0..5 + n / 15 {
            let (first, last) = (self.word(FIRST_NAMES), self.word(LAST_NAMES));
            let email = self.fresh_email(first, last, "crm-only.example.org");
            self.seed.contacts.push(SeedContact {
                first_name: first.into(),
                last_name: last.into(),
                email: Some(email),
                phone: None,
            });
        }
    }

    fn gen_leads(&mut self, n: usize) {
        for _ in 0..n {
            let (first, last) = (self.word(FIRST_NAMES), self.word(LAST_NAMES));
            let company = self.fresh_company_name();
            let domain = self.fresh_domain(&company);
            let email = self.fresh_email(first, last, &domain);
            let id = self.next_id("00Q");
            let owner = self.any_user_id();
            let mut r = self.stamps(&owner);
            let phone = self.fresh_phone();
            r.extend(row(json!({
                "Id": id, "FirstName": first, "LastName": last, "Company": company,
                "Status": self.word(LEAD_STATUSES), "Email": email, "Phone": fmt_phone(&phone, 2),
                "IsConverted": false, "OwnerId": owner,
            })));
            self.leads.push(r);
        }
    }

    fn gen_opportunities(&mut self, n: usize) {
        const PRODUCTS: &[&str] = &[
            "Managed Services",
            "Firewall Refresh",
            "M365 Migration",
            "Backup & DR",
            "Security Awareness",
            "VoIP Rollout",
        ];
        for _ in 0..n {
            let account =
                if self.accounts.is_empty() || self.chance(0.1) { None } else { Some(self.below(self.accounts.len())) };
            let (account_id, account_name) = match account.and_then(|a| self.accounts.get(a)) {
                Some(a) => (a["Id"].as_str().map(str::to_string), a["Name"].as_str().unwrap_or("Prospect").to_string()),
                None => (None, "Unassigned".to_string()),
            };
            let id = self.next_id("006");
            let owner = self.any_user_id();
            let mut r = self.stamps(&owner);
            let close = GENERATED_AT + self.rng.random_range(-120 * DAY..180 * DAY);
            let amount = self.chance(0.85).then(|| f64::from(self.rng.random_range(5u32..2000)) * 50.0);
            r.extend(row(json!({
                "Id": id,
                "Name": format!("{account_name} - {}", self.word(PRODUCTS)),
                "StageName": self.word(OPPORTUNITY_STAGES),
                "CloseDate": format_date(close),
                "Amount": amount,
                "Type": self.word(OPPORTUNITY_TYPES),
                "AccountId": account_id,
                "OwnerId": owner,
                "Description": null,
            })));
            self.opportunities.push(r);
        }
        self.plans.opportunities = n;
    }

    /// (WhoId, contact index) of an activity: mostly a contact, sometimes a lead or nobody.
    fn who(&mut self) -> (Option<String>, Option<usize>) {
        let roll = self.below(100);
        if roll < 78 && !self.contacts.is_empty() {
            let i = self.below(self.contacts.len());
            (self.contacts[i]["Id"].as_str().map(str::to_string), Some(i))
        } else if roll < 90 && !self.leads.is_empty() {
            let i = self.below(self.leads.len());
            (self.leads[i]["Id"].as_str().map(str::to_string), None)
        } else {
            (None, None)
        }
    }

    fn what(&mut self, contact: Option<usize>) -> Option<String> {
        if let Some(a) = contact.and_then(|c| self.contacts.get(c)).and_then(|c| c["AccountId"].as_str()) {
            return Some(a.to_string());
        }
        if !self.opportunities.is_empty() && self.chance(0.5) {
            let i = self.below(self.opportunities.len());
            return self.opportunities[i]["Id"].as_str().map(str::to_string);
        }
        None
    }

    fn gen_activities(&mut self, n: usize) {
        let tasks = n * 7 / 10;
        for i in 0..n {
            let (who, contact) = self.who();
            let what = self.what(contact);
            let creator = self.below(self.users.len());
            let by = self.users[creator]["Id"].as_str().unwrap_or_default().to_string();
            let mut r = self.stamps(&by);
            let owner = self.any_user_id();
            let subject_of = |s: &str, first: &str| format!("{s}: {first}");
            if i < tasks {
                let subtype =
                    self.pick(&[("Call", 35), ("Email", 25), ("Task", 22), ("ListEmail", 10), ("Cadence", 8)]);
                let id = self.next_id("00T");
                let due = GENERATED_AT + self.rng.random_range(-200 * DAY..30 * DAY);
                let status = if self.chance(0.6) { "Completed" } else { "Not Started" };
                r.extend(row(json!({
                    "Id": id,
                    "Subject": subject_of(subtype, self.word(FIRST_NAMES)),
                    "Description": self.chance(0.5).then_some("Discussed renewal and next steps."),
                    "TaskSubtype": subtype,
                    "WhoId": who,
                    "WhatId": what,
                    "OwnerId": owner,
                    "ActivityDate": format_date(due),
                    "Status": status,
                    "Priority": self.word(TASK_PRIORITIES),
                })));
                self.task_plans.push(ActivityPlan {
                    kind: activity_option(Some(subtype)),
                    contact,
                    creator: Some(creator),
                });
                self.tasks.push(r);
            } else {
                let id = self.next_id("00U");
                let start = GENERATED_AT + self.rng.random_range(-200 * DAY..30 * DAY) / 900 * 900;
                let minutes = [30, 60, 90][self.below(3)];
                r.extend(row(json!({
                    "Id": id,
                    "Subject": subject_of("Meeting", self.word(FIRST_NAMES)),
                    "Description": null,
                    "WhoId": who,
                    "WhatId": what,
                    "OwnerId": owner,
                    "StartDateTime": sf_datetime(start),
                    "EndDateTime": sf_datetime(start + minutes * 60),
                    "Location": self.chance(0.5).then_some("Client office"),
                })));
                self.event_plans.push(ActivityPlan { kind: activity_option(None), contact, creator: Some(creator) });
                self.events.push(r);
            }
        }
    }
}

/// Generates the org of `cfg`.
pub(crate) fn generate(cfg: &GenConfig) -> Generated {
    let sizes = cfg.sizes();
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        serial: 0,
        phones: HashSet::new(),
        sites: HashSet::new(),
        names: HashSet::new(),
        emails: HashSet::new(),
        users: Vec::new(),
        accounts: Vec::new(),
        deleted: Vec::new(),
        contacts: Vec::new(),
        leads: Vec::new(),
        opportunities: Vec::new(),
        tasks: Vec::new(),
        events: Vec::new(),
        task_plans: Vec::new(),
        event_plans: Vec::new(),
        seed: CrmSeed::default(),
        plans: Plans::default(),
        typical: typical_mapping(),
    };
    g.gen_users(sizes.users);
    g.gen_accounts(sizes.companies);
    g.gen_contacts(sizes.contacts);
    g.gen_leads(sizes.leads);
    g.gen_opportunities(sizes.opportunities);
    g.gen_activities(sizes.activities);
    for _ in 0..3 + sizes.users / 4 {
        let (first, last) = (g.word(FIRST_NAMES), g.word(LAST_NAMES));
        let email = g.fresh_email(first, last, MSP_DOMAIN);
        g.seed.users.push(SeedUser { email, name: format!("{first} {last}"), role: "marketer".into() });
    }
    let org_id = make_id("00D", 1);
    let run_as = make_id("005", 1);
    let secret_salt: u64 = g.rng.random();
    let access = Access {
        org_id: org_id.clone(),
        org_name: "BrightPath IT".into(),
        run_as_user_id: run_as.clone(),
        client_id: format!("3MVG9sim{:016x}", cfg.seed),
        client_secret: format!("{:016X}{:08X}", secret_salt, cfg.seed as u32),
        refresh_token: format!("5Aep861sim{:016x}", secret_salt.rotate_left(17)),
    };
    let profiles = PROFILES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            row(json!({"Id": make_id("00e", i as u64 + 1), "Name": p, "UserType": "Standard", "IsDeleted": false}))
        })
        .collect();
    let org = row(
        json!({"Id": org_id, "Name": access.org_name, "OrganizationType": "Enterprise Edition", "IsDeleted": false}),
    );
    let Gen {
        users,
        mut accounts,
        deleted,
        contacts,
        leads,
        opportunities,
        tasks,
        events,
        task_plans,
        event_plans,
        seed,
        mut plans,
        ..
    } = g;
    accounts.extend(deleted);
    plans.activities = task_plans.into_iter().chain(event_plans).collect();
    let data = TenantData {
        tables: vec![
            ("Organization", vec![org]),
            ("Profile", profiles),
            ("User", users),
            ("Account", accounts),
            ("Contact", contacts),
            ("Lead", leads),
            ("Opportunity", opportunities),
            ("Task", tasks),
            ("Event", events),
        ],
        run_as_user_id: run_as,
    };
    Generated { data, seed, plans, access }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_for_a_seed() {
        let a = generate(&GenConfig::with_companies(5, 50));
        let b = generate(&GenConfig::with_companies(5, 50));
        assert_eq!(a.data.tables, b.data.tables);
        assert_eq!(a.seed, b.seed);
        let c = generate(&GenConfig::with_companies(6, 50));
        assert_ne!(a.data.tables, c.data.tables);
    }

    #[test]
    fn tiny_tenants_generate_without_trouble() {
        for n in [0, 1, 2, 7] {
            let g = generate(&GenConfig::with_companies(1, n));
            assert_eq!(g.plans.companies.len(), n);
            assert_eq!(g.data.rows("Account").iter().filter(|r| r["IsDeleted"] == false).count(), n);
        }
    }

    #[test]
    fn ids_are_18_characters_unique_and_ascending_per_object() {
        let g = generate(&GenConfig::with_companies(3, 120));
        for (object, rows) in &g.data.tables {
            let ids: Vec<&str> = rows.iter().map(|r| r["Id"].as_str().unwrap()).collect();
            assert!(ids.iter().all(|id| id.len() == 18), "{object}");
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{object} ids ascend");
        }
    }

    #[test]
    fn the_data_carries_the_formatting_mess_of_real_orgs() {
        let g = generate(&GenConfig::default());
        let sites: Vec<&str> = g.data.rows("Account").iter().filter_map(|r| r["Website"].as_str()).collect();
        assert!(sites.iter().any(|s| s.contains("www.")) && sites.iter().any(|s| !s.contains("www.")));
        let phones: Vec<String> =
            g.data.rows("Account").iter().filter_map(|r| r["Phone"].as_str()).filter_map(phone_key).collect();
        let unique: HashSet<&String> = phones.iter().collect();
        assert!(unique.len() < phones.len(), "two accounts share a phone");
        assert!(g.data.rows("Contact").iter().any(|c| c["AccountId"].is_null()));
        assert!(g.data.rows("User").iter().any(|u| u["IsActive"] == false));
        assert!(g.seed.users.iter().any(|u| u.email != u.email.to_lowercase()));
        assert!(g.data.rows("Task").iter().any(|t| t["WhoId"].as_str().is_some_and(|w| w.starts_with("00Q"))));
    }
}
