//! The seeded Syncro tenant generator: users, customers (businesses and people), contacts
//! and leads carrying the mess real tenants have (a phone on two customers, names differing
//! in case or punctuation, emails differing in case, customers without a business name,
//! disabled customers and their contacts, leads of users who are not CRM users), the CRM
//! seed that some of them were built to link to, and each record's plan for the ground
//! truth. Same seed and sizes: identical tenant.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::{Access, ApiToken};
use super::server::stamp;
use super::store::{Kind, TenantData, blank, derive_customer_names};
use super::truth::{CompanyPlan, ContactPlan, Outcome, Plans, UserPlan, company_outcome, user_outcome};
use super::typical::{TypicalMapping, typical_mapping};
use crate::normalise::name_key;
use crate::seed::{CrmSeed, SeedCompany, SeedContact, SeedUser};
use crate::words::{
    CITIES, COMPANY_ADJECTIVES, COMPANY_NOUNS, COMPANY_SUFFIXES, CONTACT_TITLES, Draw, FIRST_NAMES, LAST_NAMES,
    STREETS, fresh_company_name, fresh_crm_name, fresh_email, fresh_phone, plan_units, slug, token,
};

/// What to generate. Sizes not given follow from `companies`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of customers (C).
    pub companies: usize,
    /// Users; default 12 + C/100.
    pub users: Option<usize>,
    /// Contacts; default 2·C.
    pub contacts: Option<usize>,
    /// Leads; default C/2.
    pub leads: Option<usize>,
}

impl GenConfig {
    /// `companies` customers, every other size derived from it.
    pub fn with_companies(seed: u64, companies: usize) -> Self {
        Self { seed, companies, users: None, contacts: None, leads: None }
    }

    /// The number of external records planned (users + customers + contacts + leads).
    pub fn total_records(&self) -> usize {
        let (u, c, k, l) = self.sizes();
        u + c + k + l
    }

    /// (users, customers, contacts, leads).
    fn sizes(&self) -> (usize, usize, usize, usize) {
        let c = self.companies;
        (self.users.unwrap_or(12 + c / 100), c, self.contacts.unwrap_or(2 * c), self.leads.unwrap_or(c / 2))
    }
}

impl Default for GenConfig {
    /// Seed 42, 600 customers (about 2,100 records).
    fn default() -> Self {
        Self::with_companies(42, 600)
    }
}

/// The user groups of the generated tenant (the typical mapping leaves `Technicians` out).
pub const GROUPS: &[&str] = &["Admins", "Managers", "Sales", "Marketing", "Technicians"];
/// The documented lead statuses (psa-apis.md 3.4, Lead).
pub const LEAD_STATUSES: &[&str] = &[
    "New",
    "Lead",
    "First Contact",
    "Opportunity",
    "Prospect",
    "Waiting on Client",
    "In Negotiation",
    "Pending",
    "Won",
    "Lost",
];

/// Domain of the MSP itself (users' emails).
const MSP_DOMAIN: &str = "brightpath-it.com";
/// Mail domains of people without a business.
const PERSONAL_DOMAINS: &[&str] = &["gmail.com", "outlook.com", "yahoo.com", "icloud.com"];
/// 2019-01-01T00:00:00Z.
const START: i64 = 1_546_300_800;
/// 2025-06-30T00:00:00Z: no generated record is updated later.
const END: i64 = 1_751_241_600;
const DAY: i64 = 86_400;
/// The `account_id` every contact carries (the Syncro account).
const ACCOUNT_ID: i64 = 1;

fn fmt_phone(d: &str, style: u8) -> String {
    let (a, b, c) = (&d[0..3], &d[3..6], &d[6..10]);
    match style % 6 {
        1 => format!("({a}) {b}-{c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("{a}.{b}.{c}"),
        4 => format!("+1 {a} {b} {c}"),
        5 => format!("{a}.{b}.{c} x{}", 100 + (d.len() * 37) % 800),
        _ => d.to_string(),
    }
}

/// The same name in other letter case / punctuation (same name key).
fn name_variant(name: &str, style: u8) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let comma = match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, {last}.", rest.join(" ")),
        _ => format!("{name}."),
    };
    let candidates = [
        name.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>().to_uppercase(),
        comma,
        name.to_lowercase(),
    ];
    let start = usize::from(style) % candidates.len();
    (0..candidates.len())
        .map(|k| &candidates[(start + k) % candidates.len()])
        .find(|c| c.as_str() != name)
        .cloned()
        .unwrap_or_else(|| name.to_uppercase())
}

/// The same email in another letter case.
fn email_variant(email: &str, style: u8) -> String {
    let title: String = {
        let mut up = true;
        email
            .chars()
            .flat_map(|ch| {
                let out: Vec<char> = if up { ch.to_uppercase().collect() } else { vec![ch] };
                up = matches!(ch, '.' | '@' | '-');
                out
            })
            .collect()
    };
    let upper_local = match email.split_once('@') {
        Some((l, d)) => format!("{}@{d}", l.to_uppercase()),
        None => email.to_uppercase(),
    };
    let candidates = [title, upper_local, email.to_uppercase()];
    let start = usize::from(style) % candidates.len();
    (0..candidates.len())
        .map(|k| &candidates[(start + k) % candidates.len()])
        .find(|c| c.as_str() != email)
        .cloned()
        .unwrap_or_else(|| email.to_uppercase())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CustomerUnit {
    Normal,
    Person,
    Disabled,
    JunkPhone,
    PhoneMatch,
    NameMatch,
    PersonNameMatch,
    /// Two customers share a phone one CRM company has: the first links, the second is created.
    PhonePair,
    /// Like `PhonePair` but the first is disabled, so the second links.
    SkippedThenLinked,
    DupPhoneNoSeed,
    /// Two customers whose names differ only in case/punctuation; a CRM company has that name.
    NameTwins,
    NameTwinsNoSeed,
    /// A disabled customer whose phone a CRM company has (that one stays unlinked).
    DisabledPhoneMatch,
}

/// (unit, per mille of the customers, customers per unit).
const CUSTOMER_UNITS: &[(CustomerUnit, usize, usize)] = &[
    (CustomerUnit::PhonePair, 10, 2),
    (CustomerUnit::SkippedThenLinked, 5, 2),
    (CustomerUnit::NameTwins, 10, 2),
    (CustomerUnit::NameTwinsNoSeed, 5, 2),
    (CustomerUnit::DupPhoneNoSeed, 10, 2),
    (CustomerUnit::PhoneMatch, 50, 1),
    (CustomerUnit::NameMatch, 40, 1),
    (CustomerUnit::PersonNameMatch, 10, 1),
    (CustomerUnit::Disabled, 50, 1),
    (CustomerUnit::DisabledPhoneMatch, 10, 1),
    (CustomerUnit::JunkPhone, 20, 1),
    (CustomerUnit::Person, 150, 1),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContactUnit {
    Normal,
    OfDisabled,
    EmailMatch,
    DisabledEmailMatch,
    /// Two contacts whose emails differ only in case; a CRM contact has it.
    EmailTwins,
    EmailTwinsNoSeed,
    NoEmail,
}

const CONTACT_UNITS: &[(ContactUnit, usize, usize)] = &[
    (ContactUnit::EmailTwins, 5, 2),
    (ContactUnit::EmailTwinsNoSeed, 5, 2),
    (ContactUnit::EmailMatch, 50, 1),
    (ContactUnit::OfDisabled, 40, 1),
    (ContactUnit::DisabledEmailMatch, 10, 1),
    (ContactUnit::NoEmail, 60, 1),
];

/// How a customer's phone is written.
#[derive(Clone, Debug)]
enum Phone {
    None,
    Fresh,
    Junk,
    /// These ten digits (shared with another customer or a CRM company).
    Digits(String),
}

#[derive(Clone, Debug)]
struct CustomerInfo {
    id: i64,
    /// Business name, else the person's name.
    display: String,
    domain: String,
    outcome: Outcome,
    contacts: Vec<i64>,
}

/// Everything the generator produces.
#[derive(Clone, Debug)]
pub(crate) struct Generated {
    pub data: TenantData,
    pub seed: CrmSeed,
    pub plans: Plans,
    pub access: Access,
}

struct Gen {
    rng: ChaCha8Rng,
    map: TypicalMapping,
    used_phones: HashSet<String>,
    used_names: HashSet<String>,
    used_emails: HashSet<String>,
    name_counter: usize,
    name_offset: usize,
    cursor: i64,
    plans: Plans,
    user_ids: Vec<(i64, Outcome)>,
    customers: Vec<CustomerInfo>,
    data: TenantData,
    seed: CrmSeed,
}

/// Generates the tenant of `cfg`.
pub(crate) fn generate(cfg: &GenConfig) -> Generated {
    let (users, customers, contacts, leads) = cfg.sizes();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let combos = COMPANY_ADJECTIVES.len() * COMPANY_NOUNS.len() * COMPANY_SUFFIXES.len();
    let name_offset = rng.random_range(0..combos);
    let mut g = Gen {
        rng,
        map: typical_mapping(),
        used_phones: HashSet::new(),
        used_names: HashSet::new(),
        used_emails: HashSet::new(),
        name_counter: 0,
        name_offset,
        cursor: 1,
        plans: Plans::default(),
        user_ids: Vec::new(),
        customers: Vec::new(),
        data: TenantData::default(),
        seed: CrmSeed::default(),
    };
    g.gen_users(users);
    let access = g.access();
    g.gen_customers(customers);
    g.gen_contacts(contacts);
    g.gen_leads(leads);
    g.gen_unrelated_seeds(customers);
    Generated { data: g.data, seed: g.seed, plans: g.plans, access }
}

impl Draw for Gen {
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

impl Gen {
    fn token(&mut self, len: usize) -> String {
        token(&mut self.rng, b"abcdef0123456789", len)
    }

    fn access(&mut self) -> Access {
        let first = self.data.users.first().and_then(|u| u["id"].as_i64()).unwrap_or(1);
        let other = self.data.users.get(1).and_then(|u| u["id"].as_i64()).unwrap_or(first);
        let full = ApiToken { token: format!("T{}", self.token(31)), user_id: first, restricted: false };
        let restricted = ApiToken { token: format!("T{}", self.token(31)), user_id: other, restricted: true };
        Access { subdomain: "brightpath".into(), tokens: vec![full, restricted] }
    }

    /// (created_at, updated_at) with milliseconds.
    fn stamps(&mut self) -> (String, String) {
        let created = self.rng.random_range(START..END - 30 * DAY);
        let updated = (created + self.rng.random_range(0..400 * DAY)).min(END);
        let (a, b) = (self.rng.random_range(0..1000), self.rng.random_range(0..1000));
        (stamp(created, a), stamp(updated, b))
    }

    /// Splits `n` records into scenario units (see [`plan_units`]).
    fn plan_units<T: Copy>(&mut self, n: usize, table: &[(T, usize, usize)], normal: T) -> Vec<T> {
        plan_units(&mut self.rng, n, table, normal)
    }

    /// The id at the cursor; moves the cursor on (ids ascend with small gaps).
    fn take_id(&mut self) -> i64 {
        let id = self.cursor;
        self.cursor = id + 1 + if self.chance(0.2) { self.rng.random_range(1..4) } else { 0 };
        id
    }

    fn fresh_phone(&mut self) -> String {
        fresh_phone(&mut self.rng, &mut self.used_phones)
    }

    fn styled_phone(&mut self, digits: &str) -> String {
        let style = self.below(6) as u8;
        fmt_phone(digits, style)
    }

    fn fresh_company_name(&mut self) -> String {
        fresh_company_name(&mut self.name_counter, self.name_offset, &mut self.used_names)
    }

    fn fresh_crm_name(&mut self) -> String {
        fresh_crm_name(&mut self.rng, &mut self.used_names)
    }

    /// A person's (first, last) whose full name no customer or CRM company has yet.
    fn fresh_person(&mut self) -> (String, String) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let first = self.word(FIRST_NAMES).to_string();
            let mut last = self.word(LAST_NAMES).to_string();
            if attempt > 20 {
                last = format!("{last}-{}", self.word(LAST_NAMES));
            }
            if name_key(&format!("{first} {last}")).is_some_and(|k| self.used_names.insert(k)) {
                return (first, last);
            }
        }
    }

    fn fresh_email(&mut self, local: &str, domain: &str) -> String {
        fresh_email(&mut self.used_emails, local, domain)
    }

    fn domain_of(name: &str) -> String {
        let words: Vec<String> = name_key(name).unwrap_or_default().split(' ').map(str::to_string).collect();
        format!("{}.com", words.iter().take(2).cloned().collect::<String>())
    }

    // ------------------------------------------------------------ users

    fn gen_users(&mut self, n: usize) {
        // (group, has email, a CRM user has the email)
        const SLOTS: [(&str, bool, bool); 12] = [
            ("Admins", true, true),
            ("Sales", true, false),
            ("Sales", true, true),
            ("Marketing", true, false),
            ("Technicians", true, false),
            ("Managers", true, false),
            ("Sales", false, false),
            ("Technicians", true, true),
            ("Marketing", true, true),
            ("Technicians", false, false),
            ("Sales", true, false),
            ("Managers", true, true),
        ];
        let mut id = 1_000 + self.rng.random_range(0..50);
        for i in 0..n {
            let (group, has_email, link) = SLOTS[i % SLOTS.len()];
            let first = self.word(FIRST_NAMES);
            let last = self.word(LAST_NAMES);
            let email = self.fresh_email(&format!("{}.{}", slug(first), slug(last)), MSP_DOMAIN);
            let name = format!("{first} {last}");
            let (created, updated) = self.stamps();
            let shown_email = if has_email {
                json!(email)
            } else if i % 2 == 0 {
                json!("")
            } else {
                Value::Null
            };
            let color = format!("{:06x}", self.rng.random_range(0..0x100_0000));
            self.data.users.push(json!({
                "id": id, "email": shown_email, "full_name": name, "created_at": created, "updated_at": updated,
                "group": group, "admin": group == "Admins", "color": color,
            }));
            let plan = UserPlan { has_email, group: group.to_string(), link };
            let outcome = user_outcome(&plan, &self.map);
            self.plans.users.push(plan);
            self.user_ids.push((id, outcome));
            if link && has_email {
                let style = self.below(3) as u8;
                let role = TypicalMapping::lookup(&self.map.roles, group).unwrap_or("no_type").to_string();
                self.seed.users.push(SeedUser { email: email_variant(&email, style), name, role });
            }
            id += 1 + if self.chance(0.2) { self.rng.random_range(1..5) } else { 0 };
        }
    }

    // ------------------------------------------------------------ customers

    fn gen_customers(&mut self, n: usize) {
        let units = self.plan_units(n, CUSTOMER_UNITS, CustomerUnit::Normal);
        self.cursor = 20_000 + self.rng.random_range(0..500);
        for unit in units {
            use CustomerUnit as U;
            match unit {
                U::Normal => {
                    let name = self.fresh_company_name();
                    let phone = if self.chance(0.95) { Phone::Fresh } else { Phone::None };
                    self.make_customer(Some(name), phone, false, false);
                }
                U::Person => {
                    self.make_customer(None, Phone::Fresh, false, false);
                }
                U::Disabled => {
                    let name = if self.chance(0.7) { Some(self.fresh_company_name()) } else { None };
                    self.make_customer(name, Phone::Fresh, true, false);
                }
                U::JunkPhone => {
                    let name = self.fresh_company_name();
                    self.make_customer(Some(name), Phone::Junk, false, false);
                }
                U::PhoneMatch | U::DisabledPhoneMatch => {
                    let digits = self.fresh_phone();
                    let name = if self.chance(0.8) { Some(self.fresh_company_name()) } else { None };
                    let disabled = unit == U::DisabledPhoneMatch;
                    self.make_customer(name, Phone::Digits(digits.clone()), disabled, !disabled);
                    self.seed_company_with_phone(&digits);
                }
                U::NameMatch => {
                    let name = self.fresh_company_name();
                    self.make_customer(Some(name.clone()), Phone::Fresh, false, true);
                    self.seed_company_named(&name);
                }
                U::PersonNameMatch => {
                    let i = self.make_customer(None, Phone::Fresh, false, true);
                    let display = self.customers[i].display.clone();
                    self.seed_company_named(&display);
                }
                U::PhonePair | U::SkippedThenLinked | U::DupPhoneNoSeed => {
                    let digits = self.fresh_phone();
                    let first_disabled = unit == U::SkippedThenLinked;
                    let seeded = unit != U::DupPhoneNoSeed;
                    let a = self.fresh_company_name();
                    let b = self.fresh_company_name();
                    self.make_customer(
                        Some(a),
                        Phone::Digits(digits.clone()),
                        first_disabled,
                        seeded && !first_disabled,
                    );
                    self.make_customer(Some(b), Phone::Digits(digits.clone()), false, seeded && first_disabled);
                    if seeded {
                        self.seed_company_with_phone(&digits);
                    }
                }
                U::NameTwins | U::NameTwinsNoSeed => {
                    let name = self.fresh_company_name();
                    let style = self.below(3) as u8;
                    let twin = name_variant(&name, style);
                    let seeded = unit == U::NameTwins;
                    self.make_customer(Some(name.clone()), Phone::Fresh, false, seeded);
                    self.make_customer(Some(twin), Phone::Fresh, false, false);
                    if seeded {
                        self.seed_company_named(&name);
                    }
                }
            }
        }
    }

    /// A CRM company with these phone digits (written another way) and a name of its own.
    fn seed_company_with_phone(&mut self, digits: &str) {
        let name = self.fresh_crm_name();
        let phone = self.styled_phone(digits);
        self.seed.companies.push(SeedCompany { name, phone: Some(phone), website: None });
    }

    /// A CRM company named like `name` (another case/punctuation), with a phone of its own or none.
    fn seed_company_named(&mut self, name: &str) {
        let style = self.below(3) as u8;
        let phone = if self.chance(0.5) {
            let d = self.fresh_phone();
            Some(self.styled_phone(&d))
        } else {
            None
        };
        self.seed.companies.push(SeedCompany { name: name_variant(name, style), phone, website: None });
    }

    /// Builds one customer (`business`: `None` for a person) and returns its index.
    fn make_customer(&mut self, business: Option<String>, phone: Phone, disabled: bool, link: bool) -> usize {
        let id = self.take_id();
        let (first, last) = if business.is_some() {
            (self.word(FIRST_NAMES).to_string(), self.word(LAST_NAMES).to_string())
        } else {
            self.fresh_person()
        };
        let display = business.clone().unwrap_or_else(|| format!("{first} {last}"));
        let domain = match &business {
            Some(b) => Self::domain_of(b),
            None => self.word(PERSONAL_DOMAINS).to_string(),
        };
        let email = self.fresh_email(&format!("{}.{}", slug(&first), slug(&last)), &domain);
        let phone = match phone {
            Phone::None => None,
            Phone::Fresh => {
                let d = self.fresh_phone();
                Some(self.styled_phone(&d))
            }
            Phone::Junk => Some(self.word(&["123", "n/a", "TBD", "555"]).to_string()),
            Phone::Digits(d) => Some(self.styled_phone(&d)),
        };
        let (city, state, zip3) = CITIES[self.below(CITIES.len())];
        let (created, updated) = self.stamps();
        let mut rec = blank(Kind::Customers);
        rec["id"] = json!(id);
        rec["firstname"] = json!(first);
        rec["lastname"] = json!(last);
        rec["business_name"] = business.as_ref().map_or(Value::Null, |b| json!(b));
        rec["email"] = json!(email);
        rec["phone"] = phone.map_or(Value::Null, |p| json!(p));
        rec["mobile"] = if self.chance(0.3) {
            let d = self.fresh_phone();
            json!(self.styled_phone(&d))
        } else {
            Value::Null
        };
        rec["address"] = json!(format!("{} {}", self.rng.random_range(10..9999), self.word(STREETS)));
        rec["city"] = json!(city);
        rec["state"] = json!(state);
        rec["zip"] = json!(format!("{zip3}{:02}", self.below(100)));
        rec["disabled"] = json!(disabled);
        rec["created_at"] = json!(created);
        rec["updated_at"] = json!(updated);
        rec["online_profile_url"] =
            json!(format!("https://brightpath.syncromsp.com/my_profile/v2/index?portal_key={}", self.token(20)));
        derive_customer_names(&mut rec);
        self.data.customers.push(rec);
        let plan = CompanyPlan { disabled, link };
        let outcome = company_outcome(&plan, &self.map);
        self.plans.companies.push(plan);
        self.customers.push(CustomerInfo { id, display, domain, outcome, contacts: Vec::new() });
        self.customers.len() - 1
    }

    // ------------------------------------------------------------ contacts

    /// A random customer index whose outcome satisfies `want` (any when none does).
    fn customer_where(&mut self, want: impl Fn(Outcome) -> bool) -> Option<usize> {
        let fits: Vec<usize> = (0..self.customers.len()).filter(|i| want(self.customers[*i].outcome)).collect();
        if fits.is_empty() {
            let n = self.customers.len();
            return (n > 0).then(|| self.below(n));
        }
        let k = self.below(fits.len());
        Some(fits[k])
    }

    fn gen_contacts(&mut self, n: usize) {
        if self.customers.is_empty() {
            return;
        }
        let units = self.plan_units(n, CONTACT_UNITS, ContactUnit::Normal);
        self.cursor = 50_000 + self.rng.random_range(0..500);
        for unit in units {
            use ContactUnit as U;
            let imported = |o: Outcome| o.in_crm();
            let skipped = |o: Outcome| !o.in_crm();
            match unit {
                U::Normal => {
                    let c = self.customer_where(|_| true);
                    self.make_contact(c, true, None);
                }
                U::NoEmail => {
                    let c = self.customer_where(|_| true);
                    self.make_contact(c, false, None);
                }
                U::OfDisabled => {
                    let c = self.customer_where(skipped);
                    self.make_contact(c, true, None);
                }
                U::EmailMatch | U::DisabledEmailMatch => {
                    let c = if unit == U::EmailMatch {
                        self.customer_where(imported)
                    } else {
                        self.customer_where(skipped)
                    };
                    let in_crm = c.is_some_and(|i| self.customers[i].outcome.in_crm());
                    if let Some(email) = self.make_contact_linking(c, in_crm) {
                        self.seed_contact_with(&email);
                    }
                }
                U::EmailTwins | U::EmailTwinsNoSeed => {
                    let c = self.customer_where(imported);
                    let in_crm = c.is_some_and(|i| self.customers[i].outcome.in_crm());
                    let seeded = unit == U::EmailTwins;
                    if let Some(email) = self.make_contact_linking(c, seeded && in_crm) {
                        let style = self.below(3) as u8;
                        let twin = email_variant(&email, style);
                        let other = self.customer_where(|_| true);
                        self.make_contact(other, true, Some(twin));
                        if seeded {
                            self.seed_contact_with(&email);
                        }
                    }
                }
            }
        }
    }

    fn make_contact_linking(&mut self, customer: Option<usize>, link: bool) -> Option<String> {
        let (email, _) = self.make_contact_planned(customer, true, None, link)?;
        email
    }

    fn make_contact(&mut self, customer: Option<usize>, with_email: bool, email: Option<String>) {
        let _ = self.make_contact_planned(customer, with_email, email, false);
    }

    /// Builds one contact of `customer`; returns its email (if any) and id.
    fn make_contact_planned(
        &mut self,
        customer: Option<usize>,
        with_email: bool,
        email: Option<String>,
        link: bool,
    ) -> Option<(Option<String>, i64)> {
        let ci = customer?;
        let id = self.take_id();
        let first = self.word(FIRST_NAMES);
        let last = self.word(LAST_NAMES);
        let domain = self.customers[ci].domain.clone();
        let email = match (with_email, email) {
            (false, _) => None,
            (true, Some(e)) => Some(e),
            (true, None) => Some(self.fresh_email(&format!("{}.{}", slug(first), slug(last)), &domain)),
        };
        let name = match self.below(10) {
            0 => format!("{} {}", first.to_lowercase(), last.to_lowercase()),
            1 => format!(" {first}  {last} "),
            _ => format!("{first} {last}"),
        };
        let (created, updated) = self.stamps();
        let (city, state, zip3) = CITIES[self.below(CITIES.len())];
        let mut rec = blank(Kind::Contacts);
        rec["id"] = json!(id);
        rec["name"] = json!(name);
        rec["address1"] = json!(format!("{} {}", self.rng.random_range(10..9999), self.word(STREETS)));
        rec["city"] = json!(city);
        rec["state"] = json!(state);
        rec["zip"] = json!(format!("{zip3}{:02}", self.below(100)));
        rec["email"] = match &email {
            Some(e) => json!(e),
            None if self.chance(0.5) => json!(""),
            None => Value::Null,
        };
        rec["phone"] = if self.chance(0.8) {
            let d = self.fresh_phone();
            json!(self.styled_phone(&d))
        } else {
            Value::Null
        };
        rec["title"] = if self.chance(0.6) { json!(self.word(CONTACT_TITLES)) } else { Value::Null };
        rec["customer_id"] = json!(self.customers[ci].id);
        rec["account_id"] = json!(ACCOUNT_ID);
        rec["created_at"] = json!(created);
        rec["updated_at"] = json!(updated);
        self.data.contacts.push(rec);
        self.customers[ci].contacts.push(id);
        let plan = ContactPlan { company: ci, link };
        self.plans.contacts.push(plan);
        Some((email, id))
    }

    fn seed_contact_with(&mut self, email: &str) {
        let style = self.below(3) as u8;
        let first = self.word(FIRST_NAMES).to_string();
        let last = self.word(LAST_NAMES).to_string();
        let phone = if self.chance(0.5) {
            let d = self.fresh_phone();
            Some(self.styled_phone(&d))
        } else {
            None
        };
        self.seed.contacts.push(SeedContact {
            first_name: first,
            last_name: last,
            email: Some(email_variant(email, style)),
            phone,
        });
    }

    // ------------------------------------------------------------ leads

    fn gen_leads(&mut self, n: usize) {
        self.cursor = 80_000 + self.rng.random_range(0..500);
        let in_crm: Vec<i64> = self.user_ids.iter().filter(|(_, o)| o.in_crm()).map(|(id, _)| *id).collect();
        let skipped: Vec<i64> = self.user_ids.iter().filter(|(_, o)| !o.in_crm()).map(|(id, _)| *id).collect();
        let gone = self.user_ids.iter().map(|(id, _)| *id).max().unwrap_or(1_000) + 500;
        for i in 0..n {
            let id = self.take_id();
            let status = self.word(LEAD_STATUSES);
            let customer = if self.chance(0.8) && !self.customers.is_empty() {
                Some(self.below(self.customers.len()))
            } else {
                None
            };
            let contact = customer.and_then(|c| {
                let list = self.customers[c].contacts.clone();
                (self.chance(0.5) && !list.is_empty()).then(|| list[self.below(list.len())])
            });
            // Every 5th lead's user is not a CRM user (skipped, or gone from Syncro).
            let user_id = match i % 10 {
                3 if !skipped.is_empty() => json!(skipped[self.below(skipped.len())]),
                7 => json!(gone + i as i64),
                9 => Value::Null,
                _ if !in_crm.is_empty() => json!(in_crm[self.below(in_crm.len())]),
                _ => Value::Null,
            };
            let first = self.word(FIRST_NAMES);
            let last = self.word(LAST_NAMES);
            let business = customer.map_or_else(|| format!("{first} {last}"), |c| self.customers[c].display.clone());
            let (created, updated) = self.stamps();
            let mut rec = blank(Kind::Leads);
            rec["id"] = json!(id);
            rec["first_name"] = json!(first);
            rec["last_name"] = json!(last);
            rec["email"] = json!(format!("{}.{}@{}", slug(first), slug(last), self.word(PERSONAL_DOMAINS)));
            rec["phone"] = json!("");
            rec["mobile"] = json!("");
            rec["address"] = json!("");
            rec["city"] = json!("");
            rec["state"] = json!("");
            rec["zip"] = json!("");
            rec["business_then_name"] = json!(business);
            rec["status"] = json!(status);
            rec["customer_id"] = customer.map_or(Value::Null, |c| json!(self.customers[c].id));
            rec["contact_id"] = contact.map_or(Value::Null, |c| json!(c));
            rec["user_id"] = user_id;
            rec["opportunity_amount_dollars"] = if self.chance(0.75) {
                json!((self.rng.random_range(500..50_000) as f64) + f64::from(self.rng.random_range(0..100u32)) / 100.0)
            } else {
                Value::Null
            };
            rec["likelihood"] = json!(self.rng.random_range(0..=10) * 10);
            rec["converted"] = json!(status == "Won" && self.chance(0.5));
            rec["disabled"] = json!(self.chance(0.05));
            rec["created_at"] = json!(created);
            rec["updated_at"] = json!(updated);
            self.data.leads.push(rec);
            self.plans.leads += 1;
        }
    }

    // ------------------------------------------------------------ unrelated CRM records

    fn gen_unrelated_seeds(&mut self, companies: usize) {
        for _ in 0..2 {
            let first = self.word(FIRST_NAMES);
            let last = self.word(LAST_NAMES);
            let email = self.fresh_email(&format!("{}.{}", slug(first), slug(last)), "tandem-crm.example");
            self.seed.users.push(SeedUser { email, name: format!("{first} {last}"), role: "salesperson".into() });
        }
        for _ in 0..companies / 10 {
            let name = self.fresh_crm_name();
            let phone = if self.chance(0.7) {
                let d = self.fresh_phone();
                Some(self.styled_phone(&d))
            } else {
                None
            };
            let website = self.chance(0.5).then(|| format!("www.{}", Self::domain_of(&name)));
            self.seed.companies.push(SeedCompany { name, phone, website });
        }
        for _ in 0..companies / 5 {
            let first = self.word(FIRST_NAMES).to_string();
            let last = self.word(LAST_NAMES).to_string();
            let email = self.fresh_email(&format!("{}.{}", slug(&first), slug(&last)), "crm-contacts.example");
            self.seed.contacts.push(SeedContact {
                first_name: first,
                last_name: last,
                email: Some(email),
                phone: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::email_key;

    #[test]
    fn the_same_seed_and_sizes_give_the_same_tenant() {
        let a = generate(&GenConfig::with_companies(5, 80));
        let b = generate(&GenConfig::with_companies(5, 80));
        assert_eq!(a.data.customers, b.data.customers);
        assert_eq!(a.data.leads, b.data.leads);
        assert_eq!(a.seed, b.seed);
    }

    #[test]
    fn variants_keep_their_comparison_keys() {
        for style in 0..3 {
            assert_eq!(name_key(&name_variant("Blue Harbor Dental LLC", style)), name_key("Blue Harbor Dental LLC"));
            assert_eq!(email_key(&email_variant("ann.lee@x.com", style)), email_key("ann.lee@x.com"));
            assert_ne!(email_variant("ann.lee@x.com", style), "ann.lee@x.com");
        }
    }
}
