//! `[server]`: the listeners, the public base URL, and the limits and timeouts that protect
//! them from slow or greedy clients.
//!
//! [`AdminBind`] lives here too: it is a `[server]` key with a parser of its own, used by the
//! command line's `--admin-bind` as well.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[server]`: where to listen, what URLs to hand out, and how long to wait on clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// The public listener (`/media`, health). Loopback by default: put a TLS proxy in front
    /// for the internet.
    pub bind: SocketAddr,
    /// Where the admin API listens: an address of its own (loopback by default, so a proxy
    /// that forwards the public port never exposes it), or `"public"` to serve it on the
    /// public listener too.
    pub admin_bind: AdminBind,
    /// The scheme, host and optional path prefix written into the URLs the admin API returns,
    /// e.g. `https://media.example.com`. Derived from the bound address when empty.
    pub public_base_url: Option<String>,
    /// A client must send a request's whole header within this time (slowloris), in seconds.
    pub header_read_timeout_secs: u64,
    /// The largest request header (request line and fields), in bytes; 431 beyond it. The
    /// number of fields is limited to 100.
    pub max_header_bytes: usize,
    /// A request body (an upload) that sends nothing for this long is cut off, in seconds.
    pub body_idle_timeout_secs: u64,
    /// On SIGTERM, requests in flight (a large download, an upload) get this long to finish
    /// before the process exits anyway, in seconds.
    pub shutdown_grace_secs: u64,
    /// A response that makes no write progress for this long (a client that reads slowly or
    /// not at all) is cut and its connection closed, in seconds.
    pub send_timeout_secs: u64,
    /// The most connections the public listener holds at once; more wait, not accepted, until
    /// one closes. Derived from the open-files limit when unset
    /// ([`crate::serve::derived_max_connections`]).
    pub max_connections: Option<usize>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_bind: AdminBind::Addr(SocketAddr::from(([127, 0, 0, 1], 8081))),
            public_base_url: None,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            body_idle_timeout_secs: 30,
            shutdown_grace_secs: 30,
            send_timeout_secs: 30,
            max_connections: None,
        }
    }
}

/// Where the admin API listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBind {
    /// On the public listener, beside `/media`.
    Public,
    /// On a listener of its own.
    Addr(SocketAddr),
}

impl Serialize for AdminBind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AdminBind::Public => s.serialize_str("public"),
            AdminBind::Addr(a) => s.collect_str(a),
        }
    }
}

impl std::str::FromStr for AdminBind {
    type Err = String;

    /// `public`, or a socket address.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("public") {
            return Ok(AdminBind::Public);
        }
        s.trim()
            .parse()
            .map(AdminBind::Addr)
            .map_err(|_| format!("{s:?}: give an address such as 127.0.0.1:8081, or \"public\""))
    }
}

impl<'de> Deserialize<'de> for AdminBind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("server.admin_bind {e}")))
    }
}

impl ServerSettings {
    /// Timeouts and limits in range; the admin listener apart from the public one.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let server = self;
        if server.header_read_timeout_secs == 0
            || server.body_idle_timeout_secs == 0
            || server.send_timeout_secs == 0
            || server.max_header_bytes < 1024
        {
            return Err(ConfigError::Invalid(
                "server.header_read_timeout_secs, body_idle_timeout_secs and send_timeout_secs \
                 must be at least 1, server.max_header_bytes at least 1024"
                    .into(),
            ));
        }
        if server.max_connections == Some(0) {
            return Err(ConfigError::Invalid(
                "server.max_connections must be at least 1 (leave it unset to derive it from \
                 the open-files limit)"
                    .into(),
            ));
        }
        if server.admin_bind == AdminBind::Addr(server.bind) && server.bind.port() != 0 {
            return Err(ConfigError::Invalid(format!(
                "server.admin_bind is the same address as server.bind ({}): \
                 set admin_bind = \"public\" to serve the admin API on the public listener",
                server.bind
            )));
        }
        Ok(())
    }

    /// The public base URL is `http(s)://...` without a trailing slash; a blank one is none.
    pub(super) fn validate_public_base_url(&mut self) -> Result<(), ConfigError> {
        if let Some(base) = &self.public_base_url {
            let base = base.trim().trim_end_matches('/');
            if base.is_empty() {
                self.public_base_url = None;
            } else if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "server.public_base_url {base:?} must start with http:// or https://"
                )));
            } else {
                self.public_base_url = Some(base.to_owned());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn send_timeout_and_connection_limit() {
        let d = ServerSettings::default();
        assert_eq!((d.send_timeout_secs, d.max_connections), (30, None));
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[server]\nsend_timeout_secs = 5\n")?;
            jail.set_env("MEDIA_ORIGIN__SERVER__MAX_CONNECTIONS", "150");
            let mut s = Settings::load(None).map_err(|e| e.to_string())?;
            s.validate().map_err(|e| e.to_string())?;
            assert_eq!(s.server.send_timeout_secs, 5);
            assert_eq!(s.server.max_connections, Some(150));
            for (key, value, rule) in [
                (
                    "SEND_TIMEOUT_SECS",
                    "0",
                    "send_timeout_secs must be at least 1",
                ),
                (
                    "MAX_CONNECTIONS",
                    "0",
                    "server.max_connections must be at least 1",
                ),
            ] {
                jail.set_env(format!("MEDIA_ORIGIN__SERVER__{key}"), value);
                let e = Settings::load(None)
                    .and_then(|mut s| s.validate())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(rule), "{key}={value}: {e}");
                jail.set_env(format!("MEDIA_ORIGIN__SERVER__{key}"), "7");
            }
            Ok(())
        });
    }
}
