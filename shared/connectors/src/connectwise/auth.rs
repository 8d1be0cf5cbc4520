//! ConnectWise authentication (psa-apis.md 1.2; S2 `_get_auth_string`, S3 Connect-CWM):
//! HTTP Basic `base64("{companyId}+{publicKey}:{privateKey}")` plus the `clientId` header
//! on every call. The header value is marked sensitive and never printed.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::ConnectWiseCredentials;

/// The header carrying the integration's clientId (S2 sends `clientId`; names are
/// case-insensitive).
pub const CLIENT_ID_HEADER: HeaderName = HeaderName::from_static("clientid");

/// The headers that authenticate a request. `Debug` shows the user name only.
#[derive(Clone)]
pub struct Auth {
    user: String,
    authorization: HeaderValue,
    client_id: HeaderValue,
}

impl Auth {
    /// Builds the headers from the credentials. Fails (Invalid, naming the field but never
    /// its secret value) when a value cannot go into an HTTP header.
    pub fn new(creds: &ConnectWiseCredentials) -> Result<Self, ConnectorError> {
        let user = format!("{}+{}", creds.company_id.trim(), creds.public_key.trim());
        let token = STANDARD.encode(format!("{user}:{}", creds.private_key.expose().trim()));
        // Base64 is always a valid header value; the error arm is defensive.
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
            bad_credentials("the company id, public key or private key holds characters HTTP cannot carry")
        })?;
        authorization.set_sensitive(true);
        let client_id = HeaderValue::from_str(creds.client_id.trim())
            .map_err(|_| bad_credentials("the clientId holds characters HTTP headers cannot carry"))?;
        Ok(Self { user, authorization, client_id })
    }

    /// Adds `Authorization` and `clientId` to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, self.authorization.clone()).header(CLIENT_ID_HEADER, self.client_id.clone())
    }

    /// Puts `Authorization` and `clientId` into a request's headers.
    pub fn insert(&self, headers: &mut HeaderMap) {
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CLIENT_ID_HEADER, self.client_id.clone());
    }

    /// The Basic user name, `{companyId}+{publicKey}` (not secret).
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("user", &self.user).field("authorization", &"***").finish_non_exhaustive()
    }
}

fn bad_credentials(message: &str) -> ConnectorError {
    ConnectorError::new(System::ConnectWise, ErrorKind::UnknownAccount, format!("ConnectWise credentials: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::secret::SecretString;

    fn creds(private_key: &str) -> ConnectWiseCredentials {
        ConnectWiseCredentials {
            site: "api-na.myconnectwise.net".into(),
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new(private_key),
            client_id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
        }
    }

    #[test]
    fn the_basic_header_joins_company_public_and_private_key() {
        let auth = Auth::new(&creds("s3cret")).unwrap();
        let req = auth.apply(reqwest::Client::new().get("http://localhost/x")).build().unwrap();
        let expected = format!("Basic {}", STANDARD.encode("acme+pub:s3cret"));
        assert_eq!(req.headers()[AUTHORIZATION], expected.as_str());
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
        assert_eq!(req.headers()["clientId"], "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    }

    #[test]
    fn debug_output_never_shows_the_key_or_the_header() {
        let auth = Auth::new(&creds("s3cret")).unwrap();
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cret") && !shown.contains(&STANDARD.encode("acme+pub:s3cret")), "{shown}");
        assert!(shown.contains("acme+pub"), "{shown}");
    }

    #[test]
    fn a_key_http_cannot_carry_is_refused_without_echoing_it() {
        let mut c = creds("fine");
        c.client_id = "bad\nid".into();
        let err = Auth::new(&c).unwrap_err();
        assert!(err.message.contains("clientId") && !err.message.contains("bad\nid"), "{}", err.message);
    }
}
