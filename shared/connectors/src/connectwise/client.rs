//! ConnectWise requests: the site -> API root discovery (psa-apis.md 1.1, S2/S3
//! `/login/companyinfo`), the versioned `Accept` header and authentication, sent through the
//! shared [`Transport`] (pacing, retry, secrets scrubbed) and classified by [`super::error`]:
//! reads (`GET`), creates (`POST`), partial updates (`PATCH`, JSON Patch) and deletes.

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue, LINK};
use serde_json::Value;
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::ConnectWiseCredentials;
use tokio::sync::OnceCell;
use url::Url;

use super::auth::Auth;
use super::error::Api;
use super::models::CompanyInfo;
use crate::http::{RetryPolicy, Settings};
use crate::pacing::Rate;
use crate::transport::{Limits, Request, Transport};

/// The API version asked for with the media type (psa-apis.md 1.1: responses are declared
/// as `application/vnd.connectwise.com+json; version=2025.8`; S3 builds the same string).
pub const ACCEPT_VERSIONED: &str = "application/vnd.connectwise.com+json; version=2025.8";

/// The path under the codebase where REST 3.0 lives (psa-apis.md 1.1).
pub const API_PATH: &str = "apis/3.0";

/// The rate one connection is paced at. UNCONFIRMED: ConnectWise publishes no numeric limit
/// (psa-apis.md 1.9: cloud sits behind Cloudflare, which answers 429 telling the client how
/// long to wait; a third-party page claims "60/min", another "no documented hard rate
/// limits"). The 60/min claim is not taken: a page of opportunities reads one forecast per
/// opportunity, and at one request a second a 1000-row page would outlast a Lambda. We
/// start at 10 a second and let Cloudflare's 429s + `Retry-After` cut the rate
/// ([`crate::pacing`]). Change it here when the limit is known.
pub const REQUEST_RATE: Rate = Rate::per_second(10);

/// What the transport needs to know of ConnectWise's limits: [`REQUEST_RATE`]; no usage
/// header is documented (psa-apis.md 1.9).
pub const LIMITS: Limits = Limits { rate: REQUEST_RATE, usage: None };

/// One successful answer.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The body, unparsed.
    pub body: Vec<u8>,
    /// The `Link` header(s), joined with `, ` (psa-apis.md 1.5).
    pub link: Option<String>,
}

/// A ConnectWise HTTP client for one connection: site, company, keys, and the API root
/// once discovered. `Debug` never shows the private key.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    /// `scheme://host[:port]` of the site, no trailing slash.
    origin: String,
    company_id: String,
    auth: Auth,
    root: OnceCell<String>,
}

impl Client {
    /// A client for these credentials. No network call; fails only when the site is not a
    /// host or URL, or a credential cannot go into a header.
    pub fn new(
        http: reqwest::Client,
        settings: &Settings,
        creds: &ConnectWiseCredentials,
    ) -> Result<Self, ConnectorError> {
        let origin = site_origin(&creds.site).map_err(|reason| {
            ConnectorError::new(
                System::ConnectWise,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a ConnectWise site: {reason}", creds.site.trim()),
            )
        })?;
        let company_id = creds.company_id.trim().to_string();
        let connection = format!("{origin} {company_id}");
        let transport =
            Transport::new(System::ConnectWise, http, settings, &connection, LIMITS).scrubbing(&creds.private_key);
        Ok(Self { transport, origin, company_id, auth: Auth::new(creds)?, root: OnceCell::new() })
    }

    /// The site as `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The ConnectWise company id.
    pub fn company_id(&self) -> &str {
        &self.company_id
    }

    /// The transport (pacing included) of this connection.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The REST root, `{site}/{codebase}/apis/3.0`, discovered on first use and cached.
    pub async fn api_root(&self, policy: &RetryPolicy) -> Result<&str, ConnectorError> {
        self.root.get_or_try_init(|| self.discover(policy)).await.map(String::as_str)
    }

    /// `GET {site}/login/companyinfo/{companyId}` without auth; its `Codebase` (e.g.
    /// `v4_6_release/`) without slashes names the root (psa-apis.md 1.1, S2). An unknown
    /// company answers 404 or a body without a codebase: UnknownAccount.
    async fn discover(&self, policy: &RetryPolicy) -> Result<String, ConnectorError> {
        let mut url = Url::parse(&self.origin).map_err(|e| self.invalid(format!("bad site URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| self.invalid("the site URL cannot hold a path".into()))?
            .pop_if_empty()
            .extend(["login", "companyinfo", self.company_id.as_str()]);
        let endpoint = format!("/login/companyinfo/{}", self.company_id);
        let request = Request::get(url, endpoint).header(ACCEPT, HeaderValue::from_static("application/json"));
        let answer = self.transport.send(&request, policy, &Api { company_id: &self.company_id }).await;
        let unknown = |why: &str| {
            ConnectorError::new(
                System::ConnectWise,
                ErrorKind::UnknownAccount,
                format!(
                    "ConnectWise site '{}' does not know company '{}' ({why}); check the company id and the site",
                    self.origin, self.company_id
                ),
            )
        };
        let answer = match answer {
            Err(e) if e.status == Some(404) => return Err(unknown("companyinfo answered 404 Not Found")),
            other => other?,
        };
        let info: CompanyInfo = serde_json::from_slice(&answer.body).unwrap_or_default();
        let codebase = info.codebase.as_deref().map(|c| c.trim().trim_matches('/')).unwrap_or("");
        if codebase.is_empty() {
            return Err(unknown("companyinfo has no codebase"));
        }
        let root = format!("{}/{codebase}/{API_PATH}", self.origin);
        Url::parse(&root).map_err(|e| self.invalid(format!("codebase {codebase:?} makes no URL: {e}")))?;
        tracing::debug!(company = %self.company_id, root = %root, "ConnectWise API root discovered");
        Ok(root)
    }

    /// The signing key a callback names (`Metadata.key_url`, psa-apis.md 1.8: `GET` answers
    /// `{"signing_key": "..."}`), fetched only from this site's own origin (scheme, host and
    /// port): a callback naming another host is refused, so a forged call cannot make
    /// Tandem fetch (or trust) a key of its choosing.
    pub async fn signing_key(&self, key_url: &str, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let url = Url::parse(key_url).map_err(|e| self.invalid(format!("the callback's key_url is not a URL: {e}")))?;
        let origin = Url::parse(&self.origin).map_err(|e| self.invalid(format!("bad site URL: {e}")))?;
        if (url.scheme(), url.host_str(), url.port_or_known_default())
            != (origin.scheme(), origin.host_str(), origin.port_or_known_default())
        {
            return Err(self.invalid(format!(
                "the callback's key_url is not on this connection's ConnectWise site {}",
                self.origin
            )));
        }
        let mut request =
            Request::get(url, "/system/callbackkey").header(ACCEPT, HeaderValue::from_static("application/json"));
        self.auth.insert(&mut request.headers);
        let answer = self.transport.send(&request, policy, &Api { company_id: &self.company_id }).await?;
        #[derive(serde::Deserialize)]
        struct Key {
            signing_key: String,
        }
        let key: Key = serde_json::from_slice(&answer.body)
            .map_err(|_| self.invalid("the callback's key_url did not answer a signing_key".into()))?;
        Ok(key.signing_key.into_bytes())
    }

    /// An authenticated `GET {root}{path}?{query}` with retry; `path` starts with `/`.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        policy: &RetryPolicy,
    ) -> Result<Answer, ConnectorError> {
        let request = self.request(Method::GET, path, query, policy).await?;
        let answer = self.transport.send(&request, policy, &Api { company_id: &self.company_id }).await?;
        let links: Vec<&str> = answer.headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).collect();
        let link = if links.is_empty() { None } else { Some(links.join(", ")) };
        Ok(Answer { body: answer.body, link })
    }

    /// An authenticated `POST {root}{path}` of a JSON object: a create (psa-apis.md 1.7),
    /// never repeated once it may have reached ConnectWise (see [`crate::transport`]).
    pub async fn post(&self, path: &str, body: &Value, policy: &RetryPolicy) -> Result<Answer, ConnectorError> {
        self.send_json(Method::POST, path, body, false, policy).await
    }

    /// An authenticated `PATCH {root}{path}` of JSON-Patch operations (psa-apis.md 1.7).
    /// `idempotent` when sending it twice sets the same values (every operation a
    /// `replace`), so a timed-out one may be sent again.
    pub async fn patch(
        &self,
        path: &str,
        operations: &Value,
        idempotent: bool,
        policy: &RetryPolicy,
    ) -> Result<Answer, ConnectorError> {
        self.send_json(Method::PATCH, path, operations, idempotent, policy).await
    }

    /// An authenticated `DELETE {root}{path}` (psa-apis.md 1.7, answered 204), idempotent as
    /// HTTP defines it.
    pub async fn delete(&self, path: &str, policy: &RetryPolicy) -> Result<(), ConnectorError> {
        let request = self.request(Method::DELETE, path, &[], policy).await?;
        self.transport.send(&request, policy, &Api { company_id: &self.company_id }).await?;
        Ok(())
    }

    async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        idempotent: bool,
        policy: &RetryPolicy,
    ) -> Result<Answer, ConnectorError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.invalid(format!("body for {path}: {e}")))?;
        let request =
            self.request(method, path, &[], policy).await?.body("application/json", bytes).idempotent(idempotent);
        let answer = self.transport.send(&request, policy, &Api { company_id: &self.company_id }).await?;
        Ok(Answer { body: answer.body, link: None })
    }

    /// A request of `method` to `{root}{path}?{query}` with the versioned `Accept` and the
    /// keys; `path` starts with `/`.
    async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        policy: &RetryPolicy,
    ) -> Result<Request, ConnectorError> {
        let root = self.api_root(policy).await?;
        let mut url =
            Url::parse(&format!("{root}{path}")).map_err(|e| self.invalid(format!("bad path {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = Request::new(method, url, path).header(ACCEPT, HeaderValue::from_static(ACCEPT_VERSIONED));
        self.auth.insert(&mut request.headers);
        Ok(request)
    }

    fn invalid(&self, message: String) -> ConnectorError {
        self.transport.scrub(ConnectorError::new(System::ConnectWise, ErrorKind::Invalid, message))
    }
}

/// `scheme://host[:port]` of a site given as a host (`api-na.myconnectwise.net`, taken as
/// `https://`) or a URL with a scheme (the simulator's `http://127.0.0.1:PORT`). Any path
/// is dropped: companyinfo and the codebase hang off the host root (psa-apis.md 1.1).
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
    fn a_bare_host_is_taken_as_https() {
        assert_eq!(site_origin("api-na.myconnectwise.net").unwrap(), "https://api-na.myconnectwise.net");
        assert_eq!(site_origin(" api-eu.myconnectwise.net/ ").unwrap(), "https://api-eu.myconnectwise.net");
    }

    #[test]
    fn a_full_url_keeps_its_scheme_and_port_and_drops_the_path() {
        assert_eq!(site_origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(site_origin("https://cw.example.com/v4_6_release/apis/3.0/").unwrap(), "https://cw.example.com");
    }

    #[test]
    fn a_site_that_is_not_a_host_is_refused() {
        assert!(site_origin("").is_err());
        assert!(site_origin("ftp://x.com").is_err());
        assert!(site_origin("http://").is_err());
        assert!(site_origin("not a host").is_err());
    }
}
