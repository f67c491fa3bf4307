#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: a figure that does not
# drift with the machine's speed, unlike req/s, for A/B comparisons of per-request work.
#
#   bash bench/instructions.sh                          # the release build
#   bash bench/instructions.sh BIN_A BIN_B              # two builds, side by side, and B/A
#   REQUESTS_SECS=4 KEEP=1 bash bench/instructions.sh   # longer counted runs; keep the profiles
#                                                       # (callgrind_annotate FILE reads them)
#
# For each binary: starts it under callgrind on local disk, uploads the corpus's 48 KB JPEG,
# warms up, zeroes the counters, runs wrk over one keep-alive connection for REQUESTS_SECS
# seconds, dumps the counters, and divides the instructions by the requests wrk completed.
# Two scenarios: the 304 (If-None-Match with the ETag) and the 200 of the whole image. The
# kernel's share (the TCP path, the same for any server) is not counted. Installs valgrind and
# wrk from Debian packages when missing; needs root for that only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUESTS_SECS=${REQUESTS_SECS:-3}
BENCH_NAME=instructions
# shellcheck source=bench/lib.sh
. bench/lib.sh

pkgs=()
command -v valgrind >/dev/null || pkgs+=(valgrind)
command -v wrk >/dev/null || pkgs+=(wrk)
command -v curl >/dev/null || pkgs+=(curl)
if ((${#pkgs[@]})); then
    log "installing ${pkgs[*]}"
    apt-get install -y -qq "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed (needs root)"
fi

if (($# == 0)); then
    build_release s3_server
    set -- "$MO_BIN"
fi
for bin in "$@"; do [[ -x $bin ]] || die "no executable at $bin"; done

make_work mo-instructions
python3 bench/corpus.py "$WORK/corpus" >/dev/null || die "corpus generation failed"
cat >"$WORK/mo.toml" <<'TOML'
[server]
admin_bind = "public"
[cache]
default = "max-age=86400"
TOML
TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# measure BIN LABEL: prints "LABEL 304 N 200 N" (instructions per request)
measure() {
    local bin=$1 label=$2 dir="$WORK/$2"
    mkdir -p "$dir"
    MEDIA_ORIGIN_ADMIN_TOKEN=$TOKEN RUST_LOG=info \
        valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.%p" \
        "$bin" serve --config "$WORK/mo.toml" --bind 127.0.0.1:0 --storage "$dir/storage" \
        >"$dir/out.log" 2>"$dir/err.log" &
    local vpid=$! addr="" i
    PIDS+=("$vpid")
    for i in $(seq 300); do
        addr=$(sed -n 's/.*serving.*addr=\([^ ]*\).*/\1/p' "$dir/err.log" | head -1)
        [[ -n $addr ]] && break
        sleep 0.2
    done
    [[ -n $addr ]] || { tail -5 "$dir/err.log" >&2; die "$label did not start under valgrind"; }
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: image/jpeg' -H 'Expect:' --data-binary "@$WORK/corpus/small.jpg" \
        "http://$addr/api/assets/bench/small.jpg")
    [[ $code == 201 || $code == 200 ]] || die "$label: upload answered $code"
    local url="http://$addr/media/bench/small.jpg" etag
    etag=$(curl -s -D - -o /dev/null "$url" | tr -d '\r' | sed -n 's/^etag: //Ip')
    local out=()
    for scenario in 304 200; do
        local h=()
        [[ $scenario == 304 ]] && h=(-H "If-None-Match: $etag")
        wrk -t1 -c1 -d2s "${h[@]}" "$url" >/dev/null 2>&1 || true
        callgrind_control -z "$vpid" >/dev/null 2>&1
        local n
        n=$(wrk -t1 -c1 -d"${REQUESTS_SECS}s" "${h[@]}" "$url" 2>/dev/null |
            sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
        local dumps dump="" ir=""
        dumps=$(find "$dir" -name "callgrind.$vpid.*" | wc -l)
        callgrind_control --dump="$scenario" "$vpid" >/dev/null 2>&1
        # The dump is written when valgrind next looks at its command file.
        for i in $(seq 100); do
            (($(find "$dir" -name "callgrind.$vpid.*" | wc -l) > dumps)) && break
            sleep 0.1
        done
        sleep 0.2
        dump=$(ls -t "$dir"/callgrind."$vpid".* 2>/dev/null | head -1) || true
        [[ -n $dump ]] && ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$dump" | head -1)
        [[ -n $n && $n -gt 0 && -n $ir ]] || die "$label $scenario: no count (requests '$n', instructions '$ir')"
        out+=("$scenario" "$((ir / n))" "$n")
    done
    stop_pid "$vpid"
    echo "$label ${out[*]}"
}

log "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); kernel $(uname -r); $(valgrind --version)"
results=()
i=0
for bin in "$@"; do
    i=$((i + 1))
    log "measuring $bin"
    results+=("$(measure "$bin" "build$i")")
done
printf '%-8s | %-42s | %14s | %14s\n' build binary "304 instr/req" "200 instr/req"
i=0
for r in "${results[@]}"; do
    read -r label _ i304 n304 _ i200 n200 <<<"$r"
    i=$((i + 1))
    printf '%-8s | %-42s | %14s | %14s\n' "$label" "${!i:0:42}" "$i304 ($n304)" "$i200 ($n200)"
done
if ((${#results[@]} == 2)); then
    read -r _ _ a304 _ _ a200 _ <<<"${results[0]}"
    read -r _ _ b304 _ _ b200 _ <<<"${results[1]}"
    python3 -c "print('build2/build1: 304 %.3f, 200 %.3f' % ($b304 / $a304, $b200 / $a200))"
fi
