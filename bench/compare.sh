#!/usr/bin/env bash
# Side-by-side benchmark: media-origin against nginx serving the same files with the same caching
# headers, on one CPU core each (core 0), the load generator on the other (core 1).
#
#   bash bench/compare.sh                  # from the repo root; DURATION=5 WARMUP=1 ROUNDS=5
#   ROUNDS=7 DURATION=10 bash bench/compare.sh   # more and longer measured runs
#   KEEP=1 bash bench/compare.sh           # keep the temp dir (raw wrk outputs, server logs)
#   ONLY=1,2,3 bash bench/compare.sh       # only those scenarios (exploring; the table then
#                                          # shows n/a for the others)
#   BIN=/path/media-origin S3_BIN=/path/s3_server bash bench/compare.sh
#                                          # those binaries, not a fresh build (A/B runs)
#
# Installs nginx, wrk (and curl, python3, taskset) from Debian packages when missing, builds the
# release binary and the loopback S3 server example, generates a corpus (48 KB JPEG, 1 MB PNG,
# 15.9 MB MP4, 99 MB PDF), loads it into both servers and runs:
#   1 GET of the small image (200)         2 conditional GET (304)
#   3 Range GET of 1 MB of the video (206)  4 GET of the 16 MB video
#   1b GET of the small image over 200 connections (Meta's fetcher opens many at once: p99)
#   5 upload ingest (PUT 16 MB and 100 MB) against sha256sum of the same file
#   6 peak RSS of media-origin: 20 concurrent 100 MB downloads, one 100 MB upload
#   7 small-image GET with the S3 backend (loopback s3s-fs server) against the local backend
# and prints one table (also written to bench/last-run.txt). Needs root (apt-get, clear_refs)
# and 2 cores. Everything runs on loopback; everything started here is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
# Each scenario runs ROUNDS times, alternating the servers; the table shows medians and the
# median of the per-round ratios (this machine's speed drifts by 2x within minutes).
ROUNDS=${ROUNDS:-5}
ROUND=1
CONNS=${CONNS:-32}
# Scenario 1b: the small GET over this many connections.
MANY_CONNS=${MANY_CONNS:-200}
ONLY=${ONLY:-1,2,3,4,5,6,7}
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }
# wrk's default 2 s timeout would count slow 16 MB responses as errors and leave them out of the
# latency figures; a generous one keeps every response measured.
WRK_TIMEOUT=${WRK_TIMEOUT:-30s}
READY_TIMEOUT=${READY_TIMEOUT:-30}
SERVER_CPU=0
CLIENT_CPU=1
TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

BENCH_NAME=compare
# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- tools -------------------------------------------------------------------------------------

install_missing() {
    local pkgs=()
    command -v nginx >/dev/null || pkgs+=(nginx)
    command -v wrk >/dev/null || pkgs+=(wrk)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v python3 >/dev/null || pkgs+=(python3)
    command -v taskset >/dev/null || pkgs+=(util-linux)
    command -v sha256sum >/dev/null || pkgs+=(coreutils)
    ((${#pkgs[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || die "missing ${pkgs[*]} and not root: install them (apt-get install -y ${pkgs[*]})"
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package from starting a system nginx on port 80 (the standard container
    # policy-rc.d); only when no policy is in place already.
    local policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    fi
    local ok=0
    apt-get install -y "${pkgs[@]}" || { apt-get update && apt-get install -y "${pkgs[@]}"; } || ok=$?
    [[ -n $policy ]] && rm -f "$policy"
    ((ok == 0)) || die "apt-get install ${pkgs[*]} failed"
}

install_missing
(($(nproc) >= 2)) || die "needs 2 cores (servers on core $SERVER_CPU, wrk on core $CLIENT_CPU); this machine has $(nproc)"

# --- build -------------------------------------------------------------------------------------

if [[ -n ${BIN:-} ]]; then
    MO_BIN=$BIN
    [[ -x $MO_BIN ]] || die "BIN=$MO_BIN is not an executable"
    if wanted 7; then
        [[ -n ${S3_BIN:-} && -x $S3_BIN ]] || die "BIN needs S3_BIN (the s3_server example's binary) for scenario 7"
    fi
else
    build_release s3_server
    S3_BIN=$EXAMPLE_BIN
fi

# --- temp dir, clean-up ------------------------------------------------------------------------

make_work mo-bench

mkdir -p "$WORK/corpus" "$WORK/wrk" "$WORK/www/media/bench" "$WORK/nginx" "$WORK/s3tmp"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
put() { printf '%s\t%s\n' "$1" "$2" >>"$RESULTS"; }

# --- machine -----------------------------------------------------------------------------------

git_desc=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n ${BIN:-} ]]; then
    git_desc="the binary $BIN (BIN; the checkout is at $git_desc)"
elif [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    git_desc+=" + uncommitted changes"
fi
HEADER=$(
    cat <<EOF
machine: $(nproc) cores, CPU $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo); load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)
media-origin: $git_desc; $(nginx -v 2>&1 | sed 's/^nginx version: //'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')
servers on core $SERVER_CPU, wrk/curl on core $CLIENT_CPU; wrk -t1 -c$CONNS (1b: -c$MANY_CONNS) -d${DURATION}s --latency --timeout $WRK_TIMEOUT (after a ${WARMUP}s warm-up per server and scenario)
EOF
)
printf '%s\n' "$HEADER" >&2

# --- corpus ------------------------------------------------------------------------------------

log "generating the corpus in $WORK/corpus"
python3 bench/corpus.py "$WORK/corpus" >/dev/null || die "corpus generation failed"
CORPUS="$WORK/corpus"
declare -A CTYPE=([small.jpg]=image/jpeg [image.png]=image/png [video.mp4]=video/mp4 [doc.pdf]=application/pdf)
for f in small.jpg image.png video.mp4 doc.pdf; do
    cp "$CORPUS/$f" "$WORK/www/media/bench/$f"
done

# --- helpers -----------------------------------------------------------------------------------

now_ns() { date +%s%N; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL NAME PID: until URL answers 200, the process dies, or READY_TIMEOUT passes.
wait_http() {
    local url=$1 name=$2 pid=$3 deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ $(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$url" 2>/dev/null) == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# start_mo NAME STORAGE_DIR [VAR=VALUE...]: sets MO_PID and MO_ADDR.
start_mo() {
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    local logf="$WORK/$name.log"
    : >"$logf" # exists before the server (started in the background) opens it
    env "$@" MEDIA_ORIGIN_ADMIN_TOKEN="$TOKEN" RUST_LOG=info NO_COLOR=1 \
        taskset -c "$SERVER_CPU" "$MO_BIN" serve --config "$WORK/mo.toml" \
        --bind 127.0.0.1:0 --storage "$dir" >"$WORK/$name.out" 2>"$logf" &
    MO_PID=$!
    PIDS+=("$MO_PID")
    MO_ADDR=""
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        MO_ADDR=$(sed -n 's/.*serving.*addr=\([^ ]*\).*/\1/p' "$logf" | head -1) || MO_ADDR=""
        [[ -n $MO_ADDR ]] && break
        kill -0 "$MO_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $MO_ADDR ]] || { tail -20 "$logf" >&2; die "media-origin ($name) did not log 'serving addr=' within ${READY_TIMEOUT}s"; }
    wait_http "http://$MO_ADDR/healthz" "$name" "$MO_PID" ||
        { tail -20 "$logf" >&2; die "media-origin ($name) at $MO_ADDR: /healthz did not answer 200 within ${READY_TIMEOUT}s"; }
    log "media-origin ($name) serving at $MO_ADDR, pid $MO_PID"
}

api() { # METHOD ADDR PATH [curl args...]: prints the HTTP status, body to $WORK/api.out
    local method=$1 addr=$2 path=$3
    shift 3
    curl -sS --noproxy '*' -o "$WORK/api.out" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $TOKEN" "$@" "http://$addr/api$path"
}

upload() { # ADDR FILE: PUT into bench/FILE
    local addr=$1 f=$2 code
    code=$(api PUT "$addr" "/assets/bench/$f" -H 'Expect:' -H "Content-Type: ${CTYPE[$f]}" \
        --data-binary "@$CORPUS/$f")
    [[ $code == 200 || $code == 201 ]] || die "upload of $f to $addr answered $code: $(head -c 500 "$WORK/api.out")"
}

set_policy() { # ADDR
    local code
    code=$(api PUT "$1" /policies/bench -H 'Content-Type: application/json' -d '{"cache_control": "max-age=86400"}')
    [[ $code == 200 || $code == 201 ]] || die "folder policy on $1 answered $code: $(head -c 500 "$WORK/api.out")"
}

status_of() { # URL [header...]
    local url=$1 h=()
    shift
    for x in "$@"; do h+=(-H "$x"); done
    curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "${h[@]}" "$url" || true
}

header_of() { # URL NAME: the header's value as sent (quotes kept)
    curl -s --noproxy '*' -D - -o /dev/null "$1" | tr -d '\r' |
        awk -v n="$2" 'BEGIN { FS = ": "; n = tolower(n) } tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }' || true
}

CLK_TCK=$(getconf CLK_TCK)
declare -A SRV_PIDS # server name -> the PIDs whose CPU time is the server's

proc_ticks() { # PID...: user + system CPU ticks, summed
    local t=0 p v
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] || continue
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

core_ticks() { # N: "busy total" ticks of core N
    awk -v c="cpu$1" '$1 == c { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}

busy_pct() { # "busy total" before, after: how busy the core was in between, in %
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.0f", (d > 0) ? 100 * (y[1] - x[1]) / d : 0 }'
}

# run_wrk SCENARIO SERVER URL [header...]: warm-up, then the measured run into
# wrk/SCENARIO.SERVER.txt; records the server's CPU use and how busy the load generator's core was.
run_wrk() {
    local scenario=$1 server=$2 url=$3 h=()
    shift 3
    for x in "$@"; do h+=(-H "$x"); done
    local out="$WORK/wrk/$scenario.$server.r$ROUND.txt"
    local conns=${WRK_CONNS:-$CONNS}
    local pids
    read -r -a pids <<<"${SRV_PIDS[$server]:-}"
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${WARMUP}s" --timeout "$WRK_TIMEOUT" "${h[@]}" "$url" >/dev/null 2>&1 || true
    local t0 p0 s0 c0 t1 p1 s1 c1
    t0=$(now_ns) p0=$(proc_ticks "${pids[@]}") s0=$(core_ticks "$SERVER_CPU") c0=$(core_ticks "$CLIENT_CPU")
    if ! taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency --timeout "$WRK_TIMEOUT" "${h[@]}" "$url" >"$out" 2>&1; then
        log "wrk failed for $scenario on $server: $(tail -3 "$out")"
    fi
    t1=$(now_ns) p1=$(proc_ticks "${pids[@]}") s1=$(core_ticks "$SERVER_CPU") c1=$(core_ticks "$CLIENT_CPU")
    local proc srv cli
    proc=$(awk -v a="$p0" -v b="$p1" -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (t / 1e9) }')
    srv=$(busy_pct "$s0" "$s1")
    cli=$(busy_pct "$c0" "$c1")
    put "cpu.$scenario.$server" "$proc $srv $cli"
    log "  $scenario $server: $(grep -E 'Requests/sec|Transfer/sec' "$out" | tr -s ' ' | tr '\n' ' ')(server process ${proc}% CPU; core $SERVER_CPU ${srv}%, core $CLIENT_CPU ${cli}% busy)"
}

# check SCENARIO WANT SERVER URL [header...]: the status curl gets, recorded for the table
check() {
    local scenario=$1 want=$2 server=$3 url=$4 got
    shift 4
    got=$(status_of "$url" "$@")
    put "expect.$scenario" "$want"
    put "check.$scenario.$server" "$got"
    [[ $got == "$want" ]] || log "WARNING: $scenario on $server answered $got, expected $want ($url)"
}

# --- nginx -------------------------------------------------------------------------------------

NGX_PORT=$(free_port)
sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$NGX_PORT|g" bench/nginx.conf.in >"$WORK/nginx/nginx.conf"
taskset -c "$SERVER_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_http "http://127.0.0.1:$NGX_PORT/media/bench/small.jpg" nginx "$NGX_PID" ||
    { tail -20 "$WORK/nginx/error.log" >&2 2>/dev/null || true; die "nginx did not answer on port $NGX_PORT within ${READY_TIMEOUT}s (config: bench/nginx.conf.in)"; }
NGX="http://127.0.0.1:$NGX_PORT"
SRV_PIDS[nginx]="$NGX_PID $(cat /proc/"$NGX_PID"/task/*/children 2>/dev/null)"
log "nginx serving at $NGX, pid $NGX_PID (workers: $(cat /proc/"$NGX_PID"/task/*/children 2>/dev/null))"

# --- media-origin (local disk) -----------------------------------------------------------------

# A config of its own, so the repo's config.toml (or one in the caller's directory) plays no part.
cat >"$WORK/mo.toml" <<'EOF'
# media-origin settings for bench/compare.sh: defaults, storage given by --storage, the admin
# API on the public listener so one port serves both.
[server]
admin_bind = "public"
[cache]
default = "max-age=86400"
EOF
start_mo mo-local "$WORK/mo-local"
MO_LOCAL_PID=$MO_PID
MO_LOCAL=$MO_ADDR
set_policy "$MO_LOCAL"
for f in small.jpg image.png video.mp4 doc.pdf; do upload "$MO_LOCAL" "$f"; done
MO="http://$MO_LOCAL"
SRV_PIDS[mo]=$MO_LOCAL_PID
SRV_PIDS[local]=$MO_LOCAL_PID
put rss.idle_kb "$(awk '/^VmRSS/ {print $2}' "/proc/$MO_LOCAL_PID/status")"

# The headers both send for the small image.
diffs=()
for h in Content-Type Cache-Control; do
    a=$(header_of "$NGX/media/bench/small.jpg" "$h")
    b=$(header_of "$MO/media/bench/small.jpg" "$h")
    [[ $a == "$b" ]] || diffs+=("$h: nginx '$a', mo '$b'")
done
for h in ETag Last-Modified; do
    [[ -n $(header_of "$NGX/media/bench/small.jpg" "$h") ]] || diffs+=("nginx sends no $h")
    [[ -n $(header_of "$MO/media/bench/small.jpg" "$h") ]] || diffs+=("mo sends no $h")
done
if ((${#diffs[@]})); then
    put headers.diff "$(printf '%s; ' "${diffs[@]}")"
    log "WARNING: header differences: ${diffs[*]}"
fi

# --- scenarios 1-4: alternate nginx, media-origin ----------------------------------------------

RANGE='Range: bytes=4194304-5242879'
ETAG_NGX=$(header_of "$NGX/media/bench/small.jpg" ETag)
ETAG_MO=$(header_of "$MO/media/bench/small.jpg" ETag)
[[ -n $ETAG_NGX && -n $ETAG_MO ]] || die "no ETag from nginx ('$ETAG_NGX') or media-origin ('$ETAG_MO')"

if wanted 1; then
    log "1/7 small GET"
    check small 200 nginx "$NGX/media/bench/small.jpg"
    check small 200 mo "$MO/media/bench/small.jpg"
    for ROUND in $(seq "$ROUNDS"); do
        run_wrk small nginx "$NGX/media/bench/small.jpg"
        run_wrk small mo "$MO/media/bench/small.jpg"
    done
    log "1b/7 small GET over $MANY_CONNS connections"
    check small200 200 nginx "$NGX/media/bench/small.jpg"
    check small200 200 mo "$MO/media/bench/small.jpg"
    for ROUND in $(seq "$ROUNDS"); do
        WRK_CONNS=$MANY_CONNS run_wrk small200 nginx "$NGX/media/bench/small.jpg"
        WRK_CONNS=$MANY_CONNS run_wrk small200 mo "$MO/media/bench/small.jpg"
    done
fi

if wanted 2; then
    log "2/7 conditional GET (If-None-Match: nginx $ETAG_NGX, mo $ETAG_MO)"
    check cond304 304 nginx "$NGX/media/bench/small.jpg" "If-None-Match: $ETAG_NGX"
    check cond304 304 mo "$MO/media/bench/small.jpg" "If-None-Match: $ETAG_MO"
    for ROUND in $(seq "$ROUNDS"); do
        run_wrk cond304 nginx "$NGX/media/bench/small.jpg" "If-None-Match: $ETAG_NGX"
        run_wrk cond304 mo "$MO/media/bench/small.jpg" "If-None-Match: $ETAG_MO"
    done
fi

if wanted 3; then
    log "3/7 Range 1 MB of the video"
    check range 206 nginx "$NGX/media/bench/video.mp4" "$RANGE"
    check range 206 mo "$MO/media/bench/video.mp4" "$RANGE"
    for ROUND in $(seq "$ROUNDS"); do
        run_wrk range nginx "$NGX/media/bench/video.mp4" "$RANGE"
        run_wrk range mo "$MO/media/bench/video.mp4" "$RANGE"
    done
fi

if wanted 4; then
    log "4/7 GET of the 16 MB video"
    check video 200 nginx "$NGX/media/bench/video.mp4"
    check video 200 mo "$MO/media/bench/video.mp4"
    for ROUND in $(seq "$ROUNDS"); do
        run_wrk video nginx "$NGX/media/bench/video.mp4"
        run_wrk video mo "$MO/media/bench/video.mp4"
    done
fi

# --- scenario 5: upload ingest against sha256sum -----------------------------------------------

if wanted 5; then
    log "5/7 upload ingest"
    for pair in video:video.mp4 pdf:doc.pdf; do
        name=${pair%%:*} f=${pair#*:}
        file="$CORPUS/$f"
        put "ingest.$name.bytes" "$(stat -c %s "$file")"
        best_sha=""
        for i in 1 2 3; do
            t0=$(now_ns)
            taskset -c "$SERVER_CPU" sha256sum "$file" >/dev/null
            t=$(($(now_ns) - t0))
            if [[ -z $best_sha || $t -lt $best_sha ]]; then best_sha=$t; fi
        done
        # For reference only: the same hash with OpenSSL (SHA extensions where the CPU has them);
        # Debian's sha256sum (coreutils) uses a portable implementation.
        if command -v openssl >/dev/null; then
            best_ossl=""
            for i in 1 2 3; do
                t0=$(now_ns)
                taskset -c "$SERVER_CPU" openssl dgst -sha256 "$file" >/dev/null
                t=$(($(now_ns) - t0))
                if [[ -z $best_ossl || $t -lt $best_ossl ]]; then best_ossl=$t; fi
            done
            put "ingest.$name.openssl_best_s" "$(awk -v t="$best_ossl" 'BEGIN { print t / 1e9 }')"
        fi
        best_mo="" codes=()
        for i in 1 2 3; do
            r=$(taskset -c "$CLIENT_CPU" curl -sS --noproxy '*' -o "$WORK/api.out" -w '%{http_code} %{time_total}' \
                -X PUT -H "Authorization: Bearer $TOKEN" -H 'Expect:' -H "Content-Type: ${CTYPE[$f]}" \
                --data-binary "@$file" "$MO/api/assets/bench/ingest/run-$i-$f") || r="000 0"
            code=${r%% *} secs=${r#* }
            codes+=("$code")
            if [[ $code == 200 || $code == 201 ]]; then
                if [[ -z $best_mo ]] || awk -v a="$secs" -v b="$best_mo" 'BEGIN { exit !(a < b) }'; then best_mo=$secs; fi
            else
                log "WARNING: ingest PUT of $f answered $code: $(head -c 300 "$WORK/api.out")"
            fi
        done
        put "ingest.$name.sha_best_s" "$(awk -v t="$best_sha" 'BEGIN { print t / 1e9 }')"
        [[ -n $best_mo ]] && put "ingest.$name.mo_best_s" "$best_mo"
        put "ingest.$name.codes" "$(
            IFS=,
            echo "${codes[*]}"
        )"
        log "  $f: sha256sum best $(awk -v t="$best_sha" 'BEGIN { printf "%.3f", t / 1e9 }')s, media-origin best ${best_mo:-n/a}s (statuses ${codes[*]})"
    done
fi

# --- scenario 6: peak RSS ----------------------------------------------------------------------

# measure_rss NAME COMMAND...: reset VmHWM, sample VmRSS every 20 ms while COMMAND runs.
measure_rss() {
    local name=$1
    shift
    local pid=$MO_LOCAL_PID hwm_ok=1
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || hwm_ok=0
    taskset -c "$CLIENT_CPU" python3 bench/rss_sampler.py "$pid" "$WORK/rss-$name.stop" >"$WORK/rss-$name.max" &
    local sampler=$!
    local rc=0
    "$@" || rc=$?
    touch "$WORK/rss-$name.stop"
    wait "$sampler" || true
    put "rss.$name.sampled_kb" "$(cat "$WORK/rss-$name.max")"
    if ((hwm_ok)); then put "rss.$name.hwm_kb" "$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")"; fi
    return $rc
}

twenty_downloads() {
    local i pids=() bad=0
    for i in $(seq 20); do
        taskset -c "$CLIENT_CPU" curl -s --noproxy '*' -o /dev/null -w '%{http_code} %{size_download}\n' \
            "$MO/media/bench/doc.pdf" >"$WORK/dl-$i.txt" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
    local ok
    ok=$(cat "$WORK"/dl-*.txt | grep -c "^200 $(stat -c %s "$CORPUS/doc.pdf")$" || true)
    if ((ok == 20)); then put rss.download.ok yes; else put rss.download.ok "only $ok of 20 downloads complete"; fi
}

one_upload() {
    local code
    code=$(taskset -c "$CLIENT_CPU" curl -sS --noproxy '*' -o "$WORK/api.out" -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $TOKEN" -H 'Expect:' -H 'Content-Type: application/pdf' \
        --data-binary "@$CORPUS/doc.pdf" "$MO/api/assets/bench/rss/upload.pdf") || code=000
    if [[ $code == 200 || $code == 201 ]]; then put rss.upload.ok yes; else put rss.upload.ok "upload answered $code"; fi
}

if wanted 6; then
    log "6/7 peak RSS (20 concurrent 100 MB downloads, then one 100 MB upload)"
    measure_rss download twenty_downloads
    measure_rss upload one_upload
    log "  $(grep '^rss' "$RESULTS" | tr '\t' '=' | tr '\n' ' ')"
fi

# --- scenario 7: S3 backend against local ------------------------------------------------------

if wanted 7; then
    log "7/7 small GET on S3 (loopback s3s-fs server on core $SERVER_CPU) against local"
    : >"$WORK/s3.out"
    TMPDIR="$WORK/s3tmp" taskset -c "$SERVER_CPU" "$S3_BIN" >"$WORK/s3.out" 2>"$WORK/s3.log" &
    S3_PID=$!
    PIDS+=("$S3_PID")
    S3_ENDPOINT=""
    deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)) && kill -0 "$S3_PID" 2>/dev/null; do
        S3_ENDPOINT=$(head -1 "$WORK/s3.out") || S3_ENDPOINT=""
        [[ $S3_ENDPOINT == http://* ]] && break
        S3_ENDPOINT=""
        sleep 0.1
    done
    [[ -n $S3_ENDPOINT ]] || { cat "$WORK/s3.log" >&2; die "the S3 server did not print its endpoint within ${READY_TIMEOUT}s"; }
    s3val() { sed -n "s/^$1=//p" "$WORK/s3.out"; }
    log "S3 server at $S3_ENDPOINT, pid $S3_PID"
    start_mo mo-s3 "$WORK/mo-s3" \
        MEDIA_ORIGIN__STORAGE__BACKEND=s3 \
        MEDIA_ORIGIN__STORAGE__BUCKET="$(s3val bucket)" \
        MEDIA_ORIGIN__STORAGE__ENDPOINT="$S3_ENDPOINT" \
        MEDIA_ORIGIN__STORAGE__ALLOW_HTTP=true \
        MEDIA_ORIGIN__STORAGE__REGION=us-east-1 \
        MEDIA_ORIGIN__STORAGE__ACCESS_KEY_ID="$(s3val access_key_id)" \
        MEDIA_ORIGIN__STORAGE__SECRET_ACCESS_KEY="$(s3val secret_access_key)"
    MO_S3="http://$MO_ADDR"
    SRV_PIDS[s3]="$MO_PID $S3_PID"
    set_policy "$MO_ADDR"
    upload "$MO_ADDR" small.jpg
    MO_S3_PID=$MO_PID
    # The same over S3 with the small-blob memory off: every GET then reads the blob from S3, which
    # shows what the memory saves (reported, no target).
    start_mo mo-s3nc "$WORK/mo-s3nc" \
        MEDIA_ORIGIN__STORAGE__BACKEND=s3 \
        MEDIA_ORIGIN__STORAGE__BUCKET="$(s3val bucket)" \
        MEDIA_ORIGIN__STORAGE__ENDPOINT="$S3_ENDPOINT" \
        MEDIA_ORIGIN__STORAGE__ALLOW_HTTP=true \
        MEDIA_ORIGIN__STORAGE__REGION=us-east-1 \
        MEDIA_ORIGIN__STORAGE__ACCESS_KEY_ID="$(s3val access_key_id)" \
        MEDIA_ORIGIN__STORAGE__SECRET_ACCESS_KEY="$(s3val secret_access_key)" \
        MEDIA_ORIGIN__STORAGE__BLOB_CACHE_MB=0
    MO_S3NC="http://$MO_ADDR"
    SRV_PIDS[s3nc]="$MO_PID $S3_PID"
    SRV_PIDS[s3]="$MO_S3_PID $S3_PID"
    check s3small 200 local "$MO/media/bench/small.jpg"
    check s3small 200 s3 "$MO_S3/media/bench/small.jpg"
    check s3small 200 s3nc "$MO_S3NC/media/bench/small.jpg"
    s3_ticks=0
    for ROUND in $(seq "$ROUNDS"); do
        run_wrk s3small local "$MO/media/bench/small.jpg"
        t=$(proc_ticks "$S3_PID")
        run_wrk s3small s3 "$MO_S3/media/bench/small.jpg"
        s3_ticks=$((s3_ticks + $(proc_ticks "$S3_PID") - t))
        run_wrk s3small s3nc "$MO_S3NC/media/bench/small.jpg"
    done
    put s3server.ticks "$s3_ticks"
    put s3server.requests "$(cat "$WORK"/wrk/s3small.s3.r*.txt | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' | awk '{ n += $1 } END { print n }')"
    put clk_tck "$CLK_TCK"
fi

# --- the table ---------------------------------------------------------------------------------

TABLE=$(python3 bench/report.py "$WORK") || die "building the table failed (raw results in $WORK; rerun with KEEP=1 to keep them)"
{
    printf '%s\n\n' "$HEADER"
    printf '%s\n' "$TABLE"
} >"$WORK/table.txt"
cp "$WORK/table.txt" bench/last-run.txt
echo
cat "$WORK/table.txt"
echo
log "table written to bench/last-run.txt"
