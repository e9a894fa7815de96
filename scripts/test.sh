#!/usr/bin/env bash
# The project's test command (README): Rust unit, property and integration tests, then
# the central-side SQL tests against a throwaway PostgreSQL cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL server binaries for the sync tests: use what is there, else install them.
have_pg() {
    command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1
}
if ! have_pg; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing PostgreSQL server binaries for the sync tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "PostgreSQL server binaries are missing; install postgresql (Debian) and re-run" >&2
        exit 1
    fi
fi

# node runs the members' app reference generator (clients/js/mq2.js) in the Rust tests.
if ! command -v node >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing node for the offline-code tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
    else
        echo "node is missing; install nodejs (Debian) and re-run" >&2
        exit 1
    fi
fi

cargo test --locked

# The HTTP API against its own OpenAPI document: schemathesis on a real server (installs
# schemathesis from PyPI into target/ if missing).
bash scripts/api-fuzz.sh

# The console in real headless Chromium (installs chromium and node packages if missing).
bash scripts/browser-test.sh

# The .deb (cargo-deb, release build), the systemd unit and the example config.
bash scripts/package-test.sh

# The central-side SQL, last, so its "N passed, M failed" line closes the run.
bash sync/tests/run.sh
