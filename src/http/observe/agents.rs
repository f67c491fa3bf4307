//! Recognising Meta's media fetcher by its `User-Agent`.
//!
//! Its own module because it runs on every `/media` request and must not allocate: the
//! configured agents (`metrics.meta_user_agents`) are lowered once, and each request's
//! `User-Agent` is searched for them ignoring ASCII case, in place. What it decides feeds the
//! Meta metrics and the fetch log's `meta` flag.

/// `metrics.meta_user_agents`, in ASCII lower case.
pub(super) struct MetaAgents(Box<[Box<[u8]>]>);

impl MetaAgents {
    /// The configured agents.
    pub(super) fn new(agents: &[String]) -> Self {
        Self(
            agents
                .iter()
                .map(|a| a.to_ascii_lowercase().into_bytes().into())
                .collect(),
        )
    }

    /// Whether a `User-Agent` contains one of the agents, ignoring ASCII case
    /// (`FacebookExternalUA/1.1` is `facebookexternalua`'s).
    pub(super) fn matches(&self, user_agent: &str) -> bool {
        let agent = user_agent.as_bytes();
        self.0
            .iter()
            .any(|needle| contains_ignoring_ascii_case(agent, needle))
    }
}

/// Whether `haystack` contains `needle` (in ASCII lower case), ignoring ASCII case; without
/// allocating, since it runs on every public request.
fn contains_ignoring_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.len() >= needle.len()
        && (0..=haystack.len() - needle.len()).any(|i| {
            haystack[i].to_ascii_lowercase() == first
                && haystack[i + 1..i + needle.len()].eq_ignore_ascii_case(rest)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MetricsSettings;

    #[test]
    fn meta_agents_match_as_substrings_ignoring_ascii_case() {
        let agents = |agents: &[&str]| {
            MetaAgents::new(&agents.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
        };
        let default = MetaAgents::new(&MetricsSettings::default().meta_user_agents);
        for agent in [
            "facebookexternalua",
            "FacebookExternalUA/1.1",
            "FACEBOOKEXTERNALUA",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "FacebookExternalHit/1.1",
            "WhatsApp/2.23.20.0",
            "whatsapp/2",
            "Mozilla/5.0 (compatible; WHATSAPP)",
        ] {
            assert!(default.matches(agent), "{agent}");
        }
        for agent in [
            "",
            "facebookexternal",
            "facebookexternalu",
            "Mozilla/5.0",
            "WhatsAp",
            "curl/8.5.0",
        ] {
            assert!(!default.matches(agent), "{agent}");
        }
        // A configured agent in any case matches any case; at the very start and end too.
        let custom = agents(&["MyFetcher", "ÄBot"]);
        assert!(custom.matches("myfetcher"));
        assert!(custom.matches("x MYFETCHER"));
        assert!(custom.matches("MyFetcher/1 y"));
        assert!(!custom.matches("MyFetche"));
        assert!(!custom.matches("facebookexternalua"));
        // Only ASCII letters fold: non-ASCII must match exactly.
        assert!(custom.matches("ÄBot"));
        assert!(custom.matches("Äbot"));
        assert!(!custom.matches("äbot"));
    }
}
