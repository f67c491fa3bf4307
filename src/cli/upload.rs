//! `media-origin upload`: send files to a running server through its admin API.
//!
//! It goes through the API rather than writing into storage itself because the server is the one
//! writer that keeps records, policies and media IDs consistent, and the one that decides what a
//! file's exact MIME type is. On S3 with several instances that is the only safe way in.
//!
//! Everything that can be checked before the first byte leaves is checked first (the folder,
//! each asset path, the cache policy, that every file is readable), so a typo in the last
//! argument does not leave the first files uploaded and the rest not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::api::{ApiArgs, Target, call, fix_line, target};
use crate::asset::AssetPath;
use crate::asset::path::{parse_folder, url_encode};
use crate::media_kind;
use crate::policy::CachePolicy;

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_FROM: u64 = 4 * 1024 * 1024;
/// Read size when streaming a file to the server.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Files to upload; each keeps its file name inside the folder.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The folder to upload into, e.g. `promo/2026` (`/` for the top level).
    #[arg(long = "to", value_name = "FOLDER")]
    folder: String,
    /// Cache policy for these assets (`max-age=N`, `no-cache`, `no-store`, `private`),
    /// overriding the folder's.
    #[arg(long, value_name = "POLICY")]
    cache: Option<String>,
    /// Also upload each asset to the WhatsApp Media API and print its media ID.
    #[arg(long)]
    whatsapp: bool,
    /// Let the server convert what WhatsApp would refuse (`--convert`, or `--convert=sticker`
    /// for a 512×512 WebP sticker of an image); files WhatsApp accepts are stored untouched.
    /// The stored path's extension follows the converted type (`clip.mov` -> `clip.mp4`).
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = ["true", "sticker", "false"])]
    convert: Option<String>,
    /// The business phone number the media ID is for (default: the server's first).
    #[arg(long, requires = "whatsapp", value_name = "ID")]
    phone_number_id: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    json: bool,
}

/// One file, checked and ready to send.
struct Planned {
    file: PathBuf,
    path: AssetPath,
    size: u64,
}

/// Run the command: exit 0 when every file (and media ID) made it, 1 when any did not, 2 when
/// nothing was sent because the arguments or configuration were wrong.
pub async fn run(args: UploadArgs) -> ExitCode {
    let (target, plan) = match prepare(&args) {
        Ok(ready) => ready,
        Err(message) => {
            eprintln!("media-origin upload: {message}");
            return ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("media-origin upload: {e}");
            return ExitCode::from(2);
        }
    };
    // One cheap request first: a wrong URL or token is reported as such, not as a broken pipe
    // halfway through the first file (the server answers 401 without reading the body).
    if let Err(error) = call(
        client.get(format!("{}/api/policies", target.base)),
        &target.token,
    )
    .await
    {
        eprintln!(
            "media-origin upload: {} at {}: {}{}",
            if error["status"] == 401 {
                "the admin token was refused"
            } else {
                "the server cannot be used"
            },
            target.base,
            error["message"].as_str().unwrap_or("failed"),
            fix_line(&error),
        );
        return ExitCode::from(2);
    }
    // A media ID that cannot be had (no WhatsApp there, a number it does not know) is refused
    // now, not after every file went up without one.
    if args.whatsapp
        && let Err(message) =
            check_whatsapp(&client, &target, args.phone_number_id.as_deref()).await
    {
        eprintln!("media-origin upload: nothing was uploaded: {message}");
        return ExitCode::from(2);
    }
    let mut failed = 0;
    for item in &plan {
        let report = upload_one(&client, &target, &args, item).await;
        if !report.ok {
            failed += 1;
        }
        if args.json {
            println!("{}", report.json);
        } else if report.stored {
            // The asset is there and its link is good, even when its media ID is not.
            print!("{}", report.text);
        } else {
            eprint!("{}", report.text);
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        if !args.json {
            eprintln!("media-origin upload: {failed} of {} failed", plan.len());
        }
        ExitCode::FAILURE
    }
}

/// `GET /api/whatsapp`: the server can get media IDs, and for `phone` when one is named.
async fn check_whatsapp(
    client: &reqwest::Client,
    target: &Target,
    phone: Option<&str>,
) -> Result<(), String> {
    let status = call(
        client.get(format!("{}/api/whatsapp", target.base)),
        &target.token,
    )
    .await
    .map_err(|error| {
        format!(
            "could not ask the server about WhatsApp: {}{}",
            error["message"].as_str().unwrap_or("failed"),
            fix_line(&error)
        )
    })?;
    if status["configured"] != true {
        return Err(format!(
            "--whatsapp: the server cannot get media IDs: {}",
            status["missing"]
                .as_str()
                .unwrap_or("WhatsApp is not configured")
        ));
    }
    let known: Vec<&str> = status["phone_number_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match phone {
        Some(phone) if !known.contains(&phone) => Err(format!(
            "--phone-number-id {phone}: the server has no such phone number; it has {}",
            known.join(", ")
        )),
        _ => Ok(()),
    }
}

fn prepare(args: &UploadArgs) -> Result<(Target, Vec<Planned>), String> {
    let folder = if args.folder.trim_matches('/').is_empty() {
        String::new()
    } else {
        parse_folder(&args.folder).map_err(|e| format!("--to {:?}: {e}", args.folder))?
    };
    if let Some(cache) = &args.cache {
        cache
            .parse::<CachePolicy>()
            .map_err(|e| format!("--cache {cache:?}: {e}"))?;
    }
    let mut plan: Vec<Planned> = Vec::with_capacity(args.files.len());
    let mut problems = Vec::new();
    for file in &args.files {
        let converting = args.convert.as_deref().is_some_and(|c| c != "false");
        match check_file(file, &folder, converting) {
            Ok(item) if plan.iter().any(|p| p.path.as_str() == item.path.as_str()) => {
                problems.push(format!("{}: {} is named twice", file.display(), item.path));
            }
            Ok(item) => plan.push(item),
            Err(problem) => problems.push(format!("{}: {problem}", file.display())),
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "nothing was uploaded:\n  {}",
            problems.join("\n  ")
        ));
    }
    Ok((target(&args.api)?, plan))
}

/// A file the server would accept: readable, a valid asset name, and of a type and size
/// WhatsApp takes (judged by the same rules the server applies to the bytes); when `converting`,
/// the server judges the type after conversion, so only the first two are checked here.
fn check_file(file: &Path, folder: &str, converting: bool) -> Result<Planned, String> {
    use std::io::Read;
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the file name is not UTF-8")?;
    let joined = if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    };
    let path = AssetPath::parse(&joined).map_err(|e| e.to_string())?;
    if converting {
        return Ok(Planned {
            file: file.to_owned(),
            path,
            size: meta.len(),
        });
    }
    // The whole file, as the server reads it: an MP4's track list may be at its end.
    let mut inspector = media_kind::Inspector::new();
    let mut f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        inspector.update(&buf[..n]);
        if inspector.size() > media_kind::MAX_UPLOAD_SIZE {
            break;
        }
    }
    let shown = |e: media_kind::MediaError| match e.fix() {
        Some(fix) => format!("{e}\n    fix: {fix}"),
        None => e.to_string(),
    };
    if inspector.size() > media_kind::MAX_UPLOAD_SIZE {
        // Larger than any kind may be: the head names the kind, the file's length the size.
        media_kind::resolve(None, Some(name), inspector.head(), meta.len()).map_err(shown)?;
        return Err(format!(
            "{} bytes is larger than WhatsApp takes",
            meta.len()
        ));
    }
    if inspector.size() != meta.len() {
        return Err("the file changed while it was read".into());
    }
    inspector.finish(None, Some(name)).map_err(shown)?;
    // A browser, the admin page and `curl -F` declare the type the name's extension suggests,
    // and the server refuses the form when the bytes contradict it: the same answer here,
    // rather than storing a PNG as `x.jpg` only because it came through the CLI.
    if let Some(named) = media_kind::type_for_name(name)
        && let Err(e @ media_kind::MediaError::Mismatch { .. }) =
            inspector.finish(Some(named), Some(name))
    {
        let fix = match &e {
            media_kind::MediaError::Mismatch { detected, .. } => {
                media_kind::canonical_extension(detected).map(|ext| {
                    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
                    format!(
                        "rename it to {stem}.{ext}: a file name's extension declares its type, \
                         here as in curl -F and the admin page"
                    )
                })
            }
            _ => None,
        };
        return Err(match fix.or_else(|| e.fix()) {
            Some(fix) => format!("{e} ({})\n    fix: {fix}", e.code()),
            None => format!("{e} ({})", e.code()),
        });
    }
    Ok(Planned {
        file: file.to_owned(),
        path,
        size: meta.len(),
    })
}

/// What became of one file: text for people, JSON for scripts.
struct Report {
    /// Everything asked for was done.
    ok: bool,
    /// The asset was stored.
    stored: bool,
    text: String,
    json: Value,
}

async fn upload_one(
    client: &reqwest::Client,
    target: &Target,
    args: &UploadArgs,
    item: &Planned,
) -> Report {
    let path = item.path.as_str();
    let failed = |error: Value| {
        let message = error["message"].as_str().unwrap_or("failed").to_owned();
        let code = error["code"].as_str().unwrap_or("error").to_owned();
        let fix = error["fix"]
            .as_str()
            .map(|fix| format!("    fix: {fix}\n"))
            .unwrap_or_default();
        Report {
            ok: false,
            stored: false,
            text: format!("FAILED {path}: {message} ({code})\n{fix}"),
            json: json!({"path": path, "file": item.file, "error": error}),
        }
    };
    let asset = match put(client, target, args, item).await {
        Ok(asset) => asset,
        Err(error) => return failed(error),
    };
    let mut text = describe(&asset);
    // A conversion may have stored it under another extension.
    let path = asset["path"].as_str().unwrap_or(path).to_owned();
    let mut out = json!({"path": path, "file": item.file, "asset": asset});
    let mut ok = true;
    if args.whatsapp {
        let mut request = json!({"path": path});
        if let Some(phone) = &args.phone_number_id {
            request["phone_number_id"] = json!(phone);
        }
        let url = format!("{}/api/whatsapp/media", target.base);
        match call(client.post(url).json(&request), &target.token).await {
            Ok(mut media) => {
                text.push_str(&describe_media(&media));
                // The record as it is now, with the media ID in it, replaces the one from
                // before the upload; the answer's own copy goes, so it is printed once.
                if let Some(current) = media.as_object_mut().and_then(|m| m.remove("asset")) {
                    out["asset"] = current;
                }
                out["whatsapp"] = media;
            }
            Err(error) => {
                ok = false;
                text.push_str(&format!(
                    "  media id:   FAILED: {} ({})\n",
                    error["message"].as_str().unwrap_or("failed"),
                    error["code"].as_str().unwrap_or("error"),
                ));
                out["whatsapp_error"] = error;
            }
        }
    }
    Report {
        ok,
        stored: true,
        text,
        json: out,
    }
}

/// `PUT /api/assets/{path}` with the file streamed as the body.
async fn put(
    client: &reqwest::Client,
    target: &Target,
    args: &UploadArgs,
    item: &Planned,
) -> Result<Value, Value> {
    let file = tokio::fs::File::open(&item.file)
        .await
        .map_err(|e| local_error(&item.file, &e))?;
    let bar = progress_bar(item);
    let counter = bar.clone();
    let body = tokio_util::io::ReaderStream::with_capacity(file, CHUNK)
        .inspect_ok(move |chunk| counter.inc(chunk.len() as u64));
    let mut url = reqwest::Url::parse(&format!(
        "{}/api/assets/{}",
        target.base,
        url_encode(item.path.as_str())
    ))
    .map_err(|e| json!({"code": "bad_url", "message": e.to_string()}))?;
    if let Some(cache) = &args.cache {
        url.query_pairs_mut().append_pair("cache", cache);
    }
    if let Some(convert) = &args.convert {
        url.query_pairs_mut().append_pair("convert", convert);
    }
    // No Content-Type: the server decides the exact type from the bytes and the name. The
    // length lets it refuse a file over the kind's limit before reading it.
    let request = client
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, item.size)
        .body(reqwest::Body::wrap_stream(body));
    let result = call(request, &target.token).await;
    bar.finish_and_clear();
    result
}

fn local_error(file: &Path, e: &std::io::Error) -> Value {
    json!({"code": "local_file", "message": format!("{}: {e}", file.display())})
}

fn progress_bar(item: &Planned) -> ProgressBar {
    if item.size < PROGRESS_FROM {
        return ProgressBar::hidden();
    }
    // The stderr target draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(item.size), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(item.path.as_str().to_owned());
    bar
}

fn describe(asset: &Value) -> String {
    let s = |key: &str| asset[key].as_str().unwrap_or("").to_owned();
    let mut text = format!(
        "{path}  ({content_type}, {size} bytes)\n  link:       {link}\n  cache:      {cache} ({source})\n  message:    {message}\n",
        path = s("path"),
        content_type = s("content_type"),
        size = asset["size"],
        link = s("link"),
        cache = s("cache_control"),
        source = s("policy_source"),
        message = asset["message"],
    );
    // Ogg Opus: the same message as a voice note.
    if asset["message_voice"].is_object() {
        text.push_str(&format!("  voice note: {}\n", asset["message_voice"]));
    }
    let from = &asset["converted_from"];
    if from.is_object() {
        text.push_str(&format!(
            "  converted:  from {} ({} bytes)\n",
            from["content_type"].as_str().unwrap_or("?"),
            from["size"],
        ));
    }
    for warning in asset["warnings"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "  warning:    {}\n",
            warning.as_str().unwrap_or_default()
        ));
    }
    text
}

fn describe_media(media: &Value) -> String {
    let s = |key: &str| media[key].as_str().unwrap_or("").to_owned();
    let how = if media["reused"].as_bool() == Some(true) {
        "reused"
    } else {
        "uploaded"
    };
    let mut text = format!(
        "  media id:   {id} ({how} for phone number {phone}, valid until {expires})\n  by id:      {message}\n",
        id = s("media_id"),
        phone = s("phone_number_id"),
        expires = s("expires_at"),
        message = media["message"],
    );
    // Ogg Opus: the same message by ID as a voice note.
    if media["message_voice"].is_object() {
        text.push_str(&format!("  voice id:   {}\n", media["message_voice"]));
    }
    text
}
