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
pub mod jpeg;

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

/// Reads an upload as it streams by and decides, at the end, whether WhatsApp accepts it.
///
/// It keeps the first [`SNIFF_LEN`] bytes, notes whether a NUL byte occurs anywhere (the text
/// rule), and for containers whose decisive fields can be anywhere it follows their structure
/// as the bytes pass: the ISO-BMFF box walk keeps `moov` (the track descriptions, which may
/// follow `mdat`), the JPEG walk reads the frame header. Nothing else is held, so memory stays
/// bounded whatever the file's size (see [`bmff`] and [`jpeg`] for their bounds).
#[derive(Debug, Default, Clone)]
pub struct Inspector {
    head: Vec<u8>,
    size: u64,
    has_nul: bool,
    deep: Deep,
}

/// The structure walk chosen from the first bytes.
#[derive(Debug, Default, Clone)]
enum Deep {
    /// Fewer than [`DEEP_PICK_LEN`] bytes seen so far.
    #[default]
    Undecided,
    Bmff(bmff::Walker),
    Jpeg(jpeg::Walker),
    /// No structure to follow.
    Nothing,
}

/// What the structure walk found, for [`judge`].
enum Evidence {
    Bmff(Result<Vec<bmff::Track>, bmff::BoxError>),
    Jpeg(Result<jpeg::Frame, jpeg::JpegError>),
}

/// Bytes needed to choose a structure walk (`ftyp` sits at 4..8).
const DEEP_PICK_LEN: usize = 12;

impl Inspector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next bytes of the content.
    pub fn update(&mut self, chunk: &[u8]) {
        let take = (SNIFF_LEN - self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..take]);
        self.size += chunk.len() as u64;
        self.has_nul = self.has_nul || chunk.contains(&0);
        match &mut self.deep {
            Deep::Undecided => {
                if self.head.len() >= DEEP_PICK_LEN {
                    // Everything so far is in the head (it is larger than DEEP_PICK_LEN), and
                    // the rest of this chunk follows it.
                    self.pick();
                    self.feed_deep_head();
                    self.feed_deep(&chunk[take..]);
                }
            }
            _ => self.feed_deep(chunk),
        }
    }

    fn pick(&mut self) {
        let head = std::mem::take(&mut self.head);
        self.pick_for(&head);
        self.head = head;
    }

    /// Choose the structure walk for content that starts with `h`.
    fn pick_for(&mut self, h: &[u8]) {
        // The same order as `sniff`: a JPEG whose first segment length happens to spell `ftyp`
        // is still a JPEG, and must get its frame header read.
        self.deep = if h.starts_with(b"\xff\xd8\xff") {
            Deep::Jpeg(jpeg::Walker::new())
        } else if h.len() >= 8 && (&h[4..8] == b"ftyp" || quicktime_atom(h)) {
            Deep::Bmff(bmff::Walker::new())
        } else {
            Deep::Nothing
        };
    }

    fn feed_deep_head(&mut self) {
        let head = std::mem::take(&mut self.head);
        self.feed_deep(&head);
        self.head = head;
    }

    fn feed_deep(&mut self, bytes: &[u8]) {
        match &mut self.deep {
            Deep::Bmff(w) => w.feed(bytes),
            Deep::Jpeg(w) => w.feed(bytes),
            Deep::Undecided | Deep::Nothing => {}
        }
    }

    /// The first bytes seen (up to [`SNIFF_LEN`]).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// How many bytes have been seen.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The decision as far as the head tells, while more bytes may follow (so a size limit can
    /// be applied as the upload streams in). Not the final word: see [`Inspector::finish`].
    pub fn provisional(
        &self,
        declared: Option<&str>,
        filename: Option<&str>,
    ) -> Result<MediaType, MediaError> {
        judge(
            declared,
            filename,
            &self.head,
            self.size,
            self.has_nul,
            None,
        )
    }

    /// The final decision, with everything the structure walk found.
    pub fn finish(
        &self,
        declared: Option<&str>,
        filename: Option<&str>,
    ) -> Result<MediaType, MediaError> {
        self.decide(declared, filename, self.size)
    }

    /// [`Inspector::finish`] leaving size limits out: what the content is, whatever its size
    /// (for reports that judge the size apart).
    pub fn type_only(
        &self,
        declared: Option<&str>,
        filename: Option<&str>,
    ) -> Result<MediaType, MediaError> {
        self.decide(declared, filename, self.size.min(1))
    }

    fn decide(
        &self,
        declared: Option<&str>,
        filename: Option<&str>,
        size: u64,
    ) -> Result<MediaType, MediaError> {
        let evidence = match &self.deep {
            // Fewer bytes than it takes to choose a walk: the whole content is in the head.
            Deep::Undecided => {
                let mut short = Inspector::new();
                short.pick_for(&self.head);
                short.feed_deep(&self.head);
                short.deep.evidence()
            }
            deep => deep.evidence(),
        };
        judge(
            declared,
            filename,
            &self.head,
            size,
            self.has_nul,
            Some(evidence.as_ref()),
        )
    }
}

impl Deep {
    /// What the walk found, at the end of the content.
    fn evidence(&self) -> Option<Evidence> {
        match self {
            Deep::Bmff(w) => Some(Evidence::Bmff(w.finish())),
            Deep::Jpeg(w) => Some(Evidence::Jpeg(w.finish())),
            Deep::Undecided | Deep::Nothing => None,
        }
    }
}

/// A QuickTime movie from before `ftyp` existed: it opens with one of these atoms.
/// Its first byte is the top of a 32-bit atom size, 0 for any atom under 16 MB (text never has
/// a NUL byte, so "Not moov…" is not taken for an atom).
fn quicktime_atom(h: &[u8]) -> bool {
    h.len() >= 8
        && h[0] == 0
        && matches!(&h[4..8], b"moov" | b"mdat" | b"wide" | b"pnot")
        && u32::from_be_bytes([h[0], h[1], h[2], h[3]]) >= 8
}

/// The decision. `evidence`: `None` for a provisional (head-only) decision; `Some(None)` when
/// the whole content was seen and there was no structure to follow.
fn judge(
    declared: Option<&str>,
    filename: Option<&str>,
    head: &[u8],
    size: u64,
    has_nul: bool,
    evidence: Option<Option<&Evidence>>,
) -> Result<MediaType, MediaError> {
    let declared = normalize_declared(declared)?;
    if size == 0 {
        return Err(MediaError::Invalid {
            content_type: declared
                .map_or("application/octet-stream", Mt::as_str)
                .to_owned(),
            reason: "empty file".to_owned(),
        });
    }
    let ext = ext_hint(filename);
    let (mut mt, animated) = match decide(declared, ext, sniff(head, has_nul)) {
        Ok(decided) => decided,
        Err(MediaError::Mismatch {
            declared: said,
            detected,
            ..
        }) => {
            // What to do depends on what the bytes are on their own: resend them under their
            // type if that is accepted, else fix them first.
            let alone = judge(None, filename, head, size, has_nul, evidence).err();
            let fix = match alone {
                None => Some(format!(
                    "send it as {detected} (or with no Content-Type: the bytes decide)"
                )),
                Some(e) => e.fix(),
            };
            return Err(MediaError::Mismatch {
                declared: said,
                detected,
                fix,
            });
        }
        Err(e) => return Err(e),
    };
    // The size first, as a streaming upload meets it first.
    let limit = mt.limit(animated);
    if size > limit {
        return Err(MediaError::TooLarge {
            kind: mt.kind(),
            size,
            limit,
        });
    }
    let mut codecs = None;
    match evidence.flatten() {
        Some(Evidence::Bmff(tracks)) if mt.family() == Family::Bmff => {
            let tracks = tracks.as_ref().map_err(|e| MediaError::Invalid {
                content_type: mt.as_str().to_owned(),
                reason: e.to_string(),
            })?;
            // Nothing said which member of the family this is, and it has only audio: M4A.
            let video = tracks.iter().any(|t| t.handler == bmff::Handler::Video);
            if declared.is_none() && ext.is_none_or(|e| e.family() != Family::Bmff) && !video {
                mt = Mt::Mp4Audio;
            }
            bmff::judge(tracks, mt == Mt::Mp4Audio).map_err(|reason| MediaError::Invalid {
                content_type: mt.as_str().to_owned(),
                reason,
            })?;
            codecs = Some(bmff::describe(tracks));
        }
        Some(Evidence::Jpeg(frame)) if mt == Mt::Jpeg => {
            let frame = frame.as_ref().map_err(|e| MediaError::Invalid {
                content_type: mt.as_str().to_owned(),
                reason: e.to_string(),
            })?;
            if let Some(reason) = frame.problem() {
                return Err(MediaError::Invalid {
                    content_type: mt.as_str().to_owned(),
                    reason,
                });
            }
            codecs = Some(frame.to_string());
        }
        // The whole content was seen but the walk its type needs did not run: never accept it
        // unread (the walk is chosen in the order `sniff` decides, so this is a safeguard).
        None if evidence.is_some() && (mt.family() == Family::Bmff || mt == Mt::Jpeg) => {
            return Err(MediaError::Invalid {
                content_type: mt.as_str().to_owned(),
                reason: "its structure could not be read".to_owned(),
            });
        }
        _ => {}
    }
    Ok(MediaType {
        content_type: mt.as_str().to_owned(),
        kind: mt.kind(),
        codecs,
    })
}

// ---------------------------------------------------------------------------
// The accepted types
// ---------------------------------------------------------------------------

/// One exact type WhatsApp accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mt {
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
enum Family {
    Single,
    /// ISO base media file format (`ftyp`): MP4, M4A, 3GPP.
    Bmff,
    /// OLE compound file: legacy Word, Excel, PowerPoint.
    Cfb,
    /// ZIP-based Office Open XML: docx, xlsx, pptx.
    Ooxml,
}

impl Mt {
    const ALL: [Mt; 18] = [
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
    fn as_str(self) -> &'static str {
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

    fn kind(self) -> Kind {
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

    fn family(self) -> Family {
        match self {
            Mt::Mp4Video | Mt::ThreeGpp | Mt::Mp4Audio => Family::Bmff,
            Mt::Doc | Mt::Xls | Mt::Ppt => Family::Cfb,
            Mt::Docx | Mt::Xlsx | Mt::Pptx => Family::Ooxml,
            _ => Family::Single,
        }
    }

    /// The canonical file extension, without the dot.
    fn extension(self) -> &'static str {
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
    fn limit(self, animated: bool) -> u64 {
        if self == Mt::Webp && !animated {
            STATIC_STICKER_MAX_SIZE
        } else {
            self.kind().max_size()
        }
    }

    /// Accepted type for a lowercase declared essence, aliases included.
    fn from_declared_essence(essence: &str) -> Option<Mt> {
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
fn normalize_declared(declared: Option<&str>) -> Result<Option<Mt>, MediaError> {
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
fn ext_hint(filename: Option<&str>) -> Option<Mt> {
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

const OCTET_STREAM: &str = "application/octet-stream";
const OLE_STORAGE: &str = "application/x-ole-storage";
const ZIP: &str = "application/zip";

/// A mismatch; its `fix` is filled in by [`judge`], which can judge the bytes on their own.
fn mismatch(declared: Mt, detected: &str) -> MediaError {
    MediaError::Mismatch {
        declared: declared.as_str().to_owned(),
        detected: detected.to_owned(),
        fix: None,
    }
}

/// Combine the declared type, extension hint and sniffed bytes into the type to
/// store, plus whether it is an animated sticker.
fn decide(
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

// ---------------------------------------------------------------------------
// Sniffing
// ---------------------------------------------------------------------------

/// What the leading bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sniffed {
    /// Exactly this accepted type, and acceptable as it is.
    Type(Mt),
    /// Text that also carries a PDF header after some leading text: either type.
    Either(Mt, Mt),
    /// A 512x512 WebP sticker.
    Sticker { animated: bool },
    /// ISO BMFF video/audio; the guess comes from the major brand.
    Bmff(Mt),
    /// OLE compound file; the guess (if any) comes from stream names.
    Cfb(Option<Mt>),
    /// ZIP; the guess (if any) comes from entry names.
    Zip(Option<Mt>),
    /// Of the family of `mt` (shown to the user as `shown`), but WhatsApp rejects it.
    Bad {
        mt: Mt,
        shown: &'static str,
        reason: String,
    },
    /// Recognised, but not a type WhatsApp accepts.
    Other(&'static str),
    /// Binary that matches nothing known.
    Binary,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const CFB_SIGNATURE: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";

/// Simple prefixes of types WhatsApp does not accept, so errors can name them.
const OTHER_PREFIXES: &[(&[u8], &str)] = &[
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\0", "image/tiff"),
    (b"MM\0*", "image/tiff"),
    (b"fLaC", "audio/flac"),
    (b"{\\rtf", "application/rtf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\0\0\x01\xba", "video/mpeg"),
    (b"\0\0\x01\xb3", "video/mpeg"),
    (b"PK\x05\x06", ZIP),
    (b"PK\x07\x08", ZIP),
];

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn le16(h: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        h.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le32(h: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        h.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le24(h: &[u8], at: usize) -> Option<u32> {
    let b = h.get(at..at.checked_add(3)?)?;
    Some(u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16))
}

/// Sniff the leading bytes (`has_nul`: whether a NUL byte occurs in the content, for the text
/// rule).
fn sniff(h: &[u8], has_nul: bool) -> Sniffed {
    if h.starts_with(b"\xff\xd8\xff") {
        return Sniffed::Type(Mt::Jpeg);
    }
    if h.starts_with(PNG_SIGNATURE) {
        return sniff_png(h);
    }
    if h.starts_with(b"RIFF") && h.len() >= 12 {
        match &h[8..12] {
            b"WEBP" => return sniff_webp(h),
            b"WAVE" => return Sniffed::Other("audio/wav"),
            b"AVI " => return Sniffed::Other("video/x-msvideo"),
            _ => {}
        }
    }
    if h.len() >= 12 && &h[4..8] == b"ftyp" {
        return sniff_ftyp(&h[8..12]);
    }
    if h.starts_with(b"OggS") {
        return sniff_ogg(h);
    }
    if h.starts_with(b"#!AMR\n") {
        return Sniffed::Type(Mt::Amr);
    }
    if h.starts_with(b"#!AMR-WB\n") {
        // Wideband AMR is its own type; WhatsApp's `audio/amr` is narrowband.
        return Sniffed::Other("audio/amr-wb");
    }
    if quicktime_atom(h) {
        return Sniffed::Other("video/quicktime");
    }
    if h.starts_with(b"ID3") {
        return sniff_id3(h);
    }
    if h.starts_with(b"\xff\xfe") || h.starts_with(b"\xfe\xff") {
        return Sniffed::Bad {
            mt: Mt::Text,
            shown: "text/plain",
            reason: "this is UTF-16 text, whose NUL bytes WhatsApp's text documents cannot hold; \
                     save it as UTF-8"
                .to_owned(),
        };
    }
    if let Some(sniffed) = sniff_frame(h) {
        return sniffed;
    }
    if h.starts_with(b"ADIF") {
        return Sniffed::Type(Mt::Aac);
    }
    if h.starts_with(CFB_SIGNATURE) {
        return Sniffed::Cfb(cfb_guess(h));
    }
    if h.starts_with(b"PK\x03\x04") {
        return sniff_zip(h);
    }
    if h.starts_with(b"\x1a\x45\xdf\xa3") {
        let webm = find(&h[..h.len().min(64)], b"webm").is_some();
        // A browser's voice recording is WebM with only an audio track: name it so, since its
        // fix differs. CodecID elements (0x86, a one-byte size, "V_…"/"A_…") come in the
        // Tracks element, before any media data.
        let codec_id = |prefix: &[u8]| {
            h.windows(4)
                .any(|w| w[0] == 0x86 && w[1] & 0x80 != 0 && &w[2..] == prefix)
        };
        let audio_only = !codec_id(b"V_") && codec_id(b"A_");
        return Sniffed::Other(match (webm, audio_only) {
            (true, false) => "video/webm",
            (true, true) => "audio/webm",
            (false, false) => "video/x-matroska",
            (false, true) => "audio/x-matroska",
        });
    }
    if is_bmp(h) {
        return Sniffed::Other("image/bmp");
    }
    if let Some(&(_, other)) = OTHER_PREFIXES.iter().find(|(p, _)| h.starts_with(p)) {
        return Sniffed::Other(other);
    }
    let text = !h.is_empty() && !has_nul;
    if let Some(at) = find(&h[..h.len().min(1024)], b"%PDF-") {
        // A PDF may have up to 1 KB of junk before its header, but a text file may
        // also just mention "%PDF-": when the bytes are all text, allow either.
        return if at > 0 && text {
            Sniffed::Either(Mt::Pdf, Mt::Text)
        } else {
            Sniffed::Type(Mt::Pdf)
        };
    }
    if text {
        Sniffed::Type(Mt::Text)
    } else {
        Sniffed::Binary
    }
}

fn sniff_png(h: &[u8]) -> Sniffed {
    let bad = |reason: String| Sniffed::Bad {
        mt: Mt::Png,
        shown: "image/png",
        reason,
    };
    if h.len() < 26 || &h[12..16] != b"IHDR" {
        return bad("truncated or malformed PNG header (no IHDR chunk)".to_owned());
    }
    let (depth, colour) = (h[24], h[25]);
    if depth == 8 && (colour == 2 || colour == 6) {
        return Sniffed::Type(Mt::Png);
    }
    let colour = match colour {
        0 => "greyscale".to_owned(),
        2 => "RGB".to_owned(),
        3 => "palette (indexed colour)".to_owned(),
        4 => "greyscale with alpha".to_owned(),
        6 => "RGBA".to_owned(),
        n => format!("colour type {n}"),
    };
    bad(format!(
        "WhatsApp accepts 8-bit RGB or RGBA PNG; this is {depth}-bit {colour}"
    ))
}

fn sniff_webp(h: &[u8]) -> Sniffed {
    let bad = |reason: String| Sniffed::Bad {
        mt: Mt::Webp,
        shown: "image/webp",
        reason,
    };
    if h.len() < 30 {
        return bad("truncated WebP header".to_owned());
    }
    let (width, height, mut animated) = match &h[12..16] {
        b"VP8X" => {
            let (Some(w), Some(ht)) = (le24(h, 24), le24(h, 27)) else {
                return bad("truncated WebP header".to_owned());
            };
            (w + 1, ht + 1, h[20] & 0x02 != 0)
        }
        b"VP8L" => {
            let Some(bits) = le32(h, 21).filter(|_| h[20] == 0x2f) else {
                return bad("malformed lossless (VP8L) WebP header".to_owned());
            };
            ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, false)
        }
        b"VP8 " => {
            if h[23..26] != [0x9d, 0x01, 0x2a] {
                return bad("malformed lossy (VP8) WebP header".to_owned());
            }
            let (Some(w), Some(ht)) = (le16(h, 26), le16(h, 28)) else {
                return bad("truncated WebP header".to_owned());
            };
            (u32::from(w & 0x3fff), u32::from(ht & 0x3fff), false)
        }
        _ => return bad("unknown WebP bitstream".to_owned()),
    };
    animated |= webp_has_anim_chunk(h);
    if width != 512 || height != 512 {
        return bad(format!(
            "WhatsApp stickers must be 512x512 pixels; this WebP is {width}x{height}"
        ));
    }
    Sniffed::Sticker { animated }
}

/// Walk the RIFF chunks in the head looking for an `ANIM` chunk.
fn webp_has_anim_chunk(h: &[u8]) -> bool {
    let mut at = 12usize;
    while let (Some(fourcc), Some(len)) = (
        h.get(at..at.saturating_add(4)),
        le32(h, at.saturating_add(4)),
    ) {
        if fourcc == b"ANIM" {
            return true;
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        match at
            .checked_add(8)
            .and_then(|a| a.checked_add(len))
            .and_then(|a| a.checked_add(len & 1))
        {
            Some(next) => at = next,
            None => return false,
        }
    }
    false
}

fn sniff_ftyp(brand: &[u8]) -> Sniffed {
    match brand {
        b"M4A " | b"M4B " => Sniffed::Bmff(Mt::Mp4Audio),
        b if b.starts_with(b"3gp") => Sniffed::Bmff(Mt::ThreeGpp),
        // 3GPP2 (CDMA phones): a sibling container WhatsApp does not list.
        b if b.starts_with(b"3g2") => Sniffed::Other("video/3gpp2"),
        // QuickTime (`.mov`, iPhone recordings) is not MP4, whatever its codecs.
        b"qt  " => Sniffed::Other("video/quicktime"),
        // HEIF/AVIF stills share the container but are images WhatsApp refuses.
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => Sniffed::Other("image/heic"),
        b"mif1" | b"msf1" => Sniffed::Other("image/heif"),
        b"avif" | b"avis" => Sniffed::Other("image/avif"),
        _ => Sniffed::Bmff(Mt::Mp4Video),
    }
}

fn sniff_ogg(h: &[u8]) -> Sniffed {
    // Page header is 27 bytes plus one lacing byte per segment; the first
    // packet (the codec's identification header) follows.
    let packet = h
        .get(26)
        .and_then(|&n| h.get(27 + usize::from(n)..))
        .unwrap_or(&[]);
    if packet.starts_with(b"OpusHead") {
        let reason = match packet.get(9) {
            Some(1) => return Sniffed::Type(Mt::OggOpus),
            Some(n) => format!("WhatsApp accepts mono Opus only; this stream has {n} channels"),
            None => "truncated Opus header".to_owned(),
        };
        return Sniffed::Bad {
            mt: Mt::OggOpus,
            shown: OGG_OPUS,
            reason,
        };
    }
    let codec = if packet.starts_with(b"\x01vorbis") {
        "Vorbis"
    } else if packet.starts_with(b"\x7fFLAC") {
        "FLAC"
    } else if packet.starts_with(b"Speex   ") {
        "Speex"
    } else if packet.starts_with(b"\x80theora") {
        "Theora video"
    } else {
        "not Opus"
    };
    Sniffed::Bad {
        mt: Mt::OggOpus,
        shown: "audio/ogg",
        reason: format!("WhatsApp accepts only Opus audio in Ogg; this stream is {codec}"),
    }
}

/// An ID3v2 tag usually precedes MP3, but may precede AAC (ADTS) or FLAC.
fn sniff_id3(h: &[u8]) -> Sniffed {
    if let Some(syncsafe) = h.get(6..10) {
        let body = syncsafe
            .iter()
            .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7f));
        let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
        if let Some(rest) = h.get(10 + body + footer..) {
            if rest.starts_with(b"fLaC") {
                return Sniffed::Other("audio/flac");
            }
            if sniff_audio_frame(rest) == Some(Mt::Aac) {
                return Sniffed::Type(Mt::Aac);
            }
            if let Some(bad @ Sniffed::Bad { .. }) = sniff_frame(rest) {
                return bad;
            }
        }
    }
    Sniffed::Type(Mt::Mpeg)
}

/// [`sniff_audio_frame`], with MPEG audio Layers I and II (MP1, MP2) told from Layer III (MP3):
/// they share `audio/mpeg` and their frame sync, but WhatsApp's `audio/mpeg` is MP3.
fn sniff_frame(h: &[u8]) -> Option<Sniffed> {
    let mt = sniff_audio_frame(h)?;
    if mt == Mt::Mpeg {
        let layer = match (h[1] >> 1) & 0x03 {
            0b11 => 1,
            0b10 => 2,
            _ => 3,
        };
        if layer != 3 {
            let version = match (h[1] >> 3) & 0x03 {
                0b11 => "MPEG-1",
                0b10 => "MPEG-2",
                _ => "MPEG-2.5",
            };
            return Some(Sniffed::Bad {
                mt: Mt::Mpeg,
                shown: "audio/mpeg",
                reason: format!(
                    "{version} Audio Layer {} (MP{layer}); WhatsApp plays MP3 (Layer III) only",
                    if layer == 1 { "I" } else { "II" }
                ),
            });
        }
    }
    Some(Sniffed::Type(mt))
}

/// An AAC ADTS header (layer bits 00) or an MPEG audio frame header (layer bits
/// not 00: MP3 and its Layer I/II siblings).
fn sniff_audio_frame(h: &[u8]) -> Option<Mt> {
    let (&b0, &b1) = (h.first()?, h.get(1)?);
    if b0 != 0xff {
        return None;
    }
    if b1 & 0xf6 == 0xf0 {
        // ADTS: sampling frequency index 13..15 is reserved.
        if h.get(2).is_some_and(|&b2| (b2 >> 2) & 0x0f > 12) {
            return None;
        }
        return Some(Mt::Aac);
    }
    if b1 & 0xe0 == 0xe0 && b1 & 0x06 != 0 {
        // Version 01 is reserved; bitrate index 15 and sample rate index 3 are invalid.
        if (b1 >> 3) & 0x03 == 0x01 {
            return None;
        }
        if h.get(2)
            .is_some_and(|&b2| b2 >> 4 == 0x0f || (b2 >> 2) & 0x03 == 0x03)
        {
            return None;
        }
        return Some(Mt::Mpeg);
    }
    None
}

/// Legacy Office type from the directory entry names of an OLE compound file,
/// if the directory is within the head: the earliest of the known stream names.
fn cfb_guess(h: &[u8]) -> Option<Mt> {
    const STREAMS: [(&str, Mt); 4] = [
        ("WordDocument", Mt::Doc),
        ("Workbook", Mt::Xls),
        ("Book", Mt::Xls),
        ("PowerPoint Document", Mt::Ppt),
    ];
    STREAMS
        .iter()
        .filter_map(|&(name, mt)| cfb_find_entry(h, name).map(|at| (at, mt)))
        .min_by_key(|&(at, _)| at)
        .map(|(_, mt)| mt)
}

/// Offset of a directory entry named `name`: UTF-16LE name, NUL-terminated, at a
/// 128-byte boundary, with the matching name length (bytes, incl. NUL) at +64.
fn cfb_find_entry(h: &[u8], name: &str) -> Option<usize> {
    let mut needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    needle.extend_from_slice(&[0, 0]);
    let want_len = u16::try_from(needle.len()).ok()?;
    (512..h.len())
        .step_by(128)
        .find(|&at| h[at..].starts_with(&needle) && le16(h, at + 64) == Some(want_len))
}

/// OOXML type from the first recognisable entry name among the ZIP local file
/// headers in the head; ODF/EPUB are named from their `mimetype` entry.
fn sniff_zip(h: &[u8]) -> Sniffed {
    const ODF: [&str; 4] = [
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/epub+zip",
    ];
    let mut from = 0;
    while let Some(found) = find(&h[from..], b"PK\x03\x04") {
        let at = from + found;
        from = at + 4;
        let (Some(method), Some(csize), Some(nlen), Some(elen)) = (
            le16(h, at + 8),
            le32(h, at + 18),
            le16(h, at + 26),
            le16(h, at + 28),
        ) else {
            break;
        };
        let name_start = at + 30;
        let name_end = name_start + usize::from(nlen);
        let Some(name) = h.get(name_start..name_end) else {
            break;
        };
        if name.starts_with(b"word/") {
            return Sniffed::Zip(Some(Mt::Docx));
        }
        if name.starts_with(b"xl/") {
            return Sniffed::Zip(Some(Mt::Xlsx));
        }
        if name.starts_with(b"ppt/") {
            return Sniffed::Zip(Some(Mt::Pptx));
        }
        if name == b"mimetype" && method == 0 {
            let data_start = name_end + usize::from(elen);
            let data_end = data_start.saturating_add(usize::try_from(csize).unwrap_or(usize::MAX));
            if let Some(data) = h.get(data_start..data_end)
                && let Some(odf) = ODF.iter().find(|t| t.as_bytes() == data)
            {
                return Sniffed::Other(odf);
            }
        }
    }
    Sniffed::Zip(None)
}

fn is_bmp(h: &[u8]) -> bool {
    h.starts_with(b"BM")
        && h.get(6..10) == Some(&[0, 0, 0, 0])
        && matches!(le32(h, 14), Some(12 | 40 | 52 | 56 | 64 | 108 | 124))
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
