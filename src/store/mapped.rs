//! Local blobs served from memory maps: the socket write copies straight from the page cache,
//! where a `read` into a buffer first copied every byte once more (and took a blocking-pool round
//! trip per 256 KiB). Measured in bench/compare.sh; see README "Performance".
//!
//! Why mapping is sound here, when in general a file mapped while another process truncates it
//! makes reads fault (`SIGBUS`) and one rewritten in place changes bytes under a `&[u8]`: a blob
//! file is content-addressed and immutable. It is written whole to `tmp/`, renamed onto its key
//! (a new inode; a mapping of the old one keeps the old, identical bytes), never opened for
//! writing again, and only ever unlinked by garbage collection, which leaves a mapping (and the
//! inode under it) valid until it is unmapped. Only someone who writes into the storage
//! directory by hand, against README's warning, could break that.
//!
//! Two shapes, both with their pages populated (`MAP_POPULATE`) on the blocking pool, so that a
//! page fault on a cold disk never stalls a runtime thread while hyper writes:
//! - a blob of at most [`MAPPED_BLOB_MAX`] is mapped whole once and kept in a cache (by
//!   SHA-256, up to [`MAPPED_TOTAL`] bytes, dropped when idle for [`MAPPED_IDLE`] or when
//!   garbage collection deletes the blob): a hot asset costs no system call but the write, and
//!   a range is a slice of it;
//! - a larger one streams as [`WINDOW`]-sized maps of the open file, each unmapped once hyper has
//!   written it, so twenty concurrent 100 MB downloads hold a few MiB each, not the whole files
//!   (mapped pages count in the process's RSS while mapped).
//!
//! Every live mapping is also registered by address ([`file_behind`]), so the connection under
//! hyper can tell that the bytes it is asked to write are a blob file's, and hand them to the
//! kernel with `sendfile(2)` instead of copying them from the mapping into the socket (see
//! [`crate::serve::sendfile`]). A mapping is unregistered in its `Drop`, before it is unmapped,
//! so an address found in the registry is always the live mapping's: no other memory can sit at
//! an address a live mapping covers.
//!
//! `unsafe` appears in this one function of the crate ([`map_window`]); the rest of the code
//! sees `Bytes`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

/// The largest blob mapped whole and kept mapped (larger ones stream in windows).
pub(super) const MAPPED_BLOB_MAX: u64 = 32 * 1024 * 1024;
/// The most bytes of whole mapped blobs kept at once.
pub(super) const MAPPED_TOTAL: u64 = 256 * 1024 * 1024;
/// A whole mapped blob nobody served for this long is unmapped.
pub(super) const MAPPED_IDLE: Duration = Duration::from_secs(60);
/// How much of a large blob one map covers.
pub(super) const WINDOW: u64 = 1024 * 1024;

/// The cache of whole mapped blobs (see the module documentation).
pub(super) fn cache() -> super::BlobBytes {
    moka::sync::Cache::builder()
        .max_capacity(MAPPED_TOTAL)
        .weigher(|_, b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
        .time_to_idle(MAPPED_IDLE)
        .build_with_hasher(ahash::RandomState::new())
}

/// Where the bytes of a mapped slice are in their file, for `sendfile(2)`.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The blob file.
    pub path: Arc<Path>,
    /// The file, when the mapping keeps it open (a large blob's window, whose download holds
    /// the file open anyway). A whole mapped blob keeps no descriptor: the cache may hold
    /// thousands, and descriptors are budgeted per connection (see
    /// [`crate::serve::derived_max_connections`]).
    pub file: Option<Arc<File>>,
    /// The offset in the file of the slice's first byte.
    pub offset: u64,
}

/// One live mapping: where it ends and what it maps.
struct Region {
    end: usize,
    path: Arc<Path>,
    file: Option<Arc<File>>,
    offset: u64,
}

/// Every live mapping, by start address.
static REGIONS: LazyLock<RwLock<BTreeMap<usize, Region>>> = LazyLock::new(Default::default);

/// The blob file behind `bytes`, when they lie within one live mapping. Other memory (a
/// response's header, an S3 body, a buffer) gives `None`.
pub fn file_behind(bytes: &[u8]) -> Option<FileSlice> {
    if bytes.is_empty() {
        return None;
    }
    let start = bytes.as_ptr().addr();
    let end = start + bytes.len();
    let regions = REGIONS.read().unwrap_or_else(PoisonError::into_inner);
    let (&base, region) = regions.range(..=start).next_back()?;
    (end <= region.end).then(|| FileSlice {
        path: Arc::clone(&region.path),
        file: region.file.clone(),
        offset: region.offset + (start - base) as u64,
    })
}

/// A registered mapping, the owner of the `Bytes` that slice it.
struct Mapping(memmap2::Mmap);

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Runs before the field is dropped, which unmaps: never a registered hole.
        REGIONS
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0.as_ptr().addr());
    }
}

/// `len` bytes of `file` (at `path`) from `offset`, mapped read-only with their pages populated,
/// and registered (see [`file_behind`]); `keep_open` keeps `file` in the registry. Blocks (page
/// faults on a cold file): call on the blocking pool.
#[allow(unsafe_code)]
fn map_window(
    file: &Arc<File>,
    path: &Arc<Path>,
    offset: u64,
    len: u64,
    keep_open: bool,
) -> io::Result<Bytes> {
    if len == 0 {
        // mmap(2) refuses an empty mapping.
        return Ok(Bytes::new());
    }
    let len =
        usize::try_from(len).map_err(|_| io::Error::other("window over the address space"))?;
    // SAFETY: `file` is a blob: immutable and never truncated while it exists, only unlinked,
    // which leaves the mapping valid (see the module documentation). The bytes are only read.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(&**file)?
    };
    let start = map.as_ptr().addr();
    REGIONS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            start,
            Region {
                end: start + map.len(),
                path: Arc::clone(path),
                file: keep_open.then(|| Arc::clone(file)),
                offset,
            },
        );
    Ok(Bytes::from_owner(Mapping(map)))
}

/// The whole blob file at `path`, mapped; its length must be `size` (the record's).
pub(crate) async fn map_whole(path: PathBuf, size: u64) -> io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let file = Arc::new(File::open(&path)?);
        let len = file.metadata()?.len();
        if len != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{len} bytes where the record says {size}"),
            ));
        }
        map_window(&file, &Arc::from(path), 0, size, false)
    })
    .await
    .map_err(io::Error::other)?
}

/// `start..end` of the blob file at `path`, in [`WINDOW`]-sized maps, each made when hyper asks
/// for more. The file stays open until the stream ends, so a blob unlinked meanwhile still
/// streams to its end.
pub(super) async fn stream_windows(
    path: PathBuf,
    start: u64,
    end: u64,
) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
    let path: Arc<Path> = Arc::from(path);
    let opened = Arc::clone(&path);
    let file = tokio::task::spawn_blocking(move || {
        let file = File::open(&*opened)?;
        // A map reaching past the end of the file would fault when hyper reads it: a blob
        // shorter than its record fails here, before any byte is sent.
        let len = file.metadata()?.len();
        if len < end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the blob file has {len} bytes where the record says at least {end}"),
            ));
        }
        Ok(file)
    })
    .await
    .map_err(io::Error::other)??;
    let file = Arc::new(file);
    Ok(futures::stream::unfold(start, move |at| {
        let file = Arc::clone(&file);
        let path = Arc::clone(&path);
        async move {
            if at >= end {
                return None;
            }
            let len = WINDOW.min(end - at);
            let mapped =
                tokio::task::spawn_blocking(move || map_window(&file, &path, at, len, true))
                    .await
                    .map_err(io::Error::other)
                    .and_then(|r| r);
            match mapped {
                Ok(bytes) => Some((Ok(bytes), at + len)),
                // The download ends with an error rather than a short, silent body.
                Err(e) => Some((Err(e), end)),
            }
        }
    })
    .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn blob(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    #[tokio::test]
    async fn a_whole_map_is_the_file_and_checks_its_length() {
        let (_dir, path, bytes) = blob(100_000);
        let whole = map_whole(path.clone(), 100_000).await.unwrap();
        assert_eq!(&whole[..], &bytes[..]);
        assert_eq!(&whole.slice(4097..9000)[..], &bytes[4097..9000]);
        let e = map_whole(path.clone(), 100_001).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, b"").unwrap();
        assert!(map_whole(path, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn windows_cover_any_range_and_survive_the_unlink() {
        let len = 2 * WINDOW as usize + 12_345;
        let (_dir, path, bytes) = blob(len);
        for (start, end) in [
            (0, len),
            (1, 4097),
            (5000, WINDOW as usize + 3),
            (len - 1, len),
        ] {
            let got: Vec<Bytes> = stream_windows(path.clone(), start as u64, end as u64)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(got.concat(), &bytes[start..end], "{start}..{end}");
        }
        // Opened, then unlinked (garbage collection): the rest still streams.
        let mut stream = stream_windows(path.clone(), 0, len as u64).await.unwrap();
        let first = stream.try_next().await.unwrap().unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut got = first.to_vec();
        while let Some(chunk) = stream.try_next().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, bytes);
    }

    #[tokio::test]
    async fn mapped_bytes_name_their_file_and_offset_while_they_live() {
        let (_dir, path, bytes) = blob(3 * WINDOW as usize);
        let whole = map_whole(path.clone(), bytes.len() as u64).await.unwrap();
        let at = file_behind(&whole[5000..9000]).expect("a slice of a whole map");
        assert_eq!(
            (&*at.path, at.offset, at.file.is_none()),
            (&*path, 5000, true)
        );
        let windows: Vec<Bytes> = stream_windows(path.clone(), 10, 2 * WINDOW + 7)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let at = file_behind(&windows[1][3..]).expect("a slice of a window");
        assert_eq!((at.offset, at.file.is_some()), (WINDOW + 13, true));
        // Past a mapping's end, and memory that is not mapped, name no file.
        let copy = whole.to_vec();
        assert!(file_behind(&copy).is_none());
        assert!(file_behind(&windows[0][..0]).is_none());
        let tail = whole.slice(whole.len() - 10..);
        drop((whole, windows));
        assert!(file_behind(&tail).is_some(), "a slice keeps its map alive");
        // The last owner gone, the maps are unmapped and forgotten (other tests' maps of other
        // files may come and go meanwhile).
        drop(tail);
        let regions = REGIONS.read().unwrap();
        assert!(regions.values().all(|r| *r.path != *path));
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_record_fails_before_a_byte_is_sent() {
        let (_dir, path, _) = blob(1000);
        let Err(e) = stream_windows(path, 0, 5000).await else {
            panic!("a stream over a short file");
        };
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
