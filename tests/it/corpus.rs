//! The media corpus (tests/it/common/media.rs) is what it says: every file is made (by Debian's
//! ffmpeg, installed by scripts/install-ffmpeg.sh when missing, and by `jpeg-encoder`), passes
//! ffprobe's check, and the facts the upload gate's tests lean on hold in its bytes. On a
//! fresh machine this is the proof that the corpus works; it tests no server code.

use crate::common;

use std::time::Instant;

use common::media::{self, Corpus};

/// Makes the whole corpus at once (in parallel) and checks every file with ffprobe, whether
/// it was made now or read from the cache.
#[test]
fn every_file_is_made_and_is_what_it_says() {
    let started = Instant::now();
    let all = media::all();
    eprintln!(
        "media corpus: {} files ready in {:?}",
        all.iter().filter(|(_, m)| m.is_some()).count(),
        started.elapsed()
    );
    let made: Vec<_> = all
        .into_iter()
        .filter_map(|(c, made)| {
            assert!(
                made.is_some() || c.is_optional(),
                "{} is required but was not made",
                c.name()
            );
            made
        })
        .collect();
    // Files read from the cache were checked when they were made, maybe by another process:
    // ffprobe checks them again here, a few at a time.
    std::thread::scope(|s| {
        for chunk in made.chunks(made.len().div_ceil(4)) {
            s.spawn(move || {
                for m in chunk {
                    assert!(!m.bytes.is_empty(), "{} is empty", m.corpus.name());
                    assert_eq!(std::fs::read(&m.path).unwrap(), m.bytes);
                    let probe = media::verify(m.corpus);
                    assert!(probe["streams"].as_array().is_some_and(|s| !s.is_empty()));
                }
            });
        }
    });
    eprintln!("media corpus: made and verified in {:?}", started.elapsed());
}

#[test]
fn names_are_unique_and_accepted_files_are_required() {
    let mut names: Vec<_> = Corpus::ALL.iter().map(|c| c.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Corpus::ALL.len());
    for &c in Corpus::ALL {
        // The files WhatsApp accepts are made on every machine, so the gate's tests can rely
        // on them; the one exception is AMR-NB, which Debian's ffmpeg cannot encode at all.
        assert!(
            !c.accepted() || !c.is_optional() || c == Corpus::NbAmr,
            "{}",
            c.name()
        );
    }
}

#[test]
#[should_panic(expected = "use media::optional")]
fn file_refuses_optional_entries_on_every_machine() {
    media::file(Corpus::Av1Mp4);
}

#[test]
fn faststart_puts_moov_first_and_moov_last_is_past_the_first_64_kib() {
    let fast = media::file(Corpus::H264AacMp4);
    let (moov, mdat) = (
        media::box_offset(fast, b"moov").unwrap(),
        media::box_offset(fast, b"mdat").unwrap(),
    );
    assert!(moov < mdat, "faststart: moov {moov}, mdat {mdat}");

    let last = media::file(Corpus::H264AacMoovLastMp4);
    let (moov, mdat) = (
        media::box_offset(last, b"moov").unwrap(),
        media::box_offset(last, b"mdat").unwrap(),
    );
    assert!(mdat < moov, "moov last: moov {moov}, mdat {mdat}");
    assert!(moov > media::FIRST_BYTES, "moov at {moov}");
    assert!(last.len() < 16_000_000, "{} bytes", last.len());
    let boxes: Vec<_> = media::top_level_boxes(last)
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(boxes.last(), Some(b"moov"), "the file ends with moov");
}

#[test]
fn brands_tell_the_iso_containers_apart() {
    for (c, brand) in [
        (Corpus::H264AacMp4, b"isom"),
        (Corpus::H264AacMov, b"qt  "),
        (Corpus::AacM4a, b"M4A "),
        (Corpus::AlacM4a, b"M4A "),
        (Corpus::H264Aac3gp, b"3gp6"),
        (Corpus::H264Aac3g2, b"3g2b"),
    ] {
        assert_eq!(
            media::major_brand(media::file(c)).as_ref(),
            Some(brand),
            "{}",
            c.name()
        );
    }
}

#[test]
fn jpeg_frame_headers() {
    for (c, components) in [
        (Corpus::PhotoJpg, 3),
        (Corpus::GreyJpg, 1),
        (Corpus::CmykJpg, 4),
        (Corpus::YcckJpg, 4),
    ] {
        let frame = media::jpeg_frame(media::file(c)).unwrap();
        assert_eq!(frame.sof, 0xC0, "{} is baseline", c.name());
        assert_eq!(frame.precision, 8, "{}", c.name());
        assert_eq!(frame.components, components, "{}", c.name());
        assert_eq!((frame.width, frame.height), (128, 128), "{}", c.name());
    }
    // CMYK and YCCK differ in the Adobe marker's transform flag (0 and 2).
    let adobe = |c| {
        let b = media::file(c);
        let at = b.windows(5).position(|w| w == b"Adobe").unwrap();
        b[at + 11]
    };
    assert_eq!(adobe(Corpus::CmykJpg), 0);
    assert_eq!(adobe(Corpus::YcckJpg), 2);
}

#[test]
fn mpeg_audio_layers() {
    assert_eq!(
        media::mpeg_audio_frame(media::file(Corpus::ToneMp3)),
        Some((1, 3))
    );
    assert_eq!(
        media::mpeg_audio_frame(media::file(Corpus::ToneMp2)),
        Some((1, 2))
    );
}

#[test]
fn png_colour_types_and_depths() {
    // IHDR: bit depth at byte 24, colour type at byte 25.
    for (c, depth, colour) in [
        (Corpus::RgbPng, 8, 2),
        (Corpus::RgbaPng, 8, 6),
        (Corpus::PalettePng, 8, 3),
        (Corpus::GreyPng, 8, 0),
        (Corpus::Rgb48Png, 16, 2),
    ] {
        let b = media::file(c);
        assert_eq!(&b[12..16], b"IHDR", "{}", c.name());
        assert_eq!((b[24], b[25]), (depth, colour), "{}", c.name());
    }
}

#[test]
fn webp_sticker_and_banner() {
    // A simple lossy WebP: "RIFF" size "WEBP" "VP8 " …, dimensions in the VP8 key frame header.
    for (c, w, h) in [
        (Corpus::StickerWebp, 512, 512),
        (Corpus::BannerWebp, 160, 90),
    ] {
        let b = media::file(c);
        assert_eq!(&b[8..16], b"WEBPVP8 ", "{}", c.name());
        let dim = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]) & 0x3FFF;
        assert_eq!((dim(26), dim(28)), (w, h), "{}", c.name());
    }
    assert!(media::file(Corpus::StickerWebp).len() < 100_000);
}

#[test]
fn optional_files_match_the_encoders() {
    // Debian's ffmpeg 5.1 has libaom, SVT-AV1 and rav1e and libvorbis but no AMR encoder;
    // elsewhere each optional file is either made (and checked) or skipped with a line on
    // stderr. Either way `optional` answers without panicking.
    for &c in Corpus::ALL.iter().filter(|c| c.is_optional()) {
        if let Some(b) = media::optional(c) {
            assert!(!b.is_empty(), "{}", c.name());
        }
    }
}
