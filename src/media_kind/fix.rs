//! The command that turns a refused file into one WhatsApp accepts.
//!
//! A refusal that only says what is wrong leaves the marketer to find out how to fix it; the
//! fix is almost always one ffmpeg (or ImageMagick, LibreOffice, iconv, libheif) command, known from the
//! refusal alone. The commands name `in.<ext>` and `out.<ext>` for the user's files, and are
//! the same ones the test suite runs on its refused corpus to show they work.

use super::{Kind, MediaError, canonical_extension, kind_of};

/// H.264 High profile in yuv420p (what phones decode), one AAC stereo track at most,
/// `moov` first: what WhatsApp plays.
fn video(input_ext: &str, out_ext: &str) -> String {
    format!(
        "ffmpeg -i in.{input_ext} -map 0:v:0 -map \"0:a:0?\" -vf \"scale=trunc(iw/2)*2:trunc(ih/2)*2\" \
         -c:v libx264 -pix_fmt yuv420p -profile:v high -c:a aac -ac 2 -movflags +faststart \
         out.{out_ext}"
    )
}

/// AAC in M4A keeps music stereo; WhatsApp plays it as audio.
fn audio(input_ext: &str) -> String {
    format!("ffmpeg -i in.{input_ext} -map 0:a:0 -vn -c:a aac -b:a 128k out.m4a")
}

/// 8-bit RGBA PNG (transparency kept) from the first frame.
fn image(input_ext: &str) -> String {
    format!("ffmpeg -i in.{input_ext} -frames:v 1 -pix_fmt rgba out.png")
}

/// A static 512x512 WebP sticker: fitted, padded with transparency.
fn sticker(input_ext: &str) -> String {
    format!(
        "ffmpeg -i in.{input_ext} -frames:v 1 -vf \"scale=512:512:force_original_aspect_ratio=\
         decrease,format=rgba,pad=512:512:(ow-iw)/2:(oh-ih)/2:color=0x00000000\" -c:v libwebp \
         -quality 80 out.webp"
    )
}

/// The extension files of a (refused or accepted) type usually carry.
fn ext_of(content_type: &str) -> &'static str {
    if let Some(ext) = canonical_extension(content_type) {
        return ext;
    }
    match content_type {
        "video/quicktime" => "mov",
        "video/webm" | "audio/webm" => "webm",
        "audio/x-matroska" => "mka",
        "video/x-matroska" => "mkv",
        "video/x-msvideo" => "avi",
        "video/mpeg" => "mpg",
        "video/3gpp2" => "3g2",
        "audio/ogg" => "ogg",
        "audio/wav" => "wav",
        "audio/flac" => "flac",
        "audio/amr-wb" => "awb",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "image/tiff" => "tif",
        "image/heic" => "heic",
        "image/heif" => "heif",
        "image/avif" => "avif",
        "application/rtf" => "rtf",
        "application/vnd.oasis.opendocument.text" => "odt",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        "application/vnd.oasis.opendocument.presentation" => "odp",
        "application/epub+zip" => "epub",
        _ => "bin",
    }
}

/// A fix for content of a type WhatsApp does not take at all.
fn for_unsupported(content_type: &str) -> Option<String> {
    let ext = ext_of(content_type);
    Some(match content_type {
        "image/heic" | "image/heif" | "image/avif" => {
            format!("heif-convert -q 90 in.{ext} out.jpg")
        }
        "application/rtf"
        | "application/vnd.oasis.opendocument.text"
        | "application/vnd.oasis.opendocument.spreadsheet"
        | "application/vnd.oasis.opendocument.presentation"
        | "application/epub+zip" => format!("libreoffice --headless --convert-to pdf in.{ext}"),
        t if t.starts_with("video/") => video(ext, "mp4"),
        t if t.starts_with("audio/") => audio(ext),
        t if t.starts_with("image/") => image(ext),
        _ => return None,
    })
}

impl MediaError {
    /// The command that makes the file acceptable, where there is one (an archive or an
    /// unrecognisable file has none).
    pub fn fix(&self) -> Option<String> {
        match self {
            MediaError::Unsupported { content_type } => for_unsupported(content_type),
            MediaError::Unrecognized => None,
            MediaError::Mismatch { detected, fix, .. } => {
                fix.clone().or_else(|| match kind_of(detected) {
                    Some(_) => Some(format!(
                        "send it as {detected} (or with no Content-Type: the bytes decide)"
                    )),
                    None => for_unsupported(detected),
                })
            }
            MediaError::TooLarge { kind, .. } => Some(match kind {
                Kind::Image => {
                    "ffmpeg -i in.jpg -vf \"scale='min(1600,iw)':-2\" -q:v 4 out.jpg".to_owned()
                }
                // No `-fs`: it cuts the clip silently and still overshoots. A smaller size
                // and a higher CRF fit most clips; a long one needs its bitrate chosen from its
                // duration (what conversion on upload does).
                Kind::Video => "ffmpeg -i in.mp4 -map 0:v:0 -map \"0:a:0?\" -c:v libx264 \
                     -pix_fmt yuv420p -profile:v high -crf 30 -preset slow \
                     -vf \"scale=-2:'min(720,ih)'\" -c:a aac -b:a 96k -ac 2 -movflags +faststart \
                     out.mp4"
                    .to_owned(),
                Kind::Audio => {
                    "ffmpeg -i in.mp3 -map 0:a:0 -vn -c:a aac -b:a 64k out.m4a".to_owned()
                }
                // Only a PDF can be shrunk by one command; other documents are split or sent
                // as a link to download.
                Kind::Document => {
                    "gs -sDEVICE=pdfwrite -dPDFSETTINGS=/ebook -o out.pdf in.pdf (PDF only)"
                        .to_owned()
                }
                Kind::Sticker => sticker("webp"),
            }),
            MediaError::Invalid {
                content_type,
                reason,
            } => {
                // A damaged file: no command repairs what is missing; export it again.
                let damaged = [
                    "empty file",
                    "truncated",
                    "malformed",
                    "'moov'",
                    "impossible size",
                    "could not be read",
                    "absurd",
                    // Nothing to convert.
                    "no audio or video track",
                ];
                if damaged.iter().any(|d| reason.contains(d)) {
                    return None;
                }
                let ext = ext_of(content_type);
                Some(match content_type.as_str() {
                    "video/mp4" | "video/3gpp" if reason.contains("no video track") => {
                        format!("ffmpeg -i in.{ext} -map 0:a:0 -vn -c:a aac -b:a 128k out.m4a")
                    }
                    "video/mp4" | "video/3gpp" => video(ext, ext),
                    "audio/mp4" => audio("m4a"),
                    "audio/mpeg" => {
                        "ffmpeg -i in.mp3 -map 0:a:0 -vn -c:a libmp3lame -q:a 2 out.mp3".to_owned()
                    }
                    t if t.starts_with("audio/ogg") => {
                        "ffmpeg -i in.ogg -map 0:a:0 -vn -c:a libopus -ac 1 -b:a 32k out.ogg"
                            .to_owned()
                    }
                    "image/png" => "ffmpeg -i in.png -pix_fmt rgba out.png".to_owned(),
                    // ffmpeg 5.1 cannot decode CMYK JPEGs; ImageMagick can.
                    "image/jpeg" if reason.contains("CMYK") || reason.contains("YCCK") => {
                        "convert in.jpg -colorspace sRGB -depth 8 out.jpg".to_owned()
                    }
                    "image/jpeg" => "ffmpeg -i in.jpg -pix_fmt yuvj420p out.jpg".to_owned(),
                    "image/webp" => sticker("webp"),
                    "text/plain" => "iconv -f UTF-16 -t UTF-8 in.txt > out.txt".to_owned(),
                    _ => return None,
                })
            }
        }
    }
}
