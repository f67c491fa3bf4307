//! What the first bytes say: magic numbers and header fields, naming what WhatsApp refuses so
//! refusals can say what was found (a GIF, a WAV, a 16-bit PNG, stereo Opus...).

use super::*;

// ---------------------------------------------------------------------------
// Sniffing
// ---------------------------------------------------------------------------

/// What the leading bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sniffed {
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

pub(super) const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
pub(super) const CFB_SIGNATURE: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";

/// Simple prefixes of types WhatsApp does not accept, so errors can name them.
pub(super) const OTHER_PREFIXES: &[(&[u8], &str)] = &[
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

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn le16(h: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        h.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(super) fn le32(h: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        h.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(super) fn le24(h: &[u8], at: usize) -> Option<u32> {
    let b = h.get(at..at.checked_add(3)?)?;
    Some(u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16))
}

/// Sniff the leading bytes (`has_nul`: whether a NUL byte occurs in the content, for the text
/// rule).
pub(super) fn sniff(h: &[u8], has_nul: bool) -> Sniffed {
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

pub(super) fn sniff_png(h: &[u8]) -> Sniffed {
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

pub(super) fn sniff_webp(h: &[u8]) -> Sniffed {
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
pub(super) fn webp_has_anim_chunk(h: &[u8]) -> bool {
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

pub(super) fn sniff_ftyp(brand: &[u8]) -> Sniffed {
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

pub(super) fn sniff_ogg(h: &[u8]) -> Sniffed {
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
pub(super) fn sniff_id3(h: &[u8]) -> Sniffed {
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
pub(super) fn sniff_frame(h: &[u8]) -> Option<Sniffed> {
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
pub(super) fn sniff_audio_frame(h: &[u8]) -> Option<Mt> {
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
pub(super) fn cfb_guess(h: &[u8]) -> Option<Mt> {
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
pub(super) fn cfb_find_entry(h: &[u8], name: &str) -> Option<usize> {
    let mut needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    needle.extend_from_slice(&[0, 0]);
    let want_len = u16::try_from(needle.len()).ok()?;
    (512..h.len())
        .step_by(128)
        .find(|&at| h[at..].starts_with(&needle) && le16(h, at + 64) == Some(want_len))
}

/// OOXML type from the first recognisable entry name among the ZIP local file
/// headers in the head; ODF/EPUB are named from their `mimetype` entry.
pub(super) fn sniff_zip(h: &[u8]) -> Sniffed {
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

pub(super) fn is_bmp(h: &[u8]) -> bool {
    h.starts_with(b"BM")
        && h.get(6..10) == Some(&[0, 0, 0, 0])
        && matches!(le32(h, 14), Some(12 | 40 | 52 | 56 | 64 | 108 | 124))
}
