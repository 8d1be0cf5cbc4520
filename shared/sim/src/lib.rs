//! Stateful HTTP simulators of the external systems Tandem imports from, each with a
//! seeded tenant generator and the ground truth of a full import of that tenant.
//!
//! One module per simulated system (`connectwise`, `halo`, `syncro`, `salesforce`), each
//! implementing the one shape of [`system`] (a [`SimulatedSystem`] generating a
//! [`SimTenant`] that serves itself as a [`RunningSystem`]); [`simulators`] lists them. The
//! machinery they share (run-time knobs, counters, serving, the CRM seed, normalisers,
//! timestamps, the import rules every system shares) lives beside them in `common`, `seed`,
//! `normalise`, `truth` and `words`; the outgoing webhooks' queue, knobs and record in
//! `webhooks`.

pub mod common;
pub mod connectwise;
pub mod halo;
pub mod key_cases;
pub mod normalise;
pub mod salesforce;
pub mod seed;
pub mod syncro;
pub mod system;
pub(crate) mod truth;
pub mod webhooks;
pub(crate) mod words;

pub use common::{SimConfig, SimStats};
pub use seed::{CrmSeed, Expected, SeedCompany, SeedContact, SeedUser};
pub use system::{
    CredentialFields, ListRead, PageSizes, RawList, RequestFloor, RunningSystem, Scale, SimTenant, SimulatedSystem,
    simulator, simulators,
};
pub use webhooks::{Change, Kind, PersonError, SentWebhook};
