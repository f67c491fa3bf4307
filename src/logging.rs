//! Logging to stderr through `tracing`: human-readable text or one JSON object per line
//! (`[log] format`), filtered by `[log] level` when set, else by `RUST_LOG` (default: `info`,
//! with the HTTP and storage crates at `warn`). The filter can be replaced while the server runs
//! ([`set_filter`], on SIGHUP); the format cannot.
//!
//! Requests are logged by [`crate::http::observe`]: admin requests at INFO, public ones at
//! DEBUG (`RUST_LOG=media_origin=debug` shows them), each with its `request_id`, which the
//! response echoes in `X-Request-Id`.

use std::path::Path;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings, Settings};

/// The filter used when neither `[log] level` nor `RUST_LOG` is set.
pub const DEFAULT_FILTER: &str = "info,tower_http=warn,object_store=warn";

/// Replaces the installed subscriber's filter (whatever its format's type).
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

/// Install the global subscriber writing `format` to stderr, filtered by `level` (`[log] level`)
/// or, without it, `RUST_LOG`. Call once, at start.
pub fn init(format: LogFormat, level: Option<&str>) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let builder = builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter_reloading();
            keep_reload_handle(builder.reload_handle());
            builder.init();
        }
        // Spans (the request and its ID) ride along with every event of a request.
        LogFormat::Json => {
            let builder = builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            keep_reload_handle(builder.reload_handle());
            builder.init();
        }
    }
}

fn keep_reload_handle<S: tracing::Subscriber + Send + Sync + 'static>(
    handle: tracing_subscriber::reload::Handle<EnvFilter, S>,
) {
    let _ = SET_FILTER.set(Box::new(move |filter| {
        handle.reload(filter).map_err(|e| e.to_string())
    }));
}

/// The filter for `level` (`[log] level`): it, else `RUST_LOG`, else [`DEFAULT_FILTER`].
fn filter(level: Option<&str>) -> EnvFilter {
    if let Some(filter) = level.and_then(|l| parse_filter(l).ok()) {
        return filter;
    }
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// What the filter for `level` is, for logs: `level`, else `RUST_LOG`, else the default.
pub fn describe(level: Option<&str>) -> String {
    match level {
        Some(level) => level.to_owned(),
        None => match std::env::var(EnvFilter::DEFAULT_ENV) {
            Ok(env) if !env.trim().is_empty() => format!("{env} (RUST_LOG)"),
            _ => format!("{DEFAULT_FILTER} (default)"),
        },
    }
}

/// Parse `[log] level`: `RUST_LOG`'s directives, comma-separated, each a level (`trace`,
/// `debug`, `info`, `warn`, `error`, `off`) or `target=level`. A bare word that is not a level
/// is refused: `RUST_LOG` would read `inof` as a target name and silence everything else.
pub fn parse_filter(level: &str) -> Result<EnvFilter, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains(['=', '['])
            && !LEVELS.contains(&directive.to_ascii_lowercase().as_str())
        {
            return Err(format!(
                "{directive:?} is not a level ({}) nor target=level",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::builder().parse(level).map_err(|e| e.to_string())
}

/// The filter `[log] level` asks for (`None`: `RUST_LOG`, else the default); `Err` when it
/// does not parse.
pub fn filter_for(level: Option<&str>) -> Result<EnvFilter, String> {
    match level {
        Some(level) => parse_filter(level),
        None => Ok(filter(None)),
    }
}

/// Filter the running subscriber by `filter` (see [`filter_for`]) from now on. Fails only when
/// no subscriber was installed by [`init`].
pub fn set_filter(filter: EnvFilter) -> Result<(), String> {
    let set = SET_FILTER
        .get()
        .ok_or("no reloadable log subscriber is installed")?;
    set(filter)
}

/// The log settings the configuration asks for (`config`, or `./config.toml`, and the
/// environment), before the configuration is otherwise used; the defaults when it cannot be
/// read (the real load reports why).
pub fn settings_from(config: Option<&Path>) -> LogSettings {
    Settings::load(config).map_or_else(|_| LogSettings::default(), |s| s.log)
}
