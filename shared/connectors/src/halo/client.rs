//! HaloPSA requests (psa-apis.md 2.1): the resource server root `{site}/api` and the bearer
//! token from [`Auth`] (renewed once on a 401), sent through the shared [`Transport`]
//! (pacing, retry, secrets scrubbed) and classified by [`super::error`]: reads (`GET`) and
//! writes (`POST` of an array, psa-apis.md 2.5).

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::Value;
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::HaloCredentials;
use url::Url;

use super::auth::Auth;
use super::error::Api;
use crate::http::{RetryPolicy, Settings};
use crate::pacing::Rate;
use crate::transport::{Limits, Request, Transport};

/// The rate one connection is paced at. UNCONFIRMED: HaloPSA declares 429 but publishes no
/// number in the sources read (psa-apis.md 2.7); "about 700 requests per 5 minutes per
/// tenant" is quoted elsewhere and taken here. Change it here when the limit is known.
pub const REQUEST_RATE: Rate = Rate { requests: 700, per: std::time::Duration::from_secs(5 * 60) };

/// What the transport needs to know of HaloPSA's limits: [`REQUEST_RATE`]; no usage header
/// is documented (psa-apis.md 2.7).
pub const LIMITS: Limits = Limits { rate: REQUEST_RATE, usage: None };

/// A HaloPSA HTTP client for one connection. `Debug` never shows the secret or a token.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    /// `{site origin}/api`.
    api_root: String,
    auth: Auth,
}

impl Client {
    /// A client for these credentials. No network call; fails only when the site or the
    /// auth URL is not a host or URL.
    pub fn new(http: reqwest::Client, settings: &Settings, creds: &HaloCredentials) -> Result<Self, ConnectorError> {
        let origin = site_origin(&creds.site).map_err(|reason| {
            ConnectorError::new(
                System::Halo,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a HaloPSA site: {reason}", creds.site.trim()),
            )
        })?;
        let api_root = format!("{origin}/api");
        let auth = Auth::new(creds, &origin)?;
        let connection = format!("{api_root} {}", auth.tenant().unwrap_or_default());
        let transport =
            Transport::new(System::Halo, http, settings, &connection, LIMITS).scrubbing(&creds.client_secret);
        Ok(Self { transport, api_root, auth })
    }

    /// The resource server root, `{site}/api`.
    pub fn api_root(&self) -> &str {
        &self.api_root
    }

    /// The tenant name, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.auth.tenant()
    }

    /// The transport (pacing included) of this connection.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// An authenticated `GET {api}{path}?{query}` with retry; `path` starts with `/`.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let request = Request::get(url, path).header(ACCEPT, HeaderValue::from_static("application/json"));
        self.authorised(&request, policy).await
    }

    /// An authenticated `POST {api}{path}` of a JSON array of records: Halo creates those
    /// without an `id` and updates those with one (psa-apis.md 2.5). `idempotent` only for
    /// an update (the same values twice): a create that may have reached Halo is not sent
    /// again (see [`crate::transport`]).
    pub async fn post(
        &self,
        path: &str,
        records: &Value,
        idempotent: bool,
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let body = serde_json::to_vec(records).map_err(|e| self.invalid(format!("body for {path}: {e}")))?;
        let request = Request::new(Method::POST, self.url(path)?, path)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body("application/json", body)
            .idempotent(idempotent);
        self.authorised(&request, policy).await
    }

    /// An authenticated `DELETE {api}{path}`, idempotent as HTTP defines it.
    pub async fn delete(&self, path: &str, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let request = Request::new(Method::DELETE, self.url(path)?, path).idempotent(true);
        self.authorised(&request, policy).await
    }

    fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        Url::parse(&format!("{}{path}", self.api_root)).map_err(|e| self.invalid(format!("bad path {path}: {e}")))
    }

    fn invalid(&self, message: String) -> ConnectorError {
        self.transport.scrub(ConnectorError::new(System::Halo, ErrorKind::Invalid, message))
    }

    /// Sends `request` with the bearer token. On a 401 the token is renewed once (the cached
    /// one may have expired or been revoked early) and the request sent again: a 401 means
    /// Halo did not carry it out.
    async fn authorised(&self, request: &Request, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let token = self.auth.header(&self.transport, policy).await?;
        match self.send(request, token.clone(), policy).await {
            Err(e) if e.kind == ErrorKind::Unauthorized => {
                tracing::debug!(endpoint = %request.endpoint, "HaloPSA refused the token; renewing it once");
                self.auth.invalidate(&token).await;
                let fresh = self.auth.header(&self.transport, policy).await?;
                self.send(request, fresh, policy).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        request: &Request,
        token: HeaderValue,
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let request = request.clone().header(AUTHORIZATION, token);
        Ok(self.transport.send(&request, policy, &Api).await?.body)
    }
}

/// `scheme://host[:port]` of a site given as a host (`acme.halopsa.com`, taken as
/// `https://`) or a URL (the simulator's `http://127.0.0.1:PORT`); any path (e.g. `/api`)
/// is dropped.
pub fn site_origin(site: &str) -> Result<String, String> {
    let site = site.trim();
    if site.is_empty() {
        return Err("the site is empty".into());
    }
    let with_scheme = if site.contains("://") { site.to_string() } else { format!("https://{site}") };
    let url = Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".into());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_host_is_taken_as_https_and_paths_are_dropped() {
        assert_eq!(site_origin("acme.halopsa.com").unwrap(), "https://acme.halopsa.com");
        assert_eq!(site_origin("https://acme.halopsa.com/api/").unwrap(), "https://acme.halopsa.com");
        assert_eq!(site_origin("http://127.0.0.1:9000").unwrap(), "http://127.0.0.1:9000");
        assert!(site_origin("not a host").is_err());
        assert!(site_origin("").is_err());
    }
}
