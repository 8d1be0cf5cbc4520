//! [`SecretsManagerStore`]: the secret store ([`SecretStore`]) on AWS Secrets Manager. One
//! secret per connection, named `{prefix}/{tenant}/{system}`, holding the
//! [`Credentials`] JSON. Reads go through a cache kept for the life of the execution
//! environment (a Lambda container), so a warm function reads each secret once; after
//! an external system answers 401, [`SecretStore::invalidate`] drops the entry and the
//! next read fetches the current value.
//!
//! Secret values never reach a log or an error: errors carry AWS's error code and
//! message (which never echo a value), and a value that is not valid credentials JSON is
//! reported by position only, not by serde's message (which may quote the value).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use tandem_domain::ids::{System, TenantId};
use tandem_domain::ports::{SecretError, SecretStore};
use tandem_domain::secret::{Credentials, SecretString};
use tokio::sync::RwLock;

use crate::error::{AwsError, AwsErrorKind};

const SERVICE: &str = "Secrets Manager";

/// The secret store on Secrets Manager (see the module docs).
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
    cache: RwLock<HashMap<String, Credentials>>,
    webhook_cache: RwLock<HashMap<String, SecretString>>,
}

impl std::fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Why stored bytes are not credentials, without quoting them.
fn unreadable(name: &str, e: &serde_json::Error) -> SecretError {
    SecretError::Unavailable(format!(
        "secret {name} does not hold valid credentials JSON ({:?} error at line {}, column {})",
        e.classify(),
        e.line(),
        e.column()
    ))
}

impl SecretsManagerStore {
    /// The store of secrets named `{prefix}/{tenant}/{system}` (e.g. prefix
    /// `tandem/connections`), reached through `client` (built once by the caller).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        Self {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
            cache: RwLock::new(HashMap::new()),
            webhook_cache: RwLock::new(HashMap::new()),
        }
    }

    /// The name of a connection's secret.
    pub fn secret_name(&self, tenant: &TenantId, system: System) -> String {
        format!("{}/{tenant}/{system}", self.prefix)
    }

    /// The name of a connection's webhook secret: its credentials' name with `/webhook`.
    pub fn webhook_secret_name(&self, tenant: &TenantId, system: System) -> String {
        format!("{}/webhook", self.secret_name(tenant, system))
    }

    /// Creates the secret `name` with `value`, or puts a new value in it.
    async fn store(&self, name: &str, value: String) -> Result<(), SecretError> {
        let created = self.client.create_secret().name(name).secret_string(&value).send().await;
        if let Err(e) = created {
            let e = AwsError::from_sdk(SERVICE, "CreateSecret", &e);
            if e.kind != AwsErrorKind::AlreadyExists {
                return Err(e.into());
            }
            self.client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| SecretError::from(AwsError::from_sdk(SERVICE, "PutSecretValue", &e)))?;
        }
        Ok(())
    }

    /// The string value of the secret `name`.
    async fn value(&self, name: &str) -> Result<String, SecretError> {
        let out = match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, "GetSecretValue", &e);
                return Err(match e.kind {
                    AwsErrorKind::NotFound => SecretError::NotFound(name.to_string()),
                    _ => e.into(),
                });
            }
        };
        out.secret_string()
            .map(str::to_string)
            .ok_or_else(|| SecretError::Unavailable(format!("secret {name} holds no string value")))
    }

    async fn fetch(&self, name: &str) -> Result<Credentials, SecretError> {
        let value = self.value(name).await?;
        serde_json::from_str(&value).map_err(|e| unreadable(name, &e))
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn put(&self, tenant: &TenantId, system: System, creds: &Credentials) -> Result<String, SecretError> {
        let name = self.secret_name(tenant, system);
        let value = serde_json::to_string(creds).map_err(|e| {
            SecretError::Unavailable(format!("cannot encode the credentials of {name}: {:?}", e.classify()))
        })?;
        self.store(&name, value).await?;
        self.cache.write().await.insert(name.clone(), creds.clone());
        tracing::info!(secret = %name, "stored connection credentials");
        Ok(name)
    }

    async fn get(&self, tenant: &TenantId, system: System) -> Result<Credentials, SecretError> {
        let name = self.secret_name(tenant, system);
        if let Some(creds) = self.cache.read().await.get(&name) {
            return Ok(creds.clone());
        }
        let creds = self.fetch(&name).await?;
        self.cache.write().await.insert(name, creds.clone());
        Ok(creds)
    }

    async fn invalidate(&self, tenant: &TenantId, system: System) {
        let name = self.secret_name(tenant, system);
        self.cache.write().await.remove(&name);
        self.webhook_cache.write().await.remove(&self.webhook_secret_name(tenant, system));
    }

    async fn put_webhook_secret(
        &self,
        tenant: &TenantId,
        system: System,
        secret: &SecretString,
    ) -> Result<(), SecretError> {
        let name = self.webhook_secret_name(tenant, system);
        self.store(&name, secret.expose().to_string()).await?;
        self.webhook_cache.write().await.insert(name.clone(), secret.clone());
        tracing::info!(secret = %name, "stored a webhook secret");
        Ok(())
    }

    async fn webhook_secret(&self, tenant: &TenantId, system: System) -> Result<SecretString, SecretError> {
        let name = self.webhook_secret_name(tenant, system);
        if let Some(secret) = self.webhook_cache.read().await.get(&name) {
            return Ok(secret.clone());
        }
        let secret = SecretString::new(self.value(&name).await?);
        self.webhook_cache.write().await.insert(name, secret.clone());
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_secret_is_reported_without_its_value() {
        let e =
            serde_json::from_str::<Credentials>(r#"{"system":"connectwise","private_key":"TOPSECRET"}"#).unwrap_err();
        let err = unreadable("p/t/connectwise", &e).to_string();
        assert!(err.contains("p/t/connectwise") && !err.contains("TOPSECRET"), "{err}");
        let e = serde_json::from_str::<Credentials>("TOPSECRET").unwrap_err();
        assert!(!unreadable("n", &e).to_string().contains("TOPSECRET"));
    }
}
