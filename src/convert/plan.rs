//! What to turn an upload into, decided from what ffprobe found, and the ffmpeg arguments that
//! do it. Pure functions: the sizes and bitrates are unit-tested here without running ffmpeg.
//!
//! The targets are the nearest types WhatsApp accepts (`WHATSAPP_MEDIA.md` §3): video becomes
//! MP4 with H.264 (yuv420p, High profile) and at most one AAC-LC track, `+faststart`; audio
//! becomes mono Ogg Opus (what a voice note needs); stills become JPEG, or 8-bit RGBA PNG when
//! they have transparency; `convert=sticker` makes a static 512×512 WebP.

use super::probe::{Probe, Stream};
use super::{ConvertError, Mode};
use crate::media_kind::{self, Kind, STATIC_STICKER_MAX_SIZE};

/// What sizes are aimed at: a little under WhatsApp's limit, for the container's overhead and
/// an encoder's overshoot (a result over the limit is encoded again with less).
const SIZE_MARGIN: f64 = 0.92;
/// The AAC bitrate of converted video, in kbit/s.
pub const VIDEO_AUDIO_KBPS: u32 = 128;
/// The lowest H.264 bitrate worth sending, in kbit/s: below it a clip is too long for 16 MB.
pub const VIDEO_FLOOR_KBPS: u32 = 200;
/// The highest video bitrate chosen, in kbit/s (more is wasted on a phone screen).
pub const VIDEO_CEILING_KBPS: u32 = 8000;
/// Opus for a voice note, in kbit/s: speech is transparent at 32 and intelligible at 6.
pub const VOICE_KBPS: u32 = 32;
pub const VOICE_FLOOR_KBPS: u32 = 6;

/// What a still becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Still {
    Jpeg,
    Png,
}

/// The conversion to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// To MP4: each stream copied when it is already what WhatsApp takes, else encoded.
    Video {
        video: usize,
        copy_video: bool,
        /// The video bitrate, when the size asks for one (else quality-based, capped).
        kbps: u32,
        /// The audio stream, whether it is copied, and its channels (at most 2 are kept).
        audio: Option<(usize, bool, u32)>,
    },
    /// To mono Ogg Opus at `kbps`.
    Audio { stream: usize, kbps: u32 },
    /// The first frame of `stream` to a still.
    Image {
        stream: usize,
        still: Still,
        /// Whether the picture may have transparency, to be looked at before choosing.
        may_have_alpha: bool,
    },
    /// The first frame to a 512×512 static WebP sticker.
    Sticker { stream: usize },
}

/// What the plan converts to, as stored.
pub fn target_type(plan: &Plan) -> &'static str {
    match plan {
        Plan::Video { .. } => "video/mp4",
        Plan::Audio { .. } => media_kind::OGG_OPUS,
        Plan::Image {
            still: Still::Jpeg, ..
        } => "image/jpeg",
        Plan::Image {
            still: Still::Png, ..
        } => "image/png",
        Plan::Sticker { .. } => "image/webp",
    }
}

/// Pixel formats that can carry transparency. A CMYK JPEG reads as `yuva444p` in some ffmpeg
/// versions, so JPEGs are never taken to have any.
fn alpha_capable(s: &Stream) -> bool {
    let Some(pix) = s.pix_fmt.as_deref() else {
        return false;
    };
    s.codec != "mjpeg"
        && (pix == "pal8"
            || pix.starts_with("yuva")
            || pix.starts_with("ya")
            || pix.starts_with("gbrap")
            || ["rgba", "bgra", "argb", "abgr"]
                .iter()
                .any(|a| pix.contains(a)))
}

/// H.264 WhatsApp plays as it is: 8-bit 4:2:0 in a profile phones decode.
fn h264_as_is(s: &Stream) -> bool {
    s.codec == "h264"
        && s.pix_fmt.as_deref() == Some("yuv420p")
        && matches!(
            s.profile.as_deref(),
            Some("High" | "Main" | "Baseline" | "Constrained Baseline")
        )
}

fn aac_as_is(s: &Stream) -> bool {
    s.codec == "aac" && s.profile.as_deref() == Some("LC")
}

/// The plan for `probe` under `mode`; `size` is the upload's length.
pub fn decide(probe: &Probe, mode: Mode, size: u64) -> Result<Plan, ConvertError> {
    let first_video = probe.videos().next();
    if probe.is_still() || mode == Mode::Sticker {
        let Some(v) = first_video.filter(|_| probe.is_still()) else {
            return Err(ConvertError::WrongKind(format!(
                "convert=sticker makes stickers from images; this upload is {}",
                probe.content_type()
            )));
        };
        if mode == Mode::Sticker {
            return Ok(Plan::Sticker { stream: v.index });
        }
        return Ok(Plan::Image {
            stream: v.index,
            still: if alpha_capable(v) {
                Still::Png
            } else {
                Still::Jpeg
            },
            may_have_alpha: alpha_capable(v),
        });
    }
    if let Some(v) = first_video {
        let audio = probe.audios().next();
        let duration = probe.duration.unwrap_or(0.0);
        let kbps = video_kbps(duration, audio.is_some())?;
        // Copying keeps the bytes when they fit; a file too large for its kind is encoded at
        // the bitrate that fits.
        let fits = size <= Kind::Video.max_size();
        return Ok(Plan::Video {
            video: v.index,
            copy_video: h264_as_is(v) && fits,
            kbps,
            audio: audio.map(|a| (a.index, aac_as_is(a), a.channels.unwrap_or(2))),
        });
    }
    if let Some(a) = probe.audios().next() {
        let kbps = voice_kbps(probe.duration.unwrap_or(0.0))?;
        return Ok(Plan::Audio {
            stream: a.index,
            kbps,
        });
    }
    Err(ConvertError::Failed {
        reason: format!(
            "ffprobe found no picture, video or audio in this {} file",
            probe.format
        ),
        fix: None,
    })
}

/// Bytes aimed at for a kind.
fn budget_bits(kind: Kind) -> f64 {
    kind.max_size() as f64 * SIZE_MARGIN * 8.0
}

/// The video bitrate that fits `duration` seconds (with AAC audio if `audio`) into 16 MB, up to
/// [`VIDEO_CEILING_KBPS`]; [`ConvertError::TooLong`] when even [`VIDEO_FLOOR_KBPS`] cannot.
pub fn video_kbps(duration: f64, audio: bool) -> Result<u32, ConvertError> {
    let audio_kbps = if audio { VIDEO_AUDIO_KBPS } else { 0 };
    let bits = budget_bits(Kind::Video);
    let total = if duration > 0.0 {
        bits / duration / 1000.0
    } else {
        f64::from(VIDEO_CEILING_KBPS + audio_kbps)
    };
    let video = total - f64::from(audio_kbps);
    if video < f64::from(VIDEO_FLOOR_KBPS) {
        return Err(ConvertError::TooLong {
            duration,
            max: bits / f64::from(VIDEO_FLOOR_KBPS + audio_kbps) / 1000.0,
            limit: Kind::Video.max_size(),
        });
    }
    Ok((video as u32).min(VIDEO_CEILING_KBPS))
}

/// The Opus bitrate that fits `duration` seconds into 16 MB, up to [`VOICE_KBPS`].
pub fn voice_kbps(duration: f64) -> Result<u32, ConvertError> {
    let bits = budget_bits(Kind::Audio);
    if duration <= 0.0 {
        return Ok(VOICE_KBPS);
    }
    let kbps = bits / duration / 1000.0;
    if kbps < f64::from(VOICE_FLOOR_KBPS) {
        return Err(ConvertError::TooLong {
            duration,
            max: bits / f64::from(VOICE_FLOOR_KBPS) / 1000.0,
            limit: Kind::Audio.max_size(),
        });
    }
    Ok((kbps as u32).min(VOICE_KBPS))
}

/// The size limit the result must keep.
pub fn limit(plan: &Plan) -> u64 {
    match plan {
        Plan::Video { .. } => Kind::Video.max_size(),
        Plan::Audio { .. } => Kind::Audio.max_size(),
        Plan::Image { .. } => Kind::Image.max_size(),
        Plan::Sticker { .. } => STATIC_STICKER_MAX_SIZE,
    }
}

/// The ffmpeg output arguments of `plan` at `attempt` (0 first; each later one aims smaller:
/// a lower bitrate, a lower quality, a smaller picture). `None` when there is nothing smaller
/// left to try.
pub fn output_args(plan: &Plan, attempt: u32) -> Option<Vec<String>> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |args: &str| a.extend(args.split_whitespace().map(str::to_owned));
    match *plan {
        Plan::Video {
            video,
            copy_video,
            kbps,
            audio,
        } => {
            if attempt > 3 {
                return None;
            }
            push(&format!("-map 0:{video}"));
            // A copy that came out too large is encoded the next time.
            if copy_video && attempt == 0 {
                push("-c:v copy");
            } else {
                // Each encode after the first aims 20% lower: the first encode is attempt 0
                // when the video was not copied, attempt 1 after a copy that came out too large.
                let encodes_before = attempt as i32 - i32::from(copy_video);
                let kbps = (f64::from(kbps) * 0.8f64.powi(encodes_before)) as u32;
                push(&format!(
                    "-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
                     -vf scale=trunc(iw/2)*2:trunc(ih/2)*2 -crf 23 -maxrate {kbps}k \
                     -bufsize {}k",
                    kbps * 2
                ));
            }
            match audio {
                Some((i, true, _)) => push(&format!("-map 0:{i} -c:a copy")),
                Some((i, false, channels)) => push(&format!(
                    "-map 0:{i} -c:a aac -b:a {VIDEO_AUDIO_KBPS}k -ac {}",
                    channels.clamp(1, 2)
                )),
                None => {}
            }
            push("-sn -dn -map_chapters -1 -movflags +faststart -f mp4");
        }
        Plan::Audio { stream, kbps } => {
            if attempt > 2 {
                return None;
            }
            let kbps = (kbps >> attempt).max(VOICE_FLOOR_KBPS);
            push(&format!(
                "-map 0:{stream} -vn -sn -dn -ac 1 -ar 48000 -c:a libopus -b:a {kbps}k \
                 -application voip -f ogg"
            ));
        }
        Plan::Image { stream, still, .. } => {
            // JPEG: lower quality first, then a smaller picture; PNG: only smaller.
            let (q, scale) = match (still, attempt) {
                (Still::Jpeg, 0) => (2, 1.0),
                (Still::Jpeg, 1) => (5, 1.0),
                (Still::Jpeg, 2) => (9, 1.0),
                (Still::Jpeg, n) if n < 9 => (9, 0.75f64.powi(n as i32 - 2)),
                (Still::Png, n) if n < 8 => (0, 0.75f64.powi(n as i32)),
                _ => return None,
            };
            push(&format!("-map 0:{stream} -frames:v 1 -map_metadata -1"));
            let scale_filter = (scale < 1.0)
                .then(|| format!("scale=trunc(iw*{scale:.4}/2)*2:trunc(ih*{scale:.4}/2)*2,"));
            let scale_filter = scale_filter.unwrap_or_default();
            match still {
                Still::Jpeg => push(&format!(
                    "-vf {scale_filter}format=yuvj420p -c:v mjpeg -q:v {q} -f image2 -update 1"
                )),
                Still::Png => push(&format!(
                    "-vf {scale_filter}format=rgba -c:v png -f image2 -update 1"
                )),
            }
        }
        Plan::Sticker { stream } => {
            let quality = match attempt {
                0 => 80,
                1 => 60,
                2 => 40,
                3 => 20,
                4 => 5,
                _ => return None,
            };
            push(&format!(
                "-map 0:{stream} -frames:v 1 -map_metadata -1 \
                 -vf scale=512:512:force_original_aspect_ratio=decrease,format=rgba,\
                 pad=512:512:(ow-iw)/2:(oh-ih)/2:color=black@0 \
                 -c:v libwebp -lossless 0 -quality {quality} -f webp"
            ));
        }
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_bitrate_fits_the_duration_or_names_the_longest_that_fits() {
        // 40 s: (16e6 * 0.92 * 8 / 40 / 1000) - 128 = 2816 kbit/s of video.
        assert_eq!(video_kbps(40.0, true).unwrap(), 2816);
        assert_eq!(video_kbps(1.0, true).unwrap(), VIDEO_CEILING_KBPS);
        assert_eq!(video_kbps(0.0, false).unwrap(), VIDEO_CEILING_KBPS);
        let Err(ConvertError::TooLong { max, .. }) = video_kbps(3600.0, true) else {
            panic!("an hour does not fit");
        };
        // 117.76e6 bits / 328 kbit/s = 359 s.
        assert_eq!(max.floor(), 359.0);
        assert!(video_kbps(max - 1.0, true).is_ok());
    }

    #[test]
    fn voice_bitrate_drops_for_long_recordings() {
        assert_eq!(voice_kbps(60.0).unwrap(), VOICE_KBPS);
        assert_eq!(voice_kbps(7200.0).unwrap(), 16);
        assert!(matches!(
            voice_kbps(30_000.0),
            Err(ConvertError::TooLong { .. })
        ));
    }

    #[test]
    fn each_attempt_aims_smaller_and_they_end() {
        let image = Plan::Image {
            stream: 0,
            still: Still::Jpeg,
            may_have_alpha: false,
        };
        let all: Vec<_> = (0..).map_while(|n| output_args(&image, n)).collect();
        assert_eq!(all.len(), 9);
        assert!(all[0].join(" ").contains("-q:v 2"));
        assert!(all[8].join(" ").contains("scale="));
        let sticker = Plan::Sticker { stream: 0 };
        assert_eq!((0..).map_while(|n| output_args(&sticker, n)).count(), 5);
        let video = Plan::Video {
            video: 0,
            copy_video: true,
            kbps: 1000,
            audio: Some((1, true, 2)),
        };
        assert!(
            output_args(&video, 0)
                .unwrap()
                .join(" ")
                .contains("-c:v copy")
        );
        let second = output_args(&video, 1).unwrap().join(" ");
        assert!(second.contains("-maxrate 1000k"), "{second}");
        // Not copied: the first encode is at the full rate, each next one 20% lower.
        let encoded = Plan::Video {
            video: 0,
            copy_video: false,
            kbps: 1000,
            audio: Some((1, true, 2)),
        };
        let rates: Vec<String> = (0..3)
            .map(|n| output_args(&encoded, n).unwrap().join(" "))
            .collect();
        assert!(rates[0].contains("-maxrate 1000k"), "{}", rates[0]);
        assert!(rates[1].contains("-maxrate 800k"), "{}", rates[1]);
        assert!(rates[2].contains("-maxrate 640k"), "{}", rates[2]);
        assert!(
            output_args(&video, 2)
                .unwrap()
                .join(" ")
                .contains("-maxrate 800k")
        );
    }
}
