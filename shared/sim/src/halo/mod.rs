//! The HaloPSA simulator: a seeded tenant ([`Tenant`]) with its CRM seed and ground truth,
//! and a stateful HTTP server ([`Simulator`]) speaking the OAuth2 + `/api` shapes of
//! psa-apis.md section 2, controlled through a [`SimHandle`].

mod auth;
mod error;
mod generator;
mod server;
mod store;
mod system;
mod truth;
pub mod typical;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::common::{SimConfig, SimStats};
pub use crate::seed::{CrmSeed, Expected, SeedCompany, SeedContact, SeedUser};
pub use generator::{CUSTOMER_TYPE_LOOKUP_ID, GenConfig};
pub use typical::{CRM_NOTE_KIND, NO_TYPE, TypicalMapping, typical_mapping};

use crate::common::{Controls, Served};
use auth::Access;
use server::App;
use store::{Store, TenantData};
use truth::Plans;

/// Everything needed to call the simulated API as the tenant's API application.
/// `Debug` never shows the client secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL of the instance, e.g. `http://127.0.0.1:PORT` (API at `{site}/api`, token
    /// at `{site}/auth/token`).
    pub site: String,
    /// The API application's client id.
    pub client_id: String,
    /// The API application's client secret.
    pub client_secret: String,
    /// The hosted tenant name (`?tenant=` on the token URL); `None` when self-hosted.
    pub tenant: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("site", &self.site)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// A generated HaloPSA tenant: its data, the CRM seed, and the ground truth of a full
/// import with the typical mapping.
#[derive(Clone, Debug)]
pub struct Tenant {
    data: TenantData,
    crm_seed: CrmSeed,
    expected: Expected,
    access: Access,
    plans: Plans,
    record_count: usize,
}

impl Tenant {
    /// Generates the tenant of `cfg` (deterministic for a seed and sizes).
    pub fn generate(cfg: &GenConfig) -> Tenant {
        let g = generator::generate(cfg);
        let expected = truth::expected(&g.plans, &typical_mapping());
        let p = &g.plans;
        let record_count =
            p.members.len() + p.companies.len() + p.contacts.len() + p.activities.len() + p.opportunities;
        Tenant { data: g.data, crm_seed: g.seed, expected, access: g.access, plans: g.plans, record_count }
    }

    /// The same tenant served as a self-hosted instance (no `?tenant=` on the token URL).
    pub fn self_hosted(mut self) -> Tenant {
        self.access.tenant = None;
        self
    }

    /// The CRM records as they were before the first import.
    pub fn crm_seed(&self) -> &CrmSeed {
        &self.crm_seed
    }

    /// Ground truth of a full import with [`typical_mapping`]: stage -> outcome -> count.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Number of external records an import reads (agents, clients, users, opportunities
    /// not deleted, CRM notes and actions).
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// Records per import stage (`users`, `companies`, `contacts`, `opportunities`,
    /// `activities`).
    pub fn stage_sizes(&self) -> std::collections::BTreeMap<String, usize> {
        let p = &self.plans;
        [
            (truth::USERS, p.members.len()),
            (truth::COMPANIES, p.companies.len()),
            (truth::CONTACTS, p.contacts.len()),
            (truth::OPPORTUNITIES, p.opportunities),
            (truth::ACTIVITIES, p.activities.len()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The generated records of one resource (`agent`, `client`, `users`, `opportunities`,
    /// `actions`, `crmnote`, and the setup lists), as served before any write.
    pub fn records(&self, resource: &str) -> &[serde_json::Value] {
        self.data.collections.iter().find(|(p, _)| p.eq_ignore_ascii_case(resource)).map_or(&[], |(_, r)| r.as_slice())
    }
}

/// The HaloPSA simulator.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Serves `tenant` on 127.0.0.1:`port` (0: any free port). Needs a Tokio runtime.
    pub async fn start(tenant: Tenant, cfg: SimConfig, port: u16) -> std::io::Result<SimHandle> {
        let Tenant { data, crm_seed, expected, access, .. } = tenant;
        let store = Store::new(data);
        let app = Arc::new(App::new(store, Controls::new(&cfg), access));
        let for_router = Arc::clone(&app);
        let served = Served::start(port, move |_base_url| server::router(for_router)).await?;
        Ok(SimHandle { served, app, crm_seed: Arc::new(crm_seed), expected: Arc::new(expected) })
    }
}

/// A running simulator. Dropping it stops the server too.
#[derive(Debug)]
pub struct SimHandle {
    served: Served,
    app: Arc<App>,
    crm_seed: Arc<CrmSeed>,
    expected: Arc<Expected>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.served.base_url()
    }

    /// The resource server root: `http://127.0.0.1:PORT/api`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    /// Valid credentials of the tenant's API application.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            site: self.base_url(),
            client_id: self.app.access.client_id.clone(),
            client_secret: self.app.access.client_secret.clone(),
            tenant: self.app.access.tenant.clone(),
        }
    }

    /// The next `n` authenticated API requests answer `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.app.controls.fail_next(n, status);
    }

    /// Changes the rate limit (`None`: unlimited).
    pub fn set_requests_per_second(&self, limit: Option<u32>) {
        self.app.controls.set_requests_per_second(limit);
    }

    /// Changes the delay before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.app.controls.set_latency(d);
    }

    /// The lifetime of tokens issued from now on (default one hour; `expires_in` is
    /// rounded up to whole seconds).
    pub fn set_token_lifetime(&self, d: Duration) {
        self.app.tokens.set_lifetime(d);
    }

    /// Makes every token issued so far invalid now (their next use answers 401).
    pub fn expire_tokens(&self) {
        self.app.tokens.expire_all();
    }

    /// Counters since start.
    pub fn stats(&self) -> SimStats {
        self.app.controls.stats()
    }

    /// Ground truth of a full import of the generated tenant.
    pub fn expected(&self) -> Expected {
        (*self.expected).clone()
    }

    /// The CRM seed of the generated tenant.
    pub fn crm_seed(&self) -> CrmSeed {
        (*self.crm_seed).clone()
    }

    /// Stops the server (open requests get up to 5 s to finish).
    pub async fn shutdown(self) {
        self.served.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    async fn start(companies: usize) -> SimHandle {
        let t = Tenant::generate(&GenConfig::with_companies(11, companies));
        Simulator::start(t, SimConfig::default(), 0).await.unwrap()
    }

    async fn token(sim: &SimHandle, tenant: Option<&str>, secret: &str) -> reqwest::Response {
        let c = sim.credentials();
        let url = match tenant {
            Some(t) => format!("{}/auth/token?tenant={t}", c.site),
            None => format!("{}/auth/token", c.site),
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", secret),
                ("scope", "all"),
            ])
            .finish();
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap()
    }

    async fn bearer(sim: &SimHandle) -> String {
        let c = sim.credentials();
        let body: Value = token(sim, c.tenant.as_deref(), &c.client_secret).await.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn get(sim: &SimHandle, token: &str, path: &str) -> reqwest::Response {
        reqwest::Client::new().get(format!("{}{path}", sim.api_url())).bearer_auth(token).send().await.unwrap()
    }

    #[tokio::test]
    async fn the_token_endpoint_wants_the_tenant_and_the_right_secret() {
        let sim = start(5).await;
        let c = sim.credentials();
        assert_eq!(c.tenant.as_deref(), Some("northwind"));
        assert!(!format!("{c:?}").contains(&c.client_secret));
        let missing = token(&sim, None, &c.client_secret).await;
        assert_eq!(missing.status(), 400);
        assert_eq!(missing.json::<Value>().await.unwrap()["error"], "invalid_request");
        let unknown: Value = token(&sim, Some("elsewhere"), &c.client_secret).await.json().await.unwrap();
        assert_eq!(unknown["error"], "invalid_tenant");
        let bad = token(&sim, Some("northwind"), "wrong").await;
        assert_eq!(bad.status(), 400);
        assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_client");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_self_hosted_instance_needs_no_tenant() {
        let t = Tenant::generate(&GenConfig::with_companies(1, 3)).self_hosted();
        let sim = Simulator::start(t, SimConfig::default(), 0).await.unwrap();
        let c = sim.credentials();
        assert_eq!(c.tenant, None);
        assert_eq!(token(&sim, None, &c.client_secret).await.status(), 200);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn api_calls_need_a_live_bearer_token() {
        let sim = start(5).await;
        assert_eq!(get(&sim, "made-up", "/Agent/me").await.status(), 401);
        let tok = bearer(&sim).await;
        let me: Value = get(&sim, &tok, "/Agent/me").await.json().await.unwrap();
        assert_eq!(me["isapiagent"], true);
        sim.expire_tokens();
        assert_eq!(get(&sim, &tok, "/Agent/me").await.status(), 401);
        sim.set_token_lifetime(Duration::from_millis(50));
        let short = bearer_any(&sim).await;
        assert_eq!(get(&sim, &short, "/Agent/me").await.status(), 200);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(get(&sim, &short, "/Agent/me").await.status(), 401);
        assert!(sim.stats().unauthorized >= 3);
        sim.shutdown().await;
    }

    async fn bearer_any(sim: &SimHandle) -> String {
        let c = sim.credentials();
        let body: Value = token(sim, c.tenant.as_deref(), &c.client_secret).await.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn clients_page_through_the_envelope_at_most_a_hundred_at_a_time() {
        let sim = start(250).await;
        let tok = bearer(&sim).await;
        let mut seen = 0;
        let mut total = 0;
        for page in 1..=4 {
            let body: Value =
                get(&sim, &tok, &format!("/Client?pageinate=true&page_no={page}&page_size=500&includeinactive=true"))
                    .await
                    .json()
                    .await
                    .unwrap();
            total = body["record_count"].as_u64().unwrap();
            let n = body["clients"].as_array().unwrap().len();
            assert!(n <= 100);
            seen += n;
        }
        assert_eq!((seen as u64, total), (250, 250));
        let active: Value = get(&sim, &tok, "/Client?pageinate=true&page_size=1").await.json().await.unwrap();
        assert!(active["record_count"].as_u64().unwrap() < 250);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn role_ids_are_seeded_guids_the_agents_roles_refer_to_and_a_role_is_read_by_its_guid() {
        let guid = |v: &Value| {
            let s = v.as_str().unwrap_or_default();
            let parts: Vec<usize> = s.split('-').map(str::len).collect();
            parts == [8, 4, 4, 4, 12] && s.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
        };
        let ids = |seed| {
            Tenant::generate(&GenConfig::with_companies(seed, 3))
                .records("roles")
                .iter()
                .map(|r| r["id"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(11), ids(11));
        assert_ne!(ids(11), ids(12));
        let sim = start(40).await;
        let tok = bearer(&sim).await;
        let roles: Value = get(&sim, &tok, "/Roles").await.json().await.unwrap();
        let roles = roles.as_array().unwrap();
        assert!(roles.iter().all(|r| guid(&r["id"])), "{roles:?}");
        let agents: Value =
            get(&sim, &tok, "/Agent?includeroles=true&includedisabled=true").await.json().await.unwrap();
        for role in agents.as_array().unwrap().iter().flat_map(|a| a["roles"].as_array().unwrap()) {
            assert!(roles.iter().any(|r| r["id"] == role["id"] && r["name"] == role["name"]), "{role}");
        }
        let one = roles[1]["id"].as_str().unwrap();
        let read: Value = get(&sim, &tok, &format!("/Roles/{}", one.to_uppercase())).await.json().await.unwrap();
        assert_eq!(read, roles[1]);
        assert_eq!(get(&sim, &tok, "/Roles/00000000-0000-4000-8000-000000000000").await.status(), 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn setup_lists_and_filters_answer_like_halo() {
        let sim = start(40).await;
        let tok = bearer(&sim).await;
        let roles: Value = get(&sim, &tok, "/Roles").await.json().await.unwrap();
        assert_eq!(roles.as_array().unwrap().len(), 5);
        let types: Value =
            get(&sim, &tok, &format!("/Lookup?lookupid={CUSTOMER_TYPE_LOOKUP_ID}")).await.json().await.unwrap();
        assert!(types.as_array().unwrap().iter().any(|t| t["name"] == "Customer"));
        let agents: Value = get(&sim, &tok, "/Agent?includeroles=true").await.json().await.unwrap();
        let all: Value = get(&sim, &tok, "/Agent?includeroles=true&includedisabled=true").await.json().await.unwrap();
        assert!(agents.as_array().unwrap().len() < all.as_array().unwrap().len());
        assert!(all[0]["roles"].is_array());
        let since: Value = get(
            &sim,
            &tok,
            "/Users?pageinate=true&page_size=1&includeinactive=true&lastupdatefromdate=2025-01-01T00:00:00",
        )
        .await
        .json()
        .await
        .unwrap();
        let every: Value =
            get(&sim, &tok, "/Users?pageinate=true&page_size=1&includeinactive=true").await.json().await.unwrap();
        assert!(since["record_count"].as_u64().unwrap() < every["record_count"].as_u64().unwrap());
        assert_eq!(get(&sim, &tok, "/Nothing").await.status(), 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn posting_an_array_creates_and_updates() {
        let sim = start(5).await;
        let tok = bearer(&sim).await;
        let http = reqwest::Client::new();
        let made: Value = http
            .post(format!("{}/Client", sim.api_url()))
            .bearer_auth(&tok)
            .json(&serde_json::json!([{"name": "Fresh Co"}]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = made["id"].as_i64().unwrap();
        let updated: Value = http
            .post(format!("{}/Client", sim.api_url()))
            .bearer_auth(&tok)
            .json(&serde_json::json!([{"id": id, "website": "fresh.example"}]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!((updated["name"].as_str(), updated["website"].as_str()), (Some("Fresh Co"), Some("fresh.example")));
        let got: Value = get(&sim, &tok, &format!("/Client/{id}")).await.json().await.unwrap();
        assert_eq!(got["website"], "fresh.example");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn each_resource_serves_one_record_bare_by_id_and_a_missing_id_is_404() {
        let t = Tenant::generate(&GenConfig::with_companies(11, 20));
        let resources = ["Agent", "Client", "Users", "Opportunities", "CRMNote", "Actions"];
        let firsts: Vec<Value> = resources.iter().map(|r| t.records(r)[0].clone()).collect();
        let sim = Simulator::start(t, SimConfig::default(), 0).await.unwrap();
        let tok = bearer(&sim).await;
        for (resource, record) in resources.iter().zip(&firsts) {
            let id = record["id"].as_i64().unwrap();
            let one = get(&sim, &tok, &format!("/{resource}/{id}")).await;
            assert_eq!(one.status(), 200, "{resource}/{id}");
            assert_eq!(&one.json::<Value>().await.unwrap(), record, "{resource}/{id}: the record, no envelope");
            let missing = get(&sim, &tok, &format!("/{resource}/987654321")).await;
            assert_eq!(missing.status(), 404, "{resource}");
            let body: Value = missing.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().contains("987654321"), "{resource}: {body}");
        }
        assert_eq!(sim.stats().gets_by_path.get("client/{id}"), Some(&1), "{:?}", sim.stats().gets_by_path);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_rate_limit_and_injected_failures_apply_to_api_calls() {
        let sim = start(5).await;
        let tok = bearer(&sim).await;
        sim.set_requests_per_second(Some(1));
        assert_eq!(get(&sim, &tok, "/Roles").await.status(), 200);
        let throttled = get(&sim, &tok, "/Roles").await;
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.headers()["retry-after"], "1");
        sim.set_requests_per_second(None);
        sim.fail_next(1, 503);
        assert_eq!(get(&sim, &tok, "/Roles").await.status(), 503);
        assert_eq!(get(&sim, &tok, "/Roles").await.status(), 200);
        let s = sim.stats();
        assert_eq!((s.throttled, s.injected_failures), (1, 1));
        sim.shutdown().await;
    }
}
