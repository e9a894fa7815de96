#!/usr/bin/env bash
# sync/tests/run.sh — test sync/central.sql against the upstream stand-in.
#
# Starts a throwaway PostgreSQL cluster (as `nobody` when run as root), loads
# tests/fixtures/central/upstream.sql, then sync/central.sql twice (it must be
# re-runnable), then runs sync/tests/central_test.sql. The last line of output
# is "N passed, M failed"; the exit status is non-zero when anything failed.
#
#   sync/tests/run.sh              run the tests
#   MPS_EXPLAIN=1 sync/tests/run.sh   also print the plans of the pull queries
#                                     over ~20k cards (the README's evidence)
#   KEEP_CLUSTER=1 ...             leave the cluster running for inspection
#   MPS_UPSTREAM_DIR=DIR ...       load the REAL upstream SQL from a checkout
#                                  (after tests/fixtures/central/supabase-shim.sql)
#                                  instead of the fixture
#
# Server binaries come from PATH or the newest /usr/lib/postgresql/*/bin.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
upstream_sql="$repo/tests/fixtures/central/upstream.sql"
central_sql="$repo/sync/central.sql"
test_sql="$here/central_test.sql"

find_bin() {
  local name="$1" found
  if found="$(command -v "$name" 2>/dev/null)"; then
    echo "$found"
    return
  fi
  found="$(ls -1d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$found" ]; then
    echo "run.sh: cannot find $name (PATH or /usr/lib/postgresql/*/bin)" >&2
    exit 2
  fi
  echo "$found"
}

initdb_bin="$(find_bin initdb)"
pg_ctl_bin="$(find_bin pg_ctl)"
psql_bin="$(find_bin psql)"

# PostgreSQL refuses to run as root: run the server as nobody in that case.
as_db_user=()
if [ "$(id -u)" -eq 0 ]; then
  as_db_user=(runuser -u nobody --)
fi
run_db() { ${as_db_user[@]+"${as_db_user[@]}"} "$@"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/mps-edge-central.XXXXXX")"
chmod 755 "$work"
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$work"
fi

cleanup() {
  local status=$?
  if [ -n "${KEEP_CLUSTER:-}" ]; then
    echo "cluster kept: $work (port ${port:-?}); stop with: pg_ctl -D $work/data stop" >&2
    return "$status"
  fi
  if [ -f "$work/data/postmaster.pid" ]; then
    run_db "$pg_ctl_bin" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  return "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "run.sh: no free port found" >&2
  exit 2
}

run_db "$initdb_bin" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
  >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 2; }

started=""
for _ in 1 2 3; do
  port="$(free_port)"
  if run_db "$pg_ctl_bin" -D "$work/data" -l "$work/server.log" -w -t 60 \
       -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c TimeZone=UTC -c fsync=off -c max_connections=20" \
       start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ -z "$started" ]; then
  echo "run.sh: the cluster did not start:" >&2
  cat "$work/server.log" >&2 || true
  exit 2
fi

export PGTZ=UTC
psql_base=("$psql_bin" -X -q -h 127.0.0.1 -p "$port" -U postgres)
"${psql_base[@]}" -d postgres -v ON_ERROR_STOP=1 -c 'create database mps_central' >/dev/null
db=("${psql_base[@]}" -d mps_central)

passed=0
failed=0

# step NAME COMMAND... — a setup step that counts as a test; stops on failure.
step() {
  local name="$1"
  shift
  if "$@" >"$work/step.out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   - $name"
  else
    failed=$((failed + 1))
    echo "FAIL - $name"
    sed 's/^/       /' "$work/step.out"
    echo "$passed passed, $failed failed"
    exit 1
  fi
}

if [ -n "${MPS_UPSTREAM_DIR:-}" ]; then
  # The real upstream SQL from a checkout (scripts/upstream-acceptance.sh), after our
  # Supabase stand-in; nothing of it is copied into this repository.
  step "load tests/fixtures/central/supabase-shim.sql" "${db[@]}" -v ON_ERROR_STOP=1 \
    -f "$repo/tests/fixtures/central/supabase-shim.sql"
  for f in schema/mps_schema.sql rpc/mps_rpc.sql rpc/mps_identifier_rpc.sql; do
    step "load upstream $f" "${db[@]}" -v ON_ERROR_STOP=1 -f "$MPS_UPSTREAM_DIR/$f"
  done
else
  step "load tests/fixtures/central/upstream.sql" "${db[@]}" -v ON_ERROR_STOP=1 -f "$upstream_sql"
fi
# fingerprint of the upstream functions, checked after central.sql is installed
step "fingerprint upstream functions" "${db[@]}" -v ON_ERROR_STOP=1 -c "
  create schema t_snap;
  create table t_snap.upstream_functions as
  select md5(string_agg(pg_get_functiondef(p.oid), E'\n' order by p.oid)) as v
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'auth', 'mps_fixture') and p.proname not like 'edge\_%' and p.prokind = 'f';"
step "install sync/central.sql" "${db[@]}" -v ON_ERROR_STOP=1 -f "$central_sql"
step "re-install sync/central.sql (idempotent)" "${db[@]}" -v ON_ERROR_STOP=1 -f "$central_sql"

# The test file keeps going after a failed block; count PASS notices and errors.
"${db[@]}" -v ON_ERROR_STOP=0 -f "$test_sql" >"$work/test.out" 2>&1 || true

expected="$(grep -c '^-- TEST:' "$test_sql" || true)"
passes="$(grep -c 'NOTICE:  PASS: ' "$work/test.out" || true)"
errors="$(grep -c 'ERROR: ' "$work/test.out" || true)"

grep 'NOTICE:  PASS: ' "$work/test.out" | sed 's/.*NOTICE:  PASS: /ok   - /' || true
if [ "$errors" -gt 0 ]; then
  echo "FAIL - central_test.sql reported $errors error(s):"
  grep -A 3 'ERROR: ' "$work/test.out" | sed 's/^/       /'
fi
missing=$((expected - passes))
if [ "$missing" -lt "$errors" ]; then
  missing="$errors"
fi
passed=$((passed + passes))
failed=$((failed + missing))

if [ -n "${MPS_EXPLAIN:-}" ] && [ "$failed" -eq 0 ]; then
  echo
  echo "== plans of the pull queries (auto_explain, nested statements) over ~20k cards"
  "${db[@]}" -v ON_ERROR_STOP=1 <<'SQL' 2>&1 | grep -v '^$' | sed -e 's/^psql:[^ ]* //' || true
set client_min_messages = log;
insert into public.member_cards (card_type, card_no) select 'standard', '' from generate_series(1, 20000);
insert into public.member_profiles (name) select 'Explain ' || g from generate_series(1, 5000) g;
insert into public.card_qr_state (card_id, token_hash, expires_at)
  select id, 'x', now() + interval '1 hour' from public.member_cards order by id limit 5000
  on conflict do nothing;
-- half of them with an mq1 verifier (a current one: same token_hash)
insert into mps_edge.qr_fast (card_id, token_hash, verifier, expires_at)
  select card_id, token_hash, md5(card_id::text) || md5(card_id::text), expires_at
    from public.card_qr_state order by card_id limit 2500
  on conflict do nothing;
insert into mps_edge.card_site_seq (card_id, site_code, last_seq)
  select id, s, 1 from public.member_cards, unnest(array['S1', 'S2', 'S3']) s
  on conflict do nothing;
analyze;
load 'auto_explain';
set auto_explain.log_min_duration = 0;
set auto_explain.log_nested_statements = on;
set auto_explain.log_analyze = on;
set auto_explain.log_buffers = off;
set auto_explain.log_timing = off;
set auto_explain.log_level = notice;
select 'cards page' as pull, length(public.edge_pull_changes('SHOP1', 'S1', 'cards',
         (select updated_at from public.member_cards order by updated_at, id offset 10000 limit 1),
         (select id from public.member_cards order by updated_at, id offset 10000 limit 1), 500)::text) > 0;
select 'qr_states page', length(public.edge_pull_changes('SHOP1', 'S1', 'qr_states', '-infinity', null, 500)::text) > 0;
select 'members page', length(public.edge_pull_changes('SHOP1', 'S1', 'members', '-infinity', null, 500)::text) > 0;
select 'merchant', length(public.edge_pull_changes('SHOP1', 'S1', 'merchant')::text) > 0;
SQL
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
