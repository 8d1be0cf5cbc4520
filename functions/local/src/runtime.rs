//! The local runtime: the use cases' services on the embedded adapters (or on AWS
//! interfaces such as moto), with the work queue worked in-process, as SQS and the stage
//! Lambdas would in AWS: each message runs through the one dispatcher the Lambda handlers
//! use too ([`work::run`]), so rate-limited work waits and resumes here as there.

use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use tandem_connectors::Connectors;
use tandem_connectors::http::Settings;
use tandem_domain::job::Job;
use tandem_domain::ports::{Item, SystemClock, Table};
use tandem_domain::table::RecordStore;
use tandem_domain::usecases::work::{self, Ran};
use tandem_domain::usecases::{Services, Tuning};
use tandem_domain::usecases::{import, preview};
use tandem_domain::work::Route;
use tandem_domain::{DomainError, JobId, TenantId};
use tandem_embedded::sqlite::RECORDS_SCHEMA;
use tandem_embedded::{Embedded, MeteredTable, QueueConfig, SqliteTable};

use crate::aws::{self, AwsNames, SqsEventSource};

/// Where the services run.
#[derive(Clone)]
pub enum Backend {
    /// Embedded table, in-process queue, local secret store.
    Embedded(Arc<Embedded>),
    /// DynamoDB, SQS, Secrets Manager and EventBridge at an AWS-compatible endpoint.
    Aws(Arc<SqsEventSource>),
}

/// Services plus the queue worker.
#[derive(Clone)]
pub struct LocalRuntime {
    pub svc: Services,
    pub backend: Backend,
}

impl LocalRuntime {
    /// A runtime on the embedded adapters, persisted under `data_dir`, or without one on a
    /// scratch database removed when the runtime is dropped.
    pub fn new(data_dir: Option<&Path>, queue: QueueConfig, connectors: Settings) -> anyhow::Result<Self> {
        let embedded = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
                Embedded::open(dir, queue).with_context(|| format!("opening data directory {}", dir.display()))?
            }
            None => Embedded::scratch(queue).context("creating a scratch database")?,
        };
        let embedded = Arc::new(embedded);
        let svc = Services {
            store: RecordStore::new(embedded.table.clone()),
            queue: embedded.queue.clone(),
            secrets: embedded.secrets.clone(),
            connectors: Arc::new(Connectors::new(connectors)),
            clock: Arc::new(SystemClock),
            events: embedded.events.clone(),
            snapshots: embedded.snapshots.clone(),
            tuning: Tuning::default(),
            meter: Default::default(),
        };
        Ok(Self { svc, backend: Backend::Embedded(embedded) })
    }

    /// A runtime on the AWS adapters at `endpoint` (e.g. moto), creating the table and
    /// queues it needs if they are missing: the same services the Lambda functions build.
    pub async fn aws(endpoint: &str, names: &AwsNames, connectors: Settings) -> anyhow::Result<Self> {
        let sdk = aws::sdk_config(endpoint).await;
        let config = aws::provision(&sdk, names).await?;
        let mut svc = tandem_lambda::services(&sdk, &config);
        svc.connectors = Arc::new(Connectors::new(connectors));
        Ok(Self { svc, backend: Backend::Aws(Arc::new(SqsEventSource::new(&sdk, &config))) })
    }

    /// Puts a [`MeteredTable`] under the record store, adding `latency` to every store
    /// round trip (as DynamoDB would), and returns it to read the count from.
    pub fn meter_store(&mut self, latency: Duration) -> Arc<MeteredTable> {
        let metered = Arc::new(MeteredTable::new(self.svc.store.table().clone(), latency));
        self.svc.store = RecordStore::new(metered.clone());
        metered
    }

    /// The embedded adapters, when the runtime is on them.
    pub fn embedded(&self) -> Option<&Arc<Embedded>> {
        match &self.backend {
            Backend::Embedded(e) => Some(e),
            Backend::Aws(_) => None,
        }
    }

    /// Works queued messages for up to about `wait`; `false` when there were none.
    pub async fn work_once(&self, wait: Duration) -> anyhow::Result<bool> {
        match &self.backend {
            Backend::Embedded(embedded) => {
                let Some(delivery) = embedded.queue.receive(wait).await else { return Ok(false) };
                let max_receives = embedded.queue.config().max_receives;
                match work::run(&self.svc, &delivery.message).await {
                    // Ran, or its system limited our rate and a resume copy was sent.
                    Ok(Ran::Done | Ran::Waits(_)) => {
                        embedded.queue.ack(delivery.receipt);
                    }
                    // A resume not due yet: back in its group's place until it is due, as
                    // SQS holds it back by its visibility timeout.
                    Ok(Ran::NotDue(left)) => {
                        let reason = format!("{} is not due yet", delivery.message);
                        if delivery.receive_count >= max_receives {
                            tandem_lambda::dead_lettered(&self.svc, &delivery.message, delivery.receive_count, &reason)
                                .await;
                        }
                        embedded.queue.nack_with_reason(delivery.receipt, left, &reason);
                    }
                    Err(e) => {
                        // Only retryable errors reach here; back off and let the queue
                        // redeliver. On the last delivery the message is dead-lettered,
                        // and its flow records the failure (an import's job fails with
                        // the reason instead of staying "running").
                        let reason = e.to_string();
                        if delivery.receive_count >= max_receives {
                            tandem_lambda::dead_lettered(&self.svc, &delivery.message, delivery.receive_count, &reason)
                                .await;
                        }
                        let delay = Duration::from_millis(100u64 << delivery.receive_count.min(7));
                        tracing::warn!(work = %delivery.message, attempt = delivery.receive_count, error = %reason, "work failed, will retry");
                        embedded.queue.nack_with_reason(delivery.receipt, delay, &reason);
                    }
                }
                Ok(true)
            }
            Backend::Aws(source) => {
                let svc = &self.svc;
                let n = source
                    .poll_once(|route, event| async move {
                        Some(match route {
                            Route::Stage(stage) => tandem_lambda::run_stage_batch(svc, stage, event).await,
                            Route::Export => tandem_lambda::run_export_batch(svc, event).await,
                            Route::Sync => tandem_lambda::run_sync_batch(svc, event).await,
                        })
                    })
                    .await?;
                if n == 0 {
                    tokio::time::sleep(wait).await;
                }
                Ok(n > 0)
            }
        }
    }

    /// Spawns a worker working the queue until aborted.
    pub fn spawn_worker(&self) -> JoinHandle<()> {
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = rt.work_once(Duration::from_millis(250)).await {
                    tracing::error!(error = %e, "the queue worker failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    }

    /// Brings data imported from an earlier version (its records' layout below
    /// [`RECORDS_SCHEMA`]) up to date, once: the external versions record bodies kept
    /// before the sync ledger existed move into ledger entries, records gain the look-up
    /// entries of indexes added since (the company and contact a record belongs to), and
    /// running jobs are queued again from their checkpoints (the old queue did not outlive
    /// its process). Returns how many records changed. A database made by this version
    /// needs none of it and is not read, so a start takes no longer with more records.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let Backend::Embedded(embedded) = &self.backend else { return Ok(0) };
        let table = &embedded.table;
        if table.records_schema()? >= RECORDS_SCHEMA {
            return Ok(0);
        }
        let mut moved = 0;
        for_each_with_sort_key(table, "R", async |item| {
            let keys = RecordStore::legacy_ledger_keys(&item);
            if keys.is_empty() {
                return Ok(());
            }
            let existing = table.get_many(&keys).await?.into_iter().map(|i| (i.pk.clone(), i)).collect();
            if let Some(writes) = RecordStore::migrate_legacy_links(&item, &existing) {
                table.transact(writes).await?;
                moved += 1;
            }
            Ok(())
        })
        .await?;
        if moved > 0 {
            tracing::info!(
                records = moved,
                "moved the link versions of records written before the sync ledger into it"
            );
        }
        let mut indexed = 0;
        for_each_with_sort_key(table, "R", async |item| {
            let keys = RecordStore::index_keys(&item);
            if keys.is_empty() {
                return Ok(());
            }
            let existing = table.get_many(&keys).await?.into_iter().map(|i| (i.pk, i.sk)).collect();
            let repairs = RecordStore::index_repairs(&item, &existing);
            if !repairs.is_empty() {
                table.transact(repairs).await?;
                indexed += 1;
            }
            Ok(())
        })
        .await?;
        if indexed > 0 {
            tracing::info!(records = indexed, "added the look-up entries of records written before those indexes");
        }
        let mut resumed = 0;
        for_each_with_sort_key(table, "J", async |item| {
            let job: Job = match serde_json::from_value(item.body) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(pk = %item.pk, error = %e, "a stored job does not parse; not resumed");
                    return Ok(());
                }
            };
            if !job.status.is_final() {
                import::resume(&self.svc, &job.tenant, &job.id).await?;
                resumed += 1;
            }
            Ok(())
        })
        .await?;
        if resumed > 0 {
            tracing::info!(jobs = resumed, "queued the running jobs of the older version again from their checkpoints");
        }
        table.set_records_schema(RECORDS_SCHEMA)?;
        Ok(moved + indexed)
    }

    /// Works the queue until the job (an import or a preview) has ended; `on_progress`
    /// sees the job after each step.
    pub async fn run_until_done(
        &self,
        tenant: &TenantId,
        job: &JobId,
        on_progress: &dyn Fn(&Job),
    ) -> anyhow::Result<Job> {
        loop {
            self.work_once(Duration::from_millis(50)).await?;
            let j = match import::job(&self.svc, tenant, job).await {
                Err(DomainError::NotFound(_)) => preview::job(&self.svc, tenant, job).await?,
                other => other?,
            };
            on_progress(&j);
            if j.status.is_final() {
                return Ok(j);
            }
        }
    }
}

/// Runs `f` on every item whose sort key is `sk`, a page at a time.
async fn for_each_with_sort_key(
    table: &SqliteTable,
    sk: &str,
    mut f: impl AsyncFnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const PAGE: usize = 500;
    let mut after: Option<String> = None;
    loop {
        let page = table.items_with_sort_key(sk, after.as_deref(), PAGE)?;
        let full = page.len() == PAGE;
        after = page.last().map(|i| i.pk.clone());
        for item in page {
            f(item).await?;
        }
        if !full {
            return Ok(());
        }
    }
}
