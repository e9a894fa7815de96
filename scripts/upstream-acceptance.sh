#!/usr/bin/env bash
# Acceptance run of the edge against the REAL upstream central SQL.
#
#   scripts/upstream-acceptance.sh DIR
#
# DIR is a checkout (work tree) of the upstream repository
# superkevinyen/MemberPaymentSystem, holding schema/mps_schema.sql,
# rpc/mps_rpc.sql and rpc/mps_identifier_rpc.sql. Nothing is copied from it:
# with MPS_UPSTREAM_DIR=DIR the test clusters (tests/support/pg.rs) load our
# Supabase stand-in tests/fixtures/central/supabase-shim.sql, then upstream's
# three files straight from DIR, then sync/central.sql — instead of our fixture
# tests/fixtures/central/upstream.sql — and run the integration suites that
# meet central:
#
#   sync_e2e           the edge syncing against central (offline sales, faults,
#                      conflicts, pulls, two sites, settlements, mq1 tokens)
#   upstream_contract  twin charges (upstream's merchant_charge_by_qr vs the
#                      edge, effect by effect) and edge_issue_qr as real callers
#   central_harness    the gateway/proxy/cluster harness itself
#
# Prints one summary line per suite and exits non-zero on any failure (or when
# a suite did not run, e.g. a build error). PostgreSQL server binaries must be
# installed (scripts/test.sh installs them with apt when missing).
set -uo pipefail

usage() {
    echo "usage: $0 DIR   (DIR: a checkout of superkevinyen/MemberPaymentSystem)" >&2
    exit 2
}
[ $# -eq 1 ] || usage
[ -d "$1" ] || { echo "upstream-acceptance: $1 is not a directory" >&2; usage; }
dir="$(cd "$1" && pwd)"
cd "$(dirname "$0")/.."

missing=0
for f in schema/mps_schema.sql rpc/mps_rpc.sql rpc/mps_identifier_rpc.sql; do
    if [ ! -f "$dir/$f" ]; then
        echo "upstream-acceptance: $dir/$f is missing" >&2
        missing=1
    fi
done
[ "$missing" -eq 0 ] || { echo "upstream-acceptance: $dir is not an upstream checkout" >&2; exit 2; }

commit="unknown"
if git -C "$dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    commit="$(git -C "$dir" rev-parse HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$dir" status --porcelain -- schema rpc 2>/dev/null)" ]; then
        commit="$commit (with local changes under schema/ or rpc/)"
    fi
fi
echo "== upstream acceptance"
echo "   upstream checkout: $dir"
echo "   upstream commit:   $commit"
echo "   sha256 of the SQL loaded:"
(cd "$dir" && sha256sum schema/mps_schema.sql rpc/mps_rpc.sql rpc/mps_identifier_rpc.sql | sed 's/^/     /')

suites=(sync_e2e upstream_contract central_harness)
# central_harness runs unchanged against upstream: it exercises the gateway,
# the proxy and the cluster with upstream RPCs every central has
# (create_member_profile, user_recharge_card, ...) and our own edge_* RPCs.
# No test is excluded. (To exclude one, add `--skip <exact name>` to `skips`
# with the reason here.)
skips=()

log="$(mktemp "${TMPDIR:-/tmp}/mps-upstream-acceptance.XXXXXX")"
trap 'rm -f "$log"' EXIT

args=()
for s in "${suites[@]}"; do
    args+=(--test "$s")
done
echo "== MPS_UPSTREAM_DIR=$dir cargo test --locked --no-fail-fast ${args[*]}"
MPS_UPSTREAM_DIR="$dir" cargo test --locked --no-fail-fast "${args[@]}" \
    -- ${skips[@]+"${skips[@]}"} 2>&1 | tee "$log"
cargo_status=${PIPESTATUS[0]}

# The central-side SQL suite (sync/tests/run.sh) on the same upstream SQL.
echo
echo "== MPS_UPSTREAM_DIR=$dir bash sync/tests/run.sh"
MPS_UPSTREAM_DIR="$dir" bash sync/tests/run.sh 2>&1 | tee -a "$log" | grep -v '^ok '
sql_status=${PIPESTATUS[0]}
sql_line="$(tail -n 1 "$log")"

# One line per suite from cargo's "Running tests/<suite>.rs" + "test result:" lines.
echo
echo "== upstream acceptance summary (upstream commit $commit)"
failed_any=0
for s in "${suites[@]}"; do
    line="$(awk -v s="$s" '
        /^ *Running / { cur = ($2 == "tests/" s ".rs") }
        cur && /^test result:/ { print; exit }' "$log")"
    if [ -z "$line" ]; then
        printf '  %-18s DID NOT RUN\n' "$s"
        failed_any=1
        continue
    fi
    passed="$(sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p' <<<"$line")"
    failed="$(sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p' <<<"$line")"
    ignored="$(sed -n 's/.* \([0-9][0-9]*\) ignored.*/\1/p' <<<"$line")"
    filtered="$(sed -n 's/.* \([0-9][0-9]*\) filtered out.*/\1/p' <<<"$line")"
    verdict="ok"
    if [ "${failed:-1}" != "0" ]; then
        verdict="FAILED"
        failed_any=1
    fi
    printf '  %-18s %-6s %s passed, %s failed, %s ignored, %s excluded\n' \
        "$s" "$verdict" "${passed:-?}" "${failed:-?}" "${ignored:-0}" "${filtered:-0}"
    if [ "$verdict" = "FAILED" ]; then
        awk -v s="$s" '
            /^ *Running / { cur = ($2 == "tests/" s ".rs") }
            cur && /^    [A-Za-z_0-9:]+$/ { print "      failed: " $1 }' "$log"
    fi
done
if [ "$sql_status" -eq 0 ]; then
    printf '  %-18s %-6s %s\n' "central_sql" "ok" "$sql_line"
else
    printf '  %-18s %-6s %s\n' "central_sql" "FAILED" "$sql_line"
    failed_any=1
fi
if [ "$cargo_status" -ne 0 ] && [ "$failed_any" -eq 0 ]; then
    echo "  cargo test exited with status $cargo_status"
    failed_any=1
fi
if [ "$failed_any" -ne 0 ]; then
    echo "upstream acceptance: FAILED"
    exit 1
fi
echo "upstream acceptance: passed"
