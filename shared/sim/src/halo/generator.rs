//! The seeded HaloPSA tenant generator: agents, clients, users (contacts), opportunities,
//! CRM notes and actions carrying the mess real tenants have, the CRM seed some of them
//! were built to link to, and each record's plan for the ground truth. Same seed and
//! sizes: identical tenant.

use std::collections::HashSet;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Access;
use super::store::{
    ACTIONS, AGENT, CLIENT, CRM_NOTE, LOOKUP, OPPORTUNITIES, OUTCOME, ROLES, STATUS, TICKET_TYPE, TenantData, USERS,
};
use super::truth::{
    ActivityPlan, CompanyPlan, ContactPlan, MemberPlan, Outcome, Plans, company_outcome, contact_outcome,
    member_outcome,
};
use super::typical::{CRM_NOTE_KIND, NO_TYPE, TypicalMapping, typical_mapping};
use crate::common::format_unix;
use crate::normalise::name_key;
use crate::seed::{CrmSeed, SeedCompany, SeedContact, SeedUser};
use crate::words::{
    CITIES, COMPANY_ADJECTIVES, COMPANY_NOUNS, COMPANY_SUFFIXES, CONTACT_TITLES, CRM_COMPANY_WORDS, Draw, FIRST_NAMES,
    LAST_NAMES, STREETS, fresh_company_name, fresh_email, fresh_phone, plan_units, slug, token,
};

/// What to generate. Sizes not given follow from `companies`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of clients (C).
    pub companies: usize,
    /// Agents; default 12 + C/100.
    pub members: Option<usize>,
    /// Users (contacts); default 3·C.
    pub contacts: Option<usize>,
    /// Opportunities; default C/2.
    pub opportunities: Option<usize>,
    /// CRM notes plus actions; default C.
    pub activities: Option<usize>,
}

impl GenConfig {
    /// `companies` clients, every other size derived from it.
    pub fn with_companies(seed: u64, companies: usize) -> Self {
        Self { seed, companies, members: None, contacts: None, opportunities: None, activities: None }
    }

    /// The number of external records planned (agents + clients + users + opportunities
    /// + activities), deleted opportunities included.
    pub fn total_records(&self) -> usize {
        let s = self.sizes();
        s.members + s.companies + s.contacts + s.opportunities + s.activities
    }

    pub(crate) fn sizes(&self) -> Sizes {
        let c = self.companies;
        Sizes {
            members: self.members.unwrap_or(12 + c / 100).max(1),
            companies: c,
            contacts: self.contacts.unwrap_or(3 * c),
            opportunities: self.opportunities.unwrap_or(c / 2),
            activities: self.activities.unwrap_or(c),
        }
    }
}

impl Default for GenConfig {
    /// Seed 42, 600 clients (about 3,300 records).
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
}

// ---------------------------------------------------------------- setup lists (id = position + 1)

// Roles are the exception: Halo's role id (`NHD_Roles.id`) is a GUID string; the integer
// `id_int` beside it is position + 1.

pub(crate) const ROLE_NAMES: &[&str] = &["Administrator", "Sales", "Marketing", "Technician", "API"];
pub(crate) const CUSTOMER_TYPES: &[&str] = &["Customer", "Prospect", "Partner", "Supplier", "Competitor"];
pub(crate) const OPPORTUNITY_STATUSES: &[&str] = &["Open", "Won", "Lost", "On Hold"];
pub(crate) const OUTCOMES: &[&str] = &["Note", "Phone Call", "Email", "Meeting", "Follow-up", "Private Note"];
const MAPPED_OUTCOMES: &[&str] = &["Note", "Phone Call", "Email", "Meeting"];
const UNMAPPED_OUTCOMES: &[&str] = &["Follow-up", "Private Note"];

/// The lookup id of customer (client) types in `/api/Lookup?lookupid=`. UNCONFIRMED: Halo
/// keeps client types in a lookup table; its number is assumed. Change it here only (the
/// connector has the same constant).
pub const CUSTOMER_TYPE_LOOKUP_ID: i64 = 33;
/// The ticket type id of opportunities.
pub(crate) const OPPORTUNITY_TICKET_TYPE: i64 = 4;
/// The agent id Halo uses for "Unassigned": not in the agent list, so never linked.
pub(crate) const UNASSIGNED_AGENT: i64 = 1;

/// The id of the customer type named `name`, if it is one.
pub(crate) fn customer_type_id(name: &str) -> Option<i64> {
    CUSTOMER_TYPES.contains(&name).then(|| sid(CUSTOMER_TYPES, name))
}

fn sid(list: &[&str], name: &str) -> i64 {
    list.iter().position(|n| *n == name).map_or(0, |p| p as i64 + 1)
}

/// Mixed into the generator's seed for the role GUIDs: they come from a stream of their own,
/// so adding them left every other generated value as it was.
const ROLE_ID_STREAM: u64 = 0x524f_4c45_5f49_4453;

/// One GUID per [`ROLE_NAMES`] entry, deterministic from `seed`: lowercase, hyphenated,
/// version 4 and RFC 4122 variant bits set, as Halo (ASP.NET Identity roles) writes them.
pub(crate) fn role_ids(seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ROLE_ID_STREAM);
    ROLE_NAMES
        .iter()
        .map(|_| {
            let mut b: [u8; 16] = rng.random();
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
        })
        .collect()
}

/// The GUID of the role `name` among `ids` (from [`role_ids`]).
fn role_id<'a>(ids: &'a [String], name: &str) -> &'a str {
    ROLE_NAMES.iter().position(|n| *n == name).map_or("", |p| ids[p].as_str())
}

fn setup_lists(role_ids: &[String]) -> Vec<(&'static str, Vec<Value>)> {
    let ids = |list: &[&str], f: &dyn Fn(i64, &str) -> Value| -> Vec<Value> {
        list.iter().enumerate().map(|(i, n)| f(i as i64 + 1, n)).collect()
    };
    vec![
        (
            ROLES,
            ids(ROLE_NAMES, &|id, n| {
                json!({"id": role_ids[id as usize - 1], "id_int": id, "name": n,
                       "normalizedName": n.to_uppercase(), "isagent": true})
            }),
        ),
        (LOOKUP, ids(CUSTOMER_TYPES, &|id, n| json!({"id": id, "lookupid": CUSTOMER_TYPE_LOOKUP_ID, "name": n}))),
        (
            STATUS,
            ids(OPPORTUNITY_STATUSES, &|id, n| {
                json!({"id": id, "name": n, "type": if matches!(n, "Won" | "Lost") { 2 } else { 0 },
                       "tickettype_id": OPPORTUNITY_TICKET_TYPE})
            }),
        ),
        (OUTCOME, ids(OUTCOMES, &|id, n| json!({"id": id, "outcome": n, "buttonname": n, "hidden": false}))),
        (
            TICKET_TYPE,
            vec![
                json!({"id": 1, "name": "Incident", "isopportunity": false}),
                json!({"id": OPPORTUNITY_TICKET_TYPE, "name": "Opportunity", "isopportunity": true}),
            ],
        ),
    ]
}

// ---------------------------------------------------------------- formatting helpers

const MSP_DOMAIN: &str = "northwind-msp.com";
/// 2019-01-01T00:00:00Z.
const START: i64 = 1_546_300_800;
/// 2025-06-30T00:00:00Z: no generated record is updated later.
const END: i64 = 1_751_241_600;
const DAY: i64 = 86_400;

fn fmt_phone(d: &str, style: u8) -> String {
    let (a, b, c) = (&d[0..3], &d[3..6], &d[6..10]);
    match style % 5 {
        1 => format!("({a}) {b}-{c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("{a}.{b}.{c}"),
        4 => format!("+1 {a} {b} {c}"),
        _ => d.to_string(),
    }
}

fn fmt_site(domain: &str, form: u8) -> String {
    match form % 5 {
        1 => format!("https://www.{domain}/"),
        2 => format!("http://{domain}"),
        3 => domain.to_string(),
        4 => format!("https://{domain}/about"),
        _ => format!("www.{domain}"),
    }
}

/// The same name in other letter case / punctuation (same name key, different text).
fn name_variant(name: &str, style: u8) -> String {
    let stripped: String = name.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect();
    let candidates = [stripped.to_uppercase(), format!("{}.", name.to_lowercase()), name.to_lowercase()];
    let start = usize::from(style) % candidates.len();
    (0..candidates.len())
        .map(|k| &candidates[(start + k) % candidates.len()])
        .find(|c| c.as_str() != name)
        .cloned()
        .unwrap_or_else(|| name.to_uppercase())
}

/// The same email in another letter case.
fn email_variant(email: &str, style: u8) -> String {
    let upper_local = match email.split_once('@') {
        Some((l, d)) => format!("{}@{d}", l.to_uppercase()),
        None => email.to_uppercase(),
    };
    let title: String = email
        .split('.')
        .map(|p| {
            let mut cs = p.chars();
            cs.next().map(|c| c.to_uppercase().chain(cs).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".");
    let candidates = [title, upper_local, email.to_uppercase()];
    let start = usize::from(style) % candidates.len();
    (0..candidates.len())
        .map(|k| &candidates[(start + k) % candidates.len()])
        .find(|c| c.as_str() != email)
        .cloned()
        .unwrap_or_else(|| email.to_uppercase())
}

// ---------------------------------------------------------------- scenarios

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompanyUnit {
    Normal,
    NoType,
    Unmapped,
    Inactive,
    PhoneMatch,
    WebsiteMatch,
    NameMatch,
    /// Two clients share a phone a CRM company has: the first links, the second is created.
    PhonePair,
    /// Like `PhonePair` but the first is inactive, so the second links.
    InactiveThenLinked,
    /// Two clients whose names differ only in case/punctuation; a CRM company has that name.
    NameTwins,
    /// An inactive client whose website a CRM company has (that one stays unlinked).
    SkippedWebsiteMatch,
}

const COMPANY_UNITS: &[(CompanyUnit, usize, usize)] = &[
    (CompanyUnit::PhonePair, 10, 2),
    (CompanyUnit::InactiveThenLinked, 5, 2),
    (CompanyUnit::NameTwins, 10, 2),
    (CompanyUnit::PhoneMatch, 40, 1),
    (CompanyUnit::WebsiteMatch, 40, 1),
    (CompanyUnit::NameMatch, 30, 1),
    (CompanyUnit::NoType, 50, 1),
    (CompanyUnit::Unmapped, 60, 1),
    (CompanyUnit::Inactive, 50, 1),
    (CompanyUnit::SkippedWebsiteMatch, 10, 1),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContactUnit {
    Normal,
    Inactive,
    NoEmail,
    NoClient,
    SkippedClient,
    EmailMatch,
    InactiveEmailMatch,
    /// Two users whose emails differ only in case; a CRM contact has it.
    EmailTwins,
    /// A CRM contact has its email but its client is not imported.
    EmailMatchSkippedClient,
}

const CONTACT_UNITS: &[(ContactUnit, usize, usize)] = &[
    (ContactUnit::EmailTwins, 5, 2),
    (ContactUnit::EmailMatch, 40, 1),
    (ContactUnit::InactiveEmailMatch, 10, 1),
    (ContactUnit::EmailMatchSkippedClient, 10, 1),
    (ContactUnit::Inactive, 40, 1),
    (ContactUnit::NoEmail, 50, 1),
    (ContactUnit::NoClient, 50, 1),
    (ContactUnit::SkippedClient, 30, 1),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActivityUnit {
    Normal,
    UnmappedType,
    NoContact,
    SkippedContact,
    SkippedCreator,
    NonAgentCreator,
}

const ACTIVITY_UNITS: &[(ActivityUnit, usize, usize)] = &[
    (ActivityUnit::UnmappedType, 100, 1),
    (ActivityUnit::NoContact, 50, 1),
    (ActivityUnit::SkippedContact, 80, 1),
    (ActivityUnit::SkippedCreator, 80, 1),
    (ActivityUnit::NonAgentCreator, 30, 1),
];

const OPPORTUNITY_TOPICS: &[&str] = &[
    "Managed Services Agreement",
    "Firewall Refresh",
    "Microsoft 365 Migration",
    "Server Replacement",
    "Backup & DR",
    "Security Assessment",
    "Network Upgrade",
    "VoIP Rollout",
];

const NOTE_TOPICS: &[&str] =
    &["renewal", "backup failures", "onboarding", "quarterly business review", "licensing", "security training"];

// ---------------------------------------------------------------- the generator

#[derive(Clone, Debug)]
struct ClientInfo {
    id: i64,
    name: String,
    domain: String,
    phone: Option<(String, u8)>,
    site_form: Option<u8>,
}

#[derive(Clone, Debug)]
struct UserInfo {
    id: i64,
    first: String,
    last: String,
    client: Option<usize>,
    email: Option<String>,
}

#[derive(Clone, Debug)]
struct OppInfo {
    id: i64,
    contact: Option<usize>,
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
    name_counter: usize,
    name_offset: usize,
    cursor: i64,
    /// The next client gets a phone whatever the odds (the first of a phone pair).
    force_phone: bool,
    plans: Plans,
    member_out: Vec<Outcome>,
    company_out: Vec<Outcome>,
    contact_out: Vec<Outcome>,
    agents: Vec<i64>,
    clients: Vec<ClientInfo>,
    users: Vec<UserInfo>,
    opps: Vec<OppInfo>,
    json: Vec<(&'static str, Vec<Value>)>,
    seed: CrmSeed,
    /// The roles' GUIDs, in [`ROLE_NAMES`] order.
    role_ids: Vec<String>,
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
        name_counter: 0,
        name_offset,
        cursor: 1,
        force_phone: false,
        plans: Plans::default(),
        member_out: Vec::new(),
        company_out: Vec::new(),
        contact_out: Vec::new(),
        agents: Vec::new(),
        clients: Vec::new(),
        users: Vec::new(),
        opps: Vec::new(),
        json: Vec::new(),
        seed: CrmSeed::default(),
        role_ids: role_ids(cfg.seed),
    };
    let access = g.gen_agents(sizes.members);
    g.gen_clients(sizes.companies);
    g.gen_users(sizes.contacts);
    g.gen_opportunities(sizes.opportunities);
    g.gen_activities(sizes.activities);
    g.gen_unrelated_seeds(&sizes);
    let mut collections = setup_lists(&g.role_ids);
    collections.append(&mut g.json);
    Generated { data: TenantData { collections }, seed: g.seed, plans: g.plans, access }
}

impl Draw for Gen {
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

impl Gen {
    fn token(&mut self, len: usize) -> String {
        token(&mut self.rng, b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", len)
    }

    fn stamp(&mut self) -> String {
        format_unix(self.rng.random_range(START..END))
    }

    fn push(&mut self, name: &'static str, v: Value) {
        match self.json.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(v),
            None => self.json.push((name, vec![v])),
        }
    }

    /// Splits `n` records into scenario units (see [`plan_units`]).
    fn plan_units<T: Copy>(&mut self, n: usize, table: &[(T, usize, usize)], normal: T) -> Vec<T> {
        plan_units(&mut self.rng, n, table, normal)
    }

    fn take_id(&mut self) -> i64 {
        let id = self.cursor;
        self.cursor += 1 + if self.chance(0.2) { self.rng.random_range(1..4) } else { 0 };
        id
    }

    fn fresh_phone(&mut self) -> String {
        fresh_phone(&mut self.rng, &mut self.used_phones)
    }

    fn fresh_company_name(&mut self) -> String {
        fresh_company_name(&mut self.name_counter, self.name_offset, &mut self.used_names)
    }

    fn fresh_crm_name(&mut self) -> String {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut name = format!("{} {}", self.word(CRM_COMPANY_WORDS), self.word(COMPANY_NOUNS));
            if attempt > 10 {
                name.push_str(&format!(" {attempt}"));
            }
            if name_key(&name).is_some_and(|k| self.used_names.insert(k)) {
                return name;
            }
        }
    }

    fn fresh_domain(&mut self, name: &str) -> String {
        let base: String = name_key(name).unwrap_or_default().split(' ').take(2).collect();
        let mut n = 1;
        loop {
            let d = if n == 1 { format!("{base}.com") } else { format!("{base}{n}.com") };
            if self.used_sites.insert(d.clone()) {
                return d;
            }
            n += 1;
        }
    }

    fn fresh_email(&mut self, local: &str, domain: &str) -> String {
        fresh_email(&mut self.used_emails, local, domain)
    }

    // ------------------------------------------------------------ agents

    /// Agents (the API agent first) and the API application's access.
    fn gen_agents(&mut self, n: usize) -> Access {
        // (role, disabled, has email, a CRM user has the email); slot 0 is the API agent.
        const SLOTS: [(&str, bool, bool, bool); 12] = [
            ("API", false, true, false),
            ("Administrator", false, true, true),
            ("Sales", false, true, false),
            ("Sales", false, true, true),
            ("Marketing", false, true, false),
            ("Technician", false, true, false),
            ("Sales", true, true, false),
            ("Sales", false, false, false),
            ("Marketing", false, true, true),
            ("Technician", true, false, false),
            ("Sales", false, true, false),
            ("Technician", false, true, false),
        ];
        let mut id = UNASSIGNED_AGENT + 1;
        let mut api_agent = id;
        for i in 0..n {
            let (role, disabled, has_email, link) =
                if i == 0 { SLOTS[0] } else { SLOTS[1 + (i - 1) % (SLOTS.len() - 1)] };
            let (first, last) =
                if i == 0 { ("Tandem", "Integration") } else { (self.word(FIRST_NAMES), self.word(LAST_NAMES)) };
            let email = self.fresh_email(&format!("{}.{}", slug(first), slug(last)), MSP_DOMAIN);
            let mut roles = vec![json!({"id": role_id(&self.role_ids, role), "name": role})];
            if role == "Sales" && self.chance(0.3) {
                roles.push(json!({"id": role_id(&self.role_ids, "Technician"), "name": "Technician"}));
            }
            let rec = json!({
                "id": id,
                "name": format!("{first} {last}"),
                "firstname": first,
                "surname": last,
                "email": if has_email { email.clone() } else { String::new() },
                "jobtitle": match role { "Administrator" => "Operations Director", "Sales" => "Account Manager",
                    "Marketing" => "Marketing Coordinator", "API" => "API Application", _ => "Service Technician" },
                "isdisabled": disabled,
                "isapiagent": role == "API",
                "roles": roles,
                "role_list": role,
                "datecreated": self.stamp(),
            });
            if i == 0 {
                api_agent = id;
            }
            self.push(AGENT, rec);
            self.agents.push(id);
            let plan = MemberPlan { inactive: disabled, has_email, role: role.to_string(), link };
            self.member_out.push(member_outcome(&plan, &self.map));
            self.plans.members.push(plan);
            let crm_role = TypicalMapping::lookup(&self.map.roles, role).unwrap_or("no_type").to_string();
            if link || (disabled && has_email) {
                let style = self.below(3) as u8;
                self.seed.users.push(SeedUser {
                    email: email_variant(&email, style),
                    name: format!("{first} {last}"),
                    role: crm_role,
                });
            }
            id += 1 + self.below(3) as i64;
        }
        let client_id = format!("{}-{}-{}", self.token(8), self.token(4), self.token(12)).to_lowercase();
        let client_secret = format!("{}-{}", self.token(24), self.token(24));
        Access { tenant: Some("northwind".into()), client_id, client_secret, agent_id: api_agent }
    }

    // ------------------------------------------------------------ clients

    fn mapped_type(&mut self) -> Option<&'static str> {
        match self.below(100) {
            0..=59 => Some("Customer"),
            60..=84 => Some("Prospect"),
            85..=94 => Some("Partner"),
            _ => None,
        }
    }

    fn gen_clients(&mut self, n: usize) {
        let units = self.plan_units(n, COMPANY_UNITS, CompanyUnit::Normal);
        self.cursor = 10 + self.rng.random_range(0..20);
        for unit in units {
            let kind = self.mapped_type();
            match unit {
                CompanyUnit::Normal => {
                    self.make_client(kind, false, None, None, false);
                }
                CompanyUnit::NoType => {
                    self.make_client(None, false, None, None, false);
                }
                CompanyUnit::Unmapped => {
                    let t = if self.chance(0.6) { "Supplier" } else { "Competitor" };
                    self.make_client(Some(t), false, None, None, false);
                }
                CompanyUnit::Inactive => {
                    self.make_client(kind, true, None, None, false);
                }
                CompanyUnit::PhoneMatch => {
                    let i = self.make_client(kind, false, None, None, true);
                    let phone = self.reformat_phone(i);
                    let name = self.fresh_crm_name();
                    self.seed.companies.push(SeedCompany { name, phone, website: None });
                }
                CompanyUnit::WebsiteMatch | CompanyUnit::SkippedWebsiteMatch => {
                    let skipped = unit == CompanyUnit::SkippedWebsiteMatch;
                    let i = self.make_client(kind, skipped, None, None, !skipped);
                    let website = self.reformat_site(i);
                    let name = self.fresh_crm_name();
                    self.seed.companies.push(SeedCompany { name, phone: None, website });
                }
                CompanyUnit::NameMatch => {
                    let i = self.make_client(kind, false, None, None, true);
                    let style = self.below(3) as u8;
                    let name = name_variant(&self.clients[i].name, style);
                    self.seed.companies.push(SeedCompany { name, phone: None, website: None });
                }
                CompanyUnit::PhonePair | CompanyUnit::InactiveThenLinked => {
                    let first_inactive = unit == CompanyUnit::InactiveThenLinked;
                    self.force_phone = true;
                    let a = self.make_client(kind, first_inactive, None, None, !first_inactive);
                    let kind2 = self.mapped_type();
                    self.make_client(kind2, false, Some(a), None, first_inactive);
                    let phone = self.reformat_phone(a);
                    let name = self.fresh_crm_name();
                    self.seed.companies.push(SeedCompany { name, phone, website: None });
                }
                CompanyUnit::NameTwins => {
                    let a = self.make_client(kind, false, None, None, true);
                    let kind2 = self.mapped_type();
                    self.make_client(kind2, false, None, Some(a), false);
                    let name = name_variant(&self.clients[a].name, 0);
                    self.seed.companies.push(SeedCompany { name, phone: None, website: None });
                }
            }
        }
    }

    fn reformat_phone(&mut self, i: usize) -> Option<String> {
        let (digits, style) = self.clients.get(i)?.phone.clone()?;
        Some(fmt_phone(&digits, style + 1 + self.below(4) as u8))
    }

    fn reformat_site(&mut self, i: usize) -> Option<String> {
        let c = self.clients.get(i)?;
        let (form, domain) = (c.site_form?, c.domain.clone());
        Some(fmt_site(&domain, form + 1 + self.below(4) as u8))
    }

    /// One client; `phone_of`: share that client's phone (another format); `twin_of`: a
    /// name differing from that client's only in case/punctuation. Matching clients always
    /// get a phone and website so the seeds built for them can match.
    fn make_client(
        &mut self,
        kind: Option<&'static str>,
        inactive: bool,
        phone_of: Option<usize>,
        twin_of: Option<usize>,
        link: bool,
    ) -> usize {
        let id = self.take_id();
        let name = match twin_of.and_then(|j| self.clients.get(j)) {
            Some(twin) => {
                let base = twin.name.clone();
                let style = 1 + self.below(2) as u8;
                name_variant(&base, style)
            }
            None => self.fresh_company_name(),
        };
        let domain = self.fresh_domain(&name);
        let force = std::mem::take(&mut self.force_phone);
        let shared = phone_of.and_then(|j| self.clients.get(j)).map(|c| c.phone.clone());
        let phone = match shared {
            Some(p) => p.map(|(d, s)| (d, s + 1)),
            None if force || link || self.chance(0.93) => {
                let d = self.fresh_phone();
                Some((d, self.below(5) as u8))
            }
            None => None,
        };
        let site_form = (self.chance(0.85) || link).then(|| self.below(5) as u8);
        let (city, state, zip) = CITIES[self.below(CITIES.len())];
        let mut rec = json!({
            "id": id,
            "name": name,
            "inactive": inactive,
            "toplevel_id": 1,
            "toplevel_name": "Clients",
            "customertype": kind.map_or(0, |k| sid(CUSTOMER_TYPES, k)),
            "main_site_id": id * 10,
            "main_site_name": "Main",
            "address": format!("{} {}, {city}, {state} {zip}", 100 + self.below(9800), self.word(STREETS)),
            "is_vip": false,
            "datecreated": self.stamp(),
            "alastupdate": self.stamp(),
        });
        if let Some(k) = kind {
            rec["customertype_new"] = json!(k);
        }
        if let Some((d, style)) = &phone {
            rec["main_phonenumber"] = json!(fmt_phone(d, *style));
        }
        if let Some(form) = site_form {
            rec["website"] = json!(fmt_site(&domain, form));
        }
        self.push(CLIENT, rec);
        let plan = CompanyPlan { inactive, kind: kind.unwrap_or(NO_TYPE).to_string(), link };
        self.company_out.push(company_outcome(&plan, &self.map));
        self.plans.companies.push(plan);
        self.clients.push(ClientInfo { id, name, domain, phone, site_form });
        self.clients.len() - 1
    }

    // ------------------------------------------------------------ users (contacts)

    fn gen_users(&mut self, n: usize) {
        let units = self.plan_units(n, CONTACT_UNITS, ContactUnit::Normal);
        let importable: Vec<usize> = (0..self.clients.len()).filter(|i| self.company_out[*i].in_crm()).collect();
        let skipped: Vec<usize> = (0..self.clients.len()).filter(|i| !self.company_out[*i].in_crm()).collect();
        self.cursor = 100 + self.rng.random_range(0..100);
        let pick = |g: &mut Gen, pool: &[usize]| -> Option<usize> { pool.choose(&mut g.rng).copied() };
        for unit in units {
            let any =
                if self.clients.is_empty() || self.chance(0.05) { None } else { Some(self.below(self.clients.len())) };
            match unit {
                ContactUnit::Normal => {
                    let has_email = self.chance(0.97);
                    self.make_user(any, false, has_email, None, false);
                }
                ContactUnit::Inactive => {
                    self.make_user(any, true, true, None, false);
                }
                ContactUnit::NoEmail => {
                    self.make_user(any, false, false, None, false);
                }
                ContactUnit::NoClient => {
                    self.make_user(None, false, true, None, false);
                }
                ContactUnit::SkippedClient => {
                    let c = pick(self, &skipped).or(any);
                    self.make_user(c, false, true, None, false);
                }
                ContactUnit::EmailMatch | ContactUnit::InactiveEmailMatch | ContactUnit::EmailMatchSkippedClient => {
                    let (client, inactive) = match unit {
                        ContactUnit::EmailMatch => (pick(self, &importable), false),
                        ContactUnit::InactiveEmailMatch => (pick(self, &importable), true),
                        _ => (pick(self, &skipped), false),
                    };
                    let link = !inactive && client.is_none_or(|c| self.company_out[c].in_crm());
                    let i = self.make_user(client, inactive, true, None, link);
                    self.seed_contact_for(i);
                }
                ContactUnit::EmailTwins => {
                    let client = pick(self, &importable);
                    let a = self.make_user(client, false, true, None, true);
                    let client2 = pick(self, &importable);
                    self.make_user(client2, false, true, Some(a), false);
                    self.seed_contact_for(a);
                }
            }
        }
    }

    fn seed_contact_for(&mut self, i: usize) {
        let Some(u) = self.users.get(i).cloned() else { return };
        let Some(email) = u.email else { return };
        let style = self.below(3) as u8;
        let phone = self.chance(0.4).then(|| fmt_phone(&format!("555{:07}", self.below(10_000_000)), 3));
        self.seed.contacts.push(SeedContact {
            first_name: u.first,
            last_name: u.last,
            email: Some(email_variant(&email, style)),
            phone,
        });
    }

    fn make_user(
        &mut self,
        client: Option<usize>,
        inactive: bool,
        has_email: bool,
        email_twin_of: Option<usize>,
        link: bool,
    ) -> usize {
        let id = self.take_id();
        let first = self.word(FIRST_NAMES).to_string();
        let last = self.word(LAST_NAMES).to_string();
        let domain = match client.and_then(|i| self.clients.get(i)) {
            Some(c) => c.domain.clone(),
            None => ["example.com", "example.net", "example.org"][self.below(3)].to_string(),
        };
        let email = match email_twin_of.and_then(|j| self.users.get(j)).and_then(|u| u.email.clone()) {
            Some(e) => {
                let style = self.below(3) as u8;
                Some(email_variant(&e, style))
            }
            None if has_email => Some(self.fresh_email(&format!("{}.{}", slug(&first), slug(&last)), &domain)),
            None => None,
        };
        let c = client.and_then(|i| self.clients.get(i)).cloned();
        let mut rec = json!({
            "id": id,
            "name": format!("{first} {last}"),
            "firstname": first,
            "surname": last,
            "title": self.word(CONTACT_TITLES),
            "emailaddress": email.clone().unwrap_or_default(),
            "phonenumber": fmt_phone(&format!("{}{:07}", 200 + self.below(700), self.below(10_000_000)), self.below(5) as u8),
            "client_id": c.as_ref().map_or(0, |c| c.id),
            "site_id": c.as_ref().map_or(0, |c| c.id * 10),
            "inactive": inactive,
            "datecreated": self.stamp(),
            "ulastupdate": self.stamp(),
        });
        if let Some(c) = &c {
            rec["client_name"] = json!(c.name);
            rec["site_name"] = json!("Main");
        }
        self.push(USERS, rec);
        let plan = ContactPlan { inactive, company: client, link };
        self.contact_out.push(contact_outcome(&plan, &self.company_out, &self.map));
        self.plans.contacts.push(plan);
        self.users.push(UserInfo { id, first, last, client, email });
        self.users.len() - 1
    }

    // ------------------------------------------------------------ opportunities

    fn gen_opportunities(&mut self, n: usize) {
        self.cursor = 1000 + self.rng.random_range(0..100);
        for _ in 0..n {
            let id = self.take_id();
            let contact =
                if self.users.is_empty() || self.chance(0.1) { None } else { Some(self.below(self.users.len())) };
            let client = contact
                .and_then(|u| self.users[u].client)
                .or_else(|| (!self.clients.is_empty()).then(|| self.below(self.clients.len())));
            let agent = if self.chance(0.1) {
                UNASSIGNED_AGENT
            } else {
                let i = self.below(self.agents.len());
                self.agents[i]
            };
            let status = self.word(OPPORTUNITY_STATUSES);
            let deleted = self.chance(0.03);
            let occurred = self.rng.random_range(START..END - 60 * DAY);
            let target = occurred + self.rng.random_range(14..180) * DAY;
            let mut rec = json!({
                "id": id,
                "summary": format!("{} - {}", self.word(OPPORTUNITY_TOPICS), client.map_or("Prospect".to_string(), |c| self.clients[c].name.clone())),
                "details": "Raised from a sales conversation.",
                "tickettype_id": OPPORTUNITY_TICKET_TYPE,
                "status_id": sid(OPPORTUNITY_STATUSES, status),
                "client_id": client.map_or(0, |c| self.clients[c].id),
                "user_id": contact.map_or(0, |u| self.users[u].id),
                "agent_id": agent,
                "oppvalue": (self.rng.random_range(500..60_000) as f64) + 0.5 * self.below(2) as f64,
                "dateoccurred": format_unix(occurred),
                "last_update": format_unix((occurred + self.rng.random_range(0..60) * DAY).min(END)),
                "deleted": deleted,
                "hasbeenclosed": matches!(status, "Won" | "Lost"),
            });
            if self.chance(0.8) {
                rec["targetdate"] = json!(format_unix(target));
            } else {
                rec["deadlinedate"] = json!(format_unix(target));
            }
            if let Some(c) = client {
                rec["client_name"] = json!(self.clients[c].name);
            }
            if let Some(u) = contact {
                rec["user_name"] = json!(format!("{} {}", self.users[u].first, self.users[u].last));
            }
            self.push(OPPORTUNITIES, rec);
            if !deleted {
                self.plans.opportunities += 1;
                self.opps.push(OppInfo { id, contact });
            }
        }
    }

    // ------------------------------------------------------------ CRM notes and actions

    fn gen_activities(&mut self, n: usize) {
        let units = self.plan_units(n, ACTIVITY_UNITS, ActivityUnit::Normal);
        let in_contacts: Vec<usize> = (0..self.users.len()).filter(|i| self.contact_out[*i].in_crm()).collect();
        let out_contacts: Vec<usize> = (0..self.users.len()).filter(|i| !self.contact_out[*i].in_crm()).collect();
        let in_agents: Vec<usize> = (0..self.agents.len()).filter(|i| self.member_out[*i].in_crm()).collect();
        let out_agents: Vec<usize> = (0..self.agents.len()).filter(|i| !self.member_out[*i].in_crm()).collect();
        let opp_in: Vec<usize> = (0..self.opps.len())
            .filter(|i| self.opps[*i].contact.is_some_and(|c| self.contact_out[c].in_crm()))
            .collect();
        let opp_out: Vec<usize> = (0..self.opps.len())
            .filter(|i| self.opps[*i].contact.is_none_or(|c| !self.contact_out[c].in_crm()))
            .collect();
        let mut notes: Vec<(Value, ActivityPlan)> = Vec::new();
        let mut actions: Vec<(Value, ActivityPlan)> = Vec::new();
        let (mut note_id, mut action_id) =
            (5000 + self.rng.random_range(0..100), 20_000 + self.rng.random_range(0..100));
        for unit in units {
            let creator = match unit {
                ActivityUnit::SkippedCreator => out_agents.choose(&mut self.rng).copied(),
                ActivityUnit::NonAgentCreator => None,
                _ => in_agents.choose(&mut self.rng).copied(),
            };
            let who = creator.map_or(UNASSIGNED_AGENT, |i| self.agents[i]);
            let contact_wanted_in = !matches!(unit, ActivityUnit::SkippedContact | ActivityUnit::NoContact);
            let opp_pool = if contact_wanted_in { &opp_in } else { &opp_out };
            let as_action = (unit == ActivityUnit::UnmappedType || self.chance(0.5)) && !opp_pool.is_empty();
            let when = self.rng.random_range(START..END);
            let topic = self.word(NOTE_TOPICS);
            if as_action {
                let o = opp_pool[self.below(opp_pool.len())];
                let opp = self.opps[o].clone();
                let kind = if unit == ActivityUnit::UnmappedType {
                    self.word(UNMAPPED_OUTCOMES)
                } else {
                    self.word(MAPPED_OUTCOMES)
                };
                let rec = json!({
                    "id": action_id,
                    "ticket_id": opp.id,
                    "outcome": kind,
                    "who_agentid": who,
                    "who_type": 1,
                    "datetime": format_unix(when),
                    "actiondatecreated": format_unix(when),
                    "last_updated": format_unix((when + self.rng.random_range(0..5) * DAY).min(END)),
                    "note": format!("{kind} about {topic}."),
                    "hiddenfromuser": kind == "Private Note",
                });
                action_id += 1 + self.below(3) as i64;
                actions.push((rec, ActivityPlan { kind: kind.to_string(), contact: opp.contact, creator }));
            } else {
                let contact = match unit {
                    ActivityUnit::NoContact => None,
                    ActivityUnit::SkippedContact => out_contacts.choose(&mut self.rng).copied(),
                    _ => in_contacts.choose(&mut self.rng).copied(),
                };
                let client = contact
                    .and_then(|c| self.users[c].client)
                    .or_else(|| (!self.clients.is_empty()).then(|| self.below(self.clients.len())));
                let rec = json!({
                    "id": note_id,
                    "client_id": client.map_or(0, |c| self.clients[c].id),
                    "user_id": contact.map_or(0, |c| self.users[c].id),
                    "who_agentid": who,
                    "datetime": format_unix(when),
                    "note": format!("Talked about {topic}."),
                });
                note_id += 1 + self.below(3) as i64;
                notes.push((rec, ActivityPlan { kind: CRM_NOTE_KIND.to_string(), contact, creator }));
            }
        }
        // The import reads CRM notes first, then actions (the connector's phase order).
        for (name, list) in [(CRM_NOTE, notes), (ACTIONS, actions)] {
            for (rec, plan) in list {
                self.push(name, rec);
                self.plans.activities.push(plan);
            }
        }
    }

    /// CRM records that match nothing external.
    fn gen_unrelated_seeds(&mut self, sizes: &Sizes) {
        for _ in 0..(2 + sizes.members / 6) {
            let (f, l) = (self.word(FIRST_NAMES), self.word(LAST_NAMES));
            let email = self.fresh_email(&format!("{}.{}.crm", slug(f), slug(l)), MSP_DOMAIN);
            self.seed.users.push(SeedUser { email, name: format!("{f} {l}"), role: "marketer".into() });
        }
        for _ in 0..(1 + sizes.companies / 20) {
            let name = self.fresh_crm_name();
            let phone = Some(fmt_phone(&self.fresh_phone(), 1));
            let domain = self.fresh_domain(&name);
            self.seed.companies.push(SeedCompany { name, phone, website: Some(fmt_site(&domain, 1)) });
        }
        for _ in 0..(1 + sizes.contacts / 30) {
            let (f, l) = (self.word(FIRST_NAMES), self.word(LAST_NAMES));
            let email = self.fresh_email(&format!("{}.{}", slug(f), slug(l)), "crm-only.example");
            self.seed.contacts.push(SeedContact {
                first_name: f.into(),
                last_name: l.into(),
                email: Some(email),
                phone: None,
            });
        }
    }
}
