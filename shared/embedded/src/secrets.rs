//! [`LocalSecretStore`]: the Secrets Manager stand-in. Per connection its credentials, named
//! `tandem/{tenant}/{system}` like the cloud one, and its webhook secret (`.../webhook`),
//! kept in memory or in `secrets.sealed.json` in a data directory: encrypted at rest
//! ([`crate::sealing`]: AES-256-GCM, the key from the environment or a key file), readable
//! by its owner only (mode 0600 on unix, like its temporary file, in a directory of mode
//! 0700), rewritten atomically through that temporary file. Opening reads the file and
//! rewrites it only to move it forward: a plaintext `secrets.json` of an older version is
//! sealed and removed, and a file sealed with the previous key (rotation) is sealed again
//! under the current one. Secret values are never logged. [`LocalSecretStore::open`] takes
//! no lock on the directory; `Embedded::open` does (see the crate docs).

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tandem_domain::ids::{System, TenantId};
use tandem_domain::ports::{SecretError, SecretStore};
use tandem_domain::secret::{Credentials, SecretString};

use crate::error::OpenError;
use crate::sealing::{self, Keys};
use crate::{DirLock, private_fs};

/// The secrets file's name inside the data directory.
pub const SECRETS_FILE: &str = "secrets.sealed.json";
const SECRETS_TMP: &str = "secrets.sealed.json.tmp";
/// The plaintext secrets file of versions before encryption at rest, sealed on open.
pub const PLAINTEXT_FILE: &str = "secrets.json";

/// The name of a connection's secret: `tandem/{tenant}/{system}`.
pub fn secret_name(tenant: &TenantId, system: System) -> String {
    format!("tandem/{tenant}/{system}")
}

/// One stored secret: a connection's credentials, or its webhook secret (a plain string).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Stored {
    Credentials(Credentials),
    Secret(SecretString),
}

/// The name of a connection's webhook secret: `tandem/{tenant}/{system}/webhook`.
pub fn webhook_secret_name(tenant: &TenantId, system: System) -> String {
    format!("{}/webhook", secret_name(tenant, system))
}

/// A secret store on one machine (see the module docs).
pub struct LocalSecretStore {
    secrets: Mutex<BTreeMap<String, Stored>>,
    /// The data directory and the keys its file is sealed with; none in memory.
    dir: Option<(PathBuf, Keys)>,
    /// The data directory's lock, held while the store lives (set by `Embedded::open`).
    _dir_lock: Option<Arc<DirLock>>,
}

impl Default for LocalSecretStore {
    fn default() -> Self {
        Self::in_memory()
    }
}

fn create_private(path: &Path) -> std::io::Result<File> {
    private_fs::options().write(true).create(true).truncate(true).open(path)
}

/// Writes `secrets`, sealed under `keys`' current key, to `dir/secrets.sealed.json` through a
/// fsynced temporary file.
fn save(dir: &Path, keys: &Keys, secrets: &BTreeMap<String, Stored>) -> Result<(), OpenError> {
    let tmp = dir.join(SECRETS_TMP);
    let path = dir.join(SECRETS_FILE);
    let json = serde_json::to_vec(secrets).map_err(|e| OpenError::io("encode", &tmp)(std::io::Error::other(e)))?;
    let json =
        sealing::seal(&keys.current, &json).map_err(|e| OpenError::io("seal", &tmp)(std::io::Error::other(e)))?;
    let mut file = create_private(&tmp).map_err(OpenError::io("create", &tmp))?;
    // An older temporary file may have been created with other permissions.
    private_fs::restrict(&tmp).map_err(OpenError::io("restrict", &tmp))?;
    file.write_all(&json).and_then(|()| file.sync_all()).map_err(OpenError::io("write", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(OpenError::io("rename", &tmp))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl LocalSecretStore {
    /// An empty store kept in memory only.
    pub fn in_memory() -> Self {
        Self { secrets: Mutex::new(BTreeMap::new()), dir: None, _dir_lock: None }
    }

    /// The store persisted in `dir/secrets.sealed.json`, sealed with the keys the
    /// environment names ([`Keys::from_environment`]).
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        private_fs::prepare_dir(dir).map_err(OpenError::io("create", dir))?;
        Self::open_with(dir, Keys::from_environment(dir)?)
    }

    /// The store persisted in `dir/secrets.sealed.json`, sealed with `keys` (the directory
    /// is created with mode 0700 if missing, else tightened to it; an existing file is
    /// restricted to its owner). A plaintext `secrets.json` left by an older version is
    /// sealed and then removed; a file sealed with the previous key is sealed again.
    pub fn open_with(dir: &Path, keys: Keys) -> Result<Self, OpenError> {
        private_fs::prepare_dir(dir).map_err(OpenError::io("create", dir))?;
        let path = dir.join(SECRETS_FILE);
        let plaintext_path = dir.join(PLAINTEXT_FILE);
        let parse = |bytes: &[u8], path: &Path| -> Result<BTreeMap<String, Stored>, OpenError> {
            serde_json::from_slice(bytes).map_err(|source| OpenError::Corrupt { path: path.to_path_buf(), source })
        };
        let secrets = match fs::read(&path) {
            Ok(bytes) => {
                private_fs::restrict(&path).map_err(OpenError::io("restrict", &path))?;
                let opened = sealing::open(&keys, &bytes, &path)?;
                let secrets = parse(&opened.plaintext, &path)?;
                if opened.with_previous {
                    save(dir, &keys, &secrets)?;
                    tracing::info!(key = keys.current.id(), "the local secrets were sealed again under the new key");
                }
                secrets
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::read(&plaintext_path) {
                Ok(bytes) => {
                    let secrets = parse(&bytes, &plaintext_path)?;
                    save(dir, &keys, &secrets)?;
                    fs::remove_file(&plaintext_path).map_err(OpenError::io("remove", &plaintext_path))?;
                    let _ = fs::remove_file(dir.join(format!("{PLAINTEXT_FILE}.tmp")));
                    tracing::info!(secrets = secrets.len(), "the plaintext secrets file was sealed and removed");
                    secrets
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(OpenError::io("read", &plaintext_path)(e)),
            },
            Err(e) => return Err(OpenError::io("read", &path)(e)),
        };
        Ok(Self { secrets: Mutex::new(secrets), dir: Some((dir.to_path_buf(), keys)), _dir_lock: None })
    }

    /// The same store holding the data directory's lock for as long as it lives.
    pub(crate) fn with_dir_lock(mut self, lock: Arc<DirLock>) -> Self {
        self._dir_lock = Some(lock);
        self
    }

    /// How many secrets are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no secret is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the stored secrets.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Stored>> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SecretStore for LocalSecretStore {
    async fn put(&self, tenant: &TenantId, system: System, creds: &Credentials) -> Result<String, SecretError> {
        let name = secret_name(tenant, system);
        self.store(&name, Stored::Credentials(creds.clone()))?;
        Ok(name)
    }

    async fn get(&self, tenant: &TenantId, system: System) -> Result<Credentials, SecretError> {
        let name = secret_name(tenant, system);
        match self.lock().get(&name) {
            Some(Stored::Credentials(c)) => Ok(c.clone()),
            _ => Err(SecretError::NotFound(name)),
        }
    }

    async fn put_webhook_secret(
        &self,
        tenant: &TenantId,
        system: System,
        secret: &SecretString,
    ) -> Result<(), SecretError> {
        self.store(&webhook_secret_name(tenant, system), Stored::Secret(secret.clone()))
    }

    async fn webhook_secret(&self, tenant: &TenantId, system: System) -> Result<SecretString, SecretError> {
        let name = webhook_secret_name(tenant, system);
        match self.lock().get(&name) {
            Some(Stored::Secret(s)) => Ok(s.clone()),
            _ => Err(SecretError::NotFound(name)),
        }
    }
}

impl LocalSecretStore {
    /// Keeps `value` as `name`, in the file too when there is one (all or nothing).
    fn store(&self, name: &str, value: Stored) -> Result<(), SecretError> {
        let mut secrets = self.lock();
        let previous = secrets.insert(name.to_string(), value);
        if let Some((dir, keys)) = &self.dir
            && let Err(e) = save(dir, keys, &secrets)
        {
            match previous {
                Some(p) => secrets.insert(name.to_string(), p),
                None => secrets.remove(name),
            };
            return Err(e.into());
        }
        tracing::debug!(secret = %name, "secret stored");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::secret::{ConnectWiseCredentials, SecretString};

    fn creds(key: &str) -> Credentials {
        Credentials::ConnectWise(ConnectWiseCredentials {
            site: "http://127.0.0.1:1".into(),
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new(key),
            client_id: "client".into(),
        })
    }

    #[tokio::test]
    async fn secrets_are_named_per_tenant_and_system() {
        let store = LocalSecretStore::in_memory();
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(store.put(&t, System::ConnectWise, &creds("k")).await.unwrap(), "tandem/acme/connectwise");
    }

    #[tokio::test]
    async fn a_reopened_store_has_its_secrets_in_a_file_only_its_owner_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::parse("acme").unwrap();
        {
            let store = LocalSecretStore::open(dir.path()).unwrap();
            store.put(&t, System::ConnectWise, &creds("k1")).await.unwrap();
            store.put(&t, System::ConnectWise, &creds("k2")).await.unwrap();
        }
        let store = LocalSecretStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&t, System::ConnectWise).await.unwrap(), creds("k2"));
        assert!(!dir.path().join(SECRETS_TMP).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SECRETS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_corrupt_secrets_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SECRETS_FILE), "{ nope").unwrap();
        let err = LocalSecretStore::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains(SECRETS_FILE), "{err}");
    }

    /// Every file under `dir`, read whole.
    fn every_file(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(every_file(&path));
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
        out
    }

    fn holds(bytes: &[u8], marker: &str) -> bool {
        bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
    }

    #[tokio::test]
    async fn no_file_of_the_data_directory_holds_a_secret_in_plaintext_and_the_key_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::parse("acme").unwrap();
        {
            let store = LocalSecretStore::open(dir.path()).unwrap();
            store.put(&t, System::ConnectWise, &creds("marker-private-key-7f3a")).await.unwrap();
            let webhook = SecretString::new("marker-webhook-secret-91c2");
            store.put_webhook_secret(&t, System::ConnectWise, &webhook).await.unwrap();
        }
        let files = every_file(dir.path());
        assert!(files.iter().any(|(p, _)| p.ends_with(SECRETS_FILE)), "{files:?}");
        for (path, bytes) in &files {
            for marker in ["marker-private-key-7f3a", "marker-webhook-secret-91c2"] {
                assert!(!holds(bytes, marker), "{} holds {marker}", path.display());
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(sealing::KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let store = LocalSecretStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&t, System::ConnectWise).await.unwrap(), creds("marker-private-key-7f3a"));
    }

    #[tokio::test]
    async fn a_plaintext_secrets_file_of_an_older_version_is_sealed_and_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::parse("acme").unwrap();
        let old: BTreeMap<String, Stored> =
            BTreeMap::from([(secret_name(&t, System::ConnectWise), Stored::Credentials(creds("marker-old-5d1e")))]);
        fs::write(dir.path().join(PLAINTEXT_FILE), serde_json::to_vec(&old).unwrap()).unwrap();
        let store = LocalSecretStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&t, System::ConnectWise).await.unwrap(), creds("marker-old-5d1e"));
        assert!(!dir.path().join(PLAINTEXT_FILE).exists(), "the plaintext file is gone");
        assert!(every_file(dir.path()).iter().all(|(_, b)| !holds(b, "marker-old-5d1e")));
        drop(store);
        let again = LocalSecretStore::open(dir.path()).unwrap();
        assert_eq!(again.get(&t, System::ConnectWise).await.unwrap(), creds("marker-old-5d1e"));
    }

    #[tokio::test]
    async fn a_file_sealed_with_the_previous_key_is_sealed_again_under_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::parse("acme").unwrap();
        let (old, new) = (sealing::SecretsKey::generate(), sealing::SecretsKey::generate());
        let store = LocalSecretStore::open_with(dir.path(), Keys::single(old.clone())).unwrap();
        store.put(&t, System::Halo, &creds("k")).await.unwrap();
        drop(store);
        let err = LocalSecretStore::open_with(dir.path(), Keys::single(new.clone())).err().unwrap().to_string();
        assert!(err.contains(old.id()) && err.contains("TANDEM_SECRETS_PREVIOUS_KEY"), "{err}");

        let rotating = Keys { current: new.clone(), previous: Some(old.clone()) };
        let store = LocalSecretStore::open_with(dir.path(), rotating).unwrap();
        assert_eq!(store.get(&t, System::Halo).await.unwrap(), creds("k"));
        drop(store);
        let store = LocalSecretStore::open_with(dir.path(), Keys::single(new)).unwrap();
        assert_eq!(store.get(&t, System::Halo).await.unwrap(), creds("k"), "sealed under the new key alone now");
        assert!(LocalSecretStore::open_with(dir.path(), Keys::single(old)).is_err(), "the old key opens it no more");
    }
}
