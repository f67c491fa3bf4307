//! What is inside an ISO base media file (MP4, M4A, 3GPP): the codec of every track.
//!
//! # Why
//!
//! Meta plays "H.264 video and AAC audio only, a single audio stream or none"
//! (../shared/WHATSAPP_MEDIA.md §3). The `ftyp` brand says nothing about codecs: an iPhone's
//! HEVC clip, a VP9 or AV1 export and an Opus-in-MP4 recording all carry `isom`/`mp42`. The
//! codec of a track is the four-character code of its sample entry, in
//! `moov/trak/mdia/minf/stbl/stsd` (ISO/IEC 14496-12 §8.5.2), and for `mp4a` the object type
//! in its `esds` decoder configuration (ISO/IEC 14496-1 §7.2.6.6; audio object types in
//! ISO/IEC 14496-3 §1.5.1.1).
//!
//! # Why hand-written
//!
//! Mozilla's `mp4parse` reads the whole file through `Read` and returns its own view of the
//! tracks, refusing files for reasons of its own (it is a playback front end); what is needed
//! here is narrower and must run on a stream as it is uploaded, without holding it: walk the
//! top-level boxes as the bytes go by, keep only `moov` (which may come after `mdat`), then
//! read a handful of fields from it. That is a few hundred lines over the box walk the
//! sniffer already does, with every size checked and every count bounded.
//!
//! # Bounds
//!
//! [`Walker`] keeps no more than one `moov` of at most [`MAX_MOOV`] bytes and a fixed-size
//! header buffer; [`tracks`] descends only along the fixed path above, reads at most
//! [`MAX_TRACKS`] tracks and [`MAX_ENTRIES`] sample entries per track, and never trusts a
//! size or count beyond the bytes it holds. A box tree that lies about sizes is an error, not a
//! long loop.

use std::fmt;

mod tracks;

#[cfg(test)]
use tracks::*;
pub use tracks::{Codec, Handler, Track, describe, judge, tracks};

/// The largest `moov` kept. A 16 MB H.264 clip's `moov` is a few hundred KB at most (its
/// sample tables: a few bytes per frame); 8 MiB leaves room for long, fragmented or
/// many-track files while bounding what one upload holds.
pub const MAX_MOOV: u64 = 8 << 20;
/// The most tracks read from a `moov`.
pub const MAX_TRACKS: usize = 64;
/// The most sample entries read from one `stsd`.
pub const MAX_ENTRIES: usize = 16;

/// Why the box structure cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoxError {
    /// A box size that cannot be (smaller than its header, or past its parent).
    BadSize { fourcc: FourCc, offset: u64 },
    /// The file ends inside a box.
    Truncated {
        fourcc: FourCc,
        offset: u64,
        claimed: u64,
        available: u64,
    },
    /// A second `moov`.
    TwoMoov,
    /// A `moov` larger than [`MAX_MOOV`].
    MoovTooLarge { size: u64 },
    /// No `moov` at all.
    NoMoov,
    /// More tracks than [`MAX_TRACKS`], or sample entries than [`MAX_ENTRIES`] in one track.
    TooMany { what: &'static str, limit: usize },
}

impl fmt::Display for BoxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoxError::BadSize { fourcc, offset } => {
                write!(f, "box '{fourcc}' at byte {offset} has an impossible size")
            }
            BoxError::Truncated {
                fourcc,
                offset,
                claimed,
                available,
            } => write!(
                f,
                "the file is truncated: box '{fourcc}' at byte {offset} is {claimed} bytes long \
                 but the file ends {available} bytes into it"
            ),
            BoxError::TwoMoov => f.write_str("the file has two 'moov' boxes"),
            BoxError::MoovTooLarge { size } => write!(
                f,
                "its 'moov' box is {size} bytes, more than the {MAX_MOOV} this server reads"
            ),
            BoxError::TooMany { what, limit } => write!(
                f,
                "it claims an absurd number of {what} (more than {limit}): a damaged or crafted file"
            ),
            BoxError::NoMoov => f.write_str(
                "it has no 'moov' box (no track descriptions): the file is truncated or not a \
                 finished recording",
            ),
        }
    }
}

/// A box type, shown as text when printable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FourCc(pub [u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{self}'")
    }
}

/// Streams the top-level boxes by, keeping only `moov`.
#[derive(Debug, Clone)]
pub struct Walker {
    /// Absolute offset of the next byte fed.
    pos: u64,
    state: State,
    moov: Option<Vec<u8>>,
    error: Option<BoxError>,
}

#[derive(Debug, Clone)]
enum State {
    /// Reading a box header (8 bytes, or 16 with a 64-bit size).
    Header { buf: [u8; 16], have: usize },
    /// Inside a box that is not kept: `left` bytes to go (`None`: to the end of the file).
    Skip {
        fourcc: FourCc,
        start: u64,
        size: Option<u64>,
        left: u64,
    },
    /// Inside `moov`: its bytes (header included) go to `moov`.
    Keep {
        start: u64,
        size: Option<u64>,
        left: u64,
    },
}

impl Default for Walker {
    fn default() -> Self {
        Self::new()
    }
}

impl Walker {
    pub fn new() -> Self {
        Walker {
            pos: 0,
            state: State::Header {
                buf: [0; 16],
                have: 0,
            },
            moov: None,
            error: None,
        }
    }

    /// Feed the next bytes of the file.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.error.is_none() {
            let used = self.step(data);
            self.pos += used as u64;
            data = &data[used..];
        }
    }

    /// One step of the state machine over `data`; returns how many bytes it used.
    fn step(&mut self, data: &[u8]) -> usize {
        match &mut self.state {
            State::Header { buf, have } => {
                let need = if *have >= 8 && be32(&buf[..4]) == 1 {
                    16
                } else {
                    8
                };
                let take = (need - *have).min(data.len());
                buf[*have..*have + take].copy_from_slice(&data[..take]);
                *have += take;
                if *have == need && !(need == 8 && be32(&buf[..4]) == 1) {
                    let (buf, have) = (*buf, *have);
                    let start = self.pos + take as u64 - have as u64;
                    self.open(&buf[..have], start);
                }
                take
            }
            State::Skip { left, size, .. } => {
                let take = body_take(*size, *left, data.len());
                self.body_done(take);
                take
            }
            State::Keep { left, size, .. } => {
                let take = body_take(*size, *left, data.len());
                let moov = self.moov.get_or_insert_with(Vec::new);
                if moov.len() as u64 + take as u64 > MAX_MOOV {
                    self.error = Some(BoxError::MoovTooLarge {
                        size: moov.len() as u64 + take as u64,
                    });
                    return take;
                }
                moov.extend_from_slice(&data[..take]);
                self.body_done(take);
                take
            }
        }
    }

    /// `took` bytes of the current box's body went by: at its end, read the next header.
    fn body_done(&mut self, took: usize) {
        let (State::Skip { left, size, .. } | State::Keep { left, size, .. }) = &mut self.state
        else {
            return;
        };
        if size.is_some() {
            *left -= took as u64;
            if *left == 0 {
                self.state = State::Header {
                    buf: [0; 16],
                    have: 0,
                };
            }
        }
    }

    /// A complete header `h` (8 or 16 bytes) has been read; the box starts at `start`.
    fn open(&mut self, h: &[u8], start: u64) {
        let fourcc = FourCc([h[4], h[5], h[6], h[7]]);
        let size = match be32(&h[..4]) {
            0 => None,
            1 => Some(be64(&h[8..16])),
            n => Some(u64::from(n)),
        };
        let header = h.len() as u64;
        if size.is_some_and(|s| s < header) {
            self.error = Some(BoxError::BadSize {
                fourcc,
                offset: start,
            });
            return;
        }
        let left = size.map_or(0, |s| s - header);
        if &fourcc.0 == b"moov" {
            if self.moov.is_some() {
                self.error = Some(BoxError::TwoMoov);
                return;
            }
            if let Some(s) = size.filter(|&s| s > MAX_MOOV) {
                self.error = Some(BoxError::MoovTooLarge { size: s });
                return;
            }
            let mut moov =
                Vec::with_capacity(usize::try_from(size.unwrap_or(0)).unwrap_or(0).min(1 << 20));
            moov.extend_from_slice(h);
            self.moov = Some(moov);
            self.state = State::Keep { start, size, left };
        } else {
            self.state = State::Skip {
                fourcc,
                start,
                size,
                left,
            };
        }
        if size.is_some() && left == 0 {
            self.state = State::Header {
                buf: [0; 16],
                have: 0,
            };
        }
    }

    /// The end of the file: the tracks, or why the structure cannot be read.
    pub fn finish(&self) -> Result<Vec<Track>, BoxError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.state {
            State::Header { have: 0, .. } => {}
            // A few zero bytes after the last box: padding some writers leave, as inside boxes.
            State::Header { buf, have } if have < 8 && buf[..have].iter().all(|&b| b == 0) => {}
            State::Header { buf, have } => {
                return Err(BoxError::Truncated {
                    fourcc: FourCc(if have >= 8 {
                        [buf[4], buf[5], buf[6], buf[7]]
                    } else {
                        *b"????"
                    }),
                    offset: self.pos - have as u64,
                    claimed: 8,
                    available: have as u64,
                });
            }
            State::Skip {
                fourcc,
                start,
                size: Some(size),
                left,
            } if left > 0 => {
                return Err(BoxError::Truncated {
                    fourcc,
                    offset: start,
                    claimed: size,
                    available: size - left,
                });
            }
            State::Keep {
                start,
                size: Some(size),
                left,
            } if left > 0 => {
                return Err(BoxError::Truncated {
                    fourcc: FourCc(*b"moov"),
                    offset: start,
                    claimed: size,
                    available: size - left,
                });
            }
            _ => {}
        }
        let moov = self.moov.as_deref().ok_or(BoxError::NoMoov)?;
        tracks(moov)
    }
}

/// How much of `available` bytes belong to the current box's body: all of them for a box that
/// runs to the end of the file (`size` None), else at most the `left` it still has.
fn body_take(size: Option<u64>, left: u64, available: usize) -> usize {
    match size {
        None => available,
        Some(_) => usize::try_from(left).unwrap_or(usize::MAX).min(available),
    }
}

/// The payload of the first child box of type `want`, if any.
pub(super) fn child<'a>(parent: &'a [u8], want: &[u8; 4]) -> Result<Option<&'a [u8]>, BoxError> {
    for b in Boxes::new(parent, 0) {
        let (fourcc, payload) = b?;
        if &fourcc.0 == want {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

/// The boxes laid end to end in `data` (which starts at `base` in its parent, for errors).
pub(super) struct Boxes<'a> {
    data: &'a [u8],
    at: usize,
    base: usize,
    failed: bool,
}

impl<'a> Boxes<'a> {
    pub(super) fn new(data: &'a [u8], base: usize) -> Self {
        Boxes {
            data,
            at: 0,
            base,
            failed: false,
        }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<(FourCc, &'a [u8]), BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.at..)?;
        // Fewer than 8 bytes left: padding some writers leave (e.g. a 4-byte zero terminator
        // in QuickTime atoms), not a box.
        if self.failed || rest.len() < 8 {
            return None;
        }
        let fourcc = FourCc([rest[4], rest[5], rest[6], rest[7]]);
        let (size, header) = match be32(&rest[..4]) {
            0 => (rest.len() as u64, 8),
            1 => match rest.get(8..16) {
                Some(b) => (be64(b), 16),
                None => (0, 16),
            },
            n => (u64::from(n), 8),
        };
        let bad = || BoxError::BadSize {
            fourcc,
            offset: (self.base + self.at) as u64,
        };
        if size < header as u64 || size > rest.len() as u64 {
            self.failed = true;
            return Some(Err(bad()));
        }
        let size = size as usize;
        self.at += size;
        Some(Ok((fourcc, &rest[header..size])))
    }
}

pub(super) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub(super) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

pub(super) fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Made by ffmpeg (see tests/fixtures/README.md): H.264 + AAC-LC, `moov` first.
    const H264_AAC: &[u8] = include_bytes!("../../../tests/fixtures/h264_aac.mp4");
    /// Made by ffmpeg: AAC-LC only, brand `M4A `.
    const AAC_M4A: &[u8] = include_bytes!("../../../tests/fixtures/aac.m4a");

    fn bx(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = (u32::try_from(payload.len() + 8).unwrap())
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(fourcc);
        v.extend_from_slice(payload);
        v
    }

    fn full(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(payload);
        bx(fourcc, &p)
    }

    /// A `trak` with handler `handler` and one sample entry `entry` (a whole box).
    fn trak(handler: &[u8; 4], entry: &[u8]) -> Vec<u8> {
        let mut hdlr = vec![0, 0, 0, 0];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0; 12]);
        hdlr.push(0);
        let mut stsd = 1u32.to_be_bytes().to_vec();
        stsd.extend_from_slice(entry);
        let stbl = bx(b"stbl", &full(b"stsd", &stsd));
        let minf = bx(b"minf", &stbl);
        let mut mdia = full(b"hdlr", &hdlr);
        mdia.extend_from_slice(&minf);
        bx(b"trak", &bx(b"mdia", &mdia))
    }

    /// A visual sample entry; `avc1`/`avc3` get an `avcC` of High profile.
    fn video_entry(fourcc: &[u8; 4]) -> Vec<u8> {
        avc_entry(fourcc, 100)
    }

    fn avc_entry(fourcc: &[u8; 4], profile: u8) -> Vec<u8> {
        let mut payload = vec![0; 78];
        if fourcc == b"avc1" || fourcc == b"avc3" {
            payload.extend_from_slice(&bx(b"avcC", &[1, profile, 0, 30, 0xff, 0xe0, 0]));
        }
        bx(fourcc, &payload)
    }

    /// An `mp4a` entry whose esds says object type indication `oti` and audio object `aot`.
    fn mp4a(oti: u8, aot: u8) -> Vec<u8> {
        // Object types from 31 up are escaped: 31, then 6 bits of (type - 32).
        let asc = if aot < 31 {
            [aot << 3, 0x08]
        } else {
            [0xf8 | ((aot - 32) >> 3), ((aot - 32) & 0x07) << 5]
        };
        let mut dsi = vec![0x05, asc.len() as u8];
        dsi.extend_from_slice(&asc);
        let mut dc = vec![oti, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        dc.extend_from_slice(&dsi);
        let mut dcd = vec![0x04, dc.len() as u8];
        dcd.extend_from_slice(&dc);
        let mut es = vec![0, 1, 0];
        es.extend_from_slice(&dcd);
        let mut esd = vec![0x03, 0x80, 0x80, es.len() as u8]; // a padded 4-byte length, as some muxers write
        esd.extend_from_slice(&es);
        let mut payload = vec![0; 28];
        payload.extend_from_slice(&full(b"esds", &esd));
        bx(b"mp4a", &payload)
    }

    fn file(traks: &[Vec<u8>]) -> Vec<u8> {
        let mut f = bx(b"ftyp", b"isom\0\0\x02\0isomiso2");
        f.extend_from_slice(&bx(b"moov", &traks.concat()));
        f.extend_from_slice(&bx(b"mdat", &[0xAB; 100]));
        f
    }

    fn walk(bytes: &[u8]) -> Result<Vec<Track>, BoxError> {
        let mut w = Walker::new();
        w.feed(bytes);
        w.finish()
    }

    #[test]
    fn real_h264_aac_and_m4a() {
        let t = walk(H264_AAC).unwrap();
        assert_eq!(describe(&t), "H.264 video, AAC-LC audio");
        assert_eq!(judge(&t, false), Ok(()));
        let t = walk(AAC_M4A).unwrap();
        assert_eq!(describe(&t), "AAC-LC audio");
        assert_eq!(judge(&t, true), Ok(()));
        assert!(judge(&t, false).unwrap_err().contains("no video track"));
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let mut w = Walker::new();
        for b in H264_AAC {
            w.feed(std::slice::from_ref(b));
        }
        assert_eq!(w.finish(), walk(H264_AAC));
    }

    #[test]
    fn moov_after_mdat_is_found() {
        let mut f = bx(b"ftyp", b"isom\0\0\x02\0isom");
        f.extend_from_slice(&bx(b"mdat", &vec![0u8; 200_000]));
        f.extend_from_slice(&bx(b"moov", &trak(b"vide", &video_entry(b"avc1"))));
        assert_eq!(describe(&walk(&f).unwrap()), "H.264 video");
    }

    #[test]
    fn codecs_are_named() {
        let cases: [(Vec<u8>, &[u8; 4], &str); 10] = [
            (video_entry(b"hvc1"), b"vide", "HEVC (H.265)"),
            (video_entry(b"hev1"), b"vide", "HEVC (H.265)"),
            (video_entry(b"vp09"), b"vide", "VP9"),
            (video_entry(b"av01"), b"vide", "AV1"),
            (video_entry(b"mp4v"), b"vide", "MPEG-4 Part 2 (Xvid/DivX)"),
            (bx(b"Opus", &[0; 28]), b"soun", "Opus"),
            (bx(b"ac-3", &[0; 28]), b"soun", "AC-3 (Dolby Digital)"),
            (bx(b"alac", &[0; 28]), b"soun", "ALAC (Apple Lossless)"),
            (mp4a(0x6b, 0), b"soun", "MP3"),
            (mp4a(0x40, 34), b"soun", "MP3"),
        ];
        for (entry, handler, name) in cases {
            let t = walk(&file(&[trak(handler, &entry)])).unwrap();
            assert_eq!(t[0].codecs[0].name(), name);
        }
        let he = walk(&file(&[trak(b"soun", &mp4a(0x40, 5))])).unwrap();
        assert_eq!(he[0].codecs, vec![Codec::Aac("HE-AAC")]);
        // Escaped object type 31 + 6 bits: 32 + 10 = 42, USAC.
        let asc_escape = audio_object_type(&[0b1111_1001, 0b0100_0000]);
        assert_eq!(asc_escape, Some(42));
    }

    #[test]
    fn whatsapps_rule() {
        let h264 = trak(b"vide", &video_entry(b"avc1"));
        let aac = trak(b"soun", &mp4a(0x40, 2));
        let judge_video = |traks: &[Vec<u8>]| judge(&walk(&file(traks)).unwrap(), false);
        assert_eq!(judge_video(std::slice::from_ref(&h264)), Ok(()));
        assert_eq!(judge_video(&[h264.clone(), aac.clone()]), Ok(()));
        assert_eq!(
            judge_video(&[trak(b"vide", &video_entry(b"hvc1")), aac.clone()]),
            Err("video codec HEVC (H.265); WhatsApp plays H.264 only".to_owned())
        );
        assert_eq!(
            judge_video(&[h264.clone(), aac.clone(), aac.clone()]),
            Err("it has 2 audio tracks; WhatsApp accepts a single audio track or none".to_owned())
        );
        assert_eq!(
            judge_video(&[h264.clone(), trak(b"soun", &bx(b"Opus", &[0; 28]))]),
            Err("audio codec Opus; WhatsApp plays AAC only".to_owned())
        );
        assert_eq!(
            judge_video(&[]),
            Err("it has no audio or video track".to_owned())
        );
        // Subtitles and timecode tracks do not count.
        assert_eq!(
            judge_video(&[
                h264.clone(),
                aac.clone(),
                trak(b"tmcd", &bx(b"tmcd", &[0; 20]))
            ]),
            Ok(())
        );
        // M4A: one AAC track and no video.
        assert!(
            judge(&walk(&file(&[h264, aac])).unwrap(), true)
                .unwrap_err()
                .contains("video track")
        );
    }

    #[test]
    fn h264_profiles_handlers_and_aac_profiles() {
        let video = |entry: Vec<u8>| judge(&walk(&file(&[trak(b"vide", &entry)])).unwrap(), false);
        for ok in [66, 77, 88, 100] {
            assert_eq!(video(avc_entry(b"avc1", ok)), Ok(()), "profile {ok}");
        }
        assert_eq!(
            video(avc_entry(b"avc1", 244)),
            Err(
                "video codec H.264 High 4:4:4 Predictive profile; WhatsApp plays 8-bit 4:2:0 \
                 H.264 (Baseline, Main or High profile) only"
                    .to_owned()
            )
        );
        assert!(
            video(avc_entry(b"avc3", 110))
                .unwrap_err()
                .contains("High 10")
        );
        assert!(
            video(bx(b"avc1", &[0; 78]))
                .unwrap_err()
                .contains("without a decoder configuration")
        );
        // An HEVC stream under a handler that is not `vide`, or no handler at all, is video.
        let h264 = trak(b"vide", &video_entry(b"avc1"));
        let aux = trak(b"auxv", &video_entry(b"hvc1"));
        assert!(
            judge(&walk(&file(&[h264.clone(), aux])).unwrap(), false)
                .unwrap_err()
                .contains("HEVC")
        );
        let mut stsd = 1u32.to_be_bytes().to_vec();
        stsd.extend_from_slice(&video_entry(b"hvc1"));
        let minf = bx(b"minf", &bx(b"stbl", &full(b"stsd", &stsd)));
        let no_hdlr = bx(b"trak", &bx(b"mdia", &minf));
        assert!(
            judge(&walk(&file(&[h264, no_hdlr])).unwrap(), false)
                .unwrap_err()
                .contains("HEVC")
        );
        // Timecode stays out of it.
        assert_eq!(
            walk(&file(&[trak(b"tmcd", &bx(b"tmcd", &[0; 20]))])).unwrap()[0].handler,
            Handler::Other(FourCc(*b"tmcd"))
        );
        // AAC profiles phones do not decode.
        let audio = |oti, aot| {
            judge(
                &walk(&file(&[trak(b"soun", &mp4a(oti, aot))])).unwrap(),
                true,
            )
        };
        assert_eq!(audio(0x40, 2), Ok(()));
        assert_eq!(audio(0x40, 29), Ok(()));
        assert_eq!(audio(0x67, 0), Ok(()));
        assert_eq!(
            audio(0x40, 1),
            Err(
                "audio codec AAC Main profile; WhatsApp plays AAC-LC, HE-AAC or AAC-LD/ELD only"
                    .to_owned()
            )
        );
        assert!(audio(0x40, 4).unwrap_err().contains("LTP"));
    }

    #[test]
    fn trailing_zero_padding_is_tolerated() {
        let mut f = H264_AAC.to_vec();
        f.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(walk(&f), walk(H264_AAC));
        f.push(1);
        assert!(matches!(walk(&f), Err(BoxError::Truncated { .. })));
        let mut g = H264_AAC.to_vec();
        g.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(walk(&g), Err(BoxError::Truncated { .. })));
    }

    #[test]
    fn lying_structures_are_errors() {
        // A box smaller than its header.
        let mut f = bx(b"ftyp", b"isom\0\0\0\0");
        f.extend_from_slice(&[0, 0, 0, 4, b'm', b'd', b'a', b't']);
        assert!(matches!(walk(&f), Err(BoxError::BadSize { .. })));
        // A box claiming more than the file holds.
        let mut f = bx(b"ftyp", b"isom\0\0\0\0");
        f.extend_from_slice(&[0, 0, 0x10, 0, b'm', b'd', b'a', b't', 1, 2, 3]);
        assert_eq!(
            walk(&f),
            Err(BoxError::Truncated {
                fourcc: FourCc(*b"mdat"),
                offset: 16,
                claimed: 4096,
                available: 11
            })
        );
        // A 64-bit size of 2^63.
        let mut f = bx(b"ftyp", b"isom\0\0\0\0");
        f.extend_from_slice(&[
            0, 0, 0, 1, b'm', b'o', b'o', b'v', 0x80, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert!(matches!(walk(&f), Err(BoxError::MoovTooLarge { .. })));
        // A child claiming past its parent.
        let mut f = bx(b"ftyp", b"isom\0\0\0\0");
        f.extend_from_slice(&bx(b"moov", &[0, 0, 1, 0, b't', b'r', b'a', b'k']));
        assert!(matches!(walk(&f), Err(BoxError::BadSize { .. })));
        // No moov.
        assert_eq!(walk(&bx(b"ftyp", b"isom\0\0\0\0")), Err(BoxError::NoMoov));
        // Two moov.
        let mut f = file(&[]);
        f.extend_from_slice(&bx(b"moov", &[]));
        assert_eq!(walk(&f), Err(BoxError::TwoMoov));
        // A moov that runs to the end of the file (size 0) beyond the limit.
        let mut w = Walker::new();
        w.feed(&[0, 0, 0, 0, b'm', b'o', b'o', b'v']);
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..9 {
            w.feed(&chunk);
        }
        assert!(matches!(w.finish(), Err(BoxError::MoovTooLarge { .. })));
    }

    #[test]
    fn absurd_counts_are_bounded() {
        // An stsd claiming 2^32-1 entries holds only what its bytes hold.
        let mut stsd = u32::MAX.to_be_bytes().to_vec();
        for _ in 0..100 {
            stsd.extend_from_slice(&video_entry(b"avc1"));
        }
        let stbl = bx(b"stbl", &full(b"stsd", &stsd));
        let mut mdia = full(b"hdlr", b"\0\0\0\0vide\0\0\0\0\0\0\0\0\0\0\0\0\0");
        mdia.extend_from_slice(&bx(b"minf", &stbl));
        // Past the cap is refused, not truncated: what lies beyond could be anything.
        assert_eq!(
            walk(&file(&[bx(b"trak", &bx(b"mdia", &mdia))])),
            Err(BoxError::TooMany {
                what: "sample descriptions",
                limit: MAX_ENTRIES
            })
        );
        let many: Vec<Vec<u8>> = (0..1000).map(|_| trak(b"soun", &mp4a(0x40, 2))).collect();
        assert_eq!(
            walk(&file(&many)),
            Err(BoxError::TooMany {
                what: "tracks",
                limit: MAX_TRACKS
            })
        );
        let just: Vec<Vec<u8>> = (0..MAX_TRACKS)
            .map(|_| trak(b"soun", &mp4a(0x40, 2)))
            .collect();
        assert_eq!(walk(&file(&just)).unwrap().len(), MAX_TRACKS);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes, and real files with bytes changed: never a panic, the same answer
        /// whatever the chunking.
        #[test]
        fn never_panics_and_chunking_does_not_matter(
            noise in proptest::collection::vec(any::<u8>(), 0..600),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            split in 1usize..97,
        ) {
            let mut real = H264_AAC.to_vec();
            for (at, b) in flips {
                let i = at.index(real.len());
                real[i] = b;
            }
            let real = &real[..cut.index(real.len() + 1)];
            for bytes in [&noise[..], real] {
                let whole = walk(bytes);
                let mut w = Walker::new();
                for c in bytes.chunks(split) {
                    w.feed(c);
                }
                prop_assert_eq!(w.finish(), whole.clone());
                if let Ok(t) = whole {
                    let _ = judge(&t, false);
                    let _ = describe(&t);
                }
            }
        }
    }
}
