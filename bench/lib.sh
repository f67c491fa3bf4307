# Shared by bench/compare.sh and bench/load.sh (sourced, not run): logging, a clean
# environment, the release build, and a work directory whose processes are stopped on exit.
# The sourcing script sets BENCH_NAME (the log prefix) and may set DIE_STATUS (default 1).

log() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$BENCH_NAME" "$*" >&2
    exit "${DIE_STATUS:-1}"
}

# A clean environment for the servers: no inherited media-origin settings, no proxy between
# curl (or an S3 client) and loopback.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(MEDIA_ORIGIN|AWS_)' || true)
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

# build_release EXAMPLE: builds the release binary and examples/EXAMPLE.rs; sets MO_BIN and
# EXAMPLE_BIN.
build_release() {
    local example=$1 target_dir
    command -v cargo >/dev/null || die "needs the Rust toolchain (cargo) on PATH; see README.md"
    log "building (cargo build --release --locked, and the $example example)"
    cargo build --release --locked || die "cargo build --release failed"
    cargo build --release --locked --example "$example" || die "building the $example example failed"
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    MO_BIN="$target_dir/release/media-origin"
    EXAMPLE_BIN="$target_dir/release/examples/$example"
    [[ -x $MO_BIN ]] || die "no binary at $MO_BIN"
    [[ -x $EXAMPLE_BIN ]] || die "no example binary at $EXAMPLE_BIN"
}

# make_work NAME: a fresh temp dir in WORK, removed on exit (kept with KEEP=1), and PIDS, the
# processes stopped on exit.
make_work() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ ${KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
