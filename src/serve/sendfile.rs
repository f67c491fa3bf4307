//! The connection under hyper: blob bytes go to the socket with `sendfile(2)`.
//!
//! hyper writes a response by handing its connection a list of buffers: the header it
//! formatted, then the body's `Bytes`. A local blob's body is a slice of a memory map (see
//! [`crate::store::file_behind`]), so writing it from the map costs the kernel a copy of every
//! byte into the socket's buffers; `sendfile` hands it the page-cache pages instead, which is
//! how nginx serves files and what separated the two on 1 MB ranges (issue 18: the copy was
//! the top entry of the profile).
//!
//! HTTP stays hyper's: it frames, encodes and sequences every response as before, and the
//! bytes on the wire are the same, since a mapped slice and its file range are the same bytes
//! (blobs are immutable). This layer only changes how a buffer it is given reaches the kernel:
//! - a buffer inside a live blob mapping goes with `sendfile` from the blob file at the
//!   matching offset;
//! - the buffers before one (the response header) go with `sendmsg(MSG_MORE)`, so the kernel
//!   sends the header and the start of the body in one segment rather than a small packet of
//!   its own;
//! - anything else (S3 bodies, JSON, the admin API) is written as before.
//!
//! A whole mapped blob keeps no file open, so the file is opened here by path when its bytes
//! are first sent, and kept for the connection's next response (a fetcher asks one connection
//! for the same few assets). That `open` runs on the runtime thread, like nginx's: the blob was
//! mapped with its pages populated just before, so its inode is in memory. If the file is gone
//! (garbage collection unlinked it while its mapping was still cached) or shorter than the
//! mapping, the bytes are written from the mapping instead: still correct, one copy more.
//!
//! No crate does this (tokio and hyper have no sendfile), and it needs only two system calls,
//! which rustix wraps without `unsafe`.

use std::fs::File;
use std::io::{self, IoSlice};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustix::net::{SendAncillaryBuffer, SendFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::store::{FileSlice, file_behind};

/// A TCP connection whose writes of mapped blob bytes use `sendfile(2)`.
pub struct SendfileIo {
    tcp: TcpStream,
    /// The blob file last opened for this connection.
    open: Option<(Arc<Path>, Arc<File>)>,
}

impl SendfileIo {
    /// Serve `tcp`.
    pub fn new(tcp: TcpStream) -> Self {
        Self { tcp, open: None }
    }

    /// The open file behind `at`: its own, this connection's last one, or newly opened.
    fn file_for(&mut self, at: FileSlice) -> Option<Arc<File>> {
        if let Some(file) = at.file {
            return Some(file);
        }
        if let Some((path, file)) = &self.open
            && (Arc::ptr_eq(path, &at.path) || *path == at.path)
        {
            return Some(Arc::clone(file));
        }
        let file = Arc::new(File::open(&*at.path).ok()?);
        self.open = Some((at.path, Arc::clone(&file)));
        Some(file)
    }

    /// Send `buf`, a slice of a mapping of `at`, from its file.
    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        at: FileSlice,
    ) -> Poll<io::Result<usize>> {
        let mut offset = at.offset;
        let Some(file) = self.file_for(at) else {
            return Pin::new(&mut self.tcp).poll_write(cx, buf);
        };
        let tcp = &self.tcp;
        let sent = ready!(poll_io(tcp, cx, || {
            Ok(rustix::fs::sendfile(
                tcp,
                &*file,
                Some(&mut offset),
                buf.len(),
            )?)
        }))?;
        if sent == 0 {
            // The file ends before the mapping's bytes do: send them from the mapping.
            return Pin::new(&mut self.tcp).poll_write(cx, buf);
        }
        Poll::Ready(Ok(sent))
    }
}

/// Run the non-blocking socket call `op` once the socket is writable, waiting again whenever
/// it would block.
fn poll_io<R>(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<R>,
) -> Poll<io::Result<R>> {
    loop {
        ready!(tcp.poll_write_ready(cx))?;
        match tcp.try_io(Interest::WRITABLE, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
    }
}

impl AsyncRead for SendfileIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        let bufs = &bufs[first..];
        if let Some(at) = file_behind(&bufs[0]) {
            return this.poll_sendfile(cx, &bufs[0], at);
        }
        // The first buffer is not mapped (just looked up): where does the first mapped one start?
        let Some(mapped) = bufs[1..]
            .iter()
            .position(|b| file_behind(b).is_some())
            .map(|i| i + 1)
        else {
            return Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        };
        // The header before a blob's bytes: held back (MSG_MORE) for the sendfile that follows.
        let tcp = &this.tcp;
        let head = &bufs[..mapped];
        poll_io(tcp, cx, || {
            Ok(rustix::net::sendmsg(
                tcp,
                head,
                &mut SendAncillaryBuffer::default(),
                SendFlags::MORE | SendFlags::NOSIGNAL,
            )?)
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use tokio::io::AsyncWriteExt;

    /// What this thread has read through system calls (`/proc/thread-self/io`): `sendfile`
    /// counts the file it reads, `write` reads nothing.
    fn read_by_this_thread() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn mapped_bytes_go_out_with_sendfile_and_other_bytes_with_write() {
        const LEN: usize = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let bytes: Vec<u8> = (0..LEN).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The reader is another thread, so its reads are not counted here.
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::net::TcpStream::connect(addr)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mapped = crate::store::map_whole(path, LEN as u64).await.unwrap();
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_nonblocking(true).unwrap();
            let mut io = SendfileIo::new(TcpStream::from_std(tcp).unwrap());

            let before = read_by_this_thread();
            io.write_all(&mapped[10..]).await.unwrap();
            let sent_from_file = read_by_this_thread() - before;
            assert!(
                sent_from_file >= (LEN - 10) as u64,
                "a mapped slice is read from its file by sendfile: {sent_from_file} bytes read"
            );

            let copy = mapped[..10].to_vec();
            let before = read_by_this_thread();
            io.write_all(&copy).await.unwrap();
            assert!(
                read_by_this_thread() - before < 1024,
                "heap bytes are written, not read from a file"
            );
            io.shutdown().await.unwrap();
        });
        let got = reader.join().unwrap();
        assert_eq!(got.len(), LEN);
        assert!(got[..LEN - 10] == bytes[10..], "the mapped bytes, in order");
        assert!(got[LEN - 10..] == bytes[..10], "then the heap bytes");
    }
}
