//! Temporary files of conversions: one private directory per server (`<pid>-<uuid>` under
//! `media-origin-convert/` in `[convert] temp_dir`), one directory per conversion inside it.
//!
//! A conversion's directory goes when its [`Job`] is dropped, whatever way the conversion ended
//! (success, refusal, timeout, or the request dropped because the client hung up); the
//! server's goes when its [`Root`] is dropped. What a crashed server left is swept at the next
//! start: a directory whose process is gone is removed (so servers sharing the directory, or
//! test servers in one process, never remove each other's files).

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A server's temporary directory.
#[derive(Debug)]
pub struct Root {
    dir: PathBuf,
}

/// One conversion's directory.
#[derive(Debug)]
pub struct Job {
    dir: PathBuf,
}

fn private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

impl Root {
    /// Make this server's directory under `base`, after removing what dead servers left.
    /// Returns it and how many leftovers were removed.
    pub fn create(base: &Path) -> io::Result<(Self, usize)> {
        let parent = base.join("media-origin-convert");
        private_dir(&parent)?;
        let swept = sweep(&parent);
        let dir = parent.join(format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()));
        private_dir(&dir)?;
        Ok((Self { dir }, swept))
    }

    /// A fresh directory for one conversion.
    pub fn job(&self) -> io::Result<Job> {
        let dir = self.dir.join(uuid::Uuid::new_v4().to_string());
        private_dir(&dir)?;
        Ok(Job { dir })
    }

    /// Where this server's files are.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Job {
    /// A file in the conversion's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a conversion's temporary files");
        }
    }
}

/// Remove the directories of servers that are no longer running; how many.
fn sweep(parent: &Path) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok());
        let alive = pid
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| {
                !matches!(
                    rustix::process::test_kill_process(pid),
                    Err(rustix::io::Errno::SRCH)
                )
            });
        if !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_clean_up_and_dead_servers_are_swept() {
        let base = tempfile::tempdir().unwrap();
        let (root, _) = Root::create(base.path()).unwrap();
        let job = root.job().unwrap();
        std::fs::write(job.file("input"), b"x").unwrap();
        let dir = job.file("");
        drop(job);
        assert!(!dir.exists());
        // A crashed server's leftovers (a pid that cannot be running), and a live one's.
        let dead = base.path().join("media-origin-convert/999999999-x");
        std::fs::create_dir_all(dead.join("job")).unwrap();
        let (other, swept) = Root::create(base.path()).unwrap();
        assert_eq!(swept, 1);
        assert!(!dead.exists());
        assert!(root.path().exists(), "a running server's directory stays");
        let kept = other.path().to_owned();
        drop(other);
        assert!(!kept.exists());
    }
}
