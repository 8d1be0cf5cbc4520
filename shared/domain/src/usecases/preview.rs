//! The import preview (dry run, PRODUCT.md section 9): an import job whose pages run the
//! import's own load -> decide -> write on a copy-on-write view of the table
//! ([`Overlay`]), so it reports per stage and per record what the import would create,
//! link (and why), update (which fields), skip (why) and fail, while the tenant's records,
//! links, jobs and checkpoints stay as they were. What the preview wrote stays in its
//! scratch for [`KEEP_DAYS`] (the report is read from there), then expires.
//!
//! A preview runs like an import (queued pages, one stage after another, later stages
//! seeing what earlier ones would have written), beside any real import of the same
//! connection; it takes no snapshot and publishes no failure events (its failures are
//! what the import would meet, not failures of the tenant's data).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::DomainError;
use crate::ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
use crate::job::{Job, JobStatus, StageMessage, StageProgress};
use crate::log::{LogEntry, LogFilter, Outcome};
use crate::normalise::Timestamp;
use crate::overlay::Overlay;
use crate::ports::{Condition, EventPublisher, Item, Query, StoreError, Write};
use crate::table::RecordStore;
use crate::usecases::Services;
use crate::usecases::import::{self, StageSelection};

/// How long a preview's report (and its scratch) is kept.
pub const KEEP_DAYS: i64 = 7;

/// How many previews the list shows.
const LISTED: usize = 50;

mod keys {
    use crate::ids::TenantId;

    /// The partition listing a tenant's previews (sort key: time, then id).
    pub fn previews(t: &TenantId) -> String {
        format!("{t}#previews")
    }
}

/// The services a preview's pages run on: the store seen through the preview's view, and
/// no failure events.
pub(crate) fn services(svc: &Services, id: &JobId) -> Services {
    let view = Overlay::new(svc.store.table().clone(), id.as_str(), expiry(svc));
    Services { store: RecordStore::new(Arc::new(view)), events: Arc::new(Quiet), ..svc.clone() }
}

/// The services a stage message runs on: a preview's page on the preview's view.
pub(crate) fn for_message<'a>(svc: &'a Services, msg: &StageMessage) -> Cow<'a, Services> {
    if msg.dry_run { Cow::Owned(services(svc, &msg.job_id)) } else { Cow::Borrowed(svc) }
}

/// When what a preview writes now expires (epoch seconds).
fn expiry(svc: &Services) -> i64 {
    svc.clock.now().plus_seconds(KEEP_DAYS * 86_400).unix()
}

/// What the preview wrote, alone (its report).
fn scratch(svc: &Services, id: &JobId) -> RecordStore {
    RecordStore::new(Arc::new(Overlay::scratch(svc.store.table().clone(), id.as_str(), expiry(svc))))
}

/// A preview's failures are what the import would meet, not the tenant's: no events.
struct Quiet;

#[async_trait]
impl EventPublisher for Quiet {
    async fn failed(&self, _event: &crate::events::FailureEvent) {}
    async fn job_failed(&self, _job: &Job) {}
}

/// One preview in the tenant's list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    pub id: JobId,
    pub system: System,
    pub stages: Vec<Stage>,
    pub created_at: Timestamp,
    /// When its report is gone.
    pub expires_at: Timestamp,
}

impl Listed {
    /// The listing of a preview's job.
    fn of(job: &Job) -> Self {
        Listed {
            id: job.id.clone(),
            system: job.system,
            stages: job.stages.clone(),
            created_at: job.created_at,
            expires_at: job.created_at.plus_seconds(KEEP_DAYS * 86_400),
        }
    }
}

/// A preview: where it stands and, per stage, what the import would do.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub listed: Listed,
    pub status: JobStatus,
    /// Per stage: pages read and how many records the import would create, link, update,
    /// skip (per reason) and fail.
    pub progress: BTreeMap<Stage, StageProgress>,
}

/// What the import would do with one record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Planned {
    pub object: RecordKind,
    pub external_id: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The CRM record it would link to or update (none for a record it would create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_id: Option<RecordId>,
    /// Why it would link: the rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// The CRM fields an update would change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl From<LogEntry> for Planned {
    fn from(e: LogEntry) -> Self {
        let crm_id = if e.outcome == Outcome::Created { None } else { e.crm_id };
        Planned {
            object: e.object,
            external_id: e.external_id,
            outcome: e.outcome,
            crm_id,
            matched: e.matched,
            fields: e.fields,
        }
    }
}

/// A preview's report: its summary and (a page of) what it would do per record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub summary: Summary,
    /// Per record, newest first, as filtered (outcome, object, limit).
    pub records: Vec<Planned>,
}

/// Starts a preview of an import of `selection`: checked as an import is (mappings,
/// prerequisites), then run like one on the preview's view. Answers the preview's job.
pub async fn start_preview(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    selection: StageSelection,
) -> Result<Job, DomainError> {
    let id = JobId::new();
    let job = import::start(&services(svc, &id), tenant, system, selection, Some(id)).await?;
    let listed = Listed::of(&job);
    let millis = listed.created_at.unix_millis();
    let item = Item {
        pk: keys::previews(tenant),
        sk: format!("{millis:013}#{}", listed.id),
        version: 1,
        gsi1: None,
        expires_at: Some(listed.expires_at.unix()),
        body: serde_json::to_value(&listed).map_err(|e| DomainError::internal(e.to_string()))?,
    };
    svc.store.commit(vec![Write::Put { item, condition: Condition::NotExists }]).await?;
    tracing::info!(tenant = %tenant, system = %system, preview = %job.id, stages = ?job.stages, "import preview started");
    Ok(job)
}

/// The tenant's previews still kept, newest first, with where each stands.
pub async fn list(svc: &Services, tenant: &TenantId) -> Result<Vec<Summary>, DomainError> {
    let q = Query { limit: LISTED, descending: true, ..Query::default() };
    let page = svc.store.table().query(&keys::previews(tenant), &q).await?;
    let mut out = Vec::new();
    for item in page.items {
        let listed: Listed = serde_json::from_value(item.body)
            .map_err(|e| StoreError::Corrupt(format!("a preview's listing does not parse: {e}")))?;
        if let Some(summary) = summary(svc, tenant, listed).await? {
            out.push(summary);
        }
    }
    Ok(out)
}

async fn summary(svc: &Services, tenant: &TenantId, listed: Listed) -> Result<Option<Summary>, DomainError> {
    let Some(job) = scratch(svc, &listed.id).job(tenant, &listed.id).await? else { return Ok(None) };
    Ok(Some(Summary { listed, status: job.status, progress: job.progress }))
}

/// A preview's job: where it stands, per stage.
pub async fn job(svc: &Services, tenant: &TenantId, id: &JobId) -> Result<Job, DomainError> {
    let missing = || DomainError::not_found(format!("no preview {id} (previews are kept {KEEP_DAYS} days)"));
    scratch(svc, id).job(tenant, id).await?.filter(|j| j.dry_run).ok_or_else(missing)
}

/// The log entries a preview's pages wrote on its view (newest first; `filter` applies).
pub async fn entries(
    svc: &Services,
    tenant: &TenantId,
    preview: &Job,
    filter: &LogFilter,
) -> Result<Vec<LogEntry>, DomainError> {
    let filter = LogFilter { job_id: Some(preview.id.clone()), since: Some(preview.created_at), ..filter.clone() };
    Ok(scratch(svc, &preview.id).logs(tenant, &filter, svc.clock.now()).await?)
}

/// A preview's report: its summary and what it would do per record (newest first;
/// `filter`'s outcome, object and limit apply).
pub async fn report(svc: &Services, tenant: &TenantId, id: &JobId, filter: &LogFilter) -> Result<Report, DomainError> {
    let job = job(svc, tenant, id).await?;
    let listed = Listed::of(&job);
    let filter = LogFilter { job_id: Some(id.clone()), since: Some(job.created_at), ..filter.clone() };
    let records =
        scratch(svc, id).logs(tenant, &filter, svc.clock.now()).await?.into_iter().map(Planned::from).collect();
    Ok(Report { summary: Summary { listed, status: job.status, progress: job.progress }, records })
}
