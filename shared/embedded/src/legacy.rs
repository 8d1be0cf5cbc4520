//! The one-off import of a data directory written before the store moved to SQLite: its
//! `table.log` (one JSON line per committed transaction, an array of `{"put": item}` /
//! `{"delete": {"pk", "sk"}}`) is replayed line by line into `tandem.db` in one SQLite
//! transaction, so nothing of it is ever held whole in memory and a crash part way leaves
//! the database as it was. The log is then renamed `table.log.imported` (kept as a backup
//! the user may delete) and the records are marked as being at layout 1, for the runner's
//! migration to bring up to date.
//!
//! A truncated last line (a crash mid-write of the old store) is skipped with a warning,
//! as the old store did on its own start: that transaction was never acknowledged. Any
//! other unreadable line stops the open with [`OpenError::CorruptLine`] naming it, and
//! the log stays where it was.

use serde::Deserialize;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::Path;

use tandem_domain::ports::Item;

use crate::error::OpenError;
use crate::sqlite::{SqliteTable, delete_row, put_row};

/// The old log's name inside the data directory.
pub const LOG_FILE: &str = "table.log";
/// What the old log is renamed to once imported.
pub const IMPORTED_FILE: &str = "table.log.imported";

/// One write as the old store logged it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Logged {
    Put(Item),
    Delete { pk: String, sk: String },
}

/// Imports `dir/table.log` into `table` if there is one; how many writes it replayed.
pub fn import(dir: &Path, table: &SqliteTable) -> Result<Option<usize>, OpenError> {
    let path = dir.join(LOG_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let file = File::open(&path).map_err(OpenError::io("open", &path))?;
    let replayed = table.in_transaction(&path, |tx| replay(&path, BufReader::with_capacity(1 << 20, file), tx))?;
    table.set_records_schema(1).map_err(|e| import_failed(&path, e))?;
    let imported = dir.join(IMPORTED_FILE);
    fs::rename(&path, &imported).map_err(OpenError::io("rename", &path))?;
    tracing::info!(
        writes = replayed,
        from = %path.display(),
        kept_as = %imported.display(),
        "imported the table log of an older version into tandem.db"
    );
    Ok(Some(replayed))
}

/// Applies every whole line of the log through `tx`; the number of writes.
fn replay(path: &Path, mut reader: impl std::io::BufRead, tx: &rusqlite::Connection) -> Result<usize, OpenError> {
    let mut buf = Vec::new();
    let (mut ops, mut line_no) = (0usize, 0usize);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(OpenError::io("read", path))? == 0 {
            return Ok(ops);
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            tracing::warn!(
                path = %path.display(),
                line = line_no,
                "skipping a truncated last line of the old table log (a crash mid-write); that transaction was never acknowledged"
            );
            return Ok(ops);
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let writes: Vec<Logged> = serde_json::from_slice(line).map_err(|source| OpenError::CorruptLine {
            path: path.to_path_buf(),
            line: line_no,
            source,
        })?;
        for w in writes {
            let applied = match &w {
                Logged::Put(item) => put_row(tx, item),
                Logged::Delete { pk, sk } => delete_row(tx, pk, sk),
            };
            applied.map_err(|e| import_failed(path, e))?;
            ops += 1;
        }
    }
}

fn import_failed(path: &Path, e: tandem_domain::ports::StoreError) -> OpenError {
    OpenError::Io {
        action: "import into the database",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}
