//! What the scenario tests share: the options of a small, quick demo run (no pacing, fast
//! retries, the embedded store in memory).

use std::time::Duration;

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::System;
use tandem_local::demo::DemoOptions;
use tandem_local::sims::Scale;
use tandem_sim::SimConfig;

/// A demo of `system` at `scale`, quick.
pub fn options(system: System, scale: Scale) -> DemoOptions {
    DemoOptions {
        system,
        scale,
        sim: SimConfig::default(),
        connectors: Settings {
            retry: RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
            pacing: tandem_connectors::Pacing::Off,
            ..Settings::default()
        },
        data_dir: None,
        progress: false,
        aws_endpoint: None,
        store_latency: Duration::ZERO,
        dry_run: false,
    }
}
