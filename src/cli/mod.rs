//! The command line: `media-origin serve` and its overrides, `check-storage`, and `upload`
//! (a client of a running server's admin API).

mod api;
mod check;
mod systemd;
mod upload;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::Server;
use crate::config::Settings;

/// The version and the commit it was built from, as `--version` prints it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILT_FROM_COMMIT"),
    ")"
);

/// An origin server for WhatsApp Business media.
#[derive(Debug, Parser)]
#[command(name = "media-origin", version = VERSION, about)]
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
    /// Print a signed, expiring link to an asset (for signed-only assets), through a running
    /// server's admin API.
    Sign {
        /// The asset path, e.g. `private/invoice-42.pdf`.
        path: String,
        /// Lifetime in seconds (default: the server's `signing.link_ttl_secs`).
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// Fetch URLs the way Meta's media fetcher would and report, rule by rule, whether Meta can
    /// use each and how it will cache it.
    ///
    /// Checks the status and redirects, the exact Content-Type against the bytes, the size
    /// against the kind's limit, Cache-Control, Last-Modified and ETag (the README's "What Meta
    /// needs from a link", "What is accepted" and "What each policy makes Meta do"), then
    /// prints a verdict line. Works against any server. Exit status: 0 when every URL
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
    if let Some(problem) = crate::logging::rust_log_problem(log.level.as_deref()) {
        tracing::warn!("{problem}");
    }
    let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    for warning in crate::config::ignored_env_vars(names) {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Upload(args) => upload::run(args).await,
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
            for warning in settings.warnings() {
                tracing::warn!("{warning}");
            }
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

async fn sign(path: &str, ttl: Option<u64>, api: &api::ApiArgs) -> ExitCode {
    let target = match api::target(api) {
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
    match api::call(request, &target.token).await {
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
                "media-origin sign: {} ({}){}",
                error["message"].as_str().unwrap_or("failed"),
                error["code"].as_str().unwrap_or("error"),
                api::fix_line(&error)
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
    // Listening for the stop signals before anyone can be told the server is ready: a SIGTERM
    // right after READY=1 (or the log's address) must stop it gracefully, not kill it.
    let shutdown = shutdown_signal()?;
    let server = Server::bind(&settings).await?;
    let reloader = server.reloader(settings, load);
    #[cfg(unix)]
    let reloading = tokio::spawn(reload_on_hangup(hangups, reloader));
    #[cfg(not(unix))]
    drop(reloader);
    tracing::info!(
        public_base = %server.public_base(),
        version = %VERSION,
        "media-origin ready"
    );
    systemd::ready(&format!("serving {}", server.public_base()));
    let served = server.run(shutdown).await;
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
        systemd::reloading();
        reloader = match tokio::task::spawn_blocking(move || {
            let outcome = reloader.reload();
            systemd::reloaded(match outcome {
                crate::reload::Outcome::Applied { .. } => "serving; configuration reloaded",
                crate::reload::Outcome::Refused(_) => {
                    "serving; the last reload was refused, see the log"
                }
            });
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

/// Ctrl-C (SIGINT) or SIGTERM: stop accepting, finish what is in flight. The signals are
/// listened for from the call on, not from the first poll of the future.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let stops = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        }
    };
    #[cfg(not(unix))]
    let stops = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Ok(async move {
        stops.await;
        tracing::info!("shutting down: finishing requests in flight");
        systemd::stopping();
    })
}

#[cfg(test)]
#[path = "../../build/commit.rs"]
mod build_commit;

#[cfg(test)]
mod tests {
    use super::build_commit;

    #[test]
    fn the_commit_comes_from_git_and_a_directory_without_one_names_none() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let commit = build_commit::commit(here);
        if let Some(commit) = &commit {
            assert_eq!(commit.len(), 12, "{commit}");
        }
        let expected = commit.unwrap_or_else(|| build_commit::UNKNOWN.to_owned());
        assert!(
            super::VERSION.ends_with(&format!(" (commit {expected})")),
            "{}",
            super::VERSION
        );
        let bare = tempfile::tempdir().unwrap();
        assert_eq!(build_commit::commit(bare.path()), None);
        assert!(build_commit::watched(bare.path()).is_empty());
        let gone = bare.path().join("missing");
        assert_eq!(build_commit::commit(&gone), None);
    }
}
