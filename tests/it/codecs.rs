//! The upload gate, down to the codec, on real files made by ffmpeg (tests/it/common/media.rs):
//! what WhatsApp accepts is stored as it is; what it refuses is refused with its status, code,
//! the codec or variant found and a `fix` command, nothing is stored; `media-origin check`
//! agrees with the gate on the same files served by another server; the CLI refuses before
//! sending; and every suggested `fix` turns its file into one the gate accepts.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use common::TestServer;
use common::media::{self, Corpus};
use reqwest::Method;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

/// What the gate must answer for a refused file: status, code, and words of the message.
struct Refusal {
    status: u16,
    code: &'static str,
    says: &'static str,
}

const fn refused(status: u16, code: &'static str, says: &'static str) -> Option<Refusal> {
    Some(Refusal { status, code, says })
}

/// `None`: WhatsApp accepts the file and the gate stores it.
fn expected(c: Corpus) -> Option<Refusal> {
    const INVALID: &str = "invalid_media";
    const UNSUPPORTED: &str = "unsupported_media_type";
    match c {
        Corpus::HevcMp4 | Corpus::HevcHev1Mp4 => refused(
            422,
            INVALID,
            "invalid video/mp4: video codec HEVC (H.265); WhatsApp plays H.264 only",
        ),
        Corpus::Vp9Mp4 => refused(422, INVALID, "video codec VP9; WhatsApp plays H.264 only"),
        Corpus::Av1Mp4 => refused(422, INVALID, "video codec AV1; WhatsApp plays H.264 only"),
        Corpus::Mpeg4Part2Mp4 => refused(422, INVALID, "video codec MPEG-4 Part 2"),
        Corpus::H264AacMov => refused(415, UNSUPPORTED, "video/quicktime is not accepted"),
        Corpus::TwoAacTracksMp4 => refused(
            422,
            INVALID,
            "it has 2 audio tracks; WhatsApp accepts a single audio track or none",
        ),
        Corpus::H264OpusMp4 => refused(422, INVALID, "audio codec Opus; WhatsApp plays AAC only"),
        Corpus::H264Mp3Mp4 => refused(422, INVALID, "audio codec MP3; WhatsApp plays AAC only"),
        Corpus::H264Ac3Mp4 => refused(422, INVALID, "audio codec AC-3 (Dolby Digital)"),
        Corpus::AlacM4a => refused(
            422,
            INVALID,
            "invalid audio/mp4: audio codec ALAC (Apple Lossless); WhatsApp plays AAC only",
        ),
        Corpus::H263Amr3gp => refused(422, INVALID, "video codec H.263"),
        Corpus::H264Aac3g2 => refused(415, UNSUPPORTED, "video/3gpp2 is not accepted"),
        Corpus::StereoOpusOgg => {
            refused(422, INVALID, "mono Opus only; this stream has 2 channels")
        }
        Corpus::VorbisOgg => refused(422, INVALID, "this stream is Vorbis"),
        Corpus::ToneWav => refused(415, UNSUPPORTED, "audio/wav is not accepted"),
        Corpus::ToneFlac => refused(415, UNSUPPORTED, "audio/flac is not accepted"),
        Corpus::ToneMp2 => refused(
            422,
            INVALID,
            "MPEG-1 Audio Layer II (MP2); WhatsApp plays MP3 (Layer III) only",
        ),
        Corpus::WbAmr => refused(415, UNSUPPORTED, "audio/amr-wb is not accepted"),
        Corpus::WebmOpus => refused(415, UNSUPPORTED, "audio/webm is not accepted"),
        Corpus::CmykJpg => refused(
            422,
            INVALID,
            "CMYK JPEG (4 colour components); WhatsApp takes RGB or greyscale JPEG only",
        ),
        Corpus::YcckJpg => refused(422, INVALID, "YCCK JPEG (4 colour components)"),
        Corpus::PalettePng => refused(422, INVALID, "8-bit palette (indexed colour)"),
        Corpus::GreyPng => refused(422, INVALID, "8-bit greyscale"),
        Corpus::Rgb48Png => refused(422, INVALID, "16-bit RGB"),
        Corpus::BannerWebp => refused(422, INVALID, "must be 512x512 pixels; this WebP is 160x90"),
        Corpus::BannerGif => refused(415, UNSUPPORTED, "image/gif is not accepted"),
        Corpus::H264AacMp4
        | Corpus::H264OnlyMp4
        | Corpus::H264AacMoovLastMp4
        | Corpus::AacM4a
        | Corpus::H264Aac3gp
        | Corpus::MonoOpusOgg
        | Corpus::ToneMp3
        | Corpus::ToneAac
        | Corpus::NbAmr
        | Corpus::PhotoJpg
        | Corpus::GreyJpg
        | Corpus::RgbPng
        | Corpus::RgbaPng
        | Corpus::StickerWebp => None,
    }
}

/// The stored type and the codecs the record... the gate reports for an accepted file.
fn stored_type(c: Corpus) -> &'static str {
    match c {
        Corpus::H264Aac3gp => "video/3gpp",
        Corpus::MonoOpusOgg => "audio/ogg; codecs=opus",
        Corpus::StickerWebp => "image/webp",
        other => other.declared_type(),
    }
}

/// The type a user would declare: the extension's, but Meta's spelling for 3GPP, and none at
/// all (so the bytes decide) where the extension's type is one WhatsApp does not take.
fn declared(c: Corpus) -> Option<&'static str> {
    match c.declared_type() {
        "video/3gpp" => Some("video/3gp"),
        "video/quicktime" | "video/3gpp2" | "audio/wav" | "audio/flac" | "audio/webm"
        | "image/gif" => None,
        t => Some(t),
    }
}

async fn put(s: &TestServer, path: &str, declared: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = s.admin(Method::PUT, &format!("/assets/{path}")).body(body);
    if let Some(t) = declared {
        req = req.header("content-type", t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A server that is not media-origin, serving every corpus file as its extension says, with
/// caching Meta honours: what `check` is for.
async fn foreign_server(files: &[(Corpus, &'static [u8])]) -> String {
    let mut app = Router::new();
    for &(c, bytes) in files {
        let content_type = match c {
            Corpus::MonoOpusOgg | Corpus::StereoOpusOgg | Corpus::VorbisOgg => {
                "audio/ogg; codecs=opus"
            }
            other => other.declared_type(),
        };
        app = app.route(
            &format!("/c/{}", c.name()),
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                        (
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("max-age=86400"),
                        ),
                        (
                            header::LAST_MODIFIED,
                            HeaderValue::from_static("Tue, 22 Feb 2022 22:22:22 GMT"),
                        ),
                    ],
                    bytes,
                )
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/c")
}

/// `media-origin check URL`: exit code and the report.
async fn check(url: &str) -> (i32, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["check", url])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn line<'a>(report: &'a str, prefix: &str) -> &'a str {
    report
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gate_and_check_agree_on_every_file_of_the_corpus() {
    let corpus: Vec<(Corpus, &'static [u8])> = media::all()
        .into_iter()
        .filter_map(|(c, made)| made.map(|m| (c, m.bytes.as_slice())))
        .collect();
    assert!(
        corpus.len() >= 38,
        "only {} corpus files were made",
        corpus.len()
    );
    let s = TestServer::start().await;
    let foreign = foreign_server(&corpus).await;

    for &(c, bytes) in &corpus {
        let name = c.name();
        let before = s.files();
        let (status, body) = put(&s, &format!("corpus/{name}"), declared(c), bytes.to_vec()).await;
        let (code, report) = check(&format!("{foreign}/{name}")).await;
        match expected(c) {
            None => {
                assert_eq!(status, 201, "{name}: {body}");
                assert_eq!(body["content_type"], stored_type(c), "{name}");
                let served = s.get(&s.media(&format!("corpus/{name}"))).await;
                assert_eq!(served.status(), 200, "{name}");
                assert_eq!(served.bytes().await.unwrap(), bytes, "{name}");
                assert_eq!(code, 0, "{name}: check refused an accepted file:\n{report}");
                assert!(
                    line(&report, "ok    bytes: ").contains(stored_type(c)),
                    "{report}"
                );
            }
            Some(want) => {
                let error = &body["error"];
                assert_eq!(status, want.status, "{name}: {body}");
                assert_eq!(error["code"], want.code, "{name}: {body}");
                let message = error["message"].as_str().unwrap();
                assert!(
                    message.contains(want.says),
                    "{name}: {message:?} lacks {:?}",
                    want.says
                );
                let fix = error["fix"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no fix in {body}"));
                assert_eq!(
                    s.files(),
                    before,
                    "{name}: a refused upload changed the storage"
                );
                // check fails the same file with the gate's own words and fix.
                assert_eq!(code, 1, "{name}: check passed a refused file:\n{report}");
                let bytes_line = line(&report, "FAIL  bytes: ");
                assert!(
                    bytes_line.contains(message),
                    "{name}: {bytes_line:?} lacks {message:?}"
                );
                assert!(
                    bytes_line.contains(fix),
                    "{name}: {bytes_line:?} lacks the fix"
                );
            }
        }
    }

    // The exact fix for the commonest case, an HEVC phone video.
    let (_, body) = put(
        &s,
        "x/hevc.mp4",
        Some("video/mp4"),
        media::file(Corpus::HevcMp4).to_vec(),
    )
    .await;
    assert_eq!(
        body["error"]["fix"],
        "ffmpeg -i in.mp4 -map 0:v:0 -map \"0:a:0?\" -vf \"scale=trunc(iw/2)*2:trunc(ih/2)*2\" \
         -c:v libx264 -pix_fmt yuv420p -profile:v high -c:a aac -ac 2 -movflags +faststart out.mp4"
    );
    // An iPhone .mov declared as MP4: the bytes are QuickTime.
    let (status, body) = put(
        &s,
        "x/clip.mp4",
        Some("video/mp4"),
        media::file(Corpus::H264AacMov).to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "content_type_mismatch");
    assert_eq!(
        body["error"]["message"],
        "declared video/mp4 but the bytes are video/quicktime"
    );
    assert!(
        body["error"]["fix"]
            .as_str()
            .unwrap()
            .starts_with("ffmpeg -i in.mov ")
    );
    // An accepted video's codecs are what check reports.
    let (_, report) = check(&format!("{foreign}/h264_aac_moov_last.mp4")).await;
    assert!(
        line(&report, "ok    bytes: ").ends_with(": H.264 video, AAC-LC audio"),
        "{report}"
    );
    let (_, report) = check(&format!("{foreign}/photo.jpg")).await;
    assert!(
        line(&report, "ok    bytes: ").ends_with(": 8-bit YCbCr baseline JPEG"),
        "{report}"
    );
    s.stop().await;
}

/// Runs `fix` (a shell command naming `in.<ext>` and `out.<ext>`) on `input`; the output file.
fn run_fix(fix: &str, input: &Path, dir: &Path) -> std::path::PathBuf {
    let words: Vec<&str> = fix.split_whitespace().collect();
    let in_word = words
        .iter()
        .find(|w| w.starts_with("in."))
        .expect("names in.<ext>");
    let out_word = words
        .iter()
        .rev()
        .find(|w| w.starts_with("out."))
        .expect("names out.<ext>");
    let out = dir.join(out_word);
    let _ = std::fs::remove_file(&out);
    let command = fix
        .replacen(
            &format!(" {in_word} "),
            &format!(" {} ", input.display()),
            1,
        )
        .replacen(out_word, &out.display().to_string(), 1);
    let status = Command::new("timeout")
        .args([
            "120",
            "sh",
            "-c",
            &format!("{command} </dev/null >/dev/null 2>&1"),
        ])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{command} failed: {status}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_suggested_fix_makes_the_file_acceptable() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for (c, made) in media::all() {
        let Some(made) = made else { continue };
        if expected(c).is_none() {
            continue;
        }
        let (_, body) = put(
            &s,
            &format!("before/{}", c.name()),
            declared(c),
            made.bytes.clone(),
        )
        .await;
        let fix = body["error"]["fix"].as_str().unwrap().to_owned();
        let out = run_fix(&fix, &made.path, dir.path());
        let fixed = std::fs::read(&out).unwrap();
        let name = out.file_name().unwrap().to_str().unwrap();
        let (status, body) = put(&s, &format!("after/{}/{name}", c.name()), None, fixed).await;
        assert_eq!(
            status,
            201,
            "{}: `{fix}` gave a file the gate refuses: {body}",
            c.name()
        );
        ran += 1;
    }
    assert!(ran >= 24, "only {ran} fixes ran");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_refuses_before_sending_and_shows_the_fix() {
    let s = TestServer::start().await;
    let before = s.files();
    let out = tokio::process::Command::new(BIN)
        .args([
            "upload",
            "--to",
            "clips",
            "--server",
            &s.base,
            "--token",
            common::TOKEN,
        ])
        .arg(media::path(Corpus::H264AacMoovLastMp4))
        .arg(media::path(Corpus::HevcMp4))
        .env("RUST_LOG", "warn")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was uploaded"), "{stderr}");
    assert!(
        stderr.contains("invalid video/mp4: video codec HEVC (H.265); WhatsApp plays H.264 only"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fix: ffmpeg -i in.mp4 -map 0:v:0"),
        "{stderr}"
    );
    assert_eq!(s.files(), before, "the CLI sent something");
    s.stop().await;
}

/// An asset stored before the gate read codecs (an HEVC clip kept as `video/mp4`, planted here in
/// the storage layout an older version wrote) is refused by the Media API upload with the gate's
/// own words and fix, and nothing reaches Meta; an H.264 clip beside it is uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_media_api_upload_applies_the_same_decision() {
    use common::graph::GraphServer;
    use common::{Backend, Storage};
    use sha2::{Digest, Sha256};

    let g = GraphServer::start_default().await;
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| g.configure(c)).await;
    let good = media::file(Corpus::H264AacMp4).to_vec();
    let (status, _) = put(&s, "old/good.mp4", Some("video/mp4"), good.clone()).await;
    assert_eq!(status, 201);
    let (status, _) = put(&s, "old/hevc.mp4", Some("video/mp4"), good.clone()).await;
    assert_eq!(status, 201);

    // Rewrite old/hevc.mp4 as the older version would have stored an HEVC upload: its blob
    // under its own hash, and the record pointing at it.
    let hevc = media::file(Corpus::HevcMp4);
    let sha = hex::encode(Sha256::digest(hevc));
    let root = s.root();
    let blob = root.join(format!("blobs/sha256/{}/{sha}", &sha[..2]));
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, hevc).unwrap();
    let record_file = root.join("assets/old/hevc.mp4.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&record_file).unwrap()).unwrap();
    record["sha256"] = sha.clone().into();
    record["size"] = hevc.len().into();
    std::fs::write(&record_file, serde_json::to_vec(&record).unwrap()).unwrap();
    // A new server over the same storage, so nothing of the planted record is cached.
    let storage = std::sync::Arc::clone(&s.storage);
    s.stop().await;
    let s = TestServer::start_with(storage, |c| g.configure(c)).await;
    assert_eq!(
        s.get(&s.media("old/hevc.mp4")).await.bytes().await.unwrap(),
        hevc,
        "the planted asset is served as stored"
    );

    let ask = |path: &'static str| {
        s.admin(Method::POST, "/whatsapp/media")
            .json(&serde_json::json!({ "path": path }))
            .send()
    };
    let r = ask("old/hevc.mp4").await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "whatsapp_would_refuse");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "invalid video/mp4: video codec HEVC (H.265); WhatsApp plays H.264 only: WhatsApp \
             would refuse it; fix: ffmpeg -i in.mp4 "
        ),
        "{message}"
    );
    assert!(g.uploads().is_empty(), "the HEVC clip reached Meta");

    let r = ask("old/good.mp4").await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reused"], false, "{body}");
    assert_eq!(g.uploads().len(), 1);
    s.stop().await;
}

/// ffmpeg from the corpus's install, on lavfi sources: a file the corpus does not hold.
fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    media::file(Corpus::H264AacMp4); // installs ffmpeg when missing
    let out = dir.join(name);
    let status = Command::new("timeout")
        .arg("120")
        .args([
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
        ])
        .args(args)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?} failed");
    out
}

/// Cases found in review: H.264 in a profile phones do not decode, an odd-sized HEVC clip (the
/// fix must make its dimensions even for x264), an M4A kept under a `.mp4` name (stored as
/// audio, so `check` on its link must agree), and text that mentions `moov` early on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn profiles_odd_sizes_audio_under_mp4_names_and_text() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let lavfi = ["-f", "lavfi", "-i", "testsrc2=s=64x64:d=0.5:r=10"];

    let hi444 = ffmpeg(
        dir.path(),
        "hi444.mp4",
        &[
            &lavfi[..],
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv444p",
            ],
        ]
        .concat(),
    );
    let (status, body) = put(
        &s,
        "r/hi444.mp4",
        Some("video/mp4"),
        std::fs::read(&hi444).unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["message"],
        "invalid video/mp4: video codec H.264 High 4:4:4 Predictive profile; WhatsApp plays 8-bit \
         4:2:0 H.264 (Baseline, Main or High profile) only"
    );

    let odd = ffmpeg(
        dir.path(),
        "odd.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=321x241:d=0.5:r=10",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
        ],
    );
    let (status, body) = put(
        &s,
        "r/odd.mp4",
        Some("video/mp4"),
        std::fs::read(&odd).unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let fixed = run_fix(body["error"]["fix"].as_str().unwrap(), &odd, dir.path());
    let (status, body) = put(&s, "r/odd-fixed.mp4", None, std::fs::read(fixed).unwrap()).await;
    assert_eq!(status, 201, "{body}");

    // An M4A named .mp4 and declared audio/mp4: stored as audio, and check agrees.
    let m4a = media::file(Corpus::AacM4a).to_vec();
    let (status, body) = put(&s, "r/song.mp4", Some("audio/mp4"), m4a).await;
    assert_eq!(
        (status, body["content_type"].as_str()),
        (201, Some("audio/mp4")),
        "{body}"
    );
    let (code, report) = check(&s.media("r/song.mp4")).await;
    assert_eq!(code, 0, "{report}");
    assert!(
        line(&report, "ok    bytes: ").ends_with(": AAC-LC audio"),
        "{report}"
    );

    // Text whose bytes 4..8 spell an atom name is text, not QuickTime.
    let (status, body) = put(
        &s,
        "r/note.txt",
        None,
        b"Not moov-ing: the sale starts Monday.\n".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["content_type"].as_str()),
        (201, Some("text/plain")),
        "{body}"
    );
    s.stop().await;
}

/// On S3 a refusal is decided after the bytes went up (in parts, past 5 MiB): nothing may stay,
/// neither an object nor a multipart upload's marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_leave_nothing_on_s3() {
    let s = TestServer::start_on(common::Backend::S3).await;
    let before = s.files();
    // A 6 MB HEVC clip: the codec is only known at `moov`, after the first part was sent.
    let mut big = media::file(Corpus::HevcMp4).to_vec();
    let more = 6_000_000 - big.len();
    big.extend_from_slice(&u32::try_from(more).unwrap().to_be_bytes());
    big.extend_from_slice(b"free");
    big.extend(common::fixtures::noise(more - 8, 1));
    let (status, body) = put(&s, "s3/big-hevc.mp4", Some("video/mp4"), big).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("HEVC"),
        "{body}"
    );
    for c in [
        Corpus::H264AacMov,
        Corpus::TwoAacTracksMp4,
        Corpus::CmykJpg,
        Corpus::ToneMp2,
    ] {
        let (status, _) = put(
            &s,
            &format!("s3/{}", c.name()),
            declared(c),
            media::file(c).to_vec(),
        )
        .await;
        assert_eq!(status, expected(c).unwrap().status, "{}", c.name());
    }
    assert_eq!(s.files(), before, "a refusal left something in the bucket");
    let (status, _) = put(
        &s,
        "s3/ok.mp4",
        Some("video/mp4"),
        media::file(Corpus::H264AacMoovLastMp4).to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    s.stop().await;
}
