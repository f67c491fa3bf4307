#!/usr/bin/env bash
# Run the cargo-fuzz targets in fuzz/ for a set time each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGET defaults to every target (path, policy, range,
# conditional, media). Each target starts from its committed corpus (fuzz/corpus/<target>/) plus the
# hand-written seeds (fuzz/seeds/<target>/), uses its dictionary (fuzz/dict/<target>.dict), and
# writes what it finds new back into fuzz/corpus/<target>/, which is then minimised
# (`cargo fuzz cmin`) so the committed corpus stays small. The minimisation keeps one input per
# new edge (libFuzzer's -use_counters=0): the corpus is bounded by the code's size, not by how
# long anyone fuzzed (hit-count variety is found again within seconds of the next run).
#
# Exits non-zero if any target crashed (a panic, a failed invariant, a timeout or running out of
# memory), after printing the path of each crash artifact; reproduce one with
#   (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact>)
#
# Environment:
#   CARGO_FUZZ_FLAGS  extra flags for `cargo fuzz build/run/cmin`, e.g. "--sanitizer none"
#   FUZZ_NO_CMIN=1    keep the grown corpus as it is (no minimisation afterwards)
#   FUZZ_CMIN_ARGS    libFuzzer flags for the minimisation instead of "-use_counters=0"
#                     (e.g. "" to keep every hit-count feature: a corpus many times larger)
#
# cargo-fuzz passes nightly-only flags (-Z...) to rustc; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them.
set -euo pipefail

secs="${1:-60}"
shift || true
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

cd "$(dirname "$0")/../fuzz"
fuzz_dir="$PWD"
export RUSTC_BOOTSTRAP=1
CARGO_FUZZ_VERSION="0.13.2"
read -r -a flags <<< "${CARGO_FUZZ_FLAGS:-}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${targets[*]}"
cargo fuzz build "${flags[@]}"

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"
    mkdir -p "$corpus"
    inputs=("$corpus")
    [ -d "$fuzz_dir/seeds/$t" ] && inputs+=("$fuzz_dir/seeds/$t")
    extra=()
    [ -f "$fuzz_dir/dict/$t.dict" ] && extra+=("-dict=$fuzz_dir/dict/$t.dict")

    echo "== $t: ${secs}s, corpus $(find "$corpus" -type f | wc -l) files"
    log="$log_dir/$t.log"
    status=0
    # New inputs go to the first directory, the committed corpus.
    cargo fuzz run "${flags[@]}" "$t" "${inputs[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 "${extra[@]}" 2>&1 | tee "$log" || status=$?
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        echo "!! $t FAILED (exit $status)"
        artifacts=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
        if [ -n "$artifacts" ]; then
            while read -r a; do
                case "$a" in /*) ;; *) a="$fuzz_dir/${a#./}" ;; esac
                echo "!! crash artifact: $a"
                echo "!!   reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t $a)"
            done <<< "$artifacts"
        else
            echo "!! no artifact was written; see the output above"
        fi
        continue
    fi
    summary+=("$t: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed 's/^#\([0-9]*\)[[:space:]]*DONE[[:space:]]*/\1 runs, /')")

    if [ "${FUZZ_NO_CMIN:-0}" != 1 ]; then
        read -r -a cmin_args <<< "${FUZZ_CMIN_ARGS-"-use_counters=0"}"
        cargo fuzz cmin "${flags[@]}" "$t" "$corpus" -- "${cmin_args[@]}" \
            > "$log_dir/$t.cmin.log" 2>&1 || {
            echo "!! cmin of $t failed:"
            tail -20 "$log_dir/$t.cmin.log"
            failed+=("$t (cmin)")
            continue
        }
        echo "== $t corpus after cmin: $(find "$corpus" -type f | wc -l) files," \
            "$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}') bytes"
    fi
done

echo "== summary (${secs}s each)"
for line in "${summary[@]}"; do echo "   $line"; done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "== FAILED: ${failed[*]}"
    exit 1
fi
echo "== all ${#targets[@]} targets ran ${secs}s each without a crash"
