#!/usr/bin/env bash
# Fuzz the admin API against its OpenAPI description (src/http/openapi.json) with schemathesis:
# generated requests to every operation, every answer checked for a documented status, content
# type, headers and schema. tests/it/openapi.rs checks a fixed scenario on every `cargo test`; this
# explores inputs nobody wrote down. Not part of `cargo test`: it needs PyPI once and takes a
# few minutes.
#
#   bash scripts/schemathesis.sh [extra `st run` arguments, e.g. --max-time 60]
#
# Installs schemathesis into target/schemathesis-venv, builds the release binary, starts it on
# loopback over a temporary storage directory (local backend, a signing key, no WhatsApp), runs
# `st run`, and stops the server. Exit status: schemathesis's.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
PORT=${PORT:-18480}
ADMIN_PORT=${ADMIN_PORT:-18481}
TARGET=${CARGO_TARGET_DIR:-target}
VENV=target/schemathesis-venv

if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --release --quiet

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

: >"$work/config.toml"
token=schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
MEDIA_ORIGIN_ADMIN_TOKEN=$token \
MEDIA_ORIGIN_SIGNING_KEYS="k1:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
MEDIA_ORIGIN__SERVER__BIND=127.0.0.1:$PORT \
MEDIA_ORIGIN__SERVER__ADMIN_BIND=127.0.0.1:$ADMIN_PORT \
MEDIA_ORIGIN__STORAGE__PATH=$work/storage \
RUST_LOG=warn \
    "$TARGET/release/media-origin" serve --config "$work/config.toml" >"$work/server.log" 2>&1 &
server=$!

api=http://127.0.0.1:$ADMIN_PORT
for _ in $(seq 100); do
    curl -sf "$api/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.1
done

# Per operation: without [whatsapp] here, the media-ID operations answer their documented
# 501, which `not_a_server_error` would count as a failure. A form carries only text, so a
# value schemathesis means as another type (`null`, an array) arrives as text or not at all,
# which the form rightly takes and `negative_data_rejection` reports.
cat >"$work/schemathesis.toml" <<'TOML'
[[operations]]
include-operation-id = ["getMediaId", "refreshMediaIds"]
checks.not_a_server_error.expected-statuses = ["1xx", "2xx", "3xx", "4xx", 501]

[[operations]]
include-operation-id = "uploadAssetForm"
checks.negative_data_rejection.expected-statuses = ["2xx", "4xx"]

# schemathesis 4.32.5 on Python 3.11 crashes in its own coverage phase here (SystemError: AST
# constructor recursion depth mismatch); fuzzing still covers the operation.
[[operations]]
include-operation-id = "putAccess"
phases.coverage.enabled = false
TOML

# Checks: everything but `positive_data_acceptance` (a schema-valid body of random bytes is
# still refused media) and `use_after_free`/`ensure_resource_availability` (they assume a
# created resource is found by the generated path of another operation).
status=0
"$VENV/bin/st" --config-file "$work/schemathesis.toml" run "$api/api/openapi.json" \
    --url "$api" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --exclude-checks positive_data_acceptance,use_after_free,ensure_resource_availability \
    --max-examples "${MAX_EXAMPLES:-50}" \
    --workers 2 \
    --generation-database none \
    --suppress-health-check filter_too_much \
    "$@" || status=$?
if grep -q "panicked" "$work/server.log"; then
    echo "the server panicked:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    status=1
fi
exit $status
