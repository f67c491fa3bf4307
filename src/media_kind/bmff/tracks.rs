//! The tracks a `moov` describes and the codec of each (sample entry four-character codes,
//! `avcC` profiles, `esds` object types), and WhatsApp's rule over them ([`judge`]).

use super::*;

/// What a track carries, as far as WhatsApp's rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub handler: Handler,
    /// The codec of each of its sample entries (a track is judged by all of them).
    pub codecs: Vec<Codec>,
}

/// A track's handler type (`hdlr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Video,
    Audio,
    /// Timed text, subtitles, timecode, metadata, hint: not played as a stream.
    Other(FourCc),
}

/// A sample entry's codec, as WhatsApp's rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// `avc1`/`avc3`.
    H264,
    /// `mp4a` with an AAC object type; the name says which (AAC-LC, HE-AAC…).
    Aac(&'static str),
    /// Anything else, named for the user (e.g. "HEVC (H.265)", "Opus", "MP3").
    Other(String),
}

impl Codec {
    pub fn name(&self) -> &str {
        match self {
            Codec::H264 => "H.264",
            Codec::Aac(name) => name,
            Codec::Other(name) => name,
        }
    }
}

/// The tracks described by a whole `moov` box (header included).
pub fn tracks(moov: &[u8]) -> Result<Vec<Track>, BoxError> {
    let header = if moov.get(..4).map(be32) == Some(1) {
        16
    } else {
        8
    };
    let body = moov.get(header..).unwrap_or(&[]);
    let mut out = Vec::new();
    for b in Boxes::new(body, header) {
        let (fourcc, payload) = b?;
        if &fourcc.0 != b"trak" {
            continue;
        }
        if out.len() == MAX_TRACKS {
            return Err(BoxError::TooMany {
                what: "tracks",
                limit: MAX_TRACKS,
            });
        }
        out.push(track(payload)?);
    }
    Ok(out)
}

pub(super) fn track(trak: &[u8]) -> Result<Track, BoxError> {
    let mut handler = Handler::Other(FourCc(*b"    "));
    let mut codecs = Vec::new();
    let Some(mdia) = child(trak, b"mdia")? else {
        return Ok(Track { handler, codecs });
    };
    if let Some(hdlr) = child(mdia, b"hdlr")? {
        // FullBox: version+flags (4), pre_defined (4), handler_type (4).
        if let Some(t) = hdlr.get(8..12) {
            handler = match t {
                b"vide" => Handler::Video,
                b"soun" => Handler::Audio,
                _ => Handler::Other(FourCc([t[0], t[1], t[2], t[3]])),
            };
        }
    }
    let stsd = match child(mdia, b"minf")? {
        Some(minf) => match child(minf, b"stbl")? {
            Some(stbl) => child(stbl, b"stsd")?,
            None => None,
        },
        None => None,
    };
    if let Some(stsd) = stsd {
        // FullBox (4) then entry_count (4), then the entries, which are boxes.
        let entries = stsd.get(8..).unwrap_or(&[]);
        for entry in Boxes::new(entries, 0) {
            let (fourcc, payload) = entry?;
            if codecs.len() == MAX_ENTRIES {
                return Err(BoxError::TooMany {
                    what: "sample descriptions",
                    limit: MAX_ENTRIES,
                });
            }
            let (c, kind) = codec(fourcc, payload, handler);
            codecs.push(c);
            // A track is judged by what it carries, whatever its handler says (or if it has
            // none): an HEVC stream under an `auxv` handler is still played as video by some
            // players.
            if let (Handler::Other(_), Some(kind)) = (handler, kind) {
                handler = kind;
            }
        }
    }
    Ok(Track { handler, codecs })
}

/// The codec of one sample entry, and whether it is video or audio (for known codecs, whatever
/// the track's handler says).
pub(super) fn codec(fourcc: FourCc, payload: &[u8], handler: Handler) -> (Codec, Option<Handler>) {
    let video = |s: &str| (Codec::Other(s.to_owned()), Some(Handler::Video));
    let audio = |s: &str| (Codec::Other(s.to_owned()), Some(Handler::Audio));
    match &fourcc.0 {
        b"avc1" | b"avc3" => (avc(payload), Some(Handler::Video)),
        b"avc2" | b"avc4" => video("H.264 with external parameter sets (avc2/avc4)"),
        b"hvc1" | b"hev1" => video("HEVC (H.265)"),
        b"dvh1" | b"dvhe" => video("Dolby Vision (HEVC)"),
        b"dva1" | b"dvav" => video("Dolby Vision (H.264)"),
        b"av01" => video("AV1"),
        b"vp09" => video("VP9"),
        b"vp08" => video("VP8"),
        b"mp4v" => video("MPEG-4 Part 2 (Xvid/DivX)"),
        b"s263" | b"h263" => video("H.263"),
        b"jpeg" | b"mjpa" | b"mjpb" => video("Motion JPEG"),
        b"apcn" | b"apch" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => video("Apple ProRes"),
        b"encv" => video("encrypted (DRM-protected) video"),
        b"mp4a" => (mp4a(payload), Some(Handler::Audio)),
        b"Opus" => audio("Opus"),
        b"ac-3" => audio("AC-3 (Dolby Digital)"),
        b"ec-3" => audio("E-AC-3 (Dolby Digital Plus)"),
        b"ac-4" => audio("AC-4"),
        b"alac" => audio("ALAC (Apple Lossless)"),
        b"fLaC" => audio("FLAC"),
        b".mp3" => audio("MP3"),
        b"samr" => audio("AMR-NB"),
        b"sawb" => audio("AMR-WB"),
        b"sowt" | b"twos" | b"lpcm" | b"ipcm" | b"fpcm" | b"in24" | b"in32" | b"fl32" | b"fl64"
        | b"raw " => audio("uncompressed PCM"),
        b"enca" => audio("encrypted (DRM-protected) audio"),
        _ => (
            Codec::Other(match handler {
                Handler::Video => format!("video format '{fourcc}'"),
                Handler::Audio => format!("audio format '{fourcc}'"),
                Handler::Other(_) => format!("format '{fourcc}'"),
            }),
            None,
        ),
    }
}

/// An `avc1`/`avc3` entry: H.264, judged by the profile in its `avcC` (ISO/IEC 14496-15
/// §5.3.3.1): phones decode 8-bit 4:2:0 (Baseline, Main, Extended, High), not High 10, 4:2:2 or
/// 4:4:4, which x264 writes from 10-bit or RGB sources unless told `-pix_fmt yuv420p`.
pub(super) fn avc(payload: &[u8]) -> Codec {
    // SampleEntry (8) + VisualSampleEntry's fixed fields (70), then child boxes.
    let config = payload
        .get(78..)
        .and_then(|c| child(c, b"avcC").ok().flatten());
    let Some(profile) = config.and_then(|c| c.get(1).copied()) else {
        return Codec::Other("H.264 without a decoder configuration ('avcC')".to_owned());
    };
    match profile {
        66 | 77 | 88 | 100 => Codec::H264,
        110 => Codec::Other("H.264 High 10 profile (10-bit)".to_owned()),
        122 => Codec::Other("H.264 High 4:2:2 profile".to_owned()),
        244 => Codec::Other("H.264 High 4:4:4 Predictive profile".to_owned()),
        44 => Codec::Other("H.264 CAVLC 4:4:4 Intra profile".to_owned()),
        n => Codec::Other(format!("H.264 profile {n}")),
    }
}

/// An `mp4a` entry: AAC, or MP3 (and others) under the same code, told apart by `esds`.
pub(super) fn mp4a(payload: &[u8]) -> Codec {
    // SampleEntry (8: reserved 6 + data_reference_index 2), then AudioSampleEntry's fixed
    // fields (20). QuickTime's sound description version 1 adds 16 bytes, version 2 adds 36.
    let version = payload.get(8..10).map_or(0, be16);
    let fixed = 28
        + match version {
            1 => 16,
            2 => 36,
            _ => 0,
        };
    let Some(children) = payload.get(fixed..) else {
        return Codec::Other("AAC sample entry too short to read".to_owned());
    };
    // QuickTime puts `esds` inside a `wave` box.
    let esds = match child(children, b"esds") {
        Ok(Some(esds)) => Some(esds),
        _ => match child(children, b"wave") {
            Ok(Some(wave)) => child(wave, b"esds").ok().flatten(),
            _ => None,
        },
    };
    let Some(esds) = esds else {
        return Codec::Other("'mp4a' without a decoder configuration ('esds')".to_owned());
    };
    match esds.get(4..).and_then(decoder_config) {
        Some((oti, aot)) => audio_object(oti, aot),
        None => Codec::Other("'mp4a' with an unreadable decoder configuration ('esds')".to_owned()),
    }
}

/// Name the audio of an `esds`: its objectTypeIndication and, for MPEG-4 audio, the audio
/// object type of its AudioSpecificConfig.
pub(super) fn audio_object(oti: u8, aot: Option<u8>) -> Codec {
    match oti {
        // MPEG-4 audio: the object type decides (ISO/IEC 14496-3 §1.5.1.1).
        // Phones decode AAC-LC, HE-AAC (v2), AAC-LD and AAC-ELD (Android's supported media
        // formats); Main, SSR and LTP are AAC in name only for them.
        0x40 => match aot {
            Some(1) => Codec::Other("AAC Main profile".to_owned()),
            Some(2) => Codec::Aac("AAC-LC"),
            Some(3) => Codec::Other("AAC SSR profile".to_owned()),
            Some(4) => Codec::Other("AAC LTP profile".to_owned()),
            Some(5) => Codec::Aac("HE-AAC"),
            Some(29) => Codec::Aac("HE-AACv2"),
            Some(23) => Codec::Aac("AAC-LD"),
            Some(39) => Codec::Aac("AAC-ELD"),
            Some(32) => Codec::Other("MPEG-1 Audio Layer I".to_owned()),
            Some(33) => Codec::Other("MPEG-1 Audio Layer II (MP2)".to_owned()),
            Some(34) => Codec::Other("MP3".to_owned()),
            Some(42) => Codec::Other("xHE-AAC (USAC)".to_owned()),
            Some(n) => Codec::Other(format!("MPEG-4 audio object type {n} (not AAC)")),
            None => Codec::Other("MPEG-4 audio without an AudioSpecificConfig".to_owned()),
        },
        // MPEG-2 AAC profiles (ISO/IEC 14496-1 table 5).
        0x66 => Codec::Other("AAC Main profile (MPEG-2)".to_owned()),
        0x67 => Codec::Aac("AAC-LC (MPEG-2)"),
        0x68 => Codec::Other("AAC SSR profile (MPEG-2)".to_owned()),
        0x69 | 0x6b => Codec::Other("MP3".to_owned()),
        0xa5 => Codec::Other("AC-3 (Dolby Digital)".to_owned()),
        0xa6 => Codec::Other("E-AC-3 (Dolby Digital Plus)".to_owned()),
        0xad => Codec::Other("Opus".to_owned()),
        n => Codec::Other(format!("audio object type indication 0x{n:02x} (not AAC)")),
    }
}

/// From an ES_Descriptor: the DecoderConfigDescriptor's objectTypeIndication and the audio
/// object type in its DecoderSpecificInfo, if any.
pub(super) fn decoder_config(es: &[u8]) -> Option<(u8, Option<u8>)> {
    let (tag, body) = descriptor(es)?;
    if tag != 0x03 {
        return None;
    }
    // ES_ID (2), flags (1), then optional fields the flags announce.
    let flags = *body.get(2)?;
    let mut at = 3usize;
    if flags & 0x80 != 0 {
        at += 2; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*body.get(at)?); // URL
    }
    if flags & 0x20 != 0 {
        at += 2; // OCR_ES_Id
    }
    let (tag, dc) = descriptor(body.get(at..)?)?;
    if tag != 0x04 {
        return None;
    }
    let oti = *dc.first()?;
    // objectTypeIndication (1), streamType etc. (1), bufferSizeDB (3), maxBitrate (4),
    // avgBitrate (4): the DecoderSpecificInfo follows.
    let aot = dc
        .get(13..)
        .and_then(descriptor)
        .filter(|(tag, _)| *tag == 0x05)
        .and_then(|(_, asc)| audio_object_type(asc));
    Some((oti, aot))
}

/// The audio object type of an AudioSpecificConfig: 5 bits, 31 escaping to 32 + 6 more bits.
pub(super) fn audio_object_type(asc: &[u8]) -> Option<u8> {
    let first = *asc.first()? >> 3;
    if first != 31 {
        return Some(first);
    }
    let bits = (u16::from(*asc.first()?) << 8) | u16::from(*asc.get(1)?);
    Some(32 + ((bits >> 5) & 0x3f) as u8)
}

/// One descriptor: its tag and body (the size is 1 to 4 bytes of 7 bits each).
pub(super) fn descriptor(d: &[u8]) -> Option<(u8, &[u8])> {
    let tag = *d.first()?;
    let mut len = 0usize;
    let mut at = 1;
    loop {
        let b = *d.get(at)?;
        at += 1;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
        if at == 5 {
            return None;
        }
    }
    Some((tag, d.get(at..at.checked_add(len)?)?))
}

/// "H.264 video, AAC-LC audio": the codecs of the played tracks, for reports.
pub fn describe(tracks: &[Track]) -> String {
    let mut parts = Vec::new();
    for t in tracks {
        let what = match t.handler {
            Handler::Video => "video",
            Handler::Audio => "audio",
            Handler::Other(_) => continue,
        };
        let names: Vec<&str> = t.codecs.iter().map(Codec::name).collect();
        let names = if names.is_empty() {
            "no sample description".to_owned()
        } else {
            names.join(" + ")
        };
        parts.push(format!("{names} {what}"));
    }
    if parts.is_empty() {
        "no audio or video track".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Whether WhatsApp plays these tracks: as a video (`audio_only` false: every video track
/// H.264, at most one audio track, AAC) or as M4A audio (`audio_only`: one AAC track and no
/// video). `Err` says what was found, in words for the API user.
pub fn judge(tracks: &[Track], audio_only: bool) -> Result<(), String> {
    let video: Vec<&Track> = tracks
        .iter()
        .filter(|t| t.handler == Handler::Video)
        .collect();
    let audio: Vec<&Track> = tracks
        .iter()
        .filter(|t| t.handler == Handler::Audio)
        .collect();
    if video.is_empty() && audio.is_empty() {
        return Err("it has no audio or video track".to_owned());
    }
    if audio_only {
        if let Some(v) = video.first() {
            return Err(format!(
                "it holds a video track ({}); WhatsApp's M4A audio is one AAC track: send it as \
                 a video (video/mp4) or keep only the audio",
                codec_names(v)
            ));
        }
    } else {
        if video.is_empty() {
            return Err(format!(
                "it has no video track, only audio ({}): send it as audio (audio/mp4, .m4a)",
                describe(tracks)
            ));
        }
        for v in &video {
            if v.codecs.is_empty() {
                return Err("a video track has no sample description".to_owned());
            }
            if let Some(c) = v.codecs.iter().find(|c| **c != Codec::H264) {
                let plays = if c.name().starts_with("H.264") {
                    "8-bit 4:2:0 H.264 (Baseline, Main or High profile)"
                } else {
                    "H.264"
                };
                return Err(format!(
                    "video codec {}; WhatsApp plays {plays} only",
                    c.name()
                ));
            }
        }
    }
    if audio.len() > 1 {
        return Err(format!(
            "it has {} audio tracks; WhatsApp accepts a single audio track{}",
            audio.len(),
            if audio_only { "" } else { " or none" }
        ));
    }
    if let Some(a) = audio.first() {
        if a.codecs.is_empty() {
            return Err("the audio track has no sample description".to_owned());
        }
        if let Some(c) = a.codecs.iter().find(|c| !matches!(c, Codec::Aac(_))) {
            let plays = if c.name().starts_with("AAC") {
                "AAC-LC, HE-AAC or AAC-LD/ELD"
            } else {
                "AAC"
            };
            return Err(format!(
                "audio codec {}; WhatsApp plays {plays} only",
                c.name()
            ));
        }
    }
    Ok(())
}

pub(super) fn codec_names(t: &Track) -> String {
    t.codecs
        .iter()
        .map(Codec::name)
        .collect::<Vec<_>>()
        .join(" + ")
}
