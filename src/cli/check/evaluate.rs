//! The pure judge: a [`Fetched`] URL in, a [`Report`] out, with no network, so every rule can be
//! tested on a made-up answer. The rules on the fetch itself (the address, the status, the
//! redirects, the speed) are here; the body's are in [`media`](super::media), the caching
//! headers' in [`caching`](super::caching).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use reqwest::header;

use super::caching::caching_checks;
use super::fetch::{Answer, Fetched, Hop, joined};
use super::media::Media;
use super::report::{Check, Level, Report, check, verdict};

/// Above this time for the whole answer the `speed` check warns (Meta's timeout is undocumented,
/// reportedly "a few seconds").
const SLOW: Duration = Duration::from_secs(3);

/// Judge a fetched URL against WHATSAPP_MEDIA.md.
pub fn evaluate(fetched: &Fetched) -> Report {
    let mut checks = Vec::new();
    let mut report = Report {
        url: fetched.url.to_string(),
        final_url: None,
        hops: fetched.hops.clone(),
        status: None,
        content_type: None,
        bytes: None,
        sha256: None,
        kind: None,
        caching: None,
        checks: Vec::new(),
        verdict: String::new(),
    };
    if let Some(warning) = private_address(&fetched.url) {
        checks.push(check("address", Level::Warn, warning));
    }
    let answer = match &fetched.result {
        Ok(a) => a,
        Err(e) => {
            checks.push(check(
                "fetch",
                Level::Fail,
                format!(
                    "{e}{}: if Meta cannot fetch the link either, the send fails with 131053 (README: What Meta needs from a link)",
                    via(&fetched.hops)
                ),
            ));
            if !fetched.hops.is_empty() {
                checks.push(redirect_check(&fetched.hops, None));
            }
            report.checks = checks;
            report.verdict = verdict(&report);
            return report;
        }
    };
    report.final_url = Some(answer.url.to_string());
    report.status = Some(answer.status);
    let header = |name: header::HeaderName| joined(&answer.headers, name);
    report.content_type = header(header::CONTENT_TYPE);

    checks.push(status_check(answer.status));
    let landed = (answer.status == 200).then_some(&answer.url);
    checks.push(redirect_check(&fetched.hops, landed));
    if let Some(body) = &answer.body {
        report.bytes = Some(body.size);
        report.sha256 = Some(body.sha256.clone());
        let media = Media::new(&answer.url, report.content_type.as_deref(), body);
        report.kind = media.sniffed.as_ref().ok().map(|m| m.kind);
        checks.push(media.content_type_check());
        checks.push(media.bytes_check());
        checks.push(media.size_check(&answer.headers));
        let (cache_checks, caching) = caching_checks(
            header(header::CACHE_CONTROL).as_deref(),
            header(header::LAST_MODIFIED).as_deref(),
            header(header::ETAG).as_deref(),
        );
        checks.extend(cache_checks);
        report.caching = Some(caching);
        checks.push(speed_check(answer));
    }
    report.checks = checks;
    report.verdict = verdict(&report);
    report
}

fn via(hops: &[Hop]) -> String {
    match hops.last() {
        Some(hop) => format!(" (after a redirect to {})", hop.location),
        None => String::new(),
    }
}

/// A warning when the URL names a host Meta cannot reach from the internet.
fn private_address(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let private = if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        true
    } else {
        match bare.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
            }
            Ok(IpAddr::V6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_unique_local()
                    || ip.is_unicast_link_local()
            }
            Err(_) => false,
        }
    };
    private.then(|| {
        format!(
            "{host} is not a public address: Meta's fetcher cannot reach it (the server must be \
             publicly reachable; README: What Meta needs from a link); this check only shows what Meta would get"
        )
    })
}

fn status_check(status: u16) -> Check {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let shown = format!("{status} {reason}").trim_end().to_owned();
    match status {
        200 => check("status", Level::Ok, shown),
        206 => check(
            "status",
            Level::Fail,
            format!(
                "{shown} to a request without Range: Meta needs the whole asset with 200 (README: What Meta needs from a link)"
            ),
        ),
        304 => check(
            "status",
            Level::Fail,
            format!(
                "{shown} to an unconditional GET: Meta needs 200 with the body (README: What Meta needs from a link)"
            ),
        ),
        300..=399 => check(
            "status",
            Level::Fail,
            format!(
                "{shown}: Meta's fetch proxy does not follow redirects (README: What Meta needs from a link)"
            ),
        ),
        _ => check(
            "status",
            Level::Fail,
            format!(
                "{shown}: Meta fails the send (error 131053); it needs 200 (README: What Meta needs from a link)"
            ),
        ),
    }
}

fn redirect_check(hops: &[Hop], landed: Option<&Url>) -> Check {
    if hops.is_empty() {
        return check(
            "redirects",
            Level::Ok,
            "none (Meta's fetch proxy does not follow redirects, README: What Meta needs from a link)",
        );
    }
    let chain: Vec<String> = hops
        .iter()
        .map(|h| format!("{} to {}", h.status, h.location))
        .collect();
    let advice = match landed {
        Some(url) => format!("; link {url} directly"),
        None => String::new(),
    };
    check(
        "redirects",
        Level::Fail,
        format!(
            "{}: Meta's fetch proxy does not follow redirects (a 302 ends as \"Unsupported mime \
             type text/html\", README: What Meta needs from a link){advice}",
            chain.join(", then ")
        ),
    )
}

fn speed_check(answer: &Answer) -> Check {
    let timing = format!(
        "headers after {} ms, the whole answer after {} ms",
        answer.headers_after.as_millis(),
        answer.total.as_millis()
    );
    if answer.total > SLOW {
        check(
            "speed",
            Level::Warn,
            format!(
                "{timing}: Meta's fetch timeout is undocumented (reportedly a few seconds) and \
                 slow origins have been reported to cause 131053 (README: What Meta needs from a link)"
            ),
        )
    } else {
        check("speed", Level::Ok, timing)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    #[test]
    fn private_addresses_are_flagged() {
        for url in [
            "http://127.0.0.1:8080/a.jpg",
            "http://localhost/a.jpg",
            "http://10.1.2.3/a.jpg",
            "http://[::1]/a.jpg",
        ] {
            assert!(
                private_address(&Url::parse(url).unwrap()).is_some(),
                "{url}"
            );
        }
        assert!(private_address(&Url::parse("https://media.example.com/a.jpg").unwrap()).is_none());
        assert!(private_address(&Url::parse("http://93.184.216.34/a.jpg").unwrap()).is_none());
    }

    #[test]
    fn which_hosts_are_unreachable() {
        for (url, unreachable) in [
            ("http://LOCALHOST/a.jpg", true),
            ("http://media.localhost/a.jpg", true),
            ("http://192.168.1.20/a.jpg", true),
            ("http://172.16.0.1/a.jpg", true),
            ("http://169.254.169.254/a.jpg", true),
            ("http://0.0.0.0/a.jpg", true),
            ("http://[::]/a.jpg", true),
            ("http://[fd12:3456::1]/a.jpg", true),
            ("http://[fe80::1]/a.jpg", true),
            // Only the name `localhost` and names under it.
            ("http://notlocalhost/a.jpg", false),
            ("http://localhost.example.com/a.jpg", false),
            // Just outside 172.16.0.0/12.
            ("http://172.32.0.1/a.jpg", false),
            ("http://[2a03:2880::1]/a.jpg", false),
        ] {
            let url = Url::parse(url).unwrap();
            let host = url.host_str().unwrap();
            match private_address(&url) {
                Some(warning) => {
                    assert!(unreachable, "{url}: {warning}");
                    assert!(warning.starts_with(&format!("{host} is not a public address")));
                }
                None => assert!(!unreachable, "{url}"),
            }
        }
    }

    #[test]
    fn only_200_is_a_usable_status() {
        let status = |code| {
            let c = status_check(code);
            assert_eq!(c.name, "status");
            (c.level, c.message)
        };
        assert_eq!(status(200), (Level::Ok, "200 OK".to_owned()));
        for (code, starts) in [
            (206, "206 Partial Content to a request without Range: "),
            (304, "304 Not Modified to an unconditional GET: "),
            (
                302,
                "302 Found: Meta's fetch proxy does not follow redirects",
            ),
            (
                308,
                "308 Permanent Redirect: Meta's fetch proxy does not follow redirects",
            ),
            // No reason phrase: no trailing blank either.
            (399, "399: Meta's fetch proxy does not follow redirects"),
            (
                204,
                "204 No Content: Meta fails the send (error 131053); it needs 200 (README: What Meta needs from a link)",
            ),
            (
                404,
                "404 Not Found: Meta fails the send (error 131053); it needs 200 (README: What Meta needs from a link)",
            ),
            (503, "503 Service Unavailable: Meta fails the send"),
        ] {
            let (level, message) = status(code);
            assert_eq!(level, Level::Fail, "{code}");
            assert!(message.starts_with(starts), "{code}: {message}");
        }
    }

    fn hop(status: u16, location: &str) -> Hop {
        Hop {
            url: "https://media.example.com/old.jpg".to_owned(),
            status,
            location: location.to_owned(),
        }
    }

    #[test]
    fn any_redirect_fails_and_where_it_lands_is_the_advice() {
        let landed = Url::parse("https://cdn.example.com/a.jpg").unwrap();
        let none = redirect_check(&[], Some(&landed));
        assert_eq!((none.name, none.level), ("redirects", Level::Ok));

        let hops = [
            hop(301, "/new.jpg"),
            hop(302, "https://cdn.example.com/a.jpg"),
        ];
        let c = redirect_check(&hops, Some(&landed));
        assert_eq!(c.level, Level::Fail);
        assert!(
            c.message
                .starts_with("301 to /new.jpg, then 302 to https://cdn.example.com/a.jpg: "),
            "{}",
            c.message
        );
        assert!(
            c.message
                .ends_with("; link https://cdn.example.com/a.jpg directly"),
            "{}",
            c.message
        );
        // Nowhere usable to link to: no advice.
        let c = redirect_check(&hops[..1], None);
        assert_eq!(c.level, Level::Fail);
        assert!(
            c.message.ends_with("README: What Meta needs from a link)"),
            "{}",
            c.message
        );
    }

    fn answer(status: u16, total_ms: u64) -> Answer {
        Answer {
            url: Url::parse("https://media.example.com/a.jpg").unwrap(),
            status,
            headers: HeaderMap::new(),
            body: None,
            headers_after: Duration::from_millis(5),
            total: Duration::from_millis(total_ms),
        }
    }

    #[test]
    fn slow_is_strictly_over_three_seconds() {
        let c = speed_check(&answer(200, 3000));
        assert_eq!(c.level, Level::Ok);
        assert_eq!(
            c.message,
            "headers after 5 ms, the whole answer after 3000 ms"
        );
        assert_eq!(speed_check(&answer(200, 3001)).level, Level::Warn);
    }

    #[test]
    fn an_answer_without_a_body_is_judged_on_its_status_alone() {
        let report = evaluate(&Fetched {
            url: Url::parse("https://media.example.com/a.jpg").unwrap(),
            hops: Vec::new(),
            result: Ok(answer(404, 10)),
        });
        let names: Vec<_> = report.checks.iter().map(|c| (c.name, c.level)).collect();
        assert_eq!(names, [("status", Level::Fail), ("redirects", Level::Ok)]);
        assert_eq!((report.bytes, &report.caching), (None, &None));
        assert!(!report.ok());
        assert!(
            report
                .verdict
                .starts_with("Meta will fail to fetch this: status: 404 Not Found"),
            "{}",
            report.verdict
        );
    }

    #[test]
    fn a_fetch_that_failed_after_a_redirect_says_both() {
        let report = evaluate(&Fetched {
            url: Url::parse("http://127.0.0.1:8080/a.jpg").unwrap(),
            hops: vec![hop(302, "http://127.0.0.1:9/a.jpg")],
            result: Err("connection refused".to_owned()),
        });
        let names: Vec<_> = report.checks.iter().map(|c| (c.name, c.level)).collect();
        assert_eq!(
            names,
            [
                ("address", Level::Warn),
                ("fetch", Level::Fail),
                ("redirects", Level::Fail)
            ]
        );
        assert_eq!((report.final_url, report.status), (None, None));
        assert!(
            report.verdict.starts_with(
                "Meta will fail to fetch this: fetch: connection refused (after a redirect to \
                 http://127.0.0.1:9/a.jpg): "
            ),
            "{}",
            report.verdict
        );
    }
}
