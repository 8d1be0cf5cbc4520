//! The local runner's snapshot stores: [`DirSnapshots`], one file per snapshot object under
//! `<data dir>/snapshots/`, owner-only like every data file; and [`MemSnapshots`] for a
//! runner that keeps everything in memory (its table too). An object is written to `<key>.part` a buffer
//! at a time and renamed to `<key>` when finished, so a snapshot cut short by a crash is
//! never read as whole; it is read back a line at a time.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

use tandem_domain::ports::{LineReader, LineWriter, SnapshotStore, StoreError};

/// Snapshot objects as files under one directory.
#[derive(Debug)]
pub struct DirSnapshots {
    dir: PathBuf,
    /// Kept so a temporary directory lives as long as the store.
    _temp: Option<tempfile::TempDir>,
}

fn unavailable(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl DirSnapshots {
    /// Snapshots under `dir` (created owner-only when missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        crate::private_fs::prepare_dir(dir).map_err(|e| unavailable("cannot create", dir, e))?;
        Ok(Self { dir: dir.to_path_buf(), _temp: None })
    }

    /// Snapshots under `dir`, which exists already (owner-only).
    pub(crate) fn prepared(dir: PathBuf) -> Self {
        Self { dir, _temp: None }
    }

    /// Snapshots in a temporary directory, removed with the store (a runner without a data
    /// directory keeps nothing after it stops, snapshots included).
    pub fn temporary() -> Result<Self, StoreError> {
        let temp = tempfile::Builder::new()
            .prefix("tandem-snapshots")
            .tempdir()
            .map_err(|e| StoreError::Unavailable(format!("cannot create a temporary directory: {e}")))?;
        Ok(Self { dir: temp.path().to_path_buf(), _temp: Some(temp) })
    }

    /// The file of `key`: its `/`-separated parts as sub-directories; a key that could
    /// leave the directory (`..`, an absolute path, an empty part) is refused.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let parts: Vec<&str> = key.split('/').collect();
        let safe = |p: &&str| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\');
        if !parts.iter().all(safe) {
            return Err(StoreError::Corrupt(format!("{key:?} is not a snapshot key")));
        }
        Ok(parts.iter().fold(self.dir.clone(), |path, part| path.join(part)))
    }
}

struct FileWriter {
    out: BufWriter<tokio::fs::File>,
    part: PathBuf,
    path: PathBuf,
    bytes: u64,
}

#[async_trait]
impl LineWriter for FileWriter {
    async fn line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        self.out.write_all(line).await.map_err(|e| unavailable("cannot write", &self.part, e))?;
        self.out.write_all(b"\n").await.map_err(|e| unavailable("cannot write", &self.part, e))?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        self.out.flush().await.map_err(|e| unavailable("cannot write", &self.part, e))?;
        self.out.get_ref().sync_all().await.map_err(|e| unavailable("cannot sync", &self.part, e))?;
        tokio::fs::rename(&self.part, &self.path).await.map_err(|e| unavailable("cannot finish", &self.path, e))?;
        Ok(self.bytes)
    }
}

struct FileReader {
    lines: tokio::io::Split<BufReader<tokio::fs::File>>,
    path: PathBuf,
}

#[async_trait]
impl LineReader for FileReader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        self.lines.next_segment().await.map_err(|e| unavailable("cannot read", &self.path, e))
    }
}

#[async_trait]
impl SnapshotStore for DirSnapshots {
    async fn create(&self, key: &str) -> Result<Box<dyn LineWriter>, StoreError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            crate::private_fs::prepare_dir(parent).map_err(|e| unavailable("cannot create", parent, e))?;
        }
        let part = path.with_extension("part");
        let file = crate::private_fs::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .map_err(|e| unavailable("cannot create", &part, e))?;
        let out = BufWriter::with_capacity(1 << 16, tokio::fs::File::from_std(file));
        Ok(Box::new(FileWriter { out, part, path, bytes: 0 }))
    }

    async fn open(&self, key: &str) -> Result<Option<Box<dyn LineReader>>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(Box::new(FileReader { lines: BufReader::new(file).split(b'\n'), path }))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("cannot open", &path, e)),
        }
    }
}

/// Snapshot objects in memory, for a runner whose table is in memory too.
#[derive(Debug, Default)]
pub struct MemSnapshots {
    objects: std::sync::Mutex<std::collections::HashMap<String, Arc<Vec<u8>>>>,
}

struct MemWriter {
    store: Arc<MemSnapshots>,
    key: String,
    data: Vec<u8>,
}

#[async_trait]
impl LineWriter for MemWriter {
    async fn line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        self.data.extend_from_slice(line);
        self.data.push(b'\n');
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<u64, StoreError> {
        let bytes = self.data.len() as u64;
        self.store.objects.lock().map_err(|_| poisoned())?.insert(self.key, Arc::new(self.data));
        Ok(bytes)
    }
}

struct MemReader {
    data: Arc<Vec<u8>>,
    at: usize,
}

#[async_trait]
impl LineReader for MemReader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let rest = &self.data[self.at..];
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        self.at += end + 1;
        Ok(Some(rest[..end].to_vec()))
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("the in-memory snapshot store was poisoned by a panic".into())
}

/// The in-memory store, shared: its writers hold it until they finish.
#[derive(Debug, Default, Clone)]
pub struct SharedMemSnapshots(Arc<MemSnapshots>);

#[async_trait]
impl SnapshotStore for SharedMemSnapshots {
    async fn create(&self, key: &str) -> Result<Box<dyn LineWriter>, StoreError> {
        Ok(Box::new(MemWriter { store: self.0.clone(), key: key.to_string(), data: Vec::new() }))
    }

    async fn open(&self, key: &str) -> Result<Option<Box<dyn LineReader>>, StoreError> {
        let data = self.0.objects.lock().map_err(|_| poisoned())?.get(key).cloned();
        Ok(data.map(|data| Box::new(MemReader { data, at: 0 }) as Box<dyn LineReader>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reads_back(store: &dyn SnapshotStore) {
        let mut w = store.create("acme/one.jsonl").await.unwrap();
        w.line(br#"{"a":1}"#).await.unwrap();
        w.line(br#"{"b":2}"#).await.unwrap();
        assert!(store.open("acme/one.jsonl").await.unwrap().is_none(), "not visible before it is finished");
        assert_eq!(w.finish().await.unwrap(), 16);
        let mut r = store.open("acme/one.jsonl").await.unwrap().unwrap();
        assert_eq!(r.next().await.unwrap().as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(r.next().await.unwrap().as_deref(), Some(&br#"{"b":2}"#[..]));
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_object_reads_back_line_by_line_once_finished_and_not_before() {
        reads_back(&DirSnapshots::temporary().unwrap()).await;
        reads_back(&SharedMemSnapshots::default()).await;
    }

    #[tokio::test]
    async fn a_key_that_would_leave_the_directory_is_refused() {
        let store = DirSnapshots::temporary().unwrap();
        for key in ["../x", "/etc/passwd", "a//b", "a/./b"] {
            assert!(store.create(key).await.is_err(), "{key}");
        }
    }
}
