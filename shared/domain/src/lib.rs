//! Tandem's domain: CRM records, link rules, mappings, import stages, the sync log, the
//! work queue's messages, the ports the adapters implement, and the use cases. Knows
//! nothing of AWS, HTTP or Lambda.

pub mod budget;
pub mod dead_letter;
pub mod describe;
pub mod error;
pub mod events;
pub mod export;
pub mod external;
pub mod field_map;
pub mod ids;
pub mod job;
pub mod ledger;
pub mod log;
pub mod mapping;
#[cfg(any(test, feature = "testing"))]
pub mod mem_table;
pub mod normalise;
pub mod outbox;
pub mod outgoing;
pub mod overlay;
pub mod ports;
pub mod reconcile;
pub mod records;
pub mod rules;
pub mod secret;
pub mod selective;
pub mod settings;
pub mod sync;
pub mod table;
pub mod table_rules;
pub mod usecases;
pub mod vocab;
pub mod webhook;
pub mod work;

pub use error::{DomainError, ErrorClass};
pub use ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
pub use normalise::Timestamp;
