//! Conversion on upload (`convert=true`, `convert=sticker`): an upload WhatsApp would refuse is
//! turned into the nearest type of its kind that WhatsApp accepts; one it accepts is kept
//! untouched, byte for byte.
//!
//! # Why ffmpeg, as a child process
//!
//! The refusals users meet most are phone video (HEVC, `.mov`), browser and recorder audio
//! (WebM, WAV, stereo Opus) and stills from design tools (WebP, GIF, palette PNG, CMYK JPEG).
//! One program decodes all of them and has the encoders WhatsApp's types need (libx264, aac,
//! libopus, libwebp): Debian's `ffmpeg`. Linking it would put its decoders, which parse the
//! untrusted bytes, inside this process; as a child it is killed on a deadline and held by
//! rlimits ([`run`]), and a crash in a decoder is a failed conversion, not a dead server.
//!
//! # How
//!
//! [`Converter::convert`] receives the upload into a private temporary directory ([`temp`])
//! while the upload gate ([`crate::media_kind::Inspector`]) reads it. What the gate accepts is
//! handed back untouched. Otherwise ffprobe says what the file holds ([`probe`]), [`plan`]
//! chooses the target and ffmpeg's arguments (a bitrate from the duration for video and audio;
//! smaller attempts when a result exceeds its kind's limit), ffmpeg converts, and the result
//! goes through the same gate before it is handed back: a conversion that made something
//! WhatsApp refuses is an error, never an asset. At most `max_concurrent` conversions run;
//! `max_queued` more wait; the rest are refused at once (503).

mod cmyk;
mod error;
mod plan;
mod probe;
mod run;
mod temp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::asset::ConvertedFrom;
use crate::config::ConvertSettings;
use crate::media_kind::{Inspector, Kind, MediaError, MediaType};
use crate::metrics::Metrics;
pub use plan::{Plan, Still};
pub use probe::Probe;
use run::{Limits, RunError, Tools};

pub use error::ConvertError;
use error::spawn_error;

/// The largest picture decoded in this process (CMYK JPEGs), in pixels: 100 megapixels.
const MAX_PIXELS: u64 = 100_000_000;

/// What an upload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse what WhatsApp would refuse (the default).
    Off,
    /// `convert=true`: convert what WhatsApp would refuse.
    Auto,
    /// `convert=sticker`: make a static 512×512 WebP sticker of an image.
    Sticker,
}

impl Mode {
    /// `true`, `sticker` or `false`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "true" => Some(Self::Auto),
            "sticker" => Some(Self::Sticker),
            "false" => Some(Self::Off),
            _ => None,
        }
    }
}

/// What [`Converter::convert`] hands back: the file to store (in a temporary directory that
/// goes with this value), its type, and what it was before when it was converted.
#[derive(Debug)]
pub struct Outcome {
    _job: temp::Job,
    /// The bytes to store.
    pub file: PathBuf,
    /// Their type, as the gate decided it.
    pub media: MediaType,
    /// Their length.
    pub size: u64,
    /// `None`: stored untouched.
    pub converted_from: Option<ConvertedFrom>,
}

/// The capabilities answer's `convert` member.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    pub available: bool,
    /// ffmpeg's version line, when found.
    pub ffmpeg: Option<String>,
    /// Why not, when not available.
    pub reason: Option<String>,
    pub max_concurrent: usize,
    pub max_queued: usize,
    pub max_input_bytes: u64,
    pub timeout_secs: u64,
}

/// Converts uploads; one per server.
pub struct Converter {
    tools: Result<Tools, String>,
    settings: ConvertSettings,
    slots: Semaphore,
    /// Conversions running or waiting.
    admitted: AtomicUsize,
    temp: Result<temp::Root, String>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("tools", &self.tools)
            .finish()
    }
}

/// Holds a place among the conversions admitted; gives it back when dropped.
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Converter {
    /// Find ffmpeg (in the process's `PATH`), make the temporary directory (sweeping what a
    /// crashed server left) and log whether conversion is available.
    pub fn new(settings: &ConvertSettings, metrics: Arc<Metrics>) -> Self {
        let path = std::env::var_os("PATH");
        let tools = Tools::detect(&settings.ffmpeg, path.as_ref());
        let base = settings.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let temp = temp::Root::create(&base).map_err(|e| {
            format!(
                "the temporary directory {} could not be made: {e}",
                base.display()
            )
        });
        match (&tools, &temp) {
            (Ok(t), Ok((root, swept))) => tracing::info!(
                ffmpeg = %t.ffmpeg.display(),
                version = %t.version,
                temp_dir = %root.path().display(),
                swept,
                max_concurrent = settings.concurrency(),
                "conversion on upload is available"
            ),
            (Err(why), _) | (_, Err(why)) => {
                tracing::warn!(reason = %why, "conversion on upload is not available (convert=true answers 501)")
            }
        }
        Self {
            tools,
            slots: Semaphore::new(settings.concurrency()),
            admitted: AtomicUsize::new(0),
            temp: temp.map(|(root, _)| root),
            settings: settings.clone(),
            metrics,
        }
    }

    /// Whether conversion is available, and its bounds.
    pub fn capabilities(&self) -> Capabilities {
        let reason = match (&self.tools, &self.temp) {
            (Err(why), _) | (_, Err(why)) => Some(why.clone()),
            _ => None,
        };
        Capabilities {
            available: reason.is_none(),
            ffmpeg: self.tools.as_ref().ok().map(|t| t.version.clone()),
            reason,
            max_concurrent: self.settings.concurrency(),
            max_queued: self.settings.max_queued,
            max_input_bytes: self.max_input(),
            timeout_secs: self.settings.timeout_secs,
        }
    }

    /// The conversion mode of `folder` from `[convert] folders` (the nearest folder rule).
    pub fn folder_mode(&self, path: &str) -> Mode {
        let mut folder = path;
        while let Some((parent, _)) = folder.rsplit_once('/') {
            if let Some(mode) = self.settings.folders.get(parent) {
                return Mode::parse(mode).unwrap_or(Mode::Off);
            }
            folder = parent;
        }
        Mode::Off
    }

    /// The largest upload accepted for conversion, in bytes.
    pub fn max_input(&self) -> u64 {
        self.settings.max_input_mb.saturating_mul(1_000_000)
    }

    /// Refuse before reading the body: no ffmpeg (501), or no room (503).
    fn admit(&self) -> Result<(&Tools, &temp::Root, Admitted<'_>), ConvertError> {
        let tools = self
            .tools
            .as_ref()
            .map_err(|why| ConvertError::Unavailable(why.clone()))?;
        let temp = self
            .temp
            .as_ref()
            .map_err(|why| ConvertError::Unavailable(why.clone()))?;
        let room = self.settings.concurrency() + self.settings.max_queued;
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(&self.admitted);
        if before >= room {
            return Err(ConvertError::Busy);
        }
        Ok((tools, temp, admitted))
    }

    /// Convert `body` as `mode` asks (see the module's documentation). `declared` and
    /// `filename` are what the client said, as the gate takes them.
    pub async fn convert<S, E>(
        &self,
        body: S,
        declared: Option<&str>,
        filename: Option<&str>,
        mode: Mode,
    ) -> Result<Outcome, ConvertError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let started = std::time::Instant::now();
        // Boxed: the conversion's state is large, and a request's future is moved around whole.
        let result = Box::pin(self.convert_inner(body, declared, filename, mode)).await;
        let (kind, outcome) = match &result {
            Ok(o) if o.converted_from.is_none() => (o.media.kind.as_str(), "untouched"),
            Ok(o) => (o.media.kind.as_str(), "converted"),
            Err(e) => ("unknown", e.outcome()),
        };
        self.metrics
            .conversion(kind, outcome, started.elapsed().as_secs_f64());
        result
    }

    async fn convert_inner<S, E>(
        &self,
        body: S,
        declared: Option<&str>,
        filename: Option<&str>,
        mode: Mode,
    ) -> Result<Outcome, ConvertError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (tools, temp, _admitted) = self.admit()?;
        let job = temp.job()?;
        let input = job.file("input");
        let (inspector, sha256) = receive(body, &input, self.max_input()).await?;
        let size = inspector.size();
        // The declared type is only a hint here: the bytes are what gets converted.
        let gate = inspector
            .finish(declared, filename)
            .or_else(|e| inspector.finish(None, filename).map_err(|_| e));
        let refused = match gate {
            Ok(media) if mode == Mode::Auto || media.kind == Kind::Sticker => {
                return Ok(Outcome {
                    _job: job,
                    file: input,
                    media,
                    size,
                    converted_from: None,
                });
            }
            Ok(media) if media.kind == Kind::Document => {
                return Err(ConvertError::WrongKind(format!(
                    "convert=sticker makes stickers from images; this upload is {}",
                    media.content_type
                )));
            }
            Ok(_) => None,
            // Documents, archives and bytes the gate cannot name are not converted: only what
            // it recognised as a picture, video or audio goes to ffmpeg.
            Err(e) if !is_media(&e) => return Err(ConvertError::Refused(e)),
            Err(e) => Some(e),
        };
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        // Waiting for a slot is bounded too (503 past it), but does not count against the
        // conversion's own time: a queued upload gets all of `timeout_secs` once it runs.
        let _slot = tokio::time::timeout(timeout, self.slots.acquire())
            .await
            .map_err(|_| ConvertError::Busy)?
            .expect("the semaphore is never closed");
        let deadline = Instant::now() + timeout;
        let limits = Limits {
            cpu_secs: self.settings.cpu_secs(),
            memory_bytes: self.settings.max_memory_mb.saturating_mul(1 << 20),
            file_bytes: 1 << 20,
        };
        let probed = tools.probe(&input, limits, deadline).await;
        let probe = match probed.map(|json| Probe::parse(&json)) {
            Ok(Some(p)) => p,
            Err(RunError::TimedOut) => return Err(self.timed_out()),
            // Not media ffmpeg reads (a document, a damaged file): the gate's own refusal.
            Ok(None) | Err(RunError::Failed(_)) => {
                return Err(match refused {
                    Some(e) => ConvertError::Refused(e),
                    None => ConvertError::Failed {
                        reason: "ffprobe could not read it as an image".into(),
                        fix: None,
                    },
                });
            }
            Err(RunError::Spawn(e)) => return Err(spawn_error(e)),
        };
        // A picture or video whose size ffprobe could not read, or no stream at all: not media
        // ffmpeg can convert (a damaged file, or a header followed by anything).
        let unreadable = probe
            .videos()
            .any(|v| v.width.is_none() || v.height.is_none())
            || (probe.videos().next().is_none() && probe.audios().next().is_none());
        if unreadable && let Some(e) = refused {
            return Err(ConvertError::Refused(e));
        }
        let fix = refused.as_ref().and_then(MediaError::fix);
        let mut plan = plan::decide(&probe, mode, size)?;
        if let Plan::Image {
            stream,
            may_have_alpha: true,
            ..
        } = plan
        {
            let alpha = has_transparency(tools, &input, stream, &probe, limits, deadline).await;
            let still = if alpha.map_err(|e| self.run_error(e))? {
                Still::Png
            } else {
                Still::Jpeg
            };
            plan = Plan::Image {
                stream,
                still,
                may_have_alpha: true,
            };
        }
        // A 4-component JPEG is decoded here (see [`cmyk`]); ffmpeg encodes its RGB.
        let mut source = input.clone();
        if matches!(plan, Plan::Image { .. })
            && probe.videos().next().is_some_and(|v| v.codec == "mjpeg")
        {
            let (from, to) = (input.clone(), job.file("rgb.ppm"));
            let decoded = tokio::task::spawn_blocking(move || {
                cmyk::to_ppm(&from, &to, MAX_PIXELS).map(|d| (d, to))
            })
            .await
            .map_err(|e| ConvertError::Io(std::io::Error::other(e)))?;
            match decoded {
                Ok((true, ppm)) => source = ppm,
                Ok((false, _)) => {}
                Err(reason) => return Err(ConvertError::Failed { reason, fix }),
            }
        }
        let target = plan::target_type(&plan);
        let limit = plan::limit(&plan);
        let output = job.file("output");
        let out_limits = Limits {
            file_bytes: limit.max(1 << 20) * 2,
            ..limits
        };
        let mut attempt = 0;
        let mut previous: Option<Vec<String>> = None;
        let written = loop {
            // The same arguments again (a bitrate already at its floor) would only make the
            // same too-large file again.
            let Some(args) =
                plan::output_args(&plan, attempt).filter(|a| previous.as_ref() != Some(a))
            else {
                return Err(ConvertError::Failed {
                    reason: format!("no attempt made it fit into {limit} bytes"),
                    fix,
                });
            };
            tools
                .ffmpeg(&source, &args, &output, out_limits, deadline, 0)
                .await
                .map_err(|e| self.run_error(e).with_fix(fix.clone()))?;
            let written = tokio::fs::metadata(&output).await?.len();
            if written <= limit {
                break written;
            }
            tracing::debug!(
                written,
                limit,
                attempt,
                "a conversion came out too large; aiming smaller"
            );
            previous = Some(args);
            attempt += 1;
        };
        let media = gate_file(&output, target).await?;
        Ok(Outcome {
            _job: job,
            file: output,
            media,
            size: written,
            converted_from: Some(probe.converted_from(
                size,
                sha256,
                refused.map(|e| e.to_string()),
            )),
        })
    }

    fn timed_out(&self) -> ConvertError {
        ConvertError::TimedOut {
            secs: self.settings.timeout_secs,
        }
    }

    fn run_error(&self, e: RunError) -> ConvertError {
        match e {
            RunError::TimedOut => self.timed_out(),
            RunError::Spawn(e) => spawn_error(e),
            RunError::Failed(reason) => ConvertError::Failed { reason, fix: None },
        }
    }
}

/// Whether the gate's refusal is of an image, video or audio (something to convert).
fn is_media(e: &MediaError) -> bool {
    let media = |t: &str| {
        ["image/", "video/", "audio/"]
            .iter()
            .any(|p| t.starts_with(p))
    };
    match e {
        MediaError::Unsupported { content_type } | MediaError::Invalid { content_type, .. } => {
            media(content_type)
        }
        MediaError::Mismatch { detected, .. } => media(detected),
        MediaError::TooLarge { kind, .. } => kind != &Kind::Document,
        MediaError::Unrecognized => false,
    }
}

/// Write `body` to `path` (at most `max` bytes) while the gate reads it and it is hashed.
async fn receive<S, E>(
    mut body: S,
    path: &Path,
    max: u64,
) -> Result<(Inspector, String), ConvertError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(path).await?;
    let mut inspector = Inspector::new();
    let mut hash = Sha256::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ConvertError::Body(e.to_string()))?;
        if inspector.size() + chunk.len() as u64 > max {
            return Err(ConvertError::InputTooLarge { limit: max });
        }
        inspector.update(&chunk);
        hash.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok((inspector, hex::encode(hash.finalize())))
}

/// The gate's decision on a converted file, which must be `target`.
async fn gate_file(path: &Path, target: &str) -> Result<MediaType, ConvertError> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut inspector = Inspector::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        inspector.update(&buf[..n]);
    }
    let media = inspector
        .finish(Some(target), None)
        .map_err(|e| ConvertError::BadOutput(e.to_string()))?;
    if media.content_type != target {
        return Err(ConvertError::BadOutput(format!(
            "it is {} instead of {target}",
            media.content_type
        )));
    }
    Ok(media)
}

/// Whether the first frame of `stream` has a pixel that is not fully opaque: decoded to RGBA on
/// ffmpeg's standard output and read as it comes (at most one frame's bytes).
async fn has_transparency(
    tools: &Tools,
    input: &Path,
    stream: usize,
    probe: &Probe,
    limits: Limits,
    deadline: Instant,
) -> Result<bool, RunError> {
    let s = probe.streams.iter().find(|s| s.index == stream);
    let (w, h) = s
        .and_then(|s| Some((s.width?, s.height?)))
        .unwrap_or((0, 0));
    let frame = u64::from(w) * u64::from(h) * 4;
    // A picture too large to look at whole is taken to have transparency (PNG loses nothing).
    if frame == 0 || frame > 256 << 20 {
        return Ok(true);
    }
    let args: Vec<String> = format!("-map 0:{stream} -frames:v 1 -f rawvideo -pix_fmt rgba")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let raw = tools
        .ffmpeg(
            input,
            &args,
            Path::new("-"),
            limits,
            deadline,
            frame as usize,
        )
        .await?;
    Ok(raw.chunks_exact(4).any(|px| px[3] != 255))
}
