//! A JPEG's frame header: sample precision, component count and colour transform.
//!
//! # Why
//!
//! Meta takes "8-bit, RGB or RGBA" images (../shared/WHATSAPP_MEDIA.md §3). A JPEG's bit
//! depth and colour model are in its start-of-frame segment (ITU-T T.81 §B.2.2): 12-bit
//! JPEGs and 4-component CMYK/YCCK ones (print exports from design tools) decode in few
//! phone image stacks. The frame header can sit after long APP segments (EXIF thumbnails,
//! ICC profiles, Photoshop resources), beyond any fixed sniffing window, so [`Walker`] follows
//! the segment lengths as the bytes stream by and keeps only the few bytes it reads.
//!
//! # Why hand-written
//!
//! Image decoders (`image`, `zune-jpeg`, `jpeg-decoder`) decode the whole image into memory
//! to answer this; the answer needs three fields and a walk over segment lengths.

use std::fmt;

/// What the frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The SOF marker's low nibble: 0 baseline, 1 extended, 2 progressive, 3 lossless…
    pub process: u8,
    /// Bits per sample: 8 or 12 (16 for lossless).
    pub precision: u8,
    /// 1 (greyscale), 3 (YCbCr or RGB) or 4 (CMYK or YCCK).
    pub components: u8,
    /// The Adobe APP14 colour transform, when that segment came first: 0 none (RGB or CMYK),
    /// 1 YCbCr, 2 YCCK.
    pub adobe_transform: Option<u8>,
}

impl Frame {
    /// Why WhatsApp would refuse this frame, if it would.
    pub fn problem(&self) -> Option<String> {
        if matches!(self.process, 3 | 7 | 11 | 15) {
            return Some(format!(
                "lossless JPEG ({}-bit); WhatsApp takes 8-bit baseline or progressive JPEG",
                self.precision
            ));
        }
        // Hierarchical (SOF5-7) and arithmetic-coded (SOF9-15) frames: phones' decoders
        // (libjpeg-turbo as built for them) take Huffman-coded SOF0-2 only.
        if self.process > 2 {
            return Some(format!(
                "{self}; WhatsApp takes baseline or progressive (Huffman-coded) JPEG"
            ));
        }
        if self.precision != 8 {
            return Some(format!(
                "{}-bit JPEG; WhatsApp takes 8-bit images only",
                self.precision
            ));
        }
        match self.components {
            1 | 3 => None,
            4 => Some(format!(
                "{} JPEG (4 colour components); WhatsApp takes RGB or greyscale JPEG only",
                if self.adobe_transform == Some(2) {
                    "YCCK"
                } else {
                    "CMYK"
                }
            )),
            n => Some(format!(
                "JPEG with {n} colour components; WhatsApp takes RGB or greyscale JPEG only"
            )),
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let colour = match (self.components, self.adobe_transform) {
            (1, _) => "greyscale",
            (3, Some(0)) => "RGB",
            (3, _) => "YCbCr",
            (4, Some(2)) => "YCCK",
            (4, _) => "CMYK",
            _ => "other",
        };
        let process = match self.process {
            0 => "baseline",
            1 => "extended",
            2 => "progressive",
            3 | 7 | 11 | 15 => "lossless",
            5 | 6 => "hierarchical",
            _ => "arithmetic-coded",
        };
        write!(f, "{}-bit {colour} {process} JPEG", self.precision)
    }
}

/// Why the frame header cannot be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// Bytes where a marker must be.
    NoMarker { offset: u64 },
    /// Image data or the end of the image before any frame header.
    NoFrame,
    /// The file ends inside a segment or before a frame header.
    Truncated,
}

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegError::NoMarker { offset } => {
                write!(f, "malformed JPEG: no segment marker at byte {offset}")
            }
            JpegError::NoFrame => {
                f.write_str("malformed JPEG: no frame header before the image data")
            }
            JpegError::Truncated => f.write_str("the JPEG is truncated before its frame header"),
        }
    }
}

/// Streams the segments by until the frame header.
#[derive(Debug, Clone)]
pub struct Walker {
    pos: u64,
    state: State,
    adobe: Option<u8>,
    result: Option<Result<Frame, JpegError>>,
}

#[derive(Debug, Clone)]
enum State {
    /// The two bytes of SOI.
    Start { have: usize },
    /// Looking for 0xFF then a marker code (extra 0xFF are fill bytes).
    Marker { seen_ff: bool },
    /// The two length bytes of segment `marker`.
    Length {
        marker: u8,
        buf: [u8; 2],
        have: usize,
    },
    /// A segment's payload: kept when it is SOF or Adobe APP14 (both short), else skipped.
    Payload {
        marker: u8,
        left: usize,
        kept: Vec<u8>,
        keep: bool,
    },
}

/// The longest segment payload kept: an SOF with 4 components is 6 + 3 * 4 bytes, and
/// Adobe's APP14 12. Frames with more components than 255 cannot exist (one byte).
const KEEP_MAX: usize = 6 + 3 * 255;

impl Default for Walker {
    fn default() -> Self {
        Self::new()
    }
}

impl Walker {
    pub fn new() -> Self {
        Walker {
            pos: 0,
            state: State::Start { have: 0 },
            adobe: None,
            result: None,
        }
    }

    /// Feed the next bytes of the file.
    pub fn feed(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() && self.result.is_none() {
            let b = data[i];
            match &mut self.state {
                State::Start { have } => {
                    let want = if *have == 0 { 0xff } else { 0xd8 };
                    if b != want {
                        self.result = Some(Err(JpegError::NoMarker { offset: self.pos }));
                    }
                    *have += 1;
                    if *have == 2 {
                        self.state = State::Marker { seen_ff: false };
                    }
                    self.advance(&mut i, 1);
                }
                State::Marker { seen_ff } => {
                    if !*seen_ff {
                        if b != 0xff {
                            self.result = Some(Err(JpegError::NoMarker { offset: self.pos }));
                        }
                        *seen_ff = true;
                    } else if b != 0xff {
                        self.marker(b);
                    }
                    self.advance(&mut i, 1);
                }
                State::Length { marker, buf, have } => {
                    buf[*have] = b;
                    *have += 1;
                    if *have == 2 {
                        let marker = *marker;
                        let len = usize::from(u16::from_be_bytes(*buf));
                        if len < 2 {
                            self.result = Some(Err(JpegError::NoMarker { offset: self.pos }));
                        } else {
                            let keep = is_sof(marker) || (marker == 0xee && len - 2 <= 64);
                            self.state = State::Payload {
                                marker,
                                left: len - 2,
                                kept: Vec::new(),
                                keep: keep && len - 2 <= KEEP_MAX,
                            };
                            self.close_if_done();
                        }
                    }
                    self.advance(&mut i, 1);
                }
                State::Payload {
                    left, kept, keep, ..
                } => {
                    let take = (*left).min(data.len() - i);
                    if *keep {
                        kept.extend_from_slice(&data[i..i + take]);
                    }
                    *left -= take;
                    self.advance(&mut i, take);
                    self.close_if_done();
                }
            }
        }
    }

    fn advance(&mut self, i: &mut usize, n: usize) {
        *i += n;
        self.pos += n as u64;
    }

    /// A marker code after 0xFF.
    fn marker(&mut self, code: u8) {
        match code {
            // Standalone markers: TEM, RSTn. (A second SOI is read as a segment, as libjpeg
            // refuses it too.)
            0x01 | 0xd0..=0xd7 => self.state = State::Marker { seen_ff: false },
            0xda | 0xd9 => self.result = Some(Err(JpegError::NoFrame)),
            0x00 => self.result = Some(Err(JpegError::NoMarker { offset: self.pos })),
            _ => {
                self.state = State::Length {
                    marker: code,
                    buf: [0; 2],
                    have: 0,
                }
            }
        }
    }

    /// After a payload byte: at the end of a segment, read what it kept.
    fn close_if_done(&mut self) {
        let State::Payload {
            marker,
            left: 0,
            kept,
            ..
        } = &self.state
        else {
            return;
        };
        let marker = *marker;
        if is_sof(marker) {
            self.result = Some(match (kept.first(), kept.get(5)) {
                (Some(&precision), Some(&components)) => Ok(Frame {
                    process: marker & 0x0f,
                    precision,
                    components,
                    adobe_transform: self.adobe,
                }),
                _ => Err(JpegError::NoMarker { offset: self.pos }),
            });
            return;
        }
        if marker == 0xee && kept.starts_with(b"Adobe") {
            self.adobe = kept.get(11).copied();
        }
        self.state = State::Marker { seen_ff: false };
    }

    /// The frame header, or why there is none.
    pub fn finish(&self) -> Result<Frame, JpegError> {
        self.result.clone().unwrap_or(Err(JpegError::Truncated))
    }
}

/// SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
fn is_sof(m: u8) -> bool {
    (0xc0..=0xcf).contains(&m) && !matches!(m, 0xc4 | 0xc8 | 0xcc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff, marker];
        v.extend_from_slice(&(u16::try_from(payload.len() + 2).unwrap()).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn sof(marker: u8, precision: u8, components: u8) -> Vec<u8> {
        let mut p = vec![precision, 0, 16, 0, 16, components];
        for c in 0..components {
            p.extend_from_slice(&[c + 1, 0x11, 0]);
        }
        seg(marker, &p)
    }

    fn jpeg(before: &[Vec<u8>], frame: Vec<u8>) -> Vec<u8> {
        let mut v = vec![0xff, 0xd8];
        for s in before {
            v.extend_from_slice(s);
        }
        v.extend_from_slice(&frame);
        v.extend_from_slice(&seg(0xda, &[1, 1, 0, 0, 63, 0]));
        v.extend_from_slice(&[0x12, 0x34, 0xff, 0xd9]);
        v
    }

    fn walk(bytes: &[u8]) -> Result<Frame, JpegError> {
        let mut w = Walker::new();
        w.feed(bytes);
        w.finish()
    }

    #[test]
    fn frame_fields_behind_long_metadata() {
        let app1 = seg(0xe1, &vec![0x55; 65_000]);
        let icc: Vec<Vec<u8>> = (0..3).map(|_| seg(0xe2, &vec![0x66; 60_000])).collect();
        let mut before = vec![seg(0xe0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"), app1];
        before.extend(icc);
        let f = walk(&jpeg(&before, sof(0xc2, 8, 3))).unwrap();
        assert_eq!((f.process, f.precision, f.components), (2, 8, 3));
        assert_eq!(f.problem(), None);
        assert_eq!(f.to_string(), "8-bit YCbCr progressive JPEG");
    }

    #[test]
    fn cmyk_ycck_12_bit_and_lossless_are_refused() {
        let adobe = |t: u8| seg(0xee, &[b'A', b'd', b'o', b'b', b'e', 0, 100, 0, 0, 0, 0, t]);
        let f = walk(&jpeg(&[adobe(0)], sof(0xc0, 8, 4))).unwrap();
        assert_eq!(
            f.problem().unwrap(),
            "CMYK JPEG (4 colour components); WhatsApp takes RGB or greyscale JPEG only"
        );
        let f = walk(&jpeg(&[adobe(2)], sof(0xc0, 8, 4))).unwrap();
        assert!(f.problem().unwrap().starts_with("YCCK JPEG"));
        let f = walk(&jpeg(&[], sof(0xc1, 12, 3))).unwrap();
        assert_eq!(
            f.problem().unwrap(),
            "12-bit JPEG; WhatsApp takes 8-bit images only"
        );
        let f = walk(&jpeg(&[], sof(0xc3, 16, 3))).unwrap();
        assert!(f.problem().unwrap().starts_with("lossless JPEG"));
        // Greyscale is fine.
        assert_eq!(walk(&jpeg(&[], sof(0xc0, 8, 1))).unwrap().problem(), None);
    }

    #[test]
    fn malformed_streams() {
        assert_eq!(walk(&[0xff, 0xd8, 0xff]), Err(JpegError::Truncated));
        assert_eq!(walk(&jpeg(&[], Vec::new())), Err(JpegError::NoFrame));
        assert_eq!(
            walk(&[0xff, 0xd8, 0x00, 0x01]),
            Err(JpegError::NoMarker { offset: 2 })
        );
        // Fill bytes and restart markers before the frame are tolerated.
        let mut v = vec![0xff, 0xd8, 0xff, 0xff, 0xff, 0xd0];
        v.extend_from_slice(&sof(0xc0, 8, 3));
        assert!(walk(&v).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_chunking_does_not_matter(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            split in 1usize..50,
        ) {
            let mut with_soi = vec![0xff, 0xd8];
            with_soi.extend_from_slice(&bytes);
            for b in [&bytes[..], &with_soi[..]] {
                let mut w = Walker::new();
                for c in b.chunks(split) {
                    w.feed(c);
                }
                prop_assert_eq!(w.finish(), walk(b));
            }
        }
    }
}
