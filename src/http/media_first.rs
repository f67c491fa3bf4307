//! `GET` and `HEAD /media/...` go straight to [`super::public`], before axum's router.
//!
//! A broadcast is tens of thousands of these a second, and the router's share of each was
//! measured (callgrind, issue 18): matching the wildcard and collecting its parameter, the
//! router's layers, a boxed service clone and the handler's extractors cost about as much as
//! answering from the cached record. Here a request is one prefix test and one method test
//! away from the handler. Everything else (other methods, so the 405 with `Allow` and a JSON
//! body stays axum's; `/media/` with nothing after it, which the router's wildcard does not
//! match either; every other route) goes to the router as before.
//!
//! What the router's layers and axum's route future did to these answers is done here too, so
//! the bytes sent are the same: `X-Content-Type-Options: nosniff` on an answer without it (the
//! errors), `Content-Length` from a body of known size when none is set (not on a 304, which
//! the observing layer would strip it from), and no body on a `HEAD`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::Response;
use futures::future::Either;
use hyper::body::Body as _;

use super::AppState;
use super::public::{MEDIA_PREFIX, answer};

/// The router, with `/media` served first when the listener serves it.
#[derive(Clone)]
pub struct MediaFirst {
    router: Router,
    /// `Some` on a listener that serves `/media`.
    media: Option<AppState>,
}

impl MediaFirst {
    /// `router`, with `/media` answered before it from `media` when given.
    pub fn new(router: Router, media: Option<AppState>) -> Self {
        Self { router, media }
    }
}

type MediaFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<B> tower::Service<Request<B>> for MediaFirst
where
    Router: tower::Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<MediaFuture, <Router as tower::Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Axum's router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(state) = &self.media else {
            return Either::Right(self.router.call(req));
        };
        let method = req.method();
        let is_media = (*method == Method::GET || *method == Method::HEAD)
            && req
                .uri()
                .path()
                .strip_prefix(MEDIA_PREFIX)
                .is_some_and(|rest| !rest.is_empty());
        if !is_media {
            return Either::Right(self.router.call(req));
        }
        let state = state.clone();
        // The body of a GET or HEAD is not read: dropped here, before the answer.
        let (parts, _) = req.into_parts();
        Either::Left(Box::pin(async move {
            let mut response = answer(&state, &parts).await;
            finish(&parts.method, &mut response);
            Ok(response)
        }))
    }
}

/// What the router's layers and axum's route future add (see the module documentation).
fn finish(method: &Method, response: &mut Response) {
    let headers = response.headers_mut();
    if !headers.contains_key(header::X_CONTENT_TYPE_OPTIONS) {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if !super::observe::takes_no_length(response.status().as_u16())
        && !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(len) = response.body().size_hint().exact()
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if *method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
}
