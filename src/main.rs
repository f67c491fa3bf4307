//! The `media-origin` binary: everything lives in the library; see `cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    media_origin::cli::main().await
}
