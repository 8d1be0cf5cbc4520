//! The seeded ConnectWise tenant generator: members, companies, contacts, catalog items,
//! opportunities (with forecasts) and activities carrying the mess real tenants have,
//! the CRM seed that some of them were built to link to, and each record's plan for
//! the ground truth. Same seed and sizes: identical tenant.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::{Access, ApiMember};
use super::store::TenantData;
use super::truth::{
    ActivityPlan, CompanyPlan, ContactPlan, MemberPlan, Outcome, Plans, SolutionPlan, company_outcome, contact_outcome,
    member_outcome,
};
use super::typical::{TypicalMapping, typical_mapping};
use crate::common::{format_date, format_unix};
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
    /// Number of companies (C).
    pub companies: usize,
    /// Members; default 12 + C/100.
    pub members: Option<usize>,
    /// Contacts; default 3·C.
    pub contacts: Option<usize>,
    /// Opportunities; default C/2.
    pub opportunities: Option<usize>,
    /// Activities; default C.
    pub activities: Option<usize>,
    /// Catalog items; default 20 + C/10.
    pub catalog_items: Option<usize>,
}

impl GenConfig {
    /// `companies` companies, every other size derived from it.
    pub fn with_companies(seed: u64, companies: usize) -> Self {
        Self {
            seed,
            companies,
            members: None,
            contacts: None,
            opportunities: None,
            activities: None,
            catalog_items: None,
        }
    }

    /// The number of external records planned (members + companies + contacts +
    /// opportunities + activities + catalog items).
    pub fn total_records(&self) -> usize {
        let s = self.sizes();
        s.members + s.companies + s.contacts + s.opportunities + s.activities + s.catalog
    }

    pub(crate) fn sizes(&self) -> Sizes {
        let c = self.companies;
        Sizes {
            members: self.members.unwrap_or(12 + c / 100),
            companies: c,
            contacts: self.contacts.unwrap_or(3 * c),
            opportunities: self.opportunities.unwrap_or(c / 2),
            activities: self.activities.unwrap_or(c),
            catalog: self.catalog_items.unwrap_or(20 + c / 10),
        }
    }
}

impl Default for GenConfig {
    /// Seed 42, 600 companies (about 3,400 records).
    fn default() -> Self {
        Self::with_companies(42, 600)
    }
}

/// Record counts per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub members: usize,
    pub companies: usize,
    pub contacts: usize,
    pub opportunities: usize,
    pub activities: usize,
    pub catalog: usize,
}

// ---------------------------------------------------------------- setup lists (id = position + 1)

pub(crate) const SECURITY_ROLES: &[&str] = &["Admin", "Sales", "Marketing", "Technician", "API"];
pub(crate) const MEMBER_TYPES: &[&str] = &["Employee", "Contractor", "Former Employee"];
pub(crate) const COMPANY_TYPES: &[&str] = &["Client", "Prospect", "Partner", "Competitor", "Vendor"];
pub(crate) const COMPANY_STATUSES: &[&str] = &["Active", "Inactive", "Not-Approved", "Credit Hold"];
pub(crate) const CONTACT_TYPES: &[&str] = &["Decision Maker", "Technical Contact", "Billing", "End User", "Vendor Rep"];
pub(crate) const OPPORTUNITY_STATUSES: &[&str] = &["Open", "Won", "Lost", "No Decision"];
pub(crate) const OPPORTUNITY_TYPES: &[&str] = &["New Business", "Upsell", "Renewal"];
pub(crate) const STAGES: &[(&str, u32)] =
    &[("Prospecting", 10), ("Qualification", 25), ("Proposal", 50), ("Negotiation", 75), ("Closed", 100)];
pub(crate) const ACTIVITY_TYPES: &[&str] = &["Call", "Email", "Meeting", "Appointment", "Note", "Follow-up", "Quote"];
pub(crate) const ACTIVITY_STATUSES: &[&str] = &["Open", "Closed"];
pub(crate) const PRODUCT_TYPES: &[&str] = &["Hardware", "Software", "Service", "Agreement", "Internal"];
pub(crate) const CATEGORIES: &[&str] = &["Managed Services", "Hardware", "Software", "Security", "Misc"];
/// (subcategory, category).
pub(crate) const SUBCATEGORIES: &[(&str, &str)] = &[
    ("Monitoring", "Managed Services"),
    ("Backup", "Managed Services"),
    ("Network", "Hardware"),
    ("Workstations", "Hardware"),
    ("Productivity", "Software"),
    ("Line of Business", "Software"),
    ("Endpoint", "Security"),
    ("Training", "Security"),
    ("Fees", "Misc"),
    ("Other", "Misc"),
];

/// Status a company gets when created without one ("Active").
pub(crate) const DEFAULT_COMPANY_STATUS: i64 = 1;
/// Status an opportunity gets when created without one ("Open").
pub(crate) const DEFAULT_OPPORTUNITY_STATUS: i64 = 1;
/// Stage an opportunity gets when created without one ("Prospecting").
pub(crate) const DEFAULT_STAGE: i64 = 1;
/// Status an activity gets when created without one ("Open").
pub(crate) const DEFAULT_ACTIVITY_STATUS: i64 = 1;

/// The id of `name` in a setup list (position + 1; 0 if absent, which never happens).
fn sid(list: &[&str], name: &str) -> i64 {
    list.iter().position(|n| *n == name).map_or(0, |p| p as i64 + 1)
}

/// A company type reference (`{"id", "name"}`) by its name, as records carry it.
pub(crate) fn company_type_ref(name: &str) -> Value {
    refn(COMPANY_TYPES, name)
}

fn refn(list: &[&str], name: &str) -> Value {
    json!({"id": sid(list, name), "name": name})
}

fn setup_lists() -> Vec<(&'static str, Vec<Value>)> {
    let ids = |list: &[&str], f: &dyn Fn(i64, &str) -> Value| -> Vec<Value> {
        list.iter().enumerate().map(|(i, n)| f(i as i64 + 1, n)).collect()
    };
    vec![
        ("system/securityroles", ids(SECURITY_ROLES, &|id, n| json!({"id": id, "name": n, "roleType": "Corporate"}))),
        ("system/members/types", ids(MEMBER_TYPES, &|id, n| json!({"id": id, "name": n, "inactiveFlag": n == "Former Employee"}))),
        (
            "company/companies/types",
            ids(COMPANY_TYPES, &|id, n| json!({"id": id, "name": n, "vendorFlag": n == "Vendor", "defaultFlag": n == "Client"})),
        ),
        (
            "company/companies/statuses",
            ids(COMPANY_STATUSES, &|id, n| {
                json!({"id": id, "name": n, "inactiveFlag": matches!(n, "Inactive" | "Not-Approved"), "defaultFlag": n == "Active"})
            }),
        ),
        ("company/contacts/types", ids(CONTACT_TYPES, &|id, n| json!({"id": id, "description": n, "defaultFlag": n == "End User"}))),
        (
            "sales/opportunities/statuses",
            ids(OPPORTUNITY_STATUSES, &|id, n| {
                json!({"id": id, "name": n, "wonFlag": n == "Won", "lostFlag": n == "Lost", "closedFlag": n != "Open",
                       "inactiveFlag": false, "defaultFlag": n == "Open"})
            }),
        ),
        ("sales/opportunities/types", ids(OPPORTUNITY_TYPES, &|id, n| json!({"id": id, "description": n, "inactiveFlag": false}))),
        (
            "sales/stages",
            STAGES
                .iter()
                .enumerate()
                // The official OpportunityStage carries its probability as a reference, like an
                // opportunity's (`{id, name}`), not as a bare number.
                .map(|(i, (n, p))| {
                    let probability = json!({"id": (p / 10).max(1), "name": format!("{p}%")});
                    json!({"id": i + 1, "name": n, "probability": probability, "sequenceNumber": i + 1})
                })
                .collect(),
        ),
        ("sales/probabilities", (1..=10).map(|i| json!({"id": i, "probability": i * 10})).collect()),
        (
            "sales/activities/types",
            ids(ACTIVITY_TYPES, &|id, n| {
                json!({"id": id, "name": n, "points": match n { "Meeting" | "Appointment" => 3, "Quote" => 2, "Note" => 0, _ => 1 },
                       "defaultFlag": n == "Call", "inactiveFlag": false, "emailFlag": n == "Email", "memoFlag": n == "Note",
                       "historyFlag": n == "Note"})
            }),
        ),
        ("sales/activities/statuses", ids(ACTIVITY_STATUSES, &|id, n| json!({"id": id, "name": n, "closedFlag": n == "Closed", "defaultFlag": n == "Open"}))),
        ("procurement/types", ids(PRODUCT_TYPES, &|id, n| json!({"id": id, "name": n, "inactiveFlag": false}))),
        ("procurement/categories", ids(CATEGORIES, &|id, n| json!({"id": id, "name": n, "inactiveFlag": false}))),
        (
            "procurement/subcategories",
            SUBCATEGORIES
                .iter()
                .enumerate()
                .map(|(i, (n, c))| json!({"id": i + 1, "name": n, "category": refn(CATEGORIES, c), "inactiveFlag": false}))
                .collect(),
        ),
    ]
}

// ---------------------------------------------------------------- formatting helpers

/// Domain of the MSP itself (members' emails).
const MSP_DOMAIN: &str = "brightpath-it.com";
/// 2019-01-01T00:00:00Z.
const START: i64 = 1_546_300_800;
/// 2025-06-30T00:00:00Z: no generated record is updated later.
const END: i64 = 1_751_241_600;
const DAY: i64 = 86_400;

/// A 10-digit number in one of the ways people type phones.
fn fmt_phone(d: &str, style: u8, ext: u32) -> String {
    let (a, b, c) = (&d[0..3], &d[3..6], &d[6..10]);
    match style {
        1 => format!("({a}) {b}-{c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("{a}.{b}.{c}"),
        4 => format!("+1 {a} {b} {c}"),
        5 => format!("{a}-{b}-{c} x{ext}"),
        _ => d.to_string(),
    }
}

/// A domain written as a website in one of several forms.
fn fmt_site(domain: &str, form: u8) -> String {
    match form {
        1 => format!("https://www.{domain}/"),
        2 => format!("http://{domain}/contact-us"),
        3 => domain.to_string(),
        4 => format!("https://{domain}"),
        5 => format!("https://www.{domain}/about"),
        _ => format!("www.{domain}"),
    }
}

/// The same company name in other letter case / punctuation (same name key).
fn name_variant(name: &str, style: u8) -> String {
    let candidates = [
        name.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>().to_uppercase(),
        {
            let words: Vec<&str> = name.split_whitespace().collect();
            let mut s = match words.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{}, {last}", rest.join(" ")),
                _ => name.to_string(),
            };
            if !s.ends_with('.') {
                s.push('.');
            }
            s
        },
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
    let title = {
        let mut out = String::with_capacity(email.len());
        let mut up = true;
        for ch in email.chars() {
            if up {
                out.extend(ch.to_uppercase())
            } else {
                out.push(ch)
            }
            up = matches!(ch, '.' | '@' | '-');
        }
        out
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

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------- scenarios

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompanyUnit {
    Normal,
    NoType,
    Competitor,
    Vendor,
    VendorClient,
    ClientVendor,
    Deleted,
    Inactive,
    PhoneMatch,
    WebsiteMatch,
    NameMatch,
    /// Two companies share a phone one CRM company has: the first links, the second is created.
    PhonePair,
    /// Like `PhonePair` but the first is deleted, so the second links.
    SkippedThenLinked,
    DupPhoneNoSeed,
    /// Two companies whose names differ only in case/punctuation; a CRM company has that name.
    NameTwins,
    NameTwinsNoSeed,
    /// A deleted or inactive company whose website a CRM company has (that one stays unlinked).
    SkippedWebsiteMatch,
}

/// (unit, per mille of the companies, companies per unit).
const COMPANY_UNITS: &[(CompanyUnit, usize, usize)] = &[
    (CompanyUnit::PhonePair, 10, 2),
    (CompanyUnit::SkippedThenLinked, 5, 2),
    (CompanyUnit::NameTwins, 10, 2),
    (CompanyUnit::PhoneMatch, 40, 1),
    (CompanyUnit::WebsiteMatch, 40, 1),
    (CompanyUnit::NameMatch, 30, 1),
    (CompanyUnit::NoType, 50, 1),
    (CompanyUnit::Vendor, 40, 1),
    (CompanyUnit::Deleted, 30, 1),
    (CompanyUnit::Inactive, 40, 1),
    (CompanyUnit::Competitor, 25, 1),
    (CompanyUnit::VendorClient, 20, 1),
    (CompanyUnit::ClientVendor, 20, 1),
    (CompanyUnit::DupPhoneNoSeed, 10, 2),
    (CompanyUnit::NameTwinsNoSeed, 5, 2),
    (CompanyUnit::SkippedWebsiteMatch, 10, 1),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContactUnit {
    Normal,
    Inactive,
    VendorRep,
    VendorRepFirst,
    DecisionMakerFirst,
    VendorCompany,
    EmailMatch,
    /// Two email items, the default second; the CRM contact has the default one.
    EmailMatchDefaultSecond,
    /// Two email items; the CRM contact has the one that is not the default.
    SeedOnNonDefault,
    /// Two contacts whose emails differ only in case; a CRM contact has it.
    EmailTwins,
    EmailTwinsNoSeed,
    InactiveEmailMatch,
    NoEmail,
    NoCompany,
}

const CONTACT_UNITS: &[(ContactUnit, usize, usize)] = &[
    (ContactUnit::EmailTwins, 5, 2),
    (ContactUnit::EmailMatch, 40, 1),
    (ContactUnit::EmailMatchDefaultSecond, 10, 1),
    (ContactUnit::Inactive, 40, 1),
    (ContactUnit::VendorRep, 30, 1),
    (ContactUnit::VendorCompany, 30, 1),
    (ContactUnit::NoCompany, 50, 1),
    (ContactUnit::NoEmail, 60, 1),
    (ContactUnit::VendorRepFirst, 10, 1),
    (ContactUnit::DecisionMakerFirst, 10, 1),
    (ContactUnit::InactiveEmailMatch, 10, 1),
    (ContactUnit::SeedOnNonDefault, 5, 1),
    (ContactUnit::EmailTwinsNoSeed, 5, 2),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SolutionUnit {
    Normal,
    Inactive,
    InternalType,
    MiscCategory,
    DoNotBill,
    InactiveInternal,
}

const SOLUTION_UNITS: &[(SolutionUnit, usize, usize)] = &[
    (SolutionUnit::Inactive, 80, 1),
    (SolutionUnit::InternalType, 60, 1),
    (SolutionUnit::MiscCategory, 60, 1),
    (SolutionUnit::DoNotBill, 60, 1),
    (SolutionUnit::InactiveInternal, 20, 1),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActivityUnit {
    Normal,
    UnmappedType,
    NoContact,
    SkippedContact,
    SkippedCreator,
    NonMemberCreator,
}

const ACTIVITY_UNITS: &[(ActivityUnit, usize, usize)] = &[
    (ActivityUnit::UnmappedType, 100, 1),
    (ActivityUnit::NoContact, 50, 1),
    (ActivityUnit::SkippedContact, 80, 1),
    (ActivityUnit::SkippedCreator, 80, 1),
    (ActivityUnit::NonMemberCreator, 20, 1),
];

/// (description, category, type, productClass, price low, price high, recurring).
type Template = (&'static str, &'static str, &'static str, &'static str, f64, f64, bool);

const CATALOG: &[Template] = &[
    ("Managed Workstation", "Managed Services", "Agreement", "Agreement", 35.0, 75.0, true),
    ("Managed Server", "Managed Services", "Agreement", "Agreement", 150.0, 300.0, true),
    ("Cloud Backup 1TB", "Managed Services", "Service", "Service", 60.0, 120.0, true),
    ("Network Monitoring", "Managed Services", "Service", "Service", 100.0, 250.0, true),
    ("Help Desk Block 10h", "Managed Services", "Service", "Service", 900.0, 1400.0, false),
    ("Business Laptop 14in", "Hardware", "Hardware", "Inventory", 900.0, 1800.0, false),
    ("Firewall Appliance", "Hardware", "Hardware", "Inventory", 600.0, 2500.0, false),
    ("24-port PoE Switch", "Hardware", "Hardware", "Inventory", 400.0, 1500.0, false),
    ("Wireless Access Point", "Hardware", "Hardware", "Inventory", 150.0, 600.0, false),
    ("UPS 1500VA", "Hardware", "Hardware", "Inventory", 250.0, 700.0, false),
    ("Microsoft 365 Business Premium", "Software", "Software", "NonInventory", 20.0, 25.0, true),
    ("Adobe Acrobat Pro", "Software", "Software", "NonInventory", 15.0, 25.0, true),
    ("QuickBooks Online Plus", "Software", "Software", "NonInventory", 60.0, 95.0, true),
    ("Endpoint Detection and Response", "Security", "Software", "NonInventory", 5.0, 12.0, true),
    ("Security Awareness Training", "Security", "Service", "Service", 2.0, 5.0, true),
    ("Dark Web Monitoring", "Security", "Service", "Service", 50.0, 150.0, true),
    ("Email Filtering", "Security", "Service", "Service", 2.0, 4.0, true),
];

const MISC_CATALOG: &[Template] = &[
    ("Travel Fee", "Misc", "Service", "Service", 50.0, 150.0, false),
    ("Shipping and Handling", "Misc", "Service", "NonInventory", 15.0, 80.0, false),
    ("Onsite Labor Hour", "Misc", "Service", "Service", 125.0, 175.0, false),
];

const INTERNAL_CATALOG: &[Template] = &[
    ("Internal Lab Equipment", "Hardware", "Internal", "Inventory", 100.0, 900.0, false),
    ("Internal Tooling License", "Software", "Internal", "NonInventory", 10.0, 60.0, true),
];

const OPPORTUNITY_TOPICS: &[&str] = &[
    "Managed Services Agreement",
    "Firewall Refresh",
    "Microsoft 365 Migration",
    "Server Replacement",
    "Backup & DR",
    "Security Assessment",
    "Network Upgrade",
    "Workstation Refresh",
    "VoIP Rollout",
    "Annual Renewal",
];

const ACTIVITY_TOPICS: &[&str] = &[
    "renewal",
    "backup failures",
    "new hire onboarding",
    "firewall refresh",
    "quarterly business review",
    "invoice question",
    "Microsoft 365 licensing",
    "printer issues",
    "security training",
    "server warranty",
];

// ---------------------------------------------------------------- the generator

#[derive(Clone, Debug)]
struct MemberInfo {
    id: i64,
    identifier: String,
    name: String,
}

#[derive(Clone, Debug)]
struct CompanyInfo {
    id: i64,
    identifier: String,
    name: String,
    domain: String,
    phone: Option<(String, u8)>,
    site_form: Option<u8>,
    first_type: Option<&'static str>,
}

#[derive(Clone, Debug)]
struct ContactInfo {
    id: i64,
    first: String,
    last: String,
    company: Option<usize>,
    /// (value, defaultFlag) of each Email item.
    emails: Vec<(String, bool)>,
}

#[derive(Clone, Debug)]
struct ItemInfo {
    id: i64,
    identifier: String,
    description: String,
    price: f64,
    cost: f64,
    class: &'static str,
    recurring: bool,
}

/// What one company is built as.
#[derive(Clone, Debug)]
struct CompanySpec {
    types: Vec<&'static str>,
    status: &'static str,
    deleted: bool,
    /// `None`: no phone; `Some(None)`: a fresh one; `Some(Some(i))`: company i's.
    phone: Option<Option<usize>>,
    website: bool,
    twin_of: Option<usize>,
    link: bool,
}

/// What one contact is built as.
#[derive(Clone, Debug)]
struct ContactSpec {
    company: Option<usize>,
    types: Vec<&'static str>,
    inactive: bool,
    emails: EmailSpec,
    link: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EmailSpec {
    None,
    One,
    /// Two Email items, the second the default.
    TwoDefaultSecond,
    /// The email of contact i in another letter case.
    CaseTwinOf(usize),
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
    used_sites: HashSet<String>,
    used_names: HashSet<String>,
    used_emails: HashSet<String>,
    used_idents: HashSet<String>,
    used_logins: HashSet<String>,
    name_counter: usize,
    name_offset: usize,
    next_item: i64,
    cursor: i64,
    plans: Plans,
    member_out: Vec<Outcome>,
    company_out: Vec<Outcome>,
    contact_out: Vec<Outcome>,
    members: Vec<MemberInfo>,
    companies: Vec<CompanyInfo>,
    contacts: Vec<ContactInfo>,
    items: Vec<ItemInfo>,
    opps: Vec<(i64, String, Option<usize>)>,
    json: HashMap<&'static str, Vec<Value>>,
    forecasts: Vec<(i64, Vec<Value>)>,
    seed: CrmSeed,
}

/// Generates the tenant of `cfg`.
pub(crate) fn generate(cfg: &GenConfig) -> Generated {
    let sizes = cfg.sizes();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let combos = COMPANY_ADJECTIVES.len() * COMPANY_NOUNS.len() * COMPANY_SUFFIXES.len();
    let name_offset = rng.random_range(0..combos);
    let mut g = Gen {
        rng,
        map: typical_mapping(),
        used_phones: HashSet::new(),
        used_sites: HashSet::new(),
        used_names: HashSet::new(),
        used_emails: HashSet::new(),
        used_idents: HashSet::new(),
        used_logins: HashSet::new(),
        name_counter: 0,
        name_offset,
        next_item: 1,
        cursor: 1,
        plans: Plans::default(),
        member_out: Vec::new(),
        company_out: Vec::new(),
        contact_out: Vec::new(),
        members: Vec::new(),
        companies: Vec::new(),
        contacts: Vec::new(),
        items: Vec::new(),
        opps: Vec::new(),
        json: HashMap::new(),
        forecasts: Vec::new(),
        seed: CrmSeed::default(),
    };
    let access = g.access();
    g.gen_members(sizes.members);
    g.gen_companies(sizes.companies);
    g.gen_contacts(sizes.contacts);
    g.gen_catalog(sizes.catalog);
    g.gen_opportunities(sizes.opportunities);
    g.gen_activities(sizes.activities);
    g.gen_unrelated_seeds(&sizes);
    let mut collections = setup_lists();
    for path in [
        "system/members",
        "company/companies",
        "company/contacts",
        "procurement/catalog",
        "sales/opportunities",
        "sales/activities",
    ] {
        collections.push((path, g.json.remove(path).unwrap_or_default()));
    }
    Generated {
        data: TenantData { collections, forecasts: std::mem::take(&mut g.forecasts) },
        seed: g.seed,
        plans: g.plans,
        access,
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
        let mut roll = self.rng.random_range(0..total.max(1));
        for (v, w) in weighted {
            if roll < *w {
                return *v;
            }
            roll -= w;
        }
        weighted[0].0
    }

    fn token(&mut self, len: usize) -> String {
        token(&mut self.rng, b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", len)
    }

    fn access(&mut self) -> Access {
        let hex = |g: &mut Gen, n: usize| -> String {
            (0..n).map(|_| char::from_digit(g.below(16) as u32, 16).unwrap_or('0')).collect()
        };
        let client_id =
            format!("{}-{}-{}-{}-{}", hex(self, 8), hex(self, 4), hex(self, 4), hex(self, 4), hex(self, 12));
        let full = ApiMember {
            identifier: "TandemApi".into(),
            public_key: self.token(16),
            private_key: self.token(16),
            restricted: false,
        };
        let restricted = ApiMember {
            identifier: "TandemReadOnly".into(),
            public_key: self.token(16),
            private_key: self.token(16),
            restricted: true,
        };
        // Another integration's API member with full rights, its keys made from the first
        // one's (not drawn, so every generated tenant stays as it was).
        let other = ApiMember {
            identifier: "OtherIntegration".into(),
            public_key: full.public_key.chars().rev().collect(),
            private_key: full.private_key.chars().rev().collect(),
            restricted: false,
        };
        Access {
            company_id: "brightpath".into(),
            company_name: "BrightPath IT".into(),
            client_id,
            members: vec![full, restricted, other],
        }
    }

    /// (dateEntered, lastUpdated) as Unix seconds.
    fn stamps(&mut self) -> (i64, i64) {
        let entered = self.rng.random_range(START..END - 30 * DAY);
        let updated = (entered + self.rng.random_range(0..400 * DAY)).min(END);
        (entered, updated)
    }

    fn any_login(&mut self) -> String {
        let i = self.below(self.members.len());
        self.members.get(i).map_or_else(|| "admin".to_string(), |m| m.identifier.clone())
    }

    fn info(&mut self, entered_by: Option<String>) -> Value {
        let (entered, updated) = self.stamps();
        let by = entered_by.unwrap_or_else(|| self.any_login());
        let updated_by = if self.chance(0.5) { by.clone() } else { self.any_login() };
        json!({
            "lastUpdated": format_unix(updated),
            "dateEntered": format_unix(entered),
            "enteredBy": by,
            "updatedBy": updated_by,
        })
    }

    fn push(&mut self, path: &'static str, v: Value) {
        self.json.entry(path).or_default().push(v);
    }

    /// Splits `n` records into scenario units (see [`plan_units`]).
    fn plan_units<T: Copy>(&mut self, n: usize, table: &[(T, usize, usize)], normal: T) -> Vec<T> {
        plan_units(&mut self.rng, n, table, normal)
    }

    fn next_id(&mut self, last: i64) -> i64 {
        last + 1 + if self.chance(0.2) { self.rng.random_range(1..4) } else { 0 }
    }

    /// The id at the cursor; moves the cursor on (ids ascend with small gaps).
    fn take_id(&mut self) -> i64 {
        let id = self.cursor;
        self.cursor = self.next_id(id);
        id
    }

    // ------------------------------------------------------------ unique values

    fn fresh_phone(&mut self) -> String {
        fresh_phone(&mut self.rng, &mut self.used_phones)
    }

    fn fresh_company_name(&mut self) -> String {
        fresh_company_name(&mut self.name_counter, self.name_offset, &mut self.used_names)
    }

    fn fresh_crm_name(&mut self) -> String {
        fresh_crm_name(&mut self.rng, &mut self.used_names)
    }

    fn fresh_domain(&mut self, name: &str) -> String {
        let words: Vec<String> = name_key(name).unwrap_or_default().split(' ').map(str::to_string).collect();
        let base = words.iter().take(2).cloned().collect::<String>();
        let mut candidates = vec![format!("{base}.com")];
        if words.len() > 2 {
            candidates.push(format!("{base}{}.com", words[2]));
        }
        candidates.push(format!("{base}-us.com"));
        for d in candidates {
            if self.used_sites.insert(d.clone()) {
                return d;
            }
        }
        let mut n = 2;
        loop {
            let d = format!("{base}{n}.com");
            if self.used_sites.insert(d.clone()) {
                return d;
            }
            n += 1;
        }
    }

    fn fresh_email(&mut self, local: &str, domain: &str) -> String {
        fresh_email(&mut self.used_emails, local, domain)
    }

    fn fresh_identifier(&mut self, name: &str) -> String {
        let base: String = name
            .split_whitespace()
            .take(2)
            .map(|w| w.chars().filter(char::is_ascii_alphanumeric).collect::<String>())
            .collect::<String>()
            .chars()
            .take(22)
            .collect();
        let mut n = 1;
        loop {
            let id = if n == 1 { base.clone() } else { format!("{base}{n}") };
            if self.used_idents.insert(id.to_lowercase()) {
                return id;
            }
            n += 1;
        }
    }

    // ------------------------------------------------------------ members

    fn gen_members(&mut self, n: usize) {
        // (role, inactive, has email, a CRM user has the email)
        const SLOTS: [(&str, bool, bool, bool); 12] = [
            ("Admin", false, true, true),
            ("Sales", false, true, false),
            ("Sales", false, true, true),
            ("Marketing", false, true, false),
            ("Technician", false, true, false),
            ("Sales", true, true, false),
            ("Sales", false, false, false),
            ("Sales", false, true, false),
            ("API", false, true, false),
            ("Technician", true, false, false),
            ("Marketing", false, true, true),
            ("Technician", false, true, false),
        ];
        let mut id = 100 + self.rng.random_range(0..20);
        for i in 0..n {
            let (role, inactive, has_email, link) = SLOTS[i % SLOTS.len()];
            let first = self.word(FIRST_NAMES);
            let last = self.word(LAST_NAMES);
            let base_login = format!("{}{}", slug(first).chars().next().unwrap_or('x'), slug(last));
            let identifier = (1..)
                .map(|k| if k == 1 { base_login.clone() } else { format!("{base_login}{k}") })
                .find(|l| self.used_logins.insert(l.clone()))
                .unwrap_or_default();
            let email = self.fresh_email(&format!("{}.{}", slug(first), slug(last)), MSP_DOMAIN);
            let name = format!("{first} {last}");
            let kind = if inactive {
                "Former Employee"
            } else if self.chance(0.15) {
                "Contractor"
            } else {
                "Employee"
            };
            let title = match role {
                "Admin" => "Operations Director",
                "Sales" => "Account Manager",
                "Marketing" => "Marketing Coordinator",
                "API" => "Integration Account",
                _ => "Service Technician",
            };
            let mut rec = json!({
                "id": id,
                "identifier": identifier,
                "firstName": first,
                "lastName": last,
                "title": title,
                "inactiveFlag": inactive,
                "adminFlag": role == "Admin",
                "licenseClass": if role == "API" { "A" } else { "F" },
                "securityRole": refn(SECURITY_ROLES, role),
                "type": refn(MEMBER_TYPES, kind),
                "officePhone": fmt_phone(&format!("813555{:04}", 100 + i % 9000), 2, 0),
                "defaultEmail": "Office",
                // The official Member schema requires `hireDate` and `defaultPhone` (and the
                // generated clients refuse a member without them). Derived from the slot, not
                // drawn, so the rest of the tenant stays as it was for a seed.
                "hireDate": format!("{}T00:00:00Z", format_date(END - (400 + (i as i64 * 173) % 2900) * DAY)),
                "defaultPhone": "Office",
                "timeZone": {"id": 1, "name": "GMT-5/Eastern Time: US & Canada"},
            });
            if has_email {
                rec["primaryEmail"] = json!(email);
                rec["officeEmail"] = json!(email);
            } else if i % 2 == 0 {
                rec["primaryEmail"] = json!("");
            }
            if inactive {
                rec["inactiveDate"] = json!(format_unix(END - self.rng.random_range(0..700) * DAY));
            }
            let creator = self.members.first().map(|m| m.identifier.clone()).unwrap_or_else(|| identifier.clone());
            rec["_info"] = self.info(Some(creator));
            self.push("system/members", rec);
            self.members.push(MemberInfo { id, identifier, name: name.clone() });
            let plan = MemberPlan { inactive, has_email, role: role.to_string(), link };
            let outcome = member_outcome(&plan, &self.map);
            self.plans.members.push(plan);
            self.member_out.push(outcome);
            let crm_role = TypicalMapping::lookup(&self.map.roles, role).unwrap_or("no_type").to_string();
            if link || (inactive && has_email && self.chance(0.5)) {
                let style = self.below(3) as u8;
                self.seed.users.push(SeedUser { email: email_variant(&email, style), name, role: crm_role });
            }
            id = self.next_id(id);
        }
    }

    // ------------------------------------------------------------ companies

    fn mapped_types(&mut self) -> Vec<&'static str> {
        self.pick(&[
            (&["Client"][..], 55),
            (&["Prospect"][..], 25),
            (&["Partner"][..], 10),
            (&["Client", "Vendor"][..], 5),
            (&[][..], 5),
        ])
        .to_vec()
    }

    fn active_status(&mut self) -> &'static str {
        self.pick(&[("Active", 93), ("Credit Hold", 7)])
    }

    fn importable(&mut self, website: bool, link: bool) -> CompanySpec {
        CompanySpec {
            types: self.mapped_types(),
            status: self.active_status(),
            deleted: false,
            phone: if self.chance(0.95) { Some(None) } else { None },
            website: website || self.chance(0.85),
            twin_of: None,
            link,
        }
    }

    fn gen_companies(&mut self, n: usize) {
        let units = self.plan_units(n, COMPANY_UNITS, CompanyUnit::Normal);
        self.cursor = 250 + self.rng.random_range(0..50);
        for unit in units {
            match unit {
                CompanyUnit::Normal => {
                    let spec = self.importable(false, false);
                    self.make_company(spec);
                }
                CompanyUnit::NoType | CompanyUnit::Competitor | CompanyUnit::Vendor => {
                    let mut spec = self.importable(false, false);
                    spec.types = match unit {
                        CompanyUnit::NoType => vec![],
                        CompanyUnit::Competitor => vec!["Competitor"],
                        _ => vec!["Vendor"],
                    };
                    self.make_company(spec);
                }
                CompanyUnit::VendorClient | CompanyUnit::ClientVendor => {
                    let mut spec = self.importable(false, false);
                    spec.types = if unit == CompanyUnit::VendorClient {
                        vec!["Vendor", "Client"]
                    } else {
                        vec!["Client", "Vendor"]
                    };
                    self.make_company(spec);
                }
                CompanyUnit::Deleted => {
                    let mut spec = self.importable(false, false);
                    spec.deleted = true;
                    if self.chance(0.3) {
                        spec.status = "Inactive";
                    }
                    self.make_company(spec);
                }
                CompanyUnit::Inactive => {
                    let mut spec = self.importable(false, false);
                    spec.status = self.pick(&[("Inactive", 70), ("Not-Approved", 30)]);
                    self.make_company(spec);
                }
                CompanyUnit::PhoneMatch => {
                    let mut spec = self.importable(false, true);
                    spec.phone = Some(None);
                    let i = self.make_company(spec);
                    let phone = self.reformat_phone(i);
                    let name = self.fresh_crm_name();
                    self.seed.companies.push(SeedCompany { name, phone, website: None });
                }
                CompanyUnit::WebsiteMatch => {
                    let spec = self.importable(true, true);
                    let i = self.make_company(spec);
                    let website = self.reformat_site(i);
                    let name = self.fresh_crm_name();
                    self.seed.companies.push(SeedCompany { name, phone: None, website });
                }
                CompanyUnit::NameMatch => {
                    let spec = self.importable(false, true);
                    let i = self.make_company(spec);
                    let style = self.below(3) as u8;
                    let name = name_variant(&self.companies[i].name, style);
                    let phone = if self.chance(0.5) { Some(fmt_phone(&self.fresh_phone(), 1, 0)) } else { None };
                    self.seed.companies.push(SeedCompany { name, phone, website: None });
                }
                CompanyUnit::PhonePair | CompanyUnit::SkippedThenLinked | CompanyUnit::DupPhoneNoSeed => {
                    let mut first = self.importable(false, unit == CompanyUnit::PhonePair);
                    first.phone = Some(None);
                    if unit == CompanyUnit::SkippedThenLinked {
                        first.deleted = true;
                    }
                    let a = self.make_company(first);
                    let mut second = self.importable(false, unit == CompanyUnit::SkippedThenLinked);
                    second.phone = Some(Some(a));
                    self.make_company(second);
                    if unit != CompanyUnit::DupPhoneNoSeed {
                        let phone = self.reformat_phone(a);
                        let name = self.fresh_crm_name();
                        self.seed.companies.push(SeedCompany { name, phone, website: None });
                    }
                }
                CompanyUnit::NameTwins | CompanyUnit::NameTwinsNoSeed => {
                    let first = self.importable(false, unit == CompanyUnit::NameTwins);
                    let a = self.make_company(first);
                    let mut second = self.importable(false, false);
                    second.twin_of = Some(a);
                    self.make_company(second);
                    if unit == CompanyUnit::NameTwins {
                        let name = self.companies[a].name.to_uppercase().replace(['.', ','], "");
                        let name = if name == self.companies[a].name { name.to_lowercase() } else { name };
                        self.seed.companies.push(SeedCompany { name, phone: None, website: None });
                    }
                }
                CompanyUnit::SkippedWebsiteMatch => {
                    let mut spec = self.importable(true, false);
                    if self.chance(0.5) {
                        spec.deleted = true;
                    } else {
                        spec.status = "Inactive";
                    }
                    let i = self.make_company(spec);
                    let website = self.reformat_site(i);
                    let name = self.fresh_crm_name();
                    self.seed.companies.push(SeedCompany { name, phone: None, website });
                }
            }
        }
    }

    /// Company `i`'s phone as a CRM user would type it (another format).
    fn reformat_phone(&mut self, i: usize) -> Option<String> {
        let (digits, style) = self.companies.get(i)?.phone.clone()?;
        let others: Vec<u8> = (0..5).filter(|s| *s != style).collect();
        let new_style = others[self.below(others.len())];
        Some(fmt_phone(&digits, new_style, 0))
    }

    /// Company `i`'s website in another form.
    fn reformat_site(&mut self, i: usize) -> Option<String> {
        let c = self.companies.get(i)?;
        let form = c.site_form?;
        let domain = c.domain.clone();
        let others: Vec<u8> = (0..6).filter(|f| *f != form).collect();
        Some(fmt_site(&domain, others[self.below(others.len())]))
    }

    fn make_company(&mut self, spec: CompanySpec) -> usize {
        let id = self.take_id();
        let name = match spec.twin_of.and_then(|j| self.companies.get(j)) {
            Some(twin) => {
                let base = twin.name.clone();
                name_variant(&base, self.below(3) as u8)
            }
            None => self.fresh_company_name(),
        };
        let identifier = self.fresh_identifier(&name);
        let domain = self.fresh_domain(&name);
        let phone = match spec.phone {
            None => None,
            Some(None) => {
                let d = self.fresh_phone();
                let style = self.pick(&[(0u8, 55), (1, 15), (2, 10), (3, 8), (5, 7), (4, 5)]);
                Some((d, style))
            }
            Some(Some(j)) => self.companies.get(j).and_then(|c| c.phone.clone()).map(|(d, s)| (d, (s + 1) % 5)),
        };
        let site_form = spec.website.then(|| self.below(6) as u8);
        let (city, state, zip) = CITIES[self.below(CITIES.len())];
        let country =
            if state == "ON" { json!({"id": 2, "name": "Canada"}) } else { json!({"id": 1, "name": "United States"}) };
        let zip = if state == "ON" {
            format!("{zip} {}", self.token(3).to_uppercase())
        } else {
            format!("{zip}{:02}", self.below(100))
        };
        let mut rec = json!({
            "id": id,
            "identifier": identifier,
            "name": name,
            "status": refn(COMPANY_STATUSES, spec.status),
            "types": spec.types.iter().map(|t| refn(COMPANY_TYPES, t)).collect::<Vec<_>>(),
            "addressLine1": format!("{} {}", 100 + self.below(9800), self.word(STREETS)),
            "city": city,
            "state": state,
            "zip": zip,
            "country": country,
            "leadFlag": false,
            "unsubscribeFlag": false,
            "numberOfEmployees": 3 + self.below(400),
            "deletedFlag": spec.deleted,
            "customFields": super::custom_fields::company(id),
        });
        if self.chance(0.2) {
            rec["addressLine2"] = json!(format!("Suite {}", 100 + self.below(800)));
        }
        if let Some((d, style)) = &phone {
            let ext = 100 + self.below(900) as u32;
            rec["phoneNumber"] = json!(fmt_phone(d, *style, ext));
        }
        if let Some(form) = site_form {
            rec["website"] = json!(fmt_site(&domain, form));
        }
        let info = self.info(None);
        if spec.deleted {
            let deleted_at = info["lastUpdated"].clone();
            rec["dateDeleted"] = deleted_at;
            rec["deletedBy"] = json!(self.any_login());
        }
        rec["_info"] = info;
        self.push("company/companies", rec);
        let plan = CompanyPlan {
            deleted: spec.deleted,
            inactive_status: matches!(spec.status, "Inactive" | "Not-Approved"),
            types: spec.types.iter().map(|t| t.to_string()).collect(),
            link: spec.link,
        };
        let outcome = company_outcome(&plan, &self.map);
        self.plans.companies.push(plan);
        self.company_out.push(outcome);
        self.companies.push(CompanyInfo {
            id,
            identifier,
            name,
            domain,
            phone,
            site_form,
            first_type: spec.types.first().copied(),
        });
        self.companies.len() - 1
    }

    // ------------------------------------------------------------ contacts

    fn mapped_contact_types(&mut self) -> Vec<&'static str> {
        self.pick(&[
            (&[][..], 15),
            (&["Decision Maker"][..], 20),
            (&["Technical Contact"][..], 20),
            (&["Billing"][..], 15),
            (&["End User"][..], 30),
        ])
        .to_vec()
    }

    fn gen_contacts(&mut self, n: usize) {
        let units = self.plan_units(n, CONTACT_UNITS, ContactUnit::Normal);
        let importable: Vec<usize> = (0..self.companies.len()).filter(|i| self.company_out[*i].in_crm()).collect();
        let skipped: Vec<usize> = (0..self.companies.len()).filter(|i| !self.company_out[*i].in_crm()).collect();
        let vendors: Vec<usize> =
            (0..self.companies.len()).filter(|i| self.companies[*i].first_type == Some("Vendor")).collect();
        let vendors = if vendors.is_empty() { skipped } else { vendors };
        self.cursor = 1000 + self.rng.random_range(0..100);
        let pool_pick = |g: &mut Gen, pool: &[usize]| -> Option<usize> {
            if pool.is_empty() { None } else { Some(pool[g.below(pool.len())]) }
        };
        for unit in units {
            let any_company = {
                let n = self.companies.len();
                if n == 0 { None } else { Some(self.below(n)) }
            };
            let linkable_company = if self.chance(0.1) { None } else { pool_pick(self, &importable) };
            let mut spec = ContactSpec {
                company: any_company,
                types: self.mapped_contact_types(),
                inactive: false,
                emails: EmailSpec::One,
                link: false,
            };
            match unit {
                ContactUnit::Normal => {
                    if self.chance(0.02) {
                        spec.emails = EmailSpec::TwoDefaultSecond;
                    }
                    self.make_contact(spec);
                }
                ContactUnit::Inactive => {
                    spec.inactive = true;
                    self.make_contact(spec);
                }
                ContactUnit::VendorRep => {
                    spec.types = vec!["Vendor Rep"];
                    spec.company = pool_pick(self, &vendors).or(any_company);
                    self.make_contact(spec);
                }
                ContactUnit::VendorRepFirst => {
                    spec.types = vec!["Vendor Rep", "Decision Maker"];
                    self.make_contact(spec);
                }
                ContactUnit::DecisionMakerFirst => {
                    spec.types = vec!["Decision Maker", "Vendor Rep"];
                    self.make_contact(spec);
                }
                ContactUnit::VendorCompany => {
                    spec.company = pool_pick(self, &vendors).or(any_company);
                    self.make_contact(spec);
                }
                ContactUnit::NoEmail => {
                    spec.emails = EmailSpec::None;
                    self.make_contact(spec);
                }
                ContactUnit::NoCompany => {
                    spec.company = None;
                    self.make_contact(spec);
                }
                ContactUnit::EmailMatch | ContactUnit::EmailMatchDefaultSecond | ContactUnit::InactiveEmailMatch => {
                    spec.company = linkable_company;
                    spec.inactive = unit == ContactUnit::InactiveEmailMatch;
                    spec.link = !spec.inactive;
                    if unit == ContactUnit::EmailMatchDefaultSecond {
                        spec.emails = EmailSpec::TwoDefaultSecond;
                    }
                    let i = self.make_contact(spec);
                    self.seed_contact_for(i, true);
                }
                ContactUnit::SeedOnNonDefault => {
                    spec.company = linkable_company;
                    spec.emails = EmailSpec::TwoDefaultSecond;
                    let i = self.make_contact(spec);
                    self.seed_contact_for(i, false);
                }
                ContactUnit::EmailTwins | ContactUnit::EmailTwinsNoSeed => {
                    spec.company = linkable_company;
                    spec.link = unit == ContactUnit::EmailTwins;
                    let a = self.make_contact(spec);
                    let second = ContactSpec {
                        company: pool_pick(self, &importable),
                        types: self.mapped_contact_types(),
                        inactive: false,
                        emails: EmailSpec::CaseTwinOf(a),
                        link: false,
                    };
                    self.make_contact(second);
                    if unit == ContactUnit::EmailTwins {
                        self.seed_contact_for(a, true);
                    }
                }
            }
        }
    }

    /// A CRM contact with contact `i`'s email in another case: the one the import reads
    /// (`default`) or the other Email item.
    fn seed_contact_for(&mut self, i: usize, default: bool) {
        let Some(c) = self.contacts.get(i).cloned() else { return };
        let chosen = c.emails.iter().find(|(_, d)| *d).or(c.emails.first()).map(|(e, _)| e.clone());
        let email = if default {
            chosen
        } else {
            c.emails.iter().map(|(e, _)| e).find(|e| Some(*e) != chosen.as_ref()).cloned()
        };
        let Some(email) = email else { return };
        let style = self.below(3) as u8;
        let phone = self.chance(0.4).then(|| fmt_phone(&format!("555{:07}", self.below(10_000_000)), 3, 0));
        self.seed.contacts.push(SeedContact {
            first_name: c.first,
            last_name: c.last,
            email: Some(email_variant(&email, style)),
            phone,
        });
    }

    fn make_contact(&mut self, spec: ContactSpec) -> usize {
        let id = self.take_id();
        let first = self.word(FIRST_NAMES);
        let last = self.word(LAST_NAMES);
        let domain = match spec.company.and_then(|i| self.companies.get(i)) {
            Some(c) => c.domain.clone(),
            None => ["example.com", "example.net", "example.org"][self.below(3)].to_string(),
        };
        let local = if self.chance(0.6) {
            format!("{}.{}", slug(first), slug(last))
        } else {
            format!("{}{}", slug(first).chars().next().unwrap_or('x'), slug(last))
        };
        let emails: Vec<(String, bool)> = match spec.emails {
            EmailSpec::None => vec![],
            EmailSpec::One => vec![(self.fresh_email(&local, &domain), true)],
            EmailSpec::TwoDefaultSecond => {
                let personal = self.fresh_email(&format!("{}{}", slug(first), slug(last)), "example.net");
                vec![(personal, false), (self.fresh_email(&local, &domain), true)]
            }
            EmailSpec::CaseTwinOf(j) => {
                let original = self.contacts.get(j).and_then(|c| c.emails.iter().find(|(_, d)| *d).cloned());
                match original {
                    Some((e, _)) => vec![(email_variant(&e, self.below(3) as u8), true)],
                    None => vec![(self.fresh_email(&local, &domain), true)],
                }
            }
        };
        let mut items = Vec::new();
        for (value, default) in &emails {
            items.push(json!({
                "id": self.next_item,
                "type": {"id": 1, "name": "Email"},
                "value": value,
                "defaultFlag": default,
                "communicationType": "Email",
            }));
            self.next_item += 1;
        }
        let phone =
            format!("{}{}{:04}", self.rng.random_range(201..990), self.rng.random_range(200..1000), self.below(10_000));
        items.push(json!({
            "id": self.next_item,
            "type": {"id": 2, "name": "Direct"},
            "value": phone,
            "defaultFlag": true,
            "communicationType": "Phone",
        }));
        self.next_item += 1;
        if self.chance(0.3) {
            let mobile = format!(
                "{}{}{:04}",
                self.rng.random_range(201..990),
                self.rng.random_range(200..1000),
                self.below(10_000)
            );
            items.push(json!({
                "id": self.next_item,
                "type": {"id": 4, "name": "Mobile"},
                "value": mobile,
                "defaultFlag": false,
                "communicationType": "Phone",
            }));
            self.next_item += 1;
        }
        let mut rec = json!({
            "id": id,
            "firstName": first,
            "lastName": last,
            "title": self.word(CONTACT_TITLES),
            "inactiveFlag": spec.inactive,
            "types": spec.types.iter().map(|t| refn(CONTACT_TYPES, t)).collect::<Vec<_>>(),
            "communicationItems": items,
            "defaultPhoneType": "Direct",
            "defaultPhoneNbr": phone,
            "defaultFlag": false,
            "defaultBillingFlag": false,
            "unsubscribeFlag": false,
            "disablePortalLoginFlag": true,
            "customFields": super::custom_fields::contact(id),
        });
        if let Some(c) = spec.company.and_then(|i| self.companies.get(i)) {
            rec["company"] = json!({"id": c.id, "identifier": c.identifier, "name": c.name});
        }
        rec["_info"] = self.info(None);
        self.push("company/contacts", rec);
        let plan = ContactPlan {
            inactive: spec.inactive,
            types: spec.types.iter().map(|t| t.to_string()).collect(),
            company: spec.company,
            link: spec.link,
        };
        let outcome = contact_outcome(&plan, &self.company_out, &self.map);
        self.plans.contacts.push(plan);
        self.contact_out.push(outcome);
        self.contacts.push(ContactInfo {
            id,
            first: first.to_string(),
            last: last.to_string(),
            company: spec.company,
            emails,
        });
        self.contacts.len() - 1
    }

    // ------------------------------------------------------------ catalog

    fn gen_catalog(&mut self, n: usize) {
        let units = self.plan_units(n, SOLUTION_UNITS, SolutionUnit::Normal);
        let mut id = 10 + self.rng.random_range(0..10);
        for unit in units {
            let template: Template = match unit {
                SolutionUnit::InternalType | SolutionUnit::InactiveInternal => {
                    INTERNAL_CATALOG[self.below(INTERNAL_CATALOG.len())]
                }
                SolutionUnit::MiscCategory => MISC_CATALOG[self.below(MISC_CATALOG.len())],
                _ => CATALOG[self.below(CATALOG.len())],
            };
            let (description, category, kind, class, lo, hi, recurring) = template;
            let inactive = matches!(unit, SolutionUnit::Inactive | SolutionUnit::InactiveInternal);
            let billing = if unit == SolutionUnit::DoNotBill {
                "DoNotBill"
            } else {
                self.pick(&[("Billable", 75), ("NoCharge", 10), ("NoDefault", 15)])
            };
            let price = round2(self.rng.random_range(lo..hi));
            let cost = round2(price * self.rng.random_range(0.45..0.8));
            let subs: Vec<&str> = SUBCATEGORIES.iter().filter(|(_, c)| *c == category).map(|(s, _)| *s).collect();
            let sub = subs.get(self.below(subs.len())).copied().unwrap_or("Other");
            let sub_id = SUBCATEGORIES.iter().position(|(s, _)| *s == sub).map_or(0, |p| p as i64 + 1);
            let abbrev: String = description
                .split_whitespace()
                .take(2)
                .map(|w| w.chars().take(3).collect::<String>())
                .collect::<Vec<_>>()
                .join("-");
            let identifier = format!("{}-{:04}", abbrev.to_uppercase(), self.items.len() + 1);
            let mut rec = json!({
                "id": id,
                "identifier": identifier,
                "description": description,
                "customerDescription": description,
                "inactiveFlag": inactive,
                "subcategory": {"id": sub_id, "name": sub},
                "category": refn(CATEGORIES, category),
                "type": refn(PRODUCT_TYPES, kind),
                "productClass": class,
                "serializedFlag": false,
                "unitOfMeasure": {"id": 1, "name": "Each"},
                "price": price,
                "cost": cost,
                "priceAttribute": "FixedFee",
                "taxableFlag": class == "Inventory",
                "dropShipFlag": false,
                "specialOrderFlag": false,
                "billableOption": billing,
                "recurringFlag": recurring,
            });
            if recurring {
                rec["recurringRevenue"] = json!(price);
                rec["recurringCost"] = json!(cost);
                rec["recurringBillCycle"] = json!({"id": 2, "name": "Monthly"});
            }
            rec["_info"] = self.info(None);
            self.push("procurement/catalog", rec);
            self.plans.solutions.push(SolutionPlan {
                inactive,
                kind: kind.into(),
                category: category.into(),
                billing: billing.into(),
            });
            self.items.push(ItemInfo {
                id,
                identifier,
                description: description.into(),
                price,
                cost,
                class,
                recurring,
            });
            id = self.next_id(id);
        }
    }

    // ------------------------------------------------------------ opportunities

    fn gen_opportunities(&mut self, n: usize) {
        let importable: Vec<usize> = (0..self.companies.len()).filter(|i| self.company_out[*i].in_crm()).collect();
        let mut by_company: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, c) in self.contacts.iter().enumerate() {
            if let Some(ci) = c.company {
                by_company.entry(ci).or_default().push(i);
            }
        }
        let mut id = 500 + self.rng.random_range(0..50);
        for _ in 0..n {
            let company = if !importable.is_empty() && self.chance(0.85) {
                Some(importable[self.below(importable.len())])
            } else if self.companies.is_empty() {
                None
            } else {
                Some(self.below(self.companies.len()))
            };
            let status = self.pick(&[("Open", 55), ("Won", 20), ("Lost", 15), ("No Decision", 10)]);
            let stage = if status == "Open" {
                self.pick(&[("Prospecting", 30), ("Qualification", 30), ("Proposal", 25), ("Negotiation", 15)])
            } else {
                "Closed"
            };
            let stage_prob = STAGES.iter().find(|(s, _)| *s == stage).map_or(0, |(_, p)| *p);
            let prob = match status {
                "Won" => 100,
                "Lost" | "No Decision" => 0,
                _ => stage_prob,
            };
            let topic = self.word(OPPORTUNITY_TOPICS);
            let company_name = company.and_then(|i| self.companies.get(i)).map(|c| c.name.clone());
            let name = match &company_name {
                Some(cn) => format!("{} - {topic}", cn.split_whitespace().take(2).collect::<Vec<_>>().join(" ")),
                None => topic.to_string(),
            };
            let rep = self.below(self.members.len());
            let (entered, _) = self.stamps();
            let close = entered + self.rng.random_range(14..180) * DAY;
            let kind = self.word(OPPORTUNITY_TYPES);
            let mut rec = json!({
                "id": id,
                "name": name,
                "expectedCloseDate": format!("{}T00:00:00Z", format_date(close)),
                "type": {"id": sid(OPPORTUNITY_TYPES, kind), "name": kind},
                "stage": {"id": STAGES.iter().position(|(s, _)| *s == stage).map_or(0, |p| p as i64 + 1), "name": stage},
                "status": refn(OPPORTUNITY_STATUSES, status),
                "priority": {"id": 2, "name": "Medium"},
                "probability": {"id": (prob / 10).max(1), "name": format!("{prob}%")},
                "notes": format!("{topic} for {}.", company_name.as_deref().unwrap_or("a prospect")),
                "closedFlag": status != "Open",
                "source": self.word(&["Referral", "Website", "Existing Client", "Trade Show"]),
            });
            if let Some(m) = self.members.get(rep) {
                rec["primarySalesRep"] = json!({"id": m.id, "identifier": m.identifier, "name": m.name});
            }
            if let Some(c) = company.and_then(|i| self.companies.get(i)) {
                rec["company"] = json!({"id": c.id, "identifier": c.identifier, "name": c.name});
            }
            let contacts = company.and_then(|c| by_company.get(&c)).cloned().unwrap_or_default();
            // The official schema requires an opportunity's contact: one of the company's at
            // random, else its first one, else (a company with no contacts) anyone's.
            let picked = if !contacts.is_empty() && self.chance(0.7) {
                Some(contacts[self.below(contacts.len())])
            } else {
                contacts
                    .first()
                    .copied()
                    .or_else(|| (!self.contacts.is_empty()).then_some(id as usize % self.contacts.len()))
            };
            if let Some(c) = picked.and_then(|k| self.contacts.get(k)) {
                rec["contact"] = json!({"id": c.id, "name": format!("{} {}", c.first, c.last)});
            }
            if status != "Open" {
                rec["closedDate"] = json!(format_unix(close.min(END)));
            }
            let by = self.members.get(rep).map(|m| m.identifier.clone());
            rec["_info"] = self.info(by);
            self.push("sales/opportunities", rec);
            let items = self.forecast_items(status);
            self.forecasts.push((id, items));
            self.opps.push((id, name, company));
            self.plans.opportunities += 1;
            id = self.next_id(id);
        }
    }

    fn forecast_items(&mut self, status: &str) -> Vec<Value> {
        let count = self.pick(&[(0usize, 10), (1, 35), (2, 30), (3, 15), (4, 10)]);
        (0..count)
            .map(|_| {
                let item = if !self.items.is_empty() && self.chance(0.75) {
                    let k = self.below(self.items.len());
                    self.items.get(k).cloned()
                } else {
                    None
                };
                let quantity = self.rng.random_range(1..=20) as f64;
                let (price, cost, class, recurring, description) = match &item {
                    Some(it) => (it.price, it.cost, it.class, it.recurring, it.description.clone()),
                    None => {
                        let p = round2(self.rng.random_range(500.0..5000.0));
                        (p, round2(p * 0.6), "Service", false, "Project labour".to_string())
                    }
                };
                let forecast_type = match class {
                    "Agreement" => "Agreement",
                    "Service" => "Service",
                    _ => "Product",
                };
                let revenue = round2(price * quantity);
                let cost = round2(cost * quantity);
                let mut v = json!({
                    "id": self.next_item,
                    "forecastType": forecast_type,
                    "revenue": revenue,
                    "cost": cost,
                    "margin": round2(revenue - cost),
                    "percentage": if revenue > 0.0 { round2((revenue - cost) / revenue * 100.0) } else { 0.0 },
                    "quantity": quantity,
                    "includeFlag": true,
                    "recurringFlag": recurring,
                    "status": refn(OPPORTUNITY_STATUSES, status),
                    "productDescription": description,
                    "forecastDescription": description,
                });
                if let Some(it) = &item {
                    v["catalogItem"] = json!({"id": it.id, "identifier": it.identifier});
                }
                self.next_item += 1;
                v
            })
            .collect()
    }

    // ------------------------------------------------------------ activities

    fn gen_activities(&mut self, n: usize) {
        let units = self.plan_units(n, ACTIVITY_UNITS, ActivityUnit::Normal);
        let in_crm_contacts: Vec<usize> = (0..self.contacts.len()).filter(|i| self.contact_out[*i].in_crm()).collect();
        let skipped_contacts: Vec<usize> =
            (0..self.contacts.len()).filter(|i| !self.contact_out[*i].in_crm()).collect();
        let in_crm_members: Vec<usize> = (0..self.members.len()).filter(|i| self.member_out[*i].in_crm()).collect();
        let skipped_members: Vec<usize> = (0..self.members.len()).filter(|i| !self.member_out[*i].in_crm()).collect();
        let mut opps_by_company: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, (_, _, c)) in self.opps.iter().enumerate() {
            if let Some(c) = c {
                opps_by_company.entry(*c).or_default().push(i);
            }
        }
        let from = |g: &mut Gen, pool: &[usize], all: usize| -> Option<usize> {
            if !pool.is_empty() {
                Some(pool[g.below(pool.len())])
            } else if all > 0 {
                Some(g.below(all))
            } else {
                None
            }
        };
        let mapped = [("Call", 30), ("Email", 25), ("Meeting", 12), ("Appointment", 8), ("Note", 25)];
        let mut id = 2000 + self.rng.random_range(0..100);
        let mut former = 0;
        for unit in units {
            let (nc, nm) = (self.contacts.len(), self.members.len());
            let mut kind = self.pick(&mapped);
            let mut contact = from(self, &in_crm_contacts, nc);
            let mut creator = from(self, &in_crm_members, nm);
            match unit {
                ActivityUnit::Normal => {}
                ActivityUnit::UnmappedType => {
                    kind = self.pick(&[("Follow-up", 70), ("Quote", 30)]);
                    contact = if nc > 0 { Some(self.below(nc)) } else { None };
                }
                ActivityUnit::NoContact => contact = None,
                ActivityUnit::SkippedContact => contact = from(self, &skipped_contacts, nc),
                ActivityUnit::SkippedCreator => creator = from(self, &skipped_members, nm),
                ActivityUnit::NonMemberCreator => creator = None,
            }
            let creator_login = match creator.and_then(|i| self.members.get(i)) {
                Some(m) => m.identifier.clone(),
                None => {
                    former += 1;
                    (1..)
                        .map(|k| format!("former{}", former * 10 + k))
                        .find(|l| !self.used_logins.contains(l))
                        .unwrap_or_default()
                }
            };
            let topic = self.word(ACTIVITY_TOPICS);
            let subject = match kind {
                "Call" => format!("Call about {topic}"),
                "Email" => format!("Email: {topic}"),
                "Meeting" => format!("Meeting - {topic}"),
                "Appointment" => format!("Onsite visit: {topic}"),
                "Note" => format!("Note: {topic}"),
                "Follow-up" => format!("Follow up on {topic}"),
                _ => format!("Quote for {topic}"),
            };
            let status = if self.chance(0.6) { "Closed" } else { "Open" };
            let (entered, _) = self.stamps();
            let start = entered + self.rng.random_range(0..30) * DAY + self.rng.random_range(8..17) * 3600;
            let minutes = [15, 30, 60, 90][self.below(4)];
            let mut rec = json!({
                "id": id,
                "name": subject,
                "type": refn(ACTIVITY_TYPES, kind),
                "status": refn(ACTIVITY_STATUSES, status),
                "dateStart": format_unix(start),
                "dateEnd": format_unix(start + minutes * 60),
                "notes": format!("{kind} regarding {topic}."),
            });
            let assignee = creator.or_else(|| from(self, &in_crm_members, nm));
            if let Some(m) = assignee.and_then(|i| self.members.get(i)) {
                rec["assignTo"] = json!({"id": m.id, "identifier": m.identifier, "name": m.name});
            }
            let mut company = None;
            if let Some(c) = contact.and_then(|i| self.contacts.get(i)) {
                rec["contact"] = json!({"id": c.id, "name": format!("{} {}", c.first, c.last)});
                company = c.company;
            } else if !self.companies.is_empty() && self.chance(0.5) {
                company = Some(self.below(self.companies.len()));
            }
            if let Some(c) = company.and_then(|i| self.companies.get(i)) {
                rec["company"] = json!({"id": c.id, "identifier": c.identifier, "name": c.name});
            }
            let opps = company.and_then(|c| opps_by_company.get(&c)).cloned().unwrap_or_default();
            if !opps.is_empty() && self.chance(0.3) {
                let k = opps[self.below(opps.len())];
                let (oid, oname, _) = &self.opps[k];
                rec["opportunity"] = json!({"id": oid, "name": oname});
            }
            rec["_info"] = self.info(Some(creator_login));
            self.push("sales/activities", rec);
            self.plans.activities.push(ActivityPlan { kind: kind.into(), contact, creator });
            id = self.next_id(id);
        }
    }

    // ------------------------------------------------------------ CRM-only records

    fn gen_unrelated_seeds(&mut self, sizes: &Sizes) {
        let roles = ["admin", "salesperson", "marketer", "no_type"];
        for _ in 0..(3 + sizes.members / 10) {
            let first = self.word(FIRST_NAMES);
            let last = self.word(LAST_NAMES);
            let email = self.fresh_email(&format!("{}.{}", slug(first), slug(last)), MSP_DOMAIN);
            let role = roles[self.below(roles.len())].to_string();
            self.seed.users.push(SeedUser { email, name: format!("{first} {last}"), role });
        }
        for _ in 0..(5 + sizes.companies / 25) {
            let name = self.fresh_crm_name();
            let phone = self.chance(0.7).then(|| {
                let d = self.fresh_phone();
                let style = self.below(5) as u8;
                fmt_phone(&d, style, 0)
            });
            let website = if self.chance(0.6) {
                let d = self.fresh_domain(&name);
                let form = self.below(6) as u8;
                Some(fmt_site(&d, form))
            } else {
                None
            };
            self.seed.companies.push(SeedCompany { name, phone, website });
        }
        for _ in 0..(5 + sizes.contacts / 40) {
            let first = self.word(FIRST_NAMES);
            let last = self.word(LAST_NAMES);
            let email = self.chance(0.9).then(|| {
                let domain = ["example.com", "example.net", "example.org"][self.below(3)];
                self.fresh_email(&format!("{}.{}", slug(first), slug(last)), domain)
            });
            let phone = self.chance(0.5).then(|| fmt_phone(&format!("555{:07}", self.below(10_000_000)), 1, 0));
            self.seed.contacts.push(SeedContact { first_name: first.into(), last_name: last.into(), email, phone });
        }
        self.seed.users.shuffle(&mut self.rng);
        self.seed.companies.shuffle(&mut self.rng);
        self.seed.contacts.shuffle(&mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectwise::Tenant;
    use crate::normalise::{phone_key, website_key};

    fn all_records(t: &Tenant) -> Vec<Value> {
        [
            "system/members",
            "company/companies",
            "company/contacts",
            "procurement/catalog",
            "sales/opportunities",
            "sales/activities",
        ]
        .iter()
        .flat_map(|p| t.records(p).to_vec())
        .collect()
    }

    #[test]
    fn the_generator_is_deterministic_for_a_seed() {
        let cfg = GenConfig::with_companies(5, 300);
        let (a, b) = (Tenant::generate(&cfg), Tenant::generate(&cfg));
        assert_eq!(all_records(&a), all_records(&b));
        assert_eq!(a.crm_seed(), b.crm_seed());
        assert_eq!(a.expected(), b.expected());
        assert_eq!(a.data.forecasts, b.data.forecasts);
        let c = Tenant::generate(&GenConfig::with_companies(6, 300));
        assert_ne!(all_records(&a), all_records(&c));
    }

    #[test]
    fn record_count_and_sizes_follow_the_configuration() {
        let cfg = GenConfig::default();
        assert_eq!((cfg.seed, cfg.companies), (42, 600));
        let t = Tenant::generate(&cfg);
        assert_eq!(t.record_count(), cfg.total_records());
        assert_eq!(t.record_count(), 18 + 600 + 1800 + 300 + 600 + 80);
        assert_eq!(t.records("company/companies").len(), 600);
        assert_eq!(t.records("company/contacts").len(), 1800);
        assert!(GenConfig::with_companies(1, 1800).total_records() > 10_000);
        assert!(GenConfig::with_companies(1, 18_000).total_records() > 100_000);

        let cfg = GenConfig {
            members: Some(40),
            contacts: Some(10),
            opportunities: Some(0),
            activities: Some(33),
            catalog_items: Some(5),
            ..GenConfig::with_companies(3, 50)
        };
        let t = Tenant::generate(&cfg);
        let sizes = t.stage_sizes();
        assert_eq!(
            sizes.values().copied().collect::<Vec<_>>(),
            vec![33, 50, 10, 0, 5, 40],
            "activities, companies, contacts, opportunities, solutions, users: {sizes:?}"
        );
        assert_eq!(t.record_count(), cfg.total_records());
    }

    #[test]
    fn tiny_and_lopsided_tenants_generate_without_trouble() {
        for cfg in [
            GenConfig::with_companies(1, 0),
            GenConfig::with_companies(1, 1),
            GenConfig { members: Some(0), ..GenConfig::with_companies(2, 5) },
            GenConfig { contacts: Some(30), activities: Some(30), ..GenConfig::with_companies(3, 0) },
        ] {
            let t = Tenant::generate(&cfg);
            assert_eq!(t.record_count(), cfg.total_records(), "{cfg:?}");
            let total: u64 = t.expected().values().flat_map(|m| m.values()).sum();
            assert_eq!(total as usize, t.record_count(), "{cfg:?}");
        }
    }

    #[test]
    fn ids_ascend_and_are_unique_per_collection() {
        let t = Tenant::generate(&GenConfig::with_companies(8, 400));
        for p in ["system/members", "company/companies", "company/contacts", "sales/activities"] {
            let ids: Vec<i64> = t.records(p).iter().filter_map(|r| r["id"].as_i64()).collect();
            assert_eq!(ids.len(), t.records(p).len());
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{p}");
        }
    }

    #[test]
    fn the_data_carries_the_formatting_mess_of_real_tenants() {
        let t = Tenant::generate(&GenConfig::default());
        let companies = t.records("company/companies");
        let sites: Vec<&str> = companies.iter().filter_map(|c| c["website"].as_str()).collect();
        assert!(sites.iter().any(|s| s.starts_with("www.")));
        assert!(sites.iter().any(|s| s.starts_with("https://")));
        assert!(sites.iter().any(|s| !s.contains("www.") && !s.contains("://")));
        assert!(companies.iter().any(|c| c.get("website").is_none()));
        let phones: Vec<String> =
            companies.iter().filter_map(|c| c["phoneNumber"].as_str()).filter_map(phone_key).collect();
        let unique: HashSet<&String> = phones.iter().collect();
        assert!(unique.len() < phones.len(), "some companies share a phone");
        assert!(companies.iter().any(|c| c["types"].as_array().is_some_and(|t| t.len() > 1)));
        assert!(companies.iter().any(|c| c["types"].as_array().is_some_and(Vec::is_empty)));
        let seed_sites: HashSet<String> =
            t.crm_seed().companies.iter().filter_map(|c| c.website.as_deref().and_then(website_key)).collect();
        assert!(sites.iter().filter_map(|s| website_key(s)).any(|k| seed_sites.contains(&k)));
        let members = t.records("system/members");
        assert!(members.iter().any(|m| m.get("primaryEmail").is_none()));
        assert!(members.iter().any(|m| m["primaryEmail"] == ""));
        let contacts = t.records("company/contacts");
        assert!(contacts.iter().any(|c| c.get("company").is_none()));
        assert!(contacts.iter().any(|c| {
            c["communicationItems"]
                .as_array()
                .is_some_and(|i| i.iter().filter(|x| x["communicationType"] == "Email").count() > 1)
        }));
    }
}
