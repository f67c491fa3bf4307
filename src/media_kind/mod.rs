//! Decide the exact Content-Type (and WhatsApp media kind) of an upload.
//!
//! # Why this module exists
//!
//! The WhatsApp Business Cloud API fetches media from this origin and **inspects
//! the bytes**: it does not trust the `Content-Type` we serve. A WebP served as
//! `image/jpeg`, a WAV called `audio/mpeg` or a 16-bit PNG is rejected by Meta,
//! usually long after the upload, when a message fails to send. So the origin
//! must refuse such files at upload time, with an error the API user can act on,
//! and must store and serve one of the *exact* types Meta expects (for example
//! Opus has to be served as `audio/ogg; codecs=opus`; Meta rejects plain
//! `audio/opus`).
//!
//! # Why it is hand-written
//!
//! Generic type sniffers (`infer`, `tree_magic`, `mime_guess`, libmagic) answer
//! "what is this file?", not "will WhatsApp take it?". None of them encodes
//! WhatsApp's particular rules: Ogg only with mono Opus, PNG only 8-bit RGB or
//! RGBA, stickers only 512x512 WebP with different size limits for static and
//! animated ones, M4A vs MP4 vs 3GPP chosen within one container family, legacy
//! and OOXML Office formats told apart, codecs judged by what phones decode. The
//! checks needed are magic numbers, header fields and a box walk, so they are written
//! out here with no dependency but `std` (see [`bmff`] and [`jpeg`] for why not a
//! container or image library).
//!
//! # How
//!
//! An upload is fed through an [`Inspector`] as it streams in. It keeps the first
//! [`SNIFF_LEN`] bytes and, for the containers whose decisive fields can be anywhere, follows
//! their structure as the bytes pass: [`bmff`] keeps an MP4/3GPP/M4A's `moov` and names the
//! codec of every track (H.264 profile, AAC object type), [`jpeg`] reads a JPEG's frame header.
//! [`Inspector::provisional`] decides from the head alone while the upload streams (to apply
//! the kind's size limit early); [`Inspector::finish`] is the final word, on everything.
//! [`inspect`] does both for bytes in memory.
//!
//! The decision combines the declared `Content-Type` (normalised; aliases like `image/jpg`,
//! `audio/opus` or `video/3gp` accepted), the file name's extension (only a hint to choose
//! within a container family), the bytes and the total size. The bytes decide; a declaration
//! that contradicts them is a [`MediaError::Mismatch`]. Every refusal can say how to fix the
//! file ([`MediaError::fix`]). [`declared_limit`] gives the size limit implied by a declared
//! type alone, so an oversized upload can be refused (413) before any byte is read.

use std::fmt;

pub mod bmff;
mod fix;
mod inspect;
pub mod jpeg;
mod sniff;
mod types;

pub use inspect::Inspector;
use inspect::*;
use sniff::*;
use types::*;

/// How many leading bytes of the content [`resolve`] wants to see.
pub const SNIFF_LEN: usize = 64 * 1024;

/// The largest upload WhatsApp accepts for any kind (documents: 100 MB).
pub const MAX_UPLOAD_SIZE: u64 = 100_000_000;

/// Size limit for a static (non-animated) WebP sticker; animated stickers may be
/// up to [`Kind::max_size`] of [`Kind::Sticker`] (500 KB).
pub const STATIC_STICKER_MAX_SIZE: u64 = 100_000;

/// Stored content type for Opus audio: the only form Meta accepts for Opus.
pub const OGG_OPUS: &str = "audio/ogg; codecs=opus";

/// WhatsApp media kind, as used in the Cloud API's message `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// JPEG or 8-bit RGB/RGBA PNG, up to 5 MB.
    Image,
    /// MP4 or 3GPP, up to 16 MB.
    Video,
    /// AAC, AMR, MP3, M4A or mono Ogg Opus, up to 16 MB.
    Audio,
    /// Text, PDF or Microsoft Office, up to 100 MB.
    Document,
    /// 512x512 WebP: 100 KB static, 500 KB animated.
    Sticker,
}

impl Kind {
    /// The lowercase name WhatsApp uses: "image", "video", "audio", "document" or "sticker".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Document => "document",
            Kind::Sticker => "sticker",
        }
    }

    /// Largest size in bytes WhatsApp accepts for this kind (MB = 1,000,000 bytes).
    ///
    /// For stickers this is the animated limit (500 KB); static stickers are
    /// limited to [`STATIC_STICKER_MAX_SIZE`], which [`resolve`] enforces.
    pub fn max_size(self) -> u64 {
        match self {
            Kind::Image => 5_000_000,
            Kind::Video | Kind::Audio => 16_000_000,
            Kind::Document => 100_000_000,
            Kind::Sticker => 500_000,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exact type to store and serve, plus its WhatsApp kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Exact `Content-Type` to store and serve, e.g. `image/jpeg` or `audio/ogg; codecs=opus`.
    pub content_type: String,
    /// The WhatsApp kind of `content_type`.
    pub kind: Kind,
    /// What the inspection found inside, for reports: "H.264 video, AAC-LC audio",
    /// "8-bit YCbCr baseline JPEG". `None` where nothing was looked into.
    pub codecs: Option<String>,
}

/// Why an upload cannot be served to WhatsApp. See [`MediaError::status`] and
/// [`MediaError::code`] for the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// 415: a type WhatsApp does not accept (declared or detected), e.g. `image/gif`.
    #[error(
        "{content_type} is not accepted by WhatsApp ({})",
        accepted_hint(content_type)
    )]
    Unsupported {
        /// The unaccepted type, normalised (lowercase essence).
        content_type: String,
    },
    /// 415: the bytes are not recognisably any supported type and no usable type was declared.
    #[error(
        "could not recognise the content as a type WhatsApp accepts ({})",
        ACCEPTED_SUMMARY
    )]
    Unrecognized,
    /// 422: the declared type does not match the bytes.
    #[error("declared {declared} but the bytes are {detected}")]
    Mismatch {
        /// The declared type, normalised.
        declared: String,
        /// What the bytes are (`application/octet-stream` if unrecognised binary).
        detected: String,
        /// What to do, decided from what the bytes are on their own (see [`MediaError::fix`]).
        fix: Option<String>,
    },
    /// 413: too large for its kind.
    #[error("{kind} too large: {size} bytes exceeds WhatsApp's limit of {limit} bytes")]
    TooLarge {
        /// The kind the content resolved to.
        kind: Kind,
        /// The content's size in bytes.
        size: u64,
        /// The applicable limit in bytes.
        limit: u64,
    },
    /// 422: the right type, but a variant WhatsApp rejects (16-bit or palette PNG,
    /// stereo or non-Opus Ogg, WebP not 512x512, empty file...).
    #[error("invalid {content_type}: {reason}")]
    Invalid {
        /// The type of the content.
        content_type: String,
        /// What is wrong with it, in words for the API user.
        reason: String,
    },
}

impl MediaError {
    /// HTTP status to answer with: 413, 415 or 422.
    pub fn status(&self) -> u16 {
        match self {
            MediaError::Unsupported { .. } | MediaError::Unrecognized => 415,
            MediaError::TooLarge { .. } => 413,
            MediaError::Mismatch { .. } | MediaError::Invalid { .. } => 422,
        }
    }

    /// Stable machine-readable error code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::Unsupported { .. } => "unsupported_media_type",
            MediaError::Unrecognized => "unrecognized_media",
            MediaError::Mismatch { .. } => "content_type_mismatch",
            MediaError::TooLarge { .. } => "too_large",
            MediaError::Invalid { .. } => "invalid_media",
        }
    }
}

const ACCEPTED_SUMMARY: &str = "WhatsApp accepts JPEG and PNG images, 512x512 WebP stickers, \
     MP4 and 3GPP video, AAC, AMR, MP3, M4A and mono Ogg Opus audio, \
     and text, PDF and Microsoft Office documents";

/// Short list of accepted types for the top-level type of `content_type`.
fn accepted_hint(content_type: &str) -> &'static str {
    match content_type.split('/').next().unwrap_or("") {
        "image" => "accepted images: image/jpeg, image/png; stickers: image/webp",
        "video" => "accepted video: video/mp4, video/3gpp",
        "audio" => {
            "accepted audio: audio/aac, audio/amr, audio/mpeg, audio/mp4, audio/ogg (mono Opus)"
        }
        "text" | "application" => {
            "accepted documents: text/plain, application/pdf, Microsoft Word, Excel and \
             PowerPoint (.doc, .docx, .xls, .xlsx, .ppt, .pptx)"
        }
        _ => ACCEPTED_SUMMARY,
    }
}

/// Kind of an exact stored content type, as produced by [`resolve`]
/// (e.g. `audio/ogg; codecs=opus` -> Audio, `image/webp` -> Sticker).
///
/// The match is exact: aliases and other spellings (`image/jpg`, `audio/ogg`
/// without the codec, `audio/opus`) are not stored types and give `None`, as
/// does anything WhatsApp does not accept.
pub fn kind_of(content_type: &str) -> Option<Kind> {
    Mt::ALL
        .iter()
        .find(|m| m.as_str() == content_type)
        .map(|m| m.kind())
}

/// The file extension WhatsApp users and Meta expect for an exact stored content type
/// (`image/jpeg` -> `jpg`, `audio/ogg; codecs=opus` -> `ogg`), without the dot; `None` for a
/// type that is not a stored type. Used to name files sent to the Media API, whatever the
/// asset's own path is called.
pub fn canonical_extension(content_type: &str) -> Option<&'static str> {
    Mt::ALL
        .iter()
        .find(|m| m.as_str() == content_type)
        .map(|m| m.extension())
}

/// The type a file name's extension suggests, when it is one WhatsApp accepts: what a browser,
/// the admin page and `curl -F` declare for the file, and so what the CLI checks the bytes
/// against to give the same answer.
pub fn type_for_name(filename: &str) -> Option<&'static str> {
    types::ext_hint(Some(filename)).map(|m| m.as_str())
}

/// Size limit implied by a declared `Content-Type` header before any byte is
/// read (to answer 413 early when `Content-Length` is known).
///
/// The header is normalised as in [`resolve`] (case-insensitive essence,
/// parameters ignored, aliases such as `audio/opus` accepted). Returns
/// `Ok(None)` for a missing, blank or `application/octet-stream` header,
/// `Err(MediaError::Unsupported)` for a type WhatsApp does not accept, and
/// otherwise the kind's limit (`image/webp`: 500,000, the animated sticker limit).
pub fn declared_limit(declared: Option<&str>) -> Result<Option<u64>, MediaError> {
    Ok(normalize_declared(declared)?.map(|m| m.limit(true)))
}

/// Decide the type to store and serve from the first bytes alone (provisional).
///
/// * `declared`: the request's `Content-Type`, if any.
/// * `filename`: the client's file name, if any; its extension only helps to
///   choose within a container family (MP4/M4A/3GPP, legacy Office, OOXML).
/// * `head`: the first `min(SNIFF_LEN, size)` bytes of the content.
/// * `size`: the total length in bytes.
///
/// The bytes decide. A declared type must agree with them (within a container
/// family, the declared type is taken); otherwise the result is
/// [`MediaError::Mismatch`]. Finally the size is checked against the kind's limit.
///
/// This reads the head only: it cannot see the codecs of an MP4 whose `moov` is further on,
/// a JPEG frame header behind long metadata, or a NUL byte past the head. It serves to choose
/// a size limit while an upload streams in; the final word is [`Inspector::finish`] (or
/// [`inspect`] for bytes in memory), which reads everything.
pub fn resolve(
    declared: Option<&str>,
    filename: Option<&str>,
    head: &[u8],
    size: u64,
) -> Result<MediaType, MediaError> {
    let usable = usize::try_from(size).unwrap_or(usize::MAX).min(SNIFF_LEN);
    let head = &head[..head.len().min(usable)];
    let has_nul = head.contains(&0);
    judge(declared, filename, head, size, has_nul, None)
}

/// Decide the type of a whole file in memory: [`Inspector`] over `bytes` in one piece.
pub fn inspect(
    declared: Option<&str>,
    filename: Option<&str>,
    bytes: &[u8],
) -> Result<MediaType, MediaError> {
    let mut i = Inspector::new();
    i.update(bytes);
    i.finish(declared, filename)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ----- fixtures ---------------------------------------------------------

    fn padded(mut v: Vec<u8>, len: usize) -> Vec<u8> {
        if v.len() < len {
            v.resize(len, 0xAA);
        }
        v
    }

    fn jpeg() -> Vec<u8> {
        padded(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01".to_vec(), 200)
    }

    fn png(depth: u8, colour: u8) -> Vec<u8> {
        let mut v = PNG_SIGNATURE.to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&640u32.to_be_bytes());
        v.extend_from_slice(&480u32.to_be_bytes());
        v.extend_from_slice(&[depth, colour, 0, 0, 0]);
        v.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]); // CRC (not checked)
        padded(v, 200)
    }

    fn riff(form: &[u8], chunks: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(u32::try_from(chunks.len()).unwrap() + 4).to_le_bytes());
        v.extend_from_slice(form);
        v.extend_from_slice(chunks);
        v
    }

    fn chunk(fourcc: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = fourcc.to_vec();
        v.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    /// Extended WebP; `flag_anim` sets the VP8X animation flag, `anim_chunk` adds an ANIM chunk.
    fn webp_vp8x(w: u32, h: u32, flag_anim: bool, anim_chunk: bool) -> Vec<u8> {
        let mut data = vec![if flag_anim { 0x02 } else { 0x00 }, 0, 0, 0];
        data.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        data.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        let mut chunks = chunk(b"VP8X", &data);
        if anim_chunk {
            chunks.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
        }
        chunks.extend(chunk(b"ANMF", &[0u8; 40]));
        riff(b"WEBP", &chunks)
    }

    fn webp_vp8l(w: u32, h: u32) -> Vec<u8> {
        let bits = (w - 1) | ((h - 1) << 14);
        let mut data = vec![0x2f];
        data.extend_from_slice(&bits.to_le_bytes());
        data.extend_from_slice(&[0u8; 40]);
        riff(b"WEBP", &chunk(b"VP8L", &data))
    }

    fn webp_vp8(w: u16, h: u16) -> Vec<u8> {
        let mut data = vec![0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a];
        data.extend_from_slice(&w.to_le_bytes());
        data.extend_from_slice(&h.to_le_bytes());
        data.extend_from_slice(&[0u8; 40]);
        riff(b"WEBP", &chunk(b"VP8 ", &data))
    }

    fn ftyp(brand: &[u8; 4]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0x18];
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(brand);
        v.extend_from_slice(&[0, 0, 0, 0]);
        v.extend_from_slice(b"isomiso2");
        v.extend_from_slice(&[0, 0, 0, 8]);
        v.extend_from_slice(b"free");
        padded(v, 200)
    }

    fn adts() -> Vec<u8> {
        padded(b"\xff\xf1\x50\x80\x02\x1f\xfc".to_vec(), 200)
    }

    fn mp3_frame() -> Vec<u8> {
        padded(b"\xff\xfb\x90\x64\x00".to_vec(), 200)
    }

    fn id3(then: &[u8]) -> Vec<u8> {
        let mut v = b"ID3\x04\x00\x00\x00\x00\x00\x14".to_vec(); // 20-byte tag body
        v.extend_from_slice(&[0u8; 20]);
        v.extend_from_slice(then);
        padded(v, 200)
    }

    fn ogg(packet: &[u8]) -> Vec<u8> {
        let mut v = b"OggS\x00\x02".to_vec();
        v.extend_from_slice(&[0u8; 8]); // granule position
        v.extend_from_slice(&[1, 0, 0, 0]); // serial
        v.extend_from_slice(&[0, 0, 0, 0]); // sequence
        v.extend_from_slice(&[0, 0, 0, 0]); // CRC
        v.push(1); // one segment
        v.push(u8::try_from(packet.len()).unwrap());
        assert_eq!(v.len(), 28);
        v.extend_from_slice(packet);
        padded(v, 200)
    }

    fn opus(channels: u8) -> Vec<u8> {
        let mut p = b"OpusHead\x01".to_vec();
        p.push(channels);
        p.extend_from_slice(&[0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        ogg(&p)
    }

    fn vorbis() -> Vec<u8> {
        ogg(b"\x01vorbis\x00\x00\x00\x00\x02\x44\xac\x00\x00")
    }

    fn pdf() -> Vec<u8> {
        padded(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n".to_vec(), 300)
    }

    /// OLE compound file with a directory entry for `stream` at offset 512.
    fn cfb(stream: Option<&str>) -> Vec<u8> {
        let mut v = CFB_SIGNATURE.to_vec();
        v.resize(512, 0);
        let mut entry = vec![0u8; 128];
        for (i, b) in "Root Entry"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .enumerate()
        {
            entry[i] = b;
        }
        entry[64] = 22;
        v.extend_from_slice(&entry);
        if let Some(name) = stream {
            let mut entry = vec![0u8; 128];
            let bytes: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
            entry[..bytes.len()].copy_from_slice(&bytes);
            entry[64..66].copy_from_slice(&(u16::try_from(bytes.len()).unwrap() + 2).to_le_bytes());
            v.extend_from_slice(&entry);
        }
        padded(v, 1024)
    }

    /// ZIP with stored, empty entries named `names` (and data for "mimetype").
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, data) in entries {
            v.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00");
            v.extend_from_slice(&[0u8; 8]); // time, date, crc
            let len = u32::try_from(data.len()).unwrap().to_le_bytes();
            v.extend_from_slice(&len);
            v.extend_from_slice(&len);
            v.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(name.as_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    fn ooxml(main_part: &str) -> Vec<u8> {
        zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            (main_part, b"<x/>"),
        ])
    }

    fn len(v: &[u8]) -> u64 {
        v.len() as u64
    }

    /// Resolve a complete small file.
    fn res(
        declared: Option<&str>,
        name: Option<&str>,
        bytes: &[u8],
    ) -> Result<MediaType, MediaError> {
        resolve(declared, name, bytes, len(bytes))
    }

    fn ok(declared: Option<&str>, name: Option<&str>, bytes: &[u8]) -> (String, Kind) {
        let m = res(declared, name, bytes).unwrap_or_else(|e| panic!("expected Ok, got {e:?}"));
        (m.content_type, m.kind)
    }

    fn ct(declared: Option<&str>, name: Option<&str>, bytes: &[u8]) -> String {
        ok(declared, name, bytes).0
    }

    fn err(declared: Option<&str>, name: Option<&str>, bytes: &[u8]) -> MediaError {
        res(declared, name, bytes).expect_err("expected an error")
    }

    fn assert_mismatch(e: MediaError, declared: &str, detected: &str) {
        let MediaError::Mismatch {
            declared: d,
            detected: b,
            ..
        } = &e
        else {
            panic!("expected a mismatch, got {e:?}");
        };
        assert_eq!((d.as_str(), b.as_str()), (declared, detected));
        assert_eq!(e.status(), 422);
        assert_eq!(e.code(), "content_type_mismatch");
    }

    fn assert_invalid(e: &MediaError, content_type: &str, reason_part: &str) {
        match e {
            MediaError::Invalid {
                content_type: c,
                reason,
            } => {
                assert_eq!(c, content_type);
                assert!(
                    reason.contains(reason_part),
                    "reason {reason:?} lacks {reason_part:?}"
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(e.status(), 422);
        assert_eq!(e.code(), "invalid_media");
    }

    fn assert_unsupported(e: &MediaError, content_type: &str) {
        assert_eq!(
            *e,
            MediaError::Unsupported {
                content_type: content_type.into()
            }
        );
        assert_eq!(e.status(), 415);
        assert_eq!(e.code(), "unsupported_media_type");
    }

    // ----- kinds and errors ---------------------------------------------------

    #[test]
    fn kind_names_and_limits() {
        let expect = [
            (Kind::Image, "image", 5_000_000),
            (Kind::Video, "video", 16_000_000),
            (Kind::Audio, "audio", 16_000_000),
            (Kind::Document, "document", 100_000_000),
            (Kind::Sticker, "sticker", 500_000),
        ];
        for (kind, name, limit) in expect {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.max_size(), limit);
            assert!(limit <= MAX_UPLOAD_SIZE);
        }
    }

    #[test]
    fn error_statuses_codes_and_messages() {
        let e = MediaError::Unsupported {
            content_type: "image/gif".into(),
        };
        assert_eq!((e.status(), e.code()), (415, "unsupported_media_type"));
        let msg = e.to_string();
        assert!(
            msg.contains("image/gif") && msg.contains("image/jpeg"),
            "{msg}"
        );

        let e = MediaError::Unrecognized;
        assert_eq!((e.status(), e.code()), (415, "unrecognized_media"));

        let e = MediaError::Mismatch {
            declared: "image/jpeg".into(),
            detected: "image/png".into(),
            fix: None,
        };
        assert_eq!(
            e.to_string(),
            "declared image/jpeg but the bytes are image/png"
        );

        let e = MediaError::TooLarge {
            kind: Kind::Image,
            size: 5_000_001,
            limit: 5_000_000,
        };
        assert_eq!((e.status(), e.code()), (413, "too_large"));
        let msg = e.to_string();
        assert!(
            msg.contains("image") && msg.contains("5000001") && msg.contains("5000000"),
            "{msg}"
        );

        let e = MediaError::Invalid {
            content_type: "image/png".into(),
            reason: "empty file".into(),
        };
        assert_eq!((e.status(), e.code()), (422, "invalid_media"));
        assert!(e.to_string().contains("empty file"));
    }

    #[test]
    fn kind_of_every_exact_type() {
        let expect = [
            ("image/jpeg", Kind::Image),
            ("image/png", Kind::Image),
            ("image/webp", Kind::Sticker),
            ("video/mp4", Kind::Video),
            ("video/3gpp", Kind::Video),
            ("audio/aac", Kind::Audio),
            ("audio/amr", Kind::Audio),
            ("audio/mpeg", Kind::Audio),
            ("audio/mp4", Kind::Audio),
            ("audio/ogg; codecs=opus", Kind::Audio),
            ("text/plain", Kind::Document),
            ("application/pdf", Kind::Document),
            ("application/msword", Kind::Document),
            ("application/vnd.ms-excel", Kind::Document),
            ("application/vnd.ms-powerpoint", Kind::Document),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                Kind::Document,
            ),
            (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                Kind::Document,
            ),
            (
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                Kind::Document,
            ),
        ];
        assert_eq!(expect.len(), Mt::ALL.len());
        for (t, k) in expect {
            assert_eq!(kind_of(t), Some(k), "{t}");
        }
        for t in [
            "audio/opus",
            "audio/ogg",
            "image/jpg",
            "image/gif",
            "video/webm",
            "",
            "IMAGE/JPEG",
        ] {
            assert_eq!(kind_of(t), None, "{t}");
        }
    }

    #[test]
    fn canonical_extensions_name_each_stored_type() {
        let ext = |t| canonical_extension(t);
        assert_eq!(ext("image/jpeg"), Some("jpg"));
        assert_eq!(ext("video/3gpp"), Some("3gp"));
        assert_eq!(ext("audio/mp4"), Some("m4a"));
        assert_eq!(ext(OGG_OPUS), Some("ogg"));
        assert_eq!(ext("audio/mpeg"), Some("mp3"));
        assert_eq!(
            ext("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            Some("docx")
        );
        // Not a stored type: an alias, or something WhatsApp refuses.
        assert_eq!(ext("audio/ogg"), None);
        assert_eq!(ext("image/gif"), None);
        // Every stored type has one, and no two share one.
        let all: std::collections::HashSet<_> = Mt::ALL.iter().map(|m| m.extension()).collect();
        assert_eq!(all.len(), Mt::ALL.len());
    }

    #[test]
    fn video_3gp_is_metas_spelling_of_3gpp() {
        assert_eq!(
            normalize_declared(Some("video/3gp")).unwrap(),
            Some(Mt::ThreeGpp)
        );
        assert_eq!(declared_limit(Some("Video/3GP")).unwrap(), Some(16_000_000));
    }

    #[test]
    fn declared_limit_for_each_type() {
        let expect = [
            ("image/jpeg", 5_000_000),
            ("image/jpg", 5_000_000),
            ("image/pjpeg", 5_000_000),
            ("image/png", 5_000_000),
            ("image/webp", 500_000),
            ("video/mp4", 16_000_000),
            ("video/3gpp", 16_000_000),
            ("audio/aac", 16_000_000),
            ("audio/amr", 16_000_000),
            ("audio/mpeg", 16_000_000),
            ("audio/mp3", 16_000_000),
            ("audio/mp4", 16_000_000),
            ("audio/x-m4a", 16_000_000),
            ("audio/m4a", 16_000_000),
            ("audio/ogg", 16_000_000),
            ("audio/ogg; codecs=opus", 16_000_000),
            ("audio/opus", 16_000_000),
            ("text/plain; charset=utf-8", 100_000_000),
            ("application/pdf", 100_000_000),
            ("application/msword", 100_000_000),
            ("application/vnd.ms-excel", 100_000_000),
            ("application/vnd.ms-powerpoint", 100_000_000),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                100_000_000,
            ),
            (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                100_000_000,
            ),
            (
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                100_000_000,
            ),
            ("  Image/PNG ; foo=bar", 5_000_000),
        ];
        for (t, limit) in expect {
            assert_eq!(declared_limit(Some(t)), Ok(Some(limit)), "{t}");
        }
        assert_eq!(declared_limit(None), Ok(None));
        assert_eq!(declared_limit(Some("")), Ok(None));
        assert_eq!(declared_limit(Some("   ")), Ok(None));
        assert_eq!(declared_limit(Some("application/octet-stream")), Ok(None));
        assert_unsupported(&declared_limit(Some("image/gif")).unwrap_err(), "image/gif");
        assert_unsupported(
            &declared_limit(Some("Video/QuickTime")).unwrap_err(),
            "video/quicktime",
        );
    }

    // ----- images -------------------------------------------------------------

    #[test]
    fn jpeg_detected_and_aliases_normalised() {
        let j = jpeg();
        assert_eq!(ok(None, None, &j), ("image/jpeg".into(), Kind::Image));
        for d in [
            "image/jpeg",
            "image/jpg",
            "image/pjpeg",
            " IMAGE/JPEG ; q=1",
        ] {
            assert_eq!(ct(Some(d), Some("x.jpg"), &j), "image/jpeg", "{d}");
        }
    }

    #[test]
    fn png_8bit_rgb_and_rgba_accepted() {
        assert_eq!(
            ok(None, None, &png(8, 2)),
            ("image/png".into(), Kind::Image)
        );
        assert_eq!(ct(Some("image/png"), None, &png(8, 6)), "image/png");
    }

    #[test]
    fn png_16bit_palette_and_grey_rejected() {
        let e = err(None, None, &png(16, 2));
        assert_invalid(&e, "image/png", "16-bit RGB");
        let e = err(Some("image/png"), None, &png(16, 0));
        assert_invalid(&e, "image/png", "16-bit greyscale");
        assert!(e.to_string().contains("8-bit RGB or RGBA"));
        let e = err(Some("image/png"), None, &png(8, 3));
        assert_invalid(&e, "image/png", "palette");
        assert_invalid(
            &err(None, None, &png(8, 4)),
            "image/png",
            "greyscale with alpha",
        );
        assert_invalid(&err(None, None, PNG_SIGNATURE), "image/png", "IHDR");
    }

    #[test]
    fn image_mismatches() {
        assert_mismatch(
            err(Some("image/jpeg"), None, &png(8, 2)),
            "image/jpeg",
            "image/png",
        );
        assert_mismatch(
            err(Some("image/png"), None, &jpeg()),
            "image/png",
            "image/jpeg",
        );
        let webp = webp_vp8x(512, 512, false, false);
        assert_mismatch(
            err(Some("image/jpeg"), None, &webp),
            "image/jpeg",
            "image/webp",
        );
        assert_mismatch(
            err(Some("image/webp"), None, &jpeg()),
            "image/webp",
            "image/jpeg",
        );
        // A bad PNG declared as JPEG is first of all a mismatch.
        assert_mismatch(
            err(Some("image/jpeg"), None, &png(16, 2)),
            "image/jpeg",
            "image/png",
        );
    }

    // ----- stickers -----------------------------------------------------------

    #[test]
    fn webp_512_static_accepted_in_all_bitstreams() {
        for w in [
            webp_vp8x(512, 512, false, false),
            webp_vp8l(512, 512),
            webp_vp8(512, 512),
        ] {
            assert_eq!(ok(None, None, &w), ("image/webp".into(), Kind::Sticker));
            assert_eq!(ct(Some("image/webp"), None, &w), "image/webp");
            assert_eq!(sniff(&w, false), Sniffed::Sticker { animated: false });
        }
    }

    #[test]
    fn webp_animated_detected_by_flag_or_anim_chunk() {
        let flag = webp_vp8x(512, 512, true, false);
        let chunk = webp_vp8x(512, 512, false, true);
        for w in [&flag, &chunk] {
            assert_eq!(sniff(w, false), Sniffed::Sticker { animated: true });
            assert_eq!(ct(None, None, w), "image/webp");
        }
    }

    #[test]
    fn webp_not_512_rejected() {
        for w in [
            webp_vp8x(256, 256, false, false),
            webp_vp8x(256, 256, true, false),
            webp_vp8l(256, 256),
            webp_vp8(256, 256),
            webp_vp8l(512, 256),
        ] {
            let e = err(None, None, &w);
            assert_invalid(&e, "image/webp", "512x512");
        }
        let e = err(Some("image/webp"), None, &webp_vp8(256, 256));
        assert_invalid(&e, "image/webp", "this WebP is 256x256");
        assert_invalid(
            &err(None, None, b"RIFF\x10\x00\x00\x00WEBPVP8 "),
            "image/webp",
            "truncated",
        );
    }

    #[test]
    fn sticker_size_limits_static_vs_animated() {
        let stat = webp_vp8l(512, 512);
        let anim = webp_vp8x(512, 512, true, true);
        assert_eq!(
            resolve(None, None, &stat, 100_000).unwrap().kind,
            Kind::Sticker
        );
        assert_eq!(
            resolve(None, None, &stat, 100_001),
            Err(MediaError::TooLarge {
                kind: Kind::Sticker,
                size: 100_001,
                limit: 100_000
            })
        );
        assert_eq!(
            resolve(None, None, &anim, 500_000).unwrap().kind,
            Kind::Sticker
        );
        let e = resolve(Some("image/webp"), None, &anim, 500_001).unwrap_err();
        assert_eq!(
            e,
            MediaError::TooLarge {
                kind: Kind::Sticker,
                size: 500_001,
                limit: 500_000
            }
        );
        assert_eq!(e.status(), 413);
    }

    // ----- video / ISO BMFF -----------------------------------------------------

    #[test]
    fn ftyp_brands_when_undeclared() {
        assert_eq!(
            ok(None, None, &ftyp(b"isom")),
            ("video/mp4".into(), Kind::Video)
        );
        assert_eq!(ct(None, None, &ftyp(b"mp42")), "video/mp4");
        assert_eq!(
            ok(None, None, &ftyp(b"3gp4")),
            ("video/3gpp".into(), Kind::Video)
        );
        assert_unsupported(&err(None, None, &ftyp(b"3g2a")), "video/3gpp2");
        assert_unsupported(&err(None, None, &ftyp(b"qt  ")), "video/quicktime");
        assert_eq!(
            ok(None, None, &ftyp(b"M4A ")),
            ("audio/mp4".into(), Kind::Audio)
        );
        assert_eq!(ct(None, None, &ftyp(b"M4B ")), "audio/mp4");
    }

    #[test]
    fn ftyp_family_accepts_declared() {
        assert_eq!(
            ok(Some("audio/mp4"), None, &ftyp(b"isom")),
            ("audio/mp4".into(), Kind::Audio)
        );
        assert_eq!(ct(Some("audio/x-m4a"), None, &ftyp(b"mp42")), "audio/mp4");
        assert_eq!(ct(Some("video/mp4"), None, &ftyp(b"M4A ")), "video/mp4");
        assert_eq!(ct(Some("video/3gpp"), None, &ftyp(b"isom")), "video/3gpp");
        assert_eq!(
            ct(Some("video/mp4"), Some("clip.3gp"), &ftyp(b"3gp5")),
            "video/mp4"
        );
    }

    #[test]
    fn ftyp_extension_wins_within_family_when_undeclared() {
        assert_eq!(ct(None, Some("voice.M4A"), &ftyp(b"isom")), "audio/mp4");
        assert_eq!(ct(None, Some("clip.mp4"), &ftyp(b"M4A ")), "video/mp4");
        assert_eq!(ct(None, Some("dir/clip.3gp"), &ftyp(b"mp42")), "video/3gpp");
        // An extension outside the family is ignored.
        assert_eq!(ct(None, Some("photo.jpg"), &ftyp(b"isom")), "video/mp4");
        assert_eq!(
            ct(
                Some("application/octet-stream"),
                Some("a.m4a"),
                &ftyp(b"isom")
            ),
            "audio/mp4"
        );
    }

    #[test]
    fn ftyp_mismatch_and_heif() {
        assert_mismatch(
            err(Some("image/jpeg"), None, &ftyp(b"isom")),
            "image/jpeg",
            "video/mp4",
        );
        assert_mismatch(
            err(Some("audio/mpeg"), None, &ftyp(b"M4A ")),
            "audio/mpeg",
            "audio/mp4",
        );
        assert_mismatch(
            err(Some("video/mp4"), None, &mp3_frame()),
            "video/mp4",
            "audio/mpeg",
        );
        assert_unsupported(&err(None, None, &ftyp(b"heic")), "image/heic");
        assert_mismatch(
            err(Some("image/jpeg"), None, &ftyp(b"heic")),
            "image/jpeg",
            "image/heic",
        );
        assert_mismatch(
            err(Some("video/mp4"), None, &ftyp(b"avif")),
            "video/mp4",
            "image/avif",
        );
    }

    // ----- audio --------------------------------------------------------------

    #[test]
    fn aac_amr_mp3_detected() {
        assert_eq!(ok(None, None, &adts()), ("audio/aac".into(), Kind::Audio));
        assert_eq!(ct(None, None, &padded(b"ADIF".to_vec(), 100)), "audio/aac");
        assert_eq!(
            ok(None, None, &padded(b"#!AMR\n".to_vec(), 100)),
            ("audio/amr".into(), Kind::Audio)
        );
        // Wideband AMR is not WhatsApp's (narrowband) audio/amr.
        let wb = padded(b"#!AMR-WB\n".to_vec(), 100);
        assert_mismatch(
            err(Some("audio/amr"), None, &wb),
            "audio/amr",
            "audio/amr-wb",
        );
        assert_unsupported(&err(None, None, &wb), "audio/amr-wb");
        assert_eq!(
            ok(None, None, &mp3_frame()),
            ("audio/mpeg".into(), Kind::Audio)
        );
        assert_eq!(ct(Some("audio/mp3"), None, &mp3_frame()), "audio/mpeg");
        assert_eq!(ct(None, None, &id3(&mp3_frame())), "audio/mpeg");
        // Tag longer than the head: still MP3.
        assert_eq!(
            ct(
                None,
                None,
                &padded(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec(), 50)
            ),
            "audio/mpeg"
        );
    }

    #[test]
    fn mp3_and_adts_are_told_apart() {
        assert_eq!(sniff_audio_frame(b"\xff\xf1\x50"), Some(Mt::Aac));
        assert_eq!(sniff_audio_frame(b"\xff\xf9\x50"), Some(Mt::Aac));
        assert_eq!(sniff_audio_frame(b"\xff\xfb\x90"), Some(Mt::Mpeg));
        assert_eq!(sniff_audio_frame(b"\xff\xf3\x90"), Some(Mt::Mpeg));
        assert_eq!(sniff_audio_frame(b"\xff\xe3\x90"), Some(Mt::Mpeg));
        assert_eq!(sniff_audio_frame(b"\xff\xd8\xff"), None);
        assert_mismatch(
            err(Some("audio/mpeg"), None, &adts()),
            "audio/mpeg",
            "audio/aac",
        );
        assert_mismatch(
            err(Some("audio/aac"), None, &mp3_frame()),
            "audio/aac",
            "audio/mpeg",
        );
        // ID3 tag in front of ADTS: AAC.
        assert_eq!(ct(None, None, &id3(&adts())), "audio/aac");
        assert_mismatch(
            err(Some("audio/mpeg"), None, &id3(&adts())),
            "audio/mpeg",
            "audio/aac",
        );
    }

    #[test]
    fn opus_mono_stored_as_ogg_codecs_opus() {
        let o = opus(1);
        assert_eq!(
            ok(None, None, &o),
            ("audio/ogg; codecs=opus".into(), Kind::Audio)
        );
        for d in [
            "audio/ogg",
            "audio/ogg; codecs=opus",
            "audio/opus",
            "Audio/OGG ; codecs=\"opus\"",
            "AUDIO/OPUS",
        ] {
            assert_eq!(ct(Some(d), Some("v.opus"), &o), OGG_OPUS, "{d}");
        }
    }

    #[test]
    fn opus_stereo_and_vorbis_rejected() {
        let e = err(None, None, &opus(2));
        assert_invalid(&e, OGG_OPUS, "mono Opus only");
        let e = err(Some("audio/opus"), None, &opus(2));
        assert_invalid(&e, OGG_OPUS, "2 channels");
        let e = err(None, None, &vorbis());
        assert_invalid(&e, "audio/ogg", "only Opus");
        assert!(e.to_string().contains("Vorbis"));
        assert_invalid(
            &err(Some("audio/ogg"), None, &vorbis()),
            "audio/ogg",
            "Vorbis",
        );
        assert_mismatch(
            err(Some("audio/mpeg"), None, &vorbis()),
            "audio/mpeg",
            "audio/ogg",
        );
        assert_mismatch(
            err(Some("audio/aac"), None, &opus(1)),
            "audio/aac",
            OGG_OPUS,
        );
    }

    #[test]
    fn other_audio_named() {
        let wav = riff(b"WAVE", &chunk(b"fmt ", &[0u8; 16]));
        assert_unsupported(&err(None, None, &wav), "audio/wav");
        assert_mismatch(
            err(Some("audio/mpeg"), None, &wav),
            "audio/mpeg",
            "audio/wav",
        );
        assert_unsupported(
            &err(None, None, &padded(b"fLaC".to_vec(), 50)),
            "audio/flac",
        );
        assert_unsupported(&err(Some("audio/wav"), None, &wav), "audio/wav");
    }

    // ----- documents ------------------------------------------------------------

    #[test]
    fn pdf_detected() {
        assert_eq!(
            ok(None, None, &pdf()),
            ("application/pdf".into(), Kind::Document)
        );
        assert_eq!(
            ct(Some("application/pdf"), Some("a.pdf"), &pdf()),
            "application/pdf"
        );
        // Binary junk before the header (within 1 KB).
        let mut junk = vec![0u8; 500];
        junk.extend(pdf());
        assert_eq!(ct(None, None, &junk), "application/pdf");
        // Header past 1 KB is not a PDF.
        let mut far = vec![0u8; 1100];
        far.extend(pdf());
        assert_eq!(err(None, None, &far), MediaError::Unrecognized);
    }

    #[test]
    fn text_mentioning_pdf_header_is_either() {
        let t = b"notes: a PDF starts with %PDF-1.7 and then...\n".to_vec();
        assert_eq!(ct(None, None, &t), "application/pdf");
        assert_eq!(ct(None, Some("notes.txt"), &t), "text/plain");
        assert_eq!(ct(Some("text/plain"), None, &t), "text/plain");
        assert_eq!(ct(Some("application/pdf"), None, &t), "application/pdf");
        assert_mismatch(
            err(Some("image/png"), None, &t),
            "image/png",
            "application/pdf",
        );
    }

    #[test]
    fn pdf_text_mismatches() {
        let text = b"hello, world\n".repeat(10);
        assert_mismatch(
            err(Some("application/pdf"), None, &text),
            "application/pdf",
            "text/plain",
        );
        assert_mismatch(
            err(Some("text/plain"), None, &pdf()),
            "text/plain",
            "application/pdf",
        );
        assert_mismatch(
            err(Some("text/plain"), None, &png(8, 2)),
            "text/plain",
            "image/png",
        );
        let binary = padded(vec![0x00, 0x01, 0x02, 0x03], 100);
        assert_mismatch(
            err(Some("text/plain"), None, &binary),
            "text/plain",
            "application/octet-stream",
        );
    }

    #[test]
    fn plain_text_rules() {
        let t = "Grüße, мир! 👋\n".repeat(5);
        assert_eq!(
            ok(None, None, t.as_bytes()),
            ("text/plain".into(), Kind::Document)
        );
        assert_eq!(
            ct(
                Some("text/plain; charset=utf-8"),
                Some("a.txt"),
                t.as_bytes()
            ),
            "text/plain"
        );
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(b"with BOM\n");
        assert_eq!(ct(None, None, &bom), "text/plain");
        // Meta sets no encoding rule: Latin-1 is text too.
        assert_eq!(ct(None, None, b"caf\xe9 au lait\n"), "text/plain");
        // A NUL byte means binary.
        assert_eq!(err(None, None, b"abc\0def"), MediaError::Unrecognized);
        // UTF-16 is named.
        assert_invalid(&err(None, None, b"\xff\xfeh\0i\0"), "text/plain", "UTF-8");
    }

    const REAL_MP4: &[u8] = include_bytes!("../../tests/fixtures/h264_aac.mp4");
    const REAL_M4A: &[u8] = include_bytes!("../../tests/fixtures/aac.m4a");
    const REAL_JPEG: &[u8] = include_bytes!("../../tests/fixtures/tiny.jpg");

    #[test]
    fn inspection_reads_tracks_and_frames() {
        let m = inspect(Some("video/mp4"), Some("clip.mp4"), REAL_MP4).unwrap();
        assert_eq!(m.content_type, "video/mp4");
        assert_eq!(m.codecs.as_deref(), Some("H.264 video, AAC-LC audio"));
        let m = inspect(None, None, REAL_M4A).unwrap();
        assert_eq!(
            (m.content_type.as_str(), m.kind),
            ("audio/mp4", Kind::Audio)
        );
        let m = inspect(None, Some("photo.jpg"), REAL_JPEG).unwrap();
        assert_eq!(m.codecs.as_deref(), Some("8-bit YCbCr baseline JPEG"));
        // The head alone cannot tell: provisional decisions carry no codecs.
        assert_eq!(
            resolve(None, None, REAL_MP4, len(REAL_MP4)).unwrap().codecs,
            None
        );
    }

    #[test]
    fn audio_only_bmff_is_m4a_unless_something_says_video() {
        // The M4A's boxes under an `isom` brand: nothing says which family member it is.
        let mut isom = REAL_M4A.to_vec();
        isom[8..12].copy_from_slice(b"isom");
        assert_eq!(
            inspect(None, None, &isom).unwrap().content_type,
            "audio/mp4"
        );
        let e = inspect(Some("video/mp4"), None, &isom).unwrap_err();
        assert_invalid(&e, "video/mp4", "no video track, only audio (AAC-LC audio)");
        assert!(e.fix().unwrap().ends_with("out.m4a"));
        let e = inspect(None, Some("a.mp4"), &isom).unwrap_err();
        assert_invalid(&e, "video/mp4", "no video track");
    }

    #[test]
    fn broken_structures_are_refused_with_what_is_wrong() {
        let cut = &REAL_MP4[..REAL_MP4.len() - 10];
        let e = inspect(None, None, cut).unwrap_err();
        assert_invalid(&e, "video/mp4", "the file is truncated: box 'mdat'");
        assert_eq!(e.fix(), None);
        // ftyp alone (what the old fixtures were): no track descriptions.
        let mut bare = 24u32.to_be_bytes().to_vec();
        bare.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
        let e = inspect(None, None, &bare).unwrap_err();
        assert_invalid(&e, "video/mp4", "no 'moov' box");
        // A JPEG whose segments run into garbage.
        let mut bad = REAL_JPEG[..20].to_vec();
        bad.extend_from_slice(&[0x12; 40]);
        assert_invalid(
            &inspect(None, None, &bad).unwrap_err(),
            "image/jpeg",
            "malformed JPEG",
        );
        // A QuickTime movie from before `ftyp`: named, not unrecognised.
        let mut qt = 16u32.to_be_bytes().to_vec();
        qt.extend_from_slice(b"moov");
        qt.extend_from_slice(&[0; 8]);
        assert_unsupported(&inspect(None, None, &qt).unwrap_err(), "video/quicktime");
    }

    #[test]
    fn chunking_never_changes_the_answer() {
        for bytes in [
            REAL_MP4,
            REAL_M4A,
            REAL_JPEG,
            &b"plain text"[..],
            &b"\xff\xd8"[..],
        ] {
            for split in [1, 2, 3, 7, 11, 12, 13, 4096] {
                let mut i = Inspector::new();
                for c in bytes.chunks(split) {
                    i.update(c);
                }
                assert_eq!(
                    i.finish(None, None),
                    inspect(None, None, bytes),
                    "split {split}"
                );
            }
        }
    }

    #[test]
    fn fixes_for_each_refusal() {
        let fix = |e: MediaError| e.fix();
        let unsupported = |t: &str| {
            fix(MediaError::Unsupported {
                content_type: t.to_owned(),
            })
        };
        assert!(
            unsupported("video/quicktime")
                .unwrap()
                .starts_with("ffmpeg -i in.mov ")
        );
        assert_eq!(
            unsupported("audio/wav").as_deref(),
            Some("ffmpeg -i in.wav -map 0:a:0 -vn -c:a aac -b:a 128k out.m4a")
        );
        assert_eq!(
            unsupported("image/gif").as_deref(),
            Some("ffmpeg -i in.gif -frames:v 1 -pix_fmt rgba out.png")
        );
        assert!(
            unsupported("image/heic")
                .unwrap()
                .starts_with("heif-convert")
        );
        assert!(
            unsupported("application/vnd.oasis.opendocument.text")
                .unwrap()
                .starts_with("libreoffice")
        );
        assert_eq!(unsupported("application/zip"), None);
        assert_eq!(fix(MediaError::Unrecognized), None);
        assert_eq!(
            fix(MediaError::Mismatch {
                declared: "image/jpeg".into(),
                detected: "image/png".into(),
                fix: None,
            })
            .as_deref(),
            Some("send it as image/png (or with no Content-Type: the bytes decide)")
        );
        let too_large = |kind| {
            fix(MediaError::TooLarge {
                kind,
                size: 1,
                limit: kind.max_size(),
            })
            .unwrap()
        };
        assert!(
            !too_large(Kind::Video).contains("-fs"),
            "-fs cuts the clip silently"
        );
        assert!(too_large(Kind::Image).starts_with("ffmpeg -i in.jpg"));
        let invalid = |t: &str, reason: &str| {
            fix(MediaError::Invalid {
                content_type: t.into(),
                reason: reason.into(),
            })
        };
        assert_eq!(
            invalid("audio/ogg; codecs=opus", "stereo").as_deref(),
            Some("ffmpeg -i in.ogg -map 0:a:0 -vn -c:a libopus -ac 1 -b:a 32k out.ogg")
        );
        assert_eq!(
            invalid("image/png", "palette").as_deref(),
            Some("ffmpeg -i in.png -pix_fmt rgba out.png")
        );
        assert_eq!(invalid("application/pdf", "empty file"), None);
        assert_eq!(invalid("video/mp4", "the file is truncated: …"), None);
    }

    #[test]
    fn text_is_judged_on_every_byte() {
        let mut long = b"a".repeat(SNIFF_LEN + 10);
        assert_eq!(
            inspect(None, None, &long).unwrap().content_type,
            "text/plain"
        );
        // A NUL past the head makes it binary: only the whole-content inspection sees it.
        long[SNIFF_LEN + 5] = 0;
        assert_eq!(
            resolve(None, None, &long[..SNIFF_LEN], len(&long))
                .unwrap()
                .content_type,
            "text/plain"
        );
        assert_eq!(inspect(None, None, &long), Err(MediaError::Unrecognized));
        // A character cut at the end of the head is no concern: no encoding is required.
        let mut cut = b"a".repeat(SNIFF_LEN - 1);
        cut.push(0xf0);
        assert_eq!(
            inspect(None, None, &cut).unwrap().content_type,
            "text/plain"
        );
    }

    #[test]
    fn cfb_family() {
        let doc = "application/msword";
        let xls = "application/vnd.ms-excel";
        let ppt = "application/vnd.ms-powerpoint";
        let bare = cfb(None);
        // Declared member of the family: accepted (even over a different stream guess).
        assert_eq!(ok(Some(xls), None, &bare), (xls.into(), Kind::Document));
        assert_eq!(ct(Some(ppt), Some("a.doc"), &bare), ppt);
        assert_eq!(ct(Some(doc), None, &cfb(Some("Workbook"))), doc);
        // Extension.
        assert_eq!(ct(None, Some("a.doc"), &bare), doc);
        assert_eq!(ct(None, Some("a.XLS"), &cfb(Some("WordDocument"))), xls);
        assert_eq!(ct(None, Some("a.ppt"), &bare), ppt);
        // Stream names.
        assert_eq!(ct(None, None, &cfb(Some("WordDocument"))), doc);
        assert_eq!(ct(None, None, &cfb(Some("Workbook"))), xls);
        assert_eq!(ct(None, None, &cfb(Some("Book"))), xls);
        assert_eq!(ct(None, None, &cfb(Some("PowerPoint Document"))), ppt);
        assert_eq!(
            ct(None, Some("a.txt"), &cfb(Some("PowerPoint Document"))),
            ppt
        );
        // Nothing to go on.
        assert_eq!(err(None, None, &bare), MediaError::Unrecognized);
        assert_eq!(
            err(None, None, &cfb(Some("Bookmarks"))),
            MediaError::Unrecognized
        );
        // Declared outside the family.
        assert_mismatch(
            err(Some("application/pdf"), None, &bare),
            "application/pdf",
            OLE_STORAGE,
        );
        assert_mismatch(
            err(Some("application/pdf"), None, &cfb(Some("WordDocument"))),
            "application/pdf",
            doc,
        );
        assert_mismatch(
            err(
                Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                None,
                &bare,
            ),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            OLE_STORAGE,
        );
    }

    #[test]
    fn ooxml_family() {
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        let pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
        let w = ooxml("word/document.xml");
        let x = ooxml("xl/workbook.xml");
        let p = ooxml("ppt/presentation.xml");
        assert_eq!(ok(None, None, &w), (docx.into(), Kind::Document));
        assert_eq!(ct(None, None, &x), xlsx);
        assert_eq!(ct(None, None, &p), pptx);
        // The bytes win over the extension.
        assert_eq!(ct(None, Some("a.xlsx"), &w), docx);
        assert_eq!(ct(Some(xlsx), None, &x), xlsx);
        // Declared OOXML but the head shows another one.
        assert_mismatch(err(Some(docx), None, &x), docx, xlsx);
        assert_mismatch(err(Some(pptx), Some("a.pptx"), &w), pptx, docx);
        // Head shows none: declared or extension.
        let unknown = ooxml("docProps/app.xml");
        assert_eq!(ct(Some(xlsx), None, &unknown), xlsx);
        assert_eq!(ct(None, Some("deck.PPTX"), &unknown), pptx);
        // A plain zip is not accepted.
        let plain = zip(&[("photos/a.jpg", b"xx")]);
        assert_unsupported(&err(None, None, &plain), "application/zip");
        assert_unsupported(&err(None, Some("a.zip"), &plain), "application/zip");
        assert_mismatch(
            err(Some("application/pdf"), None, &plain),
            "application/pdf",
            "application/zip",
        );
        assert_mismatch(
            err(Some("application/msword"), None, &w),
            "application/msword",
            docx,
        );
        assert_unsupported(
            &err(Some("application/zip"), None, &plain),
            "application/zip",
        );
        // ODF is named.
        let odt = zip(&[("mimetype", b"application/vnd.oasis.opendocument.text")]);
        assert_unsupported(
            &err(None, None, &odt),
            "application/vnd.oasis.opendocument.text",
        );
    }

    // ----- other things named -----------------------------------------------

    #[test]
    fn other_types_are_named() {
        let gif = padded(b"GIF89a\x01\x00\x01\x00".to_vec(), 50);
        assert_unsupported(&err(None, None, &gif), "image/gif");
        assert_unsupported(&err(Some("image/gif"), None, &gif), "image/gif");
        assert_mismatch(err(Some("image/png"), None, &gif), "image/png", "image/gif");
        let mut bmp = b"BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00".to_vec();
        bmp.extend_from_slice(&40u32.to_le_bytes());
        let bmp = padded(bmp, 100);
        assert_unsupported(&err(None, None, &bmp), "image/bmp");
        assert_eq!(ct(None, None, b"BMW is a car maker\n"), "text/plain");
        let webm = padded(
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm".to_vec(),
            100,
        );
        assert_unsupported(&err(None, None, &webm), "video/webm");
        assert_mismatch(
            err(Some("video/mp4"), None, &webm),
            "video/mp4",
            "video/webm",
        );
        let avi = riff(b"AVI ", &chunk(b"LIST", &[0u8; 8]));
        assert_unsupported(&err(None, None, &avi), "video/x-msvideo");
    }

    #[test]
    fn unsupported_declared_types() {
        for (d, norm) in [
            ("image/gif", "image/gif"),
            ("Video/QuickTime; x=1", "video/quicktime"),
            ("text/csv", "text/csv"),
            ("audio/wav", "audio/wav"),
            ("nonsense", "nonsense"),
        ] {
            let e = err(Some(d), None, &jpeg());
            assert_unsupported(&e, norm);
        }
    }

    #[test]
    fn octet_stream_and_blank_declarations_fall_back_to_bytes() {
        for d in [
            "application/octet-stream",
            "",
            "  ",
            "; charset=x",
            "APPLICATION/OCTET-STREAM",
        ] {
            assert_eq!(ct(Some(d), None, &png(8, 6)), "image/png", "{d:?}");
        }
        assert_eq!(
            err(Some("application/octet-stream"), None, &[1, 2, 3, 0]),
            MediaError::Unrecognized
        );
    }

    #[test]
    fn unrecognized_binary() {
        let e = err(None, Some("x.jpg"), &[0x00, 0x01, 0x02, 0xfe, 0x80]);
        assert_eq!(e, MediaError::Unrecognized);
        assert_eq!((e.status(), e.code()), (415, "unrecognized_media"));
        assert_mismatch(
            err(Some("video/mp4"), None, &[0x00, 0x01]),
            "video/mp4",
            "application/octet-stream",
        );
    }

    #[test]
    fn empty_file_is_invalid() {
        assert_invalid(
            &resolve(None, None, &[], 0).unwrap_err(),
            "application/octet-stream",
            "empty file",
        );
        assert_invalid(
            &resolve(Some("image/jpg"), Some("a.jpg"), &[], 0).unwrap_err(),
            "image/jpeg",
            "empty file",
        );
        // An unsupported declaration is reported first.
        assert_unsupported(
            &resolve(Some("image/gif"), None, &[], 0).unwrap_err(),
            "image/gif",
        );
    }

    #[test]
    fn too_large_for_each_kind_at_limit_plus_one() {
        let text = b"plain text\n".to_vec();
        let cases: [(Vec<u8>, Option<&str>, Kind, u64); 10] = [
            (jpeg(), None, Kind::Image, 5_000_000),
            (png(8, 2), None, Kind::Image, 5_000_000),
            (ftyp(b"isom"), None, Kind::Video, 16_000_000),
            (ftyp(b"3gp4"), None, Kind::Video, 16_000_000),
            (mp3_frame(), None, Kind::Audio, 16_000_000),
            (opus(1), None, Kind::Audio, 16_000_000),
            (pdf(), None, Kind::Document, 100_000_000),
            (text, None, Kind::Document, 100_000_000),
            (webp_vp8(512, 512), None, Kind::Sticker, 100_000),
            (
                webp_vp8x(512, 512, true, false),
                Some("image/webp"),
                Kind::Sticker,
                500_000,
            ),
        ];
        for (bytes, declared, kind, limit) in cases {
            let at = resolve(declared, None, &bytes, limit).expect("exactly the limit is fine");
            assert_eq!(at.kind, kind);
            let e = resolve(declared, None, &bytes, limit + 1).unwrap_err();
            assert_eq!(
                e,
                MediaError::TooLarge {
                    kind,
                    size: limit + 1,
                    limit
                }
            );
        }
        let e = resolve(None, None, &pdf(), MAX_UPLOAD_SIZE + 1).unwrap_err();
        assert_eq!(e.code(), "too_large");
    }

    #[test]
    fn head_longer_than_promised_is_tolerated() {
        // Head longer than size: only `size` bytes are considered.
        let mut t = b"hello".to_vec();
        t.extend_from_slice(&[0u8; 10]);
        assert_eq!(
            resolve(None, None, &t, 5).unwrap().content_type,
            "text/plain"
        );
    }

    // ----- property ---------------------------------------------------------

    fn magic_prefixes() -> Vec<Vec<u8>> {
        vec![
            vec![],
            jpeg()[..3].to_vec(),
            png(8, 2)[..26].to_vec(),
            png(8, 2)[..20].to_vec(),
            webp_vp8x(512, 512, true, true)[..40].to_vec(),
            webp_vp8l(512, 512)[..25].to_vec(),
            webp_vp8(512, 512)[..30].to_vec(),
            b"RIFF\0\0\0\0WEBPVP8X".to_vec(),
            ftyp(b"isom")[..12].to_vec(),
            ftyp(b"M4A ")[..12].to_vec(),
            opus(1)[..40].to_vec(),
            b"OggS".to_vec(),
            b"OggS\0\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\xff".to_vec(),
            b"ID3\x04\0\0".to_vec(),
            b"ID3\x04\0\x10\0\0\0\0".to_vec(),
            b"\xff\xf1".to_vec(),
            b"\xff\xfb".to_vec(),
            b"#!AMR\n".to_vec(),
            b"%PDF-".to_vec(),
            cfb(Some("Workbook")),
            CFB_SIGNATURE.to_vec(),
            ooxml("word/document.xml"),
            b"PK\x03\x04".to_vec(),
            b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\x08\0\0\0\x08\0\0\0\x08\0\0\0mimetype"
                .to_vec(),
            b"\x1a\x45\xdf\xa3".to_vec(),
            b"BM".to_vec(),
            b"hello world ".to_vec(),
            b"\xef\xbb\xbf".to_vec(),
        ]
    }

    fn declared_strategy() -> impl Strategy<Value = Option<String>> {
        let known: Vec<String> = [
            "image/jpeg",
            "image/png",
            "image/webp",
            "video/mp4",
            "video/3gpp",
            "audio/mp4",
            "audio/opus",
            "audio/ogg; codecs=opus",
            "audio/mpeg",
            "audio/aac",
            "audio/amr",
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/octet-stream",
            "image/gif",
            "",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        prop_oneof![
            Just(None),
            proptest::sample::select(known).prop_map(Some),
            ".{0,40}".prop_map(Some),
        ]
    }

    fn filename_strategy() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            proptest::sample::select(vec![
                "a.m4a", "b.mp4", "c.3gp", "d.doc", "e.xlsx", "f.pptx", "g.txt", "h.pdf", "noext",
                ".", "x."
            ])
            .prop_map(|s| Some(s.to_owned())),
            ".{0,20}".prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn resolve_never_panics_and_ok_is_consistent(
            declared in declared_strategy(),
            filename in filename_strategy(),
            prefix in proptest::sample::select(magic_prefixes()),
            tail in proptest::collection::vec(any::<u8>(), 0..600),
            extra in prop_oneof![Just(0u64), 0..1_000u64, 0..600_000u64, any::<u64>()],
            shorten in 0..2usize,
        ) {
            let mut head = prefix;
            head.extend(tail);
            // Sometimes pass a head longer than the size (a contract violation).
            let size = if shorten == 1 {
                extra % (head.len() as u64 + 1)
            } else {
                (head.len() as u64).saturating_add(extra)
            };
            let result = resolve(declared.as_deref(), filename.as_deref(), &head, size);
            let _ = declared_limit(declared.as_deref());
            if let Ok(m) = result {
                prop_assert_eq!(kind_of(&m.content_type), Some(m.kind));
                prop_assert!(size > 0);
                prop_assert!(size <= m.kind.max_size());
                prop_assert!(size <= MAX_UPLOAD_SIZE);
                if let Ok(Some(limit)) = declared_limit(declared.as_deref()) {
                    prop_assert!(size <= limit);
                }
            } else if let Err(e) = result {
                prop_assert!(matches!(e.status(), 413 | 415 | 422));
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
