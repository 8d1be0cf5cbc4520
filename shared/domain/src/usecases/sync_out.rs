//! Sync out (PRODUCT.md section 6): CRM changes reach the external systems by themselves
//! when a connection's `auto_sync` is `outbound` or `two_way`.
//!
//! - [`relay`]: every CRM change (the record API's writes, and sync in's own writes, each
//!   committed with its outbox entry) becomes one [`SyncOutMessage`] per connection that
//!   pushes that kind. The message names the change, never its values. A change committed
//!   but not queued (the process died in between) is queued by the schedule's
//!   [`catch_up`], which reads the outbox behind a per-connection watermark.
//! - [`push`] (the sync worker, in the connection's FIFO group, so a push and a pull of
//!   one connection never run at once): reads the record as it is now and its ledger, and
//!   decides with the reconcile engine's way out ([`decide_push`]):
//!   - our own inbound write coming back (the record is what the last pull wrote) is
//!     `skipped:echo`; nothing changed since the last sync is `skipped:unchanged`;
//!   - a linked record with changed fields, two-way: the system's record is read first and
//!     merged in (the three-way merge of sync in), so a change made there since the last
//!     sync is never overwritten blindly; then the fields where the CRM still differs are
//!     sent. Push only (`outbound`): the fields the CRM changed are sent, nothing is taken
//!     in (the CRM is the source; the system's changes to other fields stay there);
//!   - an unlinked record is created only where the settings allow it (a company or
//!     contact with an opportunity, when `export_requires_opportunity`), after the
//!     export's duplicate search, and with the records it refers to sent first;
//!   - a delete is sent only with `propagate_deletes`; otherwise it is logged.
//!
//! Every push is logged under the change's id and the record's, so a redelivered message
//! finds its push done and sends nothing twice.

use crate::error::DomainError;
use crate::ids::{RecordId, RecordKind, Stage, TenantId};
use crate::log::{Direction, LogEntry, Outcome, SkipReason};
use crate::mapping::Connection;
use crate::outbox::{Change, ChangeOp};
use crate::outgoing;
use crate::reconcile::{Merge, Push, decide_push};
use crate::records::{LookupField, Record};
use crate::sync::SyncOutMessage;
use crate::table::RecordStore;
use crate::usecases::Services;
use crate::usecases::apply::{Applier, Run};
use crate::usecases::connections::update_connection;
use crate::usecases::export::{Ctx, Pending, PushRun, sync_out_log_id};
use crate::usecases::{field_sync, sync_in};
use crate::work::Work;

/// The stage of `kind` when the connection pushes it: outbound sync on, the system has the
/// stage, and its import completed. Otherwise why not.
pub(crate) fn pushed_stage(conn: &Connection, kind: RecordKind) -> Result<Stage, String> {
    sync_in::stage_if(conn, kind, conn.settings.auto_sync.outbound(), "outbound")
}

/// The push of `change` to `conn`'s system, when the connection pushes its kind. A change
/// deleting a record never linked to the system is nothing to it.
fn message(conn: &Connection, change: &Change) -> Option<SyncOutMessage> {
    if field_sync::is_on(conn) {
        return field_sync::message(conn, change);
    }
    pushed_stage(conn, change.kind).ok()?;
    let deleted = match change.op {
        ChangeOp::Deleted => Some(change.links.get(&conn.system)?.clone()),
        _ => None,
    };
    Some(SyncOutMessage {
        tenant: change.tenant.clone(),
        system: conn.system,
        record_kind: change.kind,
        record: change.record.clone(),
        change: change.id.clone(),
        deleted,
        retry: None,
    })
}

/// Queues the push of each committed change to every connection of the tenant that pushes
/// its kind. Returns how many messages were queued.
pub async fn relay(svc: &Services, t: &TenantId, changes: &[Change]) -> Result<usize, DomainError> {
    if changes.is_empty() {
        return Ok(0);
    }
    let mut queued = 0;
    for conn in svc.store.connections(t).await? {
        for msg in changes.iter().filter_map(|change| message(&conn, change)) {
            svc.queue.send(&Work::SyncOut(msg)).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// [`relay`] after a write that is already committed: a queue that fails is logged, not
/// returned (the write stands; the change waits in the outbox for [`catch_up`]).
pub(crate) async fn relay_committed(svc: &Services, t: &TenantId, changes: &[Change]) {
    if let Err(e) = relay(svc, t, changes).await {
        tracing::warn!(tenant = %t, changes = changes.len(), error = %e, "changes committed but not queued for sync out");
    }
}

/// How long after a change the catch-up takes it as one the relay lost (a process that died
/// between committing a change and queueing it, or a queue that failed then): long enough
/// that a change relayed as usual is in the queue or done by then.
pub const RELAY_GRACE_SECONDS: i64 = 120;
/// How far back the catch-up reads at most (a schedule that was off longer starts here).
pub const CATCH_UP_WINDOW_SECONDS: i64 = 2 * 86_400;

/// The schedule's catch-up of sync out: for every connection pushing changes, the CRM
/// changes since its watermark (older than [`RELAY_GRACE_SECONDS`]) that were not pushed
/// are queued again, then the watermark moves. One connection that fails is logged and
/// does not stop the others. Returns how many changes were queued again.
pub async fn catch_up(svc: &Services) -> Result<usize, DomainError> {
    let mut queued = 0;
    for conn in svc.store.auto_sync_connections().await? {
        if !conn.settings.auto_sync.outbound() {
            continue;
        }
        match catch_up_connection(svc, &conn).await {
            Ok(n) => queued += n,
            Err(e) => {
                tracing::warn!(tenant = %conn.tenant, system = %conn.system, error = %e, "sync out catch-up failed")
            }
        }
    }
    Ok(queued)
}

async fn catch_up_connection(svc: &Services, conn: &Connection) -> Result<usize, DomainError> {
    let now = svc.clock.now();
    let until = now.plus_seconds(-RELAY_GRACE_SECONDS);
    let oldest = now.plus_seconds(-CATCH_UP_WINDOW_SECONDS);
    let from = match conn.relayed {
        Some(at) if at >= until => return Ok(0),
        Some(at) if at < oldest => {
            tracing::warn!(tenant = %conn.tenant, system = %conn.system, watermark = %at,
                "sync out catch-up watermark older than its window; changes before it are not looked at");
            oldest
        }
        Some(at) => at,
        // Outbound sync from before the watermark existed: from now on.
        None => until,
    };
    let mut changes = Vec::new();
    let mut day = from;
    loop {
        let listed = svc.store.changes_after(&conn.tenant, &day.day(), from).await?;
        changes.extend(listed.into_iter().filter(|c| c.at <= until));
        if day.day() == until.day() {
            break;
        }
        day = day.plus_seconds(86_400);
    }
    let messages: Vec<SyncOutMessage> = changes.iter().filter_map(|c| message(conn, c)).collect();
    let log_ids: Vec<String> =
        messages.iter().map(|m| sync_out_log_id(m.system, &m.change, m.record_kind, &m.record)).collect();
    let done = svc.store.logs_by_id(&conn.tenant, &log_ids).await?;
    let mut queued = 0;
    for (msg, log_id) in messages.into_iter().zip(&log_ids) {
        if !done.contains_key(log_id) {
            tracing::info!(tenant = %conn.tenant, system = %conn.system, change = %msg.change, "change not pushed yet; queued again");
            svc.queue.send(&Work::SyncOut(msg)).await?;
            queued += 1;
        }
    }
    update_connection(svc, &conn.tenant, conn.system, |c| {
        if c.relayed.is_some_and(|at| at >= until) {
            return false;
        }
        c.relayed = Some(until);
        true
    })
    .await?;
    Ok(queued)
}

/// The sync worker's push of one CRM change to one system (see the module docs). `None`
/// when the connection does not push the record's kind (any more) or the record is gone
/// (its delete is a change of its own).
pub async fn push(svc: &Services, msg: &SyncOutMessage) -> Result<Option<Outcome>, DomainError> {
    let Some(conn) = svc.store.connection(&msg.tenant, msg.system).await? else {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, "change for a connection that is gone; dropped");
        return Ok(None);
    };
    if field_sync::is_on(&conn) {
        return field_sync::push(svc, conn, msg).await;
    }
    if let Err(why) = pushed_stage(&conn, msg.record_kind)
        && msg.retry.is_none()
    {
        tracing::info!(tenant = %msg.tenant, system = %msg.system, change = %msg.change, reason = %why, "change not pushed");
        return Ok(None);
    }
    let log_id = sync_out_log_id(msg.system, &msg.change, msg.record_kind, &msg.record);
    if let Some(done) = svc.store.logs_by_id(&msg.tenant, std::slice::from_ref(&log_id)).await?.remove(&log_id) {
        return Ok(Some(done.outcome));
    }
    let ctx = Ctx::new(svc, conn, PushRun::SyncOut(msg.change.clone())).await?;
    if let Some(ext_id) = &msg.deleted {
        return delete(&ctx, msg, ext_id).await.map(Some);
    }
    let Some(record) = svc.store.record(&msg.tenant, msg.record_kind, &msg.record).await? else {
        tracing::info!(tenant = %msg.tenant, change = %msg.change, "record deleted since the change; nothing to push");
        return Ok(None);
    };
    // The records it refers to that are not in the system yet go first, as an export sends
    // them, so the record can name them there.
    let mut owners = Vec::new();
    let out = ctx.with_contacts_company(&record).await?;
    for (kind, id) in outgoing::references(&out) {
        if matches!(kind, RecordKind::Company | RecordKind::Contact) {
            ctx.unless_linked(&mut owners, kind, Some(&id)).await?;
        }
    }
    owners.sort_by_key(|(kind, _)| *kind != RecordKind::Company);
    for (kind, id) in owners {
        push_record(&ctx, kind, &id).await?;
    }
    let outcome = push_record(&ctx, record.kind(), record.id()).await?;
    tracing::info!(tenant = %msg.tenant, system = %msg.system, change = %msg.change, outcome = ?outcome, "change pushed");
    Ok(Some(outcome))
}

/// Whether an unlinked record may be created in the system by sync out, or the reason not.
async fn may_create(ctx: &Ctx<'_>, record: &Record) -> Result<(), DomainError> {
    let field = match record.kind() {
        RecordKind::Company => LookupField::Company,
        RecordKind::Contact => LookupField::Contact,
        _ => return Ok(()),
    };
    if !ctx.conn.settings.export_requires_opportunity {
        return Ok(());
    }
    match ctx.svc.store.lookup_ids(&ctx.t, RecordKind::Opportunity, field, record.id().as_str()).await?.is_empty() {
        true => Err(DomainError::refused("no opportunity")),
        false => Ok(()),
    }
}

/// Pushes one record as it is now (see the module docs); logged, and its outcome.
async fn push_record(ctx: &Ctx<'_>, kind: RecordKind, id: &RecordId) -> Result<Outcome, DomainError> {
    let Some(record) = ctx.svc.store.record(&ctx.t, kind, id).await? else {
        return Ok(Outcome::Skipped(SkipReason::NotLinked));
    };
    let ledger = ctx.ledger(&record).await?;
    let creatable = match &ledger {
        Some(_) => true,
        None => may_create(ctx, &record).await.is_ok(),
    };
    match decide_push(ctx.described, &record, ledger.as_ref(), creatable) {
        Push::Skip(SkipReason::NotLinked) if ledger.is_none() => skip(ctx, &record, SkipReason::NoOpportunity).await,
        Push::Skip(reason) => skip(ctx, &record, reason).await,
        Push::Echo => skip(ctx, &record, SkipReason::Echo).await,
        Push::Update { external_id, fields } if !ctx.conn.settings.auto_sync.inbound() => {
            // Push only: the CRM is the source; its changed fields go out, and the system's
            // changes to other fields stay there, not taken in.
            let Some(ledger) = ledger else { return Err(DomainError::internal("an update without a ledger")) };
            send_update(ctx, &record, ledger, &external_id, &fields).await
        }
        Push::Update { external_id, .. } => {
            // Two-way: the system's side first: what changed there since the last sync is
            // merged in (three-way), then only what the CRM still holds differently is sent.
            if !pull(ctx, kind, &external_id).await? {
                return Ok(Outcome::Skipped(SkipReason::Deleted));
            }
            let Some(record) = ctx.svc.store.record(&ctx.t, kind, id).await? else {
                return Ok(Outcome::Skipped(SkipReason::Deleted));
            };
            let Some(ledger) = ctx.ledger(&record).await? else {
                return Ok(Outcome::Skipped(SkipReason::Deleted));
            };
            let Push::Update { external_id, fields } = decide_push(ctx.described, &record, Some(&ledger), true) else {
                return skip(ctx, &record, SkipReason::Unchanged).await;
            };
            send_update(ctx, &record, ledger, &external_id, &fields).await
        }
        Push::Create { fields } => {
            let out = ctx.with_contacts_company(&record).await?;
            let linked = ctx.links(&outgoing::references(&out)).await?;
            let result = match outgoing::external(&ctx.conn, ctx.described, &out, "", &linked) {
                Ok(ext) => match ctx.similar(&ext).await? {
                    Some((found, matched)) => ctx.adopt(&record, &ext, found, &fields, matched).await?,
                    None => {
                        let answer = ctx.connector.create(&ext).await;
                        ctx.settle(&Pending { record: record.clone(), ext, fields }, answer).await?
                    }
                },
                Err(why) => ctx.refused(&record, why).await,
            };
            Ok(outcome_of(&result))
        }
    }
}

/// Sends `fields` of the linked `record` to the system's `external_id` (mapped as an
/// export maps it), logged; a record whose values have no counterpart there is refused.
async fn send_update(
    ctx: &Ctx<'_>,
    record: &Record,
    ledger: crate::ledger::Ledger,
    external_id: &str,
    fields: &[String],
) -> Result<Outcome, DomainError> {
    let out = ctx.with_contacts_company(record).await?;
    let linked = ctx.links(&outgoing::references(&out)).await?;
    let result = match outgoing::external(&ctx.conn, ctx.described, &out, external_id, &linked) {
        Ok(ext) => ctx.update(record, &ext, ledger, fields, None).await?,
        Err(why) => ctx.refused(record, why).await,
    };
    Ok(outcome_of(&result))
}

/// Reads the linked external record and takes in what changed there (the three-way merge
/// of sync in, logged as sync in). `false` when the system no longer has it: handled as
/// sync in handles a delete.
async fn pull(ctx: &Ctx<'_>, kind: RecordKind, external_id: &str) -> Result<bool, DomainError> {
    let Some(current) = ctx.connector.get(kind, external_id).await? else {
        sync_in::deleted(ctx.svc, &ctx.conn, kind, external_id).await?;
        return Ok(false);
    };
    let stage = Stage::of_kind(kind).ok_or_else(|| DomainError::internal(format!("no stage of {kind}")))?;
    let run = Run { direction: Direction::SyncIn, job: None, merge: Merge::ThreeWay };
    let applier = Applier::new(ctx.svc, &ctx.t, &ctx.conn, stage, run);
    let log_id = sync_in::sync_log_id(ctx.system, &current);
    applier.apply(std::slice::from_ref(&current), &[log_id]).await?;
    Ok(true)
}

fn outcome_of(result: &crate::export::ExportResult) -> Outcome {
    use crate::export::ExportOutcome;
    match (&result.outcome, result.message.as_deref()) {
        (ExportOutcome::Created, _) => Outcome::Created,
        (ExportOutcome::Updated, Some(note)) if note.starts_with("found in") => Outcome::Linked,
        (ExportOutcome::Updated, _) => Outcome::Updated,
        (ExportOutcome::Refused | ExportOutcome::Failed, message) => Outcome::Failed(message.unwrap_or("").into()),
    }
}

async fn skip(ctx: &Ctx<'_>, record: &Record, reason: SkipReason) -> Result<Outcome, DomainError> {
    let outcome = Outcome::Skipped(reason);
    let ext = record.link(ctx.system).map(|l| l.id.clone());
    ctx.log(record, ext.as_deref(), outcome.clone(), None, Vec::new()).await;
    Ok(outcome)
}

/// A CRM record deleted: with `propagate_deletes` its linked external record is deleted
/// and the link removed; otherwise the delete is only logged (the link stays).
async fn delete(ctx: &Ctx<'_>, msg: &SyncOutMessage, ext_id: &str) -> Result<Outcome, DomainError> {
    let (t, kind) = (&ctx.t, msg.record_kind);
    let key = (kind, ext_id.to_string());
    let ledger = ctx.svc.store.ledgers(t, ctx.system, std::slice::from_ref(&key)).await?.remove(&key);
    let ledger = ledger.filter(|l| l.crm_id == msg.record);
    let mut writes = Vec::new();
    let mut error = None;
    let outcome = match (&ledger, ctx.conn.settings.propagate_deletes) {
        (None, _) => Outcome::Skipped(SkipReason::NotLinked),
        (Some(_), false) => Outcome::Skipped(SkipReason::Deleted),
        (Some(ledger), true) => match ctx.connector.delete(kind, ext_id).await {
            Ok(()) => {
                writes.push(RecordStore::prepare_unlink(t, ledger));
                Outcome::Deleted
            }
            Err(e) if e.retryable => return Err(e.into()),
            Err(e) => {
                error = Some(crate::log::LogError::of(&e));
                Outcome::Failed(e.message)
            }
        },
    };
    let id = sync_out_log_id(ctx.system, &msg.change, kind, &msg.record);
    let entry = LogEntry {
        crm_id: Some(msg.record.clone()),
        external_id: Some(ext_id.to_string()),
        error,
        ..LogEntry::of(id, t, ctx.svc.clock.now(), ctx.system, Direction::SyncOut, kind, outcome.clone())
    };
    if matches!(outcome, Outcome::Failed(_)) {
        ctx.svc.events.failed(&crate::events::FailureEvent::of(&entry, &ctx.svc.tuning)).await;
    }
    writes.push(RecordStore::prepare_log(&entry)?);
    match ctx.svc.store.commit(writes).await {
        Ok(()) | Err(crate::ports::StoreError::Conflict(_)) => Ok(outcome),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[path = "sync_out_tests.rs"]
mod tests;
