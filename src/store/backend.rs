//! What every room of the store shares about the backend: conditional writes (and retrying
//! them when another instance wins), reading a JSON object with its version, quiet deletes, and
//! the backend itself: local disk, S3 or memory, and opening the local directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutMode, PutOptions, UpdateVersion};

use super::upload::Multipart;
use super::{Store, StoreError};

/// How often a conditional write is tried before giving up to another instance's writes.
const MAX_CONFLICTS: usize = 16;

/// Run a read-modify-write until it lands over what it read: another instance may write
/// between the read and the write. Each call of `attempt` reads, modifies and writes once.
pub(super) async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(StoreError::Conflict) if tries < MAX_CONFLICTS => {
                // Back off a random few milliseconds, more after each loss, so writers
                // racing on one object spread out instead of colliding again.
                let jitter = rand::random_range(0..=10 * tries as u64);
                tracing::debug!(tries, jitter, "lost a write race; reading again");
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            result => return result,
        }
    }
}

/// What a conditional write expects to find.
#[derive(Debug, Clone)]
pub(super) enum Expect {
    /// Nothing at the key.
    Absent,
    /// The object as it was read.
    Version(UpdateVersion),
}

/// The options that make a write land only over what was read (S3 `If-None-Match: *` or
/// `If-Match: <etag>`), so two instances cannot both read the same state and write over each
/// other. The local backend is one process, serialised by its own locks.
pub(super) fn put_options(shared: bool, expect: &Expect) -> PutOptions {
    let mode = match (shared, expect) {
        (false, _) => PutMode::Overwrite,
        (true, Expect::Absent) => PutMode::Create,
        (true, Expect::Version(v)) => PutMode::Update(v.clone()),
    };
    PutOptions::from(mode)
}

pub(super) fn conflict_or(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
            StoreError::Conflict
        }
        e => StoreError::Backend(e),
    }
}

/// A stored object with the version it was read at.
pub(super) struct Versioned<T> {
    pub(super) value: T,
    pub(super) expect: Expect,
}

impl Store {
    /// Read a JSON object and the version it was read at; `None` when there is none.
    pub(super) async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &Key,
    ) -> Result<Versioned<Option<T>>, StoreError> {
        match self.inner.objects.get(key).await {
            Ok(got) => {
                let expect = Expect::Version(UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                });
                let bytes = got.bytes().await?;
                let value = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Versioned {
                    value: Some(value),
                    expect,
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Versioned {
                value: None,
                expect: Expect::Absent,
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn delete_quietly(&self, key: &Key) {
        match self.inner.objects.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(%key, error = %e, "could not delete a temporary object"),
        }
        if let Some(root) = self.inner.backend.local_root() {
            remove_empty_parents(root, key).await;
        }
    }
}

/// On local disk, the directories a deleted object leaves empty, from its own up to (not
/// including) the top-level one (`assets`, `blobs`, `tmp`): object_store deletes files only,
/// and an emptied folder would otherwise stay on disk for good. `remove_dir` removes only an
/// empty directory, so one that a concurrent write has just put a file in stays; a write that
/// finds its directory gone creates it again (object_store creates parents on write).
pub(super) async fn remove_empty_parents(root: &std::path::Path, key: &Key) {
    let parts: Vec<_> = key.parts().collect();
    // The object itself is the last part, the top-level directory the first.
    for depth in (2..parts.len()).rev() {
        let mut dir = root.to_path_buf();
        for part in &parts[..depth] {
            dir.push(part.as_ref());
        }
        match tokio::fs::remove_dir(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Not empty: nothing above it is empty either.
            Err(_) => break,
        }
    }
}

/// Where the store keeps its objects: the one fact the rooms of the store branch on, so that a
/// combination no backend has (a local root with multipart uploads, S3 timeouts without S3)
/// cannot be built.
pub(super) enum Backend {
    /// A directory on local disk. This process is its only writer: writes are not conditional
    /// (its own locks serialise them), and object_store's staging files are cleaned up by
    /// walking the directory.
    Local {
        /// The directory, canonicalised.
        root: PathBuf,
    },
    /// An S3 bucket, which other instances may share: record and policy writes are
    /// conditional, and only stale temporaries are cleaned up.
    S3 {
        /// Blob downloads and uploads: a client without a whole-request timeout.
        blobs: Arc<dyn ObjectStore>,
        /// S3's multipart API.
        multipart: Arc<Multipart>,
        /// Bound on a download's first byte and on each gap between chunks.
        blob_timeout: Duration,
        /// Bound on a server-side copy.
        transfer_timeout: Duration,
        /// Temporaries older than this belong to no live upload.
        stale_uploads: Duration,
    },
    /// object_store's `InMemory`, for unit tests: this instance's own (`shared: false`, writes
    /// as on local disk), or standing for a bucket other instances write to (`shared: true`,
    /// conditional writes and kept tombstones as on S3).
    #[cfg_attr(not(test), allow(dead_code))]
    Memory {
        /// Whether it stands for a shared bucket.
        shared: bool,
    },
}

impl Backend {
    /// True when other instances may write to the same objects.
    pub(super) fn is_shared(&self) -> bool {
        match self {
            Backend::Local { .. } => false,
            Backend::S3 { .. } => true,
            Backend::Memory { shared } => *shared,
        }
    }

    /// The local directory, on the local backend.
    pub(super) fn local_root(&self) -> Option<&std::path::Path> {
        match self {
            Backend::Local { root } => Some(root),
            _ => None,
        }
    }

    /// S3's multipart API, on S3.
    pub(super) fn multipart(&self) -> Option<&Arc<Multipart>> {
        match self {
            Backend::S3 { multipart, .. } => Some(multipart),
            _ => None,
        }
    }

    /// The client blobs are streamed through: on S3 one without a whole-request timeout,
    /// elsewhere `objects` itself.
    pub(super) fn blobs<'a>(
        &'a self,
        objects: &'a Arc<dyn ObjectStore>,
    ) -> &'a Arc<dyn ObjectStore> {
        match self {
            Backend::S3 { blobs, .. } => blobs,
            _ => objects,
        }
    }
}

/// The local directory `root` (created 0700 if missing) as a backend.
///
/// What it writes is its user's alone: folders 0700, files 0600. object_store's
/// `LocalFileSystem` creates them itself (files with `OpenOptions`' default 0o666, written
/// under a staging name and renamed or hard-linked into place; folders with
/// `create_dir_all`), and has no setting for their mode, so the process's umask is narrowed
/// to include 0o077 first: every file and folder is then born private, on every path
/// object_store writes by (staged `#n` files, multipart parts, parent folders). A chmod
/// after each write would leave a new file readable by others from its creation to the
/// chmod (for good, if the process died in between), and would have to find every folder
/// object_store made on the way. The umask is process-wide: nothing else the server writes
/// (the token file is 0600 anyway) needs more than its owner. An existing root keeps its
/// mode, with a warning when group or others may enter it.
pub(super) fn open_local(
    root: &std::path::Path,
) -> Result<(Arc<dyn ObjectStore>, Backend), StoreError> {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        let private = Mode::RWXG | Mode::RWXO;
        let old = rustix::process::umask(private);
        rustix::process::umask(old | private);
    }
    let existed = root.is_dir();
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(root).map_err(|e| {
        StoreError::Backend(object_store::Error::Generic {
            store: "LocalFileSystem",
            source: format!("cannot create storage directory {}: {e}", root.display()).into(),
        })
    })?;
    #[cfg(unix)]
    if existed
        && let Ok(meta) = std::fs::metadata(root)
        && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0
    {
        tracing::warn!(
            root = %root.display(),
            mode = %format!(
                "{:04o}",
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
            ),
            "the storage directory is open to group or others; new files in it are 0600, \
             but `chmod 700` it to keep the assets and the token file private"
        );
    }
    let objects: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(root)?);
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    Ok((objects, Backend::Local { root }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;

    #[tokio::test]
    async fn a_deletion_removes_the_directories_it_empties_and_no_others() {
        let root = tempfile::tempdir().unwrap();
        let (objects, _) = open_local(root.path()).unwrap();
        for key in ["assets/a/b/c/x.json", "assets/a/keep.json"] {
            objects
                .put(&Key::from(key), PutPayload::from_static(b"{}"))
                .await
                .unwrap();
        }
        let key = Key::from("assets/a/b/c/x.json");
        objects.delete(&key).await.unwrap();
        remove_empty_parents(root.path(), &key).await;
        assert!(!root.path().join("assets/a/b").exists(), "emptied: gone");
        assert!(root.path().join("assets/a/keep.json").is_file());
        // The last file of `a` goes: so does `a`, but never the top-level `assets`.
        let key = Key::from("assets/a/keep.json");
        objects.delete(&key).await.unwrap();
        remove_empty_parents(root.path(), &key).await;
        assert!(!root.path().join("assets/a").exists());
        assert!(root.path().join("assets").is_dir());
    }
}
