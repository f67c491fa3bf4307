//! The type of a file a customer sent: imported media is not held to what WhatsApp lets a
//! business send (a customer can send a ZIP or an HTML page as a document), so there is no
//! gate to pass, only a truthful type to store.
//!
//! Why not store Meta's `mime_type` as it is: it comes from the sender's phone and names what
//! the file claims to be. Served under it, an HTML page called `image/jpeg`, or a JPEG called
//! `text/html`, would be rendered by whatever trusts the type. So the bytes are sniffed with the
//! upload gate's own sniffer: what the gate accepts keeps its exact type; a recognised
//! signature (ZIP, GIF, WAV…) names its type; Meta's word is kept only where the bytes cannot
//! contradict it (text, or an unrecognised binary) and it does not claim a type the gate just
//! refused. Anything of no accepted type is then served as an attachment in a sandbox (see
//! `http::public`), so the type decides how a file is labelled, never whether it runs.

use super::*;

/// The largest file imported (the ceiling of `whatsapp.import_max_bytes`): 2 GB, the largest
/// file WhatsApp lets a customer send.
pub const MAX_IMPORT_SIZE: u64 = 2_000_000_000;

/// Whether `s` is a well-formed media type to serve in `Content-Type`: `type/subtype` of RFC
/// 9110 token characters, with optional `; name=value` parameters, visible ASCII only, at most
/// 255 bytes.
pub fn is_wellformed_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if s.len() > 255 || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    let mut parts = s.split(';');
    let essence = parts.next().unwrap_or_default();
    let Some((top, sub)) = essence.split_once('/') else {
        return false;
    };
    token(top)
        && token(sub)
        && parts.all(|p| {
            p.trim()
                .split_once('=')
                .is_some_and(|(k, v)| token(k) && !v.is_empty() && !v.contains(['"', '\\']))
        })
}

/// The type to store for a customer's file whose bytes went through `inspector`, which Meta
/// calls `meta_type` and the sender named `filename`.
pub fn incoming_type(inspector: &Inspector, meta_type: &str, filename: Option<&str>) -> String {
    let meta_type = meta_type.trim();
    let meta = Some(meta_type).filter(|t| !t.is_empty());
    // What WhatsApp itself would accept keeps its exact type (Opus as `audio/ogg; codecs=opus`).
    // Size limits are left out: a customer's 20 MB video is still a video.
    if let Ok(media) = inspector.type_only(meta, filename) {
        return media.content_type;
    }
    // Meta's word, when it names no type the gate accepts (those were just judged) and is
    // well-formed: lowercase essence, parameters dropped.
    let essence = meta_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let claimed = (is_wellformed_type(&essence) && normalize_declared(Some(&essence)).is_err())
        .then_some(essence);
    let head = inspector.head();
    match sniff(head, inspector.has_nul()) {
        Sniffed::Type(Mt::Text) => claimed
            .filter(|c| textual_claim(c))
            .unwrap_or_else(|| Mt::Text.as_str().to_owned()),
        Sniffed::Type(mt) | Sniffed::Bmff(mt) | Sniffed::Bad { mt, .. } => mt.as_str().to_owned(),
        Sniffed::Either(mt, _) => mt.as_str().to_owned(),
        Sniffed::Sticker { .. } => Mt::Webp.as_str().to_owned(),
        Sniffed::Other(t) => t.to_owned(),
        // A container of no accepted type: Meta's word for what is in it when it names one of
        // the kind (`application/epub+zip`, an APK), else the container.
        Sniffed::Zip(guess) | Sniffed::Cfb(guess) => match guess {
            Some(mt) => mt.as_str().to_owned(),
            None => claimed
                .filter(|c| c.starts_with("application/"))
                .unwrap_or_else(|| {
                    if head.starts_with(CFB_SIGNATURE) {
                        OLE_STORAGE.to_owned()
                    } else {
                        ZIP.to_owned()
                    }
                }),
        },
        Sniffed::Binary => claimed
            .filter(|c| !c.starts_with("text/"))
            .unwrap_or_else(|| OCTET_STREAM.to_owned()),
    }
}

/// The text rule's special case: text bytes Meta calls something textual (`text/html`,
/// `text/csv`, `application/json`, `image/svg+xml`) keep Meta's type; see [`incoming_type`].
fn textual_claim(claimed: &str) -> bool {
    claimed.starts_with("text/")
        || claimed.ends_with("+xml")
        || claimed.ends_with("+json")
        || matches!(
            claimed,
            "application/json" | "application/xml" | "application/javascript"
        )
}

/// The file extension for a stored type: the canonical one of an accepted type, a few common
/// others, else `bin`.
pub fn extension_for(content_type: &str) -> &'static str {
    if let Some(ext) = canonical_extension(content_type) {
        return ext;
    }
    match content_type.split(';').next().unwrap_or_default().trim() {
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "text/vcard" | "text/x-vcard" => "vcf",
        "application/zip" => "zip",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        "image/gif" => "gif",
        "image/heic" => "heic",
        "image/svg+xml" => "svg",
        "image/tiff" => "tif",
        "image/bmp" => "bmp",
        "audio/wav" => "wav",
        "audio/flac" => "flac",
        "audio/webm" | "video/webm" => "webm",
        "video/quicktime" => "mov",
        "application/rtf" => "rtf",
        "application/gzip" => "gz",
        "application/vnd.rar" => "rar",
        "application/x-7z-compressed" => "7z",
        "application/epub+zip" => "epub",
        "application/vnd.oasis.opendocument.text" => "odt",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        "application/vnd.oasis.opendocument.presentation" => "odp",
        "application/vnd.android.package-archive" => "apk",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(bytes: &[u8], meta: &str, name: Option<&str>) -> String {
        let mut i = Inspector::new();
        i.update(bytes);
        incoming_type(&i, meta, name)
    }

    #[test]
    fn the_bytes_decide_and_metas_word_fills_in_only_where_they_cannot() {
        let zip =
            b"PK\x03\x04\x14\0\0\0\x08\0\0\0\0\0\0\0\0\0\x05\0\0\0\x05\0\0\0\x05\0\0\0a.txthello";
        assert_eq!(of(zip, "application/zip", None), "application/zip");
        // A ZIP that claims to be a PDF is a ZIP; one Meta names an EPUB stays one.
        assert_eq!(of(zip, "application/pdf", None), "application/zip");
        assert_eq!(
            of(zip, "application/epub+zip", None),
            "application/epub+zip"
        );
        assert_eq!(of(zip, "text/html", None), "application/zip");
        // Text: what Meta calls it, when textual, else text/plain.
        let html = b"<!doctype html><script>alert(1)</script>";
        assert_eq!(of(html, "text/html", Some("page.html")), "text/html");
        assert_eq!(of(html, "image/jpeg", None), "text/plain");
        assert_eq!(of(html, "", None), "text/plain");
        // Accepted types keep their exact type, whatever Meta says.
        assert_eq!(
            of(b"%PDF-1.7\n...", "application/pdf", None),
            "application/pdf"
        );
        assert_eq!(of(b"GIF89a\x01\0\x01\0", "image/jpeg", None), "image/gif");
        // Unknown binary: Meta's word unless it claims an accepted type or text.
        let binary = b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
        assert_eq!(
            of(binary, "application/x-thing", None),
            "application/x-thing"
        );
        assert_eq!(of(binary, "image/png", None), "application/octet-stream");
        assert_eq!(of(binary, "text/html", None), "application/octet-stream");
        assert_eq!(of(binary, "bad type\r\n", None), "application/octet-stream");
    }

    #[test]
    fn media_types_are_checked_for_header_safety() {
        for good in [
            "text/html",
            "audio/ogg; codecs=opus",
            "application/vnd.ms-excel",
        ] {
            assert!(is_wellformed_type(good), "{good}");
        }
        for bad in [
            "",
            "text",
            "text/",
            "/html",
            "text/html\r\nx: y",
            "a b/c",
            "text/ä",
        ] {
            assert!(!is_wellformed_type(bad), "{bad:?}");
        }
        assert_eq!(extension_for("audio/ogg; codecs=opus"), "ogg");
        assert_eq!(extension_for("text/html"), "html");
        assert_eq!(extension_for("application/x-unknown"), "bin");
    }
}
