//! Sync in (PRODUCT.md section 6): external changes reach the CRM by webhook and by the
//! scheduled poll, each applied through the reconcile engine with the three-way merge.
//!
//! - [`intake`]: a webhook call is routed by its connection key, proved (per system, before
//!   anything else), checked against replays, and each record it names is queued as a
//!   [`SyncMessage`]; nothing else is written, and the body is never trusted for values.
//! - [`apply_notice`] (the sync worker): reads the record's current state from the system
//!   and applies it; a record the system no longer has is a delete (logged; archived in
//!   the CRM only with `propagate_deletes`).
//! - [`start_poll`] / [`run_poll`]: per stage, "updated since" the previous poll's start
//!   less the overlap (see [`crate::sync`]), page by page, each page applied like an
//!   import page; the watermark moves only once a stage was read to its end, after the
//!   stage's deletes are looked for ([`crate::usecases::sweep`]).
//!
//! Every operation's log id is made of the record's id and version, so a duplicated, late
//! or reordered delivery, and a poll reading again what a webhook brought, end in one
//! outcome.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::DomainError;
use crate::external::{Cursor, ExternalRecord};
use crate::ids::{RecordKind, Stage, System, TenantId};
use crate::log::{Direction, LogEntry, Outcome, SkipReason};
use crate::mapping::Connection;
use crate::outbox::{Change, ChangeOp};
use crate::ports::SecretError;
use crate::reconcile::Merge;
use crate::sync::{POLL_OVERLAP_SECONDS, PollMessage, SyncMessage};
use crate::table::RecordStore;
use crate::usecases::Services;
use crate::usecases::apply::{Applier, Run};
use crate::usecases::connections::{connection, connector, connector_beyond_budget, update_connection};
use crate::usecases::field_sync;
use crate::webhook::{Action, WebhookCall, WebhookError};
use crate::work::Work;

/// How long a delivery is remembered, to acknowledge and ignore its replays.
pub const REPLAY_WINDOW_SECONDS: i64 = 7 * 86_400;

/// What the intake did with one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Intake {
    /// Records queued for the sync worker.
    pub queued: usize,
    /// The call repeated one already taken: acknowledged, nothing queued.
    pub replay: bool,
    /// Inbound sync is off for the connection: acknowledged, nothing queued.
    pub ignored: bool,
    /// The answer the system expects instead of this JSON (content type, body), if any.
    #[serde(skip)]
    pub answer: Option<(&'static str, String)>,
}

fn unauthenticated(system: System, why: impl std::fmt::Display) -> DomainError {
    tracing::warn!(system = %system, reason = %why, "webhook call rejected");
    DomainError::Unauthenticated(format!("webhook not accepted: {why}"))
}

/// `POST /webhooks/{system}/{key}`: routes the call by its connection key, proves it came
/// from the system (refused with 401 and the reason otherwise, nothing written), then
/// queues one [`SyncMessage`] per record it names. A call taken before (same body) is a
/// replay: acknowledged, nothing queued. A body that proves itself but cannot be read is
/// 400.
pub async fn intake(svc: &Services, system: System, key: &str, call: &WebhookCall) -> Result<Intake, DomainError> {
    let owner = svc.store.webhook_owner(key).await?;
    let Some((tenant, owner_system)) = owner else {
        return Err(unauthenticated(system, "no connection has this webhook address"));
    };
    if owner_system != system {
        return Err(unauthenticated(system, format!("this webhook address is not a {} one", system.display_name())));
    }
    let conn = connection(svc, &tenant, system).await?;
    let reader = svc.connectors.webhooks(system);
    // ConnectWise signs with a key each callback names: read it (unverified) to fetch the
    // key from the connection's own host, then verify the whole call with it.
    let parsed = reader.parse(call);
    let secret: Vec<u8> = match parsed.as_ref().ok().and_then(|d| d.key_url.clone()) {
        Some(url) => {
            let connector = connector_beyond_budget(svc, &tenant, system).await?;
            connector.webhook_key(&url).await.map_err(|e| unauthenticated(system, format!("its signing key: {e}")))?
        }
        None => {
            let secret = match svc.secrets.webhook_secret(&tenant, system).await {
                Ok(secret) => secret,
                Err(SecretError::NotFound(_)) => {
                    return Err(unauthenticated(system, "the connection has no webhook secret"));
                }
                Err(SecretError::Unavailable(m)) => {
                    return Err(DomainError::Store(crate::ports::StoreError::Unavailable(m)));
                }
            };
            let connector = connector_beyond_budget(svc, &tenant, system).await?;
            connector.webhook_proof(secret.expose().as_bytes()).await?
        }
    };
    reader.verify(call, &secret).map_err(|e| unauthenticated(system, e))?;
    let delivery = parsed.map_err(|e| match e {
        WebhookError::Malformed(m) | WebhookError::Unauthenticated(m) => DomainError::invalid(m),
    })?;
    if !conn.settings.auto_sync.inbound() {
        tracing::info!(tenant = %tenant, system = %system, "webhook call while inbound sync is off; ignored");
        return Ok(Intake { queued: 0, replay: false, ignored: true, answer: reader.acknowledgement(call) });
    }
    let digest = hex::encode(Sha256::digest(&call.body));
    let now = svc.clock.now();
    // Marked as taken only once queued: a failure in between leaves the system's retry
    // to be taken, never lost (a notice queued twice is applied once).
    if svc.store.delivery_seen(&tenant, system, &digest, now).await? {
        tracing::info!(tenant = %tenant, system = %system, "webhook delivery seen before; acknowledged");
        return Ok(Intake { queued: 0, replay: true, ignored: false, answer: reader.acknowledgement(call) });
    }
    let mut queued = 0;
    for notice in delivery.notices {
        let msg = SyncMessage {
            tenant: tenant.clone(),
            system,
            record_kind: notice.kind,
            external_id: notice.id,
            deleted: notice.action == Action::Deleted,
            at: notice.at,
            received_at: now,
            delivery: Some(digest[..16].to_string()),
            by_us: notice.by_us,
            retry: None,
        };
        svc.queue.send(&Work::SyncRecord(msg)).await?;
        queued += 1;
    }
    svc.store.first_delivery(&tenant, system, &digest, now, REPLAY_WINDOW_SECONDS).await?;
    Ok(Intake { queued, replay: false, ignored: false, answer: reader.acknowledgement(call) })
}

/// The run of sync in: direction, no job, the three-way merge.
fn run(direction: Direction) -> Run {
    Run { direction, job: None, merge: Merge::ThreeWay }
}

/// The log id of taking in `record`: its version and its content name the change (two
/// quick edits can share a stamp; a record read again unchanged keeps its one entry).
pub(crate) fn sync_log_id(system: System, record: &ExternalRecord) -> String {
    let kind = record.kind().map_or("unreadable", RecordKind::as_str);
    let id = record.id().unwrap_or_default();
    let version = record.version().map(ToString::to_string).unwrap_or_default();
    let content = hex::encode(&Sha256::digest(format!("{record:?}").as_bytes())[..8]);
    format!("sync:{system}:{kind}:{id}:{version}:{content}")
}

/// Refused (409) while the connection's inbound sync is off.
pub(crate) fn require_inbound(conn: &Connection) -> Result<(), DomainError> {
    if conn.settings.auto_sync.inbound() {
        return Ok(());
    }
    Err(DomainError::refused(format!(
        "inbound sync is off for {}; switch auto_sync to \"inbound\" in the connection's settings first",
        conn.system.display_name()
    )))
}

/// The stage of `kind` when the connection takes it in: inbound sync on, the system has
/// the stage, and its import completed. Otherwise why not.
pub(crate) fn synced_stage(conn: &Connection, kind: RecordKind) -> Result<Stage, String> {
    stage_if(conn, kind, conn.settings.auto_sync.inbound(), "inbound")
}

/// The stage of `kind` when `on` (the connection's sync in the `direction` named), the
/// system has the stage, and its import completed. Otherwise why not.
pub(crate) fn stage_if(conn: &Connection, kind: RecordKind, on: bool, direction: &str) -> Result<Stage, String> {
    if !on {
        return Err(format!("{direction} sync is off"));
    }
    if field_sync::is_on(conn) {
        return Err("Salesforce's field-level mode syncs by its field map, not record by record".into());
    }
    let stage = Stage::of_kind(kind)
        .filter(|s| conn.system.stages().contains(s))
        .ok_or_else(|| format!("{} has no {kind} records to sync", conn.system.display_name()))?;
    if !conn.completed_stages.contains_key(&stage) {
        return Err(format!("the {stage} stage has not been imported"));
    }
    Ok(stage)
}

/// The stage a retry (`POST /logs/{id}/retry`) takes its record in by: with inbound sync
/// off too (a person asked), for a kind the system has, outside the field-level mode.
fn retried_stage(conn: &Connection, msg: &SyncMessage) -> Option<Stage> {
    msg.retry.as_ref()?;
    if field_sync::is_on(conn) {
        return None;
    }
    Stage::of_kind(msg.record_kind).filter(|s| conn.system.stages().contains(s))
}

/// The sync worker's handling of one webhook notice: the record read from the system and
/// applied (three-way merge), or, gone from the system, handled as a delete. `None` when
/// the connection does not sync the record's kind (logged at info, nothing written).
pub async fn apply_notice(svc: &Services, msg: &SyncMessage) -> Result<Option<Outcome>, DomainError> {
    let Some(conn) = svc.store.connection(&msg.tenant, msg.system).await? else {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, "notice for a connection that is gone; dropped");
        return Ok(None);
    };
    let stage = match synced_stage(&conn, msg.record_kind).map_err(|why| (why, retried_stage(&conn, msg))) {
        Ok(stage) | Err((_, Some(stage))) => stage,
        Err((why, None)) => {
            tracing::info!(tenant = %msg.tenant, system = %msg.system, kind = %msg.record_kind, reason = %why, "notice not synced");
            return Ok(None);
        }
    };
    if let Some(echo) = marked_echo(svc, &conn, msg).await? {
        return Ok(Some(echo));
    }
    let connector = connector(svc, &msg.tenant, msg.system).await?;
    let Some(record) = connector.get(msg.record_kind, &msg.external_id).await? else {
        return deleted(svc, &conn, msg.record_kind, &msg.external_id).await.map(Some);
    };
    // A retry a person asked for is logged as sync in (it came by no webhook).
    let direction = if msg.retry.is_some() { Direction::SyncIn } else { Direction::Webhook };
    let applier = Applier::new(svc, &msg.tenant, &conn, stage, run(direction));
    let log_id = match &msg.retry {
        Some(token) => format!("{}:{token}", sync_log_id(msg.system, &record)),
        None => sync_log_id(msg.system, &record),
    };
    let outcomes = applier.apply(std::slice::from_ref(&record), &[log_id]).await?;
    let outcome = marked_deleted(svc, &conn, std::slice::from_ref(&record), outcomes).await?.pop();
    tracing::info!(tenant = %msg.tenant, system = %msg.system, kind = %msg.record_kind, id = %msg.external_id,
        outcome = ?outcome, "webhook notice applied");
    Ok(outcome)
}

/// A notice the system marks as Tandem's own change (`by_us`) that names the very version
/// our last push produced (the version its answer carried, kept in the ledger, and no pull
/// since): our own write coming back, logged `skipped:echo` without reading the record.
/// The mark alone never decides: without the version match the record is read and compared
/// as any other notice.
async fn marked_echo(svc: &Services, conn: &Connection, msg: &SyncMessage) -> Result<Option<Outcome>, DomainError> {
    let (true, Some(at)) = (msg.by_us, msg.at.as_ref()) else { return Ok(None) };
    let key = (msg.record_kind, msg.external_id.clone());
    let ledgers = svc.store.ledgers(&conn.tenant, conn.system, std::slice::from_ref(&key)).await?;
    let Some(ledger) = ledgers.get(&key) else { return Ok(None) };
    let pushed_last = ledger.pushed_at.is_some() && ledger.pushed_at > ledger.pulled_at;
    if !pushed_last || ledger.seen.as_ref() != Some(at) {
        return Ok(None);
    }
    let outcome = Outcome::Skipped(SkipReason::Echo);
    let id = format!("sync:{}:{}:{}:{at}:ours", conn.system, msg.record_kind, msg.external_id);
    let now = svc.clock.now();
    let entry = LogEntry {
        crm_id: Some(ledger.crm_id.clone()),
        external_id: Some(msg.external_id.clone()),
        ..LogEntry::of(id, &conn.tenant, now, conn.system, Direction::Webhook, msg.record_kind, outcome.clone())
    };
    svc.store.put_log(&entry).await?;
    Ok(Some(outcome))
}

/// Records the system still lists but marks deleted (ConnectWise's `deletedFlag`) were
/// skipped as deleted; with `propagate_deletes` they are deletes like a record gone.
async fn marked_deleted(
    svc: &Services,
    conn: &Connection,
    records: &[ExternalRecord],
    mut outcomes: Vec<Outcome>,
) -> Result<Vec<Outcome>, DomainError> {
    if !conn.settings.propagate_deletes {
        return Ok(outcomes);
    }
    for (record, outcome) in records.iter().zip(outcomes.iter_mut()) {
        if *outcome == Outcome::Skipped(SkipReason::Deleted)
            && let (Some(kind), Some(id)) = (record.kind(), record.id())
            && deleted(svc, conn, kind, id).await? == Outcome::Deleted
        {
            *outcome = Outcome::Deleted;
        }
    }
    Ok(outcomes)
}

/// A record the system no longer has: nothing to do when Tandem never linked it; else
/// logged, and with `propagate_deletes` its CRM record is removed (the link with it).
pub(crate) async fn deleted(
    svc: &Services,
    conn: &Connection,
    kind: RecordKind,
    ext_id: &str,
) -> Result<Outcome, DomainError> {
    let t = &conn.tenant;
    let key = (kind, ext_id.to_string());
    let ledgers = svc.store.ledgers(t, conn.system, std::slice::from_ref(&key)).await?;
    let Some(ledger) = ledgers.get(&key) else {
        return Ok(Outcome::Skipped(SkipReason::NotLinked));
    };
    let record = svc.store.record(t, kind, &ledger.crm_id).await?;
    let outcome = match (&record, conn.settings.propagate_deletes) {
        (Some(record), true) => {
            // A CRM change like any other: the tenant's other systems may delete it too.
            let change = Change::of(t, ChangeOp::Deleted, record, Vec::new(), svc.clock.now());
            let mut writes = RecordStore::prepare_delete(t, record);
            writes.push(RecordStore::prepare_unlink(t, ledger));
            writes.push(RecordStore::prepare_change(&change)?);
            svc.store.commit(writes).await?;
            crate::usecases::sync_out::relay_committed(svc, t, &[change]).await;
            Outcome::Deleted
        }
        _ => Outcome::Skipped(SkipReason::Deleted),
    };
    let id = format!("sync:{}:{kind}:{ext_id}:deleted", conn.system);
    let entry = LogEntry {
        crm_id: Some(ledger.crm_id.clone()),
        external_id: Some(ext_id.to_string()),
        ..LogEntry::of(id, t, svc.clock.now(), conn.system, Direction::SyncIn, kind, outcome.clone())
    };
    svc.store.put_log(&entry).await?;
    Ok(outcome)
}

/// What starting a poll did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PollStarted {
    /// The stages the poll reads, in order.
    pub stages: Vec<Stage>,
}

/// The stages a poll of `conn` reads: the system's, in order, whose import completed.
fn poll_stages(conn: &Connection) -> Vec<Stage> {
    if let Some(map) = conn.field_map.as_ref().filter(|_| field_sync::is_on(conn)) {
        return field_sync::poll_stages(map);
    }
    conn.system.stages().iter().copied().filter(|s| conn.completed_stages.contains_key(s)).collect()
}

/// Where a poll of `stage` starts reading: the previous complete poll's start less the
/// overlap; the first poll after the import reads everything once.
fn watermark(conn: &Connection, stage: Stage) -> Option<crate::normalise::Timestamp> {
    conn.polled.get(&stage).map(|t| t.plus_seconds(-POLL_OVERLAP_SECONDS))
}

/// The scheduled poll: starts a poll of every connection whose inbound sync is on. One
/// connection that cannot start (gone, its queue refusing) is logged and does not stop
/// the others. Returns how many started.
pub async fn poll_all(svc: &Services) -> Result<usize, DomainError> {
    let mut started = 0;
    for (tenant, system) in svc.store.inbound_connections().await? {
        match start_poll(svc, &tenant, system).await {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(tenant = %tenant, system = %system, error = %e, "scheduled poll not started"),
        }
    }
    Ok(started)
}

/// `POST /connections/{system}/sync/poll` (and the schedule): queues the first page of a
/// poll. Refused while inbound sync is off.
pub async fn start_poll(svc: &Services, t: &TenantId, system: System) -> Result<PollStarted, DomainError> {
    let conn = connection(svc, t, system).await?;
    require_inbound(&conn)?;
    let stages = poll_stages(&conn);
    if let Some(first) = stages.first() {
        queue_poll(svc, &conn, *first, Cursor::start(), svc.clock.now(), false).await?;
    }
    Ok(PollStarted { stages })
}

/// `POST /connections/salesforce/field-map/import`: queues the first page of the
/// field-level mode's initial import (every Lead, or Account and Contact, read once; those
/// not linked yet that meet the criteria brought in). Refused (409) without a field map.
pub async fn start_field_import(svc: &Services, t: &TenantId) -> Result<PollStarted, DomainError> {
    let conn = connection(svc, t, System::Salesforce).await?;
    if !field_sync::is_on(&conn) {
        return Err(DomainError::refused("the initial import brings records in by the field map: save one first"));
    }
    let stages = poll_stages(&conn);
    if let Some(first) = stages.first() {
        queue_poll(svc, &conn, *first, Cursor::start(), svc.clock.now(), true).await?;
    }
    Ok(PollStarted { stages })
}

async fn queue_poll(
    svc: &Services,
    conn: &Connection,
    stage: Stage,
    cursor: Cursor,
    started_at: crate::normalise::Timestamp,
    import: bool,
) -> Result<(), DomainError> {
    let since = if import { None } else { cursor.since.or(watermark(conn, stage)) };
    let cursor = Cursor { since, ..cursor };
    let msg = PollMessage { tenant: conn.tenant.clone(), system: conn.system, stage, cursor, started_at, import };
    svc.queue.send(&Work::SyncPoll(msg)).await?;
    Ok(())
}

/// One page of a poll: read, applied (three-way merge), then the next page queued, or,
/// at a stage's end, its watermark moved to the poll's start and the next stage queued.
/// Returns the page's outcomes.
pub async fn run_poll(svc: &Services, msg: &PollMessage) -> Result<Vec<Outcome>, DomainError> {
    let Some(conn) = svc.store.connection(&msg.tenant, msg.system).await? else {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, "poll page for a connection that is gone; dropped");
        return Ok(Vec::new());
    };
    let field_level = field_sync::is_on(&conn);
    if field_level && !msg.import && !conn.settings.auto_sync.inbound() {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, "poll page dropped: inbound sync is off");
        return Ok(Vec::new());
    }
    if let Some(why) = synced_stage(&conn, msg.stage.kind()).err().filter(|_| !field_level) {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, reason = %why, "poll page dropped");
        return Ok(Vec::new());
    }
    let (outcomes, next) = match field_level {
        true => {
            let (outcomes, after) = field_sync::poll_page(svc, &conn, msg).await?;
            (outcomes, after.map(|position| Cursor { position, since: None }))
        }
        false => {
            let connector = connector(svc, &msg.tenant, msg.system).await?;
            let page = connector.list(msg.stage.kind(), &msg.cursor).await?;
            let applier = Applier::new(svc, &msg.tenant, &conn, msg.stage, run(Direction::SyncIn));
            let log_ids: Vec<String> = page.records.iter().map(|r| sync_log_id(msg.system, r)).collect();
            let outcomes = applier.apply(&page.records, &log_ids).await?;
            (marked_deleted(svc, &conn, &page.records, outcomes).await?, page.next)
        }
    };
    match next {
        Some(next) => {
            let next = Cursor { since: msg.cursor.since, ..next };
            queue_poll(svc, &conn, msg.stage, next, msg.started_at, msg.import).await?;
        }
        None => {
            if !field_level {
                crate::usecases::sweep::after_stage(svc, &conn, msg.stage, msg.cursor.since, msg.started_at).await?;
            }
            let conn = polled(svc, &msg.tenant, msg.system, msg.stage, msg.started_at).await?;
            let stages = poll_stages(&conn);
            let after = stages.iter().skip_while(|s| **s != msg.stage).nth(1);
            if let Some(stage) = after {
                queue_poll(svc, &conn, *stage, Cursor::start(), msg.started_at, msg.import).await?;
            }
        }
    }
    Ok(outcomes)
}

/// Moves `stage`'s watermark to `started_at` (never back: a late page of an older poll
/// leaves a newer watermark alone).
async fn polled(
    svc: &Services,
    t: &TenantId,
    system: System,
    stage: Stage,
    started_at: crate::normalise::Timestamp,
) -> Result<Connection, DomainError> {
    update_connection(svc, t, system, |conn| {
        if conn.polled.get(&stage).is_some_and(|at| *at >= started_at) {
            return false;
        }
        conn.polled.insert(stage, started_at);
        true
    })
    .await
}

#[cfg(test)]
#[path = "sync_in_tests.rs"]
pub(crate) mod tests;
