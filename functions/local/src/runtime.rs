//! The local runtime: builds the use cases' services on the embedded adapters and drains
//! the stage queue in-process, as SQS + the stage Lambdas would in AWS.

use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use tandem_connectors::Connectors;
use tandem_connectors::http::Settings;
use tandem_domain::ports::SystemClock;
use tandem_domain::table::RecordStore;
use tandem_domain::usecases::Services;
use tandem_domain::usecases::import::{self, Step};
use tandem_domain::{JobId, TenantId};
use tandem_embedded::{Embedded, QueueConfig};

/// Services on embedded adapters plus the queue worker.
#[derive(Clone)]
pub struct LocalRuntime {
    pub svc: Services,
    pub embedded: Arc<Embedded>,
}

impl LocalRuntime {
    /// A runtime in memory, or persisted under `data_dir`.
    pub fn new(data_dir: Option<&Path>, queue: QueueConfig, connectors: Settings) -> anyhow::Result<Self> {
        let embedded = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
                Embedded::open(dir, queue).with_context(|| format!("opening data directory {}", dir.display()))?
            }
            None => Embedded::in_memory(queue),
        };
        let embedded = Arc::new(embedded);
        let svc = Services {
            store: RecordStore::new(embedded.table.clone()),
            queue: embedded.queue.clone(),
            secrets: embedded.secrets.clone(),
            connectors: Arc::new(Connectors::new(connectors)),
            clock: Arc::new(SystemClock),
            events: embedded.events.clone(),
        };
        Ok(Self { svc, embedded })
    }

    /// Handles one queued message if one arrives within `wait`; `None` when none did.
    pub async fn work_once(&self, wait: Duration) -> Option<Result<Step, String>> {
        let delivery = self.embedded.queue.receive(wait).await?;
        let result = import::run_page(&self.svc, &delivery.message).await;
        Some(match result {
            Ok(step) => {
                self.embedded.queue.ack(delivery.receipt);
                Ok(step)
            }
            Err(e) => {
                // Only retryable errors reach here; back off and let the queue redeliver.
                let delay = Duration::from_millis(100u64 << delivery.receive_count.min(7));
                tracing::warn!(job = %delivery.message.job_id, attempt = delivery.receive_count, error = %e, "page failed, will retry");
                self.embedded.queue.nack_with_reason(delivery.receipt, delay, &e.to_string());
                Err(e.to_string())
            }
        })
    }

    /// Spawns a worker draining the queue forever, calling `on_step` after each page.
    pub fn spawn_worker<F>(&self, on_step: F) -> JoinHandle<()>
    where
        F: Fn(&Step) + Send + Sync + 'static,
    {
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                if let Some(Ok(step)) = rt.work_once(Duration::from_millis(250)).await {
                    on_step(&step);
                }
            }
        })
    }

    /// Re-queues every running job of `tenant` from its checkpoint (after a restart).
    pub async fn resume_running(&self, tenant: &TenantId) -> anyhow::Result<Vec<JobId>> {
        let mut resumed = Vec::new();
        for job in self.svc.store.jobs(tenant, 100).await? {
            if !job.status.is_final() {
                import::resume(&self.svc, tenant, &job.id).await?;
                resumed.push(job.id);
            }
        }
        Ok(resumed)
    }

    /// Waits until the job has ended, working the queue meanwhile; `on_step` sees each page.
    pub async fn run_until_done(&self, tenant: &TenantId, job: &JobId, on_step: &dyn Fn(&Step)) -> anyhow::Result<()> {
        loop {
            if let Some(Ok(step)) = self.work_once(Duration::from_millis(100)).await {
                on_step(&step);
            }
            let j = import::job(&self.svc, tenant, job).await?;
            if j.status.is_final() {
                return Ok(());
            }
        }
    }
}
