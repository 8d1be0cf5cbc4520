//! The use cases: what a handler calls. Each takes the [`Services`] (ports) and plain
//! inputs, applies the rules and returns plain outputs or a [`crate::DomainError`].

pub mod connections;
pub mod import;
pub mod mappings;

use std::sync::Arc;

use crate::ports::{Clock, ConnectorFactory, EventPublisher, SecretStore, StageQueue};
use crate::table::RecordStore;

/// The ports a use case may use, built once per process.
#[derive(Clone)]
pub struct Services {
    pub store: RecordStore,
    pub queue: Arc<dyn StageQueue>,
    pub secrets: Arc<dyn SecretStore>,
    pub connectors: Arc<dyn ConnectorFactory>,
    pub clock: Arc<dyn Clock>,
    pub events: Arc<dyn EventPublisher>,
}

#[cfg(test)]
pub(crate) mod testing;
