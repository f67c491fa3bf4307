//! `[convert]`: converting uploads WhatsApp would refuse (see [`crate::convert`]): the bounds
//! put on every ffmpeg run, how many run at once, and the folders where conversion is the
//! default.
//!
//! Its own file because the bounds are checked here (a zero timeout or memory limit would make
//! every conversion fail in a way that looks like the input's fault) and folder names are
//! normalised with the asset path rules, as `[cache.folders]` are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::asset::path::parse_folder;

/// `[convert]`: bounds and defaults of conversion on upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvertSettings {
    /// The ffmpeg program: a name looked up in `PATH`, or a path. ffprobe is looked up beside
    /// it (same directory, or `PATH` for a bare name).
    pub ffmpeg: String,
    /// Wall-clock limit of one conversion (probe and every ffmpeg run), in seconds.
    pub timeout_secs: u64,
    /// CPU time limit of one ffmpeg run (all its threads together), in seconds
    /// (`RLIMIT_CPU`). Unset: `timeout_secs` times the number of cores.
    pub max_cpu_secs: Option<u64>,
    /// Address-space limit of one ffmpeg run, in MB (`RLIMIT_AS`).
    pub max_memory_mb: u64,
    /// The largest upload accepted for conversion, in MB (1,000,000 bytes).
    pub max_input_mb: u64,
    /// How many conversions run at once. Unset: the number of cores.
    pub max_concurrent: Option<usize>,
    /// How many more may wait for a turn; beyond that, 503 with `Retry-After`.
    pub max_queued: usize,
    /// Where conversions keep their temporary files (one directory per server, removed when
    /// it stops; leftovers of a crashed server are removed at start). Unset: the system's
    /// temporary directory.
    pub temp_dir: Option<PathBuf>,
    /// Folders where uploads are converted unless the request says `convert=false`:
    /// `"inbox" = "true"`, `"stickers" = "sticker"`.
    pub folders: BTreeMap<String, String>,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            timeout_secs: 300,
            max_cpu_secs: None,
            max_memory_mb: 2048,
            max_input_mb: 200,
            max_concurrent: None,
            max_queued: 8,
            temp_dir: None,
            folders: BTreeMap::new(),
        }
    }
}

impl ConvertSettings {
    /// Bounds that make sense, and folder names as asset paths have them.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("[convert] {m}")));
        if self.ffmpeg.trim().is_empty() {
            return bad("ffmpeg must name the ffmpeg program".into());
        }
        if self.timeout_secs == 0 {
            return bad("timeout_secs must be at least 1".into());
        }
        if self.max_cpu_secs == Some(0) {
            return bad("max_cpu_secs must be at least 1".into());
        }
        if self.max_memory_mb < 64 {
            return bad(format!(
                "max_memory_mb is {}; ffmpeg needs at least 64",
                self.max_memory_mb
            ));
        }
        if self.max_input_mb == 0 {
            return bad("max_input_mb must be at least 1".into());
        }
        if self.max_concurrent == Some(0) {
            return bad("max_concurrent must be at least 1".into());
        }
        let mut folders = BTreeMap::new();
        for (folder, mode) in &self.folders {
            if !matches!(mode.as_str(), "true" | "sticker" | "false") {
                return bad(format!(
                    "folders.{folder:?} is {mode:?}; expected \"true\", \"sticker\" or \"false\""
                ));
            }
            let clean = parse_folder(folder)
                .map_err(|e| ConfigError::Invalid(format!("[convert.folders] {folder:?}: {e}")))?;
            folders.insert(clean, mode.clone());
        }
        self.folders = folders;
        Ok(())
    }

    /// How many conversions run at once.
    pub fn concurrency(&self) -> usize {
        self.max_concurrent.unwrap_or_else(cores)
    }

    /// The CPU time limit of one ffmpeg run, in seconds.
    pub fn cpu_secs(&self) -> u64 {
        self.max_cpu_secs
            .unwrap_or(self.timeout_secs.saturating_mul(cores() as u64))
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_folder_modes_are_checked() {
        let valid = |f: fn(&mut ConvertSettings)| {
            let mut s = ConvertSettings::default();
            f(&mut s);
            s.validate().map(|()| s).map_err(|e| e.to_string())
        };
        assert!(valid(|_| {}).is_ok());
        assert!(
            valid(|s| s.timeout_secs = 0)
                .unwrap_err()
                .contains("timeout_secs")
        );
        assert!(
            valid(|s| s.max_memory_mb = 10)
                .unwrap_err()
                .contains("max_memory_mb")
        );
        assert!(valid(|s| s.max_concurrent = Some(0)).is_err());
        assert!(valid(|s| s.max_input_mb = 0).is_err());
        assert!(valid(|s| s.ffmpeg = " ".into()).is_err());
        let e = valid(|s| {
            s.folders.insert("inbox".into(), "yes".into());
        })
        .unwrap_err();
        assert!(e.contains("\"true\", \"sticker\" or \"false\""), "{e}");
        assert!(
            valid(|s| {
                s.folders.insert("../x".into(), "true".into());
            })
            .is_err()
        );
        let s = valid(|s| {
            s.folders.insert("/inbox/".into(), "sticker".into());
        })
        .unwrap();
        assert_eq!(s.folders["inbox"], "sticker");
        assert_eq!(
            valid(|s| {
                s.timeout_secs = 10;
                s.max_cpu_secs = None;
            })
            .unwrap()
            .cpu_secs(),
            10 * cores() as u64
        );
    }
}
