//! Tandem's adapters for one machine: [`EmbeddedTable`] (DynamoDB), [`EmbeddedQueue`]
//! (SQS FIFO with a dead-letter list), [`LocalSecretStore`] (Secrets Manager) and
//! [`EmbeddedEvents`] (EventBridge), plus the [`conformance`] suite that these and the
//! AWS adapters all pass. Used by the local runner and by tests.

pub mod conformance;
pub mod error;
pub mod events;
pub mod queue;
pub mod secrets;
pub mod table;

use std::path::Path;
use std::sync::Arc;

use tandem_domain::table::RecordStore;

pub use error::OpenError;
pub use events::EmbeddedEvents;
pub use queue::{DeadLetter, Delivery, EmbeddedQueue, QueueConfig, QueueStats};
pub use secrets::LocalSecretStore;
pub use table::EmbeddedTable;

/// Every embedded adapter, built together for the local runner and tests.
#[derive(Clone)]
pub struct Embedded {
    /// The item table.
    pub table: Arc<EmbeddedTable>,
    /// The stage queue (never persisted).
    pub queue: Arc<EmbeddedQueue>,
    /// The secret store.
    pub secrets: Arc<LocalSecretStore>,
    /// The failure-event publisher.
    pub events: Arc<EmbeddedEvents>,
}

impl Embedded {
    /// Adapters that keep everything in memory.
    pub fn in_memory(queue: QueueConfig) -> Self {
        Self {
            table: Arc::new(EmbeddedTable::in_memory()),
            queue: Arc::new(EmbeddedQueue::new(queue)),
            secrets: Arc::new(LocalSecretStore::in_memory()),
            events: Arc::new(EmbeddedEvents::new()),
        }
    }

    /// Adapters persisting the table (`dir/table.log`) and the secrets
    /// (`dir/secrets.json`) in `dir`, created if missing. The queue and the events stay
    /// in memory.
    pub fn open(dir: &Path, queue: QueueConfig) -> Result<Self, OpenError> {
        Ok(Self {
            table: Arc::new(EmbeddedTable::open(dir)?),
            queue: Arc::new(EmbeddedQueue::new(queue)),
            secrets: Arc::new(LocalSecretStore::open(dir)?),
            events: Arc::new(EmbeddedEvents::new()),
        })
    }

    /// The record store over the table.
    pub fn record_store(&self) -> RecordStore {
        RecordStore::new(self.table.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::ports::{SecretStore, Table};

    #[tokio::test]
    async fn the_in_memory_table_passes_the_conformance_suite() {
        conformance::table_suite(Arc::new(EmbeddedTable::in_memory())).await;
    }

    #[tokio::test]
    async fn a_persisted_table_passes_the_conformance_suite_before_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        conformance::table_suite(Arc::new(EmbeddedTable::open(dir.path()).unwrap())).await;
        let reopened = EmbeddedTable::open(dir.path()).unwrap();
        assert!(!reopened.is_empty(), "the first run's items survived");
        conformance::table_suite(Arc::new(reopened)).await;
    }

    #[tokio::test]
    async fn one_table_shared_by_parallel_suites_passes_them_all() {
        let table: Arc<dyn Table> = Arc::new(EmbeddedTable::in_memory());
        let runs: Vec<_> = (0..3).map(|_| tokio::spawn(conformance::table_suite(table.clone()))).collect();
        for run in runs {
            run.await.unwrap();
        }
    }

    #[tokio::test]
    async fn the_in_memory_secret_store_passes_the_conformance_suite() {
        conformance::secret_suite(Arc::new(LocalSecretStore::in_memory())).await;
    }

    #[tokio::test]
    async fn a_persisted_secret_store_passes_the_conformance_suite_and_keeps_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalSecretStore::open(dir.path()).unwrap());
        conformance::secret_suite(store.clone()).await;
        let names = store.names();
        let reopened: Arc<dyn SecretStore> = Arc::new(LocalSecretStore::open(dir.path()).unwrap());
        assert_eq!(names.len(), 2);
        conformance::secret_suite(reopened).await;
    }

    #[tokio::test]
    async fn embedded_adapters_open_in_one_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = tandem_domain::TenantId::parse("acme").unwrap();
        {
            let e = Embedded::open(dir.path(), QueueConfig::default()).unwrap();
            let job = tandem_domain::job::Job {
                tenant: tenant.clone(),
                id: tandem_domain::JobId::from_raw("j1"),
                system: tandem_domain::System::ConnectWise,
                stages: vec![tandem_domain::Stage::Companies],
                current: 0,
                cursor: Default::default(),
                status: tandem_domain::job::JobStatus::Running,
                progress: Default::default(),
                created_at: tandem_domain::Timestamp::from_unix(1_700_000_000).unwrap(),
                updated_at: tandem_domain::Timestamp::from_unix(1_700_000_000).unwrap(),
                version: 0,
            };
            e.record_store().save_job(&job).await.unwrap();
        }
        let e = Embedded::open(dir.path(), QueueConfig::default()).unwrap();
        let job = e.record_store().job(&tenant, &tandem_domain::JobId::from_raw("j1")).await.unwrap();
        assert_eq!(job.map(|j| j.version), Some(1));
        assert!(dir.path().join(table::LOG_FILE).exists());
    }
}
