//! Logging for Lambda: one JSON object per line on stdout (CloudWatch Logs ingests it as
//! is), no ANSI colours, the level filter from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the JSON log subscriber. Call once at cold start; a later call keeps the
/// first subscriber.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    if installed.is_err() {
        tracing::debug!("a log subscriber was already installed; kept it");
    }
}
