//! The client side of the admin API, shared by `upload` and `sign`: where the server is
//! (flags, environment, else the config the server itself reads), how to sign in, and one
//! request with the API's error shape whatever went wrong.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

use crate::config::{ADMIN_TOKEN_ENV, SERVER_URL_ENV, Settings};

/// How to reach a running server's admin API.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The admin API's base URL, with or without `/api`, e.g. `http://127.0.0.1:8081`
    /// (default: `server.admin_bind` in the config, on loopback).
    #[arg(long, env = SERVER_URL_ENV, value_name = "URL")]
    server: Option<String>,
    /// The admin token (default: the configured one, or the server's generated token file).
    #[arg(long, env = ADMIN_TOKEN_ENV, hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Config file used to find the server and token when they are not given
    /// (default: ./config.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Where the server is and how to sign in.
pub(super) struct Target {
    pub base: String,
    pub token: String,
}

/// The server URL and token from the flags or environment, else from the config the server
/// itself would read.
pub(super) fn target(args: &ApiArgs) -> Result<Target, String> {
    let settings = if args.server.is_none() || args.token.is_none() {
        Some(Settings::load(args.config.as_deref()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let base = match &args.server {
        // The admin base URL, or the API's (`…/api`, as the README's `API` variable holds).
        Some(url) => {
            let url = url.trim_end_matches('/');
            url.strip_suffix("/api").unwrap_or(url).to_owned()
        }
        None => {
            let server = &settings.as_ref().expect("loaded above").server;
            let bind = match server.admin_bind {
                crate::config::AdminBind::Addr(admin) => admin,
                crate::config::AdminBind::Public => server.bind,
            };
            let ip = match bind.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => std::net::IpAddr::from([127, 0, 0, 1]),
                ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            format!("http://{}", std::net::SocketAddr::new(ip, bind.port()))
        }
    };
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!(
            "--server {base:?}: give an http:// or https:// URL"
        ));
    }
    let token = match &args.token {
        Some(token) => token.clone(),
        None => {
            let settings = settings.as_ref().expect("loaded above");
            match &settings.admin.token {
                Some(token) => token.expose().to_owned(),
                None => {
                    let file = settings.token_file();
                    std::fs::read_to_string(&file)
                        .ok()
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            format!(
                                "no admin token: pass --token or set {ADMIN_TOKEN_ENV} \
                                 (a server without one writes its generated token to {})",
                                file.display()
                            )
                        })?
                }
            }
        }
    };
    Ok(Target { base, token })
}

/// Send a request with the token and read its JSON answer; an error is the API's `error`
/// object, or one in the same shape when the server could not be reached or answered oddly.
pub(super) async fn call(request: reqwest::RequestBuilder, token: &str) -> Result<Value, Value> {
    let response = request.bearer_auth(token).send().await.map_err(|e| {
        json!({
            "code": "unreachable",
            "message": format!("the server could not be reached: {}", chain(&e)),
            "fix": format!(
                "start it (media-origin serve), or pass --server URL (or set {SERVER_URL_ENV}) \
                 with the admin API's address, e.g. http://127.0.0.1:8081"
            ),
        })
    })?;
    let status = response.status();
    let body: Value = match response.text().await {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
        Err(e) => json!({"raw": chain(&e)}),
    };
    if status.is_success() {
        return Ok(body);
    }
    let mut error = body
        .get("error")
        .filter(|e| e.is_object())
        .cloned()
        .unwrap_or_else(
            || json!({"code": "http_error", "message": format!("the server answered {status}")}),
        );
    error["status"] = json!(status.as_u16());
    Err(error)
}

/// An API error's `fix`, as a line of its own (empty without one).
pub(super) fn fix_line(error: &Value) -> String {
    error["fix"]
        .as_str()
        .map(|fix| format!("\n    fix: {fix}"))
        .unwrap_or_default()
}

/// An error with its causes, which reqwest keeps apart ("error sending request" alone says
/// nothing useful).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
