//! The final decision: an [`Inspector`] fed the whole content as it streams, the structure
//! walk it picks from the first bytes, and [`judge`], which turns declared type, file name,
//! bytes and what the walk found into a type or a refusal.

use super::*;

/// Reads an upload as it streams by and decides, at the end, whether WhatsApp accepts it.
///
/// It keeps the first [`SNIFF_LEN`] bytes, notes whether a NUL byte occurs anywhere (the text
/// rule), and for containers whose decisive fields can be anywhere it follows their structure
/// as the bytes pass: the ISO-BMFF box walk keeps `moov` (the track descriptions, which may
/// follow `mdat`), the JPEG walk reads the frame header. Nothing else is held, so memory stays
/// bounded whatever the file's size (see [`super::bmff`] and [`super::jpeg`] for their bounds).
#[derive(Debug, Default, Clone)]
pub struct Inspector {
    head: Vec<u8>,
    size: u64,
    has_nul: bool,
    deep: Deep,
}

/// The structure walk chosen from the first bytes.
#[derive(Debug, Default, Clone)]
pub(super) enum Deep {
    /// Fewer than [`DEEP_PICK_LEN`] bytes seen so far.
    #[default]
    Undecided,
    Bmff(bmff::Walker),
    Jpeg(jpeg::Walker),
    /// No structure to follow.
    Nothing,
}

/// What the structure walk found, for [`judge`].
pub(super) enum Evidence {
    Bmff(Result<Vec<bmff::Track>, bmff::BoxError>),
    Jpeg(Result<jpeg::Frame, jpeg::JpegError>),
}

/// Bytes needed to choose a structure walk (`ftyp` sits at 4..8).
pub(super) const DEEP_PICK_LEN: usize = 12;

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

    /// Whether a NUL byte occurred anywhere so far (the text rule).
    pub(super) fn has_nul(&self) -> bool {
        self.has_nul
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
pub(super) fn quicktime_atom(h: &[u8]) -> bool {
    h.len() >= 8
        && h[0] == 0
        && matches!(&h[4..8], b"moov" | b"mdat" | b"wide" | b"pnot")
        && u32::from_be_bytes([h[0], h[1], h[2], h[3]]) >= 8
}

/// The decision. `evidence`: `None` for a provisional (head-only) decision; `Some(None)` when
/// the whole content was seen and there was no structure to follow.
pub(super) fn judge(
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
