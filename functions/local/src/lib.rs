//! The local runner: every Tandem function in one process on embedded adapters, the
//! simulators on demand, and the `tandem` command line (demo, serve, sim).

pub mod aws;
pub mod cli;
pub mod demo;
pub mod export_demo;
pub mod report;
pub mod restore_demo;
pub mod runtime;
pub mod scene;
pub mod server;
pub mod setup;
pub mod sims;
pub mod spotio_demo;
pub mod sync_demo;
pub mod two_way_demo;
