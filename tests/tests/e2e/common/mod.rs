//! What several end-to-end tests share.

pub mod demo;
pub mod http;
pub mod synced;
