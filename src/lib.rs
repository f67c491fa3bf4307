//! media-origin: an origin server for WhatsApp Business media.
//!
//! Businesses upload assets through the authenticated admin API; the server keeps them on local
//! disk or in S3 and serves them to Meta's media fetcher with exactly the caching headers their
//! policy asks for (see `WHATSAPP_MEDIA.md` §2 for what Meta does with each).
//!
//! Module map, from the ground floor up:
//! - [`clock`]: time: epoch seconds, HTTP dates, `Last-Modified` stepping, the test-shiftable
//!   [`clock::Clock`].
//! - [`asset`]: the shared vocabulary: asset paths (validation, encoding), records, media IDs.
//! - [`policy`]: the four cache policies and folder-rule resolution.
//! - [`media_kind`]: WhatsApp's kinds, exact MIME types, size limits, and the upload gate that
//!   looks inside (codecs, tracks, frame headers) and says how to fix what it refuses.
//! - [`config`]: settings from `config.toml`, the environment and flags.
//! - [`convert`]: conversion on upload: what WhatsApp refuses made into what it accepts, by
//!   ffmpeg as a bounded child process.
//! - [`logging`]: `tracing` to stderr (text or JSON) through a thread of its own; the filter
//!   reloads.
//! - [`metrics`]: Prometheus metrics, one registry per server, cheap on the public path.
//! - [`signing`]: signed, expiring links for assets that must not be public.
//! - [`admin_token`]: the admin token: configured or generated into a private token file.
//! - [`store`]: assets on an object store: blobs, records, policies, housekeeping.
//! - [`whatsapp`]: media IDs at the Cloud API Media endpoint, for `id`-based sends, and imports
//!   of media customers send (by media ID or from a webhook payload), kept signed-only.
//! - [`http`]: public serving, the admin API and its page, auth, errors, request observation.
//! - [`serve`]: the accept loops over hyper, with the limits a public server needs, and
//!   graceful shutdown.
//! - [`reload`]: SIGHUP: the settings that can change without a restart.
//! - [`app`]: the application built from settings ([`Server`]); `main` and the integration
//!   tests both go through it (tests bind port 0).
//! - [`cli`]: the command line: `serve`, `check-storage`, `upload`, `import`, `sign`, `check`.

pub mod admin_token;
pub mod app;
pub mod asset;
pub mod cli;
pub mod clock;
pub mod config;
pub mod convert;
pub mod http;
pub mod logging;
pub mod media_kind;
pub mod metrics;
pub mod policy;
pub mod reload;
pub mod serve;
pub mod signing;
pub mod store;
pub mod whatsapp;

pub use app::Server;
