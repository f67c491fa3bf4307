//! The application built from settings: the store opened and cleaned up, the listeners bound,
//! the shared state assembled ([`Server::bind`]), then served with the collection loop beside it
//! ([`Server::run`]). `main` and the integration tests both go through it (tests bind port 0).
//! The admin token (configured, or generated once into the token file) is settled here too.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{self, Backend, Settings};
use crate::http::{self, AppState};
use crate::store::Store;
use crate::{admin_token, clock, metrics, reload, serve, signing, whatsapp};

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    /// The admin API's own listener; `None` when it shares the public one.
    admin_listener: Option<TcpListener>,
    limits: serve::Limits,
    /// The public listener's connection limit (`server.max_connections`, or derived).
    max_connections: usize,
    body_idle_timeout: Duration,
    /// `admin.allowed_hosts`: names the admin API answers to besides the defaults.
    admin_hosts: Vec<String>,
    state: AppState,
    gc_interval: Duration,
    gc_grace: Duration,
}

impl Server {
    /// Open the store, clean up what interrupted uploads left, and bind the listener.
    pub async fn bind(settings: &Settings) -> anyhow::Result<Self> {
        Self::bind_with_clock(settings, clock::Clock::system()).await
    }

    /// [`Server::bind`] with the clock media-ID expiry is judged by (tests shift it).
    pub async fn bind_with_clock(settings: &Settings, clock: clock::Clock) -> anyhow::Result<Self> {
        let store = Store::open(
            &settings.storage,
            settings.cache.default,
            settings.cache.folders.clone(),
        )
        .with_context(|| match settings.storage.backend {
            Backend::Local => format!(
                "opening local storage at {}",
                settings.storage.path.display()
            ),
            Backend::S3 => "configuring the S3 client".to_owned(),
        })?;
        // Not fatal: an instance must be able to start while S3 is down (its /readyz says so,
        // and it recovers by itself); on S3 the collection loop sweeps again later.
        match store.clean_up_interrupted_uploads().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed leftovers of interrupted uploads"),
            Err(e) => tracing::warn!(error = %e, "could not clean up interrupted uploads"),
        }
        let metrics = Arc::new(metrics::Metrics::new());
        let store = store.with_metrics(Arc::clone(&metrics));
        store.set_signed_config_folders(settings.signing.folders.iter().cloned());
        let token = admin_token::load(settings)?;
        let listener = TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let addr = listener.local_addr()?;
        let admin_listener = match settings.server.admin_bind {
            config::AdminBind::Public => None,
            config::AdminBind::Addr(admin) => Some(
                TcpListener::bind(admin)
                    .await
                    .with_context(|| format!("binding the admin API to {admin}"))?,
            ),
        };
        let public_base = match &settings.server.public_base_url {
            Some(base) => base.clone(),
            None => {
                if addr.ip().is_unspecified() {
                    tracing::warn!(
                        "listening on all interfaces without server.public_base_url: \
                         links will name 127.0.0.1; set the public URL Meta should fetch"
                    );
                }
                derived_base(addr)
            }
        };
        let server = &settings.server;
        Ok(Self {
            listener,
            admin_listener,
            limits: serve::Limits {
                header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
                max_header_bytes: server.max_header_bytes,
                shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
                send_timeout: Duration::from_secs(server.send_timeout_secs),
            },
            max_connections: server
                .max_connections
                .unwrap_or_else(|| serve::derived_max_connections(serve::open_files_limit())),
            body_idle_timeout: Duration::from_secs(server.body_idle_timeout_secs),
            admin_hosts: settings.admin.allowed_hosts.clone(),
            state: AppState::new(http::Shared {
                store,
                admin_token: http::auth::AdminToken::new(&token),
                public_base: Arc::from(public_base),
                whatsapp: whatsapp::WhatsApp::new(&settings.whatsapp, clock)
                    .with_metrics(Arc::clone(&metrics)),
                signer: arc_swap::ArcSwap::from_pointee(
                    signing::Signer::from_settings(&settings.signing)
                        .map_err(|e| anyhow::anyhow!("[signing]: {e}"))?,
                ),
                converter: Arc::new(crate::convert::Converter::new(
                    &settings.convert,
                    Arc::clone(&metrics),
                )),
                observer: Arc::new(http::observe::Observer::new(
                    metrics,
                    &settings.metrics,
                    &settings.fetch_log,
                )),
            }),
            gc_interval: Duration::from_secs(settings.storage.gc_interval_secs),
            gc_grace: Duration::from_secs(settings.storage.gc_grace_secs),
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the admin API is reached: its own listener, or the public one.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener.as_ref().map_or_else(
            || self.local_addr(),
            |l| l.local_addr().expect("a bound listener has an address"),
        )
    }

    /// The base of the URLs handed out.
    pub fn public_base(&self) -> &str {
        &self.state.public_base
    }

    /// What SIGHUP uses to reload this server: `running` is the settings it was bound with,
    /// `load` reads them again as at start (file, environment, flags).
    pub fn reloader(&self, running: Settings, load: reload::Load) -> reload::Reloader {
        reload::Reloader::new(self.state.clone(), running, load)
    }

    /// Serve until `shutdown` completes, then finish the requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let gc = (!self.gc_interval.is_zero()).then(|| {
            let store = self.state.store.clone();
            let (interval, grace) = (self.gc_interval, self.gc_grace);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                loop {
                    tick.tick().await;
                    match store.collect_garbage(grace).await {
                        Ok(report) => tracing::info!(
                            blobs = report.blobs,
                            tombstones = report.tombstones,
                            unreadable_records = report.unreadable_records,
                            "garbage collection done"
                        ),
                        Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                    }
                    // On a shared bucket the start-up clean-up may only take stale leftovers;
                    // the rest become stale while the server runs.
                    if store.is_shared() {
                        match store.clean_up_interrupted_uploads().await {
                            Ok(0) => {}
                            Ok(removed) => tracing::info!(removed, "removed stale uploads"),
                            Err(e) => {
                                tracing::warn!(error = %e, "cleaning up stale uploads failed")
                            }
                        }
                    }
                }
            })
        });
        let public_addr = serve::describe(&self.listener);
        let mut endpoints = Vec::with_capacity(2);
        let admin_desc = match self.admin_listener {
            Some(listener) => {
                let desc = serve::describe(&listener);
                let hosts =
                    http::host::AllowedHosts::new(listener.local_addr()?, &self.admin_hosts);
                endpoints.push(serve::Endpoint {
                    name: "admin",
                    listener,
                    app: http::admin_router(
                        self.state.clone(),
                        self.body_idle_timeout,
                        Arc::new(hosts),
                    ),
                    max_connections: serve::ADMIN_MAX_CONNECTIONS,
                });
                endpoints.push(serve::Endpoint {
                    name: "public",
                    listener: self.listener,
                    app: http::public_router(self.state),
                    max_connections: self.max_connections,
                });
                desc
            }
            None => {
                let hosts = (!self.admin_hosts.is_empty())
                    .then(|| self.listener.local_addr())
                    .transpose()?
                    .map(|addr| Arc::new(http::host::AllowedHosts::new(addr, &self.admin_hosts)));
                endpoints.push(serve::Endpoint {
                    name: "public",
                    listener: self.listener,
                    app: http::combined_router(self.state, self.body_idle_timeout, hosts),
                    max_connections: self.max_connections,
                });
                "on the public listener".to_owned()
            }
        };
        tracing::info!(
            addr = %public_addr,
            admin = %admin_desc,
            max_connections = self.max_connections,
            send_timeout_secs = self.limits.send_timeout.as_secs(),
            "serving"
        );
        let result = serve::run(endpoints, self.limits, shutdown).await;
        if let Some(gc) = gc {
            gc.abort();
        }
        result
    }
}

fn derived_base(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}
