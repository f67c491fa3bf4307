//! Names the commit the binary is built from (`BUILT_FROM_COMMIT`, shown by `--version`);
//! see `build/commit.rs`. Not a `MEDIA_ORIGIN_` name: `cargo run` and `cargo test` also set it
//! in the environment of what they run, where the server would warn that it sets nothing.

#[path = "build/commit.rs"]
mod commit;

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/commit.rs");
    for path in commit::watched(&dir) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = commit::commit(&dir).unwrap_or_else(|| commit::UNKNOWN.to_owned());
    println!("cargo:rustc-env=BUILT_FROM_COMMIT={commit}");
}
