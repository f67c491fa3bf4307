//! Why a conversion did not give an asset: one error per answer the API gives (see
//! `http::error` for the status codes and fixes), and the outcome label of the conversion
//! metrics.

use crate::media_kind::MediaError;

/// Why a conversion did not give an asset.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// 501: ffmpeg (or its encoders, or prlimit) is missing.
    #[error("conversion is not available on this server: {0}")]
    Unavailable(String),
    /// 503: every slot and the queue are taken.
    #[error("the server is converting as many uploads as it can; try again shortly")]
    Busy,
    /// 413: the upload is over `[convert] max_input_mb`.
    #[error(
        "the upload is over {limit} bytes, the most this server converts ([convert] max_input_mb)"
    )]
    InputTooLarge { limit: u64 },
    /// 413: even the lowest bitrate cannot fit the duration into the kind's limit.
    #[error(
        "{duration:.1} s does not fit into {limit} bytes even at the lowest bitrate; the longest that fits is {max:.0} s"
    )]
    TooLong { duration: f64, max: f64, limit: u64 },
    /// The gate's refusal, for what cannot be converted (not media ffmpeg reads).
    #[error(transparent)]
    Refused(MediaError),
    /// 422: the mode does not apply to this kind (a sticker from a video).
    #[error("{0}")]
    WrongKind(String),
    /// 422: ffmpeg could not convert the file (damaged, truncated, lying headers).
    #[error("the file could not be converted: {reason}")]
    Failed {
        reason: String,
        /// The gate's fix for the original, when it had one: what to try by hand.
        fix: Option<String>,
    },
    /// 422: the conversion ran past `[convert] timeout_secs`.
    #[error("converting took longer than {secs} s ([convert] timeout_secs) and was stopped")]
    TimedOut { secs: u64 },
    /// 500: the conversion made something WhatsApp would refuse.
    #[error("the conversion made a file WhatsApp would refuse: {0}")]
    BadOutput(String),
    /// 400: the upload's body broke off.
    #[error("the upload was interrupted: {0}")]
    Body(String),
    /// 500: a temporary file could not be written.
    #[error("temporary file: {0}")]
    Io(#[from] std::io::Error),
}

impl ConvertError {
    /// A failure with the gate's fix for the original.
    pub(super) fn with_fix(self, fix: Option<String>) -> Self {
        match self {
            Self::Failed { reason, .. } => Self::Failed { reason, fix },
            e => e,
        }
    }

    /// The metrics outcome label.
    pub(super) fn outcome(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Busy => "busy",
            Self::InputTooLarge { .. } | Self::TooLong { .. } => "too_large",
            Self::Refused(_) | Self::WrongKind(_) => "refused",
            Self::Failed { .. } => "failed",
            Self::TimedOut { .. } => "timeout",
            Self::BadOutput(_) | Self::Io(_) => "error",
            Self::Body(_) => "interrupted",
        }
    }
}

/// A tool that could not be started: missing (or not executable) means this server cannot
/// convert; anything else (out of processes or memory) is the server's trouble, not a missing
/// install.
pub(super) fn spawn_error(e: std::io::Error) -> ConvertError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            ConvertError::Unavailable(e.to_string())
        }
        _ => ConvertError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_missing_tool_says_conversion_is_unavailable() {
        for kind in [ErrorKind::NotFound, ErrorKind::PermissionDenied] {
            assert!(matches!(
                spawn_error(Error::from(kind)),
                ConvertError::Unavailable(_)
            ));
        }
        // Out of processes (EAGAIN) or memory: the server's trouble, a 500, not "install ffmpeg".
        for kind in [ErrorKind::WouldBlock, ErrorKind::OutOfMemory] {
            assert!(matches!(
                spawn_error(Error::from(kind)),
                ConvertError::Io(_)
            ));
        }
    }
}
