//! The stored record of one asset path, and the media IDs it keeps: what the store writes at
//! `assets/<path>.json`, and what the HTTP layer, the CLI and the WhatsApp client read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::media_kind::{self, Kind};
use crate::policy::CachePolicy;

/// The stored record of one asset path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRecord {
    /// The asset path.
    pub path: String,
    /// Lowercase hex SHA-256 of the bytes; also names the blob.
    pub sha256: String,
    /// Length in bytes.
    pub size: u64,
    /// The exact type served in `Content-Type`.
    pub content_type: String,
    /// `Last-Modified`, whole seconds since the epoch; moves forward on every content change.
    pub last_modified: u64,
    /// The asset's own policy override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CachePolicy>,
    /// The file name a document is sent with.
    pub filename: String,
    /// When these bytes were uploaded (wall clock, epoch seconds).
    pub uploaded_at: u64,
    /// A tombstone: the asset was deleted at `last_modified`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Media IDs of these bytes at the Cloud API, by business phone number ID.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub whatsapp: BTreeMap<String, MediaId>,
    /// The asset's own signed-link setting: `Some(true)` signed-only, `Some(false)` public even
    /// in a signed folder, `None` as its folder says. Kept across replacements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<bool>,
    /// Set for media a customer sent, imported from the Cloud API by media ID: what Meta said
    /// of it. Such an asset may be of any type (a customer can send any document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
    /// What the upload was before media-origin converted it (`convert=true`), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<ConvertedFrom>,
}

/// What Meta said of a customer's media when it was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// The media ID from the webhook.
    pub media_id: String,
    /// The business phone number it came in on.
    pub phone_number_id: String,
    /// Meta's `mime_type`, verbatim (the stored `content_type` is what the bytes are).
    pub mime_type: String,
    /// Meta's `file_size`.
    pub file_size: u64,
    /// When it was imported (epoch seconds).
    pub imported_at: u64,
    /// The webhook message it came in, when imported from a webhook payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The customer's WhatsApp ID (`from`), when imported from a webhook payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// An upload as it was before conversion: the original bytes are not kept, so this is what an
/// operator can still see of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertedFrom {
    /// The original's type, e.g. `video/quicktime` or `audio/wav`.
    pub content_type: String,
    /// The original's size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the original bytes.
    pub sha256: String,
    /// The container as ffprobe named it, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// The original's duration in milliseconds, for timed media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Its streams, in file order.
    pub streams: Vec<FoundStream>,
    /// Why WhatsApp would have refused it, in the upload gate's words (none when it was
    /// converted only because a sticker was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One stream of an original upload, as ffprobe saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundStream {
    /// `video` or `audio` (images are one-frame `video`).
    pub kind: String,
    /// ffprobe's codec name, e.g. `hevc`, `opus`, `png`.
    pub codec: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pix_fmt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
}

/// A media ID the Cloud API Media endpoint gave for an asset's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaId {
    /// The ID to send in `{"image": {"id": ...}}`.
    pub media_id: String,
    /// The bytes it was uploaded with: an ID is only valid for the asset while they match.
    pub sha256: String,
    /// When it was uploaded (epoch seconds).
    pub uploaded_at: u64,
    /// When it stops being reused (epoch seconds).
    pub expires_at: u64,
    /// The `ttl_minutes` it was uploaded with (No-Storage numbers), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<u32>,
}

/// The latest second an HTTP date can show (Fri, 31 Dec 9999 23:59:59 GMT); formatting a later
/// one panics.
const MAX_HTTP_DATE: u64 = 253_402_300_799;

/// Whether `s` is a SHA-256 as the store writes it: 64 lowercase hex digits.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A stored value, shortened to quote it in an error (it may be anything at all).
fn excerpt(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        return s.to_owned();
    }
    let mut short: String = s.chars().take(MAX).collect();
    short.push('…');
    short
}

impl AssetRecord {
    /// Check what the server relies on in a record read from `path`'s key: the record may have
    /// been written by hand, by another program or an older version, or damaged in storage, and
    /// must then be refused as corrupt (a 500 that logs its key), never served, shown or allowed
    /// to panic a request (the hash names the blob and is sliced for links; the type, hash and
    /// dates become header values).
    pub fn validate(&self, path: &str) -> Result<(), String> {
        if self.path != path {
            return Err(format!(
                "its path is {:?}, but its key is that of {path:?}",
                excerpt(&self.path)
            ));
        }
        if !is_sha256_hex(&self.sha256) {
            return Err(format!(
                "sha256 {:?} is not 64 lowercase hex digits",
                excerpt(&self.sha256)
            ));
        }
        if self.imported.is_some() {
            // Customers' files: any well-formed type, up to the largest import.
            if !media_kind::is_wellformed_type(&self.content_type) {
                return Err(format!(
                    "content_type {:?} is not a well-formed media type",
                    excerpt(&self.content_type)
                ));
            }
            if self.size == 0 || self.size > media_kind::MAX_IMPORT_SIZE {
                return Err(format!(
                    "size {} is not between 1 and {}, the largest import",
                    self.size,
                    media_kind::MAX_IMPORT_SIZE
                ));
            }
        } else if let Some(kind) = self.kind() {
            if self.size == 0 || self.size > kind.max_size() {
                return Err(format!(
                    "size {} is not between 1 and {}, the largest {kind} WhatsApp accepts",
                    self.size,
                    kind.max_size()
                ));
            }
        } else {
            return Err(format!(
                "content_type {:?} is not a type media-origin stores",
                excerpt(&self.content_type)
            ));
        }
        let mut dates = vec![
            ("last_modified", self.last_modified),
            ("uploaded_at", self.uploaded_at),
        ];
        for m in self.whatsapp.values() {
            dates.push(("whatsapp uploaded_at", m.uploaded_at));
            dates.push(("whatsapp expires_at", m.expires_at));
        }
        if let Some((field, value)) = dates.into_iter().find(|(_, t)| *t > MAX_HTTP_DATE) {
            return Err(format!(
                "{field} {value} is after the year 9999, the last an HTTP date can show"
            ));
        }
        Ok(())
    }

    /// The WhatsApp kind of the stored type.
    pub fn kind(&self) -> Option<Kind> {
        media_kind::kind_of(&self.content_type)
    }

    /// The strong, quoted entity tag: the full content hash, so it is the same on every
    /// instance, backend and restart.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.sha256)
    }

    /// The version tag in links: the content hash and the `Last-Modified` second, so it changes
    /// on every content change, a restore of older bytes included (a link handed out before
    /// may be cached by Meta with the bytes that were live then).
    pub fn version(&self) -> String {
        format!("{}-{}", &self.sha256[..12], self.last_modified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_validated_as_read() {
        let good = AssetRecord {
            path: "promo/a.jpg".into(),
            sha256: "0123456789abcdef".repeat(4),
            size: 1000,
            content_type: "image/jpeg".into(),
            last_modified: 1_700_000_000,
            cache_control: None,
            filename: "a.jpg".into(),
            uploaded_at: 1_700_000_000,
            deleted: false,
            whatsapp: BTreeMap::new(),
            signed: None,
            imported: None,
            converted_from: None,
        };
        assert_eq!(good.validate("promo/a.jpg"), Ok(()));
        // The last second an HTTP date shows, and the largest image, are fine.
        let edge = AssetRecord {
            last_modified: MAX_HTTP_DATE,
            size: 5_000_000,
            ..good.clone()
        };
        assert_eq!(edge.validate("promo/a.jpg"), Ok(()));
        let media_id = |expires_at| MediaId {
            media_id: "1".into(),
            sha256: good.sha256.clone(),
            uploaded_at: 1,
            expires_at,
            ttl_minutes: None,
        };
        let refused = [
            (
                AssetRecord {
                    path: "promo/b.jpg".into(),
                    ..good.clone()
                },
                r#"its path is "promo/b.jpg", but its key is that of "promo/a.jpg""#.to_owned(),
            ),
            (
                AssetRecord {
                    sha256: "abc".into(),
                    ..good.clone()
                },
                r#"sha256 "abc" is not 64 lowercase hex digits"#.to_owned(),
            ),
            (
                AssetRecord {
                    sha256: good.sha256.to_uppercase(),
                    ..good.clone()
                },
                format!(
                    "sha256 {:?} is not 64 lowercase hex digits",
                    good.sha256.to_uppercase()
                ),
            ),
            (
                AssetRecord {
                    sha256: "g".repeat(64),
                    ..good.clone()
                },
                format!("sha256 {:?} is not 64 lowercase hex digits", "g".repeat(64)),
            ),
            (
                AssetRecord {
                    content_type: "text/html\r\nSet-Cookie: a=b".into(),
                    ..good.clone()
                },
                r#"content_type "text/html\r\nSet-Cookie: a=b" is not a type media-origin stores"#
                    .to_owned(),
            ),
            (
                AssetRecord {
                    content_type: "image/jpg".into(),
                    ..good.clone()
                },
                r#"content_type "image/jpg" is not a type media-origin stores"#.to_owned(),
            ),
            (
                AssetRecord {
                    size: 0,
                    ..good.clone()
                },
                "size 0 is not between 1 and 5000000, the largest image WhatsApp accepts"
                    .to_owned(),
            ),
            (
                AssetRecord {
                    size: 5_000_001,
                    ..good.clone()
                },
                "size 5000001 is not between 1 and 5000000, the largest image WhatsApp accepts"
                    .to_owned(),
            ),
            (
                AssetRecord {
                    last_modified: MAX_HTTP_DATE + 1,
                    ..good.clone()
                },
                "last_modified 253402300800 is after the year 9999, the last an HTTP date can show"
                    .to_owned(),
            ),
            (
                AssetRecord {
                    uploaded_at: u64::MAX,
                    ..good.clone()
                },
                format!(
                    "uploaded_at {} is after the year 9999, the last an HTTP date can show",
                    u64::MAX
                ),
            ),
            (
                AssetRecord {
                    whatsapp: BTreeMap::from([("1".to_owned(), media_id(u64::MAX))]),
                    ..good.clone()
                },
                format!(
                    "whatsapp expires_at {} is after the year 9999, the last an HTTP date can show",
                    u64::MAX
                ),
            ),
        ];
        for (record, reason) in refused {
            assert_eq!(record.validate("promo/a.jpg"), Err(reason));
        }
        // A long foreign value is quoted shortened.
        let long = AssetRecord {
            sha256: "x".repeat(200),
            ..good.clone()
        };
        assert_eq!(
            long.validate("promo/a.jpg"),
            Err(format!(
                "sha256 {:?} is not 64 lowercase hex digits",
                format!("{}…", "x".repeat(80))
            ))
        );
    }
}
