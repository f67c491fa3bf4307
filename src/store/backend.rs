//! What every room of the store shares about the backend: conditional writes (and retrying
//! them when another instance wins), reading a JSON object with its version, quiet deletes, and
//! opening the local directory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutMode, PutOptions, UpdateVersion};

use super::{Store, StoreError};
use crate::policy::CachePolicy;

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
    }

    /// A store over the local directory `root` (created 0700 if missing).
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
    pub(super) fn local(
        root: &std::path::Path,
        cache_ttl: Duration,
        default: CachePolicy,
        config_rules: BTreeMap<String, CachePolicy>,
    ) -> Result<Self, StoreError> {
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
                mode = format!(
                    "{:04o}",
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
                ),
                "the storage directory is open to group or others; new files in it are 0600, \
                 but `chmod 700` it to keep the assets and the token file private"
            );
        }
        let objects: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(root)?);
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        Ok(Self::build(
            Arc::clone(&objects),
            objects,
            Some(root),
            cache_ttl,
            default,
            config_rules,
        ))
    }
}
