//! The use cases: what a handler calls. Each takes the [`Services`] (ports) and plain
//! inputs, applies the rules and returns plain outputs or a [`crate::DomainError`].
//! [`work::run`] runs any work message through the one that handles its kind.

pub(crate) mod apply;
pub mod connections;
pub mod crm;
pub mod dead_letters;
pub mod export;
pub mod field_map;
pub(crate) mod field_sync;
pub mod health;
pub mod import;
mod load;
pub mod mappings;
pub mod preview;
pub mod retry;
pub mod schedule;
pub mod selective_sync;
pub mod snapshots;
pub mod sweep;
pub mod sync_in;
pub mod sync_out;
pub mod usage;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use crate::ports::{Clock, ConnectorFactory, EventPublisher, SecretStore, WorkQueue};
use crate::table::RecordStore;

/// The ports a use case may use, built once per process.
#[derive(Clone)]
pub struct Services {
    pub store: RecordStore,
    pub queue: Arc<dyn WorkQueue>,
    pub secrets: Arc<dyn SecretStore>,
    pub connectors: Arc<dyn ConnectorFactory>,
    pub clock: Arc<dyn Clock>,
    pub events: Arc<dyn EventPublisher>,
    /// Where snapshots of the tenants' CRM records go (S3, or the data directory).
    pub snapshots: Arc<dyn crate::ports::SnapshotStore>,
    /// Settings of the use cases themselves (not ports).
    pub tuning: Tuning,
    /// What counts the calls of the unit of work these services run (the default counts
    /// nothing; see [`usage::scoped`]).
    pub meter: usage::Meter,
}

/// Settings of the use cases, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// A running job without progress for this long is reported as stalled.
    pub stall_after: Duration,
    /// Where the external systems reach Tandem's API (`https://api.example.com`), for the
    /// webhook URLs registered with them; `None`: not reachable from outside, so webhooks
    /// are not registered (the settings answer gives the path to set up by hand).
    pub public_url: Option<String>,
    /// How often a poll also reconciles a stage's ids with the system, to find hard deletes
    /// (see [`crate::sync::DEFAULT_SWEEP_EVERY`]).
    pub sweep_every: Duration,
}

impl Tuning {
    /// The default stall time: a page (fetch, retries with capped waits, writes) takes
    /// seconds; ten minutes without a checkpoint means its message is lost or stuck.
    pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(600);
}

impl Default for Tuning {
    fn default() -> Self {
        Self { stall_after: Self::DEFAULT_STALL_AFTER, public_url: None, sweep_every: crate::sync::DEFAULT_SWEEP_EVERY }
    }
}

#[cfg(test)]
pub(crate) mod testing;
