//! The command line: `media-origin serve` and its overrides, `check-storage`, and `upload`,
//! `sign` and `import` (clients of a running server's admin API).

mod check;
mod import;
mod upload;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::Server;
use crate::config::Settings;

/// An origin server for WhatsApp Business media.
#[derive(Debug, Parser)]
#[command(name = "media-origin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// Config file (default: ./config.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding server.bind.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// The admin API's address (or `public`), overriding server.admin_bind.
        #[arg(long)]
        admin_bind: Option<crate::config::AdminBind>,
        /// Local storage directory, overriding storage.path.
        #[arg(long)]
        storage: Option<PathBuf>,
    },
    /// Check the storage configuration end to end: list, write, read back, delete a probe
    /// object. Exits 0 when storage works, 1 when it does not, 2 on a bad configuration.
    CheckStorage {
        /// Config file (default: ./config.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Upload files through a running server's admin API and print their links (and, with
    /// --whatsapp, their media IDs) with the JSON to paste into a message.
    Upload(upload::UploadArgs),
    /// Import media customers sent, by media ID (from webhooks), through a running server's
    /// admin API: prints each stored path and its signed link.
    Import(import::ImportArgs),
    /// Print a signed, expiring link to an asset (for signed-only assets), through a running
    /// server's admin API.
    Sign {
        /// The asset path, e.g. `private/invoice-42.pdf`.
        path: String,
        /// Lifetime in seconds (default: the server's `signing.link_ttl_secs`).
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        #[command(flatten)]
        api: upload::ApiArgs,
    },
    /// Fetch URLs the way Meta's media fetcher would and report, rule by rule, whether Meta can
    /// use each and how it will cache it.
    ///
    /// Checks the status and redirects, the exact Content-Type against the bytes, the size
    /// against the kind's limit, Cache-Control, Last-Modified and ETag (WHATSAPP_MEDIA.md §2,
    /// §3), then prints a verdict line. Works against any server. Exit status: 0 when every URL
    /// is usable and cached as declared; 1 when any check fails (Meta would fail the send,
    /// refuse the asset, or not cache it as declared; also when a URL cannot be fetched from
    /// here); 2 on a usage error, before anything is fetched.
    Check(check::CheckArgs),
}

/// Parse the command line and run it.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `[log]` applies to the server; the client commands log as text, filtered by `RUST_LOG`.
    let log = match &cli.command {
        Command::Serve { config, .. } => crate::logging::settings_from(config.as_deref()),
        _ => crate::config::LogSettings::default(),
    };
    crate::logging::init(log.format, log.level.as_deref());
    match cli.command {
        Command::Upload(args) => upload::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::Sign { path, ttl, api } => sign(&path, ttl, &api).await,
        Command::CheckStorage { config } => match Settings::load(config.as_deref()) {
            Ok(settings) => check_storage(&settings).await,
            Err(e) => {
                eprintln!("media-origin: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve {
            config,
            bind,
            admin_bind,
            storage,
        } => {
            // SIGHUP reads the settings again the same way: file, environment, flags.
            let load = move || {
                // File and environment, then the flags, then one validation of the whole.
                let mut settings = Settings::read(config.as_deref())?;
                if let Some(bind) = bind {
                    settings.server.bind = bind;
                }
                if let Some(admin_bind) = admin_bind {
                    settings.server.admin_bind = admin_bind;
                }
                if let Some(storage) = &storage {
                    settings.storage.path.clone_from(storage);
                }
                settings.validate()?;
                Ok(settings)
            };
            let settings = match load() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("media-origin: {e}");
                    return ExitCode::from(2);
                }
            };
            match serve(settings, Box::new(load)).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("media-origin: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn sign(path: &str, ttl: Option<u64>, api: &upload::ApiArgs) -> ExitCode {
    let target = match upload::target(api) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("media-origin sign: {e}");
            return ExitCode::from(2);
        }
    };
    let mut body = serde_json::json!({"path": path});
    if let Some(ttl) = ttl {
        body["ttl_secs"] = ttl.into();
    }
    let client = reqwest::Client::new();
    let request = client.post(format!("{}/api/sign", target.base)).json(&body);
    match upload::call(request, &target.token).await {
        Ok(answer) => {
            println!("{}", answer["url"].as_str().unwrap_or_default());
            eprintln!(
                "valid until {}; message: {}",
                answer["expires_at"].as_str().unwrap_or_default(),
                answer["message"]
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "media-origin sign: {} ({})",
                error["message"].as_str().unwrap_or("failed"),
                error["code"].as_str().unwrap_or("error")
            );
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, load: crate::reload::Load) -> anyhow::Result<()> {
    // From here on SIGHUP reloads instead of ending the process (its default).
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    let server = Server::bind(&settings).await?;
    let reloader = server.reloader(settings, load);
    #[cfg(unix)]
    let reloading = tokio::spawn(reload_on_hangup(hangups, reloader));
    #[cfg(not(unix))]
    drop(reloader);
    tracing::info!(public_base = server.public_base(), "media-origin ready");
    let served = server.run(shutdown_signal()).await;
    #[cfg(unix)]
    reloading.abort();
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Every SIGHUP reloads the settings (see [`crate::reload`]), one reload at a time.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    mut reloader: crate::reload::Reloader,
) {
    while hangups.recv().await.is_some() {
        // It reads files (and may write a generated token file): off the runtime's threads.
        reloader = match tokio::task::spawn_blocking(move || {
            reloader.reload();
            reloader
        })
        .await
        {
            Ok(reloader) => reloader,
            Err(e) => {
                // Still listening, so SIGHUP cannot end the process.
                tracing::error!(error = %e, "reloading failed; further SIGHUPs are ignored");
                while hangups.recv().await.is_some() {}
                return;
            }
        };
    }
}

async fn check_storage(settings: &Settings) -> ExitCode {
    println!(
        "checking storage: {}",
        crate::store::probe::describe(&settings.storage)
    );
    let steps = crate::store::probe::check(&settings.storage).await;
    for step in &steps {
        match &step.outcome {
            Ok(()) => println!("  ok    {}", step.name),
            Err(reason) => println!("  FAIL  {}: {reason}", step.name),
        }
    }
    if steps.iter().all(|s| s.outcome.is_ok()) {
        println!("storage works");
        ExitCode::SUCCESS
    } else {
        println!("storage does not work");
        ExitCode::FAILURE
    }
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
