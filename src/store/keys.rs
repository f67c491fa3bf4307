//! Where things lie in the store: the keys of records, blobs and the policy file, and the way
//! back from a record's key to its asset path.

use object_store::path::Path as Key;

pub(super) fn record_key(path: &str) -> Key {
    Key::from(format!("assets/{path}.json"))
}

pub(super) fn blob_key(sha256: &str) -> Key {
    Key::from(format!("blobs/sha256/{}/{}", &sha256[..2], sha256))
}

pub(super) const POLICIES_KEY: &str = "policies.json";

/// `assets/promo/a.jpg.json` → `promo/a.jpg`; `None` for anything else.
pub(super) fn key_to_asset_path(key: &Key) -> Option<String> {
    decode_key(
        key.as_ref()
            .strip_prefix("assets/")?
            .strip_suffix(".json")?,
    )
}

/// A key's text as the path it stands for: object_store percent-encodes some characters in
/// keys, and asset paths never contain '%'.
pub(super) fn decode_key(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The key under which a folder's records lie (`""`: all of them).
pub(super) fn folder_key(folder: &str) -> Key {
    if folder.is_empty() {
        Key::from("assets")
    } else {
        Key::from(format!("assets/{folder}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_map_back_to_paths() {
        for p in ["a.jpg", "promo/x/Café [1].png", "a.json"] {
            assert_eq!(key_to_asset_path(&record_key(p)).as_deref(), Some(p));
        }
        assert_eq!(key_to_asset_path(&Key::from("blobs/sha256/ab/abc")), None);
    }
}
