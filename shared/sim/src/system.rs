//! The one shape every simulated system shares: a [`SimulatedSystem`] generates a
//! [`SimTenant`] from a common [`Scale`]; the tenant knows its ground truth, CRM seed,
//! record counts, the fewest requests a first import of it needs ([`RequestFloor`]) and its
//! raw lists, and serves itself as a [`RunningSystem`] (base URL, credentials, counters,
//! knobs, shutdown). [`simulators`] and [`simulator`] are the registry, so runners, the
//! connector contract suite and the benchmark hold no per-system arms.
//!
//! Each system implements the traits once, in its own folder (`<system>/system.rs`).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::Controls;
use crate::common::{SimConfig, SimStats};
use crate::connectwise::typical::TypicalMapping;
use crate::seed::{CrmSeed, Expected};
use crate::webhooks::{Kind, PersonError, SentWebhook};

/// A boxed future, so the traits stay object-safe without an async-trait crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How big and which tenant to generate, the same for every system. `companies` drives the
/// rest; an override applies where the system has that object (`members` are Syncro's and
/// Salesforce's users, `opportunities` Syncro's leads, `catalog_items` only ConnectWise's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    /// Seed of the generator: the same seed and sizes give the same tenant.
    pub seed: u64,
    /// Companies (accounts, clients, customers).
    pub companies: usize,
    /// Users of the system (members, agents, users); `None`: scaled from `companies`.
    pub members: Option<usize>,
    /// Contacts; `None`: scaled from `companies`.
    pub contacts: Option<usize>,
    /// Opportunities (Syncro: leads); `None`: scaled from `companies`.
    pub opportunities: Option<usize>,
    /// Activities; `None`: scaled from `companies`.
    pub activities: Option<usize>,
    /// Catalog items; `None`: scaled from `companies`.
    pub catalog_items: Option<usize>,
}

impl Scale {
    /// `companies` companies from `seed`, the rest scaled from it.
    pub fn new(seed: u64, companies: usize) -> Self {
        Self { seed, companies, ..Self::default() }
    }
}

/// The page sizes a system's paged list endpoints serve (`min == max`: a fixed size the
/// client cannot choose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSizes {
    /// The smallest page the vendor serves when asked for less.
    pub min: usize,
    /// The largest page the vendor serves when asked for more.
    pub max: usize,
}

impl PageSizes {
    /// The size a page holds when `asked` records are asked for.
    pub fn effective(self, asked: usize) -> usize {
        asked.clamp(self.min, self.max)
    }
}

/// Where the credentials body ([`RunningSystem::credentials`]) keeps the site and secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialFields {
    /// The field holding the site / login URL.
    pub site: &'static str,
    /// The fields holding secrets; the first is the one a connector checks first.
    pub secrets: &'static [&'static str],
}

/// One list an import reads: its records and how the vendor serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRead {
    /// The import stage reading it (`users`, `companies`, ...).
    pub stage: &'static str,
    /// The vendor's name of the list (a path, resource or sObject).
    pub list: &'static str,
    /// Records the import reads from it.
    pub records: usize,
    /// Records per page at the largest size the vendor allows; `None`: one unpaged answer.
    pub max_page: Option<usize>,
    /// Reads of one record each the import cannot avoid on a first import (ConnectWise: an
    /// opportunity's forecast; Syncro: a user's details, the list holds only names).
    pub per_record_reads: usize,
}

impl ListRead {
    /// The fewest requests this list costs: its pages at the largest size (at least one)
    /// plus its per-record reads.
    pub fn floor(&self) -> u64 {
        self.floor_at(usize::MAX)
    }

    /// The requests this list costs a client asking for pages of `page_size` (capped at the
    /// largest the vendor serves): its pages (at least one) plus its per-record reads.
    pub fn floor_at(&self, page_size: usize) -> u64 {
        let pages = self.max_page.map_or(1, |max| self.records.div_ceil(max.min(page_size).max(1)).max(1));
        (pages + self.per_record_reads) as u64
    }
}

/// The fewest requests a first full import of a tenant can make: every list at the largest
/// page the vendor allows, plus the per-record reads no client can avoid. Session set-up (a
/// token, ConnectWise's site discovery) is left out, since a connection may reuse the one its
/// credential check opened, and so are option lists and credential checks: they are set-up,
/// not import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFloor {
    /// Every list the import reads.
    pub lists: Vec<ListRead>,
}

impl RequestFloor {
    /// Every list's pages and per-record reads.
    pub fn total(&self) -> u64 {
        self.lists.iter().map(ListRead::floor).sum()
    }

    /// The requests a client asking for pages of `page_size` needs at least.
    pub fn total_at(&self, page_size: usize) -> u64 {
        self.lists.iter().map(|l| l.floor_at(page_size)).sum()
    }
}

/// The generated records of one list, for a bare-parse baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct RawList {
    /// The import stage reading it.
    pub stage: &'static str,
    /// The vendor's name of the list (as in [`ListRead::list`]).
    pub list: &'static str,
    /// The records as the simulator stores and serves them.
    pub records: Vec<Value>,
}

impl RawList {
    /// The records as bare JSON arrays of at most `page_size` records each.
    pub fn pages(&self, page_size: usize) -> Vec<Vec<u8>> {
        self.records
            .chunks(page_size.max(1))
            .map(|chunk| serde_json::to_vec(chunk).unwrap_or_else(|_| b"[]".to_vec()))
            .collect()
    }
}

/// A simulated external system: what it is, and how to generate a tenant of it.
pub trait SimulatedSystem: Send + Sync + Debug + 'static {
    /// The system's wire name (`connectwise`, `halo`, `syncro`, `salesforce`): the same
    /// text as the domain's `System`.
    fn name(&self) -> &'static str;
    /// Generates a tenant at `scale` (deterministic for a seed and sizes).
    fn generate(&self, scale: &Scale) -> Box<dyn SimTenant>;
    /// How an MSP typically maps the system's option lists (the ground truth assumes it).
    fn typical_mapping(&self) -> TypicalMapping;
    /// The page sizes its paged lists serve.
    fn page_sizes(&self) -> PageSizes;
    /// Where the credentials body keeps the site and the secrets.
    fn credential_fields(&self) -> CredentialFields;
    /// True when the system issues access tokens or sessions that can expire (false: every
    /// request is signed with static keys).
    fn issues_tokens(&self) -> bool;
}

/// A generated tenant of some system.
pub trait SimTenant: Send + Sync + Debug {
    /// Ground truth of a full import with the typical mapping: stage -> outcome -> count.
    fn expected(&self) -> &Expected;
    /// The CRM records as they were before the first import.
    fn crm_seed(&self) -> &CrmSeed;
    /// External records an import reads.
    fn record_count(&self) -> usize;
    /// Records per import stage.
    fn stage_sizes(&self) -> BTreeMap<String, usize>;
    /// The fewest requests a first full import of this tenant can make.
    fn request_floor(&self) -> RequestFloor;
    /// The generated records of every list the import reads.
    fn raw_lists(&self) -> Vec<RawList>;
    /// Serves the tenant on 127.0.0.1:`port` (0: any free port). Needs a Tokio runtime.
    fn serve(self: Box<Self>, cfg: SimConfig, port: u16)
    -> BoxFuture<'static, std::io::Result<Box<dyn RunningSystem>>>;
}

/// A running simulator of some system. Dropping it stops the server too.
pub trait RunningSystem: Send + Sync + Debug {
    /// `http://127.0.0.1:PORT`.
    fn base_url(&self) -> String;
    /// The API root a connector's credential check reports.
    fn api_url(&self) -> String;
    /// Valid credentials, as the JSON body that saves them (absent optional fields left out).
    fn credentials(&self) -> Value;
    /// The knobs and counters every simulator shares (rate limit, latency, injected failures).
    fn controls(&self) -> &Controls;
    /// Counters since start (`throttled` counts every limit the system has).
    fn stats(&self) -> SimStats {
        self.controls().stats()
    }
    /// The next `n` authenticated API requests answer `status`.
    fn fail_next(&self, n: u32, status: u16) {
        self.controls().fail_next(n, status);
    }
    /// Changes the common per-second rate limit (`None`: unlimited).
    fn set_requests_per_second(&self, limit: Option<u32>) {
        self.controls().set_requests_per_second(limit);
    }
    /// Changes the delay before every answer.
    fn set_latency(&self, d: Duration) {
        self.controls().set_latency(d);
    }
    /// Turns off the limits the vendor documents on top of the common one (Syncro's 180 per
    /// minute), so only the common per-second limit applies. None by default.
    fn lift_vendor_limits(&self) {}
    /// Every `every`-th successful write is committed but answered `status` (see
    /// [`Controls::lose_write_answers`](crate::common::Controls::lose_write_answers)).
    fn lose_write_answers(&self, every: u32, status: u16) {
        self.controls().lose_write_answers(every, status);
    }
    /// Lowers the rate limit to one request per short window, counted the vendor's way, with
    /// a one-second `Retry-After` (by default: one request a second).
    fn throttle(&self) {
        self.set_requests_per_second(Some(1));
    }
    /// Makes every token or session issued so far invalid; false when the system has none
    /// (the default: static keys).
    fn expire_tokens(&self) -> bool {
        false
    }
    /// Points the system's change notifications at `url` the way its administrator would
    /// by hand, for a system with no registration API (Syncro's notification set, with the
    /// URL as given, token and all; Salesforce's Outbound Message endpoint for Account,
    /// Contact, Opportunity and Task). False for a system whose webhooks are registered
    /// through its API (ConnectWise `/system/callbacks`, Halo `/api/Webhook`).
    fn subscribe(&self, _url: &str) -> bool {
        false
    }
    /// The vendor's name of a company's name field, for the person hooks' `changes`.
    fn company_name_field(&self) -> &'static str;
    /// The person hooks' `changes` that give a company the type named `type_name` (one of
    /// the system's own type names); `None` where companies have no type (Syncro) or the
    /// name is not one.
    fn company_type_change(&self, _type_name: &str) -> Option<Value> {
        None
    }
    /// Takes `url` out of the set-up [`subscribe`](Self::subscribe) made; false when it
    /// was not there.
    fn unsubscribe(&self, _url: &str) -> bool {
        false
    }
    /// Creates a record of `kind` as a person in the system's UI would, from fields in the
    /// vendor's own names (e.g. ConnectWise `{"firstName": ..}`); answers its id. Webhooks
    /// are delivered as for any change.
    fn create_as_person(&self, kind: Kind, _fields: Value) -> Result<String, PersonError> {
        Err(PersonError::Unsupported(format!("people cannot create a {} here", kind.as_str())))
    }
    /// Changes the fields `changes` names (vendor's names) of the record `id` of `kind`, as
    /// a person in the system's UI would.
    fn edit_as_person(&self, kind: Kind, _id: &str, _changes: Value) -> Result<(), PersonError> {
        Err(PersonError::Unsupported(format!("people cannot edit a {} here", kind.as_str())))
    }
    /// Deletes the record `id` of `kind`, as a person in the system's UI would.
    fn delete_as_person(&self, kind: Kind, _id: &str) -> Result<(), PersonError> {
        Err(PersonError::Unsupported(format!("people cannot delete a {} here", kind.as_str())))
    }
    /// Every `every`-th webhook delivery from now on is sent twice (0: off).
    fn duplicate_webhooks(&self, every: u32) {
        self.controls().outbox().duplicate_every(every);
    }
    /// Every `every`-th webhook delivery from now on is held back and sent after the next
    /// one, out of order (0: off, and anything held is sent).
    fn reorder_webhooks(&self, every: u32) {
        self.controls().outbox().hold_back_every(every);
    }
    /// Every `every`-th webhook delivery from now on is lost (0: off).
    fn drop_webhooks(&self, every: u32) {
        self.controls().outbox().drop_every(every);
    }
    /// Every webhook delivery made (or lost) so far: when, where, which record, the status.
    fn webhooks_sent(&self) -> Vec<SentWebhook> {
        self.controls().outbox().sent()
    }
    /// The last webhook call Tandem accepted, exactly as sent, for replaying it.
    fn last_accepted_webhook(&self) -> Option<crate::webhooks::Outgoing> {
        self.controls().outbox().last_accepted()
    }
    /// Waits until no webhook is queued or in flight, at most `timeout`; false when it
    /// ran out.
    fn webhooks_settled(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(self.controls().outbox().settle(timeout))
    }
    /// The typed handle, for fault injection only one system has.
    fn as_any(&self) -> &dyn Any;
    /// Stops the server (open requests get up to 5 s to finish).
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Every simulated system, in a stable order.
pub fn simulators() -> &'static [&'static dyn SimulatedSystem] {
    &[&crate::connectwise::Simulator, &crate::halo::Simulator, &crate::syncro::Simulator, &crate::salesforce::Simulator]
}

/// The simulator of the system named `name` (its wire name).
pub fn simulator(name: &str) -> Option<&'static dyn SimulatedSystem> {
    simulators().iter().copied().find(|s| s.name() == name)
}

/// A credentials struct as a JSON body, with absent (`null`) fields left out.
pub(crate) fn credentials_body<T: Serialize>(creds: &T) -> Value {
    let mut v = serde_json::to_value(creds).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulator_is_found_by_its_name() {
        for name in ["connectwise", "halo", "syncro", "salesforce"] {
            assert_eq!(simulator(name).map(|s| s.name()), Some(name));
        }
        assert!(simulator("autotask").is_none());
    }

    #[test]
    fn a_list_costs_its_pages_at_the_largest_size_plus_its_per_record_reads() {
        let list = |records, max_page, per_record_reads| ListRead {
            stage: "contacts",
            list: "contacts",
            records,
            max_page,
            per_record_reads,
        };
        assert_eq!(list(0, Some(100), 0).floor(), 1, "an empty list is still asked once");
        assert_eq!(list(100, Some(100), 0).floor(), 1);
        assert_eq!(list(101, Some(100), 0).floor(), 2);
        assert_eq!(list(5000, None, 0).floor(), 1);
        assert_eq!(list(30, Some(1000), 30).floor(), 31);
        assert_eq!(list(101, Some(100), 0).floor_at(25), 5, "smaller pages cost more");
        assert_eq!(list(101, Some(100), 0).floor_at(500), 2, "pages are capped at the vendor's largest");
        let floor = RequestFloor { lists: vec![list(101, Some(100), 0), list(3, None, 3)] };
        assert_eq!(floor.total(), 2 + 4);
        assert_eq!(floor.total_at(50), 3 + 4);
    }

    #[test]
    fn raw_lists_page_into_bare_arrays() {
        let raw =
            RawList { stage: "users", list: "users", records: (0..5).map(|i| serde_json::json!({"id": i})).collect() };
        let pages = raw.pages(2);
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[2], br#"[{"id":4}]"#.to_vec());
    }

    #[test]
    fn every_system_generates_a_tenant_whose_counts_agree() {
        for sim in simulators() {
            let t = sim.generate(&Scale::new(3, 12));
            let sizes = t.stage_sizes();
            assert_eq!(sizes.values().sum::<usize>(), t.record_count(), "{}", sim.name());
            for (stage, n) in &sizes {
                let truth: u64 = t.expected().get(stage).map_or(0, |o| o.values().sum());
                assert_eq!(truth, *n as u64, "{} {stage}: the ground truth covers every record", sim.name());
                let listed: usize =
                    t.request_floor().lists.iter().filter(|l| l.stage == stage).map(|l| l.records).sum();
                assert_eq!(listed, *n, "{} {stage}: the floor's lists hold the stage", sim.name());
            }
            assert!(t.request_floor().total() >= sizes.len() as u64, "{}: a page per stage at least", sim.name());
            let ps = sim.page_sizes();
            assert!(ps.min <= ps.max && ps.min >= 1, "{}: {ps:?}", sim.name());
        }
    }

    #[tokio::test]
    async fn every_system_serves_its_tenant_with_credentials_naming_its_fields() {
        for sim in simulators() {
            let running = sim.generate(&Scale::new(3, 4)).serve(SimConfig::default(), 0).await.expect("serves");
            let creds = running.credentials();
            let fields = sim.credential_fields();
            assert_eq!(creds[fields.site].as_str(), Some(running.base_url().as_str()), "{}", sim.name());
            for f in fields.secrets {
                assert!(creds[*f].as_str().is_some_and(|s| !s.is_empty()), "{} {f}", sim.name());
            }
            assert!(running.api_url().starts_with(&running.base_url()));
            assert_eq!(running.expire_tokens(), sim.issues_tokens(), "{}", sim.name());
            running.shutdown().await;
        }
    }
}
