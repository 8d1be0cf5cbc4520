//! The end-to-end tests, one module per flow, built as one binary so that the workspace
//! links the whole product once for them rather than once per file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed set-up step should panic

mod common;

mod api_budget;
mod aws_import;
mod bad_input;
mod connectwise_import;
mod dead_letters;
mod event_schema;
mod every_system;
mod export;
mod field_map;
mod health;
mod job_recovery;
mod local_api;
mod local_secrets;
mod log_retry;
mod openapi;
mod preview;
mod record_api;
mod restore_demo;
mod snapshots;
mod spotio;
mod spotio_demo;
mod sync_cursor;
mod sync_in;
mod template;
mod two_way;
mod two_way_demo;
