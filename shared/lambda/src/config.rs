//! The functions' typed configuration, read from the environment once at cold start. A
//! missing or empty variable stops start-up with an error naming every such variable.
//! The variable names are public constants ([`CORE_VARS`], [`HTTP_VARS`]) so a test can
//! check that the deployment template sets each of them.

use std::collections::BTreeMap;

use tandem_domain::Stage;
use tandem_domain::work::Route;

/// The DynamoDB table holding every item.
pub const TABLE_NAME: &str = "TABLE_NAME";
/// The prefix of the connections' secret names (`{prefix}/{tenant}/{system}`).
pub const SECRET_PREFIX: &str = "SECRET_PREFIX";
/// The EventBridge bus that failed-record events go to.
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
/// The S3 bucket the tenants' snapshots go to.
pub const SNAPSHOT_BUCKET: &str = "SNAPSHOT_BUCKET";
/// The users stage's FIFO queue URL.
pub const QUEUE_URL_USERS: &str = "QUEUE_URL_USERS";
/// The companies stage's FIFO queue URL.
pub const QUEUE_URL_COMPANIES: &str = "QUEUE_URL_COMPANIES";
/// The contacts stage's FIFO queue URL.
pub const QUEUE_URL_CONTACTS: &str = "QUEUE_URL_CONTACTS";
/// The solutions stage's FIFO queue URL.
pub const QUEUE_URL_SOLUTIONS: &str = "QUEUE_URL_SOLUTIONS";
/// The activities stage's FIFO queue URL.
pub const QUEUE_URL_ACTIVITIES: &str = "QUEUE_URL_ACTIVITIES";
/// The opportunities stage's FIFO queue URL.
pub const QUEUE_URL_OPPORTUNITIES: &str = "QUEUE_URL_OPPORTUNITIES";
/// The export function's FIFO queue URL.
pub const QUEUE_URL_EXPORT: &str = "QUEUE_URL_EXPORT";
/// The sync worker's FIFO queue URL (webhook notices and poll pages).
pub const QUEUE_URL_SYNC: &str = "QUEUE_URL_SYNC";
/// The JWT claim holding the caller's tenant id (HTTP functions only), e.g. `custom:tenant_id`.
pub const TENANT_CLAIM: &str = "TENANT_CLAIM";
/// Optional: where the external systems reach the API (`https://api.example.com`), for the
/// webhooks inbound sync registers; unset or empty, webhooks are set up by hand.
pub const PUBLIC_URL: &str = "PUBLIC_URL";
/// Optional: how often a poll also reconciles a stage's ids (`24h`, `6h`; default 24h).
pub const SWEEP_EVERY: &str = "SWEEP_EVERY";

/// The variables every function needs: a stage function sends the next page or the next
/// stage's first page, and the HTTP API starts imports, so all know every stage queue;
/// the HTTP API, the webhook intake, the scheduler and the sync worker (the next poll
/// page) send sync work, so all know the sync queue too.
pub const CORE_VARS: &[&str] = &[
    TABLE_NAME,
    SECRET_PREFIX,
    EVENT_BUS_NAME,
    SNAPSHOT_BUCKET,
    QUEUE_URL_USERS,
    QUEUE_URL_COMPANIES,
    QUEUE_URL_CONTACTS,
    QUEUE_URL_SOLUTIONS,
    QUEUE_URL_ACTIVITIES,
    QUEUE_URL_OPPORTUNITIES,
    QUEUE_URL_EXPORT,
    QUEUE_URL_SYNC,
];

/// The variables the HTTP functions need besides [`CORE_VARS`].
pub const HTTP_VARS: &[&str] = &[TENANT_CLAIM];

/// The variable holding `stage`'s queue URL.
pub fn queue_url_var(stage: Stage) -> &'static str {
    match stage {
        Stage::Users => QUEUE_URL_USERS,
        Stage::Companies => QUEUE_URL_COMPANIES,
        Stage::Contacts => QUEUE_URL_CONTACTS,
        Stage::Solutions => QUEUE_URL_SOLUTIONS,
        Stage::Activities => QUEUE_URL_ACTIVITIES,
        Stage::Opportunities => QUEUE_URL_OPPORTUNITIES,
    }
}

/// Why the configuration could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// These variables are unset or empty.
    #[error("cannot start: environment variable(s) missing or empty: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// A variable is set to something it cannot be.
    #[error("cannot start: environment variable {0} is not valid: {1}")]
    Invalid(&'static str, String),
}

/// What every function is configured with (see [`CORE_VARS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The DynamoDB table's name.
    pub table_name: String,
    /// The prefix of secret names.
    pub secret_prefix: String,
    /// The EventBridge bus's name or ARN.
    pub event_bus_name: String,
    /// The snapshot bucket's name.
    pub snapshot_bucket: String,
    /// One FIFO queue URL per import stage (every stage present).
    pub queue_urls: BTreeMap<Stage, String>,
    /// The export function's FIFO queue URL.
    pub export_queue_url: String,
    /// The sync worker's FIFO queue URL.
    pub sync_queue_url: String,
    /// Where the external systems reach the API ([`PUBLIC_URL`]).
    pub public_url: Option<String>,
    /// How often a stage's ids are reconciled ([`SWEEP_EVERY`]).
    pub sweep_every: std::time::Duration,
}

/// What the HTTP functions are configured with: [`Config`] plus [`HTTP_VARS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// The variables every function has.
    pub core: Config,
    /// The JWT claim holding the tenant id.
    pub tenant_claim: String,
}

/// Reads variables through a lookup, remembering every missing one.
struct Reader<F> {
    lookup: F,
    missing: Vec<&'static str>,
    invalid: Option<ConfigError>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn new(lookup: F) -> Self {
        Self { lookup, missing: Vec::new(), invalid: None }
    }

    /// The variable's value, trimmed; missing and blank values are remembered.
    fn get(&mut self, name: &'static str) -> String {
        match (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => {
                self.missing.push(name);
                String::new()
            }
        }
    }

    /// An optional variable's value, trimmed; `None` when unset or blank.
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// An optional duration (`90s`, `6h`), else `default`; a value that is not one is
    /// remembered.
    fn duration(&mut self, name: &'static str, default: std::time::Duration) -> std::time::Duration {
        match self.optional(name).map(|v| humantime::parse_duration(&v)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.invalid.get_or_insert(ConfigError::Invalid(name, e.to_string()));
                default
            }
        }
    }

    fn core(&mut self) -> Config {
        Config {
            table_name: self.get(TABLE_NAME),
            secret_prefix: self.get(SECRET_PREFIX),
            event_bus_name: self.get(EVENT_BUS_NAME),
            snapshot_bucket: self.get(SNAPSHOT_BUCKET),
            queue_urls: Stage::ALL.iter().map(|s| (*s, self.get(queue_url_var(*s)))).collect(),
            export_queue_url: self.get(QUEUE_URL_EXPORT),
            sync_queue_url: self.get(QUEUE_URL_SYNC),
            public_url: self.optional(PUBLIC_URL),
            sweep_every: self.duration(SWEEP_EVERY, tandem_domain::sync::DEFAULT_SWEEP_EVERY),
        }
    }

    fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if !self.missing.is_empty() {
            return Err(ConfigError::Missing(self.missing));
        }
        self.invalid.map_or(Ok(value), Err)
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (the environment, or a map in a test).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut reader = Reader::new(lookup);
        let config = reader.core();
        reader.finish(config)
    }

    /// `stage`'s queue URL.
    pub fn queue_url(&self, stage: Stage) -> Option<&str> {
        self.queue_urls.get(&stage).map(String::as_str)
    }

    /// Every route's queue URL: the stages', the export's and the sync worker's.
    pub fn routes(&self) -> Vec<(Route, &str)> {
        let stages = self.queue_urls.iter().map(|(stage, url)| (Route::Stage(*stage), url.as_str()));
        stages
            .chain([(Route::Export, self.export_queue_url.as_str()), (Route::Sync, self.sync_queue_url.as_str())])
            .collect()
    }
}

impl HttpConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (the environment, or a map in a test).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut reader = Reader::new(lookup);
        let core = reader.core();
        let tenant_claim = reader.get(TENANT_CLAIM);
        reader.finish(Self { core, tenant_claim })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full_env() -> HashMap<String, String> {
        CORE_VARS.iter().chain(HTTP_VARS).map(|n| (n.to_string(), format!("value-of-{n}"))).collect()
    }

    fn lookup(env: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
        |name| env.get(name).cloned()
    }

    #[test]
    fn the_public_url_and_the_reconciliation_interval_are_optional_and_checked() {
        let mut env = full_env();
        let config = Config::from_lookup(lookup(&env)).unwrap();
        assert_eq!((config.public_url, config.sweep_every), (None, tandem_domain::sync::DEFAULT_SWEEP_EVERY));
        env.insert(PUBLIC_URL.into(), " https://api.example.com ".into());
        env.insert(SWEEP_EVERY.into(), "6h".into());
        let config = Config::from_lookup(lookup(&env)).unwrap();
        assert_eq!(config.public_url.as_deref(), Some("https://api.example.com"));
        assert_eq!(config.sweep_every, std::time::Duration::from_secs(6 * 3600));
        env.insert(SWEEP_EVERY.into(), "daily".into());
        let err = Config::from_lookup(lookup(&env)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(SWEEP_EVERY, _)), "{err}");
        assert!(err.to_string().contains("SWEEP_EVERY"), "{err}");
    }

    #[test]
    fn a_complete_environment_gives_every_value() {
        let env = full_env();
        let config = HttpConfig::from_lookup(lookup(&env)).unwrap();
        assert_eq!(config.core.table_name, "value-of-TABLE_NAME");
        assert_eq!(config.core.secret_prefix, "value-of-SECRET_PREFIX");
        assert_eq!(config.core.event_bus_name, "value-of-EVENT_BUS_NAME");
        assert_eq!(config.tenant_claim, "value-of-TENANT_CLAIM");
        assert_eq!(config.core.export_queue_url, "value-of-QUEUE_URL_EXPORT");
        assert_eq!(config.core.sync_queue_url, "value-of-QUEUE_URL_SYNC");
        for stage in Stage::ALL {
            assert_eq!(config.core.queue_url(*stage), Some(format!("value-of-{}", queue_url_var(*stage)).as_str()));
        }
    }

    #[test]
    fn a_missing_variable_stops_start_up_with_an_error_naming_it() {
        let mut env = full_env();
        env.remove(QUEUE_URL_CONTACTS);
        let err = Config::from_lookup(lookup(&env)).unwrap_err();
        assert_eq!(err, ConfigError::Missing(vec![QUEUE_URL_CONTACTS]));
        assert!(err.to_string().contains("QUEUE_URL_CONTACTS"), "{err}");
    }

    #[test]
    fn an_empty_or_blank_variable_counts_as_missing_and_every_missing_one_is_named() {
        let mut env = full_env();
        env.insert(TABLE_NAME.into(), String::new());
        env.insert(TENANT_CLAIM.into(), "   ".into());
        env.remove(EVENT_BUS_NAME);
        let err = HttpConfig::from_lookup(lookup(&env)).unwrap_err();
        assert_eq!(err, ConfigError::Missing(vec![TABLE_NAME, EVENT_BUS_NAME, TENANT_CLAIM]));
        let text = err.to_string();
        for name in ["TABLE_NAME", "EVENT_BUS_NAME", "TENANT_CLAIM"] {
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn the_core_config_does_not_need_the_tenant_claim() {
        let mut env = full_env();
        env.remove(TENANT_CLAIM);
        assert!(Config::from_lookup(lookup(&env)).is_ok());
        assert_eq!(HttpConfig::from_lookup(lookup(&env)).unwrap_err(), ConfigError::Missing(vec![TENANT_CLAIM]));
    }

    #[test]
    fn every_stage_has_its_own_queue_variable_in_the_core_list() {
        let vars: Vec<&str> = Stage::ALL.iter().map(|s| queue_url_var(*s)).collect();
        for var in &vars {
            assert!(CORE_VARS.contains(var), "{var}");
        }
        let unique: std::collections::BTreeSet<&str> = vars.iter().copied().collect();
        assert_eq!(unique.len(), Stage::ALL.len());
    }

    #[test]
    fn every_route_has_its_queue_the_sync_worker_included() {
        let env = full_env();
        let config = Config::from_lookup(lookup(&env)).unwrap();
        let routes: BTreeMap<Route, &str> = config.routes().into_iter().collect();
        assert_eq!(routes.len(), Stage::ALL.len() + 2, "{routes:?}");
        assert_eq!(routes[&Route::Export], "value-of-QUEUE_URL_EXPORT");
        assert_eq!(routes[&Route::Sync], "value-of-QUEUE_URL_SYNC");
        for stage in Stage::ALL {
            assert_eq!(routes[&Route::Stage(*stage)], format!("value-of-{}", queue_url_var(*stage)));
        }
        let mut env = full_env();
        env.remove(QUEUE_URL_SYNC);
        assert_eq!(Config::from_lookup(lookup(&env)).unwrap_err(), ConfigError::Missing(vec![QUEUE_URL_SYNC]));
    }
}
