//! Counting the calls each unit of work makes to the external systems, and holding work
//! to the connection's API budget (`api_budget_per_day`; the arithmetic is in
//! [`crate::budget`]).
//!
//! One place counts, for every flow: a unit of work (a work message in
//! [`crate::usecases::work::run`], an HTTP request in the API) runs on [`scoped`]
//! services, whose [`Meter`] sees every connector
//! [`crate::usecases::connections::connector`] hands out; when the unit is done,
//! [`record`] adds the calls each connector sent meanwhile to its connection's count of
//! the hour. A connector is kept and reused across units (its token
//! with it), so a unit counts the difference over its own run; two units of one
//! connection running at the same moment (a route beside a worker) may each count the
//! other's calls too, an over-count, never an under-count. Credential checks are not
//! counted (they use no meter).
//!
//! [`check`] refuses a connector to work that would go over the budget: a rate limit
//! ([`crate::budget::used_up`]), so the work waits and resumes as for the vendor's own 429
//! (`crate::work::resume_after`), and a route answers 429 with the resume time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::budget::{self, HourCalls};
use crate::error::DomainError;
use crate::ids::{System, TenantId};
use crate::mapping::Connection;
use crate::ports::Connector;
use crate::usecases::Services;

/// The connectors one unit of work used, with their request counts when first handed
/// out. The default meter watches nothing (services outside a unit of work).
#[derive(Clone, Default)]
pub struct Meter(Option<Arc<Mutex<Vec<Watched>>>>);

struct Watched {
    tenant: TenantId,
    system: System,
    connector: Arc<dyn Connector>,
    before: u64,
}

impl Meter {
    /// A meter that watches.
    fn watching() -> Self {
        Self(Some(Arc::default()))
    }

    /// Watches `connector` of the connection, from its count now (once per connector).
    pub(crate) fn watch(&self, tenant: &TenantId, system: System, connector: &Arc<dyn Connector>) {
        let Some(watched) = &self.0 else { return };
        let mut watched = watched.lock().unwrap_or_else(|e| e.into_inner());
        if watched.iter().any(|w| Arc::ptr_eq(&w.connector, connector)) {
            return;
        }
        watched.push(Watched {
            tenant: tenant.clone(),
            system,
            connector: connector.clone(),
            before: connector.calls(),
        });
    }

    /// The calls made since each connector was watched, per connection; the meter starts
    /// again from here.
    fn take(&self) -> BTreeMap<(TenantId, System), u64> {
        let mut out = BTreeMap::new();
        let Some(watched) = &self.0 else { return out };
        let mut watched = watched.lock().unwrap_or_else(|e| e.into_inner());
        for w in watched.iter_mut() {
            let now = w.connector.calls();
            let calls = now.saturating_sub(w.before);
            w.before = now;
            if calls > 0 {
                *out.entry((w.tenant.clone(), w.system)).or_default() += calls;
            }
        }
        out
    }
}

/// `svc` with a fresh [`Meter`]: run one unit of work on it, then [`record`] it.
pub fn scoped(svc: &Services) -> Services {
    Services { meter: Meter::watching(), ..svc.clone() }
}

/// Adds the calls the unit of work run on `svc` (from [`scoped`]) made to each
/// connection's count of the hour. Counting never fails the work: a store failure here is
/// logged (the work itself is done).
pub async fn record(svc: &Services) {
    let now = svc.clock.now();
    for ((tenant, system), calls) in svc.meter.take() {
        match svc.store.add_calls(&tenant, system, now, calls).await {
            Ok(()) => tracing::debug!(tenant = %tenant, system = %system, calls, "calls counted"),
            Err(e) => {
                tracing::warn!(tenant = %tenant, system = %system, calls, error = %e, "the calls made could not be counted")
            }
        }
    }
}

/// The calls made to the connection's system in the rolling 24 hours, hour by hour.
pub async fn hours(svc: &Services, tenant: &TenantId, system: System) -> Result<Vec<HourCalls>, DomainError> {
    Ok(svc.store.usage_hours(tenant, system, svc.clock.now()).await?)
}

/// Refuses work on `conn` while its API budget is used up: the rate limit of
/// [`budget::used_up`], naming when it resumes. A connection without a budget costs no
/// read.
pub async fn check(svc: &Services, conn: &Connection) -> Result<(), DomainError> {
    let Some(per_day) = conn.settings.api_budget_per_day else { return Ok(()) };
    let now = svc.clock.now();
    let hours = svc.store.usage_hours(&conn.tenant, conn.system, now).await?;
    match budget::free_at(per_day, &hours, now) {
        None => Ok(()),
        Some(at) => Err(budget::used_up(conn.system, per_day, at, now).into()),
    }
}

/// Calls used and left under the connection's budget, for the health view.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiCalls {
    /// Calls made to the system in the rolling 24 hours.
    pub used_24h: u64,
    /// The connection's `api_budget_per_day`, `null` without one.
    pub budget_per_day: Option<u32>,
    /// Calls left under the budget now, `null` without one.
    pub remaining: Option<u64>,
    /// When work may call again, while the budget is used up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumes_at: Option<crate::normalise::Timestamp>,
}

/// The connection's calls against its budget now.
pub async fn api_calls(svc: &Services, conn: &Connection) -> Result<ApiCalls, DomainError> {
    let now = svc.clock.now();
    let hours = svc.store.usage_hours(&conn.tenant, conn.system, now).await?;
    let used = budget::used(&hours, now);
    let per_day = conn.settings.api_budget_per_day;
    Ok(ApiCalls {
        used_24h: used,
        budget_per_day: per_day,
        remaining: per_day.map(|b| u64::from(b).saturating_sub(used)),
        resumes_at: per_day.and_then(|b| budget::free_at(b, &hours, now)),
    })
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
