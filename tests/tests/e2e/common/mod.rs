//! What several end-to-end tests share.

pub mod demo;
pub mod http;
pub mod synced;

use std::time::Duration;
use tandem_connectors::http::{RetryPolicy, Settings};

/// Connector settings that give up at once (one attempt, no pacing) and read pages of 20:
/// for tests that make work fail on every delivery.
pub fn fail_fast() -> Settings {
    Settings {
        page_size: 20,
        retry: RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }
}
