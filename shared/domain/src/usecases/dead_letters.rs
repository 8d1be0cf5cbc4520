//! Dead letters a tenant can list and redrive (`GET /dead-letters`,
//! `POST /dead-letters/{id}/redrive`, issue 14): every work message that fails on its
//! last delivery is [`record`]ed under its tenant by the one hook both queue backends call
//! (`tandem_lambda::dead_lettered`), [`list`]ed newest first, and [`redrive`]n on request.
//!
//! A redrive runs the work again now, through the flow's own way back:
//! - an import page resumes its job from the job's checkpoint ([`import::resume`]: the job
//!   the dead letter failed runs again under a new attempt, so its message has a new
//!   deduplication id and the dead page's old attempt is stale);
//! - an export is set running again (if the dead letter failed it) and its message sent;
//! - any other work (sync in, poll and reconciliation pages, sync out) is sent again.
//!
//! What is sent (for the last two) is a [`Work::Resume`] of the work, due now, whose wait
//! count is the redrive's number: it goes where the work goes, in its FIFO group, and is
//! deduplicated apart from the work itself and from every earlier redrive, so the queue's
//! deduplication window never drops it. Every flow takes its work idempotently, so a
//! redrive of work that meanwhile ran does no harm.

use serde::Serialize;

use crate::dead_letter::DeadLetter;
use crate::error::DomainError;
use crate::export::ExportStatus;
use crate::ids::TenantId;
use crate::ports::StoreError;
use crate::usecases::{Services, export, import};
use crate::work::{ResumeMessage, Work};

/// The most dead letters one page lists.
pub const MAX_LIMIT: usize = 1000;
/// How many a page lists when not told.
pub const DEFAULT_LIMIT: usize = 100;

/// One page of a tenant's dead letters, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    /// The token of the next page (`?token=`); `null` at the end.
    pub next: Option<String>,
}

/// Records that `work` failed on delivery `receives` with `reason`, under its tenant.
/// The same message reported again (a retried hook) is recorded once: `false` then.
pub async fn record(svc: &Services, work: &Work, receives: u32, reason: &str) -> Result<bool, DomainError> {
    let entry = DeadLetter::of(work, receives, reason, svc.clock.now())
        .map_err(|e| DomainError::internal(format!("cannot encode the dead-lettered {work}: {e}")))?;
    let new = svc.store.save_dead_letter(&entry).await?;
    if new {
        tracing::info!(tenant = %entry.tenant, id = %entry.id, work = %work, receives, "dead letter recorded");
    }
    Ok(new)
}

/// One page of tenant `t`'s dead letters, newest first: at most `limit` (1-1000, default
/// 100), from `token` (the previous page's `next`). A token the store did not issue is
/// refused as invalid.
pub async fn list(
    svc: &Services,
    t: &TenantId,
    limit: Option<usize>,
    token: Option<String>,
) -> Result<DeadLetterPage, DomainError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(DomainError::invalid(format!("limit {limit} is out of range (1-{MAX_LIMIT})")));
    }
    let (dead_letters, next) = svc.store.dead_letters(t, token, limit).await.map_err(|e| match e {
        StoreError::InvalidToken(why) => {
            DomainError::invalid(format!("token: not a paging token of this list ({why})"))
        }
        other => other.into(),
    })?;
    Ok(DeadLetterPage { dead_letters, next })
}

/// Sends tenant `t`'s dead letter `id` back to run now (see the module docs) and counts
/// the redrive on the entry; answers the entry. An id of another shape is invalid; one
/// the tenant does not have (another tenant's included) is not found; work whose flow has
/// ended (a completed job or export) or a preview's page is refused.
pub async fn redrive(svc: &Services, t: &TenantId, id: &str) -> Result<DeadLetter, DomainError> {
    if !DeadLetter::is_id(id) {
        return Err(DomainError::invalid(format!(
            "dead letter id {id:?} is not one Tandem issues (`dl-` and 16 hex digits)"
        )));
    }
    let entry =
        svc.store.dead_letter(t, id).await?.ok_or_else(|| DomainError::not_found(format!("no dead letter {id:?}")))?;
    let work = Work::decode(&entry.work.to_string()).map_err(|e| {
        DomainError::refused(format!("dead letter {id:?} holds a message this version cannot run: {e}"))
    })?;
    let work = work.underlying().clone();
    if work.connection().0 != t {
        // Never written so (an entry is keyed by its work's tenant); refused all the same.
        return Err(DomainError::not_found(format!("no dead letter {id:?}")));
    }
    let now = svc.clock.now();
    let resend = |work: Work| {
        Work::Resume(ResumeMessage { not_before: now, waits: entry.redrives.saturating_add(1), work: Box::new(work) })
    };
    match &work {
        Work::ImportPage(msg) if msg.dry_run => {
            return Err(DomainError::refused(format!(
                "dead letter {id:?} is a page of preview {}; start the preview again",
                msg.job_id
            )));
        }
        Work::ImportPage(msg) => {
            import::resume(svc, t, &msg.job_id).await?;
        }
        Work::Export(msg) => {
            reopen_export(svc, t, &msg.export_id).await?;
            svc.queue.send(&resend(work.clone())).await?;
        }
        _ => svc.queue.send(&resend(work.clone())).await?,
    }
    tracing::info!(tenant = %t, id, work = %work, redrives = entry.redrives + 1, "dead letter redriven");
    count_redrive(svc, entry, now).await
}

/// Sets export `id`, failed (by its dead letter, or by what the redrive is to get past),
/// running again; a running one is left so; a done one is refused.
async fn reopen_export(svc: &Services, t: &TenantId, id: &crate::ids::JobId) -> Result<(), DomainError> {
    for _ in 0..5 {
        let mut x = export::export(svc, t, id).await?;
        match x.status {
            ExportStatus::Running => return Ok(()),
            ExportStatus::Done => {
                return Err(DomainError::refused(format!("export {id} is done; start a new export")));
            }
            ExportStatus::Failed => {}
        }
        x.status = ExportStatus::Running;
        x.message = None;
        x.updated_at = svc.clock.now();
        match svc.store.save_export(&x).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("export {id} kept changing"))))
}

/// Counts one more redrive of `entry` at `now` (read again when someone else wrote it).
async fn count_redrive(
    svc: &Services,
    mut entry: DeadLetter,
    now: crate::normalise::Timestamp,
) -> Result<DeadLetter, DomainError> {
    for _ in 0..5 {
        let mut next = entry.clone();
        next.redrives = next.redrives.saturating_add(1);
        next.redriven_at = Some(now);
        match svc.store.save_dead_letter(&next).await {
            Ok(_) => {
                next.version += 1;
                return Ok(next);
            }
            Err(StoreError::Conflict(_)) => {
                match svc.store.dead_letter(&entry.tenant, &entry.id).await? {
                    Some(again) => entry = again,
                    // Expired meanwhile: the work was sent all the same.
                    None => return Ok(next),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("dead letter {} kept changing", entry.id))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportMessage;
    use crate::ids::{JobId, RecordId, RecordKind, System};
    use crate::sync::SyncOutMessage;
    use crate::usecases::testing::{FakeConnector, world};

    fn acme() -> TenantId {
        TenantId::parse("acme").expect("a tenant")
    }

    fn push(tenant: &TenantId, change: &str) -> Work {
        Work::SyncOut(SyncOutMessage {
            tenant: tenant.clone(),
            system: System::Halo,
            record_kind: RecordKind::Company,
            record: RecordId::from_raw("c-1"),
            change: change.into(),
            deleted: None,
            retry: None,
        })
    }

    #[tokio::test]
    async fn a_message_reported_dead_twice_is_recorded_once() {
        let w = world(FakeConnector::default());
        assert!(record(&w.svc, &push(&acme(), "v1"), 5, "503").await.expect("recorded"));
        w.clock.advance(3);
        assert!(!record(&w.svc, &push(&acme(), "v1"), 5, "503 again").await.expect("tolerated"));
        let page = list(&w.svc, &acme(), None, None).await.expect("listed");
        assert_eq!(page.dead_letters.len(), 1, "{page:?}");
        let entry = &page.dead_letters[0];
        assert_eq!((entry.kind.as_str(), entry.receives, entry.reason.as_str()), ("sync_out", 5, "503"));
        assert_eq!(Work::decode(&entry.work.to_string()).expect("the message"), push(&acme(), "v1"));
        assert_eq!((entry.redrives, entry.redriven_at), (0, None));
        assert_eq!(entry.expires_at.unix() - entry.at.unix(), 14 * 86_400);
    }

    #[tokio::test]
    async fn the_list_is_newest_first_paged_and_holds_only_the_tenants_own_dead_letters() {
        let w = world(FakeConnector::default());
        let other = TenantId::parse("other").expect("a tenant");
        for n in 0..5 {
            record(&w.svc, &push(&acme(), &format!("v{n}")), 5, &format!("failure {n}")).await.expect("recorded");
            record(&w.svc, &push(&other, &format!("o{n}")), 5, "theirs").await.expect("recorded");
            w.clock.advance(1);
        }
        let mut reasons = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = list(&w.svc, &acme(), Some(2), token).await.expect("a page");
            assert!(page.dead_letters.len() <= 2);
            assert!(page.dead_letters.iter().all(|d| d.tenant == acme()), "{page:?}");
            reasons.extend(page.dead_letters.into_iter().map(|d| d.reason));
            pages += 1;
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(reasons, ["failure 4", "failure 3", "failure 2", "failure 1", "failure 0"]);
        assert!(pages >= 3, "paged by two: {pages} pages");
        assert!(matches!(list(&w.svc, &acme(), Some(0), None).await, Err(DomainError::Invalid(_))));
        let bad = list(&w.svc, &acme(), Some(2), Some("garbage".into())).await.expect_err("not a token");
        assert!(matches!(&bad, DomainError::Invalid(m) if m.contains("token")), "{bad}");
    }

    #[tokio::test]
    async fn another_tenants_dead_letter_is_not_found_and_a_malformed_id_is_refused_naming_it() {
        let w = world(FakeConnector::default());
        let other = TenantId::parse("other").expect("a tenant");
        record(&w.svc, &push(&other, "v1"), 5, "theirs").await.expect("recorded");
        let theirs = list(&w.svc, &other, None, None).await.expect("listed").dead_letters.remove(0);
        assert!(list(&w.svc, &acme(), None, None).await.expect("listed").dead_letters.is_empty());
        let err = redrive(&w.svc, &acme(), &theirs.id).await.expect_err("not acme's");
        assert!(matches!(err, DomainError::NotFound(_)), "{err}");
        assert!(w.queue.pop_work().is_none(), "nothing sent");
        let err = redrive(&w.svc, &acme(), "../x").await.expect_err("not an id");
        assert!(matches!(&err, DomainError::Invalid(m) if m.contains("../x")), "{err}");
        let untouched = list(&w.svc, &other, None, None).await.expect("listed").dead_letters.remove(0);
        assert_eq!(untouched.redrives, 0);
    }

    #[tokio::test]
    async fn a_redrive_sends_a_copy_due_now_that_the_queue_does_not_drop_as_a_duplicate_and_counts_it() {
        let w = world(FakeConnector::default());
        let work = push(&acme(), "v1");
        record(&w.svc, &work, 5, "503").await.expect("recorded");
        let id = list(&w.svc, &acme(), None, None).await.expect("listed").dead_letters[0].id.clone();

        w.clock.advance(60);
        let first = redrive(&w.svc, &acme(), &id).await.expect("redriven");
        assert_eq!((first.redrives, first.redriven_at), (1, Some(w.svc.clock.now())));
        let sent = w.queue.pop_work().expect("a message sent");
        let Work::Resume(resume) = &sent else { panic!("a resume: {sent:?}") };
        assert_eq!((&*resume.work, resume.left(w.svc.clock.now())), (&work, None), "the work itself, due now");
        assert_eq!((sent.route(), sent.group_id()), (work.route(), work.group_id()));
        assert_ne!(sent.dedup_id(), work.dedup_id(), "not dropped as the dead message's duplicate");

        // Redriven again at once (same instant): still a message of its own.
        let second = redrive(&w.svc, &acme(), &id).await.expect("redriven again");
        assert_eq!(second.redrives, 2);
        let again = w.queue.pop_work().expect("sent again");
        assert_ne!(again.dedup_id(), sent.dedup_id(), "not dropped as the first redrive's duplicate");
        let stored = list(&w.svc, &acme(), None, None).await.expect("listed").dead_letters.remove(0);
        assert_eq!((stored.redrives, stored.redriven_at), (2, Some(w.svc.clock.now())));
    }

    #[tokio::test]
    async fn a_redriven_export_that_its_dead_letter_failed_runs_again() {
        let w = world(FakeConnector::default());
        let now = w.svc.clock.now();
        let x = crate::export::Export {
            id: JobId::from_raw("x-1"),
            tenant: acme(),
            system: System::Halo,
            kind: RecordKind::Company,
            record: RecordId::from_raw("c-1"),
            include: Vec::new(),
            status: ExportStatus::Running,
            results: Vec::new(),
            message: None,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        w.svc.store.save_export(&x).await.expect("saved");
        let msg = ExportMessage { tenant: acme(), system: System::Halo, export_id: x.id.clone() };
        let work = Work::Export(msg.clone());
        export::dead_lettered(&w.svc, &msg, 5, "503").await.expect("failed");
        assert_eq!(export::export(&w.svc, &acme(), &x.id).await.expect("read").status, ExportStatus::Failed);
        record(&w.svc, &work, 5, "503").await.expect("recorded");
        let id = DeadLetter::id_of(&work, 5);

        redrive(&w.svc, &acme(), &id).await.expect("redriven");
        let reopened = export::export(&w.svc, &acme(), &x.id).await.expect("read");
        assert_eq!((reopened.status, reopened.message), (ExportStatus::Running, None));
        assert_eq!(w.queue.pop_work().expect("sent").underlying(), &work);
    }
}
