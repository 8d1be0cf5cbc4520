//! The local secrets file's encryption at rest: AES-256-GCM (the `aes-gcm` crate) under a
//! 256-bit key, a fresh random 96-bit nonce per write, the file's format tag as associated
//! data, and the key's id (the first 8 bytes of its SHA-256, hex) beside the ciphertext so
//! a wrong key is named rather than reported as corruption.
//!
//! Where the key comes from ([`Keys::from_environment`]):
//! - `TANDEM_SECRETS_KEY`: 64 hex characters; else
//! - `TANDEM_SECRETS_KEY_FILE`: a file holding them; else
//! - `<data dir>/secrets.key`, created on first run (mode 0600) with a random key. Kept in the
//!   data directory it guards against the secrets file being copied or read alone; to keep
//!   the key off the disk that holds the data, use one of the first two.
//!
//! Rotation: start once with the old key as `TANDEM_SECRETS_PREVIOUS_KEY` (or
//! `TANDEM_SECRETS_PREVIOUS_KEY_FILE`) and the new one as the key: a file sealed with the
//! previous key is opened with it and sealed again under the new one.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::OpenError;
use crate::private_fs;

/// The key file's name in the data directory, when no other key is given.
pub const KEY_FILE: &str = "secrets.key";
/// The format tag: written in the file and bound to the ciphertext as associated data.
const FORMAT: &str = "tandem-secrets/1";
const CIPHER: &str = "AES-256-GCM";

/// A 256-bit key and its id.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: Aes256Gcm,
    id: String,
}

impl std::fmt::Debug for SecretsKey {
    /// The id only: a key's bytes never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretsKey({})", self.id)
    }
}

fn key_error(message: impl Into<String>) -> OpenError {
    OpenError::Key { message: message.into() }
}

impl SecretsKey {
    /// A key from 64 hex characters (surrounding white space ignored); `what` names where
    /// they came from in the error.
    pub fn from_hex(text: &str, what: &str) -> Result<Self, OpenError> {
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| key_error(format!("{what} must hold a 256-bit key as 64 hex characters")))?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let key = Key::<Aes256Gcm>::from_slice(bytes);
        let id = hex::encode(&Sha256::digest(bytes)[..8]);
        SecretsKey { cipher: Aes256Gcm::new(key), id }
    }

    /// A new random key.
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(OsRng);
        Self::from_bytes(key.as_slice())
    }

    /// The key in `path`, or, when there is none, a new random key written there (mode 0600).
    pub fn load_or_create(path: &Path) -> Result<Self, OpenError> {
        match fs::read_to_string(path) {
            Ok(text) => {
                private_fs::restrict(path).map_err(OpenError::io("restrict", path))?;
                Self::from_hex(&text, &path.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = Aes256Gcm::generate_key(OsRng);
                let mut file = private_fs::options()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(OpenError::io("create", path))?;
                let text = format!("{}\n", hex::encode(bytes.as_slice()));
                file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(OpenError::io("write", path))?;
                tracing::info!(key_file = %path.display(), "created a key for the local secrets");
                Ok(Self::from_bytes(bytes.as_slice()))
            }
            Err(e) => Err(OpenError::io("read", path)(e)),
        }
    }

    /// The key's id (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The key to seal with, and the previous one a file may still be sealed with.
#[derive(Clone, Debug)]
pub struct Keys {
    pub current: SecretsKey,
    pub previous: Option<SecretsKey>,
}

impl Keys {
    /// One key, no previous one.
    pub fn single(current: SecretsKey) -> Self {
        Keys { current, previous: None }
    }

    /// The keys the environment names (see the module docs); without one, the data
    /// directory's key file, created on first run.
    pub fn from_environment(dir: &Path) -> Result<Self, OpenError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let from = |key: &str, file: &str| -> Result<Option<SecretsKey>, OpenError> {
            if let Some(text) = var(key) {
                return SecretsKey::from_hex(&text, key).map(Some);
            }
            match var(file) {
                Some(path) => {
                    let path = PathBuf::from(path);
                    let text = fs::read_to_string(&path).map_err(OpenError::io("read", &path))?;
                    SecretsKey::from_hex(&text, &format!("{file} ({})", path.display())).map(Some)
                }
                None => Ok(None),
            }
        };
        let current = match from("TANDEM_SECRETS_KEY", "TANDEM_SECRETS_KEY_FILE")? {
            Some(key) => key,
            None => SecretsKey::load_or_create(&dir.join(KEY_FILE))?,
        };
        let previous = from("TANDEM_SECRETS_PREVIOUS_KEY", "TANDEM_SECRETS_PREVIOUS_KEY_FILE")?;
        Ok(Keys { current, previous })
    }
}

/// The sealed file's JSON.
#[derive(Serialize, Deserialize)]
struct Sealed {
    format: String,
    cipher: String,
    key_id: String,
    nonce: String,
    data: String,
}

/// `plaintext` sealed under `key`, as the file's bytes.
pub fn seal(key: &SecretsKey, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let data = key
        .cipher
        .encrypt(&nonce, Payload { msg: plaintext, aad: FORMAT.as_bytes() })
        .map_err(|_| "the secrets could not be encrypted".to_string())?;
    let sealed = Sealed {
        format: FORMAT.into(),
        cipher: CIPHER.into(),
        key_id: key.id.clone(),
        nonce: STANDARD.encode(nonce),
        data: STANDARD.encode(data),
    };
    serde_json::to_vec_pretty(&sealed).map_err(|e| e.to_string())
}

/// What opening a sealed file gave: its plaintext, and whether it was sealed with the
/// previous key (so it should be sealed again under the current one).
pub struct Opened {
    pub plaintext: Vec<u8>,
    pub with_previous: bool,
}

/// Opens the sealed file `bytes` (read from `path`) with `keys`.
pub fn open(keys: &Keys, bytes: &[u8], path: &Path) -> Result<Opened, OpenError> {
    let sealed: Sealed =
        serde_json::from_slice(bytes).map_err(|source| OpenError::Corrupt { path: path.to_path_buf(), source })?;
    if sealed.format != FORMAT || sealed.cipher != CIPHER {
        return Err(key_error(format!(
            "{} is sealed as {} with {}, which this version cannot read",
            path.display(),
            sealed.format,
            sealed.cipher
        )));
    }
    let (key, with_previous) = match &keys.previous {
        _ if sealed.key_id == keys.current.id => (&keys.current, false),
        Some(previous) if sealed.key_id == previous.id => (previous, true),
        _ => {
            return Err(key_error(format!(
                "{} was sealed with key {}, but the key given is {}{}; set TANDEM_SECRETS_KEY (or \
                 TANDEM_SECRETS_KEY_FILE) to the key it was sealed with, or give that one as \
                 TANDEM_SECRETS_PREVIOUS_KEY to rotate to a new key",
                path.display(),
                sealed.key_id,
                keys.current.id,
                keys.previous.as_ref().map(|p| format!(" (previous {})", p.id)).unwrap_or_default()
            )));
        }
    };
    let corrupt = || key_error(format!("{} does not decrypt with key {}: it is corrupt", path.display(), key.id));
    let nonce = STANDARD.decode(&sealed.nonce).ok().filter(|n| n.len() == 12).ok_or_else(corrupt)?;
    let data = STANDARD.decode(&sealed.data).map_err(|_| corrupt())?;
    let plaintext = key
        .cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &data, aad: FORMAT.as_bytes() })
        .map_err(|_| corrupt())?;
    Ok(Opened { plaintext, with_previous })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_opens_with_its_key_only_and_hides_the_text() {
        let key = SecretsKey::generate();
        let sealed = seal(&key, b"marker-secret-123").unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("marker-secret-123"));
        let opened = open(&Keys::single(key.clone()), &sealed, Path::new("f")).unwrap();
        assert_eq!((opened.plaintext.as_slice(), opened.with_previous), (&b"marker-secret-123"[..], false));
        let other = SecretsKey::generate();
        let err = open(&Keys::single(other.clone()), &sealed, Path::new("f")).err().unwrap().to_string();
        assert!(err.contains(key.id()) && err.contains(other.id()), "names both keys: {err}");
        let rotating = Keys { current: other, previous: Some(key) };
        assert!(open(&rotating, &sealed, Path::new("f")).unwrap().with_previous);
    }

    #[test]
    fn two_seals_of_one_text_differ_and_a_changed_byte_is_refused() {
        let key = SecretsKey::generate();
        assert_ne!(seal(&key, b"x").unwrap(), seal(&key, b"x").unwrap(), "a fresh nonce each time");
        let mut sealed: serde_json::Value = serde_json::from_slice(&seal(&key, b"secret").unwrap()).unwrap();
        let mut data = STANDARD.decode(sealed["data"].as_str().unwrap()).unwrap();
        data[0] ^= 1;
        sealed["data"] = STANDARD.encode(data).into();
        let bytes = serde_json::to_vec(&sealed).unwrap();
        let err = open(&Keys::single(key), &bytes, Path::new("f")).err().unwrap().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn a_key_must_be_64_hex_characters_and_its_debug_shows_only_its_id() {
        assert!(SecretsKey::from_hex("abcd", "TANDEM_SECRETS_KEY").is_err());
        let key = SecretsKey::from_hex(&"ab".repeat(32), "k").unwrap();
        assert_eq!(format!("{key:?}"), format!("SecretsKey({})", key.id()));
        assert!(!format!("{key:?}").contains(&"ab".repeat(4)));
    }
}
