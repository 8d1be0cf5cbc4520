//! The `scheduled-sync` function's handler as a library, so end-to-end tests drive the very
//! handler the Lambda runs; `main.rs` only wires it.

pub mod handler;
