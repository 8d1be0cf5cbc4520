//! HaloPSA requests (psa-apis.md 2.1): the resource server root `{site}/api`, the bearer
//! token from [`Auth`] (renewed once on a 401), retry via [`crate::http`], and the body or
//! a classified error.

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::{HaloCredentials, SecretString};
use url::Url;

use super::auth::Auth;
use super::error;
use crate::hosts::HostPolicy;
use crate::http::{self, RetryPolicy};

/// The shortest secret scrubbed from messages.
const MIN_SCRUBBED_SECRET_LEN: usize = 6;

/// A HaloPSA HTTP client for one connection. `Debug` never shows the secret or a token.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The hosts requests may go to.
    hosts: HostPolicy,
    /// `{site origin}/api`.
    api_root: String,
    auth: Auth,
    /// Kept only to scrub it from any message, should a server ever echo it.
    secret: SecretString,
}

impl Client {
    /// A client for these credentials. No network call; fails only when the site or the
    /// auth URL is not a host or URL.
    pub fn new(http: reqwest::Client, hosts: HostPolicy, creds: &HaloCredentials) -> Result<Self, ConnectorError> {
        let origin = site_origin(&creds.site).map_err(|reason| {
            ConnectorError::new(
                System::Halo,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a HaloPSA site: {reason}", creds.site.trim()),
            )
        })?;
        Ok(Self {
            http,
            hosts,
            api_root: format!("{origin}/api"),
            auth: Auth::new(creds, &origin)?,
            secret: creds.client_secret.clone(),
        })
    }

    /// The resource server root, `{site}/api`.
    pub fn api_root(&self) -> &str {
        &self.api_root
    }

    /// The tenant name, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.auth.tenant()
    }

    /// An authenticated `GET {api}{path}?{query}` with retry; `path` starts with `/`.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let mut url = Url::parse(&format!("{}{path}", self.api_root)).map_err(|e| {
            self.scrub(ConnectorError::new(System::Halo, ErrorKind::Invalid, format!("bad path {path}: {e}")))
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        http::send_with_retry(policy, || async { self.attempt(&url, path).await.map_err(|e| self.scrub(e)) }).await
    }

    /// One request with the current token; on a 401, one more with a fresh token (the
    /// cached one may have expired or been revoked early).
    async fn attempt(&self, url: &Url, endpoint: &str) -> Result<Vec<u8>, ConnectorError> {
        let header = self.auth.header(&self.http, self.hosts).await?;
        match self.send(url, endpoint, header.clone()).await {
            Err(e) if e.kind == ErrorKind::Unauthorized => {
                tracing::debug!(endpoint, "HaloPSA refused the token; renewing it once");
                self.auth.invalidate(&header).await;
                let fresh = self.auth.header(&self.http, self.hosts).await?;
                self.send(url, endpoint, fresh).await
            }
            other => other,
        }
    }

    async fn send(&self, url: &Url, endpoint: &str, token: HeaderValue) -> Result<Vec<u8>, ConnectorError> {
        let what = format!("requesting {endpoint}");
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, token);
        let response = http::send(System::Halo, self.hosts, request, &what).await?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        let content_type = http::content_type(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(System::Halo, &e, &format!("reading {endpoint}")))?;
        if !(200..300).contains(&status) {
            return Err(error::from_response(status, retry_after, content_type.as_deref(), &body, endpoint));
        }
        Ok(body.to_vec())
    }

    /// Replaces the client secret in a message, should a server ever echo it back.
    fn scrub(&self, mut err: ConnectorError) -> ConnectorError {
        let secret = self.secret.expose().trim();
        if secret.len() >= MIN_SCRUBBED_SECRET_LEN && err.message.contains(secret) {
            err.message = err.message.replace(secret, "***");
        }
        err
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
