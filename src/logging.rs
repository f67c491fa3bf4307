//! Logging to stderr through `tracing`: human-readable text or one JSON object per line
//! (`[log] format`), filtered by `[log] level` when set, else by `RUST_LOG` (default: `info`,
//! with the HTTP and storage crates at `warn`). The filter can be replaced while the server runs
//! ([`set_filter`], on SIGHUP); the format cannot.
//!
//! Requests are logged by [`crate::http::observe`]: admin requests at INFO, public ones at
//! DEBUG (`RUST_LOG=media_origin=debug` shows them), each with its `request_id`, which the
//! response echoes in `X-Request-Id`.
//!
//! A closed or full log destination never stops or slows serving. Lines are not written where
//! they are logged: [`LogWriter`] hands each to a thread of its own through a queue of
//! [`QUEUED_LINES`], and drops it when the queue is full; that thread writes them to stderr and
//! ignores every error. Written in place, a line to a pipe nobody reads (`serve 2>&1 | less`,
//! a stuck log shipper) blocked the runtime's worker threads once the pipe's 64 KiB were full,
//! so the whole server stopped answering; and once the pipe was closed (`serve 2>&1 | head -1`)
//! tracing-subscriber's report of the failed write, an `eprintln!`, panicked on the same closed
//! stderr, killing the request, or the server when it was the main task that logged. It is a
//! few lines rather than tracing-appender's non-blocking writer, whose guard prints to stdout
//! when its queue is full at exit, which blocks on that same full pipe.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

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
        .with_writer(|| LogWriter)
        // Its reports of failed writes are `eprintln!`s (and LogWriter never fails anyway).
        .log_internal_errors(false);
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
                // The event's fields beside `level` and `timestamp`, not under `fields`.
                .flatten_event(true)
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

/// The filter for `level` (`[log] level`): it, else `RUST_LOG`, else [`DEFAULT_FILTER`]. A
/// `RUST_LOG` that [`parse_filter`] refuses gives the default (see [`rust_log_problem`]).
fn filter(level: Option<&str>) -> EnvFilter {
    if let Some(filter) = level.and_then(|l| parse_filter(l).ok()) {
        return filter;
    }
    match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(env) if !env.trim().is_empty() => {
            parse_filter(&env).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// Why `RUST_LOG` is not used, when it is set (and `[log] level` is not) but does not parse:
/// `RUST_LOG=inof` used to be read as a target name and silence every log, the warning that
/// said so included. The default filter is used instead, and this is logged as a warning.
pub fn rust_log_problem(level: Option<&str>) -> Option<String> {
    if level.is_some() {
        return None;
    }
    let env = std::env::var(EnvFilter::DEFAULT_ENV).ok()?;
    if env.trim().is_empty() {
        return None;
    }
    parse_filter(&env).err().map(|e| {
        format!(
            "RUST_LOG={env:?} is not a log filter ({e}); logging with the default, \
             {DEFAULT_FILTER} (e.g. RUST_LOG=debug or RUST_LOG=info,media_origin=debug)"
        )
    })
}

/// What the filter for `level` is, for logs: `level`, else `RUST_LOG`, else the default.
pub fn describe(level: Option<&str>) -> String {
    match level {
        Some(level) => level.to_owned(),
        None => match std::env::var(EnvFilter::DEFAULT_ENV) {
            Ok(env) if !env.trim().is_empty() && parse_filter(&env).is_ok() => {
                format!("{env} (RUST_LOG)")
            }
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

/// Lines waiting for the log thread, at most; more are dropped until it catches up.
pub const QUEUED_LINES: usize = 16_384;

enum Queued {
    Line(Vec<u8>),
    /// Answered once every line queued before it has been written (or failed to).
    Flush(SyncSender<()>),
}

/// The queue to the log thread, started on first use.
static QUEUE: OnceLock<SyncSender<Queued>> = OnceLock::new();

fn queue() -> &'static SyncSender<Queued> {
    QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUED_LINES);
        // Without the thread the receiver is dropped, and every line is dropped with it.
        let _ = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(&rx, &mut std::io::stderr()));
        tx
    })
}

/// The log thread: write each line to `out`, whatever becomes of it.
fn write_lines(rx: &Receiver<Queued>, out: &mut impl Write) {
    for queued in rx {
        match queued {
            Queued::Line(line) => {
                let _ = out.write_all(&line);
            }
            Queued::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

/// Where the subscriber writes: each formatted event (one `write` of whole lines) is queued
/// for the log thread, or dropped when the queue is full. It never blocks and never fails.
#[derive(Debug, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A full queue (a stuck destination) drops the line: it must not hold up the caller.
        let _ = queue().try_send(Queued::Line(buf.to_vec()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wait, at most `limit`, until every line logged so far has been written; at exit, so the last
/// lines are not lost. Returns whether they were.
pub fn flush(limit: Duration) -> bool {
    let Some(queue) = QUEUE.get() else {
        return true;
    };
    let deadline = Instant::now() + limit;
    let (done, written) = std::sync::mpsc::sync_channel(1);
    let mut marker = Queued::Flush(done);
    loop {
        match queue.try_send(marker) {
            Ok(()) => break,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    return false;
                }
                marker = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    written
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination whose writes all fail, as a closed pipe's do.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn the_log_thread_writes_every_line_and_survives_failed_writes() {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (done, flushed) = std::sync::mpsc::sync_channel(1);
        tx.send(Queued::Line(b"one\n".to_vec())).unwrap();
        tx.send(Queued::Line(b"two\n".to_vec())).unwrap();
        tx.send(Queued::Flush(done)).unwrap();
        drop(tx);
        let mut out = Vec::new();
        write_lines(&rx, &mut out);
        assert_eq!(out, b"one\ntwo\n");
        assert_eq!(flushed.try_recv(), Ok(()));

        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (done, flushed) = std::sync::mpsc::sync_channel(1);
        tx.send(Queued::Line(b"lost\n".to_vec())).unwrap();
        tx.send(Queued::Flush(done)).unwrap();
        drop(tx);
        write_lines(&rx, &mut Closed);
        assert_eq!(
            flushed.try_recv(),
            Ok(()),
            "the thread went on after the failures"
        );
    }
}
