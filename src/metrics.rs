//! Prometheus metrics (`GET /metrics` on the admin listener), with no global state: one
//! [`Metrics`] per server, shared by the HTTP layer, the store and the Media API client.
//!
//! The public path must stay cheap, so the per-request counters are looked up once and kept
//! in fixed slots: counting a request is an index computation and an atomic increment, with no
//! label strings built and no lock taken. Only a status outside the usual set goes through the
//! labelled family's map.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Which kind of route a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// `/media/...`
    Media,
    /// `/api/...` and `/metrics`
    Admin,
    /// `/healthz`, `/readyz`
    Health,
    /// Anything else (404s, probes).
    Other,
}

impl RouteClass {
    const ALL: [RouteClass; 4] = [Self::Media, Self::Admin, Self::Health, Self::Other];

    /// Classify a request path.
    pub fn of(path: &str) -> Self {
        if path.starts_with("/media/") {
            Self::Media
        } else if path.starts_with("/api/") || path == "/api" || path == "/metrics" {
            Self::Admin
        } else if path == "/healthz" || path == "/readyz" {
            Self::Health
        } else {
            Self::Other
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Media => "media",
            Self::Admin => "admin",
            Self::Health => "health",
            Self::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl EncodeLabelValue for RouteClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The statuses that get a fixed slot; others are counted through the family's map.
const STATUSES: [u16; 20] = [
    200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 416, 422, 431, 500, 503,
    507,
];

fn status_slot(status: u16) -> Option<usize> {
    STATUSES.iter().position(|s| *s == status)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: RouteClass,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConversionLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RetryLabels {
    call: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// A storage operation whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    /// Reading an asset record from the backend (a record-cache miss).
    RecordRead,
    /// Reading a small blob whole into memory (a blob-cache miss).
    BlobRead,
    /// Opening a blob for streaming (on local disk: mapping it), until its first byte can be read.
    BlobOpen,
    /// Making a staged upload the asset (blob into place, record written).
    Commit,
    /// Deleting an asset.
    Delete,
    /// Reading the folder policies (a policy-cache miss).
    PoliciesRead,
    /// Listing assets.
    List,
}

impl StorageOp {
    const ALL: [StorageOp; 7] = [
        Self::RecordRead,
        Self::BlobRead,
        Self::BlobOpen,
        Self::Commit,
        Self::Delete,
        Self::PoliciesRead,
        Self::List,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecordRead => "record_read",
            Self::BlobRead => "blob_read",
            Self::BlobOpen => "blob_open",
            Self::Commit => "commit",
            Self::Delete => "delete",
            Self::PoliciesRead => "policies_read",
            Self::List => "list",
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_slots: Box<[OnceLock<Counter>]>,
    meta_requests: Family<StatusLabels, Counter>,
    meta_slots: Box<[OnceLock<Counter>]>,
    media_bytes: Counter,
    uploads: Counter,
    upload_bytes: Counter,
    whatsapp_calls: Family<CallLabels, Counter>,
    whatsapp_retries: Family<RetryLabels, Counter>,
    imports: Family<OutcomeLabels, Counter>,
    import_bytes: Counter,
    storage: [Histogram; StorageOp::ALL.len()],
    gc_unreadable_records: Counter,
    conversions: Family<ConversionLabels, Counter>,
    conversion_seconds: HistogramFamily<ConversionLabels>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric under the `media_origin_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("media_origin");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route class (media, admin, health, other) and status",
            requests.clone(),
        );
        let meta_requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "meta_fetcher_requests",
            "Requests for /media from Meta's media fetcher (by User-Agent), by status",
            meta_requests.clone(),
        );
        let media_bytes = Counter::default();
        registry.register_with_unit(
            "media_sent",
            "Body bytes of GET /media answers, as handed to the connection: a download cut off \
             counts what was sent, not its Content-Length",
            Unit::Bytes,
            media_bytes.clone(),
        );
        let uploads = Counter::default();
        registry.register(
            "uploads",
            "Uploads stored through the admin API",
            uploads.clone(),
        );
        let upload_bytes = Counter::default();
        registry.register_with_unit(
            "upload",
            "Bytes of the uploads stored through the admin API",
            Unit::Bytes,
            upload_bytes.clone(),
        );
        let whatsapp_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "whatsapp_calls",
            "Cloud API Media endpoint calls (upload, delete, retrieve, download) by outcome: \
             success or our error code, after retries",
            whatsapp_calls.clone(),
        );
        let whatsapp_retries = Family::<RetryLabels, Counter>::default();
        registry.register(
            "whatsapp_retries",
            "Retries of Cloud API Media endpoint calls after a transient failure",
            whatsapp_retries.clone(),
        );
        let imports = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "whatsapp_imports",
            "Imports of incoming media by media ID, by outcome: imported, existing (imported \
             before, nothing downloaded) or our error code",
            imports.clone(),
        );
        let import_bytes = Counter::default();
        registry.register_with_unit(
            "whatsapp_import",
            "Bytes of incoming media imported (stored after the SHA-256 check)",
            Unit::Bytes,
            import_bytes.clone(),
        );
        let storage: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14)));
        registry.register_with_unit(
            "storage_operation_duration",
            "Latency of storage operations (cache misses only), by operation",
            Unit::Seconds,
            storage.clone(),
        );
        let storage = StorageOp::ALL.map(|op| {
            storage.get_or_create_owned(&OperationLabels {
                operation: op.as_str(),
            })
        });
        let gc_unreadable_records = Counter::default();
        registry.register(
            "gc_unreadable_records",
            "Asset records garbage collection could not read (not JSON, or invalid fields) and \
             skipped, keeping the blobs they name; counted at every collection",
            gc_unreadable_records.clone(),
        );
        let conversions = Family::<ConversionLabels, Counter>::default();
        registry.register(
            "conversions",
            "Uploads sent with convert=true or convert=sticker, by the kind stored (unknown when \
             none was) and outcome: converted, untouched (already accepted), refused, too_large, \
             failed, timeout, busy, unavailable, interrupted, error",
            conversions.clone(),
        );
        let conversion_seconds: HistogramFamily<ConversionLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.05, 2.0, 14)));
        registry.register_with_unit(
            "conversion_duration",
            "Time from receiving a convert=true upload to its converted file, by kind and outcome",
            Unit::Seconds,
            conversion_seconds.clone(),
        );
        let slots = |n: usize| (0..n).map(|_| OnceLock::new()).collect();
        Self {
            registry,
            requests,
            request_slots: slots(RouteClass::ALL.len() * STATUSES.len()),
            meta_requests,
            meta_slots: slots(STATUSES.len()),
            media_bytes,
            uploads,
            upload_bytes,
            whatsapp_calls,
            whatsapp_retries,
            imports,
            import_bytes,
            storage,
            gc_unreadable_records,
            conversions,
            conversion_seconds,
        }
    }

    /// Count a conversion (`kind`: the WhatsApp kind stored, or `unknown`) and its duration.
    pub fn conversion(&self, kind: &'static str, outcome: &'static str, seconds: f64) {
        let labels = ConversionLabels { kind, outcome };
        self.conversions.get_or_create(&labels).inc();
        self.conversion_seconds
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Count an answered request.
    #[inline]
    pub fn request(&self, route: RouteClass, status: u16) {
        let labels = || RequestLabels { route, status };
        match status_slot(status) {
            Some(s) => self.request_slots[route.index() * STATUSES.len() + s]
                .get_or_init(|| self.requests.get_or_create_owned(&labels()))
                .inc(),
            None => self.requests.get_or_create(&labels()).inc(),
        };
    }

    /// Count a `/media` request from Meta's fetcher.
    #[inline]
    pub fn meta_request(&self, status: u16) {
        let labels = || StatusLabels { status };
        match status_slot(status) {
            Some(s) => self.meta_slots[s]
                .get_or_init(|| self.meta_requests.get_or_create_owned(&labels()))
                .inc(),
            None => self.meta_requests.get_or_create(&labels()).inc(),
        };
    }

    /// Count body bytes sent for `/media`.
    #[inline]
    pub fn media_bytes(&self, bytes: u64) {
        self.media_bytes.inc_by(bytes);
    }

    /// Count a stored upload of `bytes`.
    pub fn upload(&self, bytes: u64) {
        self.uploads.inc();
        self.upload_bytes.inc_by(bytes);
    }

    /// Count a finished Media API call (`call`: upload, delete, retrieve, download) with its
    /// outcome.
    pub fn whatsapp_call(&self, call: &'static str, outcome: &'static str) {
        self.whatsapp_calls
            .get_or_create(&CallLabels { call, outcome })
            .inc();
    }

    /// Count a retry of a Media API call.
    pub fn whatsapp_retry(&self, call: &'static str) {
        self.whatsapp_retries
            .get_or_create(&RetryLabels { call })
            .inc();
    }

    /// Count an import of incoming media with its outcome, and the bytes it stored.
    pub fn import(&self, outcome: &'static str, bytes: u64) {
        self.imports.get_or_create(&OutcomeLabels { outcome }).inc();
        self.import_bytes.inc_by(bytes);
    }

    /// Count a record garbage collection skipped as unreadable.
    pub fn gc_unreadable_record(&self) {
        self.gc_unreadable_records.inc();
    }

    /// Record how long a storage operation took.
    pub fn storage(&self, op: StorageOp, took: Duration) {
        let i = StorageOp::ALL
            .iter()
            .position(|o| *o == op)
            .expect("every operation has a histogram");
        self.storage[i].observe(took.as_secs_f64());
    }

    /// A guard that records the time from now until it is dropped as `op`.
    pub fn time(&self, op: StorageOp) -> StorageTimer<'_> {
        StorageTimer {
            metrics: self,
            op,
            started: Instant::now(),
        }
    }

    /// Everything, in the OpenMetrics text format (which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// Records a storage operation's duration when dropped (so failures are measured too).
pub struct StorageTimer<'a> {
    metrics: &'a Metrics,
    op: StorageOp,
    started: Instant,
}

impl Drop for StorageTimer<'_> {
    fn drop(&mut self) {
        self.metrics.storage(self.op, self.started.elapsed());
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_labelled_series() {
        let m = Metrics::new();
        m.request(RouteClass::Media, 200);
        m.request(RouteClass::Media, 200);
        m.request(RouteClass::Media, 304);
        m.request(RouteClass::Other, 418);
        m.meta_request(206);
        m.media_bytes(42);
        m.upload(7);
        m.whatsapp_call("upload", "success");
        m.whatsapp_retry("upload");
        m.gc_unreadable_record();
        drop(m.time(StorageOp::Commit));
        let text = m.encode();
        for line in [
            "media_origin_http_requests_total{route=\"media\",status=\"200\"} 2",
            "media_origin_http_requests_total{route=\"media\",status=\"304\"} 1",
            "media_origin_http_requests_total{route=\"other\",status=\"418\"} 1",
            "media_origin_meta_fetcher_requests_total{status=\"206\"} 1",
            "media_origin_media_sent_bytes_total 42",
            "media_origin_uploads_total 1",
            "media_origin_upload_bytes_total 7",
            "media_origin_whatsapp_calls_total{call=\"upload\",outcome=\"success\"} 1",
            "media_origin_whatsapp_retries_total{call=\"upload\"} 1",
            "media_origin_gc_unreadable_records_total 1",
            "media_origin_storage_operation_duration_seconds_count{operation=\"commit\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn routes_are_classified() {
        assert_eq!(RouteClass::of("/media/a.jpg"), RouteClass::Media);
        assert_eq!(RouteClass::of("/api/assets"), RouteClass::Admin);
        assert_eq!(RouteClass::of("/metrics"), RouteClass::Admin);
        assert_eq!(RouteClass::of("/healthz"), RouteClass::Health);
        assert_eq!(RouteClass::of("/media"), RouteClass::Other);
        assert_eq!(RouteClass::of("/"), RouteClass::Other);
    }
}
