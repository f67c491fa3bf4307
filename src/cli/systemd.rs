//! Telling systemd where the server is in its life (`Type=notify`, see `deploy/`): ready once
//! both listeners are bound, reloading around a SIGHUP, stopping on shutdown.
//!
//! `Type=notify` rather than `Type=exec`: systemd then starts what is ordered after the
//! service (a reverse proxy's health check, a deploy script's `systemctl start && curl`) only
//! when the server answers, not when the process exists. The `sd-notify` crate speaks the
//! protocol (a datagram to `$NOTIFY_SOCKET`); without that variable (not under systemd) every
//! call does nothing. A failed notification is logged and never stops the server.

use sd_notify::NotifyState;

fn send(states: &[NotifyState], what: &str) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "telling systemd the server is {what} failed");
    }
}

/// Both listeners are bound: systemd may consider the service started.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)], "ready");
}

/// A SIGHUP reload begins (systemd 253 and later want the monotonic time with it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now], "reloading"),
        Err(_) => send(&[NotifyState::Reloading], "reloading"),
    }
}

/// A reload is over, applied or refused: ready again.
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)], "ready");
}

/// Shutting down: finishing the requests in flight.
pub fn stopping() {
    send(
        &[
            NotifyState::Stopping,
            NotifyState::Status("finishing requests in flight"),
        ],
        "stopping",
    );
}
