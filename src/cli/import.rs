//! `media-origin import MEDIA_ID...`: keep media customers sent, through a running server's
//! admin API (`POST /api/whatsapp/import`), printing each stored path and its signed link.

use std::process::ExitCode;

use serde_json::json;

use super::api::{ApiArgs, call, target};
use crate::asset::path::parse_folder;

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Media IDs from webhooks (Meta keeps incoming media 7 days).
    #[arg(required = true, value_name = "MEDIA_ID")]
    media_ids: Vec<String>,
    /// The business phone number the media came in on (default: the first configured).
    #[arg(long, value_name = "ID")]
    phone_number_id: Option<String>,
    /// The folder to keep them in (default: `inbox/<phone_number_id>`).
    #[arg(long = "to", value_name = "FOLDER")]
    folder: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Import each media ID: one line per ID, `path<TAB>link` on stdout; 0 when all were imported
/// (or had been before), 1 when any failed, 2 on bad arguments (nothing sent).
pub async fn run(args: ImportArgs) -> ExitCode {
    let folder = match args.folder.as_deref().map(parse_folder).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("media-origin import: --to: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(bad) = args
        .media_ids
        .iter()
        .find(|id| !crate::whatsapp::valid_media_id(id))
    {
        eprintln!("media-origin import: {bad:?} is not a media ID");
        return ExitCode::from(2);
    }
    let target = match target(&args.api) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("media-origin import: {e}");
            return ExitCode::from(2);
        }
    };
    let client = reqwest::Client::new();
    let mut failed = false;
    for id in &args.media_ids {
        let mut body = json!({"media_id": id});
        if let Some(phone) = &args.phone_number_id {
            body["phone_number_id"] = json!(phone);
        }
        if let Some(folder) = &folder {
            body["folder"] = json!(folder);
        }
        let request = client
            .post(format!("{}/api/whatsapp/import", target.base))
            .json(&body);
        match call(request, &target.token).await {
            Ok(asset) => {
                println!(
                    "{}\t{}",
                    asset["path"].as_str().unwrap_or_default(),
                    asset["link"].as_str().unwrap_or_default()
                );
                let state = if asset["created"] == json!(false) {
                    "imported before"
                } else {
                    "imported"
                };
                eprintln!(
                    "{id}: {state}, {} ({} bytes)",
                    asset["content_type"].as_str().unwrap_or_default(),
                    asset["size"]
                );
            }
            Err(error) => {
                failed = true;
                eprintln!(
                    "media-origin import: {id}: {} ({})",
                    error["message"].as_str().unwrap_or("failed"),
                    error["code"].as_str().unwrap_or("error")
                );
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
