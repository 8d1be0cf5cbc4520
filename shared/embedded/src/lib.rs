//! Tandem's adapters for one machine: [`SqliteTable`] (DynamoDB), [`EmbeddedQueue`]
//! (SQS FIFO with a dead-letter list, durable in the same database), [`LocalSecretStore`]
//! (Secrets Manager), [`EmbeddedEvents`] (EventBridge) and [`DirSnapshots`] (S3, for
//! snapshots), plus the [`conformance`] suite that these and the AWS adapters all pass.
//! Used by the local runner and by tests.
//!
//! A data directory (`Embedded::open(dir, ..)`) holds `tandem.db` (the SQLite database:
//! the item table, see [`sqlite`], and the queue's journal, see [`journal`]) with its WAL
//! files, `secrets.sealed.json` and `secrets.key` (see [`secrets`], [`sealing`]),
//! `snapshots/` (see [`snapshots`]) and `tandem.lock`. A directory written by a version
//! before SQLite holds `table.log` instead: it is imported into `tandem.db` once on open
//! (see [`legacy`]). It belongs to one
//! process at a time: [`Embedded::open`] first takes an exclusive operating-system lock
//! on `dir/tandem.lock` (`File::try_lock`, an `flock` on unix) before it reads anything,
//! and writes its process id into that file. A second open, from another process or from
//! the same one, is refused with [`OpenError::InUse`] naming the holder's pid. The lock
//! is held as long as the [`Embedded`] value or any of its persisted adapters
//! ([`SqliteTable`], [`LocalSecretStore`]) lives, and the operating system releases it
//! when the process ends, however it ends, so a crash never leaves a stale lock (the
//! file itself stays, with the last holder's pid, and means nothing unlocked).
//! [`SqliteTable::open`] and [`LocalSecretStore::open`] called on their own take no
//! lock: they are for tests and tools that own the directory already. The `sqlite3`
//! shell may read the database while Tandem runs (`sqlite3 -readonly tandem.db`): WAL
//! lets readers in beside the one writer.
//!
//! The data is personal (CRM records) and secret (credentials), so the directory is
//! created with mode 0700 (an existing one is tightened to 0700 when this user may change
//! it) and the files Tandem creates in it are created with mode 0600, existing ones
//! tightened to 0600 when opened (unix; elsewhere the platform's defaults apply). SQLite
//! creates its `-wal` and `-shm` files with the database file's mode.
//!
//! `Embedded::open` opens the secrets before the table: the secrets are only read, while
//! opening the table may import an old log, so a start that fails on a bad secrets file
//! leaves the directory as it was.

pub mod conformance;
pub mod error;
pub mod events;
pub mod journal;
pub mod legacy;
pub mod metered;
pub mod queue;
pub mod sealing;
pub mod secrets;
pub mod snapshots;
pub mod sqlite;

use std::fs::{File, TryLockError};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tandem_domain::table::RecordStore;

pub use error::OpenError;
pub use events::EmbeddedEvents;
pub use metered::MeteredTable;
pub use queue::{DeadLetter, Delivery, EmbeddedQueue, QueueConfig, QueueStats};
pub use secrets::LocalSecretStore;
pub use snapshots::{DirSnapshots, SharedMemSnapshots};
pub use sqlite::SqliteTable;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "tandem.lock";

/// Owner-only directories and files (modes 0700 and 0600 on unix).
pub(crate) mod private_fs {
    use std::fs::{self, OpenOptions};
    use std::io;
    use std::path::Path;

    /// The mode of a data directory.
    #[cfg(unix)]
    pub(crate) const DIR_MODE: u32 = 0o700;
    /// The mode of every data file.
    #[cfg(unix)]
    pub(crate) const FILE_MODE: u32 = 0o600;

    /// Creates `dir` with mode 0700 (missing parents with the usual mode), or tightens
    /// an existing one to 0700. Tightening is best effort: a directory this user may not
    /// change (another user's) is left as it is, with a warning.
    pub(crate) fn prepare_dir(dir: &Path) -> io::Result<()> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(DIR_MODE);
        }
        match builder.create(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                tighten_dir(dir);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    #[cfg(unix)]
    fn tighten_dir(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = fs::metadata(dir) else { return };
        if meta.permissions().mode() & 0o7777 == DIR_MODE {
            return;
        }
        if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot restrict the data directory to its owner (mode 0700)");
        }
    }

    #[cfg(not(unix))]
    fn tighten_dir(_dir: &Path) {}

    /// Options that create a file readable and writable by its owner only (the mode
    /// applies only when the file is created; see [`restrict`]).
    pub(crate) fn options() -> OpenOptions {
        #[allow(unused_mut)]
        let mut options = OpenOptions::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(FILE_MODE);
        }
        options
    }

    /// Restricts an existing file to its owner (mode 0600) unless it is already.
    pub(crate) fn restrict(path: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if fs::metadata(path)?.permissions().mode() & 0o7777 != FILE_MODE {
                fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))?;
            }
        }
        #[cfg(not(unix))]
        let _ = path;
        Ok(())
    }
}

/// The exclusive lock on a data directory: `dir/tandem.lock`, locked with
/// `File::try_lock` and holding the holder's process id. Released when dropped (the
/// file is closed) or when the process ends.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which must exist) for this process, or says which process has it.
    pub fn acquire(dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join(LOCK_FILE);
        let mut file = private_fs::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(OpenError::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(OpenError::InUse { dir: dir.to_path_buf(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(OpenError::io("lock", &path)(e)),
        }
        private_fs::restrict(&path).map_err(OpenError::io("restrict", &path))?;
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(OpenError::io("write", &path))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Every embedded adapter, built together for the local runner and tests.
#[derive(Clone)]
pub struct Embedded {
    /// The item table.
    pub table: Arc<SqliteTable>,
    /// The work queue (durable in a data directory).
    pub queue: Arc<EmbeddedQueue>,
    /// The secret store.
    pub secrets: Arc<LocalSecretStore>,
    /// The failure-event publisher.
    pub events: Arc<EmbeddedEvents>,
    /// The snapshot store (`dir/snapshots/` when persisted).
    pub snapshots: Arc<dyn tandem_domain::ports::SnapshotStore>,
    /// The data directory's lock, when persisted.
    lock: Option<Arc<DirLock>>,
}

impl Embedded {
    /// Adapters that keep everything in memory (tests).
    pub fn in_memory(queue: QueueConfig) -> Self {
        Self::transient(SqliteTable::in_memory().expect("SQLite opens a database in memory"), queue)
    }

    /// Adapters that keep nothing once dropped, the table in a scratch database on disk so
    /// that memory stays flat however many records it holds (the runner without a data
    /// directory; see [`SqliteTable::scratch`]).
    pub fn scratch(queue: QueueConfig) -> Result<Self, OpenError> {
        Ok(Self::transient(SqliteTable::scratch()?, queue))
    }

    fn transient(table: SqliteTable, queue: QueueConfig) -> Self {
        Self {
            table: Arc::new(table),
            queue: Arc::new(EmbeddedQueue::new(queue)),
            secrets: Arc::new(LocalSecretStore::in_memory()),
            events: Arc::new(EmbeddedEvents::new()),
            snapshots: Arc::new(SharedMemSnapshots::default()),
            lock: None,
        }
    }

    /// Adapters persisting the table and the queue (`dir/tandem.db`), the secrets and the
    /// snapshots in `dir`, created (mode 0700) if missing. Locks `dir` first, before
    /// reading anything, and refuses with [`OpenError::InUse`] a directory another process
    /// (or another open in this one) holds; then opens the secrets, then the database,
    /// importing an old `table.log` once (see the module docs). The events stay in memory.
    pub fn open(dir: &Path, queue: QueueConfig) -> Result<Self, OpenError> {
        private_fs::prepare_dir(dir).map_err(OpenError::io("create", dir))?;
        let lock = Arc::new(DirLock::acquire(dir)?);
        let secrets = LocalSecretStore::open(dir)?.with_dir_lock(lock.clone());
        let table = SqliteTable::open(dir)?.with_dir_lock(lock.clone());
        legacy::import(dir, &table)?;
        let queue = EmbeddedQueue::durable(&table, queue)?;
        let snapshot_dir = dir.join("snapshots");
        private_fs::prepare_dir(&snapshot_dir).map_err(OpenError::io("create", &snapshot_dir))?;
        let snapshots = DirSnapshots::prepared(snapshot_dir);
        Ok(Self {
            table: Arc::new(table),
            queue: Arc::new(queue),
            secrets: Arc::new(secrets),
            events: Arc::new(EmbeddedEvents::new()),
            snapshots: Arc::new(snapshots),
            lock: Some(lock),
        })
    }

    /// The data directory's lock file, when persisted.
    pub fn lock_file(&self) -> Option<&Path> {
        self.lock.as_deref().map(DirLock::path)
    }

    /// The record store over the table.
    pub fn record_store(&self) -> RecordStore {
        RecordStore::new(self.table.clone())
    }
}

#[cfg(test)]
mod overlay_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::ports::{SecretStore, Table};

    #[tokio::test]
    async fn the_domains_unit_test_table_passes_the_conformance_suite() {
        conformance::table_suite(Arc::new(tandem_domain::mem_table::MemTable::default())).await;
    }

    #[tokio::test]
    async fn the_sqlite_table_passes_the_conformance_suite_in_memory_and_in_a_file_before_and_after_reopening() {
        conformance::table_suite(Arc::new(sqlite::SqliteTable::in_memory().unwrap())).await;
        let dir = tempfile::tempdir().unwrap();
        conformance::table_suite(Arc::new(sqlite::SqliteTable::open(dir.path()).unwrap())).await;
        let reopened = sqlite::SqliteTable::open(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(sqlite::DB_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the database holds CRM personal data: its owner's only");
        }
        conformance::table_suite(Arc::new(reopened)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_sqlite_table_shared_by_parallel_suites_passes_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let table: Arc<dyn Table> = Arc::new(sqlite::SqliteTable::open(dir.path()).unwrap());
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

    fn open(dir: &Path) -> Result<Embedded, OpenError> {
        Embedded::open(dir, QueueConfig::default())
    }

    #[test]
    fn a_second_open_of_a_data_directory_in_use_is_refused_naming_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path()).unwrap();
        let err = open(dir.path()).err().expect("the second open is refused");
        let pid = std::process::id();
        assert!(matches!(&err, OpenError::InUse { pid: Some(p), .. } if *p == pid), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("is in use by another Tandem process (pid {pid})")), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()) && msg.contains("--data-dir"), "{msg}");
        assert_eq!(first.lock_file(), Some(dir.path().join(LOCK_FILE).as_path()));
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap().trim(), pid.to_string());
    }

    #[test]
    fn the_data_directory_lock_is_released_when_its_holder_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()).unwrap());
        let second = open(dir.path()).expect("reopening after the holder is gone");
        drop(second);
        // A failed open releases the lock too.
        std::fs::write(dir.path().join(secrets::SECRETS_FILE), "{ nope").unwrap();
        assert!(matches!(open(dir.path()), Err(OpenError::Corrupt { .. })));
        std::fs::remove_file(dir.path().join(secrets::SECRETS_FILE)).unwrap();
        open(dir.path()).expect("reopening after a failed open");
    }

    #[test]
    fn the_data_directory_stays_locked_while_any_of_its_persisted_adapters_lives() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path()).unwrap();
        let (table, secrets) = (e.table.clone(), e.secrets.clone());
        drop(e);
        assert!(matches!(open(dir.path()), Err(OpenError::InUse { .. })));
        drop(table);
        assert!(matches!(open(dir.path()), Err(OpenError::InUse { .. })));
        drop(secrets);
        open(dir.path()).expect("every adapter is gone");
    }

    #[test]
    fn a_stale_lock_file_without_a_lock_does_not_stop_an_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "999999\n").unwrap();
        let _e = open(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), format!("{}\n", std::process::id()));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn data_files_and_the_data_directory_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let tenant = tandem_domain::TenantId::parse("acme").unwrap();
        let creds = tandem_domain::secret::Credentials::Syncro(tandem_domain::secret::SyncroCredentials {
            site: "acme".into(),
            api_key: tandem_domain::secret::SecretString::new("k"),
        });
        {
            let e = open(&dir).unwrap();
            e.secrets.put(&tenant, tandem_domain::System::Syncro, &creds).await.unwrap();
            e.record_store().save_job(&job(&tenant)).await.unwrap();
        }
        let files = [LOCK_FILE, sqlite::DB_FILE, secrets::SECRETS_FILE];
        assert_eq!(mode(&dir), 0o700);
        for f in files {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        // Looser modes left by an older version are tightened on open.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in files {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let _e = open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for f in files {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }

    /// An old store's log line: one transaction of puts and deletes.
    fn log_line(writes: &[serde_json::Value]) -> String {
        format!("{}\n", serde_json::Value::Array(writes.to_vec()))
    }

    fn logged_put(pk: &str, version: u64, name: &str) -> serde_json::Value {
        serde_json::json!({"put": {"pk": pk, "sk": "R", "version": version, "body": {"name": name}}})
    }

    #[tokio::test]
    async fn an_old_table_log_is_imported_once_into_the_database_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_line(&[logged_put("a", 1, "A"), logged_put("b", 1, "B")]);
        log.push_str(&log_line(&[logged_put("a", 2, "A2"), serde_json::json!({"delete": {"pk": "b", "sk": "R"}})]));
        log.push_str(&log_line(&[logged_put("c", 1, "C")]));
        // A crash mid-write of the old store: that transaction was never acknowledged.
        log.push_str(r#"[{"put": {"pk": "d", "sk": "R", "vers"#);
        std::fs::write(dir.path().join(legacy::LOG_FILE), &log).unwrap();
        {
            let e = open(dir.path()).unwrap();
            let got = |pk: &'static str| {
                let table = e.table.clone();
                async move { table.get(pk, "R").await.unwrap().map(|i| (i.version, i.body["name"].clone())) }
            };
            assert_eq!(got("a").await, Some((2, serde_json::json!("A2"))), "the last write of an item wins");
            assert_eq!(got("b").await, None, "a deleted item stays deleted");
            assert_eq!(got("c").await.map(|(v, _)| v), Some(1));
            assert_eq!(got("d").await, None, "the truncated line is skipped");
            assert_eq!(e.table.records_schema().unwrap(), 1, "imported records await the runner's migration");
        }
        assert!(!dir.path().join(legacy::LOG_FILE).exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(legacy::IMPORTED_FILE)).unwrap(),
            log,
            "kept aside as it was"
        );
        let e = open(dir.path()).unwrap();
        assert_eq!(e.table.len().unwrap(), 2, "a second open imports nothing again");
    }

    #[test]
    fn a_corrupt_line_of_an_old_log_stops_the_open_naming_it_and_leaves_everything_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let log = format!("{}{{ nope\n{}", log_line(&[logged_put("a", 1, "A")]), log_line(&[logged_put("b", 1, "B")]));
        std::fs::write(dir.path().join(legacy::LOG_FILE), &log).unwrap();
        let err = open(dir.path()).err().expect("a corrupt line stops the open");
        assert!(matches!(&err, OpenError::CorruptLine { line: 2, .. }), "{err:?}");
        assert_eq!(std::fs::read_to_string(dir.path().join(legacy::LOG_FILE)).unwrap(), log);
        let table = SqliteTable::open(dir.path()).unwrap();
        assert!(table.is_empty().unwrap(), "nothing of the log was committed");
    }

    #[tokio::test]
    async fn another_reader_can_open_the_database_read_only_while_tandem_holds_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path()).unwrap();
        let tenant = tandem_domain::TenantId::parse("acme").unwrap();
        e.record_store().save_job(&job(&tenant)).await.unwrap();
        // What `sqlite3 -readonly tandem.db` does.
        let reader = rusqlite::Connection::open_with_flags(
            dir.path().join(sqlite::DB_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let n: i64 = reader.query_row("SELECT COUNT(*) FROM items WHERE sk = 'J'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "the reader sees the committed job");
        // Tandem keeps writing while the reader is open.
        let mut later = job(&tenant);
        later.version = 1;
        e.record_store().save_job(&later).await.unwrap();
        let v: i64 = reader.query_row("SELECT version FROM items WHERE sk = 'J'", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn a_new_database_starts_at_the_current_records_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open(dir.path()).unwrap().table.records_schema().unwrap(), sqlite::RECORDS_SCHEMA);
    }

    #[tokio::test]
    async fn a_start_that_fails_on_a_corrupt_secrets_file_leaves_an_old_log_unimported() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_line(&[logged_put("a", 1, "A")]);
        std::fs::write(dir.path().join(legacy::LOG_FILE), &log).unwrap();
        std::fs::write(dir.path().join(secrets::SECRETS_FILE), "{ nope").unwrap();
        let err = open(dir.path()).err().expect("the corrupt secrets file stops the open");
        assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join(legacy::LOG_FILE)).unwrap(), log, "table.log is untouched");
        assert!(!dir.path().join(sqlite::DB_FILE).exists(), "no database was made");
    }

    fn job(tenant: &tandem_domain::TenantId) -> tandem_domain::job::Job {
        tandem_domain::job::Job {
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
            attempt: 0,
            version: 0,
            dry_run: false,
        }
    }

    #[tokio::test]
    async fn embedded_adapters_open_in_one_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = tandem_domain::TenantId::parse("acme").unwrap();
        {
            let e = Embedded::open(dir.path(), QueueConfig::default()).unwrap();
            let job = job(&tenant);
            e.record_store().save_job(&job).await.unwrap();
        }
        let e = Embedded::open(dir.path(), QueueConfig::default()).unwrap();
        let job = e.record_store().job(&tenant, &tandem_domain::JobId::from_raw("j1")).await.unwrap();
        assert_eq!(job.map(|j| j.version), Some(1));
        assert!(dir.path().join(sqlite::DB_FILE).exists());
    }
}
