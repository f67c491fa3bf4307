//! The one error type of the HTTP layer: a status, a stable machine-readable code, and a message
//! for people, always sent as `{"error": {"code": "...", "message": "..."}}`.
//!
//! Domain errors convert into it here, so handlers stay thin. A 5xx never says anything
//! internal: the cause is logged and the client is told only what it can act on.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::asset::PathError;
use crate::convert::ConvertError;
use crate::media_kind::MediaError;
use crate::policy::PolicyError;
use crate::store::StoreError;
use crate::whatsapp::{ClientError, WaError};

/// How long a client should wait before retrying when storage is unavailable.
const RETRY_AFTER_SECS: &str = "5";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `invalid_path`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// One extra header (`Allow`, `WWW-Authenticate`, `Retry-After`).
    pub header: Option<Box<(HeaderName, HeaderValue)>>,
    /// More members of the error object, e.g. Meta's own error.
    pub extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl ApiError {
    /// An error with no extra header.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            header: None,
            extra: None,
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.header = Some(Box::new((name, HeaderValue::from_static(value))));
        self
    }

    /// Add a member to the error object.
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_default()
            .insert(key.to_owned(), value);
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 405 with `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this resource accepts only {allow}"),
        )
        .with_header(header::ALLOW, allow)
    }

    /// 500 with nothing internal in the body; the caller logs the cause.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = self.extra.map(|m| *m).unwrap_or_default();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        let body = Json(json!({ "error": error }));
        let mut response = (self.status, body).into_response();
        if let Some((name, value)) = self.header.map(|h| *h) {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        Self::bad_request("invalid_path", e.to_string())
    }
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        Self::bad_request("invalid_policy", e.to_string())
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        let fix = e.fix();
        let error = Self::new(status, e.code(), e.to_string());
        match fix {
            Some(fix) => error.with("fix", json!(fix)),
            None => error,
        }
    }
}

impl From<ConvertError> for ApiError {
    fn from(e: ConvertError) -> Self {
        let message = e.to_string();
        match e {
            ConvertError::Refused(m) => m.into(),
            ConvertError::Unavailable(_) => Self::new(
                StatusCode::NOT_IMPLEMENTED,
                "conversion_unavailable",
                message,
            )
            .with(
                "fix",
                json!(
                    "install Debian's `ffmpeg` package on the server (apt-get install ffmpeg) \
                         and restart it; or upload without convert, in a type WhatsApp accepts"
                ),
            ),
            ConvertError::Busy => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "conversion_busy", message)
                    .with_header(header::RETRY_AFTER, RETRY_AFTER_SECS)
            }
            ConvertError::InputTooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            ConvertError::TooLong { max, .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_long", message)
                    .with("max_duration_secs", json!(max.floor() as u64))
                    .with(
                        "fix",
                        json!(format!(
                            "cut it to at most {} s, e.g. ffmpeg -i in -t {} -c copy out",
                            max.floor(),
                            max.floor()
                        )),
                    )
            }
            ConvertError::WrongKind(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "not_convertible", message)
            }
            ConvertError::Failed { fix, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "conversion_failed",
                message,
            )
            .with(
                "fix",
                // The gate's own advice for the original when it had some (what to do by
                // hand), else the usual cause.
                json!(
                    fix.as_deref()
                        .unwrap_or("check that the file plays; it may be damaged or truncated")
                ),
            ),
            ConvertError::TimedOut { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "conversion_timed_out",
                message,
            )
            .with(
                "fix",
                json!("send a shorter or smaller file, or convert it before uploading"),
            ),
            ConvertError::BadOutput(_) => {
                tracing::error!(error = %message, "a conversion made a file the gate refuses");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "conversion_invalid",
                    message,
                )
            }
            ConvertError::Body(_) => Self::bad_request("upload_interrupted", message),
            ConvertError::Io(ref io) => {
                tracing::error!(error = %io, "conversion temporary file error");
                Self::internal()
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Media(m) => m.into(),
            StoreError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            StoreError::Body(_) => Self::bad_request("upload_interrupted", e.to_string()),
            StoreError::NotFound => Self::not_found("no asset at this path"),
            StoreError::Replaced => {
                Self::new(StatusCode::CONFLICT, "asset_replaced", e.to_string())
            }
            StoreError::Conflict => Self::new(
                StatusCode::CONFLICT,
                "concurrent_write",
                "another writer kept changing this object; try again",
            ),
            StoreError::Backend(_) if e.is_out_of_space() => {
                tracing::error!(error = %e, "storage is full");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "the storage has no room left for this upload; nothing was changed",
                )
            }
            StoreError::Backend(_) | StoreError::Timeout { .. } => {
                tracing::error!(error = %e, "storage backend error");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the storage backend did not answer; try again shortly",
                )
                .with_header(header::RETRY_AFTER, RETRY_AFTER_SECS)
            }
            StoreError::Corrupt { .. } => {
                tracing::error!(error = %e, "corrupt stored data");
                Self::internal()
            }
        }
    }
}

impl From<WaError> for ApiError {
    fn from(e: WaError) -> Self {
        let code = crate::whatsapp::error_code(&e);
        match e {
            WaError::Store(s) => s.into(),
            WaError::NotConfigured(_) => {
                Self::new(StatusCode::NOT_IMPLEMENTED, code, e.to_string())
            }
            WaError::UnknownPhone(_) | WaError::InvalidMediaId(_) => {
                Self::bad_request(code, e.to_string())
            }
            WaError::LookupsPaused { retry_after } => {
                let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
                    .with(
                        "fix",
                        json!(
                            "wait for Retry-After; check that the media IDs imported are fresh \
                               (Meta keeps incoming media 7 days) and meant for this app"
                        ),
                    );
                error.header = Some(Box::new((
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after),
                )));
                error
            }
            WaError::Refused(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()),
            WaError::Client(ref c) => {
                let c = &**c;
                let status = match c {
                    ClientError::Transport {
                        timed_out: true, ..
                    } => StatusCode::GATEWAY_TIMEOUT,
                    ClientError::Meta { .. } if code == "whatsapp_rate_limited" => {
                        StatusCode::TOO_MANY_REQUESTS
                    }
                    ClientError::Source(_) => StatusCode::SERVICE_UNAVAILABLE,
                    ClientError::Download(d) => match d.failure {
                        crate::whatsapp::DownloadFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                        crate::whatsapp::DownloadFailure::TooLarge => {
                            StatusCode::UNPROCESSABLE_ENTITY
                        }
                        _ => StatusCode::BAD_GATEWAY,
                    },
                    _ => StatusCode::BAD_GATEWAY,
                };
                let mut error =
                    Self::new(status, code, e.to_string()).with("attempts", json!(c.attempts()));
                if let ClientError::Meta {
                    error: meta,
                    status,
                    ..
                } = c
                {
                    let mut meta = json!(meta);
                    meta["http_status"] = json!(status);
                    error = error.with("meta", meta);
                }
                if status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE
                {
                    error = error.with_header(header::RETRY_AFTER, RETRY_AFTER_SECS);
                }
                error
            }
        }
    }
}
