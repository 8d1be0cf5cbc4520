//! The reconcile engine's decision (load -> **decide** -> write): one pure function that
//! takes an incoming external record, what the store holds for it (as loaded in batches
//! into [`Known`]) and the [`Policy`], and returns a [`Plan`]: create, link (with the key
//! that matched), update (which fields), refresh the ledger only, skip (why), fail (why),
//! and for the sync flows echo and conflict (a three-way merge against the ledger). No
//! I/O, no clock, no randomness: the same inputs give the same plan, so a redelivered page
//! re-derives the plan it wrote before. [`needs`] says what the load must read for a
//! record, from the same rules, so the two cannot drift apart. [`decide_push`] is the way
//! out (export, sync out): create, update which fields, echo or skip, by the same ledger.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::describe::Description;
use crate::external::{
    ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExtSolution, ExtUser, ExternalRecord, OptionList,
};
use crate::ids::{RecordId, RecordKind, Stage, System};
use crate::ledger::{ExtVersion, FieldHashes, Ledger, field_hashes, value_hash};
use crate::log::SkipReason;
use crate::mapping::Connection;
use crate::normalise::{Timestamp, email_key, name_key, phone_key, website_key};
use crate::records::{
    Activity, CompanyFields, CompanyRecord, ContactFields, ContactList, ContactRecord, LineItem, LookupField, Meta,
    Opportunity, Record, Solution, User,
};
use crate::rules;
use crate::vocab::UserState;

/// An external record's key in [`Known`]: its kind and external id.
pub type LinkKey = (RecordKind, String);
/// A CRM record's key in [`Known`].
pub type RecordKey = (RecordKind, RecordId);
/// A look-up's key in [`Known`]: kind, field, normalised value.
pub type LookupKey = (RecordKind, LookupField, String);

/// How a flow merges an incoming change into a linked record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The import's rule: the external values of the fields an update may change win.
    ExternalWins,
    /// Auto-sync's rule (PRODUCT.md section 6), per field against the values last synced:
    /// a field changed on one side takes that side's value; changed on both, the more
    /// recently updated side wins, and on equal timestamps the CRM side wins (fixed rule).
    ThreeWay,
}

/// What a flow decides by, besides the records: the connection (mappings), what its
/// system is like (its description) and the merge rule.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    pub conn: &'a Connection,
    pub described: &'a Description,
    pub merge: Merge,
}

impl<'a> Policy<'a> {
    /// The import's policy for `conn`, whose system is `described`.
    pub fn import(conn: &'a Connection, described: &'a Description) -> Self {
        Self { conn, described, merge: Merge::ExternalWins }
    }

    fn system(&self) -> System {
        self.conn.system
    }
}

/// Which look-up found the CRM record an external record was linked to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchReason {
    pub field: LookupField,
    /// The normalised value both records share.
    pub value: String,
}

impl fmt::Display for MatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field.as_str(), self.value)
    }
}

/// One field both sides changed since the last sync, and who won it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldConflict {
    pub field: String,
    /// Whether the external side's value won (else the CRM's did).
    pub external_won: bool,
    /// The losing value, kept so it can be restored.
    pub loser: Value,
    /// When the CRM record last changed, and when the external one did (if it says): what
    /// the merge compared.
    pub crm_at: Timestamp,
    pub external_at: Option<Timestamp>,
}

/// What to do with one incoming record.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// A new CRM record, linked.
    Create { record: Record, ledger: Ledger },
    /// An existing, unlinked CRM record found by `reason`, filled in where empty, linked.
    Link { previous: Record, record: Record, ledger: Ledger, reason: MatchReason },
    /// A linked record whose external record changed: `fields` change.
    Update { previous: Record, record: Record, ledger: Ledger, fields: Vec<String> },
    /// A linked record whose external record changed without changing any CRM field:
    /// only the ledger moves (logged as unchanged).
    Refresh { ledger: Ledger },
    /// Both sides changed some fields since the last sync (three-way merge): `record` is
    /// the merge, `conflicts` who won each contested field; fields the CRM won are to be
    /// pushed to the external system by the sync-out flow.
    Conflict { previous: Record, record: Record, ledger: Ledger, fields: Vec<String>, conflicts: Vec<FieldConflict> },
    /// The incoming values are what Tandem itself last pushed: our own write coming back.
    /// Nothing changes in the CRM; only the ledger notes the version seen.
    Echo { ledger: Ledger },
    /// Not taken in, and why.
    Skip(SkipReason),
    /// Cannot be taken in: a fault in the record or the data (logged as failed).
    Fail(String),
}

impl Plan {
    /// The record the plan writes, if any.
    pub fn record(&self) -> Option<&Record> {
        match self {
            Plan::Create { record, .. }
            | Plan::Link { record, .. }
            | Plan::Update { record, .. }
            | Plan::Conflict { record, .. } => Some(record),
            _ => None,
        }
    }

    /// The ledger entry the plan writes, if any.
    pub fn ledger(&self) -> Option<&Ledger> {
        match self {
            Plan::Create { ledger, .. }
            | Plan::Link { ledger, .. }
            | Plan::Update { ledger, .. }
            | Plan::Refresh { ledger }
            | Plan::Echo { ledger }
            | Plan::Conflict { ledger, .. } => Some(ledger),
            _ => None,
        }
    }
}

/// One record's decision: the plan, and the contact lists it needs created first.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub plan: Plan,
    pub new_lists: Vec<Record>,
}

/// The store as a page sees it, loaded in batches before anything is decided, then kept
/// current as the page's decisions are applied (so a record sees what the records before
/// it in the page did). What the load did not find is absent.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// Ledger entries by external record (the page's own records and those they refer to).
    pub ledgers: HashMap<LinkKey, Ledger>,
    /// CRM records (with their links): linked ones, candidates, referenced companies.
    pub records: HashMap<RecordKey, Record>,
    /// Look-up value -> ids of the records holding it.
    pub lookups: HashMap<LookupKey, Vec<RecordId>>,
    /// Contact lists that exist, by name.
    pub lists: HashSet<String>,
}

impl Known {
    fn crm_id(&self, kind: RecordKind, ext_id: Option<&str>) -> Option<RecordId> {
        ext_id.and_then(|id| self.ledgers.get(&(kind, id.to_string()))).map(|l| l.crm_id.clone())
    }

    fn linked(&self, kind: RecordKind, ext_id: &str) -> Option<(&Ledger, &Record)> {
        let ledger = self.ledgers.get(&(kind, ext_id.to_string()))?;
        Some((ledger, self.records.get(&(kind, ledger.crm_id.clone()))?))
    }

    /// Records of `kind` whose `field` is `value`, oldest first, then by id.
    fn find(&self, kind: RecordKind, field: LookupField, value: &str) -> Vec<&Record> {
        let ids = self.lookups.get(&(kind, field, value.to_string())).cloned().unwrap_or_default();
        let mut out: Vec<&Record> = ids.iter().filter_map(|id| self.records.get(&(kind, id.clone()))).collect();
        out.sort_by(|a, b| a.candidate_order(b));
        out
    }

    /// Takes in what a decision writes, so later records of the page see it.
    pub fn apply(&mut self, d: &Decision) {
        for list in &d.new_lists {
            if let Record::List(l) = list {
                self.lists.insert(l.name.clone());
            }
        }
        if let Some(ledger) = d.plan.ledger() {
            let mut stored = ledger.clone();
            stored.version += 1;
            self.ledgers.insert((ledger.kind, ledger.external_id.clone()), stored);
        }
        let (previous, record) = match &d.plan {
            Plan::Create { record, .. } => (None, record),
            Plan::Link { previous, record, .. }
            | Plan::Update { previous, record, .. }
            | Plan::Conflict { previous, record, .. } => (Some(previous), record),
            _ => return,
        };
        let (kind, id) = (record.kind(), record.id().clone());
        let old: HashSet<(LookupField, String)> =
            previous.map(|p| p.lookup_keys().into_iter().collect()).unwrap_or_default();
        let new: HashSet<(LookupField, String)> = record.lookup_keys().into_iter().collect();
        for (field, value) in old.difference(&new) {
            if let Some(ids) = self.lookups.get_mut(&(kind, *field, value.clone())) {
                ids.retain(|i| i != &id);
            }
        }
        for (field, value) in new.difference(&old) {
            let ids = self.lookups.entry((kind, *field, value.clone())).or_default();
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
        }
        let mut saved = record.clone();
        saved.meta_mut().version += 1;
        if let Some(l) = d.plan.ledger() {
            saved.meta_mut().links.insert(l.system, crate::records::ExternalLink { id: l.external_id.clone() });
        }
        self.records.insert((kind, id), saved);
    }
}

/// What the load must read for one incoming record: its own ledger entry, the entries of
/// the records it refers to (and which of those records themselves), and the look-ups
/// that may find a CRM record to link it to (needed only while it is unlinked).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Needs {
    pub own: Option<LinkKey>,
    pub refs: Vec<LinkKey>,
    /// Referred records whose CRM record the decision reads (a contact's company, for its type).
    pub ref_records: Vec<LinkKey>,
    pub lookups: Vec<LookupKey>,
}

/// What deciding `record` will read (see [`Needs`]).
pub fn needs(stage: Stage, record: &ExternalRecord) -> Needs {
    let mut n = Needs { own: record.id().map(|id| (stage.kind(), id.to_string())), ..Needs::default() };
    let mut refer = |kind: RecordKind, id: &Option<String>| {
        if let Some(id) = id {
            n.refs.push((kind, id.clone()));
        }
    };
    match record {
        ExternalRecord::Contact(c) => refer(RecordKind::Company, &c.company_id),
        ExternalRecord::Activity(a) => {
            refer(RecordKind::Contact, &a.contact_id);
            refer(RecordKind::User, &a.created_by);
            refer(RecordKind::Company, &a.company_id);
        }
        ExternalRecord::Opportunity(o) => {
            refer(RecordKind::User, &o.salesperson_id);
            refer(RecordKind::Company, &o.company_id);
            refer(RecordKind::Contact, &o.contact_id);
        }
        _ => {}
    }
    if let ExternalRecord::Contact(c) = record
        && let Some(company) = &c.company_id
    {
        n.ref_records.push((RecordKind::Company, company.clone()));
    }
    n.lookups = lookup_keys(record);
    n
}

/// The look-ups that may link an unlinked record, in the order the rules try them.
fn lookup_keys(record: &ExternalRecord) -> Vec<LookupKey> {
    let mut out = Vec::new();
    let mut push = |kind, field, key: Option<String>| {
        if let Some(key) = key {
            out.push((kind, field, key));
        }
    };
    match record {
        ExternalRecord::User(u) => push(RecordKind::User, LookupField::Email, u.email.as_deref().and_then(email_key)),
        ExternalRecord::Company(c) => {
            push(RecordKind::Company, LookupField::Phone, c.phone.as_deref().and_then(phone_key));
            push(RecordKind::Company, LookupField::Website, c.website.as_deref().and_then(website_key));
            push(RecordKind::Company, LookupField::Name, name_key(&c.name));
        }
        ExternalRecord::Contact(c) => {
            push(RecordKind::Contact, LookupField::Email, c.email.as_deref().and_then(email_key))
        }
        _ => {}
    }
    out
}

/// The names of every list a contact can land in, given the companies it may belong to:
/// what the load reads to know which lists exist.
pub fn possible_lists<'r>(system: &Description, companies: impl Iterator<Item = &'r Record>) -> Vec<String> {
    let mut names: Vec<String> = companies
        .filter_map(|r| match r {
            Record::Company(c) => Some(rules::contact_list(system, Some(&c.fields.company_type))),
            _ => None,
        })
        .chain([rules::contact_list(system, None)])
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The CRM id of a contact list by name.
pub fn list_id(name: &str) -> RecordId {
    let slug: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    RecordId::from_raw(format!("list-{slug}"))
}

/// The CRM id a record created from an external record gets: derived from the system,
/// kind and external id, so deciding again gives the same plan.
pub fn created_id(system: System, kind: RecordKind, ext_id: &str) -> RecordId {
    let digest = Sha256::digest(format!("{system}:{kind}:{ext_id}").as_bytes());
    RecordId::from_raw(hex::encode(&digest[..16]))
}

/// Decides a whole page in order, each record seeing the decisions before it. Returns one
/// decision per record, in the page's order.
pub fn decide_page(
    policy: &Policy<'_>,
    known: &mut Known,
    stage: Stage,
    records: &[ExternalRecord],
    now: Timestamp,
) -> Vec<Decision> {
    records
        .iter()
        .map(|r| {
            let d = decide(policy, known, stage, r, now);
            known.apply(&d);
            d
        })
        .collect()
}

/// Decides one incoming record of `stage` against what is known (see the module docs).
pub fn decide(policy: &Policy<'_>, known: &Known, stage: Stage, record: &ExternalRecord, now: Timestamp) -> Decision {
    let mut ctx = Ctx { policy, known, now, new_lists: Vec::new() };
    let plan = match (stage, record) {
        (Stage::Users, ExternalRecord::User(u)) => ctx.user(u),
        (Stage::Companies, ExternalRecord::Company(c)) => ctx.company(c),
        (Stage::Contacts, ExternalRecord::Contact(c)) => ctx.contact(c),
        (Stage::Solutions, ExternalRecord::Solution(s)) => ctx.solution(s),
        (Stage::Activities, ExternalRecord::Activity(a)) => ctx.activity(a),
        (Stage::Opportunities, ExternalRecord::Opportunity(o)) => ctx.opportunity(o),
        (_, ExternalRecord::Unreadable(u)) => Plan::Fail(format!("unreadable record: {}", u.reason)),
        (stage, other) => Plan::Fail(format!("the {stage} stage was handed a {}", kind_name(other))),
    };
    Decision { plan, new_lists: ctx.new_lists }
}

/// What to do with one CRM record on the way out to one system (export, sync out): the
/// outbound side of the same engine, as pure as [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Push {
    /// Not linked: create it in the system with `fields` (its writable fields that hold a
    /// value), after the writer's duplicate search.
    Create { fields: Vec<String> },
    /// Linked to `external_id`: send `fields`, the writable fields the CRM changed since
    /// the last sync in either direction (against the value it kept, where the import or a
    /// merge left it one of its own, else [`Ledger::base`]): a value the CRM merely kept
    /// at the link does not go out until someone changes it.
    Update { external_id: String, fields: Vec<String> },
    /// The record's writable fields are what the last pull wrote: the change was our own
    /// inbound write, not the user's, and goes nowhere.
    Echo,
    /// Nothing to send, and why (`unchanged`, `not_linked`, `not_written`).
    Skip(SkipReason),
}

/// The outbound decision for `record` (a CRM record just created or changed), given its
/// ledger entry for the system when it is linked and whether an unlinked record may be
/// created there (export always; sync out only where the settings say so). Only the
/// fields the system's description lists as writable for the kind are ever sent.
pub fn decide_push(described: &Description, record: &Record, ledger: Option<&Ledger>, may_create: bool) -> Push {
    let writable = described.writable(record.kind());
    if writable.is_empty() {
        return Push::Skip(SkipReason::NotWritten);
    }
    let fields = record.fields();
    let held = |f: &&&str| fields.get(**f).is_some_and(|v| !v.is_null());
    let Some(ledger) = ledger else {
        return match may_create {
            true => Push::Create { fields: writable.iter().filter(held).map(|f| (*f).to_string()).collect() },
            false => Push::Skip(SkipReason::NotLinked),
        };
    };
    let now = field_hashes(record);
    let base = ledger.base();
    let created_only = described.created_only(record.kind());
    let differing: Vec<&str> = writable.iter().copied().filter(|f| ledger.crm_changed(&base, f, now.get(*f))).collect();
    let changed: Vec<String> =
        differing.iter().filter(|f| !created_only.contains(*f)).map(|f| (*f).to_string()).collect();
    if !changed.is_empty() {
        return Push::Update { external_id: ledger.external_id.clone(), fields: changed };
    }
    let last_was_pull = ledger.pulled_at.is_some() && ledger.pulled_at >= ledger.pushed_at;
    match differing.is_empty() && last_was_pull {
        true => Push::Echo,
        false => Push::Skip(SkipReason::Unchanged),
    }
}

/// Whether `incoming` (the external record's fields as the CRM names them) is our own last
/// push coming back: the last sync of the link was a push, and every field both sides held
/// after it ([`Ledger::base`]: the pushed values over the pulled ones) is as it was. A
/// record changed in the system since, in any field either side held, is not an echo,
/// even where it also carries our pushed values.
fn is_echo(ledger: &Ledger, incoming: &FieldHashes) -> bool {
    let pushed_last = ledger.pushed_at.is_some() && ledger.pushed_at > ledger.pulled_at;
    pushed_last && !ledger.pushed.is_empty() && ledger.base().iter().all(|(f, h)| incoming.get(f) == Some(h))
}

fn kind_name(r: &ExternalRecord) -> &'static str {
    match r {
        ExternalRecord::User(_) => "user",
        ExternalRecord::Company(_) => "company",
        ExternalRecord::Contact(_) => "contact",
        ExternalRecord::Solution(_) => "catalog item",
        ExternalRecord::Activity(_) => "activity",
        ExternalRecord::Opportunity(_) => "opportunity",
        ExternalRecord::Unreadable(_) => "unreadable record",
    }
}

fn fill(slot: &mut Option<String>, value: &Option<String>) {
    if slot.as_deref().is_none_or(str::is_empty)
        && let Some(v) = value.as_ref().filter(|v| !v.trim().is_empty())
    {
        *slot = Some(v.clone());
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Fields whose values differ between two records.
fn differing(a: &Record, b: &Record) -> Vec<String> {
    let (a, b) = (a.fields(), b.fields());
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().filter(|n| a.get(*n) != b.get(*n)).cloned().collect()
}

/// `base` with the named fields taken from `from`.
fn with_fields(base: &Record, from: &Record, fields: &[String]) -> Record {
    let (Ok(Value::Object(mut b)), f) = (serde_json::to_value(base), from.fields()) else {
        return base.clone();
    };
    for name in fields {
        match f.get(name) {
            Some(v) => b.insert(name.clone(), v.clone()),
            None => b.remove(name),
        };
    }
    serde_json::from_value(Value::Object(b)).unwrap_or_else(|_| base.clone())
}

struct Ctx<'a, 'p> {
    policy: &'a Policy<'p>,
    known: &'a Known,
    now: Timestamp,
    new_lists: Vec<Record>,
}

impl Ctx<'_, '_> {
    fn system(&self) -> System {
        self.policy.system()
    }

    fn new_meta(&self, kind: RecordKind, ext_id: &str) -> Meta {
        let mut meta = Meta::new(self.now);
        meta.id = created_id(self.system(), kind, ext_id);
        meta
    }

    fn create(&self, record: Record, ext_id: &str, seen: &Option<ExtVersion>) -> Plan {
        let ledger = Ledger::pulled(self.system(), &record, ext_id, seen.clone(), self.now);
        Plan::Create { record, ledger }
    }

    /// Links `found` (unlinked to this system) to the external record, as `next` (found
    /// with its empty fields filled). The ledger's base is `held`, found with the values
    /// the system holds: where the CRM kept a value of its own, the system's next change of
    /// another field does not bring the system's value of that one in.
    fn attach(
        &self,
        found: &Record,
        mut next: Record,
        held: &Record,
        ext_id: &str,
        seen: &Option<ExtVersion>,
        reason: MatchReason,
    ) -> Plan {
        next.meta_mut().updated_at = self.now;
        let ledger = Ledger::pulled(self.system(), held, ext_id, seen.clone(), self.now).keeping(&next);
        Plan::Link { previous: found.clone(), record: next, ledger, reason }
    }

    /// The first candidate not yet linked to this system, and the look-up that found it.
    fn candidate(&self, kind: RecordKind, keys: &[(LookupField, Option<String>)]) -> Option<(&Record, MatchReason)> {
        keys.iter().find_map(|(field, key)| {
            let key = key.as_ref()?;
            let found = self.known.find(kind, *field, key).into_iter().find(|r| r.link(self.system()).is_none())?;
            Some((found, MatchReason { field: *field, value: key.clone() }))
        })
    }

    /// A linked record seen again: by the ledger, unchanged, an echo, refreshed, updated,
    /// or (three-way merge) conflicting.
    fn seen_again(&self, ledger: &Ledger, previous: &Record, proposed: Record, seen: &Option<ExtVersion>) -> Plan {
        let version = seen.clone();
        let incoming = field_hashes(&proposed);
        // The same stamp is the same version only with the same content, once sync in has
        // taken the record (`held`): systems that stamp whole seconds give two quick edits
        // one stamp, and the second must not be missed.
        let held = value_hash(&serde_json::json!(incoming));
        if is_echo(ledger, &incoming) {
            let ledger = Ledger { held: Some(held), ..ledger.repulled(&proposed, version, self.now) }
                .still_kept(&ledger.kept, previous);
            return Plan::Echo { ledger };
        }
        let same_content = self.policy.merge == Merge::ExternalWins || ledger.held.as_ref().is_none_or(|h| *h == held);
        if version.is_some() && ledger.seen == version && same_content {
            return Plan::Skip(SkipReason::Unchanged);
        }
        let (record, conflicts, system_held) = match self.policy.merge {
            Merge::ExternalWins => (proposed, Vec::new(), None),
            Merge::ThreeWay => {
                let (record, conflicts) = self.merge(ledger, previous, &proposed, version.as_ref());
                (record, conflicts, Some(proposed))
            }
        };
        let fields = differing(previous, &record);
        let mut record = record;
        if !fields.is_empty() {
            record.meta_mut().updated_at = self.now;
        }
        // The three-way merge's base is what the system holds (it keeps the loser of a field
        // the CRM won until sync out writes the winner there); the import's, the record.
        let ledger = match &system_held {
            Some(proposed) => Ledger { held: Some(held), ..ledger.repulled(proposed, version, self.now) }
                .still_kept(&ledger.kept, &record),
            None => ledger.repulled(&record, version, self.now),
        };
        match (fields.is_empty(), conflicts.is_empty()) {
            (true, true) => Plan::Refresh { ledger },
            (false, true) => Plan::Update { previous: previous.clone(), record, ledger, fields },
            (_, false) => Plan::Conflict { previous: previous.clone(), record, ledger, fields, conflicts },
        }
    }

    /// The three-way merge of PRODUCT.md section 6, per field against the values of the
    /// last sync in either direction ([`Ledger::base`]).
    fn merge(
        &self,
        ledger: &Ledger,
        crm: &Record,
        ext: &Record,
        version: Option<&ExtVersion>,
    ) -> (Record, Vec<FieldConflict>) {
        let base = ledger.base();
        let (crm_fields, ext_fields) = (crm.fields(), ext.fields());
        let hash = |m: &serde_json::Map<String, Value>, f: &str| m.get(f).map(value_hash);
        let external_newer = version.and_then(ExtVersion::at).is_some_and(|at| at > crm.meta().updated_at);
        let mut take = Vec::new();
        let mut conflicts = Vec::new();
        for field in differing(crm, ext) {
            // The CRM side's base is what it kept at the last sync, else the common base.
            let crm_changed = ledger.crm_changed(&base, &field, hash(&crm_fields, &field).as_ref());
            let ext_changed = hash(&ext_fields, &field).as_ref() != base.get(&field);
            match (crm_changed, ext_changed) {
                (false, true) => take.push(field),
                // Neither changed since the last sync: the CRM keeps what it kept then.
                (_, false) => {}
                (true, true) => {
                    let (winner_ext, loser) = if external_newer {
                        (true, crm_fields.get(&field).cloned().unwrap_or(Value::Null))
                    } else {
                        (false, ext_fields.get(&field).cloned().unwrap_or(Value::Null))
                    };
                    if winner_ext {
                        take.push(field.clone());
                    }
                    conflicts.push(FieldConflict {
                        field,
                        external_won: winner_ext,
                        loser,
                        crm_at: crm.meta().updated_at,
                        external_at: version.and_then(ExtVersion::at),
                    });
                }
            }
        }
        (with_fields(crm, ext, &take), conflicts)
    }

    fn user(&mut self, u: &ExtUser) -> Plan {
        let role = match rules::user_role(self.policy.conn, u) {
            Ok(r) => r,
            Err(why) => return Plan::Skip(why),
        };
        let email = u.email.clone().unwrap_or_default().trim().to_string();
        let name = format!("{} {}", u.first_name.trim(), u.last_name.trim()).trim().to_string();
        let held = |base: &Record| {
            let mut next = base.clone();
            if let Record::User(x) = &mut next {
                x.name = name.clone();
            }
            next
        };
        if let Some((ledger, prev)) = self.known.linked(RecordKind::User, &u.id) {
            return self.seen_again(ledger, prev, held(prev), &u.updated_at);
        }
        let key = email_key(&email).unwrap_or_default();
        let existing = self.known.find(RecordKind::User, LookupField::Email, &key);
        if let Some(taken) = existing.iter().find(|r| r.link(self.system()).is_some()) {
            return Plan::Fail(format!(
                "the CRM user with email {email} is already linked to member {}",
                taken.link(self.system()).map(|l| l.id.as_str()).unwrap_or_default()
            ));
        }
        if let Some(found) = existing.first() {
            let reason = MatchReason { field: LookupField::Email, value: key };
            return self.attach(found, (*found).clone(), &held(found), &u.id, &u.updated_at, reason);
        }
        let meta = self.new_meta(RecordKind::User, &u.id);
        self.create(Record::User(User { meta, email, name, role, state: UserState::Invited }), &u.id, &u.updated_at)
    }

    fn company(&mut self, c: &ExtCompany) -> Plan {
        let company_type = match rules::company_type(self.policy.conn, self.policy.described, c) {
            Ok(t) => t,
            Err(why) => return Plan::Skip(why),
        };
        let fields = CompanyFields {
            name: c.name.trim().to_string(),
            phone: non_empty(&c.phone),
            website: non_empty(&c.website),
            address: non_empty(&c.address),
            company_type,
            custom_fields: BTreeMap::new(),
        };
        let held = |base: &Record| {
            let mut next = base.clone();
            if let Record::Company(x) = &mut next {
                let custom = std::mem::take(&mut x.fields.custom_fields);
                x.fields = CompanyFields { custom_fields: custom, ..fields.clone() };
            }
            next
        };
        if let Some((ledger, prev)) = self.known.linked(RecordKind::Company, &c.id) {
            return self.seen_again(ledger, prev, held(prev), &c.updated_at);
        }
        let keys = [
            (LookupField::Phone, c.phone.as_deref().and_then(phone_key)),
            (LookupField::Website, c.website.as_deref().and_then(website_key)),
            (LookupField::Name, name_key(&c.name)),
        ];
        if let Some((found, reason)) = self.candidate(RecordKind::Company, &keys) {
            let mut next = found.clone();
            if let Record::Company(x) = &mut next {
                fill(&mut x.fields.phone, &fields.phone);
                fill(&mut x.fields.website, &fields.website);
                fill(&mut x.fields.address, &fields.address);
                if x.fields.company_type.is_none() {
                    x.fields.company_type = fields.company_type.clone();
                }
            }
            return self.attach(found, next, &held(found), &c.id, &c.updated_at, reason);
        }
        let meta = self.new_meta(RecordKind::Company, &c.id);
        self.create(Record::Company(CompanyRecord { meta, fields }), &c.id, &c.updated_at)
    }

    fn ensure_list(&mut self, name: &str) {
        if self.known.lists.contains(name)
            || self.new_lists.iter().any(|l| matches!(l, Record::List(x) if x.name == name))
        {
            return;
        }
        let mut meta = Meta::new(self.now);
        meta.id = list_id(name);
        self.new_lists.push(Record::List(ContactList { meta, name: name.to_string() }));
    }

    fn contact(&mut self, c: &ExtContact) -> Plan {
        let status = match rules::contact_status(self.policy.conn, self.policy.described, c) {
            Ok(s) => s,
            Err(why) => return Plan::Skip(why),
        };
        let company = match c.company_id.as_deref() {
            Some(ext) => match self.known.crm_id(RecordKind::Company, Some(ext)) {
                Some(id) => Some(id),
                None => return Plan::Skip(SkipReason::CompanyNotImported),
            },
            None => None,
        };
        let company_type =
            company.as_ref().and_then(|id| match self.known.records.get(&(RecordKind::Company, id.clone())) {
                Some(Record::Company(x)) => Some(x.fields.company_type.clone()),
                _ => None,
            });
        let list = rules::contact_list(self.policy.described, company_type.as_ref());
        self.ensure_list(&list);
        let fields = ContactFields {
            first_name: c.first_name.trim().to_string(),
            last_name: c.last_name.trim().to_string(),
            email: non_empty(&c.email),
            phone: non_empty(&c.phone),
            title: non_empty(&c.title),
            status,
            company: company.clone(),
            lists: vec![list.clone()],
        };
        let held = |base: &Record| {
            let mut next = base.clone();
            if let Record::Contact(x) = &mut next {
                let mut lists = std::mem::take(&mut x.fields.lists);
                if !lists.contains(&list) {
                    lists.push(list.clone());
                }
                x.fields = ContactFields { lists, ..fields.clone() };
            }
            next
        };
        if let Some((ledger, prev)) = self.known.linked(RecordKind::Contact, &c.id) {
            return self.seen_again(ledger, prev, held(prev), &c.updated_at);
        }
        let keys = [(LookupField::Email, c.email.as_deref().and_then(email_key))];
        if let Some((found, reason)) = self.candidate(RecordKind::Contact, &keys) {
            let mut next = found.clone();
            if let Record::Contact(x) = &mut next {
                fill(&mut x.fields.phone, &fields.phone);
                fill(&mut x.fields.title, &fields.title);
                if x.fields.company.is_none() {
                    x.fields.company = company;
                }
                if !x.fields.lists.contains(&list) {
                    x.fields.lists.push(list.clone());
                }
            }
            return self.attach(found, next, &held(found), &c.id, &c.updated_at, reason);
        }
        let meta = self.new_meta(RecordKind::Contact, &c.id);
        self.create(Record::Contact(ContactRecord { meta, fields }), &c.id, &c.updated_at)
    }

    fn solution(&mut self, s: &ExtSolution) -> Plan {
        let (solution_type, category, billing) = match rules::solution_classes(self.policy.conn, s) {
            Ok(x) => x,
            Err(why) => return Plan::Skip(why),
        };
        let make = |meta: Meta| {
            Record::Solution(Solution {
                meta,
                name: s.name.trim().to_string(),
                solution_type,
                category,
                billing,
                price: s.price,
            })
        };
        if let Some((ledger, prev)) = self.known.linked(RecordKind::Solution, &s.id) {
            return self.seen_again(ledger, prev, make(prev.meta().clone()), &s.updated_at);
        }
        let meta = self.new_meta(RecordKind::Solution, &s.id);
        self.create(make(meta), &s.id, &s.updated_at)
    }

    fn activity(&mut self, a: &ExtActivity) -> Plan {
        let kind = match rules::activity_kind(self.policy.conn, a) {
            Ok(k) => k,
            Err(why) => return Plan::Skip(why),
        };
        let Some(contact) = self.known.crm_id(RecordKind::Contact, a.contact_id.as_deref()) else {
            return Plan::Skip(SkipReason::ContactNotInCrm);
        };
        let Some(created_by) = self.known.crm_id(RecordKind::User, a.created_by.as_deref()) else {
            return Plan::Skip(SkipReason::CreatorNotLinked);
        };
        let company = self.known.crm_id(RecordKind::Company, a.company_id.as_deref());
        let make = |meta: Meta| {
            Record::Activity(Activity {
                meta,
                kind,
                subject: a.subject.trim().to_string(),
                body: non_empty(&a.body),
                date: a.date,
                done: a.done,
                contact,
                company,
                created_by,
            })
        };
        if let Some((ledger, prev)) = self.known.linked(RecordKind::Activity, &a.id) {
            return self.seen_again(ledger, prev, make(prev.meta().clone()), &a.updated_at);
        }
        let meta = self.new_meta(RecordKind::Activity, &a.id);
        self.create(make(meta), &a.id, &a.updated_at)
    }

    fn opportunity(&mut self, o: &ExtOpportunity) -> Plan {
        let conn = self.policy.conn;
        let status = o
            .status_id
            .as_deref()
            .and_then(|s| conn.mapped(Stage::Opportunities, OptionList::OpportunityStatuses, s))
            .map(str::to_string);
        let fresh = |meta: Meta| {
            Record::Opportunity(Opportunity {
                meta,
                name: o.name.trim().to_string(),
                status: status.clone(),
                stage: o.stage.clone(),
                opportunity_type: o.opportunity_type.clone(),
                close_date: o.close_date.clone(),
                value: o.value,
                lifetime_value: o.value,
                line_items: o
                    .line_items
                    .iter()
                    .map(|l| LineItem { description: l.description.clone(), quantity: l.quantity, revenue: l.revenue })
                    .collect(),
                salesperson: self.known.crm_id(RecordKind::User, o.salesperson_id.as_deref()),
                company: self.known.crm_id(RecordKind::Company, o.company_id.as_deref()),
                contact: self.known.crm_id(RecordKind::Contact, o.contact_id.as_deref()),
                notes: non_empty(&o.notes),
            })
        };
        if let Some((ledger, prev)) = self.known.linked(RecordKind::Opportunity, &o.id) {
            let new = fresh(prev.meta().clone());
            // Which fields an update may change depends on the system (PRODUCT.md section 4).
            let next = match self.policy.described.opportunity_updates {
                None => new,
                Some(fields) => {
                    let names: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                    with_fields(prev, &new, &names)
                }
            };
            return self.seen_again(ledger, prev, next, &o.updated_at);
        }
        let meta = self.new_meta(RecordKind::Opportunity, &o.id);
        self.create(fresh(meta), &o.id, &o.updated_at)
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
