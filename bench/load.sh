#!/usr/bin/env bash
# Load test: 1,000 keep-alive connections fetch assets for a fixed time while uploads go on; every
# response is checked (status, Content-Length, SHA-256 of the body, ETag, Content-Type). Passes
# only with zero errors, zero corrupted bodies and every connection held for the whole run.
#
#   bash bench/load.sh                          # from anywhere; CONNS=1000 DURATION=30 UPLOADERS=2
#   CONNS=2000 DURATION=60 bash bench/load.sh   # heavier
#   CHURN=0 bash bench/load.sh                  # without the path replaced during the run
#   KEEP=1 bash bench/load.sh                   # keep the temp dir (server log, storage, JSON)
#   OUT=/tmp/load.txt bash bench/load.sh        # also write the report there
#
# Builds the release binary and the load generator (examples/load.rs), generates a corpus
# (bench/load.py: the benchmark's 48 KB JPEG and 1 MB PNG, and 2.5 KB to 3 MB images), starts
# media-origin on a free loopback port (admin API on the same port), uploads the corpus, raises
# the open files limit, and runs the generator for DURATION seconds: CONNS readers, UPLOADERS
# tasks uploading new assets (load/up-N.jpg, each read back once) and, with CHURN=1, one task
# replacing load/churn.jpg with two alternating versions that the readers also fetch. It reports
# the generator's figures and the server's CPU time, peak RSS, open descriptors and established
# connections (from /proc), then checks the server log (no panic, no error or warning, no
# connection that ended with an error), that the server still answers and that it stops
# cleanly on SIGTERM. Exit status 0 only when all of that holds.
#
# Needs curl and python3 (installed from Debian packages when missing and root) and the Rust
# toolchain. Everything runs on loopback; everything started here is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONNS=${CONNS:-1000}
DURATION=${DURATION:-30}
UPLOADERS=${UPLOADERS:-2}
CHURN=${CHURN:-1}
TIMEOUT=${TIMEOUT:-30}
READY_TIMEOUT=${READY_TIMEOUT:-30}
TOKEN="load-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

BENCH_NAME=load.sh
DIE_STATUS=2
# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- tools -------------------------------------------------------------------------------------

pkgs=()
command -v curl >/dev/null || pkgs+=(curl)
command -v python3 >/dev/null || pkgs+=(python3)
if ((${#pkgs[@]})); then
    [[ $(id -u) == 0 ]] || die "missing ${pkgs[*]} and not root: install them (apt-get install -y ${pkgs[*]})"
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${pkgs[@]}" || { apt-get update && apt-get install -y "${pkgs[@]}"; } ||
        die "apt-get install ${pkgs[*]} failed"
fi

# One descriptor per connection on each side, plus files: raise the limit for both processes.
want_fds=65536
if (($(ulimit -n) < want_fds)); then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
(($(ulimit -n) >= CONNS + 256)) ||
    die "the open files limit is $(ulimit -n) (hard $(ulimit -Hn)); $((CONNS + 256)) needed for $CONNS connections"

# --- build -------------------------------------------------------------------------------------

build_release load
LOAD_BIN=$EXAMPLE_BIN

# --- temp dir, clean-up ------------------------------------------------------------------------

make_work mo-load

# --- corpus ------------------------------------------------------------------------------------

log "generating the corpus in $WORK/corpus"
python3 bench/load.py "$WORK/corpus" >"$WORK/corpus.tsv" || die "corpus generation failed"

# --- the server --------------------------------------------------------------------------------

cat >"$WORK/mo.toml" <<'EOF'
# media-origin settings for bench/load.sh: defaults, storage given by --storage, the admin API on
# the public listener so one port serves both.
[server]
admin_bind = "public"
[cache]
default = "max-age=86400"
EOF
LOGF="$WORK/server.log"
: >"$LOGF"
# Debug for the accept loop only: it logs every connection that ends with an error.
MEDIA_ORIGIN_ADMIN_TOKEN="$TOKEN" RUST_LOG="info,media_origin::serve=debug" NO_COLOR=1 \
    "$MO_BIN" serve --config "$WORK/mo.toml" --bind 127.0.0.1:0 --storage "$WORK/storage" \
    >"$WORK/server.out" 2>"$LOGF" &
MO_PID=$!
PIDS+=("$MO_PID")
ADDR=""
deadline=$((SECONDS + READY_TIMEOUT))
while ((SECONDS < deadline)); do
    ADDR=$(sed -n 's/.*serving.*addr=\([^ ]*\).*/\1/p' "$LOGF" | head -1) || ADDR=""
    [[ -n $ADDR ]] && break
    kill -0 "$MO_PID" 2>/dev/null || break
    sleep 0.1
done
[[ -n $ADDR ]] || { tail -20 "$LOGF" >&2; die "media-origin did not log 'serving addr=' within ${READY_TIMEOUT}s"; }
PORT=${ADDR##*:}
BASE="http://$ADDR"
until [[ $(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$BASE/healthz") == 200 ]]; do
    if ! kill -0 "$MO_PID" 2>/dev/null || ((SECONDS >= deadline)); then
        tail -20 "$LOGF" >&2
        die "/healthz did not answer 200 within ${READY_TIMEOUT}s"
    fi
    sleep 0.1
done
log "media-origin serving at $BASE, pid $MO_PID, open files limit $(ulimit -n)"

# --- upload the corpus -------------------------------------------------------------------------

ASSET_ARGS=()
while IFS=$'\t' read -r name size ctype sha; do
    code=$(curl -sS --noproxy '*' -o "$WORK/api.out" -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $TOKEN" -H 'Expect:' -H "Content-Type: $ctype" \
        --data-binary "@$WORK/corpus/$name" "$BASE/api/assets/load/assets/$name") || code=000
    [[ $code == 201 || $code == 200 ]] || die "upload of $name answered $code: $(head -c 500 "$WORK/api.out")"
    got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$WORK/api.out")
    [[ $got == "$sha" ]] || die "upload of $name: the record says sha256 $got, the file is $sha"
    ASSET_ARGS+=(--asset "load/assets/$name=$sha:$size")
done <"$WORK/corpus.tsv"
log "uploaded $((${#ASSET_ARGS[@]} / 2)) assets: $(cut -f1,2 "$WORK/corpus.tsv" | tr '\t\n' '= ' )"

# --- /proc figures of the server ---------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$MO_PID/stat"; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$MO_PID/status"; }
# Established TCP connections whose local port is the server's (IPv4 and IPv6 tables).
established() {
    local hex
    hex=$(printf '%04X' "$PORT")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v p=":$hex" '$4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }'
}

# Peak of VmRSS, threads, open descriptors and established connections, every 0.25 s.
sampler() {
    local rss=0 thr=0 fds=0 est=0 v
    while [[ ! -e $WORK/sampler.stop ]] && kill -0 "$MO_PID" 2>/dev/null; do
        v=$(status_kb VmRSS) && ((v > rss)) && rss=$v
        v=$(status_kb Threads) && ((v > thr)) && thr=$v
        v=$(find "/proc/$MO_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) && ((v > fds)) && fds=$v
        v=$(established) && ((v > est)) && est=$v
        printf '%s %s %s %s\n' "$rss" "$thr" "$fds" "$est" >"$WORK/sampler.max"
        sleep 0.25
    done
}

echo 5 >"/proc/$MO_PID/clear_refs" 2>/dev/null && HWM_RESET=1 || HWM_RESET=0
RSS_IDLE=$(status_kb VmRSS)
TICKS0=$(cpu_ticks)
sampler &
SAMPLER_PID=$!
PIDS+=("$SAMPLER_PID")

# --- the load ----------------------------------------------------------------------------------

GEN_ARGS=(--url "$BASE" --token "$TOKEN" "${ASSET_ARGS[@]}" --conns "$CONNS" --duration "$DURATION"
    --uploaders "$UPLOADERS" --upload-prefix load/up- --timeout "$TIMEOUT" --json "$WORK/load.json")
[[ $CHURN == 1 ]] && GEN_ARGS+=(--churn load/churn.jpg)
log "running: load --conns $CONNS --duration $DURATION --uploaders $UPLOADERS$([[ $CHURN == 1 ]] && echo ' --churn load/churn.jpg')"
T0=$(date +%s%N)
GEN_RC=0
"$LOAD_BIN" "${GEN_ARGS[@]}" >"$WORK/load.out" || GEN_RC=$?
T1=$(date +%s%N)
touch "$WORK/sampler.stop"
wait "$SAMPLER_PID" 2>/dev/null || true
TICKS1=$(cpu_ticks)
HWM=$(status_kb VmHWM)
RSS_AFTER=$(status_kb VmRSS)
read -r RSS_PEAK THREADS_PEAK FDS_PEAK EST_PEAK <"$WORK/sampler.max" 2>/dev/null || true

# --- checks after the run ----------------------------------------------------------------------

PROBLEMS=()
((GEN_RC == 0)) || PROBLEMS+=("the load generator exited with $GEN_RC")
kill -0 "$MO_PID" 2>/dev/null || PROBLEMS+=("the server died during the run")
code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$BASE/readyz" || true)
[[ $code == 200 ]] || PROBLEMS+=("/readyz answered $code after the run")
# Every asset still intact after the run.
while IFS=$'\t' read -r name size ctype sha; do
    got=$(curl -s --noproxy '*' "$BASE/media/load/assets/$name" | sha256sum | cut -d' ' -f1)
    [[ $got == "$sha" ]] || PROBLEMS+=("load/assets/$name has sha256 $got after the run, expected $sha")
done <"$WORK/corpus.tsv"
STORAGE_MB=$(du -sm "$WORK/storage" | cut -f1)

# A clean stop: SIGTERM, then exit status 0 within the grace period (30 s by default).
kill -TERM "$MO_PID"
STOP_RC=0
for _ in $(seq 400); do
    kill -0 "$MO_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$MO_PID" 2>/dev/null; then
    PROBLEMS+=("the server did not stop within 40 s of SIGTERM")
else
    wait "$MO_PID" || STOP_RC=$?
    ((STOP_RC == 0)) || PROBLEMS+=("the server exited with $STOP_RC on SIGTERM")
fi

CONN_ERRORS=$(grep -c 'connection ended with an error' "$LOGF" || true)
BAD_LOG=$(grep -E 'panick|ERROR| WARN ' "$LOGF" || true)
((CONN_ERRORS == 0)) || PROBLEMS+=("$CONN_ERRORS connections ended with an error in the server log")
[[ -z $BAD_LOG ]] || PROBLEMS+=("$(printf '%s\n' "$BAD_LOG" | wc -l) panic/error/warning lines in the server log")

# --- report ------------------------------------------------------------------------------------

secs=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
cpu_s=$(awk -v a="$TICKS0" -v b="$TICKS1" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / hz }')
git_desc=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    git_desc+=" + uncommitted changes"
fi
{
    echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
    echo "media-origin: $git_desc, local storage; generator and server share the machine (no pinning)"
    echo
    cat "$WORK/load.out"
    echo "server (pid $MO_PID, /proc):"
    echo "  CPU:          ${cpu_s} s over the ${secs} s of the generator's process ($(awk -v c="$cpu_s" -v s="$secs" 'BEGIN { printf "%.0f", 100 * c / s }')% of one core)"
    if ((HWM_RESET)); then
        echo "  memory:       RSS ${RSS_IDLE} kB idle before, peak ${HWM} kB (VmHWM), ${RSS_AFTER} kB after; sampled peak ${RSS_PEAK:-?} kB"
    else
        echo "  memory:       RSS ${RSS_IDLE} kB idle before, sampled peak ${RSS_PEAK:-?} kB, ${RSS_AFTER} kB after (VmHWM not resettable: $HWM kB since start)"
    fi
    echo "  peaks:        ${EST_PEAK:-?} established connections on port $PORT, ${FDS_PEAK:-?} open descriptors, ${THREADS_PEAK:-?} threads"
    echo "  storage:      ${STORAGE_MB} MB after the run"
    echo "  log:          $CONN_ERRORS connections ended with an error; $(printf '%s' "$BAD_LOG" | grep -c . || true) panic/error/warning lines; stop on SIGTERM: exit ${STOP_RC}"
    if ((${#PROBLEMS[@]})); then
        echo "result: FAIL"
        printf '  - %s\n' "${PROBLEMS[@]}"
    else
        echo "result: PASS"
    fi
} >"$WORK/report.txt"
if [[ -n $BAD_LOG ]]; then
    printf '%s\n' "$BAD_LOG" | head -20 >&2
fi
if ((CONN_ERRORS)); then
    grep 'connection ended with an error' "$LOGF" | head -10 >&2
fi
echo
cat "$WORK/report.txt"
[[ -n ${OUT:-} ]] && cp "$WORK/report.txt" "$OUT"
((${#PROBLEMS[@]} == 0)) || exit 1
