//! Salesforce's field-level mode at work (PRODUCT.md section 7): with a field map saved,
//! CRM records go to Salesforce by the map, and Leads and Accounts edited there come back.
//!
//! - Out ([`push`], the sync worker's push of one CRM change, while `auto_sync` pushes):
//!   the change's company and what belongs to it are sent together, each record as the
//!   object the map makes of it. Lead target: one Lead per company, with its first
//!   contact's fields. Account target: the Account, a Contact per contact (on the
//!   Account), and an Opportunity per opportunity at the map's `opportunity_stage`. Only
//!   the fields whose values differ from what both sides last agreed on are sent. Two-way,
//!   the linked Lead or Account (and Contacts) are read first and what changed there is
//!   taken in (as a poll takes it), so a push never overwrites a change not polled yet.
//! - Selective sync decides what is created: a company not yet in Salesforce is created
//!   when a change made at or after the criteria were saved finds it matching them
//!   (records that matched before are not sent, as SPOTIO does), or by a retroactive run
//!   ([`send_matching`]). What is in Salesforce stays in step whatever the criteria say,
//!   and nothing is ever deleted there.
//! - Activities created in the CRM after the map was saved become Tasks on the Lead or
//!   Contact (subject, description, date, status); done in the CRM is `Completed` there.
//!   Tasks are not taken back.
//! - In ([`poll_page`], the schedule's poll, while `auto_sync` takes changes in): Leads (or
//!   Accounts and Contacts) changed since the last poll; a linked one whose mapped fields
//!   differ from what was agreed updates those CRM fields. A field changed on both sides
//!   since goes the way of the later change, the other side's value in the log.
//! - Creates are searched for first (a Lead by email, else company and last name; an
//!   Account by name; ...), so a create whose answer was lost, or a message delivered
//!   twice, links the record it made instead of making another.
//!
//! The link of each CRM record is the object's id; its ledger's `pushed` holds, per
//! Salesforce field, the value both sides agreed on last (sent by us or taken in).

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

use crate::error::DomainError;
use crate::field_map::{self, CrmValue, FieldMap, FieldMapping, Target, crm_field};
use crate::ids::{RecordId, RecordKind, Stage, System, TenantId};
use crate::ledger::{FieldHashes, Ledger, value_hash};
use crate::log::{Direction, LogEntry, Outcome, SkipReason};
use crate::mapping::Connection;
use crate::outbox::{Change, ChangeOp};
use crate::ports::{ConnectorError, ObjectQuery, ObjectRow};
use crate::records::{LookupField, Record};
use crate::selective::{self, Subject};
use crate::sync::{PollMessage, SyncOutMessage};
use crate::table::{RecordStore, RecordWrite};
use crate::usecases::Services;
use crate::usecases::connections::connector;
use crate::usecases::crm;
use crate::usecases::export::{Ctx, PushRun};
use crate::work::Work;

const SF: System = System::Salesforce;

/// The change id prefix of a retroactive run's pushes: sent whenever the change was made.
const RETROACTIVE: &str = "retroactive:";

/// The rows one poll page reads.
pub const PAGE: usize = 200;

/// Whether `conn` is in Salesforce's field-level mode (a Salesforce connection with a
/// field map). Its records then go and come by the map only.
pub(crate) fn is_on(conn: &Connection) -> bool {
    conn.system == SF && conn.field_map.is_some()
}

/// The push of `change` in the field-level mode, when `conn` pushes: outbound sync on, a
/// company, contact, opportunity or activity, not a delete (nothing is deleted in
/// Salesforce by this mode).
pub(crate) fn message(conn: &Connection, change: &Change) -> Option<SyncOutMessage> {
    let kinds = [RecordKind::Company, RecordKind::Contact, RecordKind::Opportunity, RecordKind::Activity];
    let pushed = conn.settings.auto_sync.outbound() && change.op != ChangeOp::Deleted && kinds.contains(&change.kind);
    pushed.then(|| SyncOutMessage {
        tenant: change.tenant.clone(),
        system: conn.system,
        record_kind: change.kind,
        record: change.record.clone(),
        change: change.id.clone(),
        deleted: None,
        retry: None,
    })
}

/// A company and what belongs to it, as the map sends them.
struct Family {
    company: Record,
    /// Oldest first: the first is the Lead's person.
    contacts: Vec<Record>,
    opportunities: Vec<Record>,
}

impl Family {
    async fn load(svc: &Services, t: &TenantId, id: &RecordId) -> Result<Option<Self>, DomainError> {
        let Some(company) = svc.store.record(t, RecordKind::Company, id).await? else { return Ok(None) };
        let contacts = svc.store.referencing(t, RecordKind::Contact, LookupField::Company, id).await?;
        let opportunities = svc.store.referencing(t, RecordKind::Opportunity, LookupField::Company, id).await?;
        Ok(Some(Self { company, contacts, opportunities }))
    }

    fn subject(&self) -> Subject<'_> {
        Subject { company: Some(&self.company), contact: self.contacts.first(), opportunities: &self.opportunities }
    }
}

/// The CRM company a record belongs to (a company is its own).
async fn company_of(svc: &Services, t: &TenantId, record: &Record) -> Result<Option<RecordId>, DomainError> {
    Ok(match record {
        Record::Company(c) => Some(c.meta.id.clone()),
        Record::Contact(c) => c.fields.company.clone(),
        Record::Opportunity(o) => o.company.clone(),
        Record::Activity(a) => match &a.company {
            Some(id) => Some(id.clone()),
            None => match svc.store.record(t, RecordKind::Contact, &a.contact).await? {
                Some(Record::Contact(c)) => c.fields.company,
                _ => None,
            },
        },
        _ => None,
    })
}

/// The sync worker's push of one CRM change in the field-level mode (see the module docs);
/// the outcome of the changed record (a Lead's, for a contact under the Lead target).
/// `None` when the record is gone or the connection no longer pushes.
pub(crate) async fn push(
    svc: &Services,
    conn: Connection,
    msg: &SyncOutMessage,
) -> Result<Option<Outcome>, DomainError> {
    let Some(map) = conn.field_map.clone() else { return Ok(None) };
    let forced = msg.change.starts_with(RETROACTIVE);
    if !conn.settings.auto_sync.outbound() && !forced {
        tracing::info!(tenant = %msg.tenant, change = %msg.change, "outbound sync is off; change not pushed");
        return Ok(None);
    }
    let Some(trigger) = svc.store.record(&msg.tenant, msg.record_kind, &msg.record).await? else {
        tracing::info!(tenant = %msg.tenant, change = %msg.change, "record deleted since the change; nothing to push");
        return Ok(None);
    };
    let ctx = Ctx::new(svc, conn, PushRun::SyncOut(msg.change.clone())).await?;
    let sender = Sender { ctx: &ctx, map: &map, trigger: &trigger, sent: HashMap::new(), outcome: None };
    let family = match company_of(svc, &ctx.t, &trigger).await? {
        Some(id) => Family::load(svc, &ctx.t, &id).await?,
        None => None,
    };
    let outcome = match family {
        Some(family) => sender.send(family, forced).await?,
        None => {
            let why = "it belongs to no company, and Salesforce's field-level mode sends companies";
            tracing::info!(tenant = %ctx.t, change = %msg.change, "{why}");
            log(&ctx, &trigger, None, Outcome::Skipped(SkipReason::NotSelected), Vec::new()).await
        }
    };
    tracing::info!(tenant = %ctx.t, change = %msg.change, outcome = ?outcome, "change pushed by the field map");
    Ok(Some(outcome))
}

/// One push: the records sent so far (CRM id -> Salesforce id) and the changed record's
/// outcome.
struct Sender<'a> {
    ctx: &'a Ctx<'a>,
    map: &'a FieldMap,
    trigger: &'a Record,
    sent: HashMap<RecordId, String>,
    outcome: Option<Outcome>,
}

impl Sender<'_> {
    /// Sends `family` (when it is in Salesforce already or selected now), then the changed
    /// activity as a Task.
    async fn send(mut self, family: Family, forced: bool) -> Result<Outcome, DomainError> {
        if family.company.link(SF).is_none() && !self.selected(&family, forced) {
            return Ok(self.skip(self.trigger, SkipReason::NotSelected).await);
        }
        let family = match self.ctx.conn.settings.auto_sync.inbound() {
            true => self.pull(family).await?,
            false => family,
        };
        let (family, company) = (&family, &family.company);
        match self.map.target {
            Target::Lead => {
                let mut records = vec![("company", company)];
                records.extend(family.contacts.first().map(|c| ("contact", c)));
                let values = field_map::salesforce_values(self.map, "Lead", &records, false);
                self.put(company, "Lead", values).await?;
            }
            Target::Account => {
                let values = field_map::salesforce_values(self.map, "Account", &[("company", company)], false);
                let Some(account) = self.put(company, "Account", values).await? else {
                    return Ok(self.outcome.unwrap_or(Outcome::Skipped(SkipReason::NotLinked)));
                };
                for contact in &family.contacts {
                    let mut values = field_map::salesforce_values(self.map, "Contact", &[("contact", contact)], false);
                    values.insert("AccountId".into(), Value::String(account.clone()));
                    self.put(contact, "Contact", values).await?;
                }
                let staged: Vec<&Record> = family.opportunities.iter().filter(|o| self.at_stage(o)).collect();
                for opportunity in staged {
                    let mut values =
                        field_map::salesforce_values(self.map, "Opportunity", &[("opportunity", opportunity)], false);
                    values.insert("AccountId".into(), Value::String(account.clone()));
                    self.put(opportunity, "Opportunity", values).await?;
                }
            }
        }
        if let Record::Activity(activity) = self.trigger {
            self.task(activity, family).await?;
        }
        let trigger = self.trigger;
        Ok(match self.outcome.take() {
            Some(outcome) => outcome,
            // A change of a record the map does not send (an opportunity before its stage).
            None => self.skip(trigger, SkipReason::NotSelected).await,
        })
    }

    /// Two-way: the family's linked Lead or Account (and Contacts) read first and what
    /// changed there since the last agreement taken in (the poll's rule: a field changed on
    /// both sides goes to the later change), so a push never overwrites a change Salesforce
    /// has that no poll has read yet. The family as it is afterwards.
    async fn pull(&self, family: Family) -> Result<Family, DomainError> {
        let ctx = self.ctx;
        let company_object = field_map::object_of(self.map.target, "company");
        let mut reads = vec![(company_object, RecordKind::Company, vec![&family.company])];
        if self.map.target == Target::Account {
            reads.push(("Contact", RecordKind::Contact, family.contacts.iter().collect()));
        }
        let mut took = false;
        for (object, kind, records) in reads {
            let ids: Vec<String> = records.iter().filter_map(|r| Some(r.link(SF)?.id.clone())).collect();
            if ids.is_empty() {
                continue;
            }
            let query = ObjectQuery {
                object: object.to_string(),
                fields: mappings_of(self.map, object).iter().map(|(m, _, _)| m.salesforce.clone()).collect(),
                ids,
                ..ObjectQuery::default()
            };
            let rows = ctx.connector.query_objects(&query).await?;
            let wanted: Vec<(RecordKind, String)> = rows.iter().filter_map(|r| Some((kind, row_id(r)?))).collect();
            let ledgers = ctx.svc.store.ledgers(&ctx.t, SF, &wanted).await?;
            for row in &rows {
                if let Some(ledger) = row_id(row).and_then(|id| ledgers.get(&(kind, id))) {
                    took |= take_in(ctx.svc, &ctx.conn, self.map, object, row, ledger).await?.is_some();
                }
            }
        }
        match took {
            true => Ok(Family::load(ctx.svc, &ctx.t, family.company.id()).await?.unwrap_or(family)),
            false => Ok(family),
        }
    }

    /// Whether a company not in Salesforce yet is to be created: no criteria, or it meets
    /// them and the change was made since they were saved (any time, for a retroactive run).
    fn selected(&self, family: &Family, forced: bool) -> bool {
        let Some(criteria) = &self.ctx.conn.selective_sync else { return true };
        (forced || self.trigger.meta().updated_at >= criteria.since)
            && selective::matches(&criteria.rules, &family.subject())
    }

    /// Whether an opportunity goes to Salesforce: in it already, or at the map's stage.
    fn at_stage(&self, record: &Record) -> bool {
        let Record::Opportunity(o) = record else { return false };
        let stage = self.map.opportunity_stage.as_deref().map(str::trim);
        record.link(SF).is_some()
            || stage.is_some_and(|s| o.stage.as_deref().is_some_and(|at| at.trim().eq_ignore_ascii_case(s)))
    }

    /// An activity created since the map was saved, as a Task on its Lead (Lead target) or
    /// its contact's Contact (Account target, related to the Account).
    async fn task(&mut self, activity: &crate::records::Activity, family: &Family) -> Result<(), DomainError> {
        let record = self.trigger;
        if self.map.since.is_some_and(|since| activity.meta.created_at < since) {
            return Ok(());
        }
        let linked = |id: &RecordId, r: Option<&Record>| {
            self.sent.get(id).cloned().or_else(|| r.and_then(|r| r.link(SF)).map(|l| l.id.clone()))
        };
        let company = linked(family.company.id(), Some(&family.company));
        let (who, what) = match self.map.target {
            Target::Lead => (company, None),
            Target::Account => {
                let contact = family.contacts.iter().find(|c| *c.id() == activity.contact);
                (linked(&activity.contact, contact), company)
            }
        };
        let Some(who) = who else { return Ok(()) };
        let mut values = Map::new();
        values.insert("Subject".into(), Value::String(activity.subject.clone()));
        values.insert("Description".into(), activity.body.clone().map_or(Value::Null, Value::String));
        values.insert("ActivityDate".into(), activity.date.map_or(Value::Null, |d| Value::String(d.day())));
        let status = if activity.done { "Completed" } else { "Not Started" };
        values.insert("Status".into(), Value::String(status.into()));
        values.insert("WhoId".into(), Value::String(who));
        values.extend(what.map(|w| ("WhatId".to_string(), Value::String(w))));
        self.put(record, "Task", values).await?;
        Ok(())
    }

    /// Writes one record's object: its changed fields when linked, else found (adopted) or
    /// created. Its Salesforce id, unless Salesforce refused it (logged).
    async fn put(&mut self, record: &Record, object: &str, values: ObjectRow) -> Result<Option<String>, DomainError> {
        let (outcome, id) = match self.ctx.ledger(record).await? {
            Some(ledger) => self.update(record, object, ledger, values).await?,
            None => self.create(record, object, values).await?,
        };
        if let Some(id) = &id {
            self.sent.insert(record.id().clone(), id.clone());
        }
        let mine = record.kind() == self.trigger.kind() && record.id() == self.trigger.id();
        let lead_of_trigger = self.map.target == Target::Lead && object == "Lead";
        if mine || lead_of_trigger && self.outcome.is_none() && self.trigger.kind() != RecordKind::Activity {
            self.outcome = Some(outcome);
        }
        Ok(id)
    }

    async fn update(
        &self,
        record: &Record,
        object: &str,
        ledger: Ledger,
        values: ObjectRow,
    ) -> Result<(Outcome, Option<String>), DomainError> {
        let ctx = self.ctx;
        let id = ledger.external_id.clone();
        let changed: ObjectRow = values.into_iter().filter(|(k, v)| ledger.pushed.get(k) != Some(&hash(v))).collect();
        if changed.is_empty() {
            return Ok((Outcome::Skipped(SkipReason::Unchanged), Some(id)));
        }
        match ctx.connector.update_object(object, &id, &changed).await {
            Ok(_) => {
                let mut next = ledger.clone();
                next.pushed.extend(hashes(&changed));
                next.pushed_at = Some(ctx.svc.clock.now());
                ctx.svc.store.commit(vec![RecordStore::prepare_ledger(&ctx.t, &next)?]).await?;
                let fields = changed.keys().cloned().collect();
                Ok((log(ctx, record, Some(&id), Outcome::Updated, fields).await, Some(id)))
            }
            Err(e) if e.retryable => Err(e.into()),
            Err(e) => Ok((self.failed(record, &e).await, Some(id))),
        }
    }

    async fn create(
        &self,
        record: &Record,
        object: &str,
        values: ObjectRow,
    ) -> Result<(Outcome, Option<String>), DomainError> {
        let mut body: ObjectRow =
            values.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        for (field, value) in self.map.defaults.get(object).into_iter().flatten() {
            body.entry(field.clone()).or_insert_with(|| value.clone());
        }
        if let Some((found, matched)) = self.similar(record, object, &body).await? {
            return self.adopt(record, object, values, &body, found, matched).await;
        }
        match self.ctx.connector.create_object(object, &body).await {
            Ok(written) => {
                let agreed = self.agreed(object, &values, &body, &ObjectRow::new());
                self.link(record, &written.id, &agreed, Outcome::Created, None).await?;
                Ok((Outcome::Created, Some(written.id)))
            }
            Err(e) if e.outcome_unknown() => match self.similar(record, object, &body).await? {
                Some((found, matched)) => self.adopt(record, object, values, &body, found, matched).await,
                None => Err(ConnectorError { retryable: true, ..e }.into()),
            },
            Err(e) if e.retryable => Err(e.into()),
            Err(e) => Ok((self.failed(record, &e).await, None)),
        }
    }

    /// The first object Salesforce holds that is this record by its search keys and is not
    /// linked to another CRM record, with the keys that matched.
    async fn similar(
        &self,
        record: &Record,
        object: &str,
        body: &ObjectRow,
    ) -> Result<Option<(ObjectRow, String)>, DomainError> {
        let text = |f: &str| body.get(f).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let Some(keys) = search_keys(object).iter().find(|keys| keys.iter().all(|k| text(k).is_some())) else {
            return Ok(None);
        };
        let query = ObjectQuery {
            object: object.to_string(),
            fields: body.keys().cloned().collect(),
            equal: keys.iter().filter_map(|k| Some((k.to_string(), text(k)?.to_string()))).collect(),
            limit: 10,
            ..ObjectQuery::default()
        };
        let rows = self.ctx.connector.query_objects(&query).await?;
        let ids: Vec<(RecordKind, String)> = rows.iter().filter_map(|r| Some((record.kind(), row_id(r)?))).collect();
        let taken = self.ctx.svc.store.link_ids(&self.ctx.t, SF, &ids).await?;
        let found = rows.into_iter().find(|r| row_id(r).is_some_and(|id| !taken.contains_key(&(record.kind(), id))));
        Ok(found.map(|row| (row, keys.join(" and "))))
    }

    /// Brings a found object up to date with the fields that differ there, then links it.
    async fn adopt(
        &self,
        record: &Record,
        object: &str,
        values: ObjectRow,
        body: &ObjectRow,
        found: ObjectRow,
        matched: String,
    ) -> Result<(Outcome, Option<String>), DomainError> {
        let id = row_id(&found).unwrap_or_default();
        let differing: ObjectRow = body
            .iter()
            .filter(|(k, v)| found.get(*k).map(canon) != Some(canon(v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !differing.is_empty() {
            match self.ctx.connector.update_object(object, &id, &differing).await {
                Ok(_) => {}
                Err(e) if e.retryable => return Err(e.into()),
                Err(e) => return Ok((self.failed(record, &e).await, None)),
            }
        }
        let agreed = self.agreed(object, &values, body, &found);
        self.link(record, &id, &agreed, Outcome::Linked, Some(matched)).await?;
        Ok((Outcome::Linked, Some(id)))
    }

    /// What both sides hold after `body` was written to an object that held `found` (none
    /// for a create): per field the map fills and per value computed, what was sent (a
    /// default included), else what the object had, else nothing. Every mapped field gets
    /// its agreement, so a field the CRM fills later (a Lead's person added after the Lead)
    /// is the CRM's change to send, and Salesforce's value is never mistaken for one of its
    /// own changes.
    fn agreed(&self, object: &str, values: &ObjectRow, body: &ObjectRow, found: &ObjectRow) -> ObjectRow {
        let mapped = mappings_of(self.map, object).into_iter().map(|(m, _, _)| m.salesforce.clone());
        mapped
            .chain(values.keys().cloned())
            .chain(body.keys().cloned())
            .map(|field| {
                let held = body.get(&field).or_else(|| found.get(&field)).cloned().unwrap_or(Value::Null);
                (field, held)
            })
            .collect()
    }

    /// Links `record` to the object `id`, agreed on `values`, logged.
    async fn link(
        &self,
        record: &Record,
        id: &str,
        values: &ObjectRow,
        outcome: Outcome,
        matched: Option<String>,
    ) -> Result<(), DomainError> {
        let ledger = Ledger {
            system: SF,
            kind: record.kind(),
            external_id: id.to_string(),
            crm_id: record.id().clone(),
            seen: None,
            pulled: FieldHashes::new(),
            pushed: hashes(values),
            pulled_at: None,
            pushed_at: Some(self.ctx.svc.clock.now()),
            held: None,
            kept: FieldHashes::new(),
            version: 0,
        };
        self.ctx.link(record, ledger, outcome, matched).await?;
        Ok(())
    }

    /// A record Salesforce refused: logged with its message (and code), an event published.
    async fn failed(&self, record: &Record, e: &ConnectorError) -> Outcome {
        let message = match &e.code {
            Some(code) if !e.message.contains(code.as_str()) => format!("{code}: {}", e.message),
            _ => e.message.clone(),
        };
        let ext = record.link(SF).map(|l| l.id.clone());
        let mut entry = self.ctx.entry(record, ext.as_deref(), Outcome::Failed(message), None, Vec::new());
        entry.error = Some(crate::log::LogError::of(e));
        let entry = self.ctx.put(entry).await;
        self.ctx.svc.events.failed(&crate::events::FailureEvent::of(&entry, &self.ctx.svc.tuning)).await;
        entry.outcome
    }

    async fn skip(&self, record: &Record, reason: SkipReason) -> Outcome {
        let ext = record.link(SF).map(|l| l.id.clone());
        log(self.ctx, record, ext.as_deref(), Outcome::Skipped(reason), Vec::new()).await
    }
}

/// The fields a search for an object of this kind asks to be equal, in order of
/// preference; the first whose values are all there is used. A Lead or Contact by email,
/// else by name (with its company or Account); an Account by name; an Opportunity by name
/// on its Account; a Task by subject on its Lead or Contact.
fn search_keys(object: &str) -> &'static [&'static [&'static str]] {
    match object {
        "Lead" => &[&["Email"], &["Company", "LastName"]],
        "Account" => &[&["Name"]],
        "Contact" => &[&["Email"], &["LastName", "AccountId"]],
        "Opportunity" => &[&["Name", "AccountId"]],
        // Not by its date: a date is compared in SOQL as an unquoted literal, and the search
        // quotes every value. An orphan Task (its create's answer lost) of the same subject
        // on the same person is the one; Tasks linked to other activities are never taken.
        "Task" => &[&["Subject", "WhoId"]],
        _ => &[],
    }
}

fn row_id(row: &ObjectRow) -> Option<String> {
    row.get("Id").and_then(Value::as_str).map(str::to_string)
}

/// A value as compared across the two sides: a whole number the same however it is
/// written (`5000`, `5000.0`).
fn canon(v: &Value) -> Value {
    match v.as_f64() {
        Some(f) if v.is_number() && f.fract() == 0.0 && f.abs() < 1e15 => Value::from(f as i64),
        _ => v.clone(),
    }
}

fn hash(v: &Value) -> String {
    value_hash(&canon(v))
}

fn hashes(values: &ObjectRow) -> FieldHashes {
    values.iter().map(|(k, v)| (k.clone(), hash(v))).collect()
}

async fn put_log(svc: &Services, entry: &LogEntry) {
    if let Err(e) = svc.store.put_log(entry).await {
        tracing::warn!(error = %e, "the field-level push's log entry was not written");
    }
}

/// Logs one push's outcome of `record` (the export's writer logs it) and returns it.
async fn log(ctx: &Ctx<'_>, record: &Record, ext: Option<&str>, outcome: Outcome, fields: Vec<String>) -> Outcome {
    ctx.log(record, ext, outcome, None, fields).await.outcome
}

/// A retroactive run: queues the push of every CRM company not in Salesforce yet that
/// meets the saved criteria now. Returns how many.
pub(crate) async fn send_matching(svc: &Services, conn: &Connection) -> Result<usize, DomainError> {
    let Some(criteria) = &conn.selective_sync else { return Ok(0) };
    let run = format!("{RETROACTIVE}{}", criteria.since.datetime().unix_timestamp_nanos());
    let t = &conn.tenant;
    let (mut after, mut queued) = (None, 0);
    loop {
        let page = svc.store.records(t, RecordKind::Company, after.take(), 500).await?;
        for company in page.records.iter().filter(|c| c.link(SF).is_none()) {
            let Some(family) = Family::load(svc, t, company.id()).await? else { continue };
            if !selective::matches(&criteria.rules, &family.subject()) {
                continue;
            }
            let msg = SyncOutMessage {
                tenant: t.clone(),
                system: SF,
                record_kind: RecordKind::Company,
                record: company.id().clone(),
                change: format!("{run}:{}", company.id()),
                deleted: None,
                retry: None,
            };
            svc.queue.send(&Work::SyncOut(msg)).await?;
            queued += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(queued),
        }
    }
}

// ---- in

/// The stages a poll of a field-level connection reads: what a Lead or an Account is,
/// then Contacts under the Account target.
pub(crate) fn poll_stages(map: &FieldMap) -> Vec<Stage> {
    match map.target {
        Target::Lead => vec![Stage::Companies],
        Target::Account => vec![Stage::Companies, Stage::Contacts],
    }
}

/// The object a poll stage reads, and the CRM kind linked to it.
fn polled_object(map: &FieldMap, stage: Stage) -> Option<(&'static str, RecordKind)> {
    match (map.target, stage) {
        (Target::Lead, Stage::Companies) => Some(("Lead", RecordKind::Company)),
        (Target::Account, Stage::Companies) => Some(("Account", RecordKind::Company)),
        (Target::Account, Stage::Contacts) => Some(("Contact", RecordKind::Contact)),
        _ => None,
    }
}

/// The mappings that fill `object`, each with the CRM kind and field it takes from.
fn mappings_of<'m>(map: &'m FieldMap, object: &str) -> Vec<(&'m FieldMapping, &'m str, &'m str)> {
    map.fields
        .iter()
        .filter_map(|m| {
            let (kind, field) = m.crm.split_once('.')?;
            (field_map::object_of(map.target, kind) == object).then_some((m, kind, field))
        })
        .collect()
}

/// One page of a field-level poll: the stage's object read from the cursor, each linked
/// row taken in. Returns the outcomes and where the next page starts (`None` at the end).
pub(crate) async fn poll_page(
    svc: &Services,
    conn: &Connection,
    msg: &PollMessage,
) -> Result<(Vec<Outcome>, Option<String>), DomainError> {
    let Some(map) = &conn.field_map else { return Ok((Vec::new(), None)) };
    let Some((object, kind)) = polled_object(map, msg.stage) else { return Ok((Vec::new(), None)) };
    let query = ObjectQuery {
        object: object.to_string(),
        fields: mappings_of(map, object).iter().map(|(m, _, _)| m.salesforce.clone()).collect(),
        changed_since: if msg.import { None } else { msg.cursor.since.or(map.since) },
        after: Some(msg.cursor.position.clone()).filter(|p| !p.is_empty()),
        limit: PAGE,
        ..ObjectQuery::default()
    };
    let rows = connector(svc, &conn.tenant, SF).await?.query_objects(&query).await?;
    let next = match rows.len() >= PAGE {
        true => rows.last().and_then(row_id),
        false => None,
    };
    let wanted: Vec<(RecordKind, String)> = rows.iter().filter_map(|r| Some((kind, row_id(r)?))).collect();
    let ledgers = svc.store.ledgers(&conn.tenant, SF, &wanted).await?;
    let mut outcomes = Vec::new();
    for row in &rows {
        let outcome = match row_id(row).and_then(|id| ledgers.get(&(kind, id))) {
            Some(ledger) => take_in(svc, conn, map, object, row, ledger).await?,
            None if msg.import => bring_in(svc, conn, map, object, row).await?,
            None => None,
        };
        outcomes.extend(outcome);
    }
    Ok((outcomes, next))
}

/// The initial import of one row not linked yet: its mapped values as CRM records (a
/// company, with the Lead's person as its contact; or a contact on its Account's company),
/// brought in when they meet the criteria: linked to the CRM record of the same name (a
/// company) or email (a contact) not linked yet, else created, linked. Nothing is sent
/// back, and no change is raised (an import's records are not pushed).
async fn bring_in(
    svc: &Services,
    conn: &Connection,
    map: &FieldMap,
    object: &str,
    row: &ObjectRow,
) -> Result<Option<Outcome>, DomainError> {
    let t = &conn.tenant;
    let Some(ext_id) = row_id(row) else { return Ok(None) };
    let mut fields: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (m, kind, field) in mappings_of(map, object) {
        let Some((_, holds)) = crm_field(&m.crm) else { continue };
        let theirs = row.get(&m.salesforce).cloned().unwrap_or(Value::Null);
        if let Some(value) = crm_value(m, &theirs, holds).ok().filter(|v| !v.is_null()) {
            set(fields.entry(kind).or_default(), None, field, value);
        }
    }
    let log_id = format!("field_import:{object}:{ext_id}");
    let (kind, record, person) = match object {
        "Contact" => {
            let account = row.get("AccountId").and_then(Value::as_str).unwrap_or_default().to_string();
            let key = (RecordKind::Company, account);
            let Some(company) = svc.store.link_ids(t, SF, std::slice::from_ref(&key)).await?.remove(&key) else {
                return Ok(None);
            };
            let mut contact = fields.remove("contact").unwrap_or_default();
            contact.insert("company".into(), Value::String(company.to_string()));
            (RecordKind::Contact, contact, None)
        }
        _ => (RecordKind::Company, fields.remove("company").unwrap_or_default(), fields.remove("contact")),
    };
    let record = match crm::new_record(svc, t, kind, record).await {
        Ok(record) => record,
        Err(DomainError::Invalid(why)) => {
            return Ok(Some(
                import_log(svc, t, &log_id, kind, None, &ext_id, Outcome::Failed(format!("refused: {why}"))).await,
            ));
        }
        Err(e) => return Err(e),
    };
    let person = match person {
        // Checked without its company (not stored yet: written together below).
        Some(p) if !p.is_empty() => match crm::new_record(svc, t, RecordKind::Contact, p).await {
            Ok(Record::Contact(mut c)) => {
                c.fields.company = Some(record.id().clone());
                Some(Record::Contact(c))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::info!(tenant = %t, lead = %ext_id, error = %e, "the Lead's person is not a CRM contact");
                None
            }
        },
        _ => None,
    };
    if let Some(criteria) = &conn.selective_sync {
        let (company, contact) = match kind {
            RecordKind::Company => (Some(&record), person.as_ref()),
            _ => (None, Some(&record)),
        };
        if !selective::matches(&criteria.rules, &Subject { company, contact, opportunities: &[] }) {
            return Ok(None);
        }
    }
    // The import's rule: the same name (a company) or email (a contact), not linked yet.
    let key = record.lookup_keys().into_iter().find(|(f, _)| matches!(f, LookupField::Name | LookupField::Email));
    let mut existing = None;
    if let Some((field, value)) = key {
        for id in svc.store.lookup_ids(t, kind, field, &value).await? {
            if let Some(found) = svc.store.record(t, kind, &id).await?.filter(|r| r.link(SF).is_none()) {
                existing = Some(found);
                break;
            }
        }
    }
    let agreed: ObjectRow = mappings_of(map, object)
        .iter()
        .map(|(m, _, _)| (m.salesforce.clone(), row.get(&m.salesforce).cloned().unwrap_or(Value::Null)))
        .collect();
    let ledger = Ledger {
        system: SF,
        kind,
        external_id: ext_id.clone(),
        crm_id: existing.as_ref().unwrap_or(&record).id().clone(),
        seen: None,
        pulled: FieldHashes::new(),
        pushed: hashes(&agreed),
        pulled_at: Some(svc.clock.now()),
        pushed_at: None,
        held: None,
        kept: FieldHashes::new(),
        version: 0,
    };
    let (outcome, write) = match existing {
        Some(found) => (
            Outcome::Linked,
            RecordWrite { record: found.clone(), previous: Some(found), ledger: Some(ledger), log: None },
        ),
        None => {
            (Outcome::Created, RecordWrite { record: record.clone(), previous: None, ledger: Some(ledger), log: None })
        }
    };
    let crm_id = write.record.id().clone();
    let (mut writes, _) = RecordStore::prepare_write(t, write)?;
    if let (Outcome::Created, Some(person)) = (&outcome, person) {
        writes.extend(
            RecordStore::prepare_write(t, RecordWrite { record: person, previous: None, ledger: None, log: None })?.0,
        );
    }
    match svc.store.commit(writes).await {
        Ok(()) => {}
        // Another page, or this one delivered again, linked it first.
        Err(crate::ports::StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(Some(import_log(svc, t, &log_id, kind, Some(crm_id), &ext_id, outcome).await))
}

async fn import_log(
    svc: &Services,
    t: &TenantId,
    id: &str,
    kind: RecordKind,
    crm_id: Option<RecordId>,
    ext_id: &str,
    outcome: Outcome,
) -> Outcome {
    let entry = LogEntry {
        crm_id,
        external_id: Some(ext_id.to_string()),
        ..LogEntry::of(id.to_string(), t, svc.clock.now(), SF, Direction::Import, kind, outcome.clone())
    };
    put_log(svc, &entry).await;
    outcome
}

/// Takes in one linked row: the mapped fields whose values differ from what was agreed
/// update their CRM records (a field the CRM changed too since goes to the later change).
/// `None` when nothing differs (our own write read back, an overlapping page).
async fn take_in(
    svc: &Services,
    conn: &Connection,
    map: &FieldMap,
    object: &str,
    row: &ObjectRow,
    ledger: &Ledger,
) -> Result<Option<Outcome>, DomainError> {
    let t = &conn.tenant;
    let Some(linked) = svc.store.record(t, ledger.kind, &ledger.crm_id).await? else { return Ok(None) };
    let first_contact = match (map.target, &linked) {
        (Target::Lead, Record::Company(c)) => {
            svc.store.referencing(t, RecordKind::Contact, LookupField::Company, &c.meta.id).await?.into_iter().next()
        }
        _ => None,
    };
    let changed_at = row.get("LastModifiedDate").and_then(Value::as_str).map(crate::ledger::ExtVersion::parse);
    let sf_later =
        |record: &Record| changed_at.as_ref().and_then(|v| v.at()).is_none_or(|at| at >= record.meta().updated_at);
    let mut patches: BTreeMap<RecordKind, (Record, Map<String, Value>)> = BTreeMap::new();
    let mut agreed = FieldHashes::new();
    let mut conflicts = Vec::new();
    let mut refused = Vec::new();
    for (m, kind, field) in mappings_of(map, object) {
        let record = match kind {
            "contact" if map.target == Target::Lead => first_contact.as_ref(),
            _ => Some(&linked),
        };
        let Some(record) = record else { continue };
        let theirs = row.get(&m.salesforce).cloned().unwrap_or(Value::Null);
        let was = ledger.pushed.get(&m.salesforce);
        if was == Some(&hash(&theirs)) {
            continue;
        }
        let ours = field_map::salesforce_values(
            &FieldMap { fields: vec![m.clone()], defaults: BTreeMap::new(), ..map.clone() },
            object,
            &[(kind, record)],
            false,
        );
        let ours = ours.get(&m.salesforce).cloned().unwrap_or(Value::Null);
        if hash(&ours) == hash(&theirs) {
            agreed.insert(m.salesforce.clone(), hash(&theirs));
            continue;
        }
        if was.is_none_or(|w| *w != hash(&ours)) {
            // Changed on both sides since they last agreed (or never agreed on: a field the
            // map gained later): the later change wins.
            let external_won = sf_later(record);
            conflicts.push(crate::log::ConflictLog {
                field: m.crm.clone(),
                winner: if external_won { "external" } else { "crm" }.into(),
                loser: if external_won { ours.clone() } else { theirs.clone() },
                crm_at: record.meta().updated_at,
                external_at: changed_at.as_ref().and_then(|v| v.at()),
            });
            if !external_won {
                continue;
            }
        }
        let Some((_, holds)) = crm_field(&m.crm) else { continue };
        match crm_value(m, &theirs, holds) {
            Ok(value) => {
                let (_, patch) = patches.entry(record.kind()).or_insert_with(|| (record.clone(), Map::new()));
                set(patch, Some(record), field, value);
                agreed.insert(m.salesforce.clone(), hash(&theirs));
            }
            Err(why) => refused.push(format!("{}: {why}", m.salesforce)),
        }
    }
    if patches.is_empty() && agreed.is_empty() && refused.is_empty() {
        return Ok(None);
    }
    let mut fields = Vec::new();
    for (record, patch) in patches.values() {
        match crm::patch_record(svc, t, record.kind(), record.id(), patch).await {
            Ok(_) => fields.extend(patch.keys().map(|f| format!("{}.{f}", record.kind()))),
            Err(DomainError::Invalid(why)) => refused.push(why),
            Err(e) => return Err(e),
        }
    }
    // The CRM first, then what was agreed: a crash between them sends the CRM's (new)
    // values again, which changes nothing in Salesforce.
    let mut next = ledger.clone();
    next.pushed.extend(agreed);
    next.pulled_at = Some(svc.clock.now());
    svc.store.commit(vec![RecordStore::prepare_ledger(t, &next)?]).await?;
    let outcome = match (fields.is_empty(), refused.is_empty()) {
        (_, false) => Outcome::Failed(format!("refused: {}", refused.join("; "))),
        (false, true) => Outcome::Updated,
        (true, true) => Outcome::Skipped(SkipReason::Unchanged),
    };
    let version = changed_at.map(|v| v.to_string()).unwrap_or_default();
    let entry = LogEntry {
        crm_id: Some(linked.id().clone()),
        external_id: Some(ledger.external_id.clone()),
        fields,
        conflicts,
        ..LogEntry::of(
            format!("field_sync:{object}:{}:{version}", ledger.external_id),
            t,
            svc.clock.now(),
            SF,
            Direction::SyncIn,
            linked.kind(),
            outcome.clone(),
        )
    };
    put_log(svc, &entry).await;
    Ok(Some(outcome))
}

/// The CRM value of a Salesforce value for a field holding `holds`: a picklist value
/// through the mapping's choices back, a number or a date as the CRM field keeps it.
fn crm_value(m: &FieldMapping, theirs: &Value, holds: CrmValue) -> Result<Value, String> {
    let text = match theirs {
        Value::Null => return Ok(Value::Null),
        Value::String(s) => s.clone(),
        Value::Number(n) => canon(&Value::Number(n.clone())).to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(format!("{other} is not a value the CRM field {} holds", m.crm)),
    };
    let text = m.values.iter().find(|(_, sf)| **sf == text).map_or(text, |(crm, _)| crm.clone());
    match holds {
        CrmValue::Number => {
            text.trim().parse::<f64>().map(Value::from).map_err(|_| format!("{text:?} is not a number"))
        }
        // A date and time in Salesforce is a day in the CRM.
        CrmValue::Date => Ok(Value::String(text.chars().take(10).collect())),
        CrmValue::Text(_) | CrmValue::Choice => Ok(Value::String(text)),
    }
}

/// Sets CRM field `field` (`name`, or `custom.<name>`) of `record` (a new one: none) in
/// `patch`, a custom field among the record's others.
fn set(patch: &mut Map<String, Value>, record: Option<&Record>, field: &str, value: Value) {
    match field.strip_prefix("custom.") {
        Some(name) => {
            let current = record
                .and_then(|r| r.fields().get("custom_fields").cloned())
                .filter(Value::is_object)
                .unwrap_or(Value::Object(Map::new()));
            let custom = patch.entry("custom_fields").or_insert(current);
            if let Value::Object(custom) = custom {
                match value {
                    Value::Null => custom.remove(name),
                    value => custom.insert(name.to_string(), value),
                };
            }
        }
        None => {
            patch.insert(field.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(crm: &str, salesforce: &str, values: &[(&str, &str)]) -> FieldMapping {
        FieldMapping {
            crm: crm.into(),
            salesforce: salesforce.into(),
            values: values.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    #[test]
    fn whole_numbers_compare_the_same_however_they_are_written() {
        assert_eq!(hash(&json!(5000)), hash(&json!(5000.0)));
        assert_ne!(hash(&json!(5000.5)), hash(&json!(5000)));
        assert_eq!(hash(&json!("a")), hash(&json!("a")));
    }

    #[test]
    fn a_salesforce_value_comes_back_through_the_choices_and_as_the_crm_field_holds_it() {
        let m = mapping("company.company_type", "Visit_Result__c", &[("prospect", "Follow Up")]);
        assert_eq!(crm_value(&m, &json!("Follow Up"), CrmValue::Choice).unwrap(), json!("prospect"));
        assert_eq!(crm_value(&m, &json!("Sold"), CrmValue::Choice).unwrap(), json!("Sold"));
        let n = mapping("opportunity.value", "Amount", &[]);
        assert_eq!(crm_value(&n, &json!(1250), CrmValue::Number).unwrap(), json!(1250.0));
        assert!(crm_value(&n, &json!("lots"), CrmValue::Number).is_err());
        let d = mapping("opportunity.close_date", "CloseDate", &[]);
        assert_eq!(crm_value(&d, &json!("2026-12-24T10:00:00.000+0000"), CrmValue::Date).unwrap(), json!("2026-12-24"));
        let c = mapping("company.custom.spend", "Annual_Spend__c", &[]);
        assert_eq!(crm_value(&c, &json!(12.5), CrmValue::Text(10_000)).unwrap(), json!("12.5"));
        assert_eq!(crm_value(&c, &Value::Null, CrmValue::Text(10_000)).unwrap(), Value::Null);
    }

    #[test]
    fn a_search_uses_the_first_keys_whose_values_are_all_there() {
        assert_eq!(search_keys("Lead")[0], &["Email"]);
        assert_eq!(search_keys("Lead")[1], &["Company", "LastName"]);
        assert!(search_keys("Event").is_empty());
    }
}
