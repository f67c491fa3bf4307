//! The `media-origin` binary: everything lives in the library; see `cli`.

/// mimalloc: the serving path allocates a few small buffers per request, and under load the
/// system allocator's bookkeeping showed up in profiles at several percent of a core.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    media_origin::cli::main().await
}
