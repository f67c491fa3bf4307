//! The upload gate on arbitrary bytes: `media_kind::Inspector` fed in chunks, then `finish`.
//!
//! Input: the first byte chooses the chunk size (1 to 256) and whether a declared type and a
//! file name are passed; the rest is the content. Box trees that lie about sizes, nest deeply
//! or claim absurd counts are the interesting inputs (seeds: real MP4, M4A and JPEG files).
//!
//! Invariants:
//! * no panic, and bounded time (libFuzzer's -timeout) and memory (-rss_limit_mb);
//! * the answer does not depend on how the bytes were chunked;
//! * an accepted content's type is an exact stored type of the kind given, within its limit;
//! * the provisional (head-only) decision never accepts what is too large for its kind;
//! * every refusal's `fix`, if any, is a single line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_origin::media_kind::{self, Inspector};

const DECLARED: [Option<&str>; 4] = [None, Some("video/mp4"), Some("audio/mp4"), Some("image/jpeg")];
const NAMES: [Option<&str>; 3] = [None, Some("clip.mp4"), Some("voice.m4a")];

fuzz_target!(|data: &[u8]| {
    let Some((&control, content)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control & 0x3f) * 4 + 1;
    let declared = DECLARED[usize::from(control >> 6)];
    let name = NAMES[usize::from(control % 3)];

    let mut chunked = Inspector::new();
    for c in content.chunks(chunk) {
        chunked.update(c);
    }
    let whole = media_kind::inspect(declared, name, content);
    let answer = chunked.finish(declared, name);
    assert_eq!(answer, whole, "chunking changed the answer");
    match &answer {
        Ok(m) => {
            assert_eq!(media_kind::kind_of(&m.content_type), Some(m.kind));
            assert!(content.len() as u64 <= m.kind.max_size());
        }
        Err(e) => {
            if let Some(fix) = e.fix() {
                assert!(!fix.contains('\n'), "fix spans lines: {fix:?}");
            }
        }
    }
    if let Ok(m) = chunked.provisional(declared, name) {
        assert!(content.len() as u64 <= m.kind.max_size());
    }
    let _ = chunked.type_only(declared, name);
});
