//! The exact types WhatsApp accepts ([`Mt`]), the container families where the bytes alone
//! cannot choose (MP4/M4A/3GPP, legacy Office, OOXML), and [`decide`], which weighs the
//! declared type and the file name against what the bytes say.

use super::*;

// ---------------------------------------------------------------------------
// The accepted types
// ---------------------------------------------------------------------------

/// One exact type WhatsApp accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mt {
    Jpeg,
    Png,
    Webp,
    Mp4Video,
    ThreeGpp,
    Aac,
    Amr,
    Mpeg,
    Mp4Audio,
    OggOpus,
    Text,
    Pdf,
    Doc,
    Xls,
    Ppt,
    Docx,
    Xlsx,
    Pptx,
}

/// Types that share a container, where the bytes alone cannot always tell which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Single,
    /// ISO base media file format (`ftyp`): MP4, M4A, 3GPP.
    Bmff,
    /// OLE compound file: legacy Word, Excel, PowerPoint.
    Cfb,
    /// ZIP-based Office Open XML: docx, xlsx, pptx.
    Ooxml,
}

impl Mt {
    pub(super) const ALL: [Mt; 18] = [
        Mt::Jpeg,
        Mt::Png,
        Mt::Webp,
        Mt::Mp4Video,
        Mt::ThreeGpp,
        Mt::Aac,
        Mt::Amr,
        Mt::Mpeg,
        Mt::Mp4Audio,
        Mt::OggOpus,
        Mt::Text,
        Mt::Pdf,
        Mt::Doc,
        Mt::Xls,
        Mt::Ppt,
        Mt::Docx,
        Mt::Xlsx,
        Mt::Pptx,
    ];

    /// The exact stored form.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mt::Jpeg => "image/jpeg",
            Mt::Png => "image/png",
            Mt::Webp => "image/webp",
            Mt::Mp4Video => "video/mp4",
            Mt::ThreeGpp => "video/3gpp",
            Mt::Aac => "audio/aac",
            Mt::Amr => "audio/amr",
            Mt::Mpeg => "audio/mpeg",
            Mt::Mp4Audio => "audio/mp4",
            Mt::OggOpus => OGG_OPUS,
            Mt::Text => "text/plain",
            Mt::Pdf => "application/pdf",
            Mt::Doc => "application/msword",
            Mt::Xls => "application/vnd.ms-excel",
            Mt::Ppt => "application/vnd.ms-powerpoint",
            Mt::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Mt::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Mt::Pptx => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        }
    }

    pub(super) fn kind(self) -> Kind {
        match self {
            Mt::Jpeg | Mt::Png => Kind::Image,
            Mt::Webp => Kind::Sticker,
            Mt::Mp4Video | Mt::ThreeGpp => Kind::Video,
            Mt::Aac | Mt::Amr | Mt::Mpeg | Mt::Mp4Audio | Mt::OggOpus => Kind::Audio,
            Mt::Text | Mt::Pdf | Mt::Doc | Mt::Xls | Mt::Ppt | Mt::Docx | Mt::Xlsx | Mt::Pptx => {
                Kind::Document
            }
        }
    }

    pub(super) fn family(self) -> Family {
        match self {
            Mt::Mp4Video | Mt::ThreeGpp | Mt::Mp4Audio => Family::Bmff,
            Mt::Doc | Mt::Xls | Mt::Ppt => Family::Cfb,
            Mt::Docx | Mt::Xlsx | Mt::Pptx => Family::Ooxml,
            _ => Family::Single,
        }
    }

    /// The canonical file extension, without the dot.
    pub(super) fn extension(self) -> &'static str {
        match self {
            Mt::Jpeg => "jpg",
            Mt::Png => "png",
            Mt::Webp => "webp",
            Mt::Mp4Video => "mp4",
            Mt::ThreeGpp => "3gp",
            Mt::Aac => "aac",
            Mt::Amr => "amr",
            Mt::Mpeg => "mp3",
            Mt::Mp4Audio => "m4a",
            Mt::OggOpus => "ogg",
            Mt::Text => "txt",
            Mt::Pdf => "pdf",
            Mt::Doc => "doc",
            Mt::Xls => "xls",
            Mt::Ppt => "ppt",
            Mt::Docx => "docx",
            Mt::Xlsx => "xlsx",
            Mt::Pptx => "pptx",
        }
    }

    /// Size limit; `animated` only matters for WebP stickers.
    pub(super) fn limit(self, animated: bool) -> u64 {
        if self == Mt::Webp && !animated {
            STATIC_STICKER_MAX_SIZE
        } else {
            self.kind().max_size()
        }
    }

    /// Accepted type for a lowercase declared essence, aliases included.
    pub(super) fn from_declared_essence(essence: &str) -> Option<Mt> {
        match essence {
            "image/jpg" | "image/pjpeg" => Some(Mt::Jpeg),
            "audio/opus" | "audio/ogg" => Some(Mt::OggOpus),
            "audio/mp3" => Some(Mt::Mpeg),
            "audio/x-m4a" | "audio/m4a" => Some(Mt::Mp4Audio),
            // Meta's media table spells it `video/3gp`; its upload errors and IANA `video/3gpp`.
            "video/3gp" => Some(Mt::ThreeGpp),
            _ => Mt::ALL.into_iter().find(|m| m.as_str() == essence),
        }
    }
}

/// Normalise a declared `Content-Type`: `Ok(None)` if absent, blank or
/// `application/octet-stream`; `Unsupported` if WhatsApp does not accept it.
pub(super) fn normalize_declared(declared: Option<&str>) -> Result<Option<Mt>, MediaError> {
    let Some(raw) = declared else {
        return Ok(None);
    };
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.is_empty() || essence == "application/octet-stream" {
        return Ok(None);
    }
    Mt::from_declared_essence(&essence)
        .map(Some)
        .ok_or(MediaError::Unsupported {
            content_type: essence,
        })
}

/// The type a file name's extension suggests (a hint only).
pub(super) fn ext_hint(filename: Option<&str>) -> Option<Mt> {
    let name = filename?.rsplit(['/', '\\']).next()?;
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" | "jpe" => Mt::Jpeg,
        "png" => Mt::Png,
        "webp" => Mt::Webp,
        "mp4" | "m4v" => Mt::Mp4Video,
        "3gp" | "3gpp" => Mt::ThreeGpp,
        "m4a" => Mt::Mp4Audio,
        "aac" => Mt::Aac,
        "amr" => Mt::Amr,
        "mp3" => Mt::Mpeg,
        "ogg" | "oga" | "opus" => Mt::OggOpus,
        "txt" => Mt::Text,
        "pdf" => Mt::Pdf,
        "doc" => Mt::Doc,
        "xls" => Mt::Xls,
        "ppt" => Mt::Ppt,
        "docx" => Mt::Docx,
        "xlsx" => Mt::Xlsx,
        "pptx" => Mt::Pptx,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Decision
// ---------------------------------------------------------------------------

pub(super) const OCTET_STREAM: &str = "application/octet-stream";
pub(super) const OLE_STORAGE: &str = "application/x-ole-storage";
pub(super) const ZIP: &str = "application/zip";

/// A mismatch; its `fix` is filled in by [`judge`], which can judge the bytes on their own.
pub(super) fn mismatch(declared: Mt, detected: &str) -> MediaError {
    MediaError::Mismatch {
        declared: declared.as_str().to_owned(),
        detected: detected.to_owned(),
        fix: None,
    }
}

/// Combine the declared type, extension hint and sniffed bytes into the type to
/// store, plus whether it is an animated sticker.
pub(super) fn decide(
    declared: Option<Mt>,
    ext: Option<Mt>,
    sniffed: Sniffed,
) -> Result<(Mt, bool), MediaError> {
    let in_family = |m: Option<Mt>, fam: Family| m.filter(|m| m.family() == fam);
    let exact = |detected: Mt| match declared {
        Some(d) if d != detected => Err(mismatch(d, detected.as_str())),
        _ => Ok(detected),
    };
    let mt = match sniffed {
        Sniffed::Type(m) => exact(m)?,
        Sniffed::Sticker { animated } => return exact(Mt::Webp).map(|m| (m, animated)),
        Sniffed::Either(a, b) => match declared {
            Some(d) if d == a || d == b => d,
            Some(d) => return Err(mismatch(d, a.as_str())),
            None => ext.filter(|&e| e == a || e == b).unwrap_or(a),
        },
        Sniffed::Bmff(guess) => match declared {
            Some(d) if d.family() == Family::Bmff => d,
            Some(d) => return Err(mismatch(d, guess.as_str())),
            None => in_family(ext, Family::Bmff).unwrap_or(guess),
        },
        Sniffed::Cfb(guess) => match declared {
            Some(d) if d.family() == Family::Cfb => d,
            Some(d) => return Err(mismatch(d, guess.map_or(OLE_STORAGE, Mt::as_str))),
            None => in_family(ext, Family::Cfb)
                .or(guess)
                .ok_or(MediaError::Unrecognized)?,
        },
        Sniffed::Zip(guess) => match (declared, guess) {
            (Some(d), Some(g)) if d == g => d,
            (Some(d), None) if d.family() == Family::Ooxml => d,
            (Some(d), g) => return Err(mismatch(d, g.map_or(ZIP, Mt::as_str))),
            (None, Some(g)) => g,
            (None, None) => {
                in_family(ext, Family::Ooxml).ok_or_else(|| MediaError::Unsupported {
                    content_type: ZIP.to_owned(),
                })?
            }
        },
        Sniffed::Bad { mt, shown, reason } => {
            return Err(match declared {
                Some(d) if d != mt => mismatch(d, shown),
                _ => MediaError::Invalid {
                    content_type: shown.to_owned(),
                    reason,
                },
            });
        }
        Sniffed::Other(other) => {
            return Err(match declared {
                Some(d) => mismatch(d, other),
                None => MediaError::Unsupported {
                    content_type: other.to_owned(),
                },
            });
        }
        Sniffed::Binary => {
            return Err(match declared {
                Some(d) => mismatch(d, OCTET_STREAM),
                None => MediaError::Unrecognized,
            });
        }
    };
    Ok((mt, false))
}
