//! The rules on caching: `Cache-Control`, `Last-Modified` and `ETag`, read as Meta reads them
//! (WHATSAPP_MEDIA.md §2's table). Meta documents exactly four directives; anything else is
//! cached by undocumented rules or not at all, which fails silently (every send fetches the asset
//! again, or an old copy keeps being sent), so these checks say what Meta will do, not only
//! whether the header is well formed.

use super::report::{Caching, Check, Level, check};
use crate::policy::CachePolicy;

const DECLARE: &str = "declare one of `max-age=N`, `no-cache` (with Last-Modified), `no-store`, \
                       `private`";

/// The `cache-control`, `last-modified` and `etag` checks, and what Meta will do (§2's table).
pub(super) fn caching_checks(
    cache_control: Option<&str>,
    last_modified: Option<&str>,
    etag: Option<&str>,
) -> (Vec<Check>, Caching) {
    let mut checks = Vec::with_capacity(3);
    let policy = cache_control.map(|v| (v, v.parse::<CachePolicy>()));
    let mut caching = match (&policy, last_modified, etag) {
        (None, None, None) => {
            checks.push(check(
                "cache-control",
                Level::Fail,
                format!(
                    "missing: with none of Cache-Control, Last-Modified and ETag Meta does not \
                     cache it at all (README: What each policy makes Meta do); {DECLARE}"
                ),
            ));
            Caching::Undeclared("there is no Cache-Control, so Meta does not cache it".into())
        }
        (None, None, Some(_)) => {
            // Documented, not refused: Meta caches, only not in a way anyone can predict.
            checks.push(check(
                "cache-control",
                Level::Warn,
                format!(
                    "missing: with only an ETag Meta caches it by its own undisclosed logic \
                     (README: What each policy makes Meta do), so how long it keeps a copy cannot be known; {DECLARE} to decide it"
                ),
            ));
            Caching::Undisclosed
        }
        (None, Some(_), _) => {
            checks.push(check(
                "cache-control",
                Level::Fail,
                format!(
                    "missing: Last-Modified without Cache-Control is not a case Meta documents \
                     (Meta pairs it with no-cache; README: What each policy makes Meta do), so expect no caching; {DECLARE}"
                ),
            ));
            Caching::Undeclared(
                "there is no Cache-Control; Last-Modified alone is not documented to cache".into(),
            )
        }
        (Some((value, Ok(p))), _, _) => {
            let (what, caching) = declared_caching(*p);
            checks.push(check(
                "cache-control",
                Level::Ok,
                format!("{value}: {what}"),
            ));
            caching
        }
        // Several directives, one of them Meta's (`public, max-age=604800, immutable`, what CDNs
        // send by default): Meta documents single directives but refuses nothing, so this is a
        // warning; the report assumes the documented directive is the one Meta reads.
        (Some((value, Err(_))), _, _)
            if value.contains(',')
                && let Some(p) = intended_policy(value) =>
        {
            let (what, caching) = declared_caching(p);
            checks.push(check(
                "cache-control",
                Level::Warn,
                format!(
                    "{value}: several directives; Meta documents a single one (max-age=N, \
                     no-cache, no-store or private; README: What each policy makes Meta do) and not how it reads a list, so this \
                     assumes it reads `{p}`: {what}; to be sure, serve `Cache-Control: {p}` alone"
                ),
            ));
            caching
        }
        (Some((value, Err(_))), _, _) => {
            let intended = intended_policy(value);
            let advice = match intended {
                Some(p) => format!("serve `Cache-Control: {p}` alone"),
                None => DECLARE.to_owned(),
            };
            let shape = if value.contains(',') {
                "several directives, none of them one Meta documents"
            } else {
                "not a directive Meta documents"
            };
            checks.push(check(
                "cache-control",
                Level::Fail,
                format!(
                    "{value}: {shape}; Meta documents exactly four forms (max-age=N, no-cache, \
                     no-store, private; README: What each policy makes Meta do) and how it treats anything else is undocumented: \
                     it may not cache it as intended; {advice}"
                ),
            ));
            Caching::Undeclared(format!(
                "Cache-Control `{value}` is not one of the four forms Meta documents"
            ))
        }
    };

    let no_cache = caching == Caching::UntilLastModifiedChanges;
    checks.push(match last_modified {
        None if no_cache => {
            caching = Caching::Undeclared(
                "no-cache without Last-Modified: Meta has nothing to refresh by".into(),
            );
            check(
                "last-modified",
                Level::Fail,
                "missing: no-cache requires Last-Modified (README: What each policy makes Meta do); without it Meta cannot tell \
                 when to refresh its copy",
            )
        }
        None => check(
            "last-modified",
            Level::Ok,
            "absent (Meta uses it only with no-cache, README: What each policy makes Meta do)",
        ),
        Some(v) => match (httpdate::parse_http_date(v), no_cache) {
            (Err(_), true) => check(
                "last-modified",
                Level::Warn,
                format!(
                    "{v}: not an HTTP date (RFC 9110 §5.6.7); Meta compares it to refresh its \
                     copy (README: What each policy makes Meta do), so it must still change on every content change"
                ),
            ),
            (Ok(_), true) => check(
                "last-modified",
                Level::Ok,
                format!(
                    "{v}: Meta replaces its copy when this changes (README: What each policy makes Meta do); it must change on every \
                     content change"
                ),
            ),
            (_, false) => check(
                "last-modified",
                Level::Ok,
                format!("{v} (Meta uses it only with no-cache, README: What each policy makes Meta do)"),
            ),
        },
    });

    checks.push(match etag {
        Some(v) if cache_control.is_none() && last_modified.is_none() => check(
            "etag",
            Level::Warn,
            format!(
                "{v}: used: with no Cache-Control and no Last-Modified Meta caches by its own \
                 undisclosed logic (README: What each policy makes Meta do)"
            ),
        ),
        Some(v) => check(
            "etag",
            Level::Ok,
            format!(
                "{v}: ignored by Meta, since Cache-Control or Last-Modified is present (README: What each policy makes Meta do); it \
                 still serves browsers and CDNs"
            ),
        ),
        None => check(
            "etag",
            Level::Ok,
            "absent (Meta ignores it when Cache-Control or Last-Modified is present, README: What each policy makes Meta do)",
        ),
    });
    (checks, caching)
}

/// What Meta does with one of its four directives (§2's table), as the `cache-control` check
/// says it, and as the report's caching.
fn declared_caching(p: CachePolicy) -> (String, Caching) {
    match p {
        CachePolicy::MaxAge(0) => (
            "Meta may not reuse it; every send fetches it again (README: What each policy makes Meta do)".to_owned(),
            Caching::For(0),
        ),
        CachePolicy::MaxAge(n) => (
            format!(
                "Meta caches it by URL for {n} s, then fetches it again (README: What each policy makes Meta do); a replaced asset \
                 needs a new URL to reach customers sooner"
            ),
            Caching::For(n),
        ),
        CachePolicy::NoCache => (
            "Meta may cache it and replaces its copy when Last-Modified changes (README: What each policy makes Meta do)".to_owned(),
            Caching::UntilLastModifiedChanges,
        ),
        CachePolicy::NoStore | CachePolicy::Private => (
            "Meta does not cache it; every send fetches it again (README: What each policy makes Meta do)".to_owned(),
            Caching::NotCached(p),
        ),
    }
}

/// The documented directive a multi-directive or misspelt `Cache-Control` most likely means,
/// the most restrictive first.
fn intended_policy(value: &str) -> Option<CachePolicy> {
    let directives: Vec<String> = value
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    let has = |name: &str| directives.iter().any(|d| d == name);
    if has("no-store") {
        return Some(CachePolicy::NoStore);
    }
    if has("private") {
        return Some(CachePolicy::Private);
    }
    if has("no-cache") {
        return Some(CachePolicy::NoCache);
    }
    directives.iter().find_map(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(cc: Option<&str>, lm: Option<&str>, etag: Option<&str>) -> (Vec<Level>, Caching) {
        let (checks, caching) = caching_checks(cc, lm, etag);
        (checks.iter().map(|c| c.level).collect(), caching)
    }

    const LM: &str = "Tue, 22 Feb 2022 22:22:22 GMT";

    #[test]
    fn the_four_documented_directives() {
        use Level::{Ok, Warn};
        assert_eq!(
            cache(Some("max-age=604800"), None, Some("\"x\"")),
            (vec![Ok, Ok, Ok], Caching::For(604_800))
        );
        assert_eq!(
            cache(Some("No-Cache"), Some(LM), None),
            (vec![Ok, Ok, Ok], Caching::UntilLastModifiedChanges)
        );
        assert_eq!(
            cache(Some("no-store"), None, None).1,
            Caching::NotCached(CachePolicy::NoStore)
        );
        assert_eq!(
            cache(Some("private"), Some(LM), None).1,
            Caching::NotCached(CachePolicy::Private)
        );
        // An unparsable Last-Modified under no-cache is suspicious, not fatal.
        assert_eq!(cache(Some("no-cache"), Some("yesterday"), None).0[1], Warn);
    }

    #[test]
    fn several_directives_with_a_documented_one_and_etag_only_warn() {
        use Level::{Fail, Ok, Warn};
        // What CDNs send by default: read as its max-age, with a warning.
        assert_eq!(
            cache(
                Some("public, max-age=604800, immutable"),
                Some(LM),
                Some("\"x\"")
            ),
            (vec![Warn, Ok, Ok], Caching::For(604_800))
        );
        assert_eq!(
            cache(Some("private, max-age=60"), None, None),
            (vec![Warn, Ok, Ok], Caching::NotCached(CachePolicy::Private))
        );
        assert_eq!(
            cache(Some("no-cache, must-revalidate"), Some(LM), None),
            (vec![Warn, Ok, Ok], Caching::UntilLastModifiedChanges)
        );
        // Read as no-cache, which still needs Last-Modified.
        let (levels, caching) = cache(Some("no-cache, must-revalidate"), None, None);
        assert_eq!(levels, [Warn, Fail, Ok]);
        assert!(matches!(caching, Caching::Undeclared(_)), "{caching:?}");
        // Only an ETag: Meta's own logic (§2), a warning on both.
        assert_eq!(
            cache(None, None, Some("\"e\"")),
            (vec![Warn, Ok, Warn], Caching::Undisclosed)
        );
        let (checks, _) = caching_checks(Some("public, max-age=604800, immutable"), Some(LM), None);
        assert_eq!(
            checks[0].message,
            "public, max-age=604800, immutable: several directives; Meta documents a single one \
             (max-age=N, no-cache, no-store or private; README: What each policy makes Meta do) and not how it reads a list, so this \
             assumes it reads `max-age=604800`: Meta caches it by URL for 604800 s, then fetches \
             it again (README: What each policy makes Meta do); a replaced asset needs a new URL to reach customers sooner; to be \
             sure, serve `Cache-Control: max-age=604800` alone"
        );
    }

    #[test]
    fn undocumented_or_incomplete_caching_fails() {
        use Level::{Fail, Ok};
        for (cc, lm, etag, levels) in [
            (None, None, None, vec![Fail, Ok, Ok]),
            (None, Some(LM), None, vec![Fail, Ok, Ok]),
            (Some("no-cache"), None, None, vec![Ok, Fail, Ok]),
            (
                Some("public, must-revalidate"),
                Some(LM),
                None,
                vec![Fail, Ok, Ok],
            ),
            (Some("public"), Some(LM), None, vec![Fail, Ok, Ok]),
            (Some("max-age=soon"), None, None, vec![Fail, Ok, Ok]),
        ] {
            let (got, caching) = cache(cc, lm, etag);
            assert_eq!(got, levels, "{cc:?} {lm:?} {etag:?}");
            assert!(matches!(caching, Caching::Undeclared(_)), "{caching:?}");
        }
    }

    #[test]
    fn the_intended_directive_is_suggested() {
        let p = |s| intended_policy(s).map(|p| p.to_string());
        assert_eq!(
            p("public, max-age=60, must-revalidate").as_deref(),
            Some("max-age=60")
        );
        assert_eq!(p("private, max-age=60").as_deref(), Some("private"));
        assert_eq!(p("no-cache, no-store").as_deref(), Some("no-store"));
        assert_eq!(p("public"), None);
    }

    #[test]
    fn last_modified_and_etag_are_judged_only_where_meta_reads_them() {
        use Level::{Fail, Ok};
        // Under max-age an unparsable Last-Modified is not read, so not suspicious either.
        let (checks, caching) = caching_checks(Some("max-age=60"), Some("yesterday"), None);
        assert_eq!(caching, Caching::For(60));
        assert_eq!(checks[1].level, Ok);
        assert_eq!(
            checks[1].message,
            "yesterday (Meta uses it only with no-cache, README: What each policy makes Meta do)"
        );
        // An ETag beside Last-Modified is ignored even when Cache-Control is missing.
        let (checks, caching) = caching_checks(None, Some(LM), Some("\"e\""));
        assert_eq!(
            checks.iter().map(|c| c.level).collect::<Vec<_>>(),
            [Fail, Ok, Ok]
        );
        assert!(checks[2].message.starts_with("\"e\": ignored by Meta"));
        assert!(matches!(caching, Caching::Undeclared(_)), "{caching:?}");
        // The checks are always the same three, in this order.
        for (cc, lm, etag) in [
            (None, None, None),
            (Some("no-cache"), None, Some("\"e\"")),
            (Some("public, max-age=60"), Some(LM), None),
        ] {
            let names: Vec<_> = caching_checks(cc, lm, etag)
                .0
                .iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(names, ["cache-control", "last-modified", "etag"]);
        }
    }

    #[test]
    fn an_undocumented_cache_control_says_which_shape_it_has() {
        let message = |cc| {
            caching_checks(Some(cc), Some(LM), None).0[0]
                .message
                .clone()
        };
        assert!(
            message("no_cache").starts_with("no_cache: not a directive Meta documents; "),
            "{}",
            message("no_cache")
        );
        assert!(
            message("public, immutable").starts_with(
                "public, immutable: several directives, none of them one Meta documents; "
            ),
            "{}",
            message("public, immutable")
        );
        // A max-age beyond the 2^31 s RFC 9111 caps it at is refused like any other.
        assert_eq!(
            cache(Some("max-age=2147483649"), Some(LM), None).0,
            [Level::Fail, Level::Ok, Level::Ok]
        );
        // Nothing to read the intent from: the advice is the list of the four forms.
        assert!(message("no_cache").ends_with(&format!("; {DECLARE}")));
    }

    #[test]
    fn more_declared_caching() {
        use Level::{Ok, Warn};
        for (cc, levels, caching) in [
            ("max-age=0", [Ok, Ok, Ok], Caching::For(0)),
            // Only no-cache needs Last-Modified.
            (
                "private",
                [Ok, Ok, Ok],
                Caching::NotCached(CachePolicy::Private),
            ),
            // Blanks around one directive do not make it several.
            ("  MAX-AGE=60 ", [Ok, Ok, Ok], Caching::For(60)),
            // Several documented ones: the most restrictive, else the first max-age.
            (
                "max-age=60, no-store",
                [Warn, Ok, Ok],
                Caching::NotCached(CachePolicy::NoStore),
            ),
            ("max-age=60, max-age=120", [Warn, Ok, Ok], Caching::For(60)),
        ] {
            assert_eq!(
                cache(Some(cc), None, None),
                (levels.to_vec(), caching),
                "{cc}"
            );
        }
    }

    #[test]
    fn the_intended_directive_is_the_most_restrictive_whatever_the_order() {
        let p = |s| intended_policy(s).map(|p| p.to_string());
        assert_eq!(p("max-age=60, no-cache").as_deref(), Some("no-cache"));
        assert_eq!(p("no-cache, private").as_deref(), Some("private"));
        assert_eq!(p("private, no-store").as_deref(), Some("no-store"));
        // Directive names are case-insensitive and blanks around them do not count.
        assert_eq!(p(" NO-STORE ,public").as_deref(), Some("no-store"));
        // Among several max-ages the first that parses.
        assert_eq!(p("max-age=60, max-age=120").as_deref(), Some("max-age=60"));
        assert_eq!(
            p("max-age=soon, max-age=120").as_deref(),
            Some("max-age=120")
        );
        // A qualified no-cache (a field list) is not the bare directive.
        assert_eq!(p("no-cache=\"Set-Cookie\", public"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("public, immutable"), None);
    }
}
