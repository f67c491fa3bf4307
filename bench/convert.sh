#!/usr/bin/env bash
# Conversion on upload: the time and peak memory of converting, through the real server
# (`PUT ?convert=true`), the two inputs the issue names:
#   - a 40 s 1080p H.264 clip of ~25 MB (noisy testsrc2, 10 fps), fitted into 16 MB by
#     re-encoding at the bitrate chosen from its duration;
#   - a 4 MB WAV (PCM, mono, 48 kHz, ~42 s), made into mono Ogg Opus.
# Peak RSS is sampled every 20 ms over the server and every process under it (ffmpeg), summed;
# ffmpeg's own peak is printed too.
#
#   bash bench/convert.sh                          # from the repo root; builds the release binary
#   MO_BIN=target/debug/media-origin bash bench/convert.sh   # another binary
#   KEEP=1 bash bench/convert.sh                   # keep the temp dir (inputs, server log)
#
# Needs ffmpeg (scripts/install-ffmpeg.sh installs it), curl and python3. Loopback only; the
# server started here is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_NAME=convert
# shellcheck source=bench/lib.sh
source bench/lib.sh

command -v ffmpeg >/dev/null || bash scripts/install-ffmpeg.sh
for tool in ffmpeg curl python3; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
if [[ -z ${MO_BIN:-} ]]; then
    log "building (cargo build --release --locked)"
    cargo build --release --locked || die "cargo build --release failed"
    MO_BIN=target/release/media-origin
fi
[[ -x $MO_BIN ]] || die "no binary at $MO_BIN"

make_work media-origin-convert-bench
log "making the inputs in $WORK"
ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1920x1080:rate=10:duration=40,noise=alls=40:allf=t \
    -f lavfi -i sine=frequency=440:sample_rate=48000:duration=40 \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -b:v 5000k -maxrate 5000k -bufsize 5000k \
    -c:a aac -movflags +faststart -f mp4 "$WORK/clip.mp4"
ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "sine=frequency=220:sample_rate=48000:duration=41.7" \
    -c:a pcm_s16le -ac 1 -f wav "$WORK/voice.wav"

TOKEN=bench-admin-token-0123456789
MEDIA_ORIGIN_ADMIN_TOKEN=$TOKEN MEDIA_ORIGIN__SERVER__BIND=127.0.0.1:0 \
    MEDIA_ORIGIN__SERVER__ADMIN_BIND=public MEDIA_ORIGIN__CONVERT__TEMP_DIR="$WORK" \
    RUST_LOG=info "$MO_BIN" serve --storage "$WORK/storage" 2>"$WORK/server.log" &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 100); do
    ADDR=$(grep -o 'addr=[0-9.:]*' "$WORK/server.log" | head -1 | cut -d= -f2 || true)
    [[ -n $ADDR ]] && break
    sleep 0.1
done
[[ -n ${ADDR:-} ]] || die "the server did not start: $(cat "$WORK/server.log")"
grep -q 'conversion on upload is available' "$WORK/server.log" ||
    die "conversion is not available: $(grep -i conversion "$WORK/server.log")"

# sample PID STOP: the peak, in kB, of the sum of VmRSS over PID and its descendants, and of
# the largest descendant alone, until STOP exists.
sample() {
    python3 - "$1" "$2" <<'PY'
import os, sys, time
root, stop = int(sys.argv[1]), sys.argv[2]
def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
def children(pid):
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out
total = child = 0
while not os.path.exists(stop):
    tree, todo = [], children(root)
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children(p)
    sizes = [rss(p) for p in tree]
    total = max(total, rss(root) + sum(sizes))
    child = max([child] + sizes)
    time.sleep(0.02)
print(total, child)
PY
}

run() {
    local name=$1 file=$2 type=$3 path=$4 stop="$WORK/stop-$1"
    sample "$SERVER" "$stop" >"$WORK/rss-$name" &
    local sampler=$!
    local out
    out=$(curl -sS -o "$WORK/answer-$name.json" -w '%{http_code} %{time_total}' \
        -X PUT -H "Authorization: Bearer $TOKEN" -H "Content-Type: $type" \
        --data-binary "@$file" "http://$ADDR/api/assets/$path?convert=true")
    touch "$stop"
    wait "$sampler"
    read -r code secs <<<"$out"
    read -r total child <"$WORK/rss-$name"
    [[ $code == 201 ]] || die "$name: $code $(cat "$WORK/answer-$name.json")"
    local stored
    stored=$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(a["path"], a["size"])' \
        "$WORK/answer-$name.json")
    printf '%-28s %8s s   peak RSS %7s MB (ffmpeg %6s MB)   %s -> %s bytes\n' \
        "$name ($(($(stat -c %s "$file") / 1000)) kB)" "$secs" \
        "$((total / 1024))" "$((child / 1024))" "$path" "$stored"
}

echo "media-origin conversion on upload ($(nproc) cores; $(ffmpeg -version | head -1 | cut -d' ' -f1-3))"
run "40 s 1080p clip" "$WORK/clip.mp4" video/mp4 bench/clip.mp4
run "4 MB WAV" "$WORK/voice.wav" audio/wav bench/voice.wav
