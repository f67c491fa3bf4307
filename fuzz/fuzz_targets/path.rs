//! Path validation: `AssetPath::parse`, `AssetPath::from_url`, `parse_folder` and `url_encode`
//! on arbitrary input.
//!
//! Invariants, for every path the gate accepts:
//! * it has the documented shape: not empty, at most `MAX_PATH_LEN` bytes, no leading `/`, no
//!   empty, `.` or `..` segment, no segment over `MAX_SEGMENT_LEN`, no control character and none
//!   of `\ : * ? " < > | # %`, no invisible or direction-changing character (`INVISIBLE`), no
//!   folder segment ending in `.json`;
//! * it is in canonical composition (NFC), and is the composition of the input: `parse` changes
//!   nothing else, and the input's decomposed (NFD) spelling parses to the same path;
//! * joined under a root directory with `Path::join` it stays under that root: every component
//!   it adds is a plain name (no `ParentDir`, `CurDir`, `RootDir` or `Prefix`), one per segment;
//! * the storage key the store builds from it (`assets/<path>.json`) maps, through
//!   object_store's local backend, to a file under the storage root, and back to the same path;
//!   every name on that file's path fits a file system's 255 bytes, the record file's even while
//!   object_store stages it as `<name>#<n>` (so no accepted path fails to store);
//! * `from_url(url_encode(p)) == p`, parsing is idempotent, and `from_url` of a string without
//!   `%` is `parse` of it.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use media_origin::asset::path::{
    AssetPath, INVISIBLE, MAX_PATH_LEN, MAX_SEGMENT_LEN, PathError, parse_folder, url_encode,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use percent_encoding::percent_decode_str;
use unicode_normalization::UnicodeNormalization;

const FORBIDDEN: &[char] = &['\\', ':', '*', '?', '"', '<', '>', '|', '#', '%'];
/// The longest file name common file systems allow, in bytes.
const NAME_MAX: usize = 255;
/// The longest suffix object_store's local backend stages a write under: `#` and a u64.
const STAGING_SUFFIX: &str = "#18446744073709551615";

/// A real directory for object_store's local backend (it canonicalises its root, so the
/// directory must exist); nothing is ever written to it.
fn storage() -> &'static (LocalFileSystem, PathBuf) {
    static STORE: OnceLock<(LocalFileSystem, PathBuf)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join("media-origin-fuzz-root");
        std::fs::create_dir_all(&dir).expect("create the fuzz storage root");
        let root = std::fs::canonicalize(&dir).expect("canonicalise the fuzz storage root");
        let fs = LocalFileSystem::new_with_prefix(&root).expect("local store");
        (fs, root)
    })
}

/// The documented shape of a validated path or folder.
fn check_shape(p: &str) {
    assert!(!p.is_empty(), "accepted an empty path");
    assert!(
        p.len() <= MAX_PATH_LEN,
        "accepted an over-long path: {} bytes",
        p.len()
    );
    assert!(!p.starts_with('/'), "accepted an absolute path {p:?}");
    for c in p.chars() {
        assert!(!c.is_control(), "accepted a control character in {p:?}");
        assert!(!FORBIDDEN.contains(&c), "accepted {c:?} in {p:?}");
        assert!(!INVISIBLE.contains(&c), "accepted {c:?} in {p:?}");
    }
    assert!(
        unicode_normalization::is_nfc(p),
        "accepted a path not in NFC: {p:?}"
    );
    let segments: Vec<&str> = p.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        assert!(!seg.is_empty(), "accepted an empty segment in {p:?}");
        assert!(
            *seg != "." && *seg != "..",
            "accepted a dot segment in {p:?}"
        );
        assert!(
            seg.len() <= MAX_SEGMENT_LEN,
            "accepted an over-long segment in {p:?}"
        );
        if i + 1 < segments.len() {
            assert!(!seg.ends_with(".json"), "accepted a .json folder in {p:?}");
        }
    }
}

/// Joined to a root, the path adds exactly one plain component per segment and stays below it.
fn check_join(p: &str) {
    let segments = p.split('/').count();
    let rel: Vec<Component<'_>> = Path::new(p).components().collect();
    assert_eq!(
        rel.len(),
        segments,
        "{p:?} is not one component per segment: {rel:?}"
    );
    for c in &rel {
        assert!(
            matches!(c, Component::Normal(_)),
            "{p:?} has component {c:?}"
        );
    }
    for root in [Path::new("/srv/media"), Path::new("storage")] {
        let joined = root.join(p);
        assert!(joined.starts_with(root), "{p:?} left {root:?}: {joined:?}");
        let below: Vec<Component<'_>> = joined
            .components()
            .skip(root.components().count())
            .collect();
        assert_eq!(below.len(), segments, "{p:?} under {root:?}: {joined:?}");
        assert!(
            below.iter().all(|c| matches!(c, Component::Normal(_))),
            "{joined:?}"
        );
    }
}

/// What the store does with an asset path: the record key `assets/<path>.json` (as
/// `store::record_key` builds it), the file object_store's local backend puts it in, and the
/// way back (as `store::key_to_asset_path` decodes it).
fn check_storage_key(p: &AssetPath) {
    let key = Key::from(format!("assets/{p}.json"));
    let (fs, root) = storage();
    let file = fs
        .path_to_filesystem(&key)
        .unwrap_or_else(|e| panic!("no file for accepted path {p:?}: {e}"));
    assert!(
        file.starts_with(root),
        "{p:?} is stored outside the root: {file:?}"
    );
    let below: Vec<Component<'_>> = file.components().skip(root.components().count()).collect();
    assert!(
        below.iter().all(|c| matches!(c, Component::Normal(_))),
        "{p:?} -> {file:?}"
    );
    // assets/ + one component per segment.
    assert_eq!(
        below.len(),
        1 + p.as_str().split('/').count(),
        "{p:?} -> {file:?}"
    );
    // Every name fits NAME_MAX, the record file's with the longest staging suffix too.
    for (i, c) in below.iter().enumerate() {
        let staging = if i + 1 == below.len() {
            STAGING_SUFFIX.len()
        } else {
            0
        };
        assert!(
            c.as_os_str().len() + staging <= NAME_MAX,
            "{p:?} -> a name of {} bytes (+{staging} while staged): {c:?}",
            c.as_os_str().len()
        );
    }

    let back = key
        .as_ref()
        .strip_prefix("assets/")
        .and_then(|k| k.strip_suffix(".json"))
        .and_then(|raw| percent_decode_str(raw).decode_utf8().ok());
    assert_eq!(
        back.as_deref(),
        Some(p.as_str()),
        "record key {key:?} does not map back"
    );
}

fn check_accepted(p: &AssetPath) {
    let s = p.as_str();
    check_shape(s);
    check_join(s);
    check_storage_key(p);

    assert_eq!(p.to_string(), s);
    assert_eq!(
        AssetPath::parse(s).as_ref(),
        Ok(p),
        "parse is not idempotent"
    );
    let encoded = url_encode(s);
    assert_eq!(
        AssetPath::from_url(&encoded).as_ref(),
        Ok(p),
        "url_encode({s:?}) = {encoded:?} does not round-trip"
    );
    assert!(
        encoded.is_ascii(),
        "url_encode left non-ASCII in {encoded:?}"
    );

    // folder()/file_name() split the path at its last '/'.
    let (folder, name) = (p.folder(), p.file_name());
    assert!(!name.is_empty() && !name.contains('/'));
    if folder.is_empty() {
        assert_eq!(name, s);
    } else {
        assert_eq!(format!("{folder}/{name}"), s);
        assert_eq!(parse_folder(folder).as_deref(), Ok(folder));
    }
}

fn check_str(s: &str) {
    let parsed = AssetPath::parse(s);
    let composed: String = s.nfc().collect();
    if let Ok(p) = &parsed {
        check_accepted(p);
        assert_eq!(
            p.as_str(),
            composed,
            "parse changed more than the composition"
        );
        let decomposed: String = s.nfd().collect();
        assert_eq!(
            AssetPath::parse(&decomposed).as_ref(),
            Ok(p),
            "the decomposed spelling {decomposed:?} is another path"
        );
    }
    let from_url = AssetPath::from_url(s);
    if let Ok(p) = &from_url {
        check_accepted(p);
    }
    if !s.contains('%') {
        // Nothing to decode: the URL form is the path itself.
        assert_eq!(from_url, parsed, "from_url and parse disagree on {s:?}");
    } else {
        // A '%' that survives decoding is refused, never decoded a second time.
        if let Ok(p) = &from_url {
            assert!(!p.as_str().contains('%'));
        }
    }
    if let Ok(f) = parse_folder(s) {
        check_shape(&f);
        check_join(&f);
        assert_eq!(
            f,
            s.trim_matches('/').nfc().collect::<String>(),
            "parse_folder changed more than the slashes and the composition"
        );
        assert_eq!(parse_folder(&f).as_deref(), Ok(f.as_str()));
        // A file in the folder is an accepted path, unless the whole is too long: no segment
        // of an accepted folder ends in `.json`, the last one included (the admin API's
        // policy and access folders go through parse_folder).
        assert!(
            !f.split('/').any(|seg| seg.ends_with(".json")),
            "accepted the folder {f:?}"
        );
        match AssetPath::parse(&format!("{f}/x.jpg")) {
            Ok(p) => check_accepted(&p),
            Err(e) => assert!(
                matches!(e, PathError::TooLong),
                "folder {f:?} accepted, {f:?}/x.jpg refused: {e:?}"
            ),
        }
    } else if let Err(e) = parse_folder(s) {
        assert_ne!(e, PathError::NotUtf8, "parse_folder never decodes");
    }
}

/// Every byte as `%XX`.
fn encode_every_byte(data: &[u8]) -> String {
    data.iter().map(|b| format!("%{b:02X}")).collect()
}

fuzz_target!(|data: &[u8]| {
    // The URL is decoded exactly once: fully encoded input means the bytes themselves.
    let fully_encoded = AssetPath::from_url(&encode_every_byte(data));
    match std::str::from_utf8(data) {
        Ok(s) => {
            check_str(s);
            assert_eq!(
                fully_encoded,
                AssetPath::parse(s),
                "decoding is not exactly once"
            );
        }
        Err(_) => {
            assert_eq!(fully_encoded, Err(PathError::NotUtf8));
            check_str(&String::from_utf8_lossy(data));
        }
    }
});
