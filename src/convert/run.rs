//! Running ffmpeg and ffprobe on untrusted input, bounded.
//!
//! Every run goes through util-linux's `prlimit`, which sets the limits on itself and then
//! executes the program: CPU time (`RLIMIT_CPU`), address space (`RLIMIT_AS`), the largest file
//! it may write (`RLIMIT_FSIZE`, so a crafted input cannot fill the disk) and no core dumps,
//! all in place before ffmpeg reads a byte. (Setting them from Rust between fork and exec
//! needs `pre_exec`, which is `unsafe`, and this crate forbids unsafe code.) On top of that:
//! `-nostdin`, `-protocol_whitelist file,pipe` (no network), a demuxer allow-list
//! ([`super::probe::FORMATS`]), a wall-clock deadline after which the child is killed, and
//! `kill_on_drop`, so a request dropped (a client that hung up) kills its ffmpeg too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::time::Instant;

/// The encoders conversion needs (Debian's ffmpeg has them all).
pub const ENCODERS: [&str; 6] = ["libx264", "aac", "libopus", "libwebp", "mjpeg", "png"];

/// The programs conversion runs, found at start.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub prlimit: PathBuf,
    /// ffmpeg's first `-version` line.
    pub version: String,
}

/// The limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub cpu_secs: u64,
    pub memory_bytes: u64,
    /// The largest file the run may write.
    pub file_bytes: u64,
}

/// Why a run failed.
#[derive(Debug)]
pub enum RunError {
    /// It ran past its deadline and was killed.
    TimedOut,
    /// It could not be started.
    Spawn(std::io::Error),
    /// It ended unsuccessfully; the last lines of its standard error, or the signal.
    Failed(String),
}

/// Look `name` up: a path as given, a bare name in `path_var` (the `PATH` list).
pub fn find(name: &str, path_var: Option<&OsString>) -> Option<PathBuf> {
    let is_file = |p: &Path| p.is_file();
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_file(&p).then_some(p);
    }
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|p| is_file(p))
}

impl Tools {
    /// Find ffmpeg (`ffmpeg` from `[convert] ffmpeg`), ffprobe beside it and prlimit, and check
    /// ffmpeg has the encoders conversion needs. `Err` says what is missing, for the log and
    /// the capabilities answer.
    pub fn detect(ffmpeg: &str, path_var: Option<&OsString>) -> Result<Self, String> {
        let ffmpeg_path = find(ffmpeg, path_var).ok_or_else(|| {
            format!(
                "ffmpeg ({ffmpeg}) was not found{}; install Debian's `ffmpeg` package",
                if ffmpeg.contains('/') { "" } else { " in PATH" }
            )
        })?;
        let ffprobe = match ffmpeg_path.parent() {
            Some(dir) if ffmpeg.contains('/') => Some(dir.join("ffprobe")).filter(|p| p.is_file()),
            _ => find("ffprobe", path_var),
        }
        .ok_or("ffprobe was not found beside ffmpeg; install Debian's `ffmpeg` package")?;
        let prlimit = find("prlimit", path_var)
            .or_else(|| Some(PathBuf::from("/usr/bin/prlimit")).filter(|p| p.is_file()))
            .ok_or("prlimit was not found; install Debian's `util-linux` package")?;
        let run = |args: &[&str]| {
            std::process::Command::new(&ffmpeg_path)
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map_err(|e| format!("{} could not be run: {e}", ffmpeg_path.display()))
        };
        let version = run(&["-hide_banner", "-version"])?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let encoders = run(&["-hide_banner", "-encoders"])?;
        let encoders = String::from_utf8_lossy(&encoders.stdout).into_owned();
        let have: Vec<&str> = encoders
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        let missing: Vec<&str> = ENCODERS.into_iter().filter(|e| !have.contains(e)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} lacks the encoders {}; install Debian's `ffmpeg` package",
                ffmpeg_path.display(),
                missing.join(", ")
            ));
        }
        Ok(Self {
            ffmpeg: ffmpeg_path,
            ffprobe,
            prlimit,
            version,
        })
    }

    /// `program` (ffmpeg or ffprobe) with `args`, under `limits`.
    fn command(&self, program: &Path, limits: Limits, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.prlimit);
        cmd.arg(format!("--cpu={}", limits.cpu_secs))
            .arg(format!("--as={}", limits.memory_bytes))
            .arg(format!("--fsize={}", limits.file_bytes))
            .arg("--core=0")
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Run ffprobe on `input`: its JSON answer (at most 1 MB).
    pub async fn probe(
        &self,
        input: &Path,
        limits: Limits,
        deadline: Instant,
    ) -> Result<Vec<u8>, RunError> {
        let args: Vec<OsString> = [
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            super::probe::FORMATS,
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ]
        .iter()
        .map(OsString::from)
        .chain([input.as_os_str().to_owned()])
        .collect();
        run(
            self.command(&self.ffprobe, limits, &args),
            deadline,
            1 << 20,
        )
        .await
    }

    /// Run ffmpeg on `input` with `output_args`, writing `output`; standard output (raw frames,
    /// when `output` is `-`) is returned, at most `max_stdout` bytes.
    pub async fn ffmpeg(
        &self,
        input: &Path,
        output_args: &[String],
        output: &Path,
        limits: Limits,
        deadline: Instant,
        max_stdout: usize,
    ) -> Result<Vec<u8>, RunError> {
        let mut args: Vec<OsString> = [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-protocol_whitelist",
            "file,pipe",
            "-format_whitelist",
            super::probe::FORMATS,
            "-i",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.push(input.as_os_str().to_owned());
        args.extend(output_args.iter().map(OsString::from));
        args.push(output.as_os_str().to_owned());
        run(
            self.command(&self.ffmpeg, limits, &args),
            deadline,
            max_stdout,
        )
        .await
    }
}

/// Run `cmd` until `deadline`: its standard output (cut at `max_stdout`), or why it failed.
async fn run(mut cmd: Command, deadline: Instant, max_stdout: usize) -> Result<Vec<u8>, RunError> {
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                let room = max_stdout.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Ok::<_, std::io::Error>(())
        };
        // Only the end of standard error is kept: the reason is in the last lines.
        let read_err = async {
            let mut buf = vec![0u8; 8 * 1024];
            loop {
                let n = stderr.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                err.extend_from_slice(&buf[..n]);
                if err.len() > 16 * 1024 {
                    err.drain(..err.len() - 4 * 1024);
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let (a, b) = tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (a.and(b).and(status), out, err)
    };
    match tokio::time::timeout_at(deadline, work).await {
        // The child is killed when `work` (which owns it) is dropped: kill_on_drop.
        Err(_) => Err(RunError::TimedOut),
        Ok((Err(e), _, _)) => Err(RunError::Failed(format!("waiting for it failed: {e}"))),
        Ok((Ok(status), out, err)) => {
            if status.success() {
                return Ok(out);
            }
            let text = String::from_utf8_lossy(&err);
            let last: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let last = last[last.len().saturating_sub(3)..].join("; ");
            Err(RunError::Failed(match (last.is_empty(), signal(&status)) {
                (_, Some(sig)) => format!("{last} (ended by signal {sig}: {})", signal_hint(sig))
                    .trim_start()
                    .to_owned(),
                (true, None) => format!("it ended with {status}"),
                (false, None) => last,
            }))
        }
    }
}

fn signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

/// What a signal means for a run under `prlimit`.
fn signal_hint(sig: i32) -> &'static str {
    match sig {
        24 => "its CPU time limit, [convert] max_cpu_secs",
        25 => "its output size limit",
        9 => "killed",
        11 | 6 => "it crashed, most likely on its memory limit, [convert] max_memory_mb",
        _ => "stopped",
    }
}
