//! Conversion on upload (`convert=true`, `convert=sticker`), from files made at test time by
//! ffmpeg (the corpus, and the conversion inputs of `common::media`): every result is fetched
//! back from `/media`, checked with ffprobe (codecs, channels, pixel format, dimensions, `moov`
//! before `mdat`), uploaded again without conversion to pass the server's own gate, and held to
//! WhatsApp's size limits; its `converted_from` must say exactly what ffprobe says of the
//! original. What WhatsApp already accepts is stored byte for byte.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::media::{self, Corpus, Input};
use crate::common::{self, Backend, Storage, TestServer};

/// A `PUT /api/assets/{path}?{query}`: status, `Location`, JSON body.
async fn put(
    s: &TestServer,
    path: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, Value) {
    let r = s
        .admin(Method::PUT, &format!("/assets/{path}?{query}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, r.json().await.unwrap())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What `converted_from` must be for the original `bytes`: what ffprobe says of them under a
/// name without an extension, as the server keeps an upload (an extension changes how ffprobe
/// names a still's demuxer: `image2` for `x.jpg`, `jpeg_pipe` without).
fn expected_from(bytes: &[u8], content_type: &str, refused: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input");
    std::fs::write(&file, bytes).unwrap();
    let probe = &media::probe(&file);
    let format = &probe["format"];
    let still = format["format_name"]
        .as_str()
        .is_some_and(|f| f.ends_with("_pipe") || f == "gif");
    let mut from = json!({
        "content_type": content_type,
        "size": bytes.len(),
        "sha256": sha256(bytes),
        "container": format["format_name"],
    });
    if !still && let Some(d) = format["duration"].as_str() {
        from["duration_ms"] = json!((d.parse::<f64>().unwrap() * 1000.0).round() as u64);
    }
    let streams: Vec<Value> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == "video" || s["codec_type"] == "audio")
        .map(|s| {
            let mut out = json!({"kind": s["codec_type"], "codec": s["codec_name"]});
            for key in ["profile", "pix_fmt"] {
                if let Some(v) = s[key].as_str() {
                    out[key] = json!(v);
                }
            }
            for key in ["width", "height", "channels"] {
                if let Some(v) = s[key].as_u64().filter(|v| *v > 0) {
                    out[key] = json!(v);
                }
            }
            if let Some(r) = s["sample_rate"].as_str() {
                out["sample_rate"] = json!(r.parse::<u64>().unwrap());
            }
            out
        })
        .collect();
    from["streams"] = json!(streams);
    if let Some(refused) = refused.as_str() {
        from["refused"] = json!(refused);
    }
    from
}

/// One conversion to check.
struct Case {
    /// Where it is uploaded, and as what.
    path: &'static str,
    declared: &'static str,
    bytes: &'static [u8],
    mode: &'static str,
    /// The original's type as `converted_from` names it.
    from_type: &'static str,
    /// Where it must be stored, and as what.
    stored_at: &'static str,
    content_type: &'static str,
    /// What ffprobe must see in the result.
    check: fn(&Value, &[u8]),
}

fn stream<'a>(probe: &'a Value, kind: &str) -> Vec<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == kind)
        .collect()
}

/// H.264 (yuv420p, High or Main) and at most one AAC-LC track, MP4 with `moov` before `mdat`.
fn whatsapp_mp4(probe: &Value, bytes: &[u8], audio_tracks: usize) {
    assert!(
        probe["format"]["format_name"]
            .as_str()
            .unwrap()
            .contains("mp4")
    );
    assert_eq!(media::major_brand(bytes).map(|b| b != *b"qt  "), Some(true));
    let video = stream(probe, "video");
    assert_eq!(video.len(), 1, "{probe:#}");
    assert_eq!(video[0]["codec_name"], "h264");
    assert_eq!(video[0]["pix_fmt"], "yuv420p");
    assert!(
        matches!(video[0]["profile"].as_str(), Some("High" | "Main")),
        "{probe:#}"
    );
    let audio = stream(probe, "audio");
    assert_eq!(audio.len(), audio_tracks, "{probe:#}");
    for a in audio {
        assert_eq!(a["codec_name"], "aac");
        assert_eq!(a["profile"], "LC");
    }
    let (moov, mdat) = (
        media::box_offset(bytes, b"moov").unwrap(),
        media::box_offset(bytes, b"mdat").unwrap(),
    );
    assert!(moov < mdat, "faststart: moov at {moov}, mdat at {mdat}");
}

fn voice_note(probe: &Value, bytes: &[u8]) {
    assert!(bytes.starts_with(b"OggS"));
    assert_eq!(probe["format"]["format_name"], "ogg");
    let audio = stream(probe, "audio");
    assert_eq!(audio.len(), 1, "{probe:#}");
    assert_eq!(audio[0]["codec_name"], "opus");
    assert_eq!(audio[0]["channels"], 1);
    assert_eq!(audio[0]["sample_rate"], "48000");
    assert!(stream(probe, "video").is_empty());
}

fn still(probe: &Value, codec: &str, pix_fmt: &str, w: u64, h: u64) {
    let video = stream(probe, "video");
    assert_eq!(video.len(), 1, "{probe:#}");
    assert_eq!(video[0]["codec_name"], codec, "{probe:#}");
    assert_eq!(video[0]["pix_fmt"], pix_fmt, "{probe:#}");
    assert_eq!(
        (&video[0]["width"], &video[0]["height"]),
        (&json!(w), &json!(h))
    );
}

fn corpus_case(c: Corpus) -> (&'static [u8], &'static Value) {
    (media::file(c), media::verify(c))
}

fn input_case(i: Input) -> (&'static [u8], &'static Value) {
    let f = media::input(i);
    (&f.bytes, &f.probe)
}

fn cases() -> Vec<Case> {
    // The corpus's own ffprobe check runs on each file as it is fetched.
    let case = |(bytes, _): (&'static [u8], &'static Value),
                path,
                declared,
                from_type,
                stored_at,
                content_type,
                check| Case {
        path,
        declared,
        bytes,
        mode: "true",
        from_type,
        stored_at,
        content_type,
        check,
    };
    vec![
        case(
            corpus_case(Corpus::HevcMp4),
            "clips/hevc.mp4",
            "video/mp4",
            "video/mp4",
            "clips/hevc.mp4",
            "video/mp4",
            |p, b| {
                whatsapp_mp4(p, b, 0);
                still_size(p, 128, 128);
            },
        ),
        case(
            input_case(Input::Vp9Webm),
            "clips/screen.webm",
            "video/webm",
            "video/webm",
            "clips/screen.mp4",
            "video/mp4",
            |p, b| {
                whatsapp_mp4(p, b, 1);
                assert_eq!(stream(p, "audio")[0]["channels"], 1);
            },
        ),
        case(
            corpus_case(Corpus::H264AacMov),
            "clips/phone.mov",
            "video/quicktime",
            "video/quicktime",
            "clips/phone.mp4",
            "video/mp4",
            |p, b| whatsapp_mp4(p, b, 1),
        ),
        case(
            corpus_case(Corpus::TwoAacTracksMp4),
            "clips/two.mp4",
            "video/mp4",
            "video/mp4",
            "clips/two.mp4",
            "video/mp4",
            |p, b| whatsapp_mp4(p, b, 1),
        ),
        case(
            corpus_case(Corpus::ToneWav),
            "voice/tone.wav",
            "audio/wav",
            "audio/wav",
            "voice/tone.ogg",
            "audio/ogg; codecs=opus",
            voice_note,
        ),
        case(
            corpus_case(Corpus::StereoOpusOgg),
            "voice/stereo.ogg",
            "audio/ogg",
            "audio/ogg",
            "voice/stereo.ogg",
            "audio/ogg; codecs=opus",
            voice_note,
        ),
        case(
            corpus_case(Corpus::ToneFlac),
            "voice/lossless.flac",
            "audio/flac",
            "audio/flac",
            "voice/lossless.ogg",
            "audio/ogg; codecs=opus",
            voice_note,
        ),
        case(
            corpus_case(Corpus::BannerGif),
            "img/banner.gif",
            "image/gif",
            "image/gif",
            "img/banner.jpg",
            "image/jpeg",
            |p, _| still(p, "mjpeg", "yuvj420p", 160, 90),
        ),
        case(
            input_case(Input::Banner800Webp),
            "img/wide.webp",
            "image/webp",
            "image/webp",
            "img/wide.jpg",
            "image/jpeg",
            |p, _| still(p, "mjpeg", "yuvj420p", 800, 600),
        ),
        case(
            input_case(Input::AlphaWebp),
            "img/alpha.webp",
            "image/webp",
            "image/webp",
            "img/alpha.png",
            "image/png",
            |p, _| still(p, "png", "rgba", 200, 100),
        ),
        case(
            corpus_case(Corpus::PalettePng),
            "img/palette.png",
            "image/png",
            "image/png",
            "img/palette.jpg",
            "image/jpeg",
            |p, _| still(p, "mjpeg", "yuvj420p", 128, 128),
        ),
        case(
            corpus_case(Corpus::CmykJpg),
            "img/cmyk.jpg",
            "image/jpeg",
            "image/jpeg",
            "img/cmyk.jpg",
            "image/jpeg",
            |p, b| {
                still(p, "mjpeg", "yuvj420p", 128, 128);
                let frame = media::jpeg_frame(b).unwrap();
                assert_eq!((frame.precision, frame.components), (8, 3));
            },
        ),
        Case {
            mode: "sticker",
            ..case(
                input_case(Input::Square300Png),
                "stickers/square.png",
                "image/png",
                "image/png",
                "stickers/square.webp",
                "image/webp",
                |p, b| {
                    assert!(b.len() <= 100_000, "{} bytes", b.len());
                    still(p, "webp", "yuv420p", 512, 512);
                },
            )
        },
    ]
}

fn still_size(probe: &Value, w: u64, h: u64) {
    let v = stream(probe, "video");
    assert_eq!((&v[0]["width"], &v[0]["height"]), (&json!(w), &json!(h)));
}

/// Fetch `path` from `/media`, ffprobe it, and upload it again without conversion: the gate
/// must take it as `content_type`.
async fn fetch_and_probe(s: &TestServer, path: &str, content_type: &str) -> (Vec<u8>, Value) {
    let r = s.get(&s.media(path)).await;
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(r.headers()["content-type"], content_type, "{path}");
    let bytes = r.bytes().await.unwrap().to_vec();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result");
    std::fs::write(&file, &bytes).unwrap();
    let probe = media::probe(&file);
    let (status, _, body) = put(s, &format!("gate/{path}"), "", content_type, bytes.clone()).await;
    assert_eq!(status, 201, "the gate refuses the converted {path}: {body}");
    assert_eq!(body["content_type"], content_type);
    (bytes, probe)
}

async fn check_case(s: &TestServer, c: &Case) {
    // Without conversion: refused as before, with the fix, and nothing stored.
    let before = s.files();
    let (status, _, refusal) = put(s, c.path, "", c.declared, c.bytes.to_vec()).await;
    let refused = if c.mode == "sticker" {
        assert_eq!(status, 201, "{}: {refusal}", c.path);
        s.admin(Method::DELETE, &format!("/assets/{}", c.path))
            .send()
            .await
            .unwrap();
        Value::Null
    } else {
        assert!((413..=422).contains(&status), "{}: {refusal}", c.path);
        assert!(refusal["error"]["fix"].is_string(), "{refusal}");
        assert_eq!(s.files(), before);
        refusal["error"]["message"].clone()
    };
    let query = format!("convert={}", c.mode);
    let (status, location, body) = put(s, c.path, &query, c.declared, c.bytes.to_vec()).await;
    assert_eq!(status, 201, "{}: {body}", c.path);
    assert_eq!(body["path"], c.stored_at, "{body}");
    assert_eq!(body["content_type"], c.content_type, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/assets/{}", c.stored_at).as_str())
    );
    assert!(body["url"].as_str().unwrap().ends_with(c.stored_at));
    assert!(body["link"].as_str().unwrap().contains(c.stored_at));
    assert_eq!(
        body["converted_from"],
        expected_from(c.bytes, c.from_type, &refused),
        "{}",
        c.path
    );
    let (bytes, probe) = fetch_and_probe(s, c.stored_at, c.content_type).await;
    assert_eq!(body["sha256"], sha256(&bytes));
    let limit = match c.content_type {
        "image/jpeg" | "image/png" => 5_000_000,
        "image/webp" => 100_000,
        _ => 16_000_000,
    };
    assert!(bytes.len() <= limit, "{}: {} bytes", c.path, bytes.len());
    (c.check)(&probe, &bytes);
    // The record keeps it, as `GET` shows.
    let got = s
        .admin_json(Method::GET, &format!("/assets/{}", c.stored_at))
        .await;
    assert_eq!(got["converted_from"], body["converted_from"]);
}

async fn each_refused_kind_is_converted(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for c in cases() {
        check_case(&s, &c).await;
    }
    // The QuickTime clip was remuxed, not re-encoded: the same H.264 and AAC packets.
    let packets = |bytes: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in");
        std::fs::write(&file, bytes).unwrap();
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(&file)
            .args(["-map", "0", "-c", "copy", "-f", "streamhash", "-"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let stored = s
        .get(&s.media("clips/phone.mp4"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(packets(&stored), packets(media::file(Corpus::H264AacMov)));
    s.stop().await;
}

async fn acceptable_files_are_stored_untouched(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for (c, path) in [
        (Corpus::H264AacMp4, "ok/clip.mp4"),
        (Corpus::PhotoJpg, "ok/photo.jpg"),
        (Corpus::MonoOpusOgg, "ok/voice.ogg"),
        (Corpus::RgbPng, "ok/logo.png"),
        (Corpus::StickerWebp, "ok/sticker.webp"),
    ] {
        let bytes = media::file(c);
        let (status, location, body) =
            put(&s, path, "convert=true", c.declared_type(), bytes.to_vec()).await;
        assert_eq!(status, 201, "{path}: {body}");
        assert_eq!(body["path"], path);
        assert_eq!(body["sha256"], sha256(bytes), "{path}");
        assert!(body.get("converted_from").is_none(), "{body}");
        assert_eq!(
            location.as_deref(),
            Some(format!("/api/assets/{path}").as_str())
        );
        let served = s.get(&s.media(path)).await.bytes().await.unwrap();
        assert_eq!(served, bytes, "{path} was changed");
    }
    // A document is never converted: stored as it is, and refused types stay refused.
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec();
    let (status, _, body) = put(
        &s,
        "ok/doc.pdf",
        "convert=true",
        "application/pdf",
        pdf.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], sha256(&pdf));
    let before = s.files();
    let zip = b"PK\x03\x04\x14\0\0\0\0\0rest of an archive".to_vec();
    let (status, _, body) = put(&s, "ok/a.zip", "convert=true", "application/zip", zip).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(s.files(), before);
    s.stop().await;
}

/// The Media API gets the converted bytes, as stored.
async fn the_media_api_gets_the_converted_bytes(backend: Backend) {
    use common::graph::GraphServer;
    let graph = GraphServer::start_default().await;
    let storage = Storage::new(backend).await;
    let s = TestServer::start_with(storage, |c| graph.configure(c)).await;
    let wav = media::file(Corpus::ToneWav);
    let (status, _, body) = put(
        &s,
        "voice/hello.wav",
        "convert=true&whatsapp=true",
        "audio/wav",
        wav.to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["whatsapp_upload"].is_object(), "{body}");
    let stored = s
        .get(&s.media("voice/hello.ogg"))
        .await
        .bytes()
        .await
        .unwrap();
    let uploads = graph.uploads();
    assert_eq!(uploads.len(), 1);
    let sent = &uploads[0];
    assert_eq!(sent.sha256, sha256(&stored));
    assert_eq!(sent.size, stored.len() as u64);
    assert_ne!(sent.sha256, sha256(wav));
    assert_eq!(sent.type_field, "audio/ogg; codecs=opus");
    assert_eq!(body["sha256"], sent.sha256);
    s.stop().await;
    graph.stop().await;
}

on_both_backends!(
    each_refused_kind_is_converted,
    acceptable_files_are_stored_untouched,
    the_media_api_gets_the_converted_bytes,
);

/// The 40 s 1080p clip (25 MB) fits 16 MB once its bitrate is chosen from its duration; on S3,
/// where the converted file goes up in parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_clip_is_fitted_into_16_mb() {
    let input = media::input(Input::Long1080pMp4);
    assert!(
        input.bytes.len() > 16_000_000,
        "{} bytes",
        input.bytes.len()
    );
    let s = TestServer::start_on(Backend::S3).await;
    let (status, _, body) = put(&s, "clips/long.mp4", "", "video/mp4", input.bytes.clone()).await;
    assert_eq!(status, 413, "{body}");
    let (status, _, body) = put(
        &s,
        "clips/long.mp4",
        "convert=true",
        "video/mp4",
        input.bytes.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["path"], "clips/long.mp4");
    let (bytes, probe) = fetch_and_probe(&s, "clips/long.mp4", "video/mp4").await;
    assert!(bytes.len() <= 16_000_000, "{} bytes", bytes.len());
    assert!(
        bytes.len() > 8_000_000,
        "the bitrate was not used: {} bytes",
        bytes.len()
    );
    whatsapp_mp4(&probe, &bytes, 1);
    still_size(&probe, 1920, 1080);
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 40.0).abs() < 0.5, "{duration}");
    assert_eq!(
        body["converted_from"],
        expected_from(
            &input.bytes,
            "video/mp4",
            &body["converted_from"]["refused"]
        )
    );
    assert!(
        body["converted_from"]["refused"]
            .as_str()
            .unwrap()
            .contains("too large")
    );
    s.stop().await;
}

/// Every file below `dir`: what a conversion must leave behind (nothing).
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    common::files_under(dir)
}

/// Wait, at most `secs`, until nothing is left below `dir`.
async fn until_empty(dir: &std::path::Path, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !temp_files(dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "still there after {secs} s: {:?}",
            temp_files(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Without ffmpeg in `PATH`, the server starts (and is ready) and `convert=true` answers 501
/// naming the package; uploads without it work as before.
#[test]
fn without_ffmpeg_conversion_answers_501() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (child, addr, logs) = common::spawn_binary_logged(
        std::process::Command::new(env!("CARGO_BIN_EXE_media-origin"))
            .current_dir(dir.path())
            .args(["serve", "--storage", "data"])
            .env("PATH", empty.path())
            .env("MEDIA_ORIGIN__SERVER__BIND", "127.0.0.1:0")
            .env("MEDIA_ORIGIN_ADMIN_TOKEN", common::TOKEN),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let ready = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let caps: Value = client
            .get(format!("http://{addr}/api/capabilities"))
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(caps["convert"]["available"], false, "{caps}");
        assert!(
            caps["convert"]["reason"]
                .as_str()
                .unwrap()
                .contains("`ffmpeg` package")
        );
        let r = client
            .put(format!(
                "http://{addr}/api/assets/clips/phone.mov?convert=true"
            ))
            .bearer_auth(common::TOKEN)
            .header("content-type", "video/quicktime")
            .body(media::file(Corpus::H264AacMov).to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 501);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "conversion_unavailable", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ffmpeg")
        );
        assert!(
            body["error"]["fix"]
                .as_str()
                .unwrap()
                .contains("apt-get install ffmpeg")
        );
        let r = client
            .put(format!("http://{addr}/api/assets/a.jpg"))
            .bearer_auth(common::TOKEN)
            .header("content-type", "image/jpeg")
            .body(media::file(Corpus::PhotoJpg).to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("conversion on upload is not available")),
        "the start-up log says so"
    );
    assert!(!dir.path().join("data/assets/clips").exists());
    drop(child);
}

/// A server with conversion bounds of `customize`, its temporary files under `temp`.
async fn server_with(
    backend: Backend,
    temp: &std::path::Path,
    customize: impl FnOnce(&mut media_origin::config::Settings),
) -> TestServer {
    let temp = temp.to_owned();
    TestServer::start_with(Storage::new(backend).await, move |c| {
        c.convert.temp_dir = Some(temp);
        customize(c);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capabilities_say_conversion_is_available() {
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |c| {
        c.convert.max_concurrent = Some(3);
        c.convert.max_input_mb = 1;
    })
    .await;
    let caps = s.admin_json(Method::GET, "/capabilities").await;
    let convert = &caps["convert"];
    assert_eq!(convert["available"], true, "{caps}");
    assert!(
        convert["ffmpeg"]
            .as_str()
            .unwrap()
            .starts_with("ffmpeg version")
    );
    assert_eq!(convert["reason"], Value::Null);
    assert_eq!(convert["max_concurrent"], 3);
    assert_eq!(convert["max_input_bytes"], 1_000_000);
    // Over it: refused from its Content-Length, and (without one) as it streams in.
    let before = s.files();
    let big = common::fixtures::noise(1_500_000, 9);
    let (status, _, body) = put(&s, "big.wav", "convert=true", "audio/wav", big.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_input_mb")
    );
    let r = s
        .admin(Method::PUT, "/assets/big.wav?convert=true")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(
            big.chunks(100_000)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(s.files(), before);
    assert_eq!(temp_files(temp.path()), Vec::<String>::new());
    s.stop().await;
}

/// A conversion over `timeout_secs` is stopped: 422 with the reason, nothing stored, nothing
/// left in the temporary directory, and no ffmpeg left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conversion_past_its_timeout_is_stopped_and_leaves_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |c| c.convert.timeout_secs = 1).await;
    let before = s.files();
    let input = media::input(Input::Long1080pMp4);
    let started = std::time::Instant::now();
    let (status, _, body) = put(
        &s,
        "clips/long.mp4",
        "convert=true",
        "video/mp4",
        input.bytes.clone(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "conversion_timed_out", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 s ([convert] timeout_secs)")
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.files(), before, "a stopped conversion stored something");
    assert_eq!(temp_files(temp.path()), Vec::<String>::new());
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"media_origin_conversions_total{kind="unknown",outcome="timeout"} 1"#),
        "{metrics}"
    );
    s.stop().await;
}

/// Damaged and lying files are refused cleanly: a 4xx with a reason, nothing stored, nothing
/// left in the temporary directory; the server converts the next upload as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_files_are_refused_cleanly() {
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |_| {}).await;
    let before = s.files();
    let hevc = media::file(Corpus::HevcMp4);
    // A PNG whose header claims 60000×60000 pixels, then garbage.
    let mut huge_png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    huge_png.extend_from_slice(&60000u32.to_be_bytes());
    huge_png.extend_from_slice(&60000u32.to_be_bytes());
    huge_png.extend_from_slice(&[8, 3, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
    huge_png.extend_from_slice(&common::fixtures::noise(4096, 7));
    // A WAV whose header promises an hour at 384 kHz but holds a few bytes.
    let mut lying_wav = b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\0\0\0\x01\0\x08\0".to_vec();
    lying_wav.extend_from_slice(&384_000u32.to_le_bytes());
    lying_wav.extend_from_slice(&[0, 0, 0, 0, 16, 0, 16, 0]);
    lying_wav.extend_from_slice(b"data\xff\xff\xff\x7f\x01\x02\x03");
    for (path, declared, bytes) in [
        (
            "bad/truncated.mp4",
            "video/mp4",
            hevc[..hevc.len() / 3].to_vec(),
        ),
        ("bad/huge.png", "image/png", huge_png),
        ("bad/lying.wav", "audio/wav", lying_wav),
        (
            "bad/noise.mp4",
            "video/mp4",
            common::fixtures::noise(50_000, 3),
        ),
        ("bad/empty.mov", "video/quicktime", Vec::new()),
    ] {
        let (status, _, body) = put(&s, path, "convert=true", declared, bytes).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(s.files(), before, "{path} stored something");
        assert_eq!(temp_files(temp.path()), Vec::<String>::new(), "{path}");
    }
    let (status, _, body) = put(
        &s,
        "ok/voice.wav",
        "convert=true",
        "audio/wav",
        media::file(Corpus::ToneWav).to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    s.stop().await;
}

/// At most `max_concurrent` run and `max_queued` wait; the next is refused at once with 503
/// and `Retry-After`, and a sticker is made of images only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_503_and_stickers_need_an_image() {
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |c| {
        c.convert.max_concurrent = Some(1);
        c.convert.max_queued = 0;
    })
    .await;
    let long = media::input(Input::Long1080pMp4).bytes.clone();
    let busy = s
        .admin(Method::PUT, "/assets/clips/long.mp4?convert=true")
        .header("content-type", "video/mp4")
        .body(long)
        .send();
    let first = tokio::spawn(busy);
    // Wait until the first is being converted (its input is in the temporary directory).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !temp_files(temp.path()).iter().any(|f| f.ends_with("input")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first conversion never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s
        .admin(Method::PUT, "/assets/voice/tone.wav?convert=true")
        .header("content-type", "audio/wav")
        .body(media::file(Corpus::ToneWav).to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conversion_busy");
    // The first is not needed further (its hang-up is tested elsewhere): stop it, to spare the
    // suite a 1080p encode, and wait for its files to go.
    first.abort();
    until_empty(temp.path(), 30).await;
    let (status, _, body) = put(
        &s,
        "stickers/clip.mp4",
        "convert=sticker",
        "video/mp4",
        media::file(Corpus::H264AacMp4).to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "not_convertible");
    assert_eq!(temp_files(temp.path()), Vec::<String>::new());
    s.stop().await;
}

/// `[convert] folders` makes conversion the default of a folder; `convert=false` still
/// refuses; the form takes `convert` before its file; a client that hangs up mid-upload leaves
/// nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_defaults_forms_and_hang_ups() {
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |c| {
        c.convert.folders.insert("inbox".into(), "true".into());
    })
    .await;
    let mov = media::file(Corpus::H264AacMov).to_vec();
    let (status, location, body) =
        put(&s, "inbox/phone.mov", "", "video/quicktime", mov.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(location.as_deref(), Some("/api/assets/inbox/phone.mp4"));
    let (status, _, body) = put(
        &s,
        "inbox/b.mov",
        "convert=false",
        "video/quicktime",
        mov.clone(),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = put(&s, "other/c.mov", "", "video/quicktime", mov.clone()).await;
    assert_eq!(status, 415, "{body}");

    let wav = media::file(Corpus::ToneWav).to_vec();
    let form = reqwest::multipart::Form::new()
        .text("folder", "forms")
        .text("convert", "true")
        .part(
            "file",
            reqwest::multipart::Part::bytes(wav.clone())
                .file_name("Memo.wav")
                .mime_str("audio/wav")
                .unwrap(),
        );
    let r = s
        .admin(Method::POST, "/assets")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/api/assets/forms/Memo.ogg");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["path"], "forms/Memo.ogg");
    assert_eq!(body["filename"], "Memo.ogg");
    assert_eq!(body["content_type"], "audio/ogg; codecs=opus");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(wav.clone()).file_name("late.wav"),
        )
        .text("folder", "forms")
        .text("convert", "true");
    let before = s.files();
    let r = s
        .admin(Method::POST, "/assets")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_form");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before the `file` part")
    );
    assert_eq!(s.files(), before);

    // Half a body, then the connection closes.
    let head = format!(
        "PUT /api/assets/inbox/cut.mov?convert=true HTTP/1.1\r\nhost: {}\r\n\
         authorization: Bearer {}\r\ncontent-type: video/quicktime\r\ncontent-length: {}\r\n\r\n",
        s.admin_addr,
        common::TOKEN,
        mov.len()
    );
    {
        use tokio::io::AsyncWriteExt;
        let mut conn = tokio::net::TcpStream::connect(s.admin_addr).await.unwrap();
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&mov[..mov.len() / 2]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    until_empty(temp.path(), 10).await;
    assert_eq!(s.files(), before);
    s.stop().await;
}

/// `media-origin upload --convert` sends what the gate refuses for conversion (without it, the
/// CLI refuses before sending), and `--whatsapp` follows the asset to its new path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_uploads_with_convert() {
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |_| {}).await;
    let cli = |extra: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_media-origin"));
        cmd.args([
            "upload",
            "--to",
            "cli",
            "--server",
            &s.base,
            "--token",
            common::TOKEN,
        ])
        .args(extra)
        .arg(media::path(Corpus::H264AacMov))
        .arg(media::path(Corpus::ToneWav))
        .env("RUST_LOG", "warn");
        cmd.output()
    };
    let out = cli(&[]).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["--convert"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = |c| {
        media::path(c)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let mov = name(Corpus::H264AacMov).replace(".mov", ".mp4");
    assert!(
        stdout.contains(&format!("cli/{mov}  (video/mp4,")),
        "{stdout}"
    );
    assert!(
        stdout.contains("converted:  from video/quicktime"),
        "{stdout}"
    );
    let wav = name(Corpus::ToneWav).replace(".wav", ".ogg");
    assert!(
        stdout.contains(&format!("cli/{wav}  (audio/ogg; codecs=opus,")),
        "{stdout}"
    );
    let got = s
        .admin_json(Method::GET, &format!("/assets/cli/{wav}"))
        .await;
    assert_eq!(got["converted_from"]["content_type"], "audio/wav");
    s.stop().await;
}

/// A client that hangs up while its upload is being converted: ffmpeg is killed, the temporary
/// files go at once, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hang_up_mid_conversion_stops_it_and_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |_| {}).await;
    let before = s.files();
    let clip = &media::input(Input::Long1080pMp4).bytes;
    let head = format!(
        "PUT /api/assets/clips/long.mp4?convert=true HTTP/1.1\r\nhost: {}\r\n\
         authorization: Bearer {}\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\n\r\n",
        s.admin_addr,
        common::TOKEN,
        clip.len()
    );
    let mut conn = tokio::net::TcpStream::connect(s.admin_addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(clip).await.unwrap();
    // Wait until ffmpeg writes its output, then hang up.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !temp_files(temp.path())
        .iter()
        .any(|f| f.ends_with("output"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the conversion never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(conn);
    until_empty(temp.path(), 10).await;
    // Had the conversion gone on, it would be stored by now or soon: give it the time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.files(), before);
    s.stop().await;
}

/// An image over 5 MB is re-encoded at a lower quality and, when that is not enough, scaled
/// down until it fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_picture_is_made_to_fit_5_mb() {
    let input = media::input(Input::NoisyPng);
    assert!(input.bytes.len() > 5_000_000, "{} bytes", input.bytes.len());
    let temp = tempfile::tempdir().unwrap();
    let s = server_with(Backend::Local, temp.path(), |_| {}).await;
    let (status, _, body) = put(
        &s,
        "img/noise.png",
        "convert=true",
        "image/png",
        input.bytes.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["path"], "img/noise.jpg");
    let (bytes, probe) = fetch_and_probe(&s, "img/noise.jpg", "image/jpeg").await;
    assert!(bytes.len() <= 5_000_000, "{} bytes", bytes.len());
    let v = &stream(&probe, "video")[0];
    assert_eq!(v["codec_name"], "mjpeg");
    let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
    assert!(w <= 4000 && h <= 3000 && w * 3 / 4 == h, "{w}×{h}");
    assert!(
        body["converted_from"]["refused"]
            .as_str()
            .unwrap()
            .contains("too large")
    );
    s.stop().await;
}
