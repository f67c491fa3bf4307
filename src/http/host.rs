//! The `Host` header: RFC 9112 §3.2 on every listener, and on the admin listener the names it
//! answers to, so that a web page cannot reach it through DNS rebinding.
//!
//! **Every listener.** An HTTP/1.1 request without `Host`, any request with two, or one whose
//! `Host` is not `host[:port]` answers 400 `invalid_host` (RFC 9112 §3.2: "A server MUST respond
//! with a 400"). An HTTP/1.0 request may come without one (load balancers' health checks do).
//!
//! **The admin listener** (`server.admin_bind`) answers only to the names it is configured for:
//! its bind address, `localhost`, `127.0.0.1` and `[::1]` (each with the listener's port or
//! none), and those in `admin.allowed_hosts` (`name` as those, `name:port` with that port only,
//! `*` for any). A page on `http://evil.example` whose name an attacker re-points at 127.0.0.1
//! makes the browser send `Host: evil.example:8081`; without this check the page could read
//! `/metrics` (no token there) and `/api/openapi.json` as same-origin responses.
//!
//! Such a request answers **421 Misdirected Request** `misdirected_request`, not 403. 421 says
//! what is true: this server is not configured to answer for that authority (RFC 9110
//! §15.5.20), whoever asks; 403 would say the client lacks a permission it could be granted,
//! and is what the API's own authorisation could answer. The JSON body names the setting that
//! adds a name (`admin.allowed_hosts`), but never lists the configured names: the client asking
//! may be the rebinding page.
//!
//! **A shared listener** (`server.admin_bind = "public"`) serves `/media` too, under whatever
//! name Meta's fetcher, a CDN or a TLS proxy sends, so it cannot have a default list. There the
//! admin routes need the token for everything a page could want (`/metrics` included); what
//! stays tokenless is the static page and `/api/openapi.json`, the same on every installation.
//! So by default only the RFC checks apply there; once `admin.allowed_hosts` is set, every route
//! but `/media/...`, `/healthz` and `/readyz` answers only to those names, the public bind
//! address and the loopback names.
//!
//! A request in absolute form (`GET http://name/...`) is judged by the name in its target, which
//! RFC 9112 §3.2.2 says replaces `Host`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::uri::Authority;
use axum::http::{HeaderValue, Request, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};

use super::error::ApiError;

/// The names the admin API answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// `*` was configured: any name.
    any: bool,
    /// Names in ASCII lower case (IPv6 addresses in brackets), with the one port they need.
    names: Box<[(Box<str>, Option<u16>)]>,
    /// The listener's port: what a name configured without one accepts besides none.
    port: u16,
}

impl AllowedHosts {
    /// The defaults for a listener bound to `listener` (its address, unless unspecified, and
    /// the loopback names), and `configured` (entries checked by [`parse_allowed`]).
    pub fn new(listener: SocketAddr, configured: &[String]) -> Self {
        let mut names: Vec<(Box<str>, Option<u16>)> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(|n| (Box::from(n), None))
            .collect();
        if !listener.ip().is_unspecified() {
            let ip = match listener.ip() {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            };
            names.push((ip.into(), None));
        }
        let mut any = false;
        for entry in configured {
            match parse_allowed(entry) {
                Ok(None) => any = true,
                Ok(Some((name, port))) => names.push((name.into(), port)),
                // Settings::validate refuses these before the server starts.
                Err(e) => tracing::warn!(%entry, error = %e, "ignoring admin.allowed_hosts entry"),
            }
        }
        Self {
            any,
            names: names.into(),
            port: listener.port(),
        }
    }

    /// Whether a request naming `host` (with `port`) is answered.
    fn admits(&self, host: &str, port: Option<u16>) -> bool {
        self.any
            || self.names.iter().any(|(name, needs)| {
                host.eq_ignore_ascii_case(name)
                    && match needs {
                        Some(needs) => port == Some(*needs),
                        None => port.is_none_or(|p| p == self.port),
                    }
            })
    }
}

/// One `admin.allowed_hosts` entry: `None` for `*`, else the name in ASCII lower case and the
/// port it needs, if one is given.
pub fn parse_allowed(entry: &str) -> Result<Option<(String, Option<u16>)>, String> {
    let entry = entry.trim();
    if entry == "*" {
        return Ok(None);
    }
    match parse_host(entry.as_bytes()) {
        Some((authority, port)) if !entry.ends_with(':') => {
            Ok(Some((authority.host().to_ascii_lowercase(), port)))
        }
        _ => Err(format!(
            "{entry:?} is not a host name or address, with an optional :port"
        )),
    }
}

/// A `Host` value, `uri-host [":" port]` and nothing else (no user information, a port that
/// fits 16 bits), and its port.
fn parse_host(value: &[u8]) -> Option<(Authority, Option<u16>)> {
    if value.is_empty() || value.contains(&b'@') {
        return None;
    }
    let authority = Authority::try_from(value).ok()?;
    let port = match &authority.as_str()[authority.host().len()..] {
        "" | ":" => None,
        rest => Some(rest.strip_prefix(':')?.parse().ok()?),
    };
    Some((authority, port))
}

/// What a listener checks of `Host`.
#[derive(Debug, Clone)]
pub enum HostRule {
    /// RFC 9112 §3.2 only: the public listener, and a shared one without `admin.allowed_hosts`.
    Any,
    /// Every route answers only to these names: the admin listener.
    Only(Arc<AllowedHosts>),
    /// Routes other than `/media/...` and health answer only to these names: a shared listener
    /// with `admin.allowed_hosts` set.
    AdminRoutes(Arc<AllowedHosts>),
}

/// The routes a shared listener answers under any name.
fn is_public_route(path: &str) -> bool {
    path.starts_with("/media/") || path == "/healthz" || path == "/readyz"
}

/// The refusal `req` gets, if any.
fn refusal<B>(rule: &HostRule, req: &Request<B>) -> Option<ApiError> {
    let mut sent = req.headers().get_all(header::HOST).iter();
    let host = sent.next();
    if sent.next().is_some() {
        return Some(invalid("the request has more than one Host header"));
    }
    let named = match host {
        Some(value) => match parse_host(value.as_bytes()) {
            Some((authority, port)) => Some((authority, port)),
            None => {
                return Some(invalid(
                    "the Host header is not a host name, with an optional :port",
                ));
            }
        },
        None if req.version() == Version::HTTP_11 => {
            return Some(invalid("an HTTP/1.1 request must have a Host header"));
        }
        None => None,
    };
    let allowed = match rule {
        HostRule::Any => return None,
        HostRule::AdminRoutes(_) if is_public_route(req.uri().path()) => return None,
        HostRule::Only(allowed) | HostRule::AdminRoutes(allowed) => allowed,
    };
    // An HTTP/1.0 request without Host names nothing a page could have rebound.
    let target = req
        .uri()
        .authority()
        .and_then(|a| parse_host(a.as_str().as_bytes()));
    let (named, port) = target.or(named)?;
    if allowed.admits(named.host(), port) {
        return None;
    }
    let mut shown = named.as_str();
    if shown.len() > 100 {
        shown = &shown[..100];
    }
    Some(ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "misdirected_request",
        format!(
            "the admin API does not answer to the name {shown:?}: it answers only to its bind \
             address, localhost, 127.0.0.1, [::1] and the names in admin.allowed_hosts, so that \
             a web page cannot reach it through DNS rebinding; if {shown:?} is a name of this \
             server, add it to admin.allowed_hosts (MEDIA_ORIGIN__ADMIN__ALLOWED_HOSTS)"
        ),
    ))
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::bad_request("invalid_host", message)
}

/// Answers what [`HostRule`] refuses, and passes everything else to the application. A plain
/// service rather than a router layer, like [`super::observe::Observe`]: no boxed future on the
/// public path.
///
/// Each thread remembers the last `Host` it let through where the rule looks at nothing but the
/// RFC checks: clients send the same `Host` request after request (hyper clones the service for
/// every request, so the memory cannot be the connection's), and comparing bytes costs less than
/// parsing them into an [`Authority`] (an allocation per request).
#[derive(Clone)]
pub struct CheckHost<S> {
    inner: S,
    rule: HostRule,
}

thread_local! {
    static PASSED: std::cell::RefCell<PassedHost> = std::cell::RefCell::new(PassedHost::default());
}

/// The last `Host` value that passed the RFC checks on this thread, if short enough to keep.
struct PassedHost {
    len: usize,
    bytes: [u8; PassedHost::MAX],
}

impl Default for PassedHost {
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; Self::MAX],
        }
    }
}

impl PassedHost {
    const MAX: usize = 64;

    fn is(&self, value: &HeaderValue) -> bool {
        self.len > 0 && value.as_bytes() == &self.bytes[..self.len]
    }

    fn keep(&mut self, value: &HeaderValue) {
        let value = value.as_bytes();
        if value.len() <= Self::MAX {
            self.bytes[..value.len()].copy_from_slice(value);
            self.len = value.len();
        }
    }
}

impl<S> CheckHost<S> {
    /// Check `Host` by `rule` before `inner` sees the request.
    pub fn new(inner: S, rule: HostRule) -> Self {
        Self { inner, rule }
    }
}

/// The one `Host` of `req` when the rule checks nothing but the RFC's rules for it.
fn rfc_only<'a, B>(rule: &HostRule, req: &'a Request<B>) -> Option<&'a HeaderValue> {
    match rule {
        HostRule::Any => {}
        HostRule::AdminRoutes(_) if is_public_route(req.uri().path()) => {}
        _ => return None,
    }
    let mut sent = req.headers().get_all(header::HOST).iter();
    let host = sent.next()?;
    sent.next().is_none().then_some(host)
}

impl<S, B> tower::Service<Request<B>> for CheckHost<S>
where
    S: tower::Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let host = rfc_only(&self.rule, &req);
        if host.is_some_and(|h| PASSED.with_borrow(|passed| passed.is(h))) {
            return Either::Right(self.inner.call(req));
        }
        match refusal(&self.rule, &req) {
            None => {
                if let Some(host) = host {
                    PASSED.with_borrow_mut(|passed| passed.keep(host));
                }
                Either::Right(self.inner.call(req))
            }
            Some(error) => {
                let mut response = error.into_response();
                // As the router adds to every other answer.
                response.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                Either::Left(ready(Ok(response)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, target: &str, hosts: &[&str]) -> Request<()> {
        let mut req = Request::builder().version(version).uri(target);
        for host in hosts {
            req = req.header(header::HOST, *host);
        }
        req.body(()).unwrap()
    }

    fn answer(rule: &HostRule, version: Version, target: &str, hosts: &[&str]) -> Option<u16> {
        refusal(rule, &request(version, target, hosts)).map(|e| e.status.as_u16())
    }

    #[test]
    fn every_listener_needs_exactly_one_valid_host_in_http_1_1() {
        let any = HostRule::Any;
        let v11 = Version::HTTP_11;
        assert_eq!(
            answer(&any, v11, "/media/a.jpg", &["media.example.com"]),
            None
        );
        assert_eq!(answer(&any, v11, "/media/a.jpg", &["x:8080"]), None);
        assert_eq!(answer(&any, v11, "/media/a.jpg", &["[::1]:8080"]), None);
        assert_eq!(answer(&any, v11, "/media/a.jpg", &[]), Some(400));
        assert_eq!(answer(&any, v11, "/media/a.jpg", &["a", "a"]), Some(400));
        assert_eq!(
            answer(&any, Version::HTTP_10, "/media/a.jpg", &["a", "b"]),
            Some(400)
        );
        assert_eq!(answer(&any, Version::HTTP_10, "/media/a.jpg", &[]), None);
        for bad in ["", "user@host", "a b", "a/b", "[::1"] {
            assert_eq!(answer(&any, v11, "/healthz", &[bad]), Some(400), "{bad:?}");
        }
    }

    #[test]
    fn the_admin_listener_answers_only_to_its_names() {
        let listener: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        let configured = [
            "Admin.Example.com".to_owned(),
            "proxy.internal:9000".to_owned(),
        ];
        let only = HostRule::Only(Arc::new(AllowedHosts::new(listener, &configured)));
        let v11 = Version::HTTP_11;
        for ok in [
            "localhost",
            "localhost:8081",
            "LOCALHOST:8081",
            "127.0.0.1:8081",
            "127.0.0.1",
            "[::1]:8081",
            "admin.example.com",
            "admin.example.com:8081",
            "proxy.internal:9000",
        ] {
            assert_eq!(answer(&only, v11, "/metrics", &[ok]), None, "{ok}");
        }
        for refused in [
            "evil.example:8081",
            "localhost:8082",
            "127.0.0.2:8081",
            "admin.example.com:9000",
            "proxy.internal",
            "proxy.internal:8081",
            "localhost.evil.example",
        ] {
            assert_eq!(
                answer(&only, v11, "/metrics", &[refused]),
                Some(421),
                "{refused}"
            );
        }
        // The target's authority wins over Host (RFC 9112 §3.2.2).
        assert_eq!(
            answer(&only, v11, "http://evil.example/metrics", &["localhost"]),
            Some(421)
        );
        assert_eq!(
            answer(
                &only,
                v11,
                "http://localhost:8081/metrics",
                &["evil.example"]
            ),
            None
        );
        // HTTP/1.0 without Host names nothing.
        assert_eq!(answer(&only, Version::HTTP_10, "/healthz", &[]), None);

        // An unspecified bind address is no name; `*` admits every name.
        let all: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        let only = HostRule::Only(Arc::new(AllowedHosts::new(all, &[])));
        assert_eq!(answer(&only, v11, "/metrics", &["0.0.0.0:8081"]), Some(421));
        let star = HostRule::Only(Arc::new(AllowedHosts::new(all, &["*".to_owned()])));
        assert_eq!(answer(&star, v11, "/metrics", &["anything:1"]), None);
        assert_eq!(answer(&star, v11, "/metrics", &[]), Some(400));
    }

    #[test]
    fn a_shared_listener_checks_admin_routes_only() {
        let listener: SocketAddr = "[::1]:8080".parse().unwrap();
        let rule = HostRule::AdminRoutes(Arc::new(AllowedHosts::new(
            listener,
            &["admin.example.com".to_owned()],
        )));
        let v11 = Version::HTTP_11;
        for public in ["/media/a.jpg", "/healthz", "/readyz"] {
            assert_eq!(
                answer(&rule, v11, public, &["cdn.example"]),
                None,
                "{public}"
            );
        }
        for admin in [
            "/api/assets",
            "/metrics",
            "/admin",
            "/api/openapi.json",
            "/nope",
        ] {
            assert_eq!(
                answer(&rule, v11, admin, &["cdn.example"]),
                Some(421),
                "{admin}"
            );
            assert_eq!(answer(&rule, v11, admin, &["admin.example.com"]), None);
            assert_eq!(answer(&rule, v11, admin, &["[::1]:8080"]), None);
        }
    }

    /// A thread's remembered `Host` lets only that exact value through unparsed: a second
    /// `Host`, another value, or a route the rule checks further are judged in full.
    #[tokio::test]
    async fn a_remembered_host_passes_only_itself() {
        use tower::Service;
        let ok = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        });
        let status = |svc: &mut CheckHost<_>, target: &str, hosts: &[&str]| {
            let req = request(Version::HTTP_11, target, hosts);
            let answer = svc.call(req);
            async move { answer.await.unwrap().status().as_u16() }
        };
        let mut svc = CheckHost::new(ok, HostRule::Any);
        assert_eq!(
            status(&mut svc, "/media/a.jpg", &["cdn.example"]).await,
            200
        );
        assert!(PASSED.with_borrow(|p| p.len > 0));
        assert_eq!(
            status(&mut svc, "/media/a.jpg", &["cdn.example"]).await,
            200
        );
        assert_eq!(
            status(&mut svc, "/media/a.jpg", &["cdn.example", "cdn.example"]).await,
            400
        );
        assert_eq!(
            status(&mut svc, "/media/a.jpg", &["cdn.example@x"]).await,
            400
        );
        assert_eq!(status(&mut svc, "/media/a.jpg", &[]).await, 400);
        assert_eq!(
            status(&mut svc, "/media/a.jpg", &["cdn.example"]).await,
            200
        );

        // On a shared listener with allowed hosts, the name that /media took is still judged
        // on an admin route.
        let listener: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let rule = HostRule::AdminRoutes(Arc::new(AllowedHosts::new(listener, &[])));
        let mut svc = CheckHost::new(ok, rule);
        assert_eq!(
            status(&mut svc, "/media/a.jpg", &["cdn.example"]).await,
            200
        );
        assert_eq!(status(&mut svc, "/metrics", &["cdn.example"]).await, 421);
        assert_eq!(status(&mut svc, "/metrics", &["localhost"]).await, 200);
    }

    #[test]
    fn allowed_host_entries_are_checked() {
        assert_eq!(parse_allowed(" * "), Ok(None));
        assert_eq!(
            parse_allowed("Admin.Example.COM"),
            Ok(Some(("admin.example.com".into(), None)))
        );
        assert_eq!(
            parse_allowed("[::1]:9000"),
            Ok(Some(("[::1]".into(), Some(9000))))
        );
        for bad in [
            "",
            "a b",
            "user@host",
            "host:",
            "host:99999",
            "http://host",
            "a/b",
        ] {
            assert!(parse_allowed(bad).is_err(), "{bad:?}");
        }
    }
}
