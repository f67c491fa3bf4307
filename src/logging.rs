//! Logging to stderr through `tracing`: human-readable text or one JSON object per line
//! (`[log] format`), filtered by `RUST_LOG` (default: `info`, with the HTTP and storage crates
//! at `warn`).
//!
//! Requests are logged by [`crate::http::observe`]: admin requests at INFO, public ones at
//! DEBUG (`RUST_LOG=media_origin=debug` shows them), each with its `request_id`, which the
//! response echoes in `X-Request-Id`.

use std::path::Path;

use crate::config::{LogFormat, Settings};

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,tower_http=warn,object_store=warn";

/// Install the global subscriber writing `format` to stderr. Call once, at start.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Spans (the request and its ID) ride along with every event of a request.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The log format the configuration asks for (`config`, or `./config.toml`, and the
/// environment), before the configuration is otherwise used; text when it cannot be read (the
/// real load reports why).
pub fn format_from(config: Option<&Path>) -> LogFormat {
    Settings::load(config).map_or(LogFormat::Text, |s| s.log.format)
}
