//! A corpus of real media files, made at test time by real encoders: Debian's ffmpeg from its
//! `lavfi` test sources (`testsrc2`, `sine`; never a network input), and the `jpeg-encoder`
//! crate for the JPEGs ffmpeg cannot write (greyscale, CMYK, YCCK) from ffmpeg's raw frames.
//!
//! ```ignore
//! use common::media::{self, Corpus};
//! let body = media::file(Corpus::HevcMp4).to_vec();        // panics if it cannot be made
//! if let Some(av1) = media::optional(Corpus::Av1Mp4) { … } // None: this ffmpeg has no encoder
//! ```
//!
//! Every file is checked right after it is made, with ffprobe (container format, major brand,
//! stream count, and per stream the codec, codec tag, profile, pixel format, channels, sample
//! rate, dimensions) and by reading its bytes where ffprobe cannot tell (where `moov` sits, a
//! JPEG's frame header, size limits), so a wrong corpus fails loudly instead of silently
//! testing the wrong thing.
//!
//! Files are cached under Cargo's `target/tmp/media-corpus/`, named with a hash of how they
//! are made (the recipe, what is expected of it, and ffmpeg's version): the first test binary
//! that needs a file makes it (a fresh machine or a changed recipe), later ones and later runs
//! read it. A file is written under a temporary name and renamed into place only once it has
//! passed its checks, so binaries running at once never see half a file. Within a process each
//! file is made or read once, when first asked for; [`all`] makes the whole corpus in parallel.
//!
//! "WhatsApp accepts" below follows `../shared/WHATSAPP_MEDIA.md` §3: video is H.264 with at
//! most one AAC track (MP4 or 3GPP; not QuickTime, not 3GPP2); M4A only AAC; Ogg only mono
//! Opus; audio also AAC (ADTS), AMR(-NB) and MP3; images 8-bit RGB or RGBA PNG, or JPEG
//! (8-bit, 1 or 3 components); WebP only as a 512×512 sticker. [`Corpus::accepted`] says it in
//! code.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bump to remake every cached file (e.g. after a change the recipes' text does not show).
const CORPUS_VERSION: u32 = 1;

/// How long one ffmpeg or ffprobe run may take before the corpus gives up on it.
const TIMEOUT: Duration = Duration::from_secs(120);

/// 64 KiB: what the upload gate reads before it decides (the moov-last file's `moov` is past it).
pub const FIRST_BYTES: u64 = 64 * 1024;

macro_rules! corpus {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $accepted:literal, $declared:literal;)*) => {
        /// One file of the corpus. Its doc says what it is and whether WhatsApp accepts it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Corpus {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Corpus {
            /// Every file, in declaration order.
            pub const ALL: &[Corpus] = &[$(Corpus::$variant,)*];

            /// The file name, e.g. `h264_aac.mp4`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Corpus::$variant => $name,)*
                }
            }

            /// Whether WhatsApp accepts this file (see the module doc for the rules).
            pub fn accepted(self) -> bool {
                match self {
                    $(Corpus::$variant => $accepted,)*
                }
            }

            /// The media type a user or browser would declare for it, from its extension:
            /// `video/mp4` for every `.mp4`, `audio/mpeg` for `.mp2` as for `.mp3`, and so on.
            pub fn declared_type(self) -> &'static str {
                match self {
                    $(Corpus::$variant => $declared,)*
                }
            }
        }
    };
}

corpus! {
    /// H.264 (High, yuv420p, 128×128, 1 s) + one AAC-LC track (mono, 48 kHz), MP4 (`isom`) with
    /// `+faststart` (`moov` before `mdat`). WhatsApp accepts it.
    H264AacMp4 = "h264_aac.mp4", true, "video/mp4";
    /// H.264 (High, yuv420p, 128×128, 1 s), no audio track, MP4 (`moov` at the end, as
    /// ffmpeg writes by default; the whole file is small). WhatsApp accepts it.
    H264OnlyMp4 = "h264_only.mp4", true, "video/mp4";
    /// H.264 (High, yuv420p, 320×240, 2 s of noisy `testsrc2` at 1 Mbit/s) + AAC-LC, MP4
    /// **without** faststart: `moov` comes after `mdat` and starts past the first 64 KiB
    /// ([`FIRST_BYTES`]); about 550 KB in all. WhatsApp accepts it.
    H264AacMoovLastMp4 = "h264_aac_moov_last.mp4", true, "video/mp4";
    /// HEVC (x265, Main, yuv420p) tagged `hvc1` (Apple's tag), no audio, MP4. WhatsApp refuses
    /// it (H.264 only).
    HevcMp4 = "hevc.mp4", false, "video/mp4";
    /// The same HEVC stream as [`Corpus::HevcMp4`] tagged `hev1` instead of `hvc1`, no audio,
    /// MP4. WhatsApp refuses it.
    HevcHev1Mp4 = "hevc_hev1.mp4", false, "video/mp4";
    /// VP9 (libvpx, `vp09`), no audio, MP4. WhatsApp refuses it.
    Vp9Mp4 = "vp9.mp4", false, "video/mp4";
    /// AV1 (`av01`; libaom-av1, else libsvtav1, else librav1e, fastest settings), no audio, MP4.
    /// **Optional**: `None` when this ffmpeg has none of those encoders. WhatsApp refuses it.
    Av1Mp4 = "av1.mp4", false, "video/mp4";
    /// MPEG-4 Part 2 video (ffmpeg's `mpeg4`, tag `mp4v`), no audio, MP4. WhatsApp refuses it.
    Mpeg4Part2Mp4 = "mpeg4_part2.mp4", false, "video/mp4";
    /// H.264 + AAC in a QuickTime container (major brand `qt  `, as an iPhone `.mov`).
    /// WhatsApp refuses it (QuickTime is not MP4), though its tracks would pass.
    H264AacMov = "h264_aac.mov", false, "video/quicktime";
    /// H.264 + two AAC-LC tracks (440 Hz and 660 Hz), MP4. WhatsApp refuses it (one audio
    /// stream at most).
    TwoAacTracksMp4 = "two_aac_tracks.mp4", false, "video/mp4";
    /// H.264 + Opus (tag `Opus`), MP4. WhatsApp refuses it (AAC audio only).
    H264OpusMp4 = "h264_opus.mp4", false, "video/mp4";
    /// H.264 + MP3 (libmp3lame; tag `mp4a` with the MPEG-1 audio object type), MP4. WhatsApp
    /// refuses it (AAC audio only): a gate that stops at `mp4a` lets it through.
    H264Mp3Mp4 = "h264_mp3.mp4", false, "video/mp4";
    /// H.264 + AC-3 (tag `ac-3`), MP4. WhatsApp refuses it (AAC audio only).
    H264Ac3Mp4 = "h264_ac3.mp4", false, "video/mp4";
    /// AAC-LC only (mono, 48 kHz), M4A (`-f ipod`, major brand `M4A `). WhatsApp accepts it.
    AacM4a = "aac.m4a", true, "audio/mp4";
    /// ALAC (Apple Lossless, tag `alac`) in M4A (major brand `M4A `). WhatsApp refuses it (M4A
    /// must be AAC).
    AlacM4a = "alac.m4a", false, "audio/mp4";
    /// H.264 + AAC-LC in 3GPP (`-f 3gp`, major brand `3gp6`). WhatsApp accepts it (declare it
    /// `video/3gp` or `video/3gpp`).
    H264Aac3gp = "h264_aac.3gp", true, "video/3gpp";
    /// H.263 (176×144) + AMR-NB (8 kHz mono) in 3GPP: what old phones recorded. **Optional**:
    /// `None` unless ffmpeg has `libopencore_amrnb` (Debian's does not). WhatsApp refuses it
    /// (H.264 and AAC only).
    H263Amr3gp = "h263_amr.3gp", false, "video/3gpp";
    /// H.264 + AAC-LC in 3GPP2 (`-f 3g2`, major brand `3g2b`). WhatsApp refuses it (3GPP2 is
    /// not 3GPP).
    H264Aac3g2 = "h264_aac.3g2", false, "video/3gpp2";
    /// Opus (libopus), mono, 48 kHz, in Ogg: a voice note. WhatsApp accepts it.
    MonoOpusOgg = "mono.opus.ogg", true, "audio/ogg";
    /// Opus (libopus), stereo, in Ogg. WhatsApp refuses it (mono only).
    StereoOpusOgg = "stereo.opus.ogg", false, "audio/ogg";
    /// Vorbis (libvorbis), mono, in Ogg. **Optional**: `None` without `libvorbis`. WhatsApp
    /// refuses it (Ogg must be Opus).
    VorbisOgg = "vorbis.ogg", false, "audio/ogg";
    /// PCM s16le, mono, 48 kHz, RIFF WAVE. WhatsApp refuses it.
    ToneWav = "tone.wav", false, "audio/wav";
    /// FLAC, mono, 48 kHz. WhatsApp refuses it.
    ToneFlac = "tone.flac", false, "audio/flac";
    /// MP3 (MPEG-1 Layer III, libmp3lame, mono, 44.1 kHz), starting with an ID3v2 tag as
    /// ffmpeg writes it, then a Xing/Info frame. WhatsApp accepts it.
    ToneMp3 = "tone.mp3", true, "audio/mpeg";
    /// MPEG-1 Layer II (ffmpeg's `mp2`, mono, 48 kHz), raw frames. WhatsApp refuses it
    /// (`audio/mpeg` means MP3 there).
    ToneMp2 = "tone.mp2", false, "audio/mpeg";
    /// AAC-LC in ADTS frames (mono, 48 kHz). WhatsApp accepts it.
    ToneAac = "tone.aac", true, "audio/aac";
    /// AMR-NB (8 kHz mono, `#!AMR\n`). **Optional**: `None` unless ffmpeg has
    /// `libopencore_amrnb` (Debian's does not). WhatsApp accepts it.
    NbAmr = "nb.amr", true, "audio/amr";
    /// AMR-WB (16 kHz mono, `#!AMR-WB\n`). **Optional**: `None` unless ffmpeg has
    /// `libvo_amrwbenc` (Debian's does not). WhatsApp refuses it (AMR means AMR-NB).
    WbAmr = "wb.amr", false, "audio/amr";
    /// Opus (libopus, mono) in WebM, audio only: a browser's voice recording. WhatsApp
    /// refuses it.
    WebmOpus = "webm_opus.webm", false, "audio/webm";
    /// Baseline JPEG (SOF0, 8-bit, 3 components, yuvj420p, JFIF), 128×128, from ffmpeg's
    /// `mjpeg`. WhatsApp accepts it.
    PhotoJpg = "photo.jpg", true, "image/jpeg";
    /// Greyscale baseline JPEG (SOF0, 8-bit, 1 component), 128×128, from `jpeg-encoder`
    /// (ffmpeg 5.1's `mjpeg` cannot write greyscale). WhatsApp accepts it.
    GreyJpg = "grey.jpg", true, "image/jpeg";
    /// CMYK baseline JPEG (SOF0, 8-bit, 4 components, Adobe APP14 transform 0), 128×128, from
    /// `jpeg-encoder`'s `ColorType::Cmyk`. It also starts with a JFIF APP0 segment, so only
    /// the frame header tells it apart from a photo. WhatsApp refuses it (RGB only).
    CmykJpg = "cmyk.jpg", false, "image/jpeg";
    /// YCCK baseline JPEG (SOF0, 8-bit, 4 components, Adobe APP14 transform 2), 128×128, from
    /// `jpeg-encoder`'s `ColorType::CmykAsYcck`: what Photoshop writes for CMYK; JFIF APP0 first
    /// too. WhatsApp refuses it.
    YcckJpg = "ycck.jpg", false, "image/jpeg";
    /// PNG, 8-bit RGB (colour type 2), 128×128. WhatsApp accepts it.
    RgbPng = "rgb.png", true, "image/png";
    /// PNG, 8-bit RGBA (colour type 6), 128×128. WhatsApp accepts it.
    RgbaPng = "rgba.png", true, "image/png";
    /// PNG, palette (colour type 3, `pal8`), 128×128. WhatsApp refuses it (RGB or RGBA only).
    PalettePng = "palette.png", false, "image/png";
    /// PNG, 8-bit greyscale (colour type 0), 128×128. WhatsApp refuses it.
    GreyPng = "grey.png", false, "image/png";
    /// PNG, 16-bit RGB (`rgb48be`), 128×128. WhatsApp refuses it (8-bit only).
    Rgb48Png = "rgb48.png", false, "image/png";
    /// Lossy WebP (simple `VP8 `), 160×90: not a sticker's 512×512. WhatsApp refuses it
    /// (WebP only as a sticker).
    BannerWebp = "banner.webp", false, "image/webp";
    /// Static lossy WebP (simple `VP8 `), 512×512, under 100 KB: a sticker. WhatsApp accepts
    /// it (as a sticker).
    StickerWebp = "sticker.webp", true, "image/webp";
    /// GIF, one frame, 160×90. WhatsApp refuses it.
    BannerGif = "banner.gif", false, "image/gif";
}

impl Corpus {
    /// Whether making the file needs an encoder Debian's ffmpeg may lack; get such a file with
    /// [`optional`], which answers `None` then. [`file`] refuses these on every machine, so a
    /// test cannot pass here and fail where the encoder is missing.
    pub fn is_optional(self) -> bool {
        matches!(
            self,
            Corpus::Av1Mp4 | Corpus::H263Amr3gp | Corpus::VorbisOgg | Corpus::NbAmr | Corpus::WbAmr
        )
    }
}

/// A file of the corpus, made and checked.
#[derive(Debug)]
pub struct Made {
    pub corpus: Corpus,
    /// Where it is on disk (the shared cache: read it, never write it).
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// ffprobe's answer, once checked in this process (at once when made here).
    probe: OnceLock<Value>,
}

/// The bytes of a file that every ffmpeg can make. Panics (with why) if it cannot be made or
/// is not what it says, and for an [optional](Corpus::is_optional) one: use [`optional`].
pub fn file(c: Corpus) -> &'static [u8] {
    &required(c).bytes
}

/// Where [`file`]'s file is on disk.
pub fn path(c: Corpus) -> &'static Path {
    &required(c).path
}

/// The bytes of any file of the corpus, or `None` when it is [optional](Corpus::is_optional)
/// and this ffmpeg lacks its encoder (a line on stderr says which is missing).
pub fn optional(c: Corpus) -> Option<&'static [u8]> {
    get(c).map(|m| m.bytes.as_slice())
}

/// The made file, or `None` for an optional one whose encoder is missing.
pub fn get(c: Corpus) -> Option<&'static Made> {
    static MADE: [OnceLock<Option<Made>>; Corpus::ALL.len()] =
        [const { OnceLock::new() }; Corpus::ALL.len()];
    MADE[c as usize].get_or_init(|| make(c)).as_ref()
}

fn required(c: Corpus) -> &'static Made {
    assert!(
        !c.is_optional(),
        "{} needs an encoder ffmpeg may lack: use media::optional, which answers None then",
        c.name()
    );
    get(c).expect("a required corpus file is always made")
}

/// Makes (or reads from the cache) every file, several at a time; returns them in
/// [`Corpus::ALL`]'s order, `None` for optional ones whose encoder is missing.
pub fn all() -> Vec<(Corpus, Option<&'static Made>)> {
    // Twice the cores: the files are tiny, so much of each run is process start-up.
    let workers = std::thread::available_parallelism()
        .map_or(4, |n| 2 * n.get())
        .min(16);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&c) = Corpus::ALL.get(next.fetch_add(1, Ordering::Relaxed)) {
                    get(c);
                }
            });
        }
    });
    Corpus::ALL.iter().map(|&c| (c, get(c))).collect()
}

/// ffprobe's JSON answer (`format`, `streams`) for the file, checked in this process against
/// what the file must be: when it was made here that check is already done; a file read from
/// the cache is probed and checked now. Panics on a mismatch.
pub fn verify(c: Corpus) -> &'static Value {
    let made = get(c).unwrap_or_else(|| panic!("{} was not made on this machine", c.name()));
    made.probe.get_or_init(|| {
        let recipe = recipe(c).expect("a made file has a recipe");
        let probe = ffprobe(&made.path);
        recipe.expect.check(c.name(), &probe, &made.bytes);
        probe
    })
}

// ---- Byte-level readers, also for tests that check the corpus ----

/// The top-level boxes of an ISO-BMFF file: (type, offset, size), in file order. Stops at the
/// first box whose size does not fit.
pub fn top_level_boxes(bytes: &[u8]) -> Vec<([u8; 4], u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 8) {
        let mut size = u64::from(u32::from_be_bytes(head[..4].try_into().unwrap()));
        let kind: [u8; 4] = head[4..8].try_into().unwrap();
        if size == 1 {
            let Some(large) = bytes.get(at + 8..at + 16) else {
                break;
            };
            size = u64::from_be_bytes(large.try_into().unwrap());
        } else if size == 0 {
            size = (bytes.len() - at) as u64;
        }
        if size < 8 || at as u64 + size > bytes.len() as u64 {
            break;
        }
        out.push((kind, at as u64, size));
        at += size as usize;
    }
    out
}

/// The offset of the first top-level box of this type.
pub fn box_offset(bytes: &[u8], kind: &[u8; 4]) -> Option<u64> {
    top_level_boxes(bytes)
        .into_iter()
        .find(|(k, _, _)| k == kind)
        .map(|(_, at, _)| at)
}

/// An ISO-BMFF file's major brand (`ftyp`'s first four bytes), e.g. `*b"qt  "`.
pub fn major_brand(bytes: &[u8]) -> Option<[u8; 4]> {
    (bytes.get(4..8)? == b"ftyp").then(|| bytes[8..12].try_into().unwrap())
}

/// A JPEG's frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegFrame {
    /// The SOF marker's second byte: 0xC0 baseline, 0xC1 extended, 0xC2 progressive…
    pub sof: u8,
    /// Bits per sample (8, or 12 in extended JPEGs).
    pub precision: u8,
    pub height: u16,
    pub width: u16,
    /// 1 greyscale, 3 YCbCr (or RGB), 4 CMYK or YCCK.
    pub components: u8,
}

/// Reads the first SOF segment of a JPEG (walking the marker segments before it).
pub fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        let marker = *bytes.get(at + 1)?;
        if bytes[at] != 0xFF {
            return None;
        }
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes(
            bytes.get(at + 2..at + 4)?.try_into().ok()?,
        ));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = bytes.get(at + 4..at + 2 + len)?;
            return Some(JpegFrame {
                sof: marker,
                precision: seg[0],
                height: u16::from_be_bytes([seg[1], seg[2]]),
                width: u16::from_be_bytes([seg[3], seg[4]]),
                components: seg[5],
            });
        }
        if marker == 0xDA {
            return None; // scan data before any frame header
        }
        at += 2 + len;
    }
}

/// The first MPEG audio frame header after any ID3v2 tag: (version, layer), e.g. (1, 3) for
/// MPEG-1 Layer III; version 2 covers MPEG-2 and 2.5.
pub fn mpeg_audio_frame(bytes: &[u8]) -> Option<(u8, u8)> {
    let mut at = 0;
    if bytes.get(..3)? == b"ID3" {
        let size = bytes
            .get(6..10)?
            .iter()
            .fold(0usize, |n, &b| (n << 7) | usize::from(b & 0x7F));
        at = 10 + size;
    }
    let h = bytes.get(at..at + 2)?;
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = if (h[1] >> 3) & 3 == 3 { 1 } else { 2 };
    let layer = match (h[1] >> 1) & 3 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    Some((version, layer))
}

// ---- Recipes and what is expected of them ----

/// The lavfi sources: 1 s of `testsrc2` at 128×128, and 1 s of a tone at 48 kHz.
const VIDEO: &str = "-f lavfi -i testsrc2=size=128x128:rate=25:duration=1";
const TONE: &str = "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=1";
/// A still picture's source and the image muxer for one frame to one file.
const STILL: &str = "-f lavfi -i testsrc2=size=128x128:rate=1:duration=1 -frames:v 1";
const BANNER: &str = "-f lavfi -i testsrc2=size=160x90:rate=1:duration=1 -frames:v 1";
const H264: &str = "-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p";
const ISO: &str = "mov,mp4,m4a,3gp,3g2,mj2";

#[derive(Debug)]
enum Make {
    /// ffmpeg's arguments between the common flags and the output path.
    Ffmpeg(String),
    /// One `testsrc2` frame from ffmpeg as raw `pix_fmt` pixels, encoded by `jpeg-encoder`.
    Jpeg {
        pix_fmt: &'static str,
        color: jpeg_encoder::ColorType,
    },
}

#[derive(Debug)]
struct Recipe {
    make: Make,
    expect: Expect,
}

/// Where `moov` must be.
#[derive(Debug, Clone, Copy)]
enum Moov {
    BeforeMdat,
    AfterMdatPastFirstBytes,
}

#[derive(Debug, Default)]
struct Expect {
    /// ffprobe's `format_name`.
    format: &'static str,
    brand: Option<&'static str>,
    streams: Vec<Stream>,
    moov: Option<Moov>,
    /// (SOF marker, components) of a JPEG, checked in its bytes.
    jpeg: Option<(u8, u8)>,
    /// What the bytes must start with.
    magic: Option<&'static [u8]>,
    max_len: Option<usize>,
}

#[derive(Debug, Default, Clone)]
struct Stream {
    kind: &'static str,
    codec: &'static str,
    tag: Option<&'static str>,
    profile: Option<&'static str>,
    pix_fmt: Option<&'static str>,
    channels: Option<u64>,
    sample_rate: Option<u64>,
    size: Option<(u64, u64)>,
}

fn video(codec: &'static str) -> Stream {
    Stream {
        kind: "video",
        codec,
        ..Stream::default()
    }
}

fn audio(codec: &'static str) -> Stream {
    Stream {
        kind: "audio",
        codec,
        ..Stream::default()
    }
}

impl Stream {
    fn tag(self, tag: &'static str) -> Self {
        Self {
            tag: Some(tag),
            ..self
        }
    }
    fn profile(self, profile: &'static str) -> Self {
        Self {
            profile: Some(profile),
            ..self
        }
    }
    fn pix(self, pix_fmt: &'static str) -> Self {
        Self {
            pix_fmt: Some(pix_fmt),
            ..self
        }
    }
    fn mono(self, sample_rate: u64) -> Self {
        Self {
            channels: Some(1),
            sample_rate: Some(sample_rate),
            ..self
        }
    }
    fn stereo(self, sample_rate: u64) -> Self {
        Self {
            channels: Some(2),
            sample_rate: Some(sample_rate),
            ..self
        }
    }
    fn size(self, w: u64, h: u64) -> Self {
        Self {
            size: Some((w, h)),
            ..self
        }
    }
}

fn h264() -> Stream {
    video("h264")
        .tag("avc1")
        .profile("High")
        .pix("yuv420p")
        .size(128, 128)
}

fn aac() -> Stream {
    audio("aac").tag("mp4a").profile("LC").mono(48000)
}

fn iso(brand: &'static str, streams: Vec<Stream>) -> Expect {
    Expect {
        format: ISO,
        brand: Some(brand),
        streams,
        ..Expect::default()
    }
}

fn one(format: &'static str, stream: Stream) -> Expect {
    Expect {
        format,
        streams: vec![stream],
        ..Expect::default()
    }
}

fn has_encoder(name: &str) -> bool {
    static ENCODERS: LazyLock<HashSet<String>> = LazyLock::new(|| {
        install_ffmpeg();
        let out = run(
            Command::new("ffmpeg").args(["-hide_banner", "-encoders"]),
            "ffmpeg -encoders",
        );
        String::from_utf8_lossy(&out)
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("------"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    });
    ENCODERS.contains(name)
}

/// How to make `c` and what it must be; `Err` names the encoder this ffmpeg lacks.
fn recipe(c: Corpus) -> Result<Recipe, String> {
    use Corpus::*;
    let ffmpeg = |args: String, expect: Expect| Recipe {
        make: Make::Ffmpeg(args),
        expect,
    };
    // ffprobe reads a 4-component JPEG's pixel format differently from one ffmpeg version to
    // the next (5.1: none for CMYK, yuva444p for YCCK), so those are checked in the frame
    // header's component count only.
    let jpeg = |pix_fmt, color, components: u8, probed_pix: Option<&'static str>| Recipe {
        make: Make::Jpeg { pix_fmt, color },
        expect: Expect {
            jpeg: Some((0xC0, components)),
            ..one(
                "image2",
                Stream {
                    pix_fmt: probed_pix,
                    ..video("mjpeg").profile("Baseline").size(128, 128)
                },
            )
        },
    };
    let recipe = match c {
        H264AacMp4 => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a aac -movflags +faststart -f mp4"),
            Expect {
                moov: Some(Moov::BeforeMdat),
                ..iso("isom", vec![h264(), aac()])
            },
        ),
        H264OnlyMp4 => ffmpeg(format!("{VIDEO} {H264} -f mp4"), iso("isom", vec![h264()])),
        H264AacMoovLastMp4 => ffmpeg(
            "-f lavfi -i testsrc2=size=320x240:rate=25:duration=2,noise=alls=60:allf=t \
             -f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 \
             -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -b:v 1000k \
             -c:a aac -f mp4"
                .into(),
            Expect {
                moov: Some(Moov::AfterMdatPastFirstBytes),
                max_len: Some(16_000_000),
                ..iso("isom", vec![h264().size(320, 240), aac()])
            },
        ),
        HevcMp4 | HevcHev1Mp4 => {
            let tag = if c == HevcMp4 { "hvc1" } else { "hev1" };
            ffmpeg(
                format!(
                    "{VIDEO} -c:v libx265 -preset ultrafast -x265-params log-level=error \
                     -pix_fmt yuv420p -tag:v {tag} -f mp4"
                ),
                iso(
                    "isom",
                    vec![video("hevc").tag(tag).profile("Main").pix("yuv420p")],
                ),
            )
        }
        Vp9Mp4 => ffmpeg(
            format!("{VIDEO} -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -f mp4"),
            iso("isom", vec![video("vp9").tag("vp09").size(128, 128)]),
        ),
        Av1Mp4 => {
            let settings = if has_encoder("libaom-av1") {
                "-c:v libaom-av1 -usage realtime -cpu-used 8"
            } else if has_encoder("libsvtav1") {
                "-c:v libsvtav1 -preset 12"
            } else if has_encoder("librav1e") {
                "-c:v librav1e -speed 10"
            } else {
                return Err("an AV1 encoder (libaom-av1, libsvtav1 or librav1e)".into());
            };
            ffmpeg(
                format!("{VIDEO} {settings} -pix_fmt yuv420p -f mp4"),
                iso("isom", vec![video("av1").tag("av01").size(128, 128)]),
            )
        }
        Mpeg4Part2Mp4 => ffmpeg(
            format!("{VIDEO} -c:v mpeg4 -f mp4"),
            iso("isom", vec![video("mpeg4").tag("mp4v").size(128, 128)]),
        ),
        H264AacMov => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a aac -f mov"),
            iso("qt  ", vec![h264(), aac()]),
        ),
        TwoAacTracksMp4 => ffmpeg(
            format!(
                "{VIDEO} {TONE} -f lavfi -i sine=frequency=660:sample_rate=48000:duration=1 \
                 -map 0:v -map 1:a -map 2:a {H264} -c:a aac -f mp4"
            ),
            iso("isom", vec![h264(), aac(), aac()]),
        ),
        H264OpusMp4 => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a libopus -strict -2 -f mp4"),
            iso("isom", vec![h264(), audio("opus").tag("Opus").mono(48000)]),
        ),
        H264Mp3Mp4 => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a libmp3lame -f mp4"),
            iso("isom", vec![h264(), audio("mp3").tag("mp4a").mono(48000)]),
        ),
        H264Ac3Mp4 => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a ac3 -f mp4"),
            iso("isom", vec![h264(), audio("ac3").tag("ac-3").mono(48000)]),
        ),
        AacM4a => ffmpeg(format!("{TONE} -c:a aac -f ipod"), iso("M4A ", vec![aac()])),
        AlacM4a => ffmpeg(
            format!("{TONE} -c:a alac -f ipod"),
            iso("M4A ", vec![audio("alac").tag("alac").mono(48000)]),
        ),
        H264Aac3gp => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a aac -f 3gp"),
            iso("3gp6", vec![h264(), aac()]),
        ),
        H263Amr3gp => ffmpeg(
            "-f lavfi -i testsrc2=size=176x144:rate=15:duration=1 \
             -f lavfi -i sine=frequency=440:sample_rate=8000:duration=1 \
             -c:v h263 -c:a libopencore_amrnb -ar 8000 -ac 1 -b:a 12.2k -f 3gp"
                .into(),
            Expect {
                format: ISO,
                streams: vec![video("h263").size(176, 144), audio("amr_nb").mono(8000)],
                ..Expect::default()
            },
        ),
        H264Aac3g2 => ffmpeg(
            format!("{VIDEO} {TONE} {H264} -c:a aac -f 3g2"),
            iso("3g2b", vec![h264(), aac()]),
        ),
        MonoOpusOgg => ffmpeg(
            format!("{TONE} -c:a libopus -ac 1 -f ogg"),
            Expect {
                magic: Some(b"OggS"),
                ..one("ogg", audio("opus").mono(48000))
            },
        ),
        StereoOpusOgg => ffmpeg(
            format!("{TONE} -c:a libopus -ac 2 -f ogg"),
            Expect {
                magic: Some(b"OggS"),
                ..one("ogg", audio("opus").stereo(48000))
            },
        ),
        VorbisOgg => ffmpeg(
            format!("{TONE} -c:a libvorbis -ac 1 -f ogg"),
            Expect {
                magic: Some(b"OggS"),
                ..one("ogg", audio("vorbis").mono(48000))
            },
        ),
        ToneWav => ffmpeg(
            format!("{TONE} -c:a pcm_s16le -f wav"),
            Expect {
                magic: Some(b"RIFF"),
                ..one("wav", audio("pcm_s16le").mono(48000))
            },
        ),
        ToneFlac => ffmpeg(
            format!("{TONE} -c:a flac -f flac"),
            Expect {
                magic: Some(b"fLaC"),
                ..one("flac", audio("flac").mono(48000))
            },
        ),
        ToneMp3 => ffmpeg(
            "-f lavfi -i sine=frequency=440:sample_rate=44100:duration=1 \
             -c:a libmp3lame -f mp3"
                .into(),
            Expect {
                magic: Some(b"ID3"),
                ..one("mp3", audio("mp3").mono(44100))
            },
        ),
        ToneMp2 => ffmpeg(
            format!("{TONE} -c:a mp2 -f mp2"),
            Expect {
                magic: Some(&[0xFF]),
                ..one("mp3", audio("mp2").mono(48000))
            },
        ),
        ToneAac => ffmpeg(
            format!("{TONE} -c:a aac -f adts"),
            Expect {
                magic: Some(&[0xFF]),
                ..one("aac", audio("aac").profile("LC").mono(48000))
            },
        ),
        NbAmr => ffmpeg(
            "-f lavfi -i sine=frequency=440:sample_rate=8000:duration=1 \
             -c:a libopencore_amrnb -ar 8000 -ac 1 -b:a 12.2k -f amr"
                .into(),
            Expect {
                magic: Some(b"#!AMR\n"),
                ..one("amr", audio("amr_nb").mono(8000))
            },
        ),
        WbAmr => ffmpeg(
            "-f lavfi -i sine=frequency=440:sample_rate=16000:duration=1 \
             -c:a libvo_amrwbenc -ar 16000 -ac 1 -b:a 23.85k -f amr"
                .into(),
            Expect {
                magic: Some(b"#!AMR-WB\n"),
                ..one("amr", audio("amr_wb").mono(16000))
            },
        ),
        WebmOpus => ffmpeg(
            format!("{TONE} -c:a libopus -ac 1 -f webm"),
            Expect {
                magic: Some(&[0x1A, 0x45, 0xDF, 0xA3]),
                ..one("matroska,webm", audio("opus").mono(48000))
            },
        ),
        PhotoJpg => ffmpeg(
            format!("{STILL} -c:v mjpeg -pix_fmt yuvj420p -q:v 4 -f image2 -update 1"),
            Expect {
                jpeg: Some((0xC0, 3)),
                ..one(
                    "image2",
                    video("mjpeg")
                        .profile("Baseline")
                        .pix("yuvj420p")
                        .size(128, 128),
                )
            },
        ),
        GreyJpg => jpeg("gray", jpeg_encoder::ColorType::Luma, 1, Some("gray")),
        CmykJpg => jpeg("rgb24", jpeg_encoder::ColorType::Cmyk, 4, None),
        YcckJpg => jpeg("rgb24", jpeg_encoder::ColorType::CmykAsYcck, 4, None),
        RgbPng | RgbaPng | PalettePng | GreyPng | Rgb48Png => {
            let pix = match c {
                RgbPng => "rgb24",
                RgbaPng => "rgba",
                PalettePng => "pal8",
                GreyPng => "gray",
                _ => "rgb48be",
            };
            ffmpeg(
                format!("{STILL} -c:v png -pix_fmt {pix} -f image2 -update 1"),
                Expect {
                    magic: Some(b"\x89PNG\r\n\x1a\n"),
                    ..one("png_pipe", video("png").pix(pix).size(128, 128))
                },
            )
        }
        BannerWebp => ffmpeg(
            format!("{BANNER} -c:v libwebp -quality 75 -f webp"),
            Expect {
                magic: Some(b"RIFF"),
                ..one("webp_pipe", video("webp").size(160, 90))
            },
        ),
        StickerWebp => ffmpeg(
            "-f lavfi -i testsrc2=size=512x512:rate=1:duration=1 -frames:v 1 \
             -c:v libwebp -quality 50 -f webp"
                .into(),
            Expect {
                magic: Some(b"RIFF"),
                max_len: Some(100_000),
                ..one("webp_pipe", video("webp").size(512, 512))
            },
        ),
        BannerGif => ffmpeg(
            format!("{BANNER} -c:v gif -f gif"),
            Expect {
                magic: Some(b"GIF89a"),
                ..one("gif", video("gif").size(160, 90))
            },
        ),
    };
    if let Make::Ffmpeg(args) = &recipe.make {
        let mut words = args.split_whitespace();
        while let Some(w) = words.next() {
            if matches!(w, "-c:v" | "-c:a")
                && let Some(encoder) = words.next()
                && !has_encoder(encoder)
            {
                return Err(format!("the {encoder} encoder"));
            }
        }
    }
    Ok(recipe)
}

impl Expect {
    /// Compares ffprobe's answer and the bytes with what the file must be; panics listing
    /// every difference and ffprobe's whole answer.
    fn check(&self, name: &str, probe: &Value, bytes: &[u8]) {
        let mut wrong = Vec::new();
        let fmt = &probe["format"];
        if fmt["format_name"] != self.format {
            wrong.push(format!(
                "container {} (expected {})",
                fmt["format_name"], self.format
            ));
        }
        if let Some(brand) = self.brand {
            if fmt["tags"]["major_brand"] != brand {
                wrong.push(format!(
                    "major brand {} (expected {brand:?})",
                    fmt["tags"]["major_brand"]
                ));
            }
            if major_brand(bytes) != Some(brand.as_bytes().try_into().unwrap()) {
                wrong.push(format!("ftyp does not start with brand {brand:?}"));
            }
        }
        let streams = probe["streams"].as_array().cloned().unwrap_or_default();
        if streams.len() != self.streams.len() {
            wrong.push(format!(
                "{} streams (expected {})",
                streams.len(),
                self.streams.len()
            ));
        }
        for (i, (got, want)) in streams.iter().zip(&self.streams).enumerate() {
            let mut field = |key: &str, expected: Option<Value>| {
                if let Some(expected) = expected
                    && got[key] != expected
                {
                    wrong.push(format!(
                        "stream {i}: {key} {} (expected {expected})",
                        got[key]
                    ));
                }
            };
            field("codec_type", Some(want.kind.into()));
            field("codec_name", Some(want.codec.into()));
            field("codec_tag_string", want.tag.map(Value::from));
            field("profile", want.profile.map(Value::from));
            field("pix_fmt", want.pix_fmt.map(Value::from));
            field("channels", want.channels.map(Value::from));
            field(
                "sample_rate",
                want.sample_rate.map(|r| Value::from(r.to_string())),
            );
            field("width", want.size.map(|s| Value::from(s.0)));
            field("height", want.size.map(|s| Value::from(s.1)));
        }
        if let Some(moov) = self.moov {
            let (m, d) = (box_offset(bytes, b"moov"), box_offset(bytes, b"mdat"));
            let ok = match (moov, m, d) {
                (Moov::BeforeMdat, Some(m), Some(d)) => m < d,
                (Moov::AfterMdatPastFirstBytes, Some(m), Some(d)) => d < m && m > FIRST_BYTES,
                _ => false,
            };
            if !ok {
                wrong.push(format!("moov at {m:?}, mdat at {d:?} (expected {moov:?})"));
            }
        }
        if let Some((sof, components)) = self.jpeg {
            let frame = jpeg_frame(bytes);
            if frame.map(|f| (f.sof, f.precision, f.components)) != Some((sof, 8, components)) {
                wrong.push(format!(
                    "JPEG frame {frame:?} (expected SOF {sof:#x}, 8-bit, {components} components)"
                ));
            }
        }
        if let Some(magic) = self.magic
            && !bytes.starts_with(magic)
        {
            wrong.push(format!(
                "starts with {:02x?} (expected {magic:02x?})",
                &bytes[..bytes.len().min(12)]
            ));
        }
        if let Some(max) = self.max_len
            && bytes.len() > max
        {
            wrong.push(format!("{} bytes (at most {max})", bytes.len()));
        }
        assert!(
            wrong.is_empty(),
            "the corpus file {name} is not what it says:\n  {}\nffprobe: {probe:#}",
            wrong.join("\n  ")
        );
    }
}

// ---- Making, caching, running ----

fn install_ffmpeg() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-ffmpeg.sh");
        let status = Command::new("bash")
            .arg(script)
            .stdin(Stdio::null())
            .status()
            .expect("run scripts/install-ffmpeg.sh");
        assert!(
            status.success(),
            "scripts/install-ffmpeg.sh failed ({status}): the media corpus needs Debian's ffmpeg"
        );
    });
}

/// The cache directory, and ffmpeg's version line (part of every file's key).
fn cache() -> &'static (PathBuf, String) {
    static CACHE: LazyLock<(PathBuf, String)> = LazyLock::new(|| {
        install_ffmpeg();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media-corpus");
        std::fs::create_dir_all(&dir).expect("create the media corpus cache directory");
        let out = run(Command::new("ffmpeg").arg("-version"), "ffmpeg -version");
        let version = String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        (dir, version)
    });
    &CACHE
}

fn make(c: Corpus) -> Option<Made> {
    let recipe = match recipe(c) {
        Ok(r) => r,
        Err(missing) => {
            assert!(
                c.is_optional(),
                "cannot make {}: this ffmpeg lacks {missing}",
                c.name()
            );
            eprintln!(
                "media corpus: {} skipped: this ffmpeg lacks {missing}",
                c.name()
            );
            return None;
        }
    };
    let (path, bytes, probe) = make_file(c.name(), &recipe);
    Some(Made {
        corpus: c,
        path,
        bytes,
        probe: probe.map(OnceLock::from).unwrap_or_default(),
    })
}

/// Makes the file `name` by `recipe` into the cache, or reads it from there; the probe is
/// `Some` when it was made (and checked) now.
fn make_file(name: &str, recipe: &Recipe) -> (PathBuf, Vec<u8>, Option<Value>) {
    let (dir, version) = cache();
    let key = hex::encode(Sha256::digest(format!(
        "{CORPUS_VERSION}\n{version}\n{recipe:?}"
    )));
    let path = dir.join(format!("{}-{}", &key[..16], name));
    if let Ok(bytes) = std::fs::read(&path) {
        return (path, bytes, None);
    }
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        name
    ));
    match &recipe.make {
        Make::Ffmpeg(args) => {
            run(
                ffmpeg_command().args(args.split_whitespace()).arg(&tmp),
                &format!("ffmpeg {args} (making {name})"),
            );
        }
        Make::Jpeg { pix_fmt, color } => {
            let raw = run(
                ffmpeg_command()
                    .args(STILL.split_whitespace())
                    .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]),
                &format!("ffmpeg's raw frame for {name}"),
            );
            let pixels = match color {
                jpeg_encoder::ColorType::Cmyk | jpeg_encoder::ColorType::CmykAsYcck => {
                    cmyk_from_rgb(&raw)
                }
                _ => raw,
            };
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 85)
                .encode(&pixels, 128, 128, *color)
                .unwrap_or_else(|e| panic!("jpeg-encoder for {name}: {e}"));
            std::fs::write(&tmp, out).expect("write a corpus JPEG");
        }
    }
    let bytes = std::fs::read(&tmp).expect("read the file ffmpeg made");
    let probe = ffprobe(&tmp);
    recipe.expect.check(name, &probe, &bytes);
    std::fs::rename(&tmp, &path).expect("move a corpus file into the cache");
    // Older versions of this file (another recipe or ffmpeg) are not needed any more. Another
    // process that still wants one and misses it makes it again.
    let current = path.file_name().unwrap();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let other = entry.file_name();
        let other = other.to_string_lossy();
        if other.len() == 17 + name.len()
            && other.ends_with(&format!("-{name}"))
            && other != current.to_string_lossy()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    (path, bytes, Some(probe))
}

/// CMYK (0 = no ink, as `jpeg-encoder` takes it) from RGB, by the naive formula.
fn cmyk_from_rgb(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| {
            let max = p[0].max(p[1]).max(p[2]);
            let k = 255 - max;
            let ink = |v: u8| {
                if max == 0 {
                    0
                } else {
                    (u16::from(max - v) * 255 / u16::from(max)) as u8
                }
            };
            [ink(p[0]), ink(p[1]), ink(p[2]), k]
        })
        .collect()
}

fn ffmpeg_command() -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]);
    cmd
}

fn ffprobe(path: &Path) -> Value {
    let out = run(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_format",
                "-show_streams",
                "-of",
                "json",
            ])
            .arg(path),
        &format!("ffprobe {}", path.display()),
    );
    serde_json::from_slice(&out).expect("ffprobe answers JSON")
}

/// Runs `cmd` without standard input, killing it after [`TIMEOUT`]; returns its standard
/// output, and panics with its standard error if it fails.
fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took more than {TIMEOUT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "{what} failed ({status}):\n{}",
        String::from_utf8_lossy(&err)
    );
    out
}

// ---- Conversion inputs ----
//
// The inputs of `tests/it/convert.rs` that the corpus above lacks. They are kept out of
// [`Corpus`] so the gate's corpus-wide tests (which make every file and run every refusal's
// fix) do not make or re-encode a 40 s 1080p clip; they are made, checked and cached the same
// way.

/// One conversion input. Its doc says what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// VP9 (128×128, 1 s) + Opus (mono), WebM: a browser's screen recording.
    Vp9Webm,
    /// H.264 (Constrained Baseline, as x264's `ultrafast` makes it; yuv420p, 1920×1080, 10 fps,
    /// 40 s of noisy `testsrc2` at 5 Mbit/s) + AAC-LC, MP4: about 25 MB, too large for WhatsApp's 16 MB until its bitrate
    /// is chosen from its duration.
    Long1080pMp4,
    /// Lossy WebP, 800×600, opaque: a banner, not a sticker.
    Banner800Webp,
    /// Lossy WebP with an alpha channel (half transparent), 200×100.
    AlphaWebp,
    /// PNG, 8-bit RGB, 300×300: WhatsApp accepts it as an image; a sticker only when made one.
    Square300Png,
    /// PNG, 8-bit RGB, 4000×3000 of heavy noise: over 5 MB, and over 5 MB as a good JPEG too.
    NoisyPng,
}

impl Input {
    pub const ALL: [Input; 6] = [
        Input::Vp9Webm,
        Input::Long1080pMp4,
        Input::Banner800Webp,
        Input::AlphaWebp,
        Input::Square300Png,
        Input::NoisyPng,
    ];

    /// The file name.
    pub fn name(self) -> &'static str {
        match self {
            Input::Vp9Webm => "vp9_opus.webm",
            Input::Long1080pMp4 => "long_1080p.mp4",
            Input::Banner800Webp => "banner_800x600.webp",
            Input::AlphaWebp => "alpha.webp",
            Input::Square300Png => "square_300.png",
            Input::NoisyPng => "noisy_4000x3000.png",
        }
    }

    fn recipe(self) -> Recipe {
        let ffmpeg = |args: String, expect: Expect| Recipe {
            make: Make::Ffmpeg(args),
            expect,
        };
        let webp = |size: &str, filter: &str, w, h| {
            ffmpeg(
                format!(
                    "-f lavfi -i testsrc2=size={size}:rate=1:duration=1{filter} -frames:v 1 \
                     -c:v libwebp -quality 75 -f webp"
                ),
                Expect {
                    magic: Some(b"RIFF"),
                    ..one("webp_pipe", video("webp").size(w, h))
                },
            )
        };
        match self {
            Input::Vp9Webm => ffmpeg(
                format!(
                    "{VIDEO} {TONE} -c:v libvpx-vp9 -deadline realtime -cpu-used 8 \
                     -c:a libopus -ac 1 -f webm"
                ),
                Expect {
                    format: "matroska,webm",
                    streams: vec![video("vp9").size(128, 128), audio("opus").mono(48000)],
                    ..Expect::default()
                },
            ),
            Input::Long1080pMp4 => ffmpeg(
                "-f lavfi -i testsrc2=size=1920x1080:rate=10:duration=40,noise=alls=40:allf=t \
                 -f lavfi -i sine=frequency=440:sample_rate=48000:duration=40 \
                 -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
                 -b:v 5000k -maxrate 5000k -bufsize 5000k -c:a aac -movflags +faststart -f mp4"
                    .into(),
                Expect {
                    moov: Some(Moov::BeforeMdat),
                    ..iso(
                        "isom",
                        vec![
                            h264().profile("Constrained Baseline").size(1920, 1080),
                            aac(),
                        ],
                    )
                },
            ),
            Input::Banner800Webp => webp("800x600", "", 800, 600),
            Input::AlphaWebp => webp("200x100", ",format=rgba,colorchannelmixer=aa=0.5", 200, 100),
            Input::Square300Png => ffmpeg(
                "-f lavfi -i testsrc2=size=300x300:rate=1:duration=1 -frames:v 1 \
                 -c:v png -pix_fmt rgb24 -f image2 -update 1"
                    .into(),
                Expect {
                    magic: Some(b"\x89PNG\r\n\x1a\n"),
                    ..one("png_pipe", video("png").pix("rgb24").size(300, 300))
                },
            ),
            Input::NoisyPng => ffmpeg(
                "-f lavfi -i testsrc2=size=4000x3000:rate=1:duration=1,noise=alls=100:allf=u \
                 -frames:v 1 -c:v png -pix_fmt rgb24 -f image2 -update 1"
                    .into(),
                Expect {
                    magic: Some(b"\x89PNG\r\n\x1a\n"),
                    ..one("png_pipe", video("png").pix("rgb24").size(4000, 3000))
                },
            ),
        }
    }
}

/// A made conversion input, with ffprobe's answer on it.
#[derive(Debug)]
pub struct InputFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub probe: Value,
}

/// The conversion input `i`, made (or read from the cache) and checked once per process.
pub fn input(i: Input) -> &'static InputFile {
    static MADE: [OnceLock<InputFile>; Input::ALL.len()] =
        [const { OnceLock::new() }; Input::ALL.len()];
    MADE[i as usize].get_or_init(|| {
        let recipe = i.recipe();
        let (path, bytes, probe) = make_file(i.name(), &recipe);
        let probe = probe.unwrap_or_else(|| {
            let probe = ffprobe(&path);
            recipe.expect.check(i.name(), &probe, &bytes);
            probe
        });
        InputFile { path, bytes, probe }
    })
}

/// ffprobe's JSON answer (`format`, `streams`) on any file, e.g. a converted asset.
pub fn probe(path: &Path) -> Value {
    ffprobe(path)
}
