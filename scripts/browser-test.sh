#!/usr/bin/env bash
# End-to-end tests of the web console in a real headless Chromium (Debian's `chromium`,
# driven by playwright-core; no browser is downloaded). Builds the binary, starts a real
# `mps-edge serve` on 127.0.0.1:0 with a temporary data directory in standalone demo
# mode, runs tests/browser/*.test.mjs (console.test.mjs first) with node's test runner, stops the server.
# Screenshots go to target/console-screenshots/. The exit code is node's.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# CJK glyphs for the Traditional Chinese screenshots.
if ! { command -v fc-list >/dev/null 2>&1 && fc-list | grep -qi "Noto Sans CJK"; }; then
    need_apt+=(fonts-noto-cjk)
fi
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${need_apt[*]} for the browser tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "missing ${need_apt[*]}; install them (Debian) and re-run" >&2
        exit 1
    fi
fi

# node_modules is not in git: install from the lock file when missing, or again when the
# lock file changed since the last install (npm ci writes node_modules/.package-lock.json).
if [ ! -d tests/browser/node_modules/playwright-core ] ||
    [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo build --locked --quiet
BIN="$PWD/target/debug/mps-edge"

DATA="$(mktemp -d)"
LOG="$DATA/server.out"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT

"$BIN" --data-dir "$DATA" serve --listen 127.0.0.1:0 >"$LOG" 2>"$DATA/server.err" &
SERVER_PID=$!

URL=""
PASSWORD=""
for _ in $(seq 1 100); do
    URL="$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$LOG" | head -1)"
    PASSWORD="$(sed -n 's/.*owner account (shown only now): username owner  password \([^ ]*\).*/\1/p' "$LOG" | head -1)"
    if [ -n "$URL" ] && [ -n "$PASSWORD" ]; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server did not start:" >&2
        cat "$LOG" "$DATA/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$URL" ] || [ -z "$PASSWORD" ]; then
    echo "could not read the URL and owner password from the server's output:" >&2
    cat "$LOG" >&2
    exit 1
fi
echo "console under test: $URL/console/ (data in $DATA)"

# console.test.mjs first, in a run of its own (its dashboard figures assume a fresh
# demo store, and node's runner orders the files of one run itself), then the other
# files, one at a time, against the same server.
# BROWSER_TEST_FILES="tests/browser/x.test.mjs ..." runs only those (while working on one).
RUNS=("tests/browser/console.test.mjs")
REST=""
for f in tests/browser/*.test.mjs; do
    [ "$f" = tests/browser/console.test.mjs ] || REST="$REST $f"
done
RUNS+=("${REST# }")
if [ -n "${BROWSER_TEST_FILES:-}" ]; then
    RUNS=("$BROWSER_TEST_FILES")
fi
status=0
for run in "${RUNS[@]}"; do
    read -r -a FILES <<<"$run"
    MPS_URL="$URL" MPS_OWNER_PASSWORD="$PASSWORD" MPS_BIN="$BIN" MPS_DATA_DIR="$DATA" \
        node --test --test-concurrency=1 --test-reporter=spec "${FILES[@]}" || status=$?
done
echo "screenshots: target/console-screenshots/"
exit "$status"
