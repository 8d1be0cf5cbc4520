//! Running one work message, whatever its kind ([`run`]): the one dispatcher the local
//! runner and the queue functions' handlers share, and where rate-limited work waits and
//! resumes instead of failing ([`crate::work::resume_after`]).

use std::time::Duration;

use crate::error::DomainError;
use crate::usecases::import::{self, Step};
use crate::usecases::{Services, export, sweep, sync_in, sync_out, usage};
use crate::work::{ResumeMessage, Waiting, Work, resume_after};

/// What became of a message [`run`] was given.
#[derive(Clone, Debug, PartialEq)]
pub enum Ran {
    /// It ran (or had nothing left to do): acknowledge it.
    Done,
    /// Its system limited our rate: a [`Work::Resume`] copy was sent to run it later, so
    /// acknowledge this one.
    Waits(ResumeMessage),
    /// A resume not due yet, for this long: it did not run. Hold it back that long (the
    /// message itself, not a copy), then it comes back and runs.
    NotDue(Duration),
}

/// Runs `work`: a resume that is due runs the work it carries exactly as a fresh message
/// of that kind; one not due yet does not run ([`Ran::NotDue`]). When the work fails
/// because its system limited our rate, the resume copy is sent through the work queue
/// (before the caller acknowledges the original: a crash in between leaves a duplicate,
/// which every handler takes idempotently, never a loss) and the wait is logged with the
/// resume time. Any other failure is returned as it was.
pub async fn run(svc: &Services, work: &Work) -> Result<Ran, DomainError> {
    if let Work::Resume(resume) = work
        && let Some(left) = resume.left(svc.clock.now())
    {
        tracing::info!(work = %resume.work, resume_at = %resume.not_before, left_s = left.as_secs(), "not due yet");
        return Ok(Ran::NotDue(left));
    }
    // The calls the work makes are counted against its connection's API budget.
    let scoped = usage::scoped(svc);
    let result = dispatch(&scoped, work.underlying()).await;
    usage::record(&scoped).await;
    let Err(error) = result else { return Ok(Ran::Done) };
    let Some(resume) = resume_after(work, &error, svc.clock.now()) else { return Err(error) };
    let system = match &error {
        DomainError::Connector(e) => e.system.display_name(),
        _ => "the system",
    };
    svc.queue.send(&Work::Resume(resume.clone())).await?;
    tracing::warn!(
        work = %resume.work, resume_at = %resume.not_before, waits = resume.waits, error = %error,
        "rate limited by {system}; the work waits and resumes"
    );
    // Noted for the connection's health view; the wait does not depend on the note.
    let waiting = Waiting::of(&resume, &error.to_string());
    if let Err(e) = svc.store.save_waiting(&resume.work.dedup_id(), &waiting).await {
        tracing::warn!(work = %resume.work, error = %e, "the wait could not be noted for the health view");
    }
    Ok(Ran::Waits(resume))
}

/// Runs one message of a kind that is not a resume: one arm per kind.
async fn dispatch(svc: &Services, work: &Work) -> Result<(), DomainError> {
    match work {
        Work::ImportPage(msg) => match import::run_page(svc, msg).await? {
            Step::Page { job, stage, counts } => tracing::info!(
                tenant = %msg.tenant, job = %job.id, stage = %stage, records = counts.records(),
                next_stage = ?job.current_stage(), status = ?job.status, "page imported"
            ),
            Step::Stale => tracing::info!(
                tenant = %msg.tenant, job = %msg.job_id, stage = %msg.stage,
                "nothing to do: the job is unknown or ended, or this page was handled already"
            ),
        },
        Work::Export(msg) => {
            if let Some(done) = export::run(svc, msg).await? {
                tracing::info!(tenant = %msg.tenant, export = %done.id, status = ?done.status, records = done.results.len(), "export ran");
            }
        }
        Work::SyncRecord(msg) => {
            sync_in::apply_notice(svc, msg).await?;
        }
        Work::SyncPoll(msg) => {
            let outcomes = sync_in::run_poll(svc, msg).await?;
            tracing::info!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, records = outcomes.len(), "poll page applied");
        }
        Work::SyncSweep(msg) => {
            sweep::run_sweep(svc, msg).await?;
        }
        Work::SyncOut(msg) => {
            sync_out::push(svc, msg).await?;
        }
        Work::Resume(_) => {
            return Err(DomainError::internal(format!("{work} carries another resume, which is never built")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportMessage;
    use crate::ids::{JobId, System, TenantId};
    use crate::usecases::testing::{FakeConnector, world};

    fn export(id: &str) -> Work {
        Work::Export(ExportMessage {
            tenant: TenantId::parse("acme").expect("a tenant"),
            system: System::ConnectWise,
            export_id: JobId::from_raw(id),
        })
    }

    #[tokio::test]
    async fn a_resume_not_due_yet_does_not_run_and_says_how_long_is_left() {
        let w = world(FakeConnector::default());
        let not_before = w.svc.clock.now().plus_seconds(90);
        let resume = Work::Resume(ResumeMessage { not_before, waits: 1, work: Box::new(export("e-1")) });
        assert_eq!(run(&w.svc, &resume).await.expect("runs"), Ran::NotDue(Duration::from_secs(90)));
        assert!(w.queue.pop_work().is_none(), "nothing sent");
        w.clock.advance(90);
        assert_eq!(run(&w.svc, &resume).await.expect("runs"), Ran::Done, "due: the export runs (there is none)");
        assert!(w.queue.pop_work().is_none(), "nothing sent");
    }
}
