//! Environment variables that look like settings but set nothing.
//!
//! Settings come from `MEDIA_ORIGIN__<SECTION>__<KEY>`, with double underscores; figment reads
//! nothing else under the prefix, so `MEDIA_ORIGIN_SERVER_BIND` (single underscores, the usual
//! spelling elsewhere) was silently ignored and the server ran on its default address. A
//! misspelt double-underscore name is already refused at load (`deny_unknown_fields`); what
//! is left is every other `MEDIA_ORIGIN_*` name that is not one of the few single-underscore
//! variables read directly. [`ignored`] names each, with the spelling that would work when a
//! setting matches.

use serde_json::Value;

use super::{ADMIN_TOKEN_ENV, ENV_PREFIX, SIGNING_KEYS_ENV, Settings};

/// The environment variable naming a running server's admin API for the client commands.
pub const SERVER_URL_ENV: &str = "MEDIA_ORIGIN_URL";

/// The single-underscore variables that are read as they are.
const READ_DIRECTLY: [&str; 3] = [ADMIN_TOKEN_ENV, SIGNING_KEYS_ENV, SERVER_URL_ENV];

/// One warning per variable in `vars` that starts with `MEDIA_ORIGIN_` but sets nothing, naming
/// it and, when its words name a setting, the variable that would set it.
pub fn ignored(vars: impl IntoIterator<Item = String>) -> Vec<String> {
    let settings = every_setting();
    let mut out: Vec<String> = vars
        .into_iter()
        .filter(|name| name.starts_with("MEDIA_ORIGIN_") && !name.starts_with(ENV_PREFIX))
        .filter(|name| !READ_DIRECTLY.contains(&name.as_str()))
        .map(|name| {
            let words = name["MEDIA_ORIGIN_".len()..].to_ascii_lowercase();
            let meant = settings
                .iter()
                .find(|(section, key)| words == format!("{section}_{key}"));
            match meant {
                Some((section, key)) => format!(
                    "{name} sets nothing: settings take double underscores; \
                     {ENV_PREFIX}{}__{} sets {section}.{key}",
                    section.to_ascii_uppercase(),
                    key.to_ascii_uppercase()
                ),
                None => format!(
                    "{name} sets nothing: settings are {ENV_PREFIX}<SECTION>__<KEY> (double \
                     underscores, e.g. {ENV_PREFIX}SERVER__BIND); the other variables are {}",
                    READ_DIRECTLY.join(", ")
                ),
            }
        })
        .collect();
    out.sort();
    out
}

/// Every `(section, key)` the settings have.
fn every_setting() -> Vec<(String, String)> {
    let tree = serde_json::to_value(Settings::default()).expect("settings always serialise");
    let mut out = Vec::new();
    for (section, fields) in tree.as_object().into_iter().flatten() {
        if let Value::Object(fields) = fields {
            out.extend(fields.keys().map(|key| (section.clone(), key.clone())));
        }
    }
    // Left out of the defaults' serialisation when unset.
    out.push(("whatsapp".into(), "ttl_minutes".into()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn single_underscores_are_named_with_the_spelling_that_works() {
        let warnings = ignored(names(&[
            "MEDIA_ORIGIN_SERVER_BIND",
            "MEDIA_ORIGIN_STORAGE_PATH",
            "MEDIA_ORIGIN_WHATSAPP_PHONE_NUMBER_IDS",
        ]));
        assert_eq!(
            warnings,
            [
                "MEDIA_ORIGIN_SERVER_BIND sets nothing: settings take double underscores; \
                 MEDIA_ORIGIN__SERVER__BIND sets server.bind",
                "MEDIA_ORIGIN_STORAGE_PATH sets nothing: settings take double underscores; \
                 MEDIA_ORIGIN__STORAGE__PATH sets storage.path",
                "MEDIA_ORIGIN_WHATSAPP_PHONE_NUMBER_IDS sets nothing: settings take double \
                 underscores; MEDIA_ORIGIN__WHATSAPP__PHONE_NUMBER_IDS sets \
                 whatsapp.phone_number_ids",
            ]
        );
    }

    #[test]
    fn what_is_read_is_not_warned_about_and_the_rest_is() {
        let warnings = ignored(names(&[
            "MEDIA_ORIGIN_ADMIN_TOKEN",
            "MEDIA_ORIGIN_SIGNING_KEYS",
            "MEDIA_ORIGIN_URL",
            "MEDIA_ORIGIN__SERVER__BIND",
            "PATH",
            "MEDIA_ORIGINAL",
            "MEDIA_ORIGIN_TOKEN",
        ]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "MEDIA_ORIGIN_TOKEN sets nothing: settings are MEDIA_ORIGIN__<SECTION>__<KEY>"
            ),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0].contains("MEDIA_ORIGIN_ADMIN_TOKEN"),
            "{}",
            warnings[0]
        );
    }
}
