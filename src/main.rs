//! The `media-origin` binary: everything lives in the library; see `cli`.
//!
//! The system allocator stays: mimalloc was tried for the serving path and kept freed memory
//! from tokio's blocking threads, raising idle RSS from ~11 MB to ~53 MB after a few uploads,
//! for no gain measurable above this machine's noise.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let code = media_origin::cli::main().await;
    // The last lines are still on their way to stderr (see `logging`); a destination that
    // takes none gets a second, then the process exits anyway.
    media_origin::logging::flush(std::time::Duration::from_secs(1));
    code
}
