#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API against its own OpenAPI document (schemathesis),
# on a real server (debug build) on 127.0.0.1 with a throwaway data directory.
# Fails on any 5xx, any response that breaks the document (schema, status, content type,
# headers), any schema-valid request refused as malformed (400), and any schema-invalid
# request accepted. Bounded: FUZZ_EXAMPLES examples per operation and phase (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
examples="${FUZZ_EXAMPLES:-50}"
st_version=4.32.5

# schemathesis in a venv under target/ (pinned; PyPI is the only network it needs).
venv="$root/target/apifuzz-venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$st_version"; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        else
            echo "python3 with venv is needed for the API fuzzing; install python3-venv" >&2
            exit 1
        fi
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$st_version"
fi

cargo build --locked -q
bin="$root/target/debug/mps-edge"
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
daemon_secret=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
cat > "$work/config.toml" <<CONF
data_dir = "$work/data"
[server]
listen = "127.0.0.1:$port"
# The fuzzer sends thousands of requests from one address: the per-address limiter
# would answer most of them 429 (documented, but nothing else would be tested).
rate_limit_per_sec = 100000
rate_limit_burst = 100000
[auth]
max_failed_logins = 1000000
account_max_failed_logins = 1000000
[daemon]
secret = "$daemon_secret"
CONF

owner_pw=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
second_pw=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
"$bin" --config "$work/config.toml" serve >"$work/serve.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS "$base/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/health" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }
# Two owners of our own (the demo owner's password is only printed): one for the
# main run, one whose session the sign-out operations may end.
printf '%s\n' "$owner_pw" | "$bin" --config "$work/config.toml" admin create-user \
    --username fuzz-owner --role owner --password-stdin --reset >/dev/null
printf '%s\n' "$second_pw" | "$bin" --config "$work/config.toml" admin create-user \
    --username fuzz-signout --role owner --password-stdin --reset >/dev/null
token() {
    curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$2\"}" |
        python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])'
}
main_token=$(token fuzz-owner "$owner_pw")
signout_token=$(token fuzz-signout "$second_pw")

# Operations that can end the caller's session run last, with their own token: the
# sign-outs, and resetting or disabling a user (the stateful phase finds the caller's own
# id in GET /console/users; a reset ends that user's sessions).
signout='^/api/v1/(auth/logout|console/logout|console/sign-out-everywhere|console/users/[^/]+/(reset-password|disable))$'
st=("$venv/bin/st" --config-file "$root/tests/fuzz/schemathesis.toml" run --checks all)
# One worker: with two, hypothesis (describing its filters with ast.parse) failed a CI run
# under this machine's Python 3.11 with "SystemError: AST constructor recursion depth
# mismatch", a runtime error in the fuzzer's threads, unrelated to the API.
common=(--max-examples "$examples"
    --workers 1 --seed 20261202)
status=0
"${st[@]}" "${common[@]}" --exclude-path-regex "$signout" \
    -H "Authorization: Bearer $main_token" "$base/api/v1/openapi.json" || status=1
"${st[@]}" "${common[@]}" --include-path-regex "$signout" \
    -H "Authorization: Bearer $signout_token" "$base/api/v1/openapi.json" || status=1
if grep -q "panicked" "$work/serve.log"; then
    echo "the server panicked during fuzzing:" >&2
    grep -A5 "panicked" "$work/serve.log" >&2
    status=1
fi
exit $status
