//! Hard deletes found by the poll (PRODUCT.md section 6). A record deleted in the system
//! leaves no trace in an "updated since" read, so at the end of each stage's poll:
//!
//! - where the system keeps a log of deletes ([`Connector::deleted_since`], Salesforce),
//!   the linked records it names since the poll's watermark are each queued as a notice;
//! - once [`Tuning::sweep_every`](crate::usecases::Tuning) has passed since the stage's
//!   last one, an **id reconciliation** starts: every id the system lists is kept aside
//!   page by page (one work message per page, so no function runs long), and after the
//!   last page the linked records whose ids were not listed are each queued as a notice,
//!   unless the mass-delete guard ([`mass_delete_held_back`]) holds them all back.
//!
//! A notice is the same one a webhook gives: the sync worker reads the record from the
//! system and only a record the system no longer has is a delete (logged; applied with
//! `propagate_deletes`). So an id missing from a listing for any other reason (the
//! listing's filter, a record created after its page was read) changes nothing.
//!
//! [`Connector::deleted_since`]: crate::ports::Connector::deleted_since

use crate::error::DomainError;
use crate::external::Cursor;
use crate::ids::{Stage, System, TenantId};
use crate::mapping::Connection;
use crate::normalise::Timestamp;
use crate::sync::{POLL_OVERLAP_SECONDS, SweepMessage, SweepReport, SyncMessage, mass_delete_held_back};
use crate::usecases::Services;
use crate::usecases::connections::{connection, connector, update_connection};
use crate::usecases::sync_in::{require_inbound, synced_stage};
use crate::work::Work;

/// The stages whose deletes are looked for: those a delete of means something to the CRM
/// (a member or a catalog item gone from the system is not a CRM record to remove).
pub const SWEPT_STAGES: &[Stage] = &[Stage::Companies, Stage::Contacts, Stage::Opportunities, Stage::Activities];

/// How long the ids a reconciliation listed are kept (it finishes within minutes; a
/// stalled one is simply started again by a later poll).
const SWEEP_PAGES_KEPT_SECONDS: i64 = 86_400;

/// Queues a notice for each of `ids` (of `stage`'s kind), as a webhook naming it would.
async fn queue_notices(svc: &Services, conn: &Connection, stage: Stage, ids: &[String]) -> Result<(), DomainError> {
    let now = svc.clock.now();
    for id in ids {
        let msg = SyncMessage {
            tenant: conn.tenant.clone(),
            system: conn.system,
            record_kind: stage.kind(),
            external_id: id.clone(),
            deleted: true,
            at: None,
            received_at: now,
            delivery: None,
            by_us: false,
            retry: None,
        };
        svc.queue.send(&Work::SyncRecord(msg)).await?;
    }
    Ok(())
}

/// At the end of `stage`'s poll (read from `since`, started at `started_at`): the
/// system's own log of deletes checked, and an id reconciliation started when due.
pub(crate) async fn after_stage(
    svc: &Services,
    conn: &Connection,
    stage: Stage,
    since: Option<Timestamp>,
    started_at: Timestamp,
) -> Result<(), DomainError> {
    if !SWEPT_STAGES.contains(&stage) {
        return Ok(());
    }
    // The first poll after the import reads from the start: deletes since the import.
    let since = since.or_else(|| conn.completed_stages.get(&stage).map(|t| t.plus_seconds(-POLL_OVERLAP_SECONDS)));
    if let Some(since) = since {
        let connector = connector(svc, &conn.tenant, conn.system).await?;
        let logged = match connector.deleted_since(stage.kind(), since).await {
            Ok(ids) => ids,
            Err(e) if e.retryable => return Err(e.into()),
            // Refused for good (a permission taken away): the poll goes on, and the id
            // reconciliation still finds the deletes.
            Err(e) => {
                tracing::warn!(tenant = %conn.tenant, system = %conn.system, stage = %stage, error = %e,
                    "the system's delete log could not be read; deletes wait for the id reconciliation");
                None
            }
        };
        if let Some(ids) = logged {
            let wanted: Vec<_> = ids.into_iter().map(|id| (stage.kind(), id)).collect();
            let linked = svc.store.ledgers(&conn.tenant, conn.system, &wanted).await?;
            let ids: Vec<String> = wanted.into_iter().filter(|w| linked.contains_key(w)).map(|w| w.1).collect();
            if !ids.is_empty() {
                tracing::info!(tenant = %conn.tenant, system = %conn.system, stage = %stage, deleted = ids.len(),
                    "the system's delete log names linked records; each is checked");
            }
            queue_notices(svc, conn, stage, &ids).await?;
        }
    }
    if sweep_due(conn, stage, started_at, svc.tuning.sweep_every) {
        let msg = SweepMessage {
            tenant: conn.tenant.clone(),
            system: conn.system,
            stage,
            cursor: Cursor::start(),
            started_at,
            confirmed: false,
        };
        svc.queue.send(&Work::SyncSweep(msg)).await?;
    }
    Ok(())
}

/// Whether `stage` is due an id reconciliation at `now`: `every` has passed since its
/// last one started (or, before the first, since its import completed).
fn sweep_due(conn: &Connection, stage: Stage, now: Timestamp, every: std::time::Duration) -> bool {
    let last = conn.swept.get(&stage).map(|s| s.at).or_else(|| conn.completed_stages.get(&stage).copied());
    last.is_none_or(|at| (now.datetime() - at.datetime()).as_seconds_f64() >= every.as_secs_f64())
}

/// The body of `POST /connections/{system}/sync/sweep` (optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Act on every delete found, past the mass-delete guard: for a person who checked
    /// the held-back report (`swept` on the connection) and knows the records are gone.
    #[serde(default)]
    pub confirm_deletes: bool,
}

/// `POST /connections/{system}/sync/sweep`: starts an id reconciliation of every stage
/// that has one, now, whatever the interval. Refused while inbound sync is off.
pub async fn start_sweep(
    svc: &Services,
    t: &TenantId,
    system: System,
    req: &SweepRequest,
) -> Result<Vec<Stage>, DomainError> {
    let conn = connection(svc, t, system).await?;
    require_inbound(&conn)?;
    let now = svc.clock.now();
    let stages: Vec<Stage> = SWEPT_STAGES.iter().copied().filter(|s| conn.completed_stages.contains_key(s)).collect();
    for stage in &stages {
        let msg = SweepMessage {
            tenant: t.clone(),
            system,
            stage: *stage,
            cursor: Cursor::start(),
            started_at: now,
            confirmed: req.confirm_deletes,
        };
        svc.queue.send(&Work::SyncSweep(msg)).await?;
    }
    Ok(stages)
}

/// One page of an id reconciliation: the ids listed are kept aside and the next page
/// queued; after the last page, the linked records not listed are queued as notices (or
/// all held back by the mass-delete guard) and the report saved on the connection.
/// Returns the report once the reconciliation is done, `None` before.
pub async fn run_sweep(svc: &Services, msg: &SweepMessage) -> Result<Option<SweepReport>, DomainError> {
    let Some(conn) = svc.store.connection(&msg.tenant, msg.system).await? else {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, "reconciliation page for a connection that is gone; dropped");
        return Ok(None);
    };
    if let Err(why) = synced_stage(&conn, msg.stage.kind()) {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, reason = %why, "reconciliation page dropped");
        return Ok(None);
    }
    if let Some(done) = conn.swept.get(&msg.stage).filter(|s| s.at >= msg.started_at) {
        return Ok(Some(done.clone()));
    }
    let kind = msg.stage.kind();
    let connector = connector(svc, &msg.tenant, msg.system).await?;
    let page = connector.list(kind, &msg.cursor).await?;
    let ids: Vec<String> = page.records.iter().filter_map(|r| r.id().map(str::to_string)).collect();
    let keep_until = svc.clock.now().plus_seconds(SWEEP_PAGES_KEPT_SECONDS);
    svc.store.save_sweep_page(msg, &ids, keep_until).await?;
    if let Some(next) = page.next {
        svc.queue.send(&Work::SyncSweep(SweepMessage { cursor: next, ..msg.clone() })).await?;
        return Ok(None);
    }
    let listed = svc.store.sweep_ids(msg).await?;
    let linked = svc.store.linked_external_ids(&msg.tenant, msg.system, kind).await?;
    let missing: Vec<String> = linked.iter().filter(|id| !listed.contains(*id)).cloned().collect();
    let report = SweepReport {
        at: msg.started_at,
        listed: listed.len(),
        linked: linked.len(),
        missing: missing.len(),
        held_back: !msg.confirmed && mass_delete_held_back(linked.len(), missing.len()),
        confirmed: msg.confirmed,
    };
    if report.held_back {
        tracing::warn!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, listed = report.listed,
            linked = report.linked, missing = report.missing,
            "id reconciliation: too many linked records missing from the listing to be believed; none acted on (the mass-delete guard)");
    } else {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, listed = report.listed,
            linked = report.linked, missing = report.missing, "id reconciliation done; each missing record is checked");
        queue_notices(svc, &conn, msg.stage, &missing).await?;
    }
    save_report(svc, &msg.tenant, msg.system, msg.stage, &report).await?;
    Ok(Some(report))
}

/// Saves `report` as `stage`'s last reconciliation (never over a newer one).
async fn save_report(
    svc: &Services,
    t: &TenantId,
    system: System,
    stage: Stage,
    report: &SweepReport,
) -> Result<(), DomainError> {
    update_connection(svc, t, system, |conn| {
        if conn.swept.get(&stage).is_some_and(|s| s.at >= report.at) {
            return false;
        }
        conn.swept.insert(stage, report.clone());
        true
    })
    .await
    .map(drop)
}
