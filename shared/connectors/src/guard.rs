//! The credential check's guard, put once around every connector the factory builds: the
//! hosts the credentials name are checked against the address policy (resolved, so a name
//! pointing at a refused address is refused too) before the first request, and the whole
//! check is held to [`Settings::check_deadline`](crate::Settings::check_deadline).

use std::sync::Arc;

use async_trait::async_trait;
use tandem_domain::external::{AccountInfo, Choice, Cursor, ExternalRecord, OptionList, Page};
use tandem_domain::ports::{Connector, ConnectorError, ObjectQuery, ObjectRow, Written};
use tandem_domain::secret::Credentials;
use tandem_domain::{RecordKind, System, Timestamp};
use url::{Host, Url};

use crate::http::{self, Settings};
use crate::{connectwise, halo, salesforce, syncro};

/// A connector whose credential check is guarded; everything else passes through.
pub struct Guarded {
    inner: Arc<dyn Connector>,
    settings: Settings,
    /// The hosts the credentials name (site, and Halo's auth host), checked before the check.
    hosts: Vec<Host<String>>,
}

impl Guarded {
    /// Guards `inner`, built from `creds` with `settings`.
    pub fn new(inner: Arc<dyn Connector>, settings: Settings, creds: &Credentials) -> Self {
        Self { inner, settings, hosts: hosts_of(creds) }
    }
}

/// The hosts a connector for `creds` calls first: the site (ConnectWise, Halo, Syncro) or
/// login URL (Salesforce), and Halo's separate auth URL when one is given. Sites the
/// connector could not read are left out (building it already failed).
pub fn hosts_of(creds: &Credentials) -> Vec<Host<String>> {
    let urls = match creds {
        Credentials::ConnectWise(c) => vec![connectwise::client::site_origin(&c.site).ok()],
        Credentials::Halo(c) => {
            let site = halo::client::site_origin(&c.site).ok();
            let auth = site.as_deref().map(|origin| halo::auth::auth_root(c, origin));
            vec![site, auth]
        }
        Credentials::Syncro(c) => vec![syncro::client::api_root(&c.site).ok()],
        Credentials::Salesforce(c) => vec![salesforce::client::origin(&c.login_url).ok()],
    };
    let mut hosts: Vec<Host<String>> = Vec::new();
    for host in urls.into_iter().flatten().filter_map(|u| Url::parse(&u).ok()?.host().map(|h| h.to_owned())) {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

#[async_trait]
impl Connector for Guarded {
    fn system(&self) -> System {
        self.inner.system()
    }

    /// The hosts checked (nothing is sent to a refused one), then the connector's own check,
    /// all within the check deadline.
    async fn check(&self) -> Result<AccountInfo, ConnectorError> {
        let system = self.inner.system();
        let first = self.hosts.first().map_or_else(|| "the host".to_string(), ToString::to_string);
        http::within_check_deadline(system, self.settings.check_deadline, &first, async {
            let policy = self.settings.hosts();
            for host in &self.hosts {
                policy.check_host_resolving(host).await.map_err(|refused| refused.into_error(system, "site"))?;
            }
            self.inner.check().await
        })
        .await
    }

    /// Every request this connector's transports sent, retries and token requests included.
    fn calls(&self) -> u64 {
        self.settings.calls.get()
    }

    /// The rate the transport paces the connection at (the system's published rate unless
    /// the settings name another), in requests per second; `None` when pacing is off.
    fn pace(&self) -> Option<f64> {
        self.settings.pacing.rate(crate::limits(self.inner.system()).rate).map(|r| r.per_second_f64())
    }

    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError> {
        self.inner.options(list).await
    }

    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        self.inner.list(kind, cursor).await
    }

    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        self.inner.get(kind, id).await
    }

    async fn deleted_since(&self, kind: RecordKind, since: Timestamp) -> Result<Option<Vec<String>>, ConnectorError> {
        self.inner.deleted_since(kind, since).await
    }

    async fn describe_object(
        &self,
        object: &str,
    ) -> Result<Option<tandem_domain::field_map::ObjectDescribe>, ConnectorError> {
        self.inner.describe_object(object).await
    }

    async fn query_objects(&self, query: &ObjectQuery) -> Result<Vec<ObjectRow>, ConnectorError> {
        self.inner.query_objects(query).await
    }

    async fn create_object(&self, object: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
        self.inner.create_object(object, fields).await
    }

    async fn update_object(&self, object: &str, id: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
        self.inner.update_object(object, id, fields).await
    }

    async fn find_similar(&self, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
        self.inner.find_similar(record).await
    }

    async fn create(&self, record: &ExternalRecord) -> Result<Written, ConnectorError> {
        self.inner.create(record).await
    }

    async fn register_webhook(&self, url: &str, secret: &str) -> Result<Option<String>, ConnectorError> {
        self.inner.register_webhook(url, secret).await
    }

    async fn unregister_webhook(&self, url: &str) -> Result<(), ConnectorError> {
        self.inner.unregister_webhook(url).await
    }

    async fn webhook_proof(&self, secret: &[u8]) -> Result<Vec<u8>, ConnectorError> {
        self.inner.webhook_proof(secret).await
    }

    async fn webhook_key(&self, key_url: &str) -> Result<Vec<u8>, ConnectorError> {
        self.inner.webhook_key(key_url).await
    }

    fn create_batch(&self) -> usize {
        self.inner.create_batch()
    }

    async fn create_many(&self, records: &[ExternalRecord]) -> Vec<Result<Written, ConnectorError>> {
        self.inner.create_many(records).await
    }

    async fn update(&self, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError> {
        self.inner.update(record, fields).await
    }

    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
        self.inner.delete(kind, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::secret::{HaloCredentials, SecretString};

    #[test]
    fn halo_credentials_name_the_site_and_a_separate_auth_host() {
        let creds = Credentials::Halo(HaloCredentials {
            site: "acme.halopsa.com".into(),
            auth_url: Some("https://169.254.169.254/auth".into()),
            tenant: None,
            client_id: "id".into(),
            client_secret: SecretString::new("secret"),
        });
        let hosts: Vec<String> = hosts_of(&creds).iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["acme.halopsa.com", "169.254.169.254"]);
    }
}
