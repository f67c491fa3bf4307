//! What ffprobe finds in an upload: its container, duration and streams, read from
//! `ffprobe -of json`. Only the fields the plan needs are kept; anything missing or malformed
//! in ffprobe's answer reads as absent, never as a panic.

use serde_json::Value;

use crate::asset::{ConvertedFrom, FoundStream};

/// The demuxers ffmpeg may use on an upload. An allow-list: demuxers that follow references to
/// other files (HLS, concat playlists) or devices are never opened on untrusted input, whatever
/// `-protocol_whitelist` lets through.
pub const FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,ogg,wav,w64,flac,mp3,aac,\
amr,caf,aiff,asf,flv,mpegts,mpeg,gif,png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,tiff_pipe,\
pgm_pipe,ppm_pipe,pam_pipe,qoi_pipe";

/// One stream of the upload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Index in the file (ffmpeg's `0:<index>`).
    pub index: usize,
    /// `video`, `audio`, or something else (subtitles, data).
    pub kind: String,
    pub codec: String,
    pub profile: Option<String>,
    pub pix_fmt: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub channels: Option<u32>,
    pub sample_rate: Option<u32>,
    /// A cover picture in an audio file (`disposition.attached_pic`), not video.
    pub attached_pic: bool,
}

/// ffprobe's view of an upload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// The container, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `png_pipe`.
    pub format: String,
    /// The major brand of an ISO-BMFF file (`qt  ` for QuickTime).
    pub brand: Option<String>,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
    pub streams: Vec<Stream>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned).filter(|s| !s.is_empty())
}

fn number(v: &Value) -> Option<u32> {
    v.as_u64()
        .or_else(|| v.as_str()?.parse().ok())
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

impl Probe {
    /// Read ffprobe's JSON answer (`-show_format -show_streams`).
    pub fn parse(json: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(json).ok()?;
        let format = text(&v["format"]["format_name"])?;
        let duration = v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d >= 0.0);
        let streams = v["streams"]
            .as_array()
            .map(|s| s.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, s)| Stream {
                index: s["index"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(i),
                kind: text(&s["codec_type"]).unwrap_or_default(),
                codec: text(&s["codec_name"]).unwrap_or_else(|| "unknown".into()),
                profile: text(&s["profile"]),
                pix_fmt: text(&s["pix_fmt"]),
                width: number(&s["width"]),
                height: number(&s["height"]),
                channels: number(&s["channels"]),
                sample_rate: number(&s["sample_rate"]),
                attached_pic: s["disposition"]["attached_pic"].as_u64() == Some(1),
            })
            .collect();
        Some(Self {
            format,
            brand: text(&v["format"]["tags"]["major_brand"]).map(|b| format!("{b:<4}")),
            duration,
            streams,
        })
    }

    /// Whether the container holds a still picture (an image format, not a video file).
    pub fn is_still(&self) -> bool {
        self.format.ends_with("_pipe") || matches!(self.format.as_str(), "gif" | "image2")
    }

    /// The picture or video streams, cover art left out.
    pub fn videos(&self) -> impl Iterator<Item = &Stream> {
        self.streams
            .iter()
            .filter(|s| s.kind == "video" && !s.attached_pic)
    }

    /// The audio streams.
    pub fn audios(&self) -> impl Iterator<Item = &Stream> {
        self.streams.iter().filter(|s| s.kind == "audio")
    }

    /// The type the original was, for the record, from the container and streams.
    pub fn content_type(&self) -> String {
        let has_video = self.videos().next().is_some();
        let first = self.format.split(',').next().unwrap_or("");
        let t = match first {
            "mov" if self.brand.as_deref() == Some("qt  ") => "video/quicktime",
            "mov" if !has_video => "audio/mp4",
            "mov" => "video/mp4",
            "matroska" if self.format.contains("webm") && !has_video => "audio/webm",
            "matroska" if has_video => "video/webm",
            "matroska" => "audio/webm",
            "avi" => "video/x-msvideo",
            "ogg" => "audio/ogg",
            "wav" | "w64" => "audio/wav",
            "flac" => "audio/flac",
            "mp3" => "audio/mpeg",
            "aac" => "audio/aac",
            "amr" => "audio/amr",
            "aiff" => "audio/aiff",
            "caf" => "audio/x-caf",
            "asf" => "video/x-ms-asf",
            "flv" => "video/x-flv",
            "mpegts" => "video/mp2t",
            "mpeg" => "video/mpeg",
            "gif" => "image/gif",
            "png_pipe" => "image/png",
            "jpeg_pipe" => "image/jpeg",
            "webp_pipe" => "image/webp",
            "bmp_pipe" => "image/bmp",
            "tiff_pipe" => "image/tiff",
            _ => "application/octet-stream",
        };
        t.to_owned()
    }

    /// The record's account of the original.
    pub fn converted_from(
        &self,
        size: u64,
        sha256: String,
        refused: Option<String>,
    ) -> ConvertedFrom {
        ConvertedFrom {
            content_type: self.content_type(),
            size,
            sha256,
            container: self.format.clone(),
            duration_ms: self
                .duration
                .filter(|_| !self.is_still())
                .map(|d| (d * 1000.0).round() as u64),
            streams: self
                .streams
                .iter()
                .filter(|s| s.kind == "video" || s.kind == "audio")
                .map(|s| FoundStream {
                    kind: s.kind.clone(),
                    codec: s.codec.clone(),
                    profile: s.profile.clone(),
                    width: s.width,
                    height: s.height,
                    pix_fmt: s.pix_fmt.clone(),
                    channels: s.channels,
                    sample_rate: s.sample_rate,
                })
                .collect(),
            refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_ffprobe_says_and_nothing_it_does_not() {
        let json = br#"{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.5",
            "tags": {"major_brand": "qt"}},
            "streams": [
              {"index": 0, "codec_type": "video", "codec_name": "h264", "profile": "High",
               "pix_fmt": "yuv420p", "width": 128, "height": 96},
              {"index": 1, "codec_type": "audio", "codec_name": "aac", "profile": "LC",
               "channels": 2, "sample_rate": "48000"},
              {"index": 2, "codec_type": "video", "codec_name": "mjpeg",
               "disposition": {"attached_pic": 1}}]}"#;
        let p = Probe::parse(json).unwrap();
        assert_eq!(p.brand.as_deref(), Some("qt  "));
        assert_eq!(p.content_type(), "video/quicktime");
        assert_eq!(p.duration, Some(2.5));
        assert_eq!(p.videos().count(), 1);
        assert_eq!(p.audios().next().unwrap().sample_rate, Some(48000));
        assert!(!p.is_still());
        let from = p.converted_from(10, "ab".into(), None);
        assert_eq!(from.duration_ms, Some(2500));
        assert_eq!(from.streams.len(), 3);
        assert!(Probe::parse(b"{}").is_none());
        assert!(Probe::parse(b"not json").is_none());
    }
}
