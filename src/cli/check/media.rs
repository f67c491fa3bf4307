//! The rules on the body: whether the served `Content-Type` is the exact type Meta requires,
//! whether the bytes are what it says (judged by the upload gate's own
//! [`Inspector`](crate::media_kind::Inspector), so `check` and upload never disagree), and whether
//! the size is within the kind's limit. Meta inspects the bytes and refuses a mismatch (§2, §3).

use reqwest::Url;
use reqwest::header::{self, HeaderMap};

use super::fetch::{Body, joined};
use super::report::{Check, Level, check};
use crate::media_kind::{self, Kind, MAX_UPLOAD_SIZE, MediaError};

/// The body and its declared type, sniffed once.
pub(super) struct Media<'a> {
    declared: Option<&'a str>,
    /// Lowercase essence of the declared type (no parameters).
    essence: Option<String>,
    filename: Option<String>,
    body: &'a Body,
    /// What the bytes are, size limits aside.
    pub(super) sniffed: Result<media_kind::MediaType, MediaError>,
}

impl<'a> Media<'a> {
    pub(super) fn new(url: &Url, declared: Option<&'a str>, body: &'a Body) -> Self {
        let filename = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let essence = declared.map(|d| {
            d.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let mut media = Self {
            declared,
            essence,
            filename,
            body,
            sniffed: Err(MediaError::Unrecognized),
        };
        // Under the served type when that is one the gate stores (it picks within a container
        // family: an M4A served as `audio/mp4` from a `.mp4` URL is audio, as the gate stored
        // it), else on the bytes alone.
        let served = media
            .declared
            .filter(|_| matches!(media_kind::declared_limit(media.declared), Ok(Some(_))));
        media.sniffed = match served.map(|d| media.resolve(Some(d))) {
            Some(Ok(m)) => Ok(m),
            _ => media.resolve(None),
        };
        media
    }

    /// The upload gate's decision on the whole body, size limits left out, so the type is
    /// decided on its own (the size check judges the size).
    fn resolve(&self, declared: Option<&str>) -> Result<media_kind::MediaType, MediaError> {
        self.body
            .inspector
            .type_only(declared, self.filename.as_deref())
    }

    /// "; serve it as `image/jpeg`" when the bytes are a type WhatsApp accepts.
    fn advice(&self) -> String {
        match &self.sniffed {
            Ok(m) => format!(
                "; the bytes are {0}: serve `Content-Type: {0}`",
                m.content_type
            ),
            Err(_) => String::new(),
        }
    }

    pub(super) fn content_type_check(&self) -> Check {
        let (Some(declared), Some(essence)) = (self.declared, self.essence.as_deref()) else {
            return check(
                "content-type",
                Level::Fail,
                format!(
                    "missing: Meta needs the exact media type (README: What Meta needs from a link){}",
                    self.advice()
                ),
            );
        };
        if essence == "audio/ogg" {
            let opus = declared.split(';').skip(1).any(|p| {
                let p = p.trim().to_ascii_lowercase().replace('"', "");
                p == "codecs=opus"
            });
            return if opus {
                check(
                    "content-type",
                    Level::Ok,
                    format!(
                        "{declared}: the exact type for Opus audio (README: What Meta needs from a link; README: What is accepted)"
                    ),
                )
            } else {
                check(
                    "content-type",
                    Level::Warn,
                    format!(
                        "{declared}: WhatsApp takes Ogg only as Opus, which must be served as \
                         `{}` (README: What Meta needs from a link)",
                        media_kind::OGG_OPUS
                    ),
                )
            };
        }
        if let Some(kind) = media_kind::kind_of(essence) {
            return check(
                "content-type",
                Level::Ok,
                format!(
                    "{declared}: an exact type WhatsApp accepts ({kind}, README: What is accepted)"
                ),
            );
        }
        let message = match media_kind::declared_limit(Some(declared)) {
            Ok(Some(_)) => format!(
                "{declared} is not the exact media type Meta requires (the Content-Type header \
                 must be the exact type; README: What Meta needs from a link){}",
                self.advice()
            ),
            Ok(None) => format!(
                "{declared} is not a media type: Meta requires the exact type (README: What Meta needs from a link){}",
                self.advice()
            ),
            Err(e) => format!("{e} (README: What is accepted){}", self.advice()),
        };
        check("content-type", Level::Fail, message)
    }

    pub(super) fn bytes_check(&self) -> Check {
        let sniffed = match &self.sniffed {
            Ok(m) => m,
            Err(e) => {
                return check(
                    "bytes",
                    Level::Fail,
                    format!(
                        "{e}: Meta inspects the bytes and refuses them (README: What Meta needs from a link; README: What is accepted){}",
                        fix_text(e)
                    ),
                );
            }
        };
        let inside = sniffed
            .codecs
            .as_deref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        let declared_usable = matches!(media_kind::declared_limit(self.declared), Ok(Some(_)));
        if !declared_usable {
            let unsupported = self
                .essence
                .as_deref()
                .filter(|e| !e.is_empty() && *e != "application/octet-stream");
            return match unsupported {
                Some(essence) => check(
                    "bytes",
                    Level::Fail,
                    format!(
                        "declared {essence} but the bytes are {}: Meta inspects the bytes (README: What Meta needs from a link)",
                        sniffed.content_type
                    ),
                ),
                None => check(
                    "bytes",
                    Level::Ok,
                    format!(
                        "the bytes are {}, a type WhatsApp accepts ({}){inside}",
                        sniffed.content_type, sniffed.kind
                    ),
                ),
            };
        }
        match self.resolve(self.declared) {
            Ok(m) => check(
                "bytes",
                Level::Ok,
                format!(
                    "the bytes are {}, as declared (Meta inspects the bytes, README: What Meta needs from a link){inside}",
                    m.content_type
                ),
            ),
            Err(
                ref e @ MediaError::Mismatch {
                    ref declared,
                    ref detected,
                    ..
                },
            ) => check(
                "bytes",
                Level::Fail,
                format!(
                    "declared {declared} but the bytes are {detected}: Meta inspects the bytes \
                     and refuses a mismatch (README: What Meta needs from a link){}",
                    fix_text(e)
                ),
            ),
            Err(e) => check(
                "bytes",
                Level::Fail,
                format!(
                    "{e} (README: What Meta needs from a link; README: What is accepted){}",
                    fix_text(&e)
                ),
            ),
        }
    }

    pub(super) fn size_check(&self, headers: &HeaderMap) -> Check {
        let body = self.body;
        if body.over_max {
            return check(
                "size",
                Level::Fail,
                format!(
                    "more than {MAX_UPLOAD_SIZE} bytes (stopped reading): larger than WhatsApp \
                     accepts for any kind (README: What is accepted)"
                ),
            );
        }
        if let Some(e) = &body.error {
            return check(
                "size",
                Level::Fail,
                format!(
                    "the body broke off after {} bytes: {e}; Meta gets no usable asset",
                    body.size
                ),
            );
        }
        let declared_length = joined(headers, header::CONTENT_LENGTH);
        if let Some(length) = &declared_length
            && length.parse::<u64>().ok() != Some(body.size)
        {
            return check(
                "size",
                Level::Fail,
                format!(
                    "Content-Length says {length} but {} bytes arrived: a truncated or \
                     inconsistent answer",
                    body.size
                ),
            );
        }
        let sha = format!("sha256 {}", body.sha256);
        let full = body.inspector.finish(None, self.filename.as_deref());
        let kind_and_limit = match (&full, &self.sniffed) {
            (Err(MediaError::TooLarge { kind, size, limit }), _) => {
                return check(
                    "size",
                    Level::Fail,
                    format!(
                        "{kind} too large: {size} bytes exceeds WhatsApp's limit of {limit} \
                         bytes (README: What is accepted); {sha}"
                    ),
                );
            }
            (_, Ok(m)) => Some((m.kind.to_string(), limit_text(m.kind))),
            (_, Err(_)) => match media_kind::declared_limit(self.declared) {
                Ok(Some(limit)) if body.size > limit => {
                    return check(
                        "size",
                        Level::Fail,
                        format!(
                            "{} bytes exceeds WhatsApp's limit of {limit} bytes for {} (README: What is accepted); {sha}",
                            body.size,
                            self.essence.as_deref().unwrap_or_default()
                        ),
                    );
                }
                Ok(Some(limit)) => Some((
                    self.essence.clone().unwrap_or_default(),
                    format!("{limit} bytes"),
                )),
                _ => None,
            },
        };
        let chunked = if declared_length.is_none() {
            " (no Content-Length)"
        } else {
            ""
        };
        match kind_and_limit {
            Some((kind, limit)) => check(
                "size",
                Level::Ok,
                format!(
                    "{} bytes{chunked}, within the {kind} limit of {limit} (README: What is accepted); {sha}",
                    body.size
                ),
            ),
            None => check(
                "size",
                Level::Warn,
                format!(
                    "{} bytes{chunked}; no WhatsApp kind to check it against; {sha}",
                    body.size
                ),
            ),
        }
    }
}

/// "; fix: ffmpeg …" when the refusal has a fix.
fn fix_text(e: &MediaError) -> String {
    e.fix().map(|f| format!("; fix: {f}")).unwrap_or_default()
}

fn limit_text(kind: Kind) -> String {
    match kind {
        Kind::Sticker => format!(
            "{} bytes static, {} bytes animated",
            media_kind::STATIC_STICKER_MAX_SIZE,
            kind.max_size()
        ),
        _ => format!("{} bytes", kind.max_size()),
    }
}
