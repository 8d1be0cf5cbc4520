//! [`EmbeddedEvents`]: the EventBridge stand-in. Failed-record and failed-job events are
//! written to the log as warnings and kept in memory (the newest [`EmbeddedEvents::KEPT`]) for the
//! local runner and tests to read.

use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tandem_domain::events::FailureEvent;
use tandem_domain::job::{Job, JobStatus};
use tandem_domain::ports::EventPublisher;

/// An in-memory event publisher (see the module docs).
#[derive(Default)]
pub struct EmbeddedEvents {
    published: Mutex<VecDeque<FailureEvent>>,
    failed_jobs: Mutex<VecDeque<Job>>,
}

impl EmbeddedEvents {
    /// How many events are kept; older ones are dropped.
    pub const KEPT: usize = 10_000;

    /// A publisher that has published nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events published so far (the newest [`EmbeddedEvents::KEPT`]), oldest first.
    pub fn published(&self) -> Vec<FailureEvent> {
        self.lock().iter().cloned().collect()
    }

    /// The job-failed events published so far (the newest [`EmbeddedEvents::KEPT`]), oldest first.
    pub fn failed_jobs(&self) -> Vec<Job> {
        self.failed_jobs.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// Forgets the events published so far.
    pub fn clear(&self) {
        self.lock().clear();
        self.failed_jobs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<FailureEvent>> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventPublisher for EmbeddedEvents {
    async fn failed(&self, event: &FailureEvent) {
        tracing::warn!(
            tenant = %event.tenant,
            system = %event.system,
            object = %event.record.kind,
            external_id = event.record.external_id.as_deref().unwrap_or("-"),
            reason = %event.error.message,
            log = %event.link.path,
            "record failed"
        );
        let mut published = self.lock();
        if published.len() >= Self::KEPT {
            published.pop_front();
        }
        published.push_back(event.clone());
    }

    async fn job_failed(&self, job: &Job) {
        let reason = match &job.status {
            JobStatus::Failed(why) => why.as_str(),
            _ => "-",
        };
        tracing::warn!(tenant = %job.tenant, system = %job.system, job = %job.id, reason, "job failed");
        let mut kept = self.failed_jobs.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= Self::KEPT {
            kept.pop_front();
        }
        kept.push_back(job.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::log::{Direction, LogEntry, Outcome};
    use tandem_domain::usecases::Tuning;
    use tandem_domain::{RecordKind, System, TenantId, Timestamp};

    #[tokio::test]
    async fn published_failures_are_kept_in_order() {
        let events = EmbeddedEvents::new();
        for id in ["a", "b"] {
            let entry = LogEntry {
                id: id.into(),
                tenant: TenantId::parse("acme").unwrap(),
                at: Timestamp::from_unix(1_700_000_000).unwrap(),
                system: System::ConnectWise,
                direction: Direction::Import,
                object: RecordKind::Company,
                crm_id: None,
                external_id: Some("42".into()),
                outcome: Outcome::Failed("name is required".into()),
                job_id: None,
                matched: None,
                fields: Vec::new(),
                conflicts: Vec::new(),
                error: None,
            };
            events.failed(&FailureEvent::of(&entry, &Tuning::default())).await;
        }
        let ids: Vec<String> = events.published().into_iter().map(|e| e.log_id).collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
