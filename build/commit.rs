//! The commit a build comes from, for `media-origin --version`: shared by `build.rs` (which
//! runs it) and the library's unit tests (which run it on a directory without git).
//!
//! It asks `git` rather than reading `.git` by hand: a worktree's `.git` is a file pointing
//! elsewhere, refs may be packed, and git knows all of that. Without git, or outside a
//! repository (a source tarball, `cargo install` from a copy), there is no commit to name and
//! the build goes on with [`UNKNOWN`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `--version` says when the build had no git repository to ask.
pub const UNKNOWN: &str = "unknown (built outside a git checkout)";

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// The commit checked out in `dir` (12 hex digits), or `None` outside a repository.
pub fn commit(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "--short=12", "HEAD"])
        .filter(|c| c.len() >= 7 && c.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The files whose change means another commit: HEAD, the branch it names, packed refs.
pub fn watched(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(head) = git(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-path", "HEAD"],
    ) {
        out.push(PathBuf::from(head));
    }
    if let Some(common) = git(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    ) {
        let common = PathBuf::from(common);
        if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
            out.push(common.join(branch));
        }
        out.push(common.join("packed-refs"));
    }
    // A path that does not exist would make cargo rerun the build script on every build.
    out.retain(|p| p.exists());
    out
}
