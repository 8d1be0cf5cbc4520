//! The one error of this crate's own: opening a data directory (locking it, reading,
//! replaying or compacting its files). Everything after opening speaks the domain's port
//! errors.

use std::io;
use std::path::PathBuf;

use tandem_domain::ports::{SecretError, StoreError};

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file or directory could not be read, written or renamed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`read`, `create`, `rename`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A line of the table log (not the last one) cannot be read back.
    #[error("{} line {line} is corrupt", path.display())]
    CorruptLine {
        /// The log file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// Why it cannot be parsed.
        #[source]
        source: serde_json::Error,
    },
    /// Another process (or another open in this one) holds the data directory's lock.
    #[error(
        "data directory {} is in use by another Tandem process{}; stop it or choose another --data-dir",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The holder's process id, when its lock file names one.
        pid: Option<u32>,
    },
    /// The secrets key is missing, malformed, or not the one the secrets file was sealed
    /// with (the message says which and what to do; it never holds a key).
    #[error("{message}")]
    Key {
        /// What is wrong.
        message: String,
    },
    /// The SQLite database could not be opened or set up.
    #[error("cannot open the database {}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// A whole-file JSON document (the secrets file) cannot be read back.
    #[error("{} is corrupt", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it cannot be parsed.
        #[source]
        source: serde_json::Error,
    },
}

impl OpenError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| OpenError::Io { action, path, source }
    }

    /// The error with its whole source chain in one line.
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io { .. } | OpenError::InUse { .. } | OpenError::Key { .. } | OpenError::Sqlite { .. } => {
                StoreError::Unavailable(e.full_message())
            }
            OpenError::CorruptLine { .. } | OpenError::Corrupt { .. } => StoreError::Corrupt(e.full_message()),
        }
    }
}

impl From<OpenError> for SecretError {
    fn from(e: OpenError) -> Self {
        SecretError::Unavailable(e.full_message())
    }
}
