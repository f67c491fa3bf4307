//! Bearer-token authentication for the admin API.
//!
//! Tokens are compared in constant time over their SHA-256 digests, so neither the content nor
//! the length of the configured token leaks through response timing, and every failure (no
//! header, another scheme, a wrong token) gets the same 401 with `WWW-Authenticate`
//! (RFC 6750 §3).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

/// The digest of the admin token, computed at start and again when SIGHUP reloads it; a
/// check reads it with one atomic load.
pub struct AdminToken(arc_swap::ArcSwap<[u8; 32]>);

impl AdminToken {
    /// Keep only the digest of `token`.
    pub fn new(token: &str) -> Self {
        Self(arc_swap::ArcSwap::from_pointee(digest(token)))
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, presented: &str) -> bool {
        self.0.load().ct_eq(&digest(presented)).into()
    }

    /// Accept `token` from now on instead of the current one. Returns whether it differs.
    pub fn replace(&self, token: &str) -> bool {
        let new = digest(token);
        let old = self.0.swap(std::sync::Arc::new(new));
        !bool::from(old.ct_eq(&new))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Middleware: let the request through only with `Authorization: Bearer <admin token>`, sent
/// once. A request with two `Authorization` headers is refused whatever they hold: a proxy or
/// client library may pick either one, so deciding by the first would let the token the
/// server checked differ from the one another hop saw.
pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut sent = req.headers().get_all(header::AUTHORIZATION).iter();
    let (first, second) = (sent.next(), sent.next());
    let presented = first
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("");
    // Always hash and compare, even with nothing presented, so every failure costs the same.
    if state.admin_token.verify(presented) && !presented.is_empty() && second.is_none() {
        return next.run(req).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the admin API needs `Authorization: Bearer <token>` with the admin token",
    )
    .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"media-origin\"")
    .into_response()
}
