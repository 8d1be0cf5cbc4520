//! "Send to <system>" (PRODUCT.md section 5): start an export of one company or contact
//! (checked, then queued), and run it: its records in dependency order (a contact's
//! company first, opportunities and activities after the company or contact they belong
//! to), each decided by the reconcile engine's way out ([`decide_push`]), mapped by
//! [`outgoing::external`] and written through the connector's writer. Never a duplicate:
//! before any create the system is searched and a match is linked instead, and a create
//! is linked in the store right after, so a retried export (or one that died between the
//! vendor's create and our link) finds the record and links it.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::describe::Description;
use crate::error::DomainError;
use crate::events::FailureEvent;
use crate::export::{Export, ExportMessage, ExportOutcome, ExportResult, ExportStatus, Include};
use crate::external::ExternalRecord;
use crate::ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
use crate::ledger::{FieldHashes, Ledger, field_hashes};
use crate::log::{Direction, LogEntry, Outcome};
use crate::mapping::Connection;
use crate::normalise::{email_key, name_key, phone_key, website_key};
use crate::outgoing::{self, Linked};
use crate::ports::{Connector, ConnectorError, StoreError, Written};
use crate::reconcile::{Push, decide_push};
use crate::records::{LookupField, Record};
use crate::table::RecordWrite;
use crate::usecases::Services;
use crate::usecases::connections::{connection, connector};
use crate::work::Work;

/// Vendor error codes that mean "that record already exists" (psa-apis.md 1.7
/// `ObjectExists`; salesforce-api.md 5.3 `DUPLICATES_DETECTED`): the export looks again
/// and links the existing record instead of failing.
pub const DUPLICATE_CODES: &[&str] = &["ObjectExists", "DUPLICATES_DETECTED", "DUPLICATE_VALUE"];

/// `POST /connections/{system}/exports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRequest {
    kind: RecordKind,
    id: RecordId,
    #[serde(default = "details_only")]
    include: Vec<Include>,
}

fn details_only() -> Vec<Include> {
    vec![Include::Details]
}

/// Checks and queues an export; the answer carries its id. Refused (with the reason,
/// nothing queued) when the connection's mappings the export needs are missing, or when
/// the record has no opportunity and the connection's settings require one.
pub async fn start(
    svc: &Services,
    t: &TenantId,
    system: System,
    body: &serde_json::Value,
) -> Result<Export, DomainError> {
    let req: ExportRequest = serde_json::from_value(body.clone()).map_err(|e| {
        DomainError::invalid(format!(
            "{e}; expected a body like {{\"kind\": \"company\", \"id\": \"...\", \"include\": [\"details\", \"activities\", \"opportunities\"]}}"
        ))
    })?;
    if !matches!(req.kind, RecordKind::Company | RecordKind::Contact) {
        return Err(DomainError::invalid(format!(
            "a {} is not sent on its own; send its company or contact",
            req.kind
        )));
    }
    let conn = connection(svc, t, system).await?;
    let record = svc
        .store
        .record(t, req.kind, &req.id)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("no {} {}", req.kind, req.id)))?;
    let missing: Vec<&str> = needed_mappings(system, &req.include)
        .into_iter()
        .filter(|s| !conn.mappings.contains_key(s))
        .map(Stage::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::refused(format!(
            "the {} mapping(s) of the {} connection are not saved yet; export needs them",
            missing.join(", "),
            system.display_name()
        )));
    }
    let has_opportunity =
        || svc.store.lookup_ids(t, RecordKind::Opportunity, owner_field(&record), record.id().as_str());
    if conn.settings.export_requires_opportunity && has_opportunity().await?.is_empty() {
        return Err(DomainError::refused(format!(
            "{} {} has no opportunity, and this connection sends only records with one \
             (settings: export_requires_opportunity)",
            req.kind, req.id
        )));
    }
    let now = svc.clock.now();
    let mut include = req.include;
    include.sort();
    include.dedup();
    let export = Export {
        id: JobId::new(),
        tenant: t.clone(),
        system,
        kind: req.kind,
        record: req.id,
        include,
        status: ExportStatus::Running,
        results: Vec::new(),
        message: None,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let saved = svc.store.save_export(&export).await?;
    let message = ExportMessage { tenant: t.clone(), system, export_id: saved.id.clone() };
    svc.queue.send(&Work::Export(message)).await?;
    tracing::info!(tenant = %t, system = %system, export = %saved.id, "export queued");
    Ok(saved)
}

/// An export by id.
pub async fn export(svc: &Services, t: &TenantId, id: &JobId) -> Result<Export, DomainError> {
    svc.store.export(t, id).await?.ok_or_else(|| DomainError::not_found(format!("no export {id}")))
}

/// An export with whether it is stalled (running, no result for the stall time), as
/// `GET /exports/{id}` answers it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportView {
    #[serde(flatten)]
    pub export: Export,
    pub stalled: bool,
}

/// An export by id, with whether it is stalled.
pub async fn export_view(svc: &Services, t: &TenantId, id: &JobId) -> Result<ExportView, DomainError> {
    let export = export(svc, t, id).await?;
    let stalled = export.is_stalled(svc.clock.now(), svc.tuning.stall_after);
    Ok(ExportView { export, stalled })
}

/// The mappings an export reads: companies and contacts always (a contact's company is
/// sent with it), opportunities and activities when included and the system has them.
fn needed_mappings(system: System, include: &[Include]) -> Vec<Stage> {
    let mut stages = vec![Stage::Companies, Stage::Contacts];
    if include.contains(&Include::Opportunities) {
        stages.push(Stage::Opportunities);
    }
    if include.contains(&Include::Activities) {
        stages.push(Stage::Activities);
    }
    stages.retain(|s| system.stages().contains(s));
    stages
}

/// The look-up that finds what belongs to `owner`, a company or a contact.
fn owner_field(owner: &Record) -> LookupField {
    match owner.kind() {
        RecordKind::Company => LookupField::Company,
        _ => LookupField::Contact,
    }
}

/// The records of `kind` that belong to `owner` (a company or contact), oldest first.
async fn belonging(svc: &Services, t: &TenantId, kind: RecordKind, owner: &Record) -> Result<Vec<Record>, DomainError> {
    Ok(svc.store.referencing(t, kind, owner_field(owner), owner.id()).await?)
}

/// Runs one export message: every record not yet done, in order, each result saved as it
/// is reached. A failure that may pass (the system unreachable, a create whose outcome is
/// unknown, the store) returns the error so the message is delivered again; the records
/// already done are skipped then. `None`: no such export (nothing to do).
pub async fn run(svc: &Services, msg: &ExportMessage) -> Result<Option<Export>, DomainError> {
    let Some(mut export) = svc.store.export(&msg.tenant, &msg.export_id).await? else {
        tracing::warn!(tenant = %msg.tenant, export = %msg.export_id, "no such export; nothing to do");
        return Ok(None);
    };
    if export.status != ExportStatus::Running {
        return Ok(Some(export));
    }
    // What no retry can fix (credentials refused, the connection or the record gone) ends
    // the export as failed, with the reason, instead of cycling to the dead-letter queue.
    let run = PushRun::Export(export.id.clone());
    let planned = match Ctx::for_system(svc, &export.tenant, export.system, run).await {
        Ok(ctx) => ctx.order(&export).await.map(|order| (ctx, order)),
        Err(e) => Err(e),
    };
    let (ctx, order) = match planned {
        Ok(planned) => planned,
        Err(e) if !e.is_retryable() => {
            export.status = ExportStatus::Failed;
            export.message = Some(e.to_string());
            export.updated_at = svc.clock.now();
            return Ok(Some(svc.store.save_export(&export).await?));
        }
        Err(e) => return Err(e),
    };
    // Creates wait in `pending` to go out together (as many as one call of the system
    // carries), flushed before a record of another kind, since records of one kind never
    // refer to each other but a later kind may refer to them.
    let batch = ctx.connector.create_batch().max(1);
    let mut pending: Vec<Pending> = Vec::new();
    for (kind, id) in order {
        if export.result_of(kind, &id).is_some() {
            continue;
        }
        if pending.first().is_some_and(|p| p.record.kind() != kind) {
            export = ctx.flush(export, &mut pending).await?;
        }
        match ctx.prepare(kind, &id).await? {
            Step::Done(result) => export = ctx.save(export, result).await?,
            Step::Create(next) => {
                // Two CRM records that are one record there go out one after the other,
                // so the second finds the first.
                if pending.iter().any(|p| same_record(ctx.described, &p.ext, &next.ext).is_some()) {
                    export = ctx.flush(export, &mut pending).await?;
                    match ctx.prepare(kind, &id).await? {
                        Step::Done(result) => export = ctx.save(export, result).await?,
                        Step::Create(next) => pending.push(*next),
                    }
                } else {
                    pending.push(*next);
                }
                if pending.len() >= batch {
                    export = ctx.flush(export, &mut pending).await?;
                }
            }
        }
    }
    let mut export = ctx.flush(export, &mut pending).await?;
    export.status = ExportStatus::Done;
    export.updated_at = svc.clock.now();
    Ok(Some(svc.store.save_export(&export).await?))
}

/// Records that an export's message failed on its last delivery: the export is marked
/// failed with the reason instead of staying "running".
pub async fn dead_lettered(
    svc: &Services,
    msg: &ExportMessage,
    receives: u32,
    reason: &str,
) -> Result<(), DomainError> {
    for _ in 0..5 {
        let mut export = export(svc, &msg.tenant, &msg.export_id).await?;
        if export.status != ExportStatus::Running {
            return Ok(());
        }
        export.status = ExportStatus::Failed;
        export.message = Some(format!("gave up after {receives} deliveries: {reason}"));
        export.updated_at = svc.clock.now();
        match svc.store.save_export(&export).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("export {} kept changing", msg.export_id))))
}

/// A record decided to be created, searched for and not found, waiting to be sent.
pub(crate) struct Pending {
    pub record: Record,
    pub ext: ExternalRecord,
    pub fields: Vec<String>,
}

/// One record prepared: its result already, or a create still to send.
enum Step {
    Done(ExportResult),
    Create(Box<Pending>),
}

/// Which flow pushes records, naming its log entries: an export (its id; the log entry's
/// job), or sync out of one CRM change (the change's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PushRun {
    Export(JobId),
    SyncOut(String),
}

/// What one push run (an export, or sync out of one change) works with: the records'
/// writer into one system, shared by both flows.
pub(crate) struct Ctx<'a> {
    pub svc: &'a Services,
    pub t: TenantId,
    pub system: System,
    pub conn: Connection,
    pub described: &'static Description,
    pub connector: Arc<dyn Connector>,
    pub run: PushRun,
}

impl<'a> Ctx<'a> {
    /// The run of the tenant's connection to `system`, read from the store.
    pub async fn for_system(
        svc: &'a Services,
        t: &TenantId,
        system: System,
        run: PushRun,
    ) -> Result<Ctx<'a>, DomainError> {
        Self::new(svc, connection(svc, t, system).await?, run).await
    }

    /// The run of `conn`, already read.
    pub async fn new(svc: &'a Services, conn: Connection, run: PushRun) -> Result<Ctx<'a>, DomainError> {
        let (t, system) = (conn.tenant.clone(), conn.system);
        let connector = connector(svc, &t, system).await?;
        Ok(Ctx { svc, t, system, conn, described: svc.connectors.describe(system), connector, run })
    }

    /// The records to send, in order: a contact's company when it is not in the system
    /// yet, the record itself, then its opportunities and activities (each kind after the
    /// contacts of its records that are not in the system yet).
    async fn order(&self, export: &Export) -> Result<Vec<(RecordKind, RecordId)>, DomainError> {
        let root = self
            .svc
            .store
            .record(&self.t, export.kind, &export.record)
            .await?
            .ok_or_else(|| DomainError::not_found(format!("{} {} was deleted", export.kind, export.record)))?;
        let mut out: Vec<(RecordKind, RecordId)> = Vec::new();
        if let Record::Contact(c) = &root {
            self.unless_linked(&mut out, RecordKind::Company, c.fields.company.as_ref()).await?;
        }
        if export.includes(Include::Details) || root.link(self.system).is_none() {
            out.push((root.kind(), root.id().clone()));
        }
        for (what, kind) in
            [(Include::Opportunities, RecordKind::Opportunity), (Include::Activities, RecordKind::Activity)]
        {
            if !export.includes(what) {
                continue;
            }
            // Their contacts not in the system yet first, then the records: each kind in one
            // run, so its creates can go out together.
            let records = belonging(self.svc, &self.t, kind, &root).await?;
            for record in &records {
                let contact = match record {
                    Record::Opportunity(o) => o.contact.as_ref(),
                    Record::Activity(a) => Some(&a.contact),
                    _ => None,
                };
                self.unless_linked(&mut out, RecordKind::Contact, contact).await?;
            }
            out.extend(records.iter().map(|r| (kind, r.id().clone())));
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|k| seen.insert(k.clone()));
        Ok(out)
    }

    pub async fn unless_linked(
        &self,
        out: &mut Vec<(RecordKind, RecordId)>,
        kind: RecordKind,
        id: Option<&RecordId>,
    ) -> Result<(), DomainError> {
        let Some(id) = id else { return Ok(()) };
        let linked = self.svc.store.record(&self.t, kind, id).await?.is_some_and(|r| r.link(self.system).is_some());
        if !linked {
            out.push((kind, id.clone()));
        }
        Ok(())
    }

    pub fn result(
        &self,
        record: &Record,
        outcome: ExportOutcome,
        external_id: Option<String>,
        message: Option<String>,
    ) -> ExportResult {
        ExportResult { kind: record.kind(), id: record.id().clone(), outcome, external_id, message }
    }

    /// Prepares one record: decided and mapped; an update is written, linked and logged at
    /// once, a create first searched for (a match is adopted) and otherwise left to send.
    async fn prepare(&self, kind: RecordKind, id: &RecordId) -> Result<Step, DomainError> {
        let Some(record) = self.svc.store.record(&self.t, kind, id).await? else {
            let message = Some(format!("{kind} {id} no longer exists"));
            return Ok(Step::Done(ExportResult {
                kind,
                id: id.clone(),
                outcome: ExportOutcome::Refused,
                external_id: None,
                message,
            }));
        };
        let ledger = self.ledger(&record).await?;
        let out = self.with_contacts_company(&record).await?;
        let linked = self.links(&outgoing::references(&out)).await?;
        let name = self.system.display_name();
        let done = match decide_push(self.described, &record, ledger.as_ref(), true) {
            Push::Skip(crate::log::SkipReason::NotWritten) => {
                let why = format!("{name} does not take {kind} records from Tandem");
                self.refused(&record, why).await
            }
            Push::Skip(_) | Push::Echo => {
                let ext = ledger.map(|l| l.external_id);
                self.result(&record, ExportOutcome::Updated, ext, Some(format!("already up to date in {name}")))
            }
            Push::Update { external_id, fields } => {
                let Some(ledger) = ledger else { return Err(DomainError::internal("an update without a ledger")) };
                match outgoing::external(&self.conn, self.described, &out, &external_id, &linked) {
                    Ok(ext) => self.update(&record, &ext, ledger, &fields, None).await?,
                    Err(why) => self.refused(&record, why).await,
                }
            }
            Push::Create { fields } => match outgoing::external(&self.conn, self.described, &out, "", &linked) {
                Ok(ext) => match self.similar(&ext).await? {
                    Some((found, matched)) => self.adopt(&record, &ext, found, &fields, matched).await?,
                    None => return Ok(Step::Create(Box::new(Pending { record, ext, fields }))),
                },
                Err(why) => self.refused(&record, why).await,
            },
        };
        Ok(Step::Done(done))
    }

    /// Sends the waiting creates (one call where the system batches them) and settles each,
    /// saving its result; all are settled even when one fails, then the first failure
    /// that may pass is returned so the message is delivered again.
    async fn flush(&self, mut export: Export, pending: &mut Vec<Pending>) -> Result<Export, DomainError> {
        if pending.is_empty() {
            return Ok(export);
        }
        let exts: Vec<ExternalRecord> = pending.iter().map(|p| p.ext.clone()).collect();
        let answers = self.connector.create_many(&exts).await;
        let mut again = None;
        for (p, answer) in pending.drain(..).zip(answers) {
            match self.settle(&p, answer).await {
                Ok(result) => export = self.save(export, result).await?,
                Err(e) => again = again.or(Some(e)),
            }
        }
        match again {
            Some(e) => Err(e),
            None => Ok(export),
        }
    }

    /// Saves one record's result in the export.
    async fn save(&self, mut export: Export, result: ExportResult) -> Result<Export, DomainError> {
        tracing::info!(export = %export.id, kind = %result.kind, id = %result.id, outcome = ?result.outcome, "export record");
        export.results.push(result);
        export.updated_at = self.svc.clock.now();
        Ok(self.svc.store.save_export(&export).await?)
    }

    /// Settles one create by the system's answer: linked when made; a vendor "already
    /// exists" answer, or an answer lost on the way (the create may have been made), looks
    /// again and links what it finds. A lost answer with nothing found is returned as an
    /// error that may pass, so the message is delivered again to send it then.
    pub async fn settle(
        &self,
        p: &Pending,
        answer: Result<Written, ConnectorError>,
    ) -> Result<ExportResult, DomainError> {
        let (record, ext) = (&p.record, &p.ext);
        match answer {
            Ok(written) => {
                let ledger = self.new_link(record, &written);
                self.link(record, ledger, Outcome::Created, None).await?;
                Ok(self.result(record, ExportOutcome::Created, Some(written.id), None))
            }
            Err(e) if e.code.as_deref().is_some_and(|c| DUPLICATE_CODES.contains(&c)) => {
                match self.similar(ext).await? {
                    Some((found, matched)) => self.adopt(record, ext, found, &p.fields, matched).await,
                    None => Ok(self.failed(record, &e).await),
                }
            }
            Err(e) if e.outcome_unknown() => match self.similar(ext).await? {
                Some((found, matched)) => self.adopt(record, ext, found, &p.fields, matched).await,
                None => Err(ConnectorError { retryable: true, ..e }.into()),
            },
            Err(e) if e.retryable => Err(e.into()),
            Err(e) => Ok(self.failed(record, &e).await),
        }
    }

    /// Brings the existing external record `found` up to date with the fields of
    /// `record` whose values differ there, then links it. Updated first, so a refused
    /// update leaves nothing linked; a crash between the two finds it again next time.
    pub async fn adopt(
        &self,
        record: &Record,
        ext: &ExternalRecord,
        found: ExternalRecord,
        fields: &[String],
        matched: String,
    ) -> Result<ExportResult, DomainError> {
        let id = found.id().unwrap_or_default().to_string();
        let differing: Vec<String> = fields.iter().filter(|f| ext.field(f) != found.field(f)).cloned().collect();
        let mut written = Written { id: id.clone(), version: None };
        if !differing.is_empty() {
            let names: Vec<&str> = differing.iter().map(String::as_str).collect();
            written = match self.connector.update(&ext.with_id(&id), &names).await {
                Ok(w) => Written { id: id.clone(), version: w.version },
                Err(e) if e.retryable => return Err(e.into()),
                Err(e) => return Ok(self.failed(record, &e).await),
            };
        }
        let ledger = self.new_link(record, &written);
        self.link(record, ledger, Outcome::Linked, Some(matched.clone())).await?;
        let note = format!("found in {} by {matched}", self.system.display_name());
        Ok(self.result(record, ExportOutcome::Updated, Some(id), Some(note)))
    }

    pub async fn update(
        &self,
        record: &Record,
        ext: &ExternalRecord,
        ledger: Ledger,
        fields: &[String],
        note: Option<String>,
    ) -> Result<ExportResult, DomainError> {
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        match self.connector.update(ext, &names).await {
            Ok(written) => {
                let next = ledger.repushed(record, fields, written.version, self.svc.clock.now());
                self.svc.store.commit(vec![crate::table::RecordStore::prepare_ledger(&self.t, &next)?]).await?;
                self.log(record, Some(&ledger.external_id), Outcome::Updated, None, fields.to_vec()).await;
                Ok(self.result(record, ExportOutcome::Updated, Some(ledger.external_id), note))
            }
            Err(e) if e.retryable => Err(e.into()),
            Err(e) => Ok(self.failed(record, &e).await),
        }
    }

    /// A first link of `record` to the external record `written`, as just pushed: every
    /// writable field counts as in step (an empty CRM field was sent as empty on a create,
    /// and on a record found in the system it leaves that system's value alone), so the
    /// next push sends only what the CRM changes after this.
    pub fn new_link(&self, record: &Record, written: &Written) -> Ledger {
        let all = field_hashes(record);
        let fields = self.described.writable(record.kind());
        Ledger {
            system: self.system,
            kind: record.kind(),
            external_id: written.id.clone(),
            crm_id: record.id().clone(),
            seen: written.version.clone(),
            pulled: FieldHashes::new(),
            pushed: fields.iter().filter_map(|f| Some((f.to_string(), all.get(*f)?.clone()))).collect(),
            pulled_at: None,
            pushed_at: Some(self.svc.clock.now()),
            held: None,
            kept: FieldHashes::new(),
            version: 0,
        }
    }

    /// Writes a new link (the record keeps its id, the ledger the rest) with its log entry.
    /// Another writer that linked the record first is taken as done.
    pub async fn link(
        &self,
        record: &Record,
        ledger: Ledger,
        outcome: Outcome,
        matched: Option<String>,
    ) -> Result<Ledger, DomainError> {
        let log = self.entry(record, Some(&ledger.external_id), outcome, matched, Vec::new());
        let write = RecordWrite {
            record: record.clone(),
            previous: Some(record.clone()),
            ledger: Some(ledger.clone()),
            log: Some(log),
        };
        match self.svc.store.write(&self.t, write).await {
            Ok(_) => Ok(Ledger { version: 1, ..ledger }),
            Err(StoreError::Conflict(_)) => match self.ledger(record).await? {
                Some(existing) if existing.external_id == ledger.external_id => Ok(existing),
                _ => Err(DomainError::Store(StoreError::Conflict(format!(
                    "{} {} changed while it was being linked",
                    record.kind(),
                    record.id()
                )))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The first candidate of the system's duplicate search that is the same record by the
    /// link rules and not linked to another CRM record, with the key that matched.
    pub async fn similar(&self, ext: &ExternalRecord) -> Result<Option<(ExternalRecord, String)>, DomainError> {
        let candidates = self.connector.find_similar(ext).await?;
        let kind = ext.kind().unwrap_or(RecordKind::Company);
        let ids: Vec<(RecordKind, String)> =
            candidates.iter().filter_map(|c| Some((kind, c.id()?.to_string()))).collect();
        let taken = self.svc.store.link_ids(&self.t, self.system, &ids).await?;
        Ok(candidates.into_iter().find_map(|c| {
            let id = c.id()?.to_string();
            if taken.contains_key(&(kind, id)) {
                return None;
            }
            let matched = same_record(self.described, ext, &c)?;
            Some((c, matched))
        }))
    }

    /// The record as it goes out: an activity that names no company goes out under its
    /// contact's (a system that files activities by company, such as Halo's CRM notes,
    /// needs one), without changing the CRM record.
    pub async fn with_contacts_company(&self, record: &Record) -> Result<Record, DomainError> {
        let Record::Activity(a) = record else { return Ok(record.clone()) };
        if a.company.is_some() {
            return Ok(record.clone());
        }
        let contact = self.svc.store.record(&self.t, RecordKind::Contact, &a.contact).await?;
        let company = match contact {
            Some(Record::Contact(c)) => c.fields.company,
            _ => None,
        };
        Ok(Record::Activity(crate::records::Activity { company, ..a.clone() }))
    }

    pub async fn ledger(&self, record: &Record) -> Result<Option<Ledger>, DomainError> {
        let Some(link) = record.link(self.system) else { return Ok(None) };
        let wanted = [(record.kind(), link.id.clone())];
        Ok(self.svc.store.ledgers(&self.t, self.system, &wanted).await?.remove(&wanted[0]))
    }

    /// The external ids the referenced records are linked to.
    pub async fn links(&self, refs: &[(RecordKind, RecordId)]) -> Result<Linked, DomainError> {
        let records = self.svc.store.records_by_id(&self.t, refs).await?;
        Ok(records
            .into_iter()
            .filter_map(|(key, r)| Some((key, r.link(self.system)?.id.clone())))
            .collect::<HashMap<_, _>>())
    }

    pub async fn refused(&self, record: &Record, why: String) -> ExportResult {
        self.log(record, None, Outcome::Failed(format!("refused: {why}")), None, Vec::new()).await;
        self.result(record, ExportOutcome::Refused, None, Some(why))
    }

    /// A record the system refused: logged with its own message, a failure event published.
    pub async fn failed(&self, record: &Record, e: &ConnectorError) -> ExportResult {
        let mut entry = self.entry(record, None, Outcome::Failed(e.message.clone()), None, Vec::new());
        entry.error = Some(crate::log::LogError::of(e));
        let entry = self.put(entry).await;
        self.svc.events.failed(&FailureEvent::of(&entry, &self.svc.tuning)).await;
        self.result(record, ExportOutcome::Failed, None, Some(e.message.clone()))
    }

    /// Writes the sync-log entry of one operation (a store failure is only warned about:
    /// the outcome is in the export's results either way); returns it.
    pub async fn log(
        &self,
        record: &Record,
        ext: Option<&str>,
        outcome: Outcome,
        matched: Option<String>,
        fields: Vec<String>,
    ) -> LogEntry {
        let entry = self.entry(record, ext, outcome, matched, fields);
        self.put(entry).await
    }

    /// Writes `entry` (a store failure is only warned about); returns it.
    pub async fn put(&self, entry: LogEntry) -> LogEntry {
        if let Err(e) = self.svc.store.put_log(&entry).await {
            tracing::warn!(error = %e, "the export's log entry was not written");
        }
        entry
    }

    pub fn entry(
        &self,
        record: &Record,
        ext: Option<&str>,
        outcome: Outcome,
        matched: Option<String>,
        fields: Vec<String>,
    ) -> LogEntry {
        let (id, direction, job_id) = match &self.run {
            PushRun::Export(export) => (
                format!("{export}:{}:{}:{}", record.kind(), record.id(), outcome.key()),
                Direction::Export,
                Some(export.clone()),
            ),
            PushRun::SyncOut(change) => {
                (sync_out_log_id(self.system, change, record.kind(), record.id()), Direction::SyncOut, None)
            }
        };
        LogEntry {
            id,
            tenant: self.t.clone(),
            at: self.svc.clock.now(),
            system: self.system,
            direction,
            object: record.kind(),
            crm_id: Some(record.id().clone()),
            external_id: ext.map(str::to_string),
            outcome,
            job_id,
            matched,
            fields,
            conflicts: Vec::new(),
            error: None,
        }
    }
}

/// The log id of pushing one record for one CRM change: one outcome per change and record,
/// so a redelivered push finds it done.
pub(crate) fn sync_out_log_id(system: System, change: &str, kind: RecordKind, id: &RecordId) -> String {
    format!("sync_out:{system}:{change}:{kind}:{id}")
}

/// Whether a candidate is the record being sent, by the link rules (PRODUCT.md section 4):
/// a company by phone, then website, then name; a contact by email (else by full name
/// within its company); an opportunity by name within its company; an activity on its
/// contact by what the system keeps of it (its subject, else its text and date: a Halo CRM
/// note has no subject). The key that matched, e.g. `email ann@acme.example`.
fn same_record(described: &Description, ours: &ExternalRecord, theirs: &ExternalRecord) -> Option<String> {
    let same = |a: Option<String>, b: Option<String>| a.is_some() && a == b;
    match (ours, theirs) {
        (ExternalRecord::Company(a), ExternalRecord::Company(b)) => {
            let key = |f: fn(&str) -> Option<String>, x: &Option<String>| x.as_deref().and_then(f);
            if same(key(phone_key, &a.phone), key(phone_key, &b.phone)) {
                return key(phone_key, &a.phone).map(|k| format!("phone {k}"));
            }
            if same(key(website_key, &a.website), key(website_key, &b.website)) {
                return key(website_key, &a.website).map(|k| format!("website {k}"));
            }
            same(name_key(&a.name), name_key(&b.name)).then(|| format!("name {}", a.name))
        }
        (ExternalRecord::Contact(a), ExternalRecord::Contact(b)) => {
            let email = |x: &Option<String>| x.as_deref().and_then(email_key);
            match email(&a.email) {
                Some(e) => (email(&b.email) == Some(e.clone())).then(|| format!("email {e}")),
                None => {
                    let full = |f: &str, l: &str| name_key(&format!("{f} {l}"));
                    (same(full(&a.first_name, &a.last_name), full(&b.first_name, &b.last_name))
                        && a.company_id == b.company_id)
                        .then(|| format!("name {} {}", a.first_name, a.last_name))
                }
            }
        }
        (ExternalRecord::Opportunity(a), ExternalRecord::Opportunity(b)) => {
            (same(name_key(&a.name), name_key(&b.name)) && a.company_id == b.company_id)
                .then(|| format!("name {} in its company", a.name))
        }
        (ExternalRecord::Activity(a), ExternalRecord::Activity(b)) => {
            let kept = described.writable(RecordKind::Activity);
            let keys: Vec<&str> = if kept.contains(&"subject") {
                vec!["subject"]
            } else {
                ["body", "date"].into_iter().filter(|f| kept.contains(f)).collect()
            };
            let text = |r: &ExternalRecord, f: &str| r.field(f).map(|v| v.trim().to_string());
            (!keys.is_empty() && keys.iter().all(|f| text(ours, f) == text(theirs, f)) && a.contact_id == b.contact_id)
                .then(|| {
                    keys.iter()
                        .map(|f| format!("{f} {}", text(ours, f).unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
        }
        _ => None,
    }
}
