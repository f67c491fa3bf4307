//! Asset paths: the one gate between a URL and a storage key.
//!
//! Every public and admin route turns its URL path into an [`AssetPath`] here and nowhere else,
//! so a path that could climb out of the storage root (`..`, `%2e%2e`, `..%2f`, a backslash, an
//! absolute path, a drive letter) is refused in one place, whatever the encoding. Like
//! tower-http's `ServeDir`, the check works on decoded segments: the URL is percent-decoded once,
//! and a `%` left over after that (double encoding such as `%252e`) is refused rather than
//! decoded again.
//!
//! A path is also what a person reads: the last segment is the file name WhatsApp shows under a
//! document. So the gate refuses the characters that make a name display as something it is
//! not ([`INVISIBLE`]: `invoice<U+202E>exe.pdf` shows as `invoicefdp.exe`), and stores every
//! path in Unicode canonical composition (NFC), so `café` typed with a precomposed `é` or with
//! `e` and a combining accent is one asset, whichever a client, a keyboard or a file system
//! sends. Every check applies to the composed form, which is what is stored.

use std::borrow::Cow;
use std::fmt;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Longest accepted path, in bytes as stored (its segments' [`stored_len`] and the slashes).
///
/// S3 keys are at most 1024 bytes, and a record's key is `[<prefix>/]assets/<path>.json`:
/// 900 leaves 124 bytes for `assets/`, `.json` and a `storage.prefix` of up to
/// [`MAX_STORAGE_PREFIX_LEN`], so an accepted path fits on every backend.
pub const MAX_PATH_LEN: usize = 900;
/// Longest `storage.prefix` (as stored) the config accepts; see [`MAX_PATH_LEN`].
pub const MAX_STORAGE_PREFIX_LEN: usize = 100;
/// Longest accepted segment, in bytes as stored (see [`stored_len`]).
///
/// Every segment becomes a name on disk: a directory, or for the last one the record file
/// `<segment>.json`, which object_store's local backend first writes as `<segment>.json#<n>`
/// and renames. Common file systems (ext4, XFS, Btrfs, ZFS, APFS, NTFS) allow 255 bytes per
/// name, and so does a file-backed S3 server. 200 leaves room for `.json` (5 bytes) and the
/// staging suffix (`#` and a counter, 21 bytes at most) with 29 to spare, so an accepted path
/// can always be stored, on both backends; a longer one is a 400, not a storage failure
/// answered 503 forever. (S3 itself has no per-segment limit, only 1024 bytes per key: see
/// [`MAX_PATH_LEN`].)
pub const MAX_SEGMENT_LEN: usize = 200;

/// Characters refused anywhere in a path, beyond control characters: separators and wildcards
/// of other systems, and `%`, which would mean the path was encoded twice.
const FORBIDDEN: &[char] = &['\\', ':', '*', '?', '"', '<', '>', '|', '#', '%'];

/// Characters refused anywhere in a path because they are invisible or change the direction of
/// what follows, so a name shows as something it is not: bidirectional embeddings and
/// overrides (U+202A–U+202E), isolates (U+2066–U+2069) and marks (U+200E, U+200F, U+061C);
/// zero-width space, non-joiner and joiner (U+200B–U+200D) and word joiner (U+2060); the byte
/// order mark (U+FEFF); the line and paragraph separators (U+2028, U+2029).
pub const INVISIBLE: &[char] = &[
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}',
    '\u{FEFF}', '\u{2028}', '\u{2029}',
];

/// The longest input normalised at all. Canonical decomposition at most triples a string's
/// UTF-8 length (UAX #15; a Hangul syllable of 3 bytes is three jamo of 3), so the decomposed
/// spelling of an accepted path is well within this, and is the same path.
const MAX_RAW_PATH_LEN: usize = 4 * MAX_PATH_LEN;

/// A validated asset path: UTF-8 segments separated by `/`, none empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetPath(String);

/// Why a path was refused (always a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Empty path.
    #[error("the path is empty")]
    Empty,
    /// Over [`MAX_PATH_LEN`] bytes as stored.
    #[error(
        "the path is longer than {MAX_PATH_LEN} bytes as stored (each byte of a non-ASCII \
         character, and each of [ ] {{ }} ^ ` ~, takes 3)"
    )]
    TooLong,
    /// A segment over [`MAX_SEGMENT_LEN`] bytes as stored.
    #[error(
        "a path segment is longer than {MAX_SEGMENT_LEN} bytes as stored (each byte of a \
         non-ASCII character, and each of [ ] {{ }} ^ ` ~, takes 3)"
    )]
    SegmentTooLong,
    /// Starts with `/`.
    #[error("the path must be relative (no leading '/')")]
    Absolute,
    /// `a//b` or a trailing `/`.
    #[error("the path has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    /// `.` or `..`.
    #[error("'.' and '..' are not allowed as path segments")]
    DotSegment,
    /// A forbidden character.
    #[error(
        "the path contains a forbidden character {0:?} (control characters and \\ : * ? \" < > | # % are not allowed)"
    )]
    ForbiddenChar(char),
    /// An invisible or direction-changing character ([`INVISIBLE`]).
    #[error(
        "the path contains U+{:04X}, an invisible or direction-changing character: bidirectional \
         controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero-width characters \
         (U+200B-U+200D, U+2060), the byte order mark (U+FEFF) and line or paragraph separators \
         (U+2028, U+2029) are not allowed, as they make a name display as something it is not",
        u32::from(*.0)
    )]
    InvisibleChar(char),
    /// Percent-decoding produced bytes that are not UTF-8.
    #[error("the path is not valid UTF-8 once percent-decoded")]
    NotUtf8,
    /// A folder segment ending in `.json`, which would collide with the record layout.
    #[error("a folder name may not end in '.json'")]
    JsonFolder,
}

impl AssetPath {
    /// Validate an already decoded path, in its canonical composition (NFC): the accepted path
    /// is the composed form of `s`.
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_RAW_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let s = nfc(s);
        let s = s.as_ref();
        if s.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if let Some(c) = s.chars().find(|c| c.is_control() || FORBIDDEN.contains(c)) {
            return Err(PathError::ForbiddenChar(c));
        }
        if let Some(c) = s.chars().find(|c| INVISIBLE.contains(c)) {
            return Err(PathError::InvisibleChar(c));
        }
        if stored_path_len(s) > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let segments: Vec<&str> = s.split('/').collect();
        let last = segments.len() - 1;
        for (i, seg) in segments.iter().enumerate() {
            match *seg {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment),
                _ if stored_len(seg) > MAX_SEGMENT_LEN => return Err(PathError::SegmentTooLong),
                _ if i < last && seg.ends_with(".json") => return Err(PathError::JsonFolder),
                _ => {}
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// Percent-decode a raw URL path tail once, then validate it.
    pub fn from_url(raw: &str) -> Result<Self, PathError> {
        Self::parse(&decode_once(raw)?)
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the file name a document is sent with by default.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The folder part (empty for a top-level asset).
    pub fn folder(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(f, _)| f)
    }
}

impl fmt::Display for AssetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `s` in Unicode canonical composition (NFC), without a copy when it already is (an ASCII
/// path always is).
pub fn nfc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// The length of a segment as stored. Storage keys percent-encode every byte of a non-ASCII
/// character and the ASCII characters S3 advises against that a path may hold (`[`, `]`, `{`,
/// `}`, `^`, `` ` ``, `~`), each then taking 3 bytes, and the local backend names its files by
/// the key (`é` is stored as `%C3%A9`). Measured by object_store itself, so it cannot drift
/// from the names it writes.
pub fn stored_len(segment: &str) -> usize {
    object_store::path::PathPart::from(segment).as_ref().len()
}

/// The length of a `/`-separated path as stored: its segments' [`stored_len`] and the slashes.
pub fn stored_path_len(path: &str) -> usize {
    path.split('/').map(stored_len).sum::<usize>() + path.matches('/').count()
}

/// Validate a folder name for a policy rule or a listing prefix: the same rules as an asset path,
/// with surrounding slashes trimmed first (`promo/` and `/promo` both mean `promo`).
pub fn parse_folder(raw: &str) -> Result<String, PathError> {
    let trimmed = raw.trim_matches('/');
    let folder = AssetPath::parse(trimmed)?;
    // A folder's last segment is a folder too: no asset could ever live below `x.json`.
    if folder.file_name().ends_with(".json") {
        return Err(PathError::JsonFolder);
    }
    Ok(folder.0)
}

/// Percent-decode a raw URL path tail once, then validate it as a folder ([`parse_folder`]):
/// what a `{folder}` in an admin route goes through.
pub fn folder_from_url(raw: &str) -> Result<String, PathError> {
    parse_folder(&decode_once(raw)?)
}

/// Percent-decode once; a `%` left over is then refused by the validation, never decoded again.
fn decode_once(raw: &str) -> Result<std::borrow::Cow<'_, str>, PathError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::NotUtf8)
}

/// Percent-encode a path for a URL, keeping `/` as the separator.
pub fn url_encode(path: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    /// RFC 3986 unreserved characters plus the sub-delims that are safe in a path segment.
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'!')
        .remove(b'$')
        .remove(b'&')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'+')
        .remove(b',')
        .remove(b';')
        .remove(b'=')
        .remove(b'@');
    path.split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "a.jpg",
            "promo/banner.jpg",
            "promo/x/y/z.pdf",
            "Promo Banner (1).jpg",
            "café/menü.png",
            "a..b/c...d",
            ".well-known/x",
            "v1.2/file~1 [final].png",
        ] {
            assert_eq!(AssetPath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_every_escape_and_malformed_shape() {
        use PathError::*;
        let long_seg = "a".repeat(256);
        let long_path = "a/".repeat(600);
        let cases: Vec<(&str, PathError)> = vec![
            ("", Empty),
            ("..", DotSegment),
            ("../etc/passwd", DotSegment),
            ("a/../../b", DotSegment),
            ("a/./b", DotSegment),
            ("a/..", DotSegment),
            ("/etc/passwd", Absolute),
            ("a//b", EmptySegment),
            ("a/", EmptySegment),
            ("a\\..\\b", ForbiddenChar('\\')),
            ("C:/windows", ForbiddenChar(':')),
            ("c:\\x", ForbiddenChar(':')),
            ("a\0b", ForbiddenChar('\0')),
            ("a\nb", ForbiddenChar('\n')),
            ("a\u{7f}b", ForbiddenChar('\u{7f}')),
            ("a\u{85}b", ForbiddenChar('\u{85}')),
            ("%2e%2e/x", ForbiddenChar('%')),
            ("x.json/a.jpg", JsonFolder),
            (&long_seg, SegmentTooLong),
            (&long_path, TooLong),
        ];
        for (input, want) in cases {
            assert_eq!(AssetPath::parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn segments_are_measured_as_stored() {
        use PathError::SegmentTooLong;
        assert_eq!(stored_len("banner.jpg"), 10);
        assert_eq!(stored_len("é"), 6); // stored as %C3%A9
        assert_eq!(stored_len("[~]"), 9);
        let ascii = "a".repeat(MAX_SEGMENT_LEN);
        // Two bytes per character, stored as six: 33 × 6 + 2 = 200.
        let accented = format!("{}ab", "é".repeat(33));
        assert_eq!(stored_len(&accented), MAX_SEGMENT_LEN);
        for longest in [&ascii, &accented] {
            assert!(AssetPath::parse(longest).is_ok());
            assert!(AssetPath::parse(&format!("promo/{longest}")).is_ok());
            assert!(AssetPath::parse(&format!("{longest}/x.jpg")).is_ok());
            assert_eq!(parse_folder(longest).as_deref(), Ok(longest.as_str()));
            let over = format!("{longest}a");
            assert_eq!(AssetPath::parse(&over), Err(SegmentTooLong));
            assert_eq!(
                AssetPath::parse(&format!("promo/{over}")),
                Err(SegmentTooLong)
            );
            assert_eq!(
                AssetPath::parse(&format!("{over}/x.jpg")),
                Err(SegmentTooLong)
            );
            assert_eq!(parse_folder(&over), Err(SegmentTooLong));
        }
        // 100 accented characters are 200 bytes, but 600 as stored.
        assert_eq!(AssetPath::parse(&"é".repeat(100)), Err(SegmentTooLong));
    }

    #[test]
    fn whole_paths_are_measured_as_stored() {
        // Four full segments and the slashes: 4 × 200 + 3 = 803 bytes; one more segment of
        // 96 makes 900, the longest that keeps `<prefix>/assets/<path>.json` within S3's 1024.
        let seg = "a".repeat(MAX_SEGMENT_LEN);
        let longest = format!("{seg}/{seg}/{seg}/{seg}/{}", "b".repeat(96));
        assert_eq!(longest.len(), MAX_PATH_LEN);
        assert!(AssetPath::parse(&longest).is_ok());
        assert_eq!(
            AssetPath::parse(&format!("{longest}b")),
            Err(PathError::TooLong)
        );
        // 450 bytes of UTF-8, but 1350 as stored: too long for an S3 key.
        let accented = vec!["é".repeat(30); 8].join("/");
        assert!(accented.len() < MAX_PATH_LEN);
        assert_eq!(AssetPath::parse(&accented), Err(PathError::TooLong));
    }

    #[test]
    fn folders_from_urls_are_decoded_once_then_held_to_the_folder_rules() {
        assert_eq!(folder_from_url("promo/2026").as_deref(), Ok("promo/2026"));
        assert_eq!(folder_from_url("/promo/").as_deref(), Ok("promo"));
        assert_eq!(folder_from_url("%2Fpromo%2F").as_deref(), Ok("promo"));
        assert_eq!(folder_from_url("caf%C3%A9").as_deref(), Ok("café"));
        assert_eq!(folder_from_url("x.json"), Err(PathError::JsonFolder));
        assert_eq!(folder_from_url("a/x%2Ejson"), Err(PathError::JsonFolder));
        assert_eq!(folder_from_url("x.json/a"), Err(PathError::JsonFolder));
        assert_eq!(folder_from_url("promo/%2E%2E"), Err(PathError::DotSegment));
        assert_eq!(
            folder_from_url("a%252e"),
            Err(PathError::ForbiddenChar('%'))
        );
        assert_eq!(folder_from_url("%c0%ae"), Err(PathError::NotUtf8));
        assert_eq!(folder_from_url(""), Err(PathError::Empty));
    }

    #[test]
    fn decodes_once_and_refuses_encoded_escapes() {
        assert_eq!(
            AssetPath::from_url("promo/caf%C3%A9.jpg").unwrap().as_str(),
            "promo/café.jpg"
        );
        assert_eq!(AssetPath::from_url("%2e%2e/x"), Err(PathError::DotSegment));
        assert_eq!(
            AssetPath::from_url("a/%2E%2E/x"),
            Err(PathError::DotSegment)
        );
        assert_eq!(AssetPath::from_url("..%2fetc"), Err(PathError::DotSegment));
        assert_eq!(
            AssetPath::from_url("a%2f..%2f..%2fb"),
            Err(PathError::DotSegment)
        );
        assert_eq!(
            AssetPath::from_url("%252e%252e/x"),
            Err(PathError::ForbiddenChar('%'))
        );
        assert_eq!(
            AssetPath::from_url("..%5cx"),
            Err(PathError::ForbiddenChar('\\'))
        );
        assert_eq!(
            AssetPath::from_url("a%00b"),
            Err(PathError::ForbiddenChar('\0'))
        );
        // Overlong UTF-8 for '.' (0xC0 0xAE) is not UTF-8 at all.
        assert_eq!(
            AssetPath::from_url("%c0%ae%c0%ae/x"),
            Err(PathError::NotUtf8)
        );
        assert_eq!(
            AssetPath::from_url("%2fetc/passwd"),
            Err(PathError::Absolute)
        );
    }

    #[test]
    fn paths_are_composed_and_invisible_characters_refused() {
        // Decomposed and precomposed spellings are one path, the composed one; so are they
        // through the URL, and as folders.
        for (typed, stored) in [
            ("cafe\u{301}.pdf", "caf\u{e9}.pdf"),
            ("caf\u{e9}.pdf", "caf\u{e9}.pdf"),
            (
                "promo/menu\u{308}/a\u{30a}.jpg",
                "promo/men\u{fc}/\u{e5}.jpg",
            ),
            // Hangul conjoining jamo compose to one syllable; the Ångström and Kelvin signs are
            // canonically A-ring and K.
            ("\u{1100}\u{1161}\u{11a8}.png", "\u{ac01}.png"),
            ("\u{212b}\u{212a}.png", "\u{c5}K.png"),
        ] {
            assert_eq!(
                AssetPath::parse(typed).unwrap().as_str(),
                stored,
                "{typed:?}"
            );
            assert_eq!(
                AssetPath::from_url(&url_encode(typed)).unwrap().as_str(),
                stored
            );
            assert_eq!(parse_folder(typed).unwrap(), stored);
        }
        assert_eq!(
            AssetPath::from_url("cafe%CC%81.pdf"),
            AssetPath::from_url("caf%C3%A9.pdf")
        );
        assert_eq!(
            url_encode(AssetPath::parse("cafe\u{301}.pdf").unwrap().as_str()),
            "caf%C3%A9.pdf"
        );
        // Measured composed: 300 decomposed bytes of e + U+0301 are 200 composed ones, 600 as
        // stored, so too long; 33 of them and "ab" are the longest segment, either way typed.
        let decomposed = format!("{}ab", "e\u{301}".repeat(33));
        assert_eq!(decomposed.len(), 101);
        assert!(AssetPath::parse(&decomposed).is_ok());
        assert_eq!(
            AssetPath::parse(&format!("{decomposed}a")),
            Err(PathError::SegmentTooLong)
        );
        assert_eq!(
            AssetPath::parse(&"e\u{301}".repeat(1000)),
            Err(PathError::TooLong)
        );

        for &c in INVISIBLE {
            for path in [
                format!("invoice{c}exe.pdf"),
                format!("{c}a.pdf"),
                format!("a.pdf{c}"),
                format!("docs{c}/a.pdf"),
            ] {
                assert_eq!(
                    AssetPath::parse(&path),
                    Err(PathError::InvisibleChar(c)),
                    "{path:?}"
                );
                assert_eq!(parse_folder(&path), Err(PathError::InvisibleChar(c)));
                assert_eq!(
                    AssetPath::from_url(&url_encode(&path)),
                    Err(PathError::InvisibleChar(c))
                );
            }
        }
        assert_eq!(
            PathError::InvisibleChar('\u{202E}').to_string(),
            "the path contains U+202E, an invisible or direction-changing character: \
             bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), \
             zero-width characters (U+200B-U+200D, U+2060), the byte order mark (U+FEFF) and \
             line or paragraph separators (U+2028, U+2029) are not allowed, as they make a name \
             display as something it is not"
        );
        // Visible neighbours of the refused ones are ordinary characters.
        for ok in [
            "a\u{2010}b.pdf",
            "\u{5d0}\u{5d1}.pdf",
            "\u{645}\u{644}\u{641}.pdf",
            "x\u{2070}.png",
        ] {
            assert_eq!(AssetPath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn folder_and_file_name() {
        let p = AssetPath::parse("promo/x/terms.pdf").unwrap();
        assert_eq!(p.file_name(), "terms.pdf");
        assert_eq!(p.folder(), "promo/x");
        assert_eq!(AssetPath::parse("a.pdf").unwrap().folder(), "");
        assert_eq!(parse_folder("/promo/").unwrap(), "promo");
        assert!(parse_folder("/").is_err());
    }

    #[test]
    fn url_encoding_round_trips_through_from_url() {
        let p = "promo/Café banner (1) [v2].jpg";
        let enc = url_encode(p);
        assert_eq!(enc, "promo/Caf%C3%A9%20banner%20(1)%20%5Bv2%5D.jpg");
        assert_eq!(AssetPath::from_url(&enc).unwrap().as_str(), p);
    }

    proptest! {
        /// Whatever the input, an accepted path never has a segment that could climb, never
        /// starts at the root, and stays inside a root directory when joined to it; it is
        /// composed (NFC), the composition of what was typed, holds no invisible character, and
        /// parses to itself.
        #[test]
        fn accepted_paths_stay_under_the_root(s in "[a-z./\\\\%:]{0,20}|\\PC{0,30}|[ae\u{301}\u{308}\u{200b}-\u{200f}\u{202a}-\u{202e}/]{1,12}") {
            for p in [AssetPath::parse(&s), AssetPath::from_url(&s)].into_iter().flatten() {
                {
                    prop_assert!(unicode_normalization::is_nfc(p.as_str()));
                    prop_assert!(!p.as_str().contains(INVISIBLE));
                    prop_assert_eq!(AssetPath::parse(p.as_str()), Ok(p.clone()));
                }
                if let Ok(parsed) = AssetPath::parse(&s) {
                    prop_assert_eq!(parsed.as_str(), nfc(&s));
                }
                {
                    let root = std::path::Path::new("/srv/root");
                    let joined = root.join(p.as_str());
                    prop_assert!(!p.as_str().starts_with('/'));
                    prop_assert!(p.as_str().split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."));
                    prop_assert!(joined.components().all(|c| !matches!(c, std::path::Component::ParentDir)));
                    prop_assert!(joined.starts_with(root));
                }
            }
        }

        #[test]
        fn url_encode_round_trips(segs in proptest::collection::vec("[^/\\x00-\\x1f\\\\:*?\"<>|#%]{1,12}", 1..4)) {
            let path = segs.join("/");
            if let Ok(p) = AssetPath::parse(&path) {
                prop_assert_eq!(AssetPath::from_url(&url_encode(p.as_str())).unwrap(), p);
            }
        }
    }
}
