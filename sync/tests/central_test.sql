-- =============================================================================
-- sync/tests/central_test.sql — assertions for sync/central.sql against the
-- upstream stand-in (tests/fixtures/central/upstream.sql).
--
-- Run by sync/tests/run.sh on a throwaway cluster. Every test is one DO block
-- preceded by a `-- TEST:` line; it RAISEs an exception on failure and ends
-- with `RAISE NOTICE 'PASS: ...'`. `-- SETUP` blocks prepare shared state.
-- The runner counts PASS notices and ERROR lines.
-- =============================================================================

set client_min_messages = notice;
set timezone = 'UTC';

-- SETUP: helpers (schema t), an admin, a merchant --------------------------
create schema if not exists t;
create extension if not exists dblink with schema t;

create table if not exists t.ctx (k text primary key, v text not null);

create or replace function t.admin_id() returns uuid language sql immutable
as $$ select 'a0000000-0000-4000-8000-000000000001'::uuid $$;

-- Forget every identity the connection carries (session-level settings).
create or replace function t.as_nobody() returns void language plpgsql as $$
begin
  perform set_config('app.user_role', '', false);
  perform set_config('app.user_id', '', false);
  perform set_config('app.session_id', '', false);
  perform set_config('app.merchant_id', '', false);
  perform set_config('app.member_id', '', false);
  perform set_config('request.jwt.claim.sub', '', false);
end $$;

-- A Supabase-Auth super admin (admin_users row + JWT subject).
create or replace function t.as_admin() returns void language plpgsql as $$
begin
  perform t.as_nobody();
  perform set_config('request.jwt.claim.sub', t.admin_id()::text, false);
end $$;

create or replace function t.check(p_ok boolean, p_what text) returns void language plpgsql as $$
begin
  if p_ok is not true then
    raise exception 'ASSERT FAILED: %', p_what;
  end if;
end $$;

create or replace function t.eq(p_got anyelement, p_want anyelement, p_what text) returns void
language plpgsql as $$
begin
  if p_got is distinct from p_want then
    raise exception 'ASSERT FAILED: % — got %, want %', p_what, p_got, p_want;
  end if;
end $$;

-- Runs p_sql and requires it to fail with exactly p_message.
create or replace function t.expect_error(p_sql text, p_message text) returns void
language plpgsql as $$
declare
  v_msg text;
begin
  begin
    execute p_sql;
  exception when others then
    get stacked diagnostics v_msg = message_text;
    if v_msg is distinct from p_message then
      raise exception 'ASSERT FAILED: expected error "%", got "%" from: %', p_message, v_msg, p_sql;
    end if;
    return;
  end;
  raise exception 'ASSERT FAILED: expected error "%", but it succeeded: %', p_message, p_sql;
end $$;

create or replace function t.merchant(p_code text) returns uuid language plpgsql as $$
declare
  v_id uuid;
begin
  select id into v_id from public.merchants where code = p_code;
  if v_id is null then
    perform t.as_admin();
    v_id := public.create_merchant(p_code, 'Merchant ' || p_code, null, 'mpass123');
  end if;
  return v_id;
end $$;

-- New member with password pw123456; returns the id of its standard card.
create or replace function t.new_card(p_name text, p_balance numeric default 0) returns uuid
language plpgsql as $$
declare
  v_member uuid;
  v_card uuid;
begin
  v_member := public.create_member_profile(p_name, null, null, 'pw123456');
  select id into v_card from public.member_cards where owner_member_id = v_member and card_type = 'standard';
  if p_balance > 0 then
    perform public.user_recharge_card(v_card, p_balance);
  end if;
  return v_card;
end $$;

create or replace function t.card(p_card uuid) returns public.member_cards language sql as $$
  select * from public.member_cards where id = p_card
$$;

create or replace function t.card_state(p_card uuid) returns jsonb language sql as $$
  select jsonb_build_object('balance', balance, 'points', points, 'level', level, 'discount', discount,
                            'corporate_discount', corporate_discount, 'status', status)
    from public.member_cards where id = p_card
$$;

-- Transaction columns that must agree between an upstream and an edge write.
create or replace function t.tx_shape(p_tx uuid) returns jsonb language sql as $$
  select jsonb_build_object('tx_type', tx_type, 'merchant_id', merchant_id, 'raw_amount', raw_amount,
                            'discount_applied', discount_applied, 'final_amount', final_amount,
                            'points_earned', points_earned, 'status', status, 'payment_method', payment_method,
                            'external_order_id', external_order_id, 'idempotency_key', idempotency_key,
                            'original_tx_id', original_tx_id, 'processed_by_user_id', processed_by_user_id)
    from public.transactions where id = p_tx
$$;

create or replace function t.ledger_shape(p_tx uuid) returns jsonb language sql as $$
  select jsonb_agg(jsonb_build_object('change', change, 'before', balance_before, 'after', balance_after,
                                      'reason', reason))
    from public.point_ledger where tx_id = p_tx
$$;

-- An upstream payment: admin issues the QR, the merchant logs in and charges.
create or replace function t.upstream_charge(p_code text, p_card uuid, p_raw numeric) returns uuid
language plpgsql as $$
declare
  v_qr  text;
  v_sid text;
  v_tx  uuid;
begin
  perform t.as_admin();
  select qr_plain into v_qr from public.rotate_card_qr(p_card, 900);
  perform t.as_nobody();
  v_sid := public.merchant_login(p_code, 'mpass123') ->> 'session_id';
  select tx_id into v_tx from public.merchant_charge_by_qr(p_code, v_qr, p_raw, null, '{}'::jsonb, null, v_sid);
  perform t.as_nobody();
  return v_tx;
end $$;

create or replace function t.upstream_refund(p_code text, p_orig_no text, p_amount numeric) returns uuid
language plpgsql as $$
declare
  v_sid text;
  v_tx  uuid;
begin
  perform t.as_nobody();
  v_sid := public.merchant_login(p_code, 'mpass123') ->> 'session_id';
  select refund_tx_id into v_tx from public.merchant_refund_tx(p_code, p_orig_no, p_amount, '{}'::jsonb, v_sid);
  perform t.as_nobody();
  return v_tx;
end $$;

-- A well-formed charge op as the edge sends it (amounts derived by the rules).
create or replace function t.op_charge(p_seq bigint, p_card uuid, p_raw numeric, p_discount numeric,
                                       p_tx_no text, p_sold_at timestamptz default now(),
                                       p_external_order text default null) returns jsonb
language sql as $$
  select jsonb_build_object(
    'op_id', gen_random_uuid(), 'seq', p_seq, 'op_type', 'charge', 'tx_id', gen_random_uuid(),
    'tx_no', p_tx_no, 'card_id', p_card,
    'raw_amount', to_char(p_raw, 'FM999999990.00'),
    'discount', to_char(p_discount, 'FM0.000'),
    'final_amount', to_char(round(p_raw * p_discount, 2), 'FM999999990.00'),
    'points_earned', floor(p_raw)::int,
    'created_at', to_char(p_sold_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'terminal', 'POS-1', 'operator', 'alice', 'external_order_id', p_external_order,
    'tag', jsonb_build_object('source', 'pos'))
$$;

create or replace function t.op_refund(p_seq bigint, p_card uuid, p_amount numeric, p_orig_no text,
                                       p_tx_no text, p_orig_id uuid default null) returns jsonb
language sql as $$
  select jsonb_build_object(
    'op_id', gen_random_uuid(), 'seq', p_seq, 'op_type', 'refund', 'tx_id', gen_random_uuid(),
    'tx_no', p_tx_no, 'card_id', p_card,
    'raw_amount', to_char(p_amount, 'FM999999990.00'), 'discount', '1.000',
    'final_amount', to_char(p_amount, 'FM999999990.00'), 'points_earned', 0,
    'created_at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'terminal', 'POS-1', 'operator', 'alice', 'external_order_id', null,
    'tag', jsonb_build_object('reason', 'customer'),
    'original_tx_no', p_orig_no, 'original_tx_id', p_orig_id)
$$;

-- A charge op carrying the proof of a QR token the till read: a fresh code for
-- the card (legacy via rotate_card_qr, or mq1 via edge_issue_qr), issued by an admin.
create or replace function t.fresh_qr(p_card uuid, p_mq1 boolean default false) returns text
language plpgsql as $$
declare
  v_qr text;
begin
  perform t.as_admin();
  if p_mq1 then
    select qr_plain into v_qr from public.edge_issue_qr(p_card, 900);
  else
    select qr_plain into v_qr from public.rotate_card_qr(p_card, 900);
  end if;
  perform t.as_nobody();
  return v_qr;
end $$;

create or replace function t.with_proof(p_op jsonb, p_token text, p_hash text default null) returns jsonb
language sql as $$
  select p_op || jsonb_build_object('qr_proof', jsonb_build_object(
    'token', p_token,
    'token_hash', coalesce(p_hash, (select q.token_hash from public.card_qr_state q
                                     where q.card_id = (p_op ->> 'card_id')::uuid))))
$$;

-- A settlement op as the edge sends it (total and count derived from the parts).
create or replace function t.op_settlement(p_seq bigint, p_no text, p_start timestamptz, p_end timestamptz,
                                           p_pay_count int, p_pay numeric, p_ref_count int, p_ref numeric,
                                           p_mode text default 'realtime') returns jsonb
language sql as $$
  select jsonb_build_object(
    'op_id', gen_random_uuid(), 'seq', p_seq, 'op_type', 'settlement', 'settlement_id', gen_random_uuid(),
    'settlement_no', p_no, 'mode', p_mode,
    'period_start', to_char(p_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'period_end', to_char(p_end at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'payment_count', p_pay_count, 'payment_amount', to_char(p_pay, 'FM999999990.00'),
    'refund_count', p_ref_count, 'refund_amount', to_char(p_ref, 'FM999999990.00'),
    'total_amount', to_char(p_pay - p_ref, 'FM999999990.00'),
    'tx_count', p_pay_count + p_ref_count,
    'created_at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'operator', 'owner')
$$;

create or replace function t.op_settlement_void(p_seq bigint, p_settlement jsonb, p_reason text default 'wrong day')
returns jsonb language sql as $$
  select jsonb_build_object(
    'op_id', gen_random_uuid(), 'seq', p_seq, 'op_type', 'settlement_void',
    'settlement_id', p_settlement -> 'settlement_id', 'settlement_no', p_settlement -> 'settlement_no',
    'reason', p_reason,
    'voided_at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'operator', 'owner')
$$;

-- A card freeze or unfreeze op as the edge sends it.
create or replace function t.op_card(p_seq bigint, p_card uuid, p_type text, p_reason text default 'reported lost')
returns jsonb language sql as $$
  select jsonb_build_object(
    'op_id', gen_random_uuid(), 'seq', p_seq, 'op_type', p_type, 'card_id', p_card,
    'card_no', (select card_no from public.member_cards where id = p_card), 'reason', p_reason,
    'operator', 'manager', 'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
$$;

-- A recharge (counter top-up) op as the edge sends it.
create or replace function t.op_recharge(p_seq bigint, p_card uuid, p_amount numeric, p_tx_no text,
                                         p_method text default 'cash', p_made_at timestamptz default now(),
                                         p_approved_by text default null) returns jsonb
language sql as $$
  select jsonb_build_object(
    'op_id', gen_random_uuid(), 'seq', p_seq, 'op_type', 'recharge', 'tx_id', gen_random_uuid(),
    'tx_no', p_tx_no, 'card_id', p_card,
    'raw_amount', to_char(p_amount, 'FM999999990.00'), 'discount', '1.000',
    'final_amount', to_char(p_amount, 'FM999999990.00'), 'points_earned', 0,
    'payment_method', p_method,
    'created_at', to_char(p_made_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'terminal', 'POS-1', 'operator', 'alice', 'approved_by', p_approved_by, 'external_order_id', null,
    'tag', jsonb_build_object('source', 'till'))
$$;

-- Pages through a pull kind until has_more is false.
create or replace function t.pull_all(p_code text, p_site text, p_kind text, p_limit int,
                                      p_after_ts timestamptz default null, p_after_id uuid default null)
returns jsonb language plpgsql as $$
declare
  v_rows  jsonb := '[]'::jsonb;
  v_page  jsonb;
  v_ts    timestamptz := p_after_ts;
  v_id    uuid := p_after_id;
  v_pages int := 0;
begin
  loop
    v_page := public.edge_pull_changes(p_code, p_site, p_kind, v_ts, v_id, p_limit);
    v_pages := v_pages + 1;
    perform t.check(jsonb_array_length(v_page -> 'rows') <= p_limit, 'page not larger than the limit');
    v_rows := v_rows || (v_page -> 'rows');
    v_ts := (v_page ->> 'next_after_ts')::timestamptz;
    v_id := (v_page ->> 'next_after_id')::uuid;
    exit when not (v_page -> 'has_more')::boolean;
    perform t.check(v_pages < 100000, 'paging terminates');
  end loop;
  return jsonb_build_object('rows', v_rows, 'pages', v_pages, 'next_after_ts', v_ts, 'next_after_id', v_id);
end $$;

create or replace function t.card_row(p_code text, p_site text, p_card uuid) returns jsonb
language sql as $$
  select r from jsonb_array_elements(
           (t.pull_all(p_code, p_site, 'cards', 5000) -> 'rows')) r
   where r ->> 'id' = p_card::text
$$;

create or replace function t.result_of(p_batch_result jsonb, p_index int) returns jsonb
language sql as $$ select p_batch_result -> 'results' -> p_index $$;

do $setup$
begin
  insert into auth.users (id, email) values (t.admin_id(), 'admin@example.test') on conflict do nothing;
  insert into public.admin_users (auth_user_id, name) values (t.admin_id(), 'Test Admin') on conflict do nothing;
  perform t.merchant('SHOP1');
  perform t.merchant('SHOP2');
  perform t.as_nobody();
end
$setup$;

-- TEST: schema facts (enums, constraint names, sequences, RLS, versions)
do $test$
begin
  perform t.eq(enum_range(null::public.card_type)::text, '{standard,voucher,corporate}', 'card_type order');
  perform t.eq(enum_range(null::public.card_status)::text, '{active,inactive,lost,expired,suspended,closed}', 'card_status order');
  perform t.eq(enum_range(null::public.tx_type)::text, '{payment,refund,recharge}', 'tx_type order');
  perform t.eq(enum_range(null::public.tx_status)::text, '{processing,completed,failed,cancelled,refunded}', 'tx_status order');
  perform t.eq(enum_range(null::public.pay_method)::text, '{balance,cash,wechat,alipay}', 'pay_method order');
  perform t.eq(enum_range(null::public.settlement_status)::text, '{pending,settled,failed,paid}', 'settlement_status order');
  perform t.eq((select count(*)::int from pg_constraint
                 where conname in ('ck_card_balance_nonneg', 'ck_card_points_nonneg', 'ck_card_fixed_discount_range',
                                   'transactions_check', 'settlements_check')), 5, 'named constraints');
  perform t.check(to_regclass('public.uq_tx_tx_no') is not null, 'uq_tx_tx_no index');
  perform t.eq((select count(*)::int from pg_class where relkind = 'S' and relname in ('seq_member_no', 'seq_card_no', 'seq_tx_no')), 3, 'sequences');
  perform t.eq((select count(*)::int from public.membership_levels), 4, 'seed levels');
  perform t.eq(public.now_utc(), now(), 'now_utc() is true time under UTC');
  perform t.check((select bool_and(relrowsecurity) from pg_class
                    where oid in ('mps_edge.applied_ops'::regclass, 'mps_edge.card_site_seq'::regclass,
                                  'mps_edge.exceptions'::regclass, 'mps_edge.qr_fast'::regclass)), 'RLS on mps_edge tables');
  perform t.eq((select count(*)::int from pg_policy p join pg_class c on c.oid = p.polrelid
                  join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'mps_edge'), 0, 'no policies on mps_edge');
  perform t.eq((public.edge_sync_version() ->> 'version')::int, 1, 'edge_sync_version().version');
  perform t.eq(public.edge_sync_version() -> 'features', '["mq1", "settlements", "self_test", "site_keys", "proofs", "heartbeat", "mq2", "settlement_void", "card_freeze", "recharge"]'::jsonb, 'edge_sync_version().features');
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(public.edge_sync_version()) k),
               array['features', 'installed_at', 'version'], 'edge_sync_version() fields');
  perform t.check((public.edge_sync_version() ->> 'installed_at')::timestamptz <= now(), 'installed_at');
  raise notice 'PASS: schema facts';
end
$test$;

-- TEST: central.sql is idempotent and leaves upstream functions unchanged
do $test$
begin
  perform t.eq((select count(*)::int from mps_edge.schema_versions), 1, 'one install record');
  perform t.eq((select count(*)::int from pg_trigger where tgname in ('edge_card_version', 'edge_qr_state_touch')), 2,
               'each trigger exactly once');
  perform t.eq((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'public' and p.proname like 'edge\_%'), 14,
               'fourteen edge_* RPCs (seven for the edge, for members'' apps edge_issue_qr, edge_enroll_offline_qr and edge_revoke_offline_qr, and for head office edge_register_site, edge_revoke_site, edge_list_sites, edge_set_site_options), no overloads');
  perform t.check(not exists (select 1 from public.member_cards c
                               where not exists (select 1 from mps_edge.card_versions v where v.card_id = c.id)),
                  'every card has a version');
  perform t.check(not exists (select 1 from pg_proc p
                                join pg_namespace n on n.oid = p.pronamespace
                               where n.nspname = 'public' and p.proname like 'edge\_%'
                                 and (p.proconfig is null or not exists (select 1 from unnest(p.proconfig) x
                                                                           where x like 'search_path=%'))),
                  'edge_* functions pin search_path');
  -- except the one-line SQL helpers written to be inlined into their callers
  -- (a SET clause would stop the inlining); those qualify every name and are
  -- not SECURITY DEFINER
  perform t.check(not exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                               where n.nspname = 'mps_edge'
                                 and p.proname not in ('try_uuid', 'try_bigint', 'require')
                                 and (p.proconfig is null or not exists (select 1 from unnest(p.proconfig) x
                                                                           where x like 'search_path=%'))),
                  'mps_edge functions pin search_path');
  perform t.eq((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'mps_edge' and p.proname in ('try_uuid', 'try_bigint', 'require')
                   and p.prolang = (select oid from pg_language where lanname = 'sql')
                   and not p.prosecdef and p.proconfig is null), 3,
               'inlined helpers: SQL, no SET, not SECURITY DEFINER');
  -- run.sh snapshots the upstream function definitions before installing
  perform t.eq((select md5(string_agg(pg_get_functiondef(p.oid), E'\n' order by p.oid))
                  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname in ('public', 'auth', 'mps_fixture') and p.proname not like 'edge\_%'
                   and p.prokind = 'f'),
               (select v from t_snap.upstream_functions), 'upstream functions unchanged');
  raise notice 'PASS: central.sql idempotent, upstream untouched';
end
$test$;

-- TEST: number formats M########, STD/VCH/COR########, PAY/REF/RCG##########
do $test$
declare
  v_member uuid;
  v_card   uuid;
  v_vch    uuid;
  v_cor    uuid;
  v_tx     record;
  v_pay    uuid;
  v_ref    uuid;
begin
  perform t.as_admin();
  v_member := public.create_member_profile('Format Fred', '0900000001', 'fred@example.test', 'pw123456');
  perform t.check((select member_no ~ '^M[0-9]{8}$' from public.member_profiles where id = v_member), 'member_no format');
  select id into v_card from public.member_cards where owner_member_id = v_member;
  perform t.check((select card_no ~ '^STD[0-9]{8}$' and level = 0 and discount = 1.000 and points = 0
                          and balance = 0 and status = 'active' from public.member_cards where id = v_card),
                  'auto-issued standard card');
  perform t.check(exists (select 1 from public.card_bindings where card_id = v_card and member_id = v_member
                                                                and role = 'owner'), 'owner binding');
  v_vch := public.create_voucher_card(v_member, 'Voucher', 10, null);
  v_cor := public.create_corporate_card(v_member, 'Corp', 0, 0.800);
  perform t.check((select card_no ~ '^VCH[0-9]{8}$' from public.member_cards where id = v_vch), 'voucher card_no');
  perform t.check((select card_no ~ '^COR[0-9]{8}$' and discount = 0.800 and fixed_discount = 0.800
                     from public.member_cards where id = v_cor), 'corporate card_no and discount');
  -- one shared card sequence: numbers grow across types
  perform t.check((select substr(card_no, 4)::int from public.member_cards where id = v_cor)
                  > (select substr(card_no, 4)::int from public.member_cards where id = v_vch), 'shared card sequence');
  -- BEFORE INSERT trigger fills an empty card_no
  insert into public.member_cards (card_type, card_no) values ('standard', '') returning id into v_card;
  perform t.check((select card_no ~ '^STD[0-9]{8}$' from public.member_cards where id = v_card), 'trigger fills card_no');
  select * into v_tx from public.user_recharge_card(v_card, 100);
  perform t.check(v_tx.tx_no ~ '^RCG[0-9]{10}$', 'recharge tx_no format');
  v_pay := t.upstream_charge('SHOP1', v_card, 10);
  perform t.check((select tx_no ~ '^PAY[0-9]{10}$' from public.transactions where id = v_pay), 'payment tx_no');
  v_ref := t.upstream_refund('SHOP1', (select tx_no from public.transactions where id = v_pay), 1);
  perform t.check((select tx_no ~ '^REF[0-9]{10}$' from public.transactions where id = v_ref), 'refund tx_no');
  perform t.check(exists (select 1 from public.tx_registry where tx_id in (v_tx.tx_id)), 'tx_registry row');
  raise notice 'PASS: number formats';
end
$test$;

-- TEST: upstream charge via member QR + merchant session gives the contract's numbers
do $test$
declare
  v_member uuid;
  v_card   uuid;
  v_login  jsonb;
  v_qr     record;
  v_sid    text;
  v_r1     record;
  v_r2     record;
  v_c      public.member_cards;
  v_hash   text;
begin
  perform t.as_admin();
  v_member := public.create_member_profile('Upstream Ann', '0900000101', null, 'annpass1');
  select id into v_card from public.member_cards where owner_member_id = v_member;
  perform public.user_recharge_card(v_card, 3000);

  -- the member logs in and issues a QR for their own card
  perform t.as_nobody();
  v_login := public.member_login('0900000101', 'annpass1');
  perform t.eq(length(v_login ->> 'session_id'), 44, 'session id is 44 base64 chars');
  select * into v_qr from public.rotate_card_qr(v_card, 900, v_login ->> 'session_id');
  perform t.eq(length(v_qr.qr_plain), 44, 'QR is 44 chars');
  perform t.eq(right(v_qr.qr_plain, 1), '=', 'QR ends with =');
  select token_hash into v_hash from public.card_qr_state where card_id = v_card;
  perform t.check(v_hash like '$2a$06$%' and length(v_hash) = 60, 'bcrypt cost 6 hash');
  perform t.check(v_qr.qr_expires_at between now() + interval '899 seconds' and now() + interval '901 seconds', 'TTL 900 s');
  perform t.eq(public.validate_qr_plain(v_qr.qr_plain), v_card, 'validate_qr_plain resolves the card');

  -- merchants may not issue QR codes; without a merchant session no charge
  v_sid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  perform t.expect_error(format('select public.rotate_card_qr(%L, 900, %L)', v_card, v_sid),
                         'PERMISSION_DENIED: 商戶不能生成 QR 碼');
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 10)', 'SHOP1', v_qr.qr_plain),
                         'NOT_AUTHORIZED_FOR_THIS_MERCHANT');
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 10, null, %L, null, %L)',
                                'SHOP1', 'short', '{}', v_sid), 'INVALID_QR');
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 0, null, %L, null, %L)',
                                'SHOP1', v_qr.qr_plain, '{}', v_sid), 'INVALID_PRICE');

  -- 1000.50 at level 0: discount 1.000, 1000 points, level-up to 1 (0.950)
  select * into v_r1 from public.merchant_charge_by_qr('SHOP1', v_qr.qr_plain, 1000.50, null,
                                                        '{"source":"test"}'::jsonb, null, v_sid);
  perform t.eq(v_r1.final_amount, 1000.50, 'first final');
  perform t.eq(v_r1.discount, 1.000, 'first discount');
  perform t.eq(v_r1.card_id, v_card, 'charged card');
  v_c := t.card(v_card);
  perform t.eq(v_c.balance, 1999.50::numeric, 'balance after first');
  perform t.eq(v_c.points, 1000, 'points after first');
  perform t.eq(v_c.level, 1, 'level-up to 1');
  perform t.eq(v_c.discount, 0.950::numeric, 'level discount 0.950');
  perform t.eq(t.ledger_shape(v_r1.tx_id),
               '[{"change":1000,"before":0,"after":1000,"reason":"payment_earn"}]'::jsonb, 'ledger row');
  perform t.check((select raw_amount = 1000.50 and points_earned = 1000 and status = 'completed'
                          and payment_method = 'balance' and tag = '{"source":"test"}'::jsonb
                          and merchant_id = t.merchant('SHOP1') and reason is null
                     from public.transactions where id = v_r1.tx_id), 'payment row');

  -- the same QR again (reusable): 10.30 × 0.950 = 9.785 → 9.79 (half away from zero)
  select * into v_r2 from public.merchant_charge_by_qr('SHOP1', v_qr.qr_plain, 10.30, null, '{}'::jsonb, null, v_sid);
  perform t.eq(v_r2.discount, 0.950, 'level discount applies from the next payment');
  perform t.eq(v_r2.final_amount, 9.79, 'rounding half away from zero');
  v_c := t.card(v_card);
  perform t.eq(v_c.balance, 1989.71::numeric, 'balance after second');
  perform t.eq(v_c.points, 1010, 'points after second');
  perform t.check(exists (select 1 from audit.event_log where action = 'PAYMENT' and object_id = v_r2.tx_id
                            and context = jsonb_build_object('merchant', 'SHOP1', 'final', 9.79)), 'PAYMENT audit');

  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 5000, null, %L, null, %L)',
                                'SHOP1', v_qr.qr_plain, '{}', v_sid), 'INSUFFICIENT_BALANCE');
  -- a rotation invalidates the old token
  perform t.as_admin();
  perform public.rotate_card_qr(v_card, 900);
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 1, null, %L, null, %L)',
                                'SHOP1', v_qr.qr_plain, '{}', v_sid), 'QR_EXPIRED_OR_INVALID');
  raise notice 'PASS: upstream charge numbers';
end
$test$;

-- TEST: upstream stand-in follows the contract (bindings, refunds, settlement, auth quirks)
do $test$
declare
  v_m1      uuid;
  v_m2      uuid;
  v_std1    uuid;
  v_std2    uuid;
  v_cor     uuid;
  v_vch     uuid;
  v_qr      text;
  v_sid     text;
  v_r       record;
  v_pay     record;
  v_rcg     record;
  v_ref     record;
  v_set     uuid;
  v_s       public.settlements;
  v_from    timestamptz := now() - interval '1 minute';
begin
  perform t.as_admin();
  v_m1 := public.create_member_profile('Corp Owner', '0900000401', null, 'ownerpw1');
  v_m2 := public.create_member_profile('Corp User', '0900000402', null, 'short');   -- password dropped
  select id into v_std1 from public.member_cards where owner_member_id = v_m1 and card_type = 'standard';
  select id into v_std2 from public.member_cards where owner_member_id = v_m2 and card_type = 'standard';
  perform t.expect_error($$select public.member_login('0900000402', 'short')$$, 'PASSWORD_NOT_SET');
  perform t.expect_error($$select public.member_login('0900000401', 'wrong-pw')$$, 'INVALID_PASSWORD');
  perform t.expect_error($$select public.member_login('nobody-here', 'x')$$, 'MEMBER_NOT_FOUND');

  -- corporate card 0.800: the bound member's standard card inherits it
  v_cor := public.create_corporate_card(v_m1, 'ACME', 0, 0.800);
  perform public.set_card_binding_password(v_cor, 'bindpw1');
  perform t.expect_error(format('select public.bind_member_to_card(%L, %L, %L, %L)', v_cor, v_m2, 'member', 'nope'),
                         'INVALID_BINDING_PASSWORD');
  perform t.expect_error(format('select public.bind_member_to_card(%L, %L)', v_std1, v_m2), 'CARD_TYPE_NOT_SHAREABLE');
  perform public.bind_member_to_card(v_cor, v_m2, 'member', 'bindpw1');
  perform t.eq((t.card(v_std2)).corporate_discount, 0.800::numeric, 'corporate discount inherited');
  perform t.eq((t.card(v_std1)).corporate_discount, null::numeric, 'the owner does not get it');

  -- contract worked example: 10.01 at 0.800 → 8.01, 10 points
  perform public.user_recharge_card(v_std2, 200);
  select qr_plain into v_qr from public.rotate_card_qr(v_std2, 900);
  v_sid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  select * into v_pay from public.merchant_charge_by_qr('SHOP1', v_qr, 10.01, null, '{}'::jsonb, null, v_sid);
  perform t.eq(v_pay.final_amount, 8.01, 'corporate final');
  perform t.eq(v_pay.discount, 0.800, 'corporate discount');
  perform t.eq((select points_earned from public.transactions where id = v_pay.tx_id), 10, 'points from raw');
  -- unrounded input: raw stored 10.03, final from 10.03125 × 0.8 = 8.025 → 8.03
  select * into v_r from public.merchant_charge_by_qr('SHOP1', v_qr, 10.03125, null, '{}'::jsonb, null, v_sid);
  perform t.eq((select raw_amount from public.transactions where id = v_r.tx_id), 10.03::numeric, 'raw rounded by column');
  perform t.eq(v_r.final_amount, 8.03, 'final from the unrounded input');

  -- contract refund sequence on an 80.00 payment
  select * into v_pay from public.merchant_charge_by_qr('SHOP1', v_qr, 100, null, '{}'::jsonb, null, v_sid);
  perform t.eq(v_pay.final_amount, 80.00, '100 at 0.800');
  select * into v_ref from public.merchant_refund_tx('SHOP1', v_pay.tx_no, 30, '{}'::jsonb, v_sid);
  perform t.eq(v_ref.refunded_amount, 30::numeric, 'refund echoes the input');
  perform t.expect_error(format('select * from public.merchant_refund_tx(%L, %L, 60, %L, %L)', 'SHOP1', v_pay.tx_no, '{}', v_sid),
                         'REFUND_EXCEEDS_REMAINING');
  perform public.merchant_refund_tx('SHOP1', v_pay.tx_no, 50, '{}'::jsonb, v_sid);
  perform t.eq((select status::text from public.transactions where id = v_pay.tx_id), 'refunded', 'fully refunded');
  perform t.expect_error(format('select * from public.merchant_refund_tx(%L, %L, 0.01, %L, %L)', 'SHOP1', v_pay.tx_no, '{}', v_sid),
                         'REFUND_EXCEEDS_REMAINING');
  perform t.expect_error(format('select * from public.merchant_refund_tx(%L, %L, 1, %L, %L)', 'SHOP1', v_ref.refund_tx_no, '{}', v_sid),
                         'ONLY_COMPLETED_PAYMENT_REFUNDABLE');
  select * into v_rcg from public.user_recharge_card(v_std2, 1);
  perform t.expect_error(format('select * from public.merchant_refund_tx(%L, %L, 1, %L, %L)', 'SHOP1', v_rcg.tx_no, '{}', v_sid),
                         'ORIGINAL_TX_NOT_FOUND');
  perform t.expect_error(format('select * from public.merchant_refund_tx(%L, %L, 1, %L, %L)', 'SHOP2', v_pay.tx_no, '{}',
                                public.merchant_login('SHOP2', 'mpass123') ->> 'session_id'), 'ORIGINAL_TX_NOT_FOUND');
  perform t.eq((select original_tx_id from public.transactions where id = v_ref.refund_tx_id), null::uuid, 'original_tx_id null');
  perform t.eq((select reason from public.transactions where id = v_ref.refund_tx_id), v_pay.tx_no, 'linked by reason');

  -- detail reader
  perform t.eq((public.get_transaction_detail(v_pay.tx_no)).id, v_pay.tx_id, 'get_transaction_detail');
  perform t.expect_error($$select public.get_transaction_detail('NOPE')$$, 'TX_NOT_FOUND');

  -- settlement: payments minus refunds over [start, end), count of both
  v_set := public.generate_settlement(t.merchant('SHOP2'), 'realtime', v_from, now() + interval '1 minute');
  select * into v_s from public.settlements where id = v_set;
  perform t.eq(v_s.total_amount, 0.00::numeric, 'no SHOP2 sales');
  v_set := public.generate_settlement(t.merchant('SHOP1'), 't_plus_1', v_from, now() + interval '1 minute');
  select * into v_s from public.settlements where id = v_set;
  perform t.eq(v_s.total_amount,
               (select sum(case when tx_type = 'payment' then final_amount else -final_amount end)
                  from public.transactions where merchant_id = t.merchant('SHOP1') and created_at >= v_from
                   and status in ('completed', 'refunded')), 'settlement total');
  perform t.eq(v_s.status::text, 'pending', 'settlement pending');
  perform t.eq(v_s.payload, '{}'::jsonb, 'payload empty');

  -- voucher and corporate cards cannot pay; vouchers cannot be recharged
  perform t.as_admin();
  v_vch := public.create_voucher_card(v_m1, 'V', 20, null);
  perform t.expect_error(format('select * from public.user_recharge_card(%L, 5)', v_vch), 'UNSUPPORTED_CARD_TYPE_FOR_RECHARGE');
  select qr_plain into v_qr from public.rotate_card_qr(v_vch, 900);
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 1)', 'SHOP1', v_qr),
                         'UNSUPPORTED_CARD_TYPE_FOR_PAYMENT');
  select qr_plain into v_qr from public.rotate_card_qr(v_cor, 900);
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 1)', 'SHOP1', v_qr),
                         'CORPORATE_CARD_CANNOT_PAY');

  -- freeze: charge refused, refunds still credit; unfreeze reactivates
  perform public.freeze_card(v_std2);
  perform t.eq((t.card(v_std2)).status::text, 'inactive', 'frozen = inactive');
  select qr_plain into v_qr from public.rotate_card_qr(v_std2, 900);   -- a QR is still issued
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 1)', 'SHOP1', v_qr), 'CARD_NOT_ACTIVE');
  perform t.expect_error(format('select * from public.user_recharge_card(%L, 5)', v_std2), 'CARD_NOT_FOUND_OR_INACTIVE');
  perform public.unfreeze_card(v_std2);
  perform t.eq((t.card(v_std2)).status::text, 'active', 'unfrozen');

  -- auth quirks: freeze needs super_admin; points only for manual_adjust
  perform t.as_nobody();
  perform t.expect_error(format('select public.freeze_card(%L)', v_std2), 'NOT_AUTHENTICATED');
  v_sid := public.member_login('0900000401', 'ownerpw1') ->> 'session_id';
  perform t.expect_error(format('select public.freeze_card(%L)', v_std2),
                         'PERMISSION_DENIED: Required super_admin, but user is member');
  perform t.as_nobody();
  perform public.update_points_and_level(v_std1, 6000, 'promo');
  perform t.eq((t.card(v_std1)).level, 2, 'anonymous points change (contract §3.11)');
  perform t.eq((t.card(v_std1)).discount, 0.900::numeric, 'level 2 discount');
  perform t.expect_error(format('select public.update_points_and_level(%L, 1)', v_std1), 'NOT_AUTHENTICATED');

  -- unbinding a corporate card clears the discount; the last owner stays
  perform public.unbind_member_from_card(v_cor, v_m2);
  perform t.eq((t.card(v_std2)).corporate_discount, null::numeric, 'discount cleared');
  perform t.expect_error(format('select public.unbind_member_from_card(%L, %L)', v_cor, v_m1), 'CANNOT_REMOVE_LAST_OWNER');
  perform t.expect_error(format('select public.unbind_member_from_card(%L, %L)', gen_random_uuid(), v_m1),
                         'CANNOT_REMOVE_LAST_OWNER');
  perform t.as_nobody();
  raise notice 'PASS: upstream stand-in follows the contract';
end
$test$;

-- TEST: edge_apply_batch charge + refunds = upstream RPCs for the same sales
do $test$
declare
  v_a     uuid;
  v_b     uuid;
  v_up1   uuid;
  v_up2   uuid;
  v_op1   jsonb;
  v_op2   jsonb;
  v_res   jsonb;
  v_sold  timestamptz := date_trunc('second', now()) - interval '1 hour';
  v_eno1  uuid;
  v_eno2  uuid;
  v_upref uuid;
  v_edref uuid;
  v_tx    public.transactions;
begin
  perform t.as_admin();
  v_a := t.new_card('Eq A', 500);
  v_b := t.new_card('Eq B', 500);
  perform public.update_points_and_level(v_a, 990, 'manual_adjust');
  perform public.update_points_and_level(v_b, 990, 'manual_adjust');
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'cards start equal');

  -- sale 1 at level 0 (20.30 → 20 points → level 1)
  v_up1 := t.upstream_charge('SHOP1', v_a, 20.30);
  v_op1 := t.op_charge(1, v_b, 20.30, 1.000, 'PAY-SEQ-000001', v_sold);
  v_res := public.edge_apply_batch('SEQ', 'SHOP1', jsonb_build_array(v_op1));
  perform t.eq(v_res ->> 'version', '1', 'result version');
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'edge charge applied');
  perform t.eq(t.result_of(v_res, 0) -> 'reason', 'null'::jsonb, 'no reason');
  perform t.eq(t.result_of(v_res, 0) ->> 'tx_no', 'PAY-SEQ-000001', 'tx_no echoed');
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'card state after sale 1');
  perform t.eq((t.card(v_b)).level, 1, 'edge level-up');
  v_eno1 := (v_op1 ->> 'tx_id')::uuid;
  perform t.eq(t.tx_shape(v_eno1), t.tx_shape(v_up1), 'transaction row after sale 1');
  perform t.eq(t.ledger_shape(v_eno1), t.ledger_shape(v_up1), 'ledger after sale 1');
  select * into v_tx from public.transactions where id = v_eno1;
  perform t.eq(v_tx.tx_no, 'PAY-SEQ-000001', 'edge tx_no kept');
  perform t.eq(v_tx.created_at, v_sold, 'created_at = sale time');
  perform t.eq(v_tx.tag ->> 'source', 'pos', 'op tag kept');
  perform t.eq(v_tx.tag -> 'edge',
               jsonb_build_object('site', 'SEQ', 'terminal', 'POS-1', 'operator', 'alice', 'offline', true,
                                  'op_id', v_op1 -> 'op_id', 'seq', 1), 'edge tag block');
  perform t.check(exists (select 1 from public.tx_registry where tx_no = 'PAY-SEQ-000001' and tx_id = v_eno1),
                  'tx_registry row');
  perform t.check(exists (select 1 from audit.event_log where action = 'PAYMENT' and object_id = v_eno1
                            and context ->> 'merchant' = 'SHOP1' and (context ->> 'final')::numeric = 20.30),
                  'PAYMENT audit row');
  -- the result's card object is the pull's card object
  perform t.eq(t.result_of(v_res, 0) -> 'card', t.card_row('SHOP1', 'SEQ', v_b), 'result card = pulled card');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'balance', '479.70', 'balance string with scale');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'discount', '0.950', 'discount string with scale');

  -- sale 2 at level 1: 10.30 × 0.950 → 9.79 on both paths
  v_up2 := t.upstream_charge('SHOP1', v_a, 10.30);
  v_op2 := t.op_charge(2, v_b, 10.30, 0.950, 'PAY-SEQ-000002');
  perform t.eq(v_op2 ->> 'final_amount', '9.79', 'op final');
  v_res := public.edge_apply_batch('SEQ', 'SHOP1', jsonb_build_array(v_op2));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'sale 2 applied');
  v_eno2 := (v_op2 ->> 'tx_id')::uuid;
  perform t.eq(t.tx_shape(v_eno2), t.tx_shape(v_up2), 'transaction row after sale 2');
  perform t.eq(t.ledger_shape(v_eno2), t.ledger_shape(v_up2), 'ledger after sale 2');
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'card state after sale 2');

  -- partial refund 5.00 of sale 1
  v_upref := t.upstream_refund('SHOP1', (select tx_no from public.transactions where id = v_up1), 5);
  v_res := public.edge_apply_batch('SEQ', 'SHOP1',
             jsonb_build_array(t.op_refund(3, v_b, 5, 'PAY-SEQ-000001', 'REF-SEQ-000003', v_eno1)));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'edge refund applied');
  select id into v_edref from public.transactions where tx_no = 'REF-SEQ-000003';
  perform t.eq(t.tx_shape(v_edref), t.tx_shape(v_upref), 'refund row');
  perform t.eq((select reason from public.transactions where id = v_edref), 'PAY-SEQ-000001', 'refund reason = original tx_no');
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'card state after partial refund');
  perform t.eq(t.tx_shape(v_eno1), t.tx_shape(v_up1), 'originals still completed');
  perform t.check(exists (select 1 from audit.event_log where action = 'REFUND' and object_id = v_edref), 'REFUND audit');
  perform t.eq((select count(*)::int from public.point_ledger where tx_id = v_edref), 0, 'no ledger row for refunds');

  -- refund the remaining 15.30: originals become refunded
  perform t.upstream_refund('SHOP1', (select tx_no from public.transactions where id = v_up1), 15.30);
  v_res := public.edge_apply_batch('SEQ', 'SHOP1',
             jsonb_build_array(t.op_refund(4, v_b, 15.30, 'PAY-SEQ-000001', 'REF-SEQ-000004')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'full refund applied');
  perform t.eq(t.tx_shape(v_eno1), t.tx_shape(v_up1), 'originals refunded on both');
  perform t.eq(t.tx_shape(v_eno1) ->> 'status', 'refunded', 'original refunded');
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'card state after full refund (points kept)');

  -- nothing left: both paths refuse
  perform t.expect_error(format('select t.upstream_refund(%L, %L, 0.01)', 'SHOP1',
                                (select tx_no from public.transactions where id = v_up1)), 'REFUND_EXCEEDS_REMAINING');
  v_res := public.edge_apply_batch('SEQ', 'SHOP1',
             jsonb_build_array(t.op_refund(5, v_b, 0.01, 'PAY-SEQ-000001', 'REF-SEQ-000005')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'rejected', 'over-refund rejected');
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'REFUND_EXCEEDS_REMAINING', 'over-refund reason');
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'card state unchanged by the rejection');
  raise notice 'PASS: edge charge/refund = upstream';
end
$test$;

-- TEST: a repeated batch returns duplicate and changes nothing
do $test$
declare
  v_card   uuid;
  v_batch  jsonb;
  v_first  jsonb;
  v_second jsonb;
  v_before jsonb;
  v_after  jsonb;
  i        int;
begin
  perform t.as_admin();
  v_card := t.new_card('Dup D', 100);
  perform t.as_nobody();
  v_batch := jsonb_build_array(
    t.op_charge(1, v_card, 30, 1.000, 'PAY-SDUP-000001'),
    t.op_charge(2, v_card, 500, 1.000, 'PAY-SDUP-000002'),          -- rejected: balance
    t.op_refund(3, v_card, 10, 'PAY-SDUP-000001', 'REF-SDUP-000003'));
  v_first := public.edge_apply_batch('SDUP', 'SHOP1', v_batch);
  perform t.eq((select string_agg(r ->> 'status', ',') from jsonb_array_elements(v_first -> 'results') r),
               'applied,rejected,applied', 'first run statuses');

  select jsonb_build_object(
           'tx', (select count(*) from public.transactions), 'ledger', (select count(*) from public.point_ledger),
           'registry', (select count(*) from public.tx_registry), 'audit', (select count(*) from audit.event_log),
           'idem', (select count(*) from public.idempotency_registry),
           'ops', (select count(*) from mps_edge.applied_ops), 'exc', (select count(*) from mps_edge.exceptions),
           'seq', (select jsonb_agg(s order by s.site_code) from mps_edge.card_site_seq s where s.card_id = v_card),
           'card', t.card_state(v_card),
           'version', (select version from mps_edge.card_versions where card_id = v_card))
    into v_before;

  v_second := public.edge_apply_batch('SDUP', 'SHOP1', v_batch);
  for i in 0 .. 2 loop
    perform t.eq(t.result_of(v_second, i) ->> 'status', 'duplicate', format('op %s duplicate', i));
    perform t.eq(t.result_of(v_second, i) -> 'reason', t.result_of(v_first, i) -> 'reason', 'stored reason');
    perform t.eq(t.result_of(v_second, i) -> 'exception_id', t.result_of(v_first, i) -> 'exception_id', 'stored exception id');
    perform t.eq(t.result_of(v_second, i) -> 'tx_no', t.result_of(v_first, i) -> 'tx_no', 'stored tx_no');
  end loop;
  perform t.eq(t.result_of(v_second, 2) -> 'card', t.result_of(v_first, 2) -> 'card', 'current card state');

  select jsonb_build_object(
           'tx', (select count(*) from public.transactions), 'ledger', (select count(*) from public.point_ledger),
           'registry', (select count(*) from public.tx_registry), 'audit', (select count(*) from audit.event_log),
           'idem', (select count(*) from public.idempotency_registry),
           'ops', (select count(*) from mps_edge.applied_ops), 'exc', (select count(*) from mps_edge.exceptions),
           'seq', (select jsonb_agg(s order by s.site_code) from mps_edge.card_site_seq s where s.card_id = v_card),
           'card', t.card_state(v_card),
           'version', (select version from mps_edge.card_versions where card_id = v_card))
    into v_after;
  perform t.eq(v_after, v_before, 'nothing changed by the repeat');
  perform t.eq((v_after -> 'card' ->> 'balance')::numeric, 80.00, 'balance 100 - 30 + 10');

  -- the same op twice inside one batch is applied once
  v_batch := jsonb_build_array(t.op_charge(4, v_card, 1, 1.000, 'PAY-SDUP-000004'));
  v_batch := v_batch || v_batch;
  v_second := public.edge_apply_batch('SDUP', 'SHOP1', v_batch);
  perform t.eq(t.result_of(v_second, 0) ->> 'status', 'applied', 'first copy applied');
  perform t.eq(t.result_of(v_second, 1) ->> 'status', 'duplicate', 'second copy duplicate');
  perform t.eq((t.card(v_card)).balance, 79.00::numeric, 'charged once');
  -- the edge never writes the global idempotency registry
  perform t.eq((select count(*)::int from public.idempotency_registry), (v_before ->> 'idem')::int, 'no idempotency rows');
  raise notice 'PASS: duplicate batch';
end
$test$;

-- TEST: rejected ops become exceptions while the rest of the batch applies
do $test$
declare
  v_x      uuid;
  v_f      uuid;
  v_y      uuid;
  v_e      uuid;
  v_v      uuid;
  v_c      uuid;
  v_member uuid;
  v_ops    jsonb;
  v_res    jsonb;
  v_bad    jsonb;
  v_exc    jsonb;
  v_list   jsonb;
  v_want   text[];
  v_status text;
  i        int;
begin
  perform t.as_admin();
  v_x := t.new_card('Mix X', 100);
  v_f := t.new_card('Mix F', 100);
  v_y := t.new_card('Mix Y', 5);
  v_e := t.new_card('Mix E', 100);
  v_member := (select owner_member_id from public.member_cards where id = v_x);
  v_v := public.create_voucher_card(v_member, 'Voucher', 50, null);
  v_c := public.create_corporate_card(v_member, 'Corp', 50, 0.900);
  update public.member_cards set expires_at = now() - interval '1 day' where id = v_e;

  -- F pays once, then head office freezes it
  v_res := public.edge_apply_batch('SMIX', 'SHOP1', jsonb_build_array(t.op_charge(1, v_f, 10, 1.000, 'PAY-SMIX-000001')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'F paid before the freeze');
  perform public.freeze_card(v_f);
  perform t.as_nobody();

  v_bad := t.op_charge(8, v_x, 10, 1.000, 'PAY-SMIX-000008');
  v_bad := jsonb_set(v_bad, '{final_amount}', '"9.99"');
  v_ops := jsonb_build_array(
    t.op_charge(2, v_x, 10, 1.000, 'PAY-SMIX-000002'),                                   -- 0 applied
    t.op_charge(3, v_f, 10, 1.000, 'PAY-SMIX-000003'),                                   -- 1 frozen
    t.op_charge(4, v_y, 10, 1.000, 'PAY-SMIX-000004'),                                   -- 2 overspent
    t.op_charge(5, v_x, 20, 1.000, 'PAY-SMIX-000005'),                                   -- 3 applied
    t.op_charge(6, v_v, 10, 1.000, 'PAY-SMIX-000006'),                                   -- 4 voucher
    t.op_charge(7, v_c, 10, 1.000, 'PAY-SMIX-000007'),                                   -- 5 corporate
    v_bad,                                                                               -- 6 inconsistent
    t.op_charge(9, gen_random_uuid(), 10, 1.000, 'PAY-SMIX-000009'),                     -- 7 unknown card
    t.op_charge(10, v_e, 10, 1.000, 'PAY-SMIX-000010'),                                  -- 8 expired at sale
    t.op_charge(11, v_e, 10, 1.000, 'PAY-SMIX-000011', now() - interval '2 days'),       -- 9 sold before expiry
    t.op_refund(12, v_f, 3, 'PAY-SMIX-000001', 'REF-SMIX-000012'),                       -- 10 refund to frozen card
    jsonb_set(t.op_charge(13, v_x, 1, 1.000, 'X-SMIX-000013'), '{op_type}', '"bogus"'),  -- 11 unknown op type
    t.op_charge(14, v_x, 1, 1.000, 'PAY-SMIX-000002'),                                   -- 12 tx_no already used
    t.op_charge(15, v_x, 5, 1.000, 'PAY-SMIX-000015', now(), 'ORD-1'),                   -- 13 applied + order
    t.op_charge(16, v_x, 5, 1.000, 'PAY-SMIX-000016', now(), 'ORD-1'),                   -- 14 order again
    t.op_refund(17, v_x, 1, 'PAY-NOPE', 'REF-SMIX-000017'),                              -- 15 no original
    t.op_charge(18, v_x, 0, 1.000, 'PAY-SMIX-000018'),                                   -- 16 raw 0
    jsonb_set(t.op_charge(19, v_x, 1, 1.000, 'PAY-SMIX-000019'), '{created_at}', '"yesterday-ish"')); -- 17 bad time
  v_res := public.edge_apply_batch('SMIX', 'SHOP1', v_ops);

  v_want := array['applied:', 'rejected:CARD_NOT_ACTIVE', 'rejected:INSUFFICIENT_BALANCE', 'applied:',
                  'rejected:UNSUPPORTED_CARD_TYPE_FOR_PAYMENT', 'rejected:CORPORATE_CARD_CANNOT_PAY',
                  'rejected:EDGE_INVALID_OPERATION', 'rejected:CARD_NOT_FOUND', 'rejected:CARD_EXPIRED', 'applied:',
                  'applied:', 'rejected:EDGE_INVALID_OPERATION', 'rejected:EDGE_INVALID_OPERATION', 'applied:',
                  'rejected:EDGE_DUPLICATE_EXTERNAL_ORDER', 'rejected:ORIGINAL_TX_NOT_FOUND',
                  'rejected:EDGE_INVALID_OPERATION', 'rejected:EDGE_INVALID_OPERATION'];
  for i in 0 .. array_length(v_want, 1) - 1 loop
    v_status := (t.result_of(v_res, i) ->> 'status') || ':' || coalesce(t.result_of(v_res, i) ->> 'reason', '');
    perform t.eq(v_status, v_want[i + 1], format('op #%s', i));
    perform t.eq(t.result_of(v_res, i) ->> 'op_id', v_ops -> i ->> 'op_id', format('op #%s id', i));
    if t.result_of(v_res, i) ->> 'status' = 'rejected' then
      select mps_edge.exception_json(e) into v_exc from mps_edge.exceptions e where e.op_id = (v_ops -> i ->> 'op_id')::uuid;
      perform t.check(v_exc is not null, format('op #%s has an exceptions row', i));
      perform t.eq(v_exc ->> 'id', t.result_of(v_res, i) ->> 'exception_id', format('op #%s exception id', i));
      perform t.eq(v_exc ->> 'reason', t.result_of(v_res, i) ->> 'reason', format('op #%s exception reason', i));
      perform t.eq(v_exc -> 'payload', v_ops -> i, format('op #%s payload', i));
      perform t.eq(v_exc ->> 'merchant_id', t.merchant('SHOP1')::text, format('op #%s merchant', i));
      perform t.eq(v_exc ->> 'site_code', 'SMIX', format('op #%s site', i));
      perform t.check(v_exc -> 'resolved_at' = 'null'::jsonb, format('op #%s open', i));
    else
      perform t.eq(t.result_of(v_res, i) -> 'exception_id', 'null'::jsonb, format('op #%s no exception', i));
    end if;
  end loop;
  perform t.check(t.result_of(v_res, 6) -> 'card' ->> 'id' = v_x::text, 'rejected op still returns the card');
  perform t.eq(t.result_of(v_res, 7) -> 'card', 'null'::jsonb, 'unknown card → null card');

  perform t.eq((t.card(v_x)).balance, 65.00::numeric, 'X: 100 - 10 - 20 - 5');
  perform t.eq((t.card(v_f)).balance, 93.00::numeric, 'F: 100 - 10 + 3 (refund ignores status)');
  perform t.eq((t.card(v_y)).balance, 5.00::numeric, 'Y untouched');
  perform t.eq((t.card(v_e)).balance, 90.00::numeric, 'E: sale before expiry applied');
  perform t.eq((t.card(v_v)).balance, 50.00::numeric, 'voucher untouched');
  perform t.check(not exists (select 1 from public.transactions where tx_no in ('PAY-SMIX-000003', 'PAY-SMIX-000004',
                                'PAY-SMIX-000016', 'X-SMIX-000013')), 'no rows for rejected ops');
  perform t.check(exists (select 1 from public.merchant_order_registry where external_order_id = 'ORD-1'
                            and merchant_id = t.merchant('SHOP1')), 'order registered');

  -- listing and resolving
  v_list := public.edge_list_exceptions('SMIX');
  perform t.eq(jsonb_array_length(v_list -> 'exceptions'), 13, 'open exceptions listed');
  v_exc := public.edge_resolve_exception((t.result_of(v_res, 1) ->> 'exception_id')::uuid, 'manager-1', 'card was frozen; customer paid cash');
  perform t.eq(v_exc ->> 'resolved_by', 'manager-1', 'resolved_by');
  perform t.check(v_exc ->> 'resolved_at' is not null, 'resolved_at set');
  perform t.eq(jsonb_array_length(public.edge_list_exceptions('SMIX') -> 'exceptions'), 12, 'one fewer open');
  perform t.eq(jsonb_array_length(public.edge_list_exceptions('SMIX', false) -> 'exceptions'), 13, 'all listed');
  v_exc := public.edge_resolve_exception((t.result_of(v_res, 1) ->> 'exception_id')::uuid, 'someone-else', 'late');
  perform t.eq(v_exc ->> 'resolved_by', 'manager-1', 'first resolution wins');
  perform t.expect_error(format('select public.edge_resolve_exception(%L, %L, null)', gen_random_uuid(), 'x'),
                         'EDGE_EXCEPTION_NOT_FOUND');
  perform t.eq(jsonb_array_length(public.edge_list_exceptions('SOTHER') -> 'exceptions'), 0, 'per site');

  -- an inactive or unknown merchant rejects every op
  perform t.as_admin();
  perform public.admin_suspend_merchant(t.merchant('SHOP2'));
  perform t.as_nobody();
  v_res := public.edge_apply_batch('SMIX', 'SHOP2', jsonb_build_array(t.op_charge(20, v_x, 1, 1.000, 'PAY-SMIX-000020')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'MERCHANT_NOT_FOUND_OR_INACTIVE', 'inactive merchant');
  v_res := public.edge_apply_batch('SMIX', 'NO-SUCH', jsonb_build_array(t.op_charge(21, v_x, 1, 1.000, 'PAY-SMIX-000021')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'MERCHANT_NOT_FOUND_OR_INACTIVE', 'unknown merchant');
  perform t.as_admin();
  perform public.admin_activate_merchant(t.merchant('SHOP2'));
  perform t.as_nobody();
  raise notice 'PASS: rejections and exceptions';
end
$test$;

-- TEST: malformed batches fail as a whole and record nothing
do $test$
declare
  v_card uuid;
  v_ops  bigint := (select count(*) from mps_edge.applied_ops);
begin
  perform t.as_admin();
  v_card := t.new_card('Batch B', 10);
  perform t.expect_error(format('select public.edge_apply_batch(%L, %L, %L)', 'SBAD', 'SHOP1',
                                jsonb_build_array(t.op_charge(1, v_card, 1, 1.000, 'PAY-SBAD-1'), '{"seq": 2}'::jsonb)),
                         'EDGE_INVALID_BATCH');
  perform t.expect_error(format('select public.edge_apply_batch(%L, %L, %L)', 'SBAD', 'SHOP1', '{}'), 'EDGE_INVALID_BATCH');
  -- the service role without a site key must name the site
  perform t.eq(public.edge_apply_batch('', 'SHOP1', '[]') ->> 'code', 'EDGE_INVALID_REQUEST', 'no site: refused');
  perform t.eq((select count(*) from mps_edge.applied_ops), v_ops, 'nothing recorded');
  perform t.eq((t.card(v_card)).balance, 10.00::numeric, 'nothing charged');
  perform t.eq(public.edge_apply_batch('SBAD', 'SHOP1', '[]'), '{"version": 1, "results": []}'::jsonb, 'empty batch');
  raise notice 'PASS: malformed batches';
end
$test$;

-- TEST: a settlement op stores the edge's settlement centrally (row, payload, audit) and repeats as duplicate
do $test$
declare
  v_card  uuid;
  v_m     uuid := t.merchant('SHOP3');
  v_from  timestamptz := date_trunc('second', now()) - interval '1 hour';
  v_to    timestamptz := date_trunc('second', now()) + interval '1 hour';
  v_set   jsonb;
  v_odd   jsonb;
  v_res   jsonb;
  v_s     public.settlements;
  v_audit audit.event_log;
  v_gen   uuid;
begin
  perform t.as_admin();
  v_card := t.new_card('Settle S', 100);
  perform t.as_nobody();
  -- the site's sales reach central first (outbox order), then its settlement
  v_set := t.op_settlement(4, 'STL-SSTL-000001', v_from, v_to, 2, 50, 1, 5);
  v_res := public.edge_apply_batch('SSTL', 'SHOP3', jsonb_build_array(
             t.op_charge(1, v_card, 30, 1.000, 'PAY-SSTL-000001'),
             t.op_charge(2, v_card, 20, 1.000, 'PAY-SSTL-000002'),
             t.op_refund(3, v_card, 5, 'PAY-SSTL-000001', 'REF-SSTL-000003'),
             v_set));
  perform t.eq(t.result_of(v_res, 3) ->> 'status', 'applied', 'settlement applied');
  perform t.eq(t.result_of(v_res, 3) -> 'card', 'null'::jsonb, 'a settlement has no card');
  perform t.eq(t.result_of(v_res, 3) -> 'exception_id', 'null'::jsonb, 'no exception');
  perform t.eq(t.result_of(v_res, 3) -> 'reason', 'null'::jsonb, 'no reason');
  perform t.eq(t.result_of(v_res, 2) -> 'card' ->> 'edge_seq', '3', 'refund result: edge_seq 3');

  select * into v_s from public.settlements where id = (v_set ->> 'settlement_id')::uuid;
  perform t.check(found, 'settlements row with the edge''s id');
  perform t.eq(v_s.merchant_id, v_m, 'merchant');
  perform t.eq(v_s.mode::text, 'realtime', 'mode');
  perform t.eq(v_s.period_start, v_from, 'period_start');
  perform t.eq(v_s.period_end, v_to, 'period_end');
  perform t.eq(v_s.total_amount, 45.00::numeric, 'total = 50.00 - 5.00');
  perform t.eq(v_s.total_tx_count, 3, 'count = 2 payments + 1 refund');
  perform t.eq(v_s.status::text, 'pending', 'status pending');
  perform t.eq(v_s.created_at, (v_set ->> 'created_at')::timestamptz, 'created_at = the edge''s');
  perform t.eq(v_s.payload, jsonb_build_object('edge', jsonb_build_object(
                 'site', 'SSTL', 'op_id', v_set -> 'op_id', 'seq', 4, 'settlement_no', 'STL-SSTL-000001',
                 'operator', 'owner', 'payment_count', 2, 'payment_amount', 50.00,
                 'refund_count', 1, 'refund_amount', 5.00)),
               'payload.edge (central agrees: no central_* keys)');
  -- central's own computation, as generate_settlement would make it, agrees
  v_gen := public.generate_settlement(v_m, 'realtime', v_from, v_to);
  select * into v_s from public.settlements where id = v_gen;
  perform t.eq((v_s.total_amount, v_s.total_tx_count)::text, '(45.00,3)', 'generate_settlement agrees');
  delete from public.settlements where id = v_s.id;

  select * into v_audit from audit.event_log
   where action = 'SETTLEMENT_GENERATE' and object_id = (v_set ->> 'settlement_id')::uuid;
  perform t.check(found, 'audit row');
  perform t.eq(v_audit.object_type, 'settlements', 'audit object type');
  perform t.eq(v_audit.actor_user_id, null::uuid, 'audit actor null');
  perform t.eq(v_audit.context, jsonb_build_object('merchant_id', v_m, 'total', 45.00, 'count', 3,
                 'edge', jsonb_build_object('site', 'SSTL', 'op_id', v_set -> 'op_id')), 'audit context');

  perform t.eq((select status || ':' || op_type from mps_edge.applied_ops where op_id = (v_set ->> 'op_id')::uuid),
               'applied:settlement', 'registry row');
  perform t.eq((select last_seq from mps_edge.card_site_seq where card_id = v_card and site_code = 'SSTL'),
               3::bigint, 'card_site_seq untouched by the settlement');

  -- the same op again: duplicate, nothing new
  v_res := public.edge_apply_batch('SSTL', 'SHOP3', jsonb_build_array(v_set));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'duplicate', 'repeat is duplicate');
  perform t.eq(t.result_of(v_res, 0) -> 'reason', 'null'::jsonb, 'duplicate of an applied op');
  perform t.eq(t.result_of(v_res, 0) -> 'card', 'null'::jsonb, 'duplicate: no card');
  perform t.eq((select count(*)::int from public.settlements where id = (v_set ->> 'settlement_id')::uuid), 1, 'one row');
  perform t.eq((select count(*)::int from audit.event_log
                 where action = 'SETTLEMENT_GENERATE' and object_id = (v_set ->> 'settlement_id')::uuid), 1, 'one audit row');

  -- figures central does not share are kept as sent, with central's next to them
  v_odd := t.op_settlement(5, 'STL-SSTL-000002', v_from - interval '1 day', v_from, 1, 12.5, 0, 0, 't_plus_1');
  v_res := public.edge_apply_batch('SSTL', 'SHOP3', jsonb_build_array(v_odd));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'a differing settlement still applies');
  select * into v_s from public.settlements where id = (v_odd ->> 'settlement_id')::uuid;
  perform t.eq((v_s.total_amount, v_s.total_tx_count, v_s.mode)::text, '(12.50,1,t_plus_1)', 'the edge''s figures');
  perform t.eq(v_s.payload -> 'edge' -> 'central_total', '0.00'::jsonb, 'central_total');
  perform t.eq(v_s.payload -> 'edge' -> 'central_count', '0'::jsonb, 'central_count');
  raise notice 'PASS: settlement op applied, duplicate on repeat';
end
$test$;

-- TEST: a negative or malformed settlement is rejected into an exception; the batch goes on
do $test$
declare
  v_card uuid;
  v_m    uuid := t.merchant('SHOP3');
  v_from timestamptz := date_trunc('second', now()) - interval '10 days';
  v_neg  jsonb;
  v_bad  jsonb;
  v_mode jsonb;
  v_nan  jsonb;
  v_ops  jsonb;
  v_res  jsonb;
  v_exc  jsonb;
  v_sets bigint := (select count(*) from public.settlements);
begin
  perform t.as_admin();
  v_card := t.new_card('Settle N', 100);
  perform t.as_nobody();
  -- refunds of earlier sales exceed the period's payments
  v_neg  := t.op_settlement(11, 'STL-SNEG-000001', v_from, v_from + interval '1 day', 0, 0, 1, 5);
  v_bad  := jsonb_set(t.op_settlement(12, 'STL-SNEG-000002', v_from, v_from + interval '1 day', 1, 10, 0, 0),
                      '{total_amount}', '"9.00"');
  v_mode := t.op_settlement(13, 'STL-SNEG-000003', v_from, v_from + interval '1 day', 1, 10, 0, 0, 'weekly');
  -- NaN everywhere passes every comparison (NaN = NaN in numeric)
  v_nan  := t.op_settlement(15, 'STL-SNEG-000004', v_from + interval '2 days', v_from + interval '3 days', 1, 10, 0, 0)
              || '{"payment_amount": "NaN", "total_amount": "NaN"}'::jsonb;
  v_ops  := jsonb_build_array(v_neg, v_bad, v_mode, t.op_charge(14, v_card, 10, 1.000, 'PAY-SNEG-000014'), v_nan);
  v_res  := public.edge_apply_batch('SNEG', 'SHOP3', v_ops);

  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'rejected', 'negative total rejected');
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'SETTLEMENT_NEGATIVE_TOTAL', 'reason');
  perform t.eq(t.result_of(v_res, 0) -> 'card', 'null'::jsonb, 'no card');
  perform t.eq(t.result_of(v_res, 1) ->> 'reason', 'EDGE_INVALID_OPERATION', 'total <> payments - refunds');
  perform t.eq(t.result_of(v_res, 2) ->> 'reason', 'EDGE_INVALID_OPERATION', 'unknown mode');
  perform t.eq(t.result_of(v_res, 3) ->> 'status', 'applied', 'the following charge still applies');
  perform t.eq(t.result_of(v_res, 4) ->> 'reason', 'EDGE_INVALID_OPERATION', 'NaN amounts');
  perform t.eq((t.card(v_card)).balance, 90.00::numeric, 'charged');
  perform t.eq((select count(*) from public.settlements), v_sets, 'no settlements rows');

  select mps_edge.exception_json(e) into v_exc from mps_edge.exceptions e where e.op_id = (v_neg ->> 'op_id')::uuid;
  perform t.check(v_exc is not null, 'exceptions row');
  perform t.eq(v_exc ->> 'id', t.result_of(v_res, 0) ->> 'exception_id', 'exception id');
  perform t.eq(v_exc ->> 'reason', 'SETTLEMENT_NEGATIVE_TOTAL', 'exception reason');
  perform t.eq(v_exc ->> 'op_type', 'settlement', 'exception op_type');
  perform t.eq(v_exc -> 'payload', v_neg, 'exception payload');
  perform t.eq(v_exc ->> 'merchant_id', v_m::text, 'exception merchant');
  perform t.eq(v_exc -> 'card_id', 'null'::jsonb, 'exception card null');
  perform t.check(v_exc ->> 'detail' like '%-5.00%', 'detail names the total: ' || coalesce(v_exc ->> 'detail', ''));
  perform t.eq((select count(*)::int from audit.event_log where action = 'SETTLEMENT_GENERATE'
                   and context -> 'edge' ->> 'site' = 'SNEG'), 0, 'no audit rows');
  perform t.eq(jsonb_array_length(public.edge_list_exceptions('SNEG') -> 'exceptions'), 4, 'four open exceptions');

  -- the rejection is remembered
  v_res := public.edge_apply_batch('SNEG', 'SHOP3', jsonb_build_array(v_neg));
  perform t.eq(t.result_of(v_res, 0) ->> 'status' || ':' || (t.result_of(v_res, 0) ->> 'reason'),
               'duplicate:SETTLEMENT_NEGATIVE_TOTAL', 'repeat is a duplicate with the stored reason');
  perform t.eq(jsonb_array_length(public.edge_list_exceptions('SNEG') -> 'exceptions'), 4, 'no new exception');
  raise notice 'PASS: negative and malformed settlements rejected';
end
$test$;

-- TEST: a settlement void marks central's row failed with the edge's reason, once; the
-- period can be settled again; other sites' and paid settlements are refused
do $test$
declare
  v_m    uuid := t.merchant('SHOP3');
  v_from timestamptz := date_trunc('second', now()) - interval '20 days';
  v_set  jsonb;
  v_void jsonb;
  v_again jsonb;
  v_paid jsonb;
  v_res  jsonb;
  v_s    public.settlements;
begin
  perform t.as_nobody();
  v_set  := t.op_settlement(1, 'STL-SVOID-000001', v_from, v_from + interval '1 day', 1, 10, 0, 0);
  v_void := t.op_settlement_void(2, v_set, '  counted the wrong day ');
  v_res  := public.edge_apply_batch('SVOID', 'SHOP3', jsonb_build_array(v_set, v_void));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'settlement applied');
  perform t.eq(t.result_of(v_res, 1) ->> 'status', 'applied', 'void applied');
  perform t.eq(t.result_of(v_res, 1) -> 'card', 'null'::jsonb, 'void: no card');
  select * into v_s from public.settlements where id = (v_set ->> 'settlement_id')::uuid;
  perform t.eq(v_s.status::text, 'failed', 'status failed');
  perform t.eq(v_s.payload -> 'edge' -> 'void' ->> 'reason', 'counted the wrong day', 'reason kept, trimmed');
  perform t.eq(v_s.payload -> 'edge' -> 'void' ->> 'status_before', 'pending', 'status before');
  perform t.eq(v_s.payload -> 'edge' ->> 'settlement_no', 'STL-SVOID-000001', 'edge figures kept');
  perform t.eq((select count(*)::int from audit.event_log where action = 'SETTLEMENT_VOID'
                  and object_id = v_s.id and context -> 'edge' ->> 'site' = 'SVOID'), 1, 'one audit row');
  perform t.eq((select status || ':' || op_type from mps_edge.applied_ops where op_id = (v_void ->> 'op_id')::uuid),
               'applied:settlement_void', 'registry row');

  -- the same void again: duplicate, no second audit row
  v_res := public.edge_apply_batch('SVOID', 'SHOP3', jsonb_build_array(v_void));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'duplicate', 'repeat is duplicate');
  perform t.eq((select count(*)::int from audit.event_log where action = 'SETTLEMENT_VOID' and object_id = v_s.id),
               1, 'still one audit row');

  -- the period settled again: a second row, pending
  v_again := t.op_settlement(3, 'STL-SVOID-000002', v_from, v_from + interval '1 day', 1, 10, 0, 0);
  v_res := public.edge_apply_batch('SVOID', 'SHOP3', jsonb_build_array(v_again));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 're-settled');
  perform t.eq((select status::text from public.settlements where id = (v_again ->> 'settlement_id')::uuid),
               'pending', 'new row pending');

  -- another site cannot void it; a paid settlement cannot be voided
  v_res := public.edge_apply_batch('SOTHER', 'SHOP3', jsonb_build_array(t.op_settlement_void(1, v_again)));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'SETTLEMENT_NOT_FOUND', 'other site refused');
  update public.settlements set status = 'paid' where id = (v_again ->> 'settlement_id')::uuid;
  v_paid := t.op_settlement_void(4, v_again);
  v_res := public.edge_apply_batch('SVOID', 'SHOP3', jsonb_build_array(v_paid));
  perform t.eq(t.result_of(v_res, 0) ->> 'status' || ':' || (t.result_of(v_res, 0) ->> 'reason'),
               'rejected:SETTLEMENT_ALREADY_PAID', 'paid refused');
  perform t.eq((select status::text from public.settlements where id = (v_again ->> 'settlement_id')::uuid),
               'paid', 'paid row untouched');
  v_res := public.edge_apply_batch('SVOID', 'SHOP3',
             jsonb_build_array(jsonb_set(t.op_settlement_void(5, v_set), '{reason}', '" "')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'EDGE_INVALID_OPERATION', 'blank reason refused');
  raise notice 'PASS: settlement void applied once, re-settle allowed, foreign and paid refused';
end
$test$;

-- TEST: an edge's card freeze does to the card what upstream's freeze_card does (status,
-- audit row), once; later charges are refused; only the freezing site may lift it; a
-- card head office froze stays frozen; lost cards, blank reasons, unknown cards refused
do $test$
declare
  v_twin  uuid := t.new_card('freeze twin', 100);
  v_card  uuid := t.new_card('freeze edge', 100);
  v_ho    uuid := t.new_card('freeze head office', 100);
  v_lost  uuid := t.new_card('freeze lost', 100);
  v_f     jsonb;
  v_res   jsonb;
  v_ev    audit.event_log;
  v_twin_ev audit.event_log;
begin
  perform t.merchant('SHOP3');
  -- upstream's own call, as head office would make it
  perform t.as_admin();
  perform public.freeze_card(v_twin);
  perform t.as_nobody();

  v_f := t.op_card(1, v_card, 'card_freeze');
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(v_f));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'freeze applied');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'status', 'inactive', 'result card frozen');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'edge_seq', '1', 'edge_seq advanced');
  perform t.eq((t.card(v_card)).status::text, (t.card(v_twin)).status::text, 'same status as freeze_card');
  select * into v_ev from audit.event_log where object_id = v_card and action = 'CARD_FREEZE';
  select * into v_twin_ev from audit.event_log where object_id = v_twin and action = 'CARD_FREEZE';
  perform t.eq(v_ev.object_type, v_twin_ev.object_type, 'same audit object type');
  perform t.eq(v_ev.context -> 'edge' ->> 'site', 'SFRZ', 'audit names the site');
  perform t.eq(v_ev.context ->> 'reason', 'reported lost', 'audit keeps the reason');

  -- the same op again: duplicate, still one audit row
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(v_f));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'duplicate', 'repeat is duplicate');
  perform t.eq((select count(*)::int from audit.event_log where object_id = v_card and action = 'CARD_FREEZE'),
               1, 'one audit row');

  -- a charge after the freeze is refused as upstream refuses it
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_charge(2, v_card, 10, 1, 'PAY-SFRZ-000002')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'CARD_NOT_ACTIVE', 'charge on a frozen card refused');

  -- another site cannot lift it
  v_res := public.edge_apply_batch('SOTHERF', 'SHOP3', jsonb_build_array(t.op_card(1, v_card, 'card_unfreeze', 'found')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'EDGE_CARD_NOT_FROZEN_HERE', 'other site refused');
  perform t.eq((t.card(v_card)).status::text, 'inactive', 'still frozen');

  -- the freezing site lifts it: as unfreeze_card does
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(3, v_card, 'card_unfreeze', 'found it')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'unfreeze applied');
  perform t.as_admin();
  perform public.unfreeze_card(v_twin);
  perform t.as_nobody();
  perform t.eq((t.card(v_card)).status::text, (t.card(v_twin)).status::text, 'same status as unfreeze_card');
  perform t.eq((t.card(v_card)).status::text, 'active', 'active again');
  perform t.eq((select count(*)::int from audit.event_log where object_id = v_card and action = 'CARD_UNFREEZE'
                  and context -> 'edge' ->> 'site' = 'SFRZ'), 1, 'unfreeze audited');
  perform t.eq((select count(*)::int from mps_edge.card_freezes where card_id = v_card), 0, 'freeze record gone');
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_charge(4, v_card, 10, 1, 'PAY-SFRZ-000004')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'charge after unfreeze applied');

  -- head office froze it: an edge freeze changes nothing and claims nothing, so the
  -- edge cannot lift head office's freeze
  perform t.as_admin();
  perform public.freeze_card(v_ho);
  perform t.as_nobody();
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(5, v_ho, 'card_freeze')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'freeze of a frozen card: nothing to do');
  perform t.eq((select count(*)::int from audit.event_log where object_id = v_ho and action = 'CARD_FREEZE'),
               1, 'only head office''s audit row');
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(6, v_ho, 'card_unfreeze', 'found')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'EDGE_CARD_NOT_FROZEN_HERE', 'head office''s freeze stays');
  perform t.eq((t.card(v_ho)).status::text, 'inactive', 'still frozen by head office');

  -- a lost card is not frozen (an unfreeze would then reactivate it)
  update public.member_cards set status = 'lost' where id = v_lost;
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(7, v_lost, 'card_freeze')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'CARD_NOT_ACTIVE', 'lost card refused');
  perform t.eq((t.card(v_lost)).status::text, 'lost', 'still lost');

  -- frozen here, then marked lost by head office: the unfreeze leaves it lost
  update public.member_cards set status = 'active' where id = v_lost;
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(8, v_lost, 'card_freeze')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'frozen');
  update public.member_cards set status = 'lost' where id = v_lost;
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(9, v_lost, 'card_unfreeze', 'found')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'unfreeze of a since-lost card: nothing to do');
  perform t.eq((t.card(v_lost)).status::text, 'lost', 'never reactivated');

  -- malformed ops
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3', jsonb_build_array(t.op_card(10, v_card, 'card_freeze', '  ')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'EDGE_INVALID_OPERATION', 'blank reason refused');
  perform t.eq((t.card(v_card)).status::text, 'active', 'nothing written');
  v_res := public.edge_apply_batch('SFRZ', 'SHOP3',
             jsonb_build_array(jsonb_set(t.op_card(11, v_card, 'card_freeze'), '{card_id}', to_jsonb(gen_random_uuid()))));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'CARD_NOT_FOUND', 'unknown card refused');
  raise notice 'PASS: card freeze as freeze_card, once; only the freezing site unfreezes; head office''s freeze and lost cards kept';
end
$test$;

-- TEST: an edge's recharge writes what upstream's user_recharge_card writes (transaction,
-- card, tx_registry, audit row), with the edge's number and time; a replay credits once
do $test$
declare
  v_a     uuid;
  v_b     uuid;
  v_up    record;
  v_op    jsonb;
  v_op2   jsonb;
  v_res   jsonb;
  v_made  timestamptz := date_trunc('second', now()) - interval '1 hour';
  v_tx_a  public.transactions;
  v_tx_b  public.transactions;
  v_ev_a  audit.event_log;
  v_ev_b  audit.event_log;
  v_bal   numeric;
  v_idem  bigint;
  v_ord   bigint;
  v_skip  text[] := array['id', 'tx_no', 'card_id', 'tag', 'created_at', 'updated_at'];
begin
  perform t.merchant('SHOP4');
  perform t.as_admin();
  v_a := t.new_card('Recharge twin A', 120);
  v_b := t.new_card('Recharge twin B', 120);
  -- level 1 (discount 0.950): a recharge must leave points, level and discount alone
  perform public.update_points_and_level(v_a, 1200, 'manual_adjust');
  perform public.update_points_and_level(v_b, 1200, 'manual_adjust');
  perform t.as_nobody();
  perform t.eq(t.card_state(v_a), t.card_state(v_b), 'cards start equal');
  v_bal  := (t.card(v_a)).balance;
  v_idem := (select count(*) from public.idempotency_registry);
  v_ord  := (select count(*) from public.merchant_order_registry);

  -- upstream's own call, as a member's app makes it (no login needed, contract §3.10)
  select * into v_up from public.user_recharge_card(v_a, 500.00, 'cash', '{"source": "app"}'::jsonb);
  v_op := t.op_recharge(1, v_b, 500.00, 'RCG-SRCG-0000000001', 'cash', v_made, 'boss');
  v_res := public.edge_apply_batch('SRCG', 'SHOP4', jsonb_build_array(v_op));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'edge recharge applied: ' || v_res::text);
  perform t.eq(t.result_of(v_res, 0) ->> 'tx_no', 'RCG-SRCG-0000000001', 'tx_no echoed');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'balance', to_char(v_bal + 500, 'FM999999990.00'),
               'result card: topped up');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'edge_seq', '1', 'result card: edge_seq advanced');
  perform t.eq(t.result_of(v_res, 0) -> 'card', t.card_row('SHOP4', 'SRCG', v_b), 'result card = pulled card');

  -- the card: +500.00 on both; points, level and discount unchanged
  perform t.eq((t.card(v_a)).balance, v_bal + 500.00, 'upstream: +500.00');
  perform t.eq((t.card(v_b)).balance, v_bal + 500.00, 'edge: +500.00');
  perform t.eq(t.card_state(v_b), t.card_state(v_a), 'card after the recharge (balance, points, level, discount, status)');
  perform t.eq(((t.card(v_b)).points, (t.card(v_b)).level, (t.card(v_b)).discount)::text, '(1200,1,0.950)',
               'no points, no level change');
  perform t.eq((t.card(v_b)).updated_at, (t.card(v_a)).updated_at, 'card updated_at: upstream''s clock');

  -- the transaction: every column but the ids, numbers, tag and times is upstream's
  select * into v_tx_a from public.transactions where id = v_up.tx_id;
  select * into v_tx_b from public.transactions where id = (v_op ->> 'tx_id')::uuid;
  perform t.check(v_tx_b.id is not null, 'the transaction has the op''s tx_id');
  perform t.eq(to_jsonb(v_tx_b) - v_skip, to_jsonb(v_tx_a) - v_skip, 'transaction row = upstream''s');
  perform t.eq(v_tx_b.tx_type::text, 'recharge', 'tx_type');
  perform t.check(v_tx_b.merchant_id is null, 'no merchant, as upstream');
  perform t.eq((v_tx_b.raw_amount, v_tx_b.final_amount, v_tx_b.discount_applied, v_tx_b.points_earned)::text,
               '(500.00,500.00,1.000,0)', 'amounts');
  perform t.eq((v_tx_b.status::text, v_tx_b.reason, v_tx_b.payment_method::text)::text, '(completed,recharge,cash)',
               'status, reason, payment method');
  perform t.eq(v_tx_b.tx_no, 'RCG-SRCG-0000000001', 'the edge''s number kept');
  perform t.check(v_tx_a.tx_no ~ '^RCG[0-9]{10}$', 'upstream''s own number: ' || v_tx_a.tx_no);
  perform t.eq(v_tx_b.card_id, v_b, 'card');
  perform t.eq(v_tx_b.created_at, v_made, 'created_at = when the till took the money');
  perform t.eq(v_tx_b.updated_at, v_tx_a.updated_at, 'updated_at: upstream''s clock');
  perform t.eq(v_tx_b.tag ->> 'source', 'till', 'op tag kept');
  perform t.eq(v_tx_b.tag -> 'edge',
               jsonb_build_object('site', 'SRCG', 'terminal', 'POS-1', 'operator', 'alice', 'offline', true,
                                  'op_id', v_op -> 'op_id', 'seq', 1, 'approved_by', 'boss'),
               'edge tag block, with the approver');

  -- tx_registry: a row for each, the same but for number and id
  perform t.check(exists (select 1 from public.tx_registry where tx_no = v_tx_a.tx_no and tx_id = v_tx_a.id),
                  'upstream''s registry row');
  perform t.eq((select to_jsonb(r) - 'tx_no' - 'tx_id' from public.tx_registry r
                 where r.tx_no = 'RCG-SRCG-0000000001' and r.tx_id = v_tx_b.id),
               (select to_jsonb(r) - 'tx_no' - 'tx_id' from public.tx_registry r where r.tx_no = v_tx_a.tx_no),
               'edge registry row');

  -- audit: upstream's row, plus the edge block in its context
  select * into v_ev_a from audit.event_log where object_id = v_tx_a.id;
  select * into v_ev_b from audit.event_log where object_id = v_tx_b.id;
  perform t.eq((v_ev_b.action, v_ev_b.object_type, v_ev_b.actor_user_id, v_ev_b.happened_at)::text,
               (v_ev_a.action, v_ev_a.object_type, v_ev_a.actor_user_id, v_ev_a.happened_at)::text, 'audit row');
  perform t.eq(v_ev_b.action, 'RECHARGE', 'audit action');
  perform t.eq(v_ev_b.object_type, 'transactions', 'audit object type');
  perform t.eq(v_ev_b.context - 'edge', v_ev_a.context, 'audit context {amount, method}');
  perform t.eq(v_ev_b.context, jsonb_build_object('amount', 500.00, 'method', 'cash',
                                                  'edge', jsonb_build_object('site', 'SRCG', 'op_id', v_op -> 'op_id',
                                                                             'operator', 'alice', 'approved_by', 'boss')),
               'audit context');

  -- nothing else: no point ledger, no idempotency or order registry rows
  perform t.eq((select count(*)::int from public.point_ledger where tx_id in (v_tx_a.id, v_tx_b.id)), 0, 'no ledger rows');
  perform t.eq((select count(*) from public.idempotency_registry), v_idem, 'no idempotency rows');
  perform t.eq((select count(*) from public.merchant_order_registry), v_ord, 'no order rows');

  -- a replay (a lost response) is duplicate, twice in one batch too, and credits nothing
  v_res := public.edge_apply_batch('SRCG', 'SHOP4', jsonb_build_array(v_op, v_op));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'duplicate', 'replay: duplicate');
  perform t.eq(t.result_of(v_res, 1) ->> 'status', 'duplicate', 'replay again: duplicate');
  perform t.eq(t.result_of(v_res, 0) ->> 'tx_no', 'RCG-SRCG-0000000001', 'replay: stored tx_no');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'balance', to_char(v_bal + 500, 'FM999999990.00'), 'replay: card');
  perform t.eq((t.card(v_b)).balance, v_bal + 500.00, 'credited once');
  -- a new op sent twice in one batch: applied once
  v_op2 := t.op_recharge(2, v_b, 10, 'RCG-SRCG-0000000002', 'wechat');
  v_res := public.edge_apply_batch('SRCG', 'SHOP4', jsonb_build_array(v_op2, v_op2));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'first copy applied');
  perform t.eq(t.result_of(v_res, 1) ->> 'status', 'duplicate', 'second copy duplicate');
  perform t.eq((t.card(v_b)).balance, v_bal + 510.00, 'second top-up credited once');
  -- another op id and tx id with a number already used: refused, never a second credit
  v_res := public.edge_apply_batch('SRCG', 'SHOP4', jsonb_build_array(
             v_op || jsonb_build_object('op_id', gen_random_uuid(), 'tx_id', gen_random_uuid(), 'seq', 3)));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'EDGE_INVALID_OPERATION', 'number reused: refused');
  perform t.eq((t.card(v_b)).balance, v_bal + 510.00, 'number reused: nothing credited');
  perform t.eq((select count(*)::int from public.transactions where tx_no = 'RCG-SRCG-0000000001'), 1, 'one row per number');
  perform t.eq((select count(*)::int from audit.event_log where action = 'RECHARGE' and context -> 'edge' ->> 'site' = 'SRCG'),
               2, 'one audit row per applied top-up');
  raise notice 'PASS: edge recharge = user_recharge_card, credited once';
end
$test$;

-- TEST: a recharge central cannot take becomes an exception and credits nothing: upstream's
-- card checks (its order, its strings) and the op's own shape (amount, number, method)
do $test$
declare
  v_ok     uuid;
  v_frozen uuid;
  v_vch    uuid;
  v_cor    uuid;
  v_corf   uuid;
  v_member uuid;
  v_ops    jsonb;
  v_res    jsonb;
  v_want   text[];
  v_exc    jsonb;
  v_got    text;
  v_tx     bigint;
  v_audit  bigint;
  v_reg    bigint;
  i        int;
begin
  perform t.merchant('SHOP4');
  perform t.as_admin();
  v_ok := t.new_card('Recharge refused ok', 50);
  v_frozen := t.new_card('Recharge refused frozen', 50);
  v_member := (select owner_member_id from public.member_cards where id = v_ok);
  v_vch := public.create_voucher_card(v_member, 'Voucher', 50, null);
  v_cor := public.create_corporate_card(v_member, 'Corp', 50, 0.900);
  v_corf := public.create_corporate_card(v_member, 'Corp frozen', 50, 0.900);
  perform public.freeze_card(v_frozen);
  perform public.freeze_card(v_corf);
  perform t.as_nobody();

  -- upstream refuses the same cards with the same strings (status before type)
  perform t.expect_error(format('select public.user_recharge_card(%L, 10)', v_frozen), 'CARD_NOT_FOUND_OR_INACTIVE');
  perform t.expect_error(format('select public.user_recharge_card(%L, 10)', v_vch), 'UNSUPPORTED_CARD_TYPE_FOR_RECHARGE');
  perform t.expect_error(format('select public.user_recharge_card(%L, 10)', v_cor), 'UNSUPPORTED_CARD_TYPE_FOR_RECHARGE');
  perform t.expect_error(format('select public.user_recharge_card(%L, 10)', v_corf), 'CARD_NOT_FOUND_OR_INACTIVE');
  perform t.expect_error(format('select public.user_recharge_card(%L, 10)', gen_random_uuid()), 'CARD_NOT_FOUND_OR_INACTIVE');

  v_tx    := (select count(*) from public.transactions);
  v_audit := (select count(*) from audit.event_log where action = 'RECHARGE');
  v_reg   := (select count(*) from public.tx_registry);
  v_ops := jsonb_build_array(
    t.op_recharge(1, v_frozen, 10, 'RCG-SRCGX-000001'),                                          -- 0 frozen
    t.op_recharge(2, v_vch, 10, 'RCG-SRCGX-000002'),                                             -- 1 voucher
    t.op_recharge(3, v_cor, 10, 'RCG-SRCGX-000003'),                                             -- 2 corporate
    t.op_recharge(4, v_corf, 10, 'RCG-SRCGX-000004'),                                            -- 3 frozen corporate
    t.op_recharge(5, gen_random_uuid(), 10, 'RCG-SRCGX-000005'),                                 -- 4 unknown card
    t.op_recharge(6, v_ok, 0, 'RCG-SRCGX-000006'),                                               -- 5 zero
    t.op_recharge(7, v_ok, -5, 'RCG-SRCGX-000007'),                                              -- 6 negative
    t.op_recharge(8, v_ok, 10, 'RCG-SRCGX-000008') || '{"raw_amount": "10.005", "final_amount": "10.005"}', -- 7 3 decimals
    t.op_recharge(9, v_ok, 10, 'RCG-SRCGX-000009') || '{"raw_amount": "11.00"}',                 -- 8 raw <> final
    t.op_recharge(10, v_ok, 10, 'RCG-SRCGX-000010') || '{"points_earned": 10}',                  -- 9 points
    t.op_recharge(11, v_ok, 10, 'RCG-SRCGX-000011') || '{"discount": "0.950"}',                  -- 10 discount
    t.op_recharge(12, v_ok, 10, 'RCG-OTHER-000012'),                                             -- 11 another site's number
    t.op_recharge(13, v_ok, 10, 'PAY-SRCGX-000013'),                                             -- 12 a payment number
    t.op_recharge(14, v_ok, 10, 'RCG-SRCGX-000014', 'balance'),                                  -- 13 paid from the balance
    t.op_recharge(15, v_ok, 10, 'RCG-SRCGX-000015', 'bank'),                                     -- 14 not a pay_method
    t.op_recharge(16, v_ok, 10, 'RCG-SRCGX-000016', null),                                       -- 15 no method
    t.op_recharge(17, v_ok, 10, 'RCG-SRCGX-000017') || '{"raw_amount": "NaN", "final_amount": "NaN"}', -- 16 NaN
    t.op_recharge(18, v_ok, 10, 'RCG-SRCGX-000018') || '{"external_order_id": "ORD-R1"}',        -- 17 an order id
    t.op_recharge(19, v_ok, 10, 'RCG-SRCGX-000019') || '{"tag": "not an object"}',               -- 18 tag
    t.op_recharge(20, v_ok, 10, 'RCG-SRCGX-000020'));                                            -- 19 applied
  v_res := public.edge_apply_batch('SRCGX', 'SHOP4', v_ops);

  v_want := array['rejected:CARD_NOT_FOUND_OR_INACTIVE', 'rejected:UNSUPPORTED_CARD_TYPE_FOR_RECHARGE',
                  'rejected:UNSUPPORTED_CARD_TYPE_FOR_RECHARGE', 'rejected:CARD_NOT_FOUND_OR_INACTIVE',
                  'rejected:CARD_NOT_FOUND_OR_INACTIVE'];
  for i in 5 .. 18 loop
    v_want := v_want || 'rejected:EDGE_INVALID_OPERATION'::text;
  end loop;
  v_want := v_want || 'applied:'::text;
  for i in 0 .. array_length(v_want, 1) - 1 loop
    v_got := (t.result_of(v_res, i) ->> 'status') || ':' || coalesce(t.result_of(v_res, i) ->> 'reason', '');
    perform t.eq(v_got, v_want[i + 1], format('op #%s (%s)', i, coalesce(t.result_of(v_res, i) ->> 'reason', '')));
    if t.result_of(v_res, i) ->> 'status' = 'rejected' then
      select mps_edge.exception_json(e) into v_exc from mps_edge.exceptions e where e.op_id = (v_ops -> i ->> 'op_id')::uuid;
      perform t.eq(v_exc ->> 'id', t.result_of(v_res, i) ->> 'exception_id', format('op #%s: its exception', i));
      perform t.eq(v_exc -> 'payload', v_ops -> i, format('op #%s: payload kept', i));
      perform t.eq(v_exc ->> 'op_type', 'recharge', format('op #%s: op type', i));
      perform t.eq(v_exc ->> 'tx_no', v_ops -> i ->> 'tx_no', format('op #%s: tx_no', i));
    end if;
  end loop;
  -- the details say why (an unknown method is named, not left to the enum's 22P02)
  perform t.eq((select detail from mps_edge.exceptions where op_id = (v_ops -> 0 ->> 'op_id')::uuid),
               'the card is inactive at central', 'frozen: detail');
  perform t.check((select detail from mps_edge.exceptions where op_id = (v_ops -> 14 ->> 'op_id')::uuid)
                  like 'payment_method bank %', 'unknown method: detail');
  perform t.check((select detail from mps_edge.exceptions where op_id = (v_ops -> 13 ->> 'op_id')::uuid)
                  like 'payment_method balance %', 'balance: detail');
  -- a refused recharge of a known card still advances its edge_seq (the edge stops
  -- counting it) and returns the card; an unknown card returns none
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'edge_seq', '1', 'refused: edge_seq advanced');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'balance', '50.00', 'refused: balance unchanged');
  perform t.eq(t.result_of(v_res, 4) -> 'card', 'null'::jsonb, 'unknown card: no card');

  perform t.eq((t.card(v_frozen)).balance, 50.00::numeric, 'frozen card not credited');
  perform t.eq((t.card(v_vch)).balance, 50.00::numeric, 'voucher not credited');
  perform t.eq((t.card(v_cor)).balance, 50.00::numeric, 'corporate card not credited');
  perform t.eq((t.card(v_corf)).balance, 50.00::numeric, 'frozen corporate card not credited');
  perform t.eq((t.card(v_ok)).balance, 60.00::numeric, 'only the good top-up credited');
  perform t.eq((select count(*) from public.transactions), v_tx + 1, 'one transaction written');
  perform t.eq((select count(*) from audit.event_log where action = 'RECHARGE'), v_audit + 1, 'one audit row');
  perform t.eq((select count(*) from public.tx_registry), v_reg + 1, 'one registry row');
  perform t.check(exists (select 1 from public.transactions where tx_no = 'RCG-SRCGX-000020'), 'the good one');

  -- resolving a refused recharge is the same as any exception
  v_exc := public.edge_resolve_exception((t.result_of(v_res, 0) ->> 'exception_id')::uuid, 'manager-1',
                                         'card frozen at head office; cash handed back');
  perform t.eq(v_exc ->> 'resolved_by', 'manager-1', 'resolved');
  raise notice 'PASS: refused recharges become exceptions and credit nothing';
end
$test$;

-- TEST: recharges and charges on one card in one batch apply in seq order (a charge
-- spends what was topped up before it); the set-based path leaves such a batch to op by op
do $test$
declare
  v_card uuid;
  v_ops  jsonb;
  v_res  jsonb;
  v_m    public.merchants;
  v_tx   bigint;
begin
  perform t.merchant('SHOP4');
  perform t.as_admin();
  v_card := t.new_card('Recharge then charge', 0);
  perform t.as_nobody();
  select * into v_m from public.merchants where code = 'SHOP4';

  v_ops := jsonb_build_array(
    t.op_charge(1, v_card, 30, 1.000, 'PAY-SRCGO-000001'),            -- nothing to spend yet
    t.op_recharge(2, v_card, 100, 'RCG-SRCGO-000002', 'wechat'),
    t.op_charge(3, v_card, 60, 1.000, 'PAY-SRCGO-000003'),            -- spends the top-up
    t.op_recharge(4, v_card, 5.50, 'RCG-SRCGO-000004', 'alipay'));
  v_res := public.edge_apply_batch('SRCGO', 'SHOP4', v_ops);
  perform t.eq((select string_agg((r ->> 'status') || ':' || coalesce(r ->> 'reason', ''), ',')
                  from jsonb_array_elements(v_res -> 'results') r),
               'rejected:INSUFFICIENT_BALANCE,applied:,applied:,applied:', 'statuses in seq order');
  perform t.eq((select string_agg(r -> 'card' ->> 'balance', ',') from jsonb_array_elements(v_res -> 'results') r),
               '0.00,100.00,40.00,45.50', 'each result: the card right after its op');
  perform t.eq((select string_agg(r -> 'card' ->> 'edge_seq', ',') from jsonb_array_elements(v_res -> 'results') r),
               '1,2,3,4', 'edge_seq after each op');
  perform t.eq(((t.card(v_card)).balance, (t.card(v_card)).points)::text, '(45.50,60)', 'card: 100 - 60 + 5.50, 60 points');

  -- a batch every op of which applies: the set path declines it (writing nothing),
  -- and op by op applies it in order
  v_ops := jsonb_build_array(
    t.op_recharge(5, v_card, 20, 'RCG-SRCGO-000005', 'cash'),
    t.op_charge(6, v_card, 65, 1.000, 'PAY-SRCGO-000006'));           -- 45.50 + 20 covers it
  v_tx := (select count(*) from public.transactions);
  perform t.check(mps_edge.apply_charges_set(array(select jsonb_array_elements(v_ops)), 'SRCGO', v_m, now(), false)
                  is null, 'set path declines a batch with a recharge');
  perform t.eq((select count(*) from public.transactions), v_tx, 'the set path wrote nothing');
  v_res := public.edge_apply_batch('SRCGO', 'SHOP4', v_ops);
  perform t.eq((select string_agg(r ->> 'status', ',') from jsonb_array_elements(v_res -> 'results') r),
               'applied,applied', 'both applied');
  perform t.eq((t.card(v_card)).balance, 0.50::numeric, 'card: 45.50 + 20 - 65');
  raise notice 'PASS: recharge and charges in seq order';
end
$test$;

-- TEST: an edge recharge belongs to no merchant: refunding it fails as refunding an upstream
-- recharge fails (ORIGINAL_TX_NOT_FOUND), and the merchant's settlement and day
-- statistics do not count it
do $test$
declare
  v_card   uuid;
  v_m      uuid := t.merchant('SHOP5');
  v_up     record;
  v_res    jsonb;
  v_from   timestamptz := now() - interval '1 hour';
  v_to     timestamptz := now() + interval '1 hour';
  v_sid    uuid;
  v_s1     public.settlements;
  v_s2     public.settlements;
  v_stats1 jsonb;
  v_stats2 jsonb;
  v_has_stats boolean := to_regprocedure('public.get_today_transaction_stats(uuid)') is not null;
begin
  perform t.as_admin();
  v_card := t.new_card('Recharge no merchant', 100);
  perform t.as_nobody();
  -- one sale of this merchant, so its figures are not empty (a recharge counted
  -- against it would make the settlement negative and fail settlements_check)
  v_res := public.edge_apply_batch('SRCGM', 'SHOP5', jsonb_build_array(t.op_charge(1, v_card, 40, 1.000, 'PAY-SRCGM-000001')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'the sale');
  v_sid := public.generate_settlement(v_m, 'realtime', v_from, v_to);
  select * into v_s1 from public.settlements where id = v_sid;
  if v_has_stats then
    execute 'select to_jsonb(s) from public.get_today_transaction_stats($1) s' into v_stats1 using v_m;
  end if;

  v_res := public.edge_apply_batch('SRCGM', 'SHOP5', jsonb_build_array(t.op_recharge(2, v_card, 500, 'RCG-SRCGM-000002')));
  perform t.eq(t.result_of(v_res, 0) ->> 'status', 'applied', 'the recharge');
  select * into v_up from public.user_recharge_card(v_card, 7);

  v_sid := public.generate_settlement(v_m, 'realtime', v_from, v_to);
  select * into v_s2 from public.settlements where id = v_sid;
  perform t.check(v_s1.id is not null and v_s2.id is not null, 'both settlements read back');
  perform t.eq((v_s2.total_amount, v_s2.total_tx_count)::text, (v_s1.total_amount, v_s1.total_tx_count)::text,
               'generate_settlement: recharges not counted');
  perform t.eq((v_s2.total_amount, v_s2.total_tx_count)::text, '(40.00,1)', 'the sale only');
  if v_has_stats then
    execute 'select to_jsonb(s) from public.get_today_transaction_stats($1) s' into v_stats2 using v_m;
    perform t.eq(v_stats2, v_stats1, 'get_today_transaction_stats: recharges not counted');
  end if;

  -- refunds: upstream's and the edge's both fail to find a recharge
  perform t.expect_error(format('select t.upstream_refund(%L, %L, 1)', 'SHOP5', 'RCG-SRCGM-000002'), 'ORIGINAL_TX_NOT_FOUND');
  perform t.expect_error(format('select t.upstream_refund(%L, %L, 1)', 'SHOP5', v_up.tx_no), 'ORIGINAL_TX_NOT_FOUND');
  v_res := public.edge_apply_batch('SRCGM', 'SHOP5',
             jsonb_build_array(t.op_refund(3, v_card, 1, 'RCG-SRCGM-000002', 'REF-SRCGM-000003')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'ORIGINAL_TX_NOT_FOUND', 'edge refund of a recharge');
  perform t.eq((t.card(v_card)).balance, 567.00::numeric, 'card: 100 - 40 + 500 + 7');
  raise notice 'PASS: a recharge is no merchant''s: not refundable, not settled';
end
$test$;

-- TEST: edge_seq reflects each site's last processed seq; version grows
do $test$
declare
  v_k   uuid;
  v_o   uuid;
  v_res jsonb;
  v_v1  bigint;
  v_v2  bigint;
  v_row jsonb;
begin
  perform t.as_admin();
  v_k := t.new_card('Seq K', 50);
  v_o := t.new_card('Seq O', 50);
  perform t.as_nobody();
  v_v1 := (t.card_row('SHOP1', 'SA', v_k) ->> 'version')::bigint;
  perform t.eq(t.card_row('SHOP1', 'SA', v_k) ->> 'edge_seq', '0', 'no ops yet');

  v_res := public.edge_apply_batch('SA', 'SHOP1', jsonb_build_array(
             t.op_charge(101, v_k, 10, 1.000, 'PAY-SA-101'),
             t.op_charge(102, v_o, 10, 1.000, 'PAY-SA-102')));
  v_row := t.card_row('SHOP1', 'SA', v_k);
  perform t.eq(v_row ->> 'edge_seq', '101', 'edge_seq after 101');
  perform t.eq(v_row, t.result_of(v_res, 0) -> 'card', 'pull and push agree');
  v_v2 := (v_row ->> 'version')::bigint;
  perform t.check(v_v2 > v_v1, 'version grows with a change');
  perform t.eq(t.card_row('SHOP1', 'SA', v_o) ->> 'edge_seq', '102', 'other card');

  -- a rejected op advances edge_seq but not the version
  v_res := public.edge_apply_batch('SA', 'SHOP1', jsonb_build_array(t.op_charge(103, v_k, 1000, 1.000, 'PAY-SA-103')));
  perform t.eq(t.result_of(v_res, 0) ->> 'reason', 'INSUFFICIENT_BALANCE', 'rejected');
  v_row := t.card_row('SHOP1', 'SA', v_k);
  perform t.eq(v_row ->> 'edge_seq', '103', 'edge_seq after a rejection');
  perform t.eq((v_row ->> 'version')::bigint, v_v2, 'version unchanged by a rejection');
  perform t.eq(t.result_of(v_res, 0) -> 'card' ->> 'edge_seq', '103', 'push result carries edge_seq');

  -- another site sees its own seq only; seq never goes back
  perform t.eq(t.card_row('SHOP1', 'SB', v_k) ->> 'edge_seq', '0', 'other site: 0');
  v_res := public.edge_apply_batch('SB', 'SHOP1', jsonb_build_array(t.op_charge(7, v_k, 1, 1.000, 'PAY-SB-7')));
  perform t.eq(t.card_row('SHOP1', 'SB', v_k) ->> 'edge_seq', '7', 'site B seq');
  perform t.eq(t.card_row('SHOP1', 'SA', v_k) ->> 'edge_seq', '103', 'site A seq kept');
  perform t.eq(t.card_row('SHOP1', 'SA', v_k) ->> 'balance', '39.00', 'balance sees both sites');

  -- an upstream change (freeze) bumps the version too
  v_v1 := (t.card_row('SHOP1', 'SA', v_k) ->> 'version')::bigint;
  perform t.as_admin();
  perform public.freeze_card(v_k);
  perform t.as_nobody();
  perform t.check((t.card_row('SHOP1', 'SA', v_k) ->> 'version')::bigint > v_v1, 'freeze bumps version');
  perform t.eq(t.card_row('SHOP1', 'SA', v_k) ->> 'status', 'inactive', 'frozen card pulled');
  raise notice 'PASS: edge_seq and version';
end
$test$;

-- TEST: one batch, several ops on one card: each result shows the card right after its op; registry and clock
do $test$
declare
  v_card  uuid;
  v_other uuid;
  v_bad   jsonb;
  v_ops   jsonb;
  v_res   jsonb;
  v_want  text[];
  v_ver   bigint[];
  v_tx    public.transactions;
  i       int;
begin
  perform t.as_admin();
  v_card := t.new_card('Many M', 100);
  v_other := t.new_card('Many O', 100);
  perform t.as_nobody();
  v_bad := t.op_charge(4, v_card, 500, 1.000, 'PAY-SMANY-000004');              -- rejected: balance
  v_ops := jsonb_build_array(
    t.op_charge(1, v_card, 10, 1.000, 'PAY-SMANY-000001'),
    t.op_charge(2, v_other, 10, 1.000, 'PAY-SMANY-000002'),
    t.op_charge(3, v_card, 20, 1.000, 'PAY-SMANY-000003'),
    v_bad,
    v_bad,                                                                       -- the same op again
    t.op_charge(5, v_card, 1, 1.000, 'PAY-SMANY-000005') || '{"seq": "+5"}',     -- applies; seq not plain digits
    t.op_charge(6, v_card, 1, 1.000, 'PAY-SMANY-000006'));
  v_res := public.edge_apply_batch('SMANY', 'SHOP1', v_ops);

  v_want := array['applied|90.00|1', 'applied|90.00|2', 'applied|70.00|3', 'rejected|70.00|4',
                  'duplicate|70.00|4', 'applied|69.00|4', 'applied|68.00|6'];
  for i in 0 .. 6 loop
    perform t.eq(concat_ws('|', t.result_of(v_res, i) ->> 'status', t.result_of(v_res, i) -> 'card' ->> 'balance',
                           t.result_of(v_res, i) -> 'card' ->> 'edge_seq'),
                 v_want[i + 1], format('op #%s: status, balance and edge_seq right after it', i));
  end loop;
  select array_agg((t.result_of(v_res, g.k) -> 'card' ->> 'version')::bigint order by g.k) into v_ver
    from generate_series(0, 6) as g (k);
  perform t.check(v_ver[1] < v_ver[3] and v_ver[3] < v_ver[6] and v_ver[6] < v_ver[7], 'version grows with each applied op');
  perform t.check(v_ver[4] = v_ver[3] and v_ver[5] = v_ver[3], 'a rejection and a duplicate keep the version');
  perform t.eq(t.result_of(v_res, 6) -> 'card', t.card_row('SHOP1', 'SMANY', v_card), 'last result = pulled card');
  perform t.eq(t.result_of(v_res, 1) -> 'card', t.card_row('SHOP1', 'SMANY', v_other), 'other card = pulled card');
  perform t.eq(t.result_of(v_res, 4) -> 'reason', t.result_of(v_res, 3) -> 'reason', 'in-batch duplicate: stored reason');
  perform t.eq(t.result_of(v_res, 4) -> 'exception_id', t.result_of(v_res, 3) -> 'exception_id',
               'in-batch duplicate: same exception');
  perform t.eq((select count(*)::int from mps_edge.exceptions where op_id = (v_bad ->> 'op_id')::uuid), 1,
               'one exception for the op');

  -- registry: one row per distinct op, as each op left it
  perform t.eq((select string_agg(concat_ws(':', a.status, a.reason, a.seq, a.tx_id = (o.op ->> 'tx_id')::uuid,
                                            a.result ->> 'card_id'), ',' order by o.n)
                  from jsonb_array_elements(v_ops) with ordinality o (op, n)
                  join mps_edge.applied_ops a on a.op_id = (o.op ->> 'op_id')::uuid
                 where o.n <> 5),
               concat_ws(',', 'applied:1:t:' || v_card, 'applied:2:t:' || v_other, 'applied:3:t:' || v_card,
                         'rejected:INSUFFICIENT_BALANCE:4:t:' || v_card, 'applied:t:' || v_card,
                         'applied:6:t:' || v_card),
               'registry rows');
  perform t.check((select bool_and(a.applied_at >= p.applied_at)
                     from jsonb_array_elements(v_ops) with ordinality o (op, n)
                     join mps_edge.applied_ops a on a.op_id = (o.op ->> 'op_id')::uuid
                     join jsonb_array_elements(v_ops) with ordinality q (op, n) on q.n = o.n - 1 and q.n <> 5
                     join mps_edge.applied_ops p on p.op_id = (q.op ->> 'op_id')::uuid
                    where o.n <> 5), 'applied_at follows the op order');
  perform t.eq((select last_seq from mps_edge.card_site_seq where card_id = v_card and site_code = 'SMANY'), 6::bigint,
               'card_site_seq');

  -- every row the batch wrote carries upstream's clock (now_utc(), the transaction start)
  select * into v_tx from public.transactions where tx_no = 'PAY-SMANY-000001';
  perform t.eq(v_tx.updated_at, public.now_utc(), 'transactions.updated_at');
  perform t.eq((select created_at from public.tx_registry where tx_no = 'PAY-SMANY-000001'), public.now_utc(), 'tx_registry');
  perform t.eq((select created_at from public.point_ledger where tx_id = v_tx.id), public.now_utc(), 'point_ledger');
  perform t.eq((select happened_at from audit.event_log where object_id = v_tx.id), public.now_utc(), 'audit');
  perform t.eq((t.card(v_card)).updated_at, public.now_utc(), 'card updated_at');
  raise notice 'PASS: several ops on one card';
end
$test$;

-- TEST: level and discount after a charge follow level_for_points / discount_for_points
do $test$
declare
  v_cards uuid[] := '{}';
  v_start int[] := array[0, 950, 990, 4990, 9990, 20000];
  v_ops   jsonb := '[]';
  v_res   jsonb;
  i       int;
begin
  perform t.as_admin();
  for i in 1 .. array_length(v_start, 1) loop
    v_cards := v_cards || t.new_card('Level ' || i, 200);
    perform public.update_points_and_level(v_cards[i], v_start[i], 'manual_adjust');
  end loop;
  -- level 2 inactive: totals in its range fall back to the highest active level that holds them (none: 0)
  update public.membership_levels set is_active = false where level = 2;
  perform t.as_nobody();
  for i in 1 .. array_length(v_start, 1) loop
    v_ops := v_ops || jsonb_build_array(t.op_charge(i, v_cards[i], 30.50, 1.000, 'PAY-SLVL-' || i));
  end loop;
  v_res := public.edge_apply_batch('SLVL', 'SHOP1', v_ops);
  for i in 1 .. array_length(v_start, 1) loop
    perform t.eq(t.result_of(v_res, i - 1) ->> 'status', 'applied', format('card %s applied', i));
    perform t.eq(jsonb_build_object('level', (t.card(v_cards[i])).level, 'discount', (t.card(v_cards[i])).discount),
                 jsonb_build_object('level', mps_edge.level_for_points((t.card(v_cards[i])).points),
                                    'discount', mps_edge.discount_for_points((t.card(v_cards[i])).points)),
                 format('card %s (%s points): level and discount', i, (t.card(v_cards[i])).points));
  end loop;
  update public.membership_levels set is_active = true where level = 2;
  perform t.eq((t.card(v_cards[3])).level, 1, '990 + 30 → level 1');
  perform t.eq((t.card(v_cards[4])).level, 0, '4990 + 30 → level 2 inactive → 0');
  perform t.eq((t.card(v_cards[4])).discount, 1.000, '… discount 1.000');
  perform t.eq((t.card(v_cards[6])).discount, 0.850, '20030 → level 3');
  raise notice 'PASS: level and discount after a charge';
end
$test$;

-- TEST: helpers: try_uuid, try_bigint and require keep their meaning and are inlined
do $test$
declare
  v_plan   text := '';
  v_line   text;
  v_msg    text;
  v_detail text;
begin
  perform t.eq(mps_edge.try_uuid('0193a5b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b'), '0193a5b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b'::uuid, 'canonical');
  perform t.eq(mps_edge.try_uuid('0193A5B4-7C1D-7E2F-8A9B-0C1D2E3F4A5B'), '0193a5b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b'::uuid, 'upper case');
  perform t.eq(mps_edge.try_uuid('0193a5b47c1d7e2f8a9b0c1d2e3f4a5b'), null::uuid, 'no dashes');
  perform t.eq(mps_edge.try_uuid('{0193a5b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b}'), null::uuid, 'braces');
  perform t.eq(mps_edge.try_uuid(' 0193a5b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b'), null::uuid, 'blank');
  perform t.eq(mps_edge.try_uuid('0193a5b4-7c1d-7e2f-8a9b-0c1d2e3f4a5g'), null::uuid, 'not hex');
  perform t.eq(mps_edge.try_uuid(null), null::uuid, 'null');
  perform t.eq(mps_edge.try_bigint('42'), 42::bigint, 'digits');
  perform t.eq(mps_edge.try_bigint('0042'), 42::bigint, 'leading zeros');
  perform t.eq(mps_edge.try_bigint('999999999999999999'), 999999999999999999::bigint, '18 digits');
  perform t.eq(mps_edge.try_bigint('1000000000000000000'), null::bigint, '19 digits');
  perform t.eq(mps_edge.try_bigint('+5'), null::bigint, 'sign');
  perform t.eq(mps_edge.try_bigint('-5'), null::bigint, 'negative');
  perform t.eq(mps_edge.try_bigint(''), null::bigint, 'empty');
  perform t.eq(mps_edge.try_bigint(null), null::bigint, 'null');
  perform t.eq(mps_edge.require('{"a": " x "}', 'a'), 'x', 'require trims');
  perform t.eq(mps_edge.require('{"a": 7}', 'a'), '7', 'require: a number');
  foreach v_line in array array['{}', '{"a": null}', '{"a": "  "}', '{"a": ""}'] loop
    begin
      perform mps_edge.require(v_line::jsonb, 'a');
      raise exception 'ASSERT FAILED: require accepted %', v_line;
    exception when raise_exception then
      get stacked diagnostics v_msg = message_text, v_detail = pg_exception_detail;
      perform t.eq(v_msg || ' / ' || v_detail, 'EDGE_INVALID_OPERATION / missing field a', 'require: ' || v_line);
    end;
  end loop;
  -- inlined: the plan shows their bodies, not calls (missing_field stays a call)
  for v_line in execute 'explain (verbose, costs off)
                         select mps_edge.try_uuid(v.x), mps_edge.try_bigint(v.x), mps_edge.require(v.j, ''k'')
                           from (select md5(g::text) as x, jsonb_build_object(''k'', g) as j
                                   from generate_series(1, 3) g) v' loop
    v_plan := v_plan || v_line || E'\n';
  end loop;
  perform t.check(v_plan not like '%try_uuid%' and v_plan not like '%try_bigint%' and v_plan not like '%require%'
                  and v_plan like '%missing_field%', 'helpers inlined: ' || v_plan);
  raise notice 'PASS: inlined helpers';
end
$test$;

-- TEST: keyset paging over many rows with EQUAL updated_at returns each row once
do $test$
declare
  v_total   int;
  v_all     jsonb;
  v_ids     text[];
  v_page    jsonb;
  v_members int;
begin
  -- one statement, one transaction: every new row has the same updated_at
  insert into public.member_cards (card_type, card_no) select 'standard', '' from generate_series(1, 1234);
  insert into public.member_profiles (name) select 'Bulk ' || g from generate_series(1, 777) g;
  perform t.check((select count(distinct updated_at) from public.member_cards
                    where updated_at = now()) = 1
                  and (select count(*) from public.member_cards where updated_at = now()) >= 1234,
                  'many cards share one updated_at');

  v_total := (select count(*) from public.member_cards);
  v_all := t.pull_all('SHOP1', 'SPAGE', 'cards', 50);
  select array_agg(r ->> 'id') into v_ids from jsonb_array_elements(v_all -> 'rows') r;
  perform t.eq(cardinality(v_ids), v_total, 'every card returned');
  perform t.eq((select count(distinct x)::int from unnest(v_ids) x), v_total, 'no card twice');
  perform t.eq(v_all ->> 'pages', ceil(v_total / 50.0)::int::text, 'page count');
  perform t.check((select bool_and((prev_ts, prev_id) < (ts, id)) from (
                     select (r ->> 'updated_at')::timestamptz as ts, (r ->> 'id')::uuid as id,
                            lag((r ->> 'updated_at')::timestamptz) over (order by ord) as prev_ts,
                            lag((r ->> 'id')::uuid) over (order by ord) as prev_id
                       from jsonb_array_elements(v_all -> 'rows') with ordinality as e(r, ord)) s
                    where prev_id is not null), 'rows strictly ordered by (updated_at, id)');

  -- odd page size across the tie block, members kind
  v_members := (select count(*) from public.member_profiles);
  v_all := t.pull_all('SHOP1', 'SPAGE', 'members', 37);
  perform t.eq(jsonb_array_length(v_all -> 'rows'), v_members, 'every member returned');
  perform t.eq((select count(distinct r ->> 'id')::int from jsonb_array_elements(v_all -> 'rows') r), v_members,
               'no member twice');
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(v_all -> 'rows' -> 0) k),
               array['id', 'member_no', 'name', 'status', 'updated_at'], 'member fields only');

  -- the cursor at the end yields an empty page that echoes the cursor
  v_page := public.edge_pull_changes('SHOP1', 'SPAGE', 'members',
                                     (v_all ->> 'next_after_ts')::timestamptz, (v_all ->> 'next_after_id')::uuid, 10);
  perform t.eq(v_page -> 'rows', '[]'::jsonb, 'empty tail');
  perform t.eq(v_page -> 'has_more', 'false'::jsonb, 'no more');
  perform t.eq(v_page ->> 'next_after_id', v_all ->> 'next_after_id', 'cursor echoed');
  perform t.eq((v_page ->> 'next_after_ts')::timestamptz, (v_all ->> 'next_after_ts')::timestamptz, 'ts echoed');

  -- limit clamping
  perform t.eq(jsonb_array_length(public.edge_pull_changes('SHOP1', 'SPAGE', 'cards', null, null, 0) -> 'rows'), 1, 'limit 0 → 1');
  perform t.eq(jsonb_array_length(public.edge_pull_changes('SHOP1', 'SPAGE', 'cards', null, null, -5) -> 'rows'), 1, 'negative → 1');
  perform t.eq(jsonb_array_length(public.edge_pull_changes('SHOP1', 'SPAGE', 'cards', null, null, 100000) -> 'rows'),
               least(v_total, 5000), 'limit capped at 5000');
  perform t.eq(jsonb_array_length(public.edge_pull_changes('SHOP1', 'SPAGE', 'cards') -> 'rows'), least(v_total, 500),
               'default 500');
  raise notice 'PASS: keyset paging with equal updated_at';
end
$test$;

-- TEST: pull kinds, fields and errors
do $test$
declare
  v_page jsonb;
begin
  v_page := public.edge_pull_changes('SHOP1', 'SK', 'cards', null, null, 1);
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(v_page -> 'rows' -> 0) k),
               array['balance', 'card_no', 'card_type', 'corporate_discount', 'discount', 'edge_seq', 'expires_at',
                     'fixed_discount', 'id', 'level', 'name', 'owner_member_id', 'points', 'status', 'updated_at',
                     'version'], 'card fields');
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(v_page) k),
               array['has_more', 'kind', 'next_after_id', 'next_after_ts', 'rows', 'server_time'], 'envelope');
  perform t.check(v_page ->> 'server_time' like '%+00:00', 'server_time in UTC');

  v_page := public.edge_pull_changes('SHOP1', 'SK', 'merchant');
  perform t.eq(jsonb_array_length(v_page -> 'rows'), 1, 'one merchant');
  perform t.eq(v_page -> 'rows' -> 0 ->> 'code', 'SHOP1', 'this merchant');
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(v_page -> 'rows' -> 0) k),
               array['code', 'id', 'name', 'status', 'updated_at'], 'merchant fields, no password_hash');
  perform t.eq(jsonb_array_length(public.edge_pull_changes('SHOP1', 'SK', 'merchant',
                 (v_page ->> 'next_after_ts')::timestamptz, (v_page ->> 'next_after_id')::uuid) -> 'rows'), 0,
               'merchant unchanged since cursor');

  v_page := public.edge_pull_changes('SHOP1', 'SK', 'levels');
  perform t.eq(jsonb_array_length(v_page -> 'rows'), 4, 'all levels');
  perform t.eq((select r ->> 'discount' from jsonb_array_elements(v_page -> 'rows') r where r ->> 'level' = '1'), '0.950',
               'level discount string');
  perform t.eq((select r -> 'max_points' from jsonb_array_elements(v_page -> 'rows') r where r ->> 'level' = '3'),
               'null'::jsonb, 'open-ended top level');

  perform t.expect_error($$select public.edge_pull_changes('SHOP1', 'SK', 'bogus')$$, 'EDGE_UNKNOWN_KIND');
  perform t.expect_error($$select public.edge_pull_changes('NO-SUCH', 'SK', 'cards')$$, 'MERCHANT_NOT_FOUND');
  perform t.expect_error($$select public.edge_pull_changes('NO-SUCH', 'SK', 'merchant')$$, 'MERCHANT_NOT_FOUND');
  raise notice 'PASS: pull kinds and errors';
end
$test$;

-- TEST: a QR rotation and a revocation are visible to the qr_states pull
do $test$
declare
  v_card   uuid;
  v_member uuid;
  v_end    jsonb;
  v_delta  jsonb;
  v_row    jsonb;
  v_login  jsonb;
  v_boot   jsonb;
begin
  perform t.as_admin();
  v_member := public.create_member_profile('QR Quinn', '0900000301', null, 'quinnpw1');
  select id into v_card from public.member_cards where owner_member_id = v_member;
  perform t.as_nobody();

  v_end := t.pull_all('SHOP1', 'SQR', 'qr_states', 100);

  v_login := public.member_login('0900000301', 'quinnpw1');
  perform public.rotate_card_qr(v_card, 600, v_login ->> 'session_id');
  v_delta := t.pull_all('SHOP1', 'SQR', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  perform t.eq((select count(*)::int from jsonb_array_elements(v_delta -> 'rows') r
                 where r ->> 'card_id' = v_card::text), 1, 'the rotated card, once');
  perform t.check(not exists (select 1 from jsonb_array_elements(v_delta -> 'rows') r
                               where ((r ->> 'updated_at')::timestamptz, (r ->> 'card_id')::uuid)
                                     <= ((v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid)),
                  'delta only past the cursor');
  select r into v_row from jsonb_array_elements(v_delta -> 'rows') r where r ->> 'card_id' = v_card::text;
  perform t.eq(v_row ->> 'card_id', v_card::text, 'rotated card');
  perform t.eq(v_row ->> 'token_hash', (select token_hash from public.card_qr_state where card_id = v_card), 'new hash');
  perform t.check((v_row ->> 'expires_at')::timestamptz > now() + interval '590 seconds', 'new expiry');
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(v_row) k),
               array['card_id', 'expires_at', 'fast_verifier', 'token_hash', 'updated_at', 'used'], 'qr fields');
  perform t.eq(v_row -> 'fast_verifier', 'null'::jsonb, 'a rotate_card_qr token has no fast verifier');

  -- a second rotation of the same card moves it past the cursor again
  perform public.rotate_card_qr(v_card, 600, v_login ->> 'session_id');
  v_end := v_delta;
  v_delta := t.pull_all('SHOP1', 'SQR', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  perform t.check(exists (select 1 from jsonb_array_elements(v_delta -> 'rows') r
                           where r ->> 'card_id' = v_card::text and r ->> 'token_hash' <> v_row ->> 'token_hash'),
                  'second rotation visible with a new hash');

  -- revoke touches only expires_at upstream; the trigger makes it visible
  perform public.revoke_card_qr(v_card, v_login ->> 'session_id');
  v_end := v_delta;
  v_delta := t.pull_all('SHOP1', 'SQR', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  perform t.check(exists (select 1 from jsonb_array_elements(v_delta -> 'rows') r
                           where r ->> 'card_id' = v_card::text and (r ->> 'expires_at')::timestamptz <= now()),
                  'revocation visible (expired)');

  -- a bootstrap (null cursor) lists live tokens only
  v_boot := t.pull_all('SHOP1', 'SQR', 'qr_states', 100);
  perform t.check(not exists (select 1 from jsonb_array_elements(v_boot -> 'rows') r
                               where (r ->> 'expires_at')::timestamptz <= clock_timestamp()), 'bootstrap: live only');
  perform t.check(not exists (select 1 from jsonb_array_elements(v_boot -> 'rows') r
                               where r ->> 'card_id' = v_card::text), 'revoked card not in bootstrap');
  perform t.eq(jsonb_array_length(v_boot -> 'rows'),
               (select count(*)::int from public.card_qr_state where expires_at > clock_timestamp()), 'all live tokens');
  raise notice 'PASS: QR changes visible to pull';
end
$test$;

-- TEST: execute rights: anon needs a site key, authenticated is denied, service_role may call
do $test$
declare
  v_fn   text;
  v_ok   boolean;
  v_code text;
  v_sv   jsonb;
  v_pull jsonb;
  v_push jsonb;
  v_list jsonb;
begin
  foreach v_fn in array array[
    $$select public.edge_sync_version()$$,
    $$select public.edge_self_test()$$,
    $$select public.edge_pull_changes('SHOP1', 'SX', 'cards')$$,
    $$select public.edge_apply_batch('SX', 'SHOP1', '[]')$$,
    $$select public.edge_list_exceptions('SX')$$,
    $$select public.edge_resolve_exception(gen_random_uuid(), 'x', 'y')$$] loop
    v_ok := false;
    begin
      set local role authenticated;
      execute v_fn;
    exception when insufficient_privilege then
      v_ok := true;   -- the sub-transaction rollback also resets the role
    end;
    reset role;
    perform t.check(v_ok, format('authenticated denied: %s', v_fn));

    -- anon may execute, and is refused inside without a key (no row written)
    set local role anon;
    execute format('select (%s)::jsonb ->> %L', v_fn, 'code') into v_code;
    reset role;
    perform t.eq(v_code, 'EDGE_SITE_KEY_REQUIRED', format('anon without a key: %s', v_fn));
    perform t.eq(current_setting('response.status', true), '401', 'status 401 for PostgREST');
  end loop;
  perform t.check(not has_schema_privilege('anon', 'mps_edge', 'USAGE'), 'anon has no mps_edge usage');
  perform t.check(not has_schema_privilege('authenticated', 'mps_edge', 'USAGE'), 'authenticated has no mps_edge usage');

  -- service_role has no usage on schema t: call first, assert after reset
  set local role service_role;
  v_sv := public.edge_sync_version();
  v_pull := public.edge_pull_changes('SHOP1', 'SX', 'levels');
  v_push := public.edge_apply_batch('SX', 'SHOP1', '[]');
  v_list := public.edge_list_exceptions('SX');
  reset role;
  perform t.eq((v_sv ->> 'version')::int, 1, 'service_role may call');
  perform t.eq(jsonb_array_length(v_pull -> 'rows'), 4, 'service_role pulls');
  perform t.eq(v_push -> 'results', '[]'::jsonb, 'service_role pushes');
  perform t.eq(v_list -> 'exceptions', '[]'::jsonb, 'service_role lists');
  raise notice 'PASS: execute rights';
end
$test$;

-- SETUP: request headers the way PostgREST passes them
create or replace function t.as_site(p_key text, p_source text default '203.0.113.7') returns void
language sql as $$
  select set_config('request.headers',
                    jsonb_strip_nulls(jsonb_build_object('x-mps-site-key', p_key, 'x-forwarded-for', p_source))::text,
                    false),
         set_config('response.status', '', false),
         set_config('request.jwt.claims', '{"role": "anon"}', false);
$$;
create or replace function t.no_site() returns void language sql as $$
  select set_config('request.headers', '', false), set_config('request.jwt.claims', '', false),
         set_config('response.status', '', false);
$$;

-- TEST: site keys: registered once, hashed, site and merchant from the key, revocation, mismatch
do $test$
declare
  v_reg   jsonb;
  v_key   text;
  v_res   jsonb;
  v_card  uuid;
  v_code  text;
  v_other uuid := t.merchant('SHOP2');
  v_again jsonb;
  v_op1   jsonb;
  v_op2   jsonb;
  v_op3   jsonb;
begin
  perform t.merchant('SHOP1');
  perform t.as_admin();
  v_card := t.new_card('Key Kim', 100);
  perform t.as_nobody();
  -- built before SET ROLE anon (anon has no usage on schema t)
  v_op1 := t.with_proof(t.op_charge(1, v_card, 10, 1.000, 'PAY-SKEY-000001'), t.fresh_qr(v_card));
  v_op2 := t.with_proof(t.op_charge(2, v_card, 10, 1.000, 'PAY-SOTHER-000002'), t.fresh_qr(v_card));
  v_op3 := t.with_proof(t.op_charge(3, v_card, 10, 1.000, 'PAY-SKEY-000003'), t.fresh_qr(v_card));

  v_reg := public.edge_register_site('SHOP1', 'SKEY');
  v_key := v_reg ->> 'site_key';
  perform t.check(v_key ~ '^mps_site_[A-Za-z0-9_-]{43}$', 'a 256-bit key, shown once');
  perform t.eq(v_reg ->> 'site_code', 'SKEY', 'site code');
  perform t.check(not exists (select 1 from mps_edge.sites s where s.key_hash = v_key or s.key_hint = v_key),
                  'only the hash is stored');
  perform t.expect_error($$select public.edge_register_site('SHOP1', 'SKEY')$$, 'EDGE_SITE_ALREADY_REGISTERED');
  perform t.expect_error($$select public.edge_register_site('SHOP1', 's-bad')$$, 'EDGE_INVALID_REQUEST');
  perform t.expect_error($$select public.edge_register_site('NO-SUCH', 'SNEW')$$, 'MERCHANT_NOT_FOUND');

  -- anon + key: site and merchant come from the key
  perform t.as_site(v_key);
  set local role anon;
  v_res := public.edge_sync_version();
  reset role;
  perform t.eq(v_res ->> 'site_code', 'SKEY', 'version names the key''s site');
  perform t.eq(v_res ->> 'merchant_code', 'SHOP1', 'and its merchant');
  set local role anon;
  v_res := public.edge_apply_batch(null, null, jsonb_build_array(v_op1));
  reset role;
  perform t.eq(v_res -> 'results' -> 0 ->> 'status', 'applied', 'a keyed push applies');
  perform t.eq((select t.merchant_id from public.transactions t where t.tx_no = 'PAY-SKEY-000001'),
               t.merchant('SHOP1'), 'for the key''s merchant');
  -- another site's numbers are refused: they would take that site's tx_no
  set local role anon;
  v_res := public.edge_apply_batch(null, null, jsonb_build_array(v_op2));
  reset role;
  perform t.eq(v_res -> 'results' -> 0 ->> 'reason', 'EDGE_INVALID_OPERATION', 'foreign tx_no refused');
  -- arguments that disagree with the key
  set local role anon;
  v_code := public.edge_apply_batch('SOTHER', 'SHOP1', '[]') ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_SITE_MISMATCH', 'another site code');
  perform t.eq(current_setting('response.status', true), '403', 'mismatch is 403');
  set local role anon;
  v_code := public.edge_pull_changes('SHOP2', 'SKEY', 'merchant') ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_SITE_MISMATCH', 'another merchant');
  set local role anon;
  v_res := public.edge_pull_changes(null, null, 'merchant');
  reset role;
  perform t.eq(v_res -> 'rows' -> 0 ->> 'code', 'SHOP1', 'pull: the key''s merchant');

  -- revocation stops pushes and pulls at once
  perform t.no_site();
  v_res := public.edge_revoke_site('SKEY');
  perform t.check(v_res ->> 'revoked_at' is not null, 'revoked');
  perform t.eq(public.edge_revoke_site('SKEY') ->> 'revoked_at', v_res ->> 'revoked_at', 'revoking again changes nothing');
  perform t.as_site(v_key);
  set local role anon;
  v_code := public.edge_apply_batch(null, null, jsonb_build_array(v_op3)) ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_SITE_REVOKED', 'a revoked key cannot push');
  perform t.eq((t.card(v_card)).balance, 90.00::numeric, 'nothing applied after revocation');
  set local role anon;
  v_code := public.edge_pull_changes(null, null, 'cards') ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_SITE_REVOKED', 'nor pull');

  -- a new key for the same site and merchant; the old one stays dead
  perform t.no_site();
  v_again := public.edge_register_site('SHOP1', 'SKEY');
  perform t.check(v_again ->> 'site_key' <> v_key, 'a fresh key');
  perform t.expect_error($$select public.edge_revoke_site('NOPE')$$, 'EDGE_SITE_NOT_FOUND');
  perform public.edge_revoke_site('SKEY');
  perform t.expect_error($$select public.edge_register_site('SHOP2', 'SKEY')$$, 'EDGE_SITE_CODE_TAKEN');
  perform t.eq((select count(*)::int from audit.event_log e where e.action in ('EDGE_SITE_REGISTER', 'EDGE_SITE_REVOKE')
                   and e.context ->> 'site' = 'SKEY'), 4, 'audited');

  -- only the service role or a super admin may register
  perform t.as_site(null);
  set local role anon;
  begin
    perform public.edge_register_site('SHOP1', 'SANON');
    v_code := 'succeeded';
  exception when others then
    get stacked diagnostics v_code = message_text;
  end;
  reset role;
  perform t.check(v_code like 'PERMISSION_DENIED%', 'anon cannot register: ' || v_code);
  perform t.no_site();
  perform t.as_admin();
  perform t.eq(public.edge_register_site('SHOP1', 'SADMIN') ->> 'site_code', 'SADMIN', 'a super admin can');
  perform t.as_nobody();
  raise notice 'PASS: site keys';
end
$test$;

-- TEST: proof of presence: a keyed push debits only cards whose token the till read, once, at central's discount
do $test$
declare
  v_k1    text := public.edge_register_site('SHOP1', 'SPA') ->> 'site_key';
  v_k2    text := public.edge_register_site('SHOP1', 'SPB') ->> 'site_key';
  v_card  uuid;
  v_other uuid;
  v_qr    text;
  v_hash  text;
  v_mq1   text;
  v_ops   jsonb;
  v_res   jsonb;
  v_state jsonb;
  v_pull  jsonb;
  v_valid uuid;
  v_sid   text;
begin
  perform t.as_admin();
  v_card := t.new_card('Proof Pam', 100);
  v_other := t.new_card('Proof Otto', 100);
  v_qr := t.fresh_qr(v_card);
  v_hash := (select token_hash from public.card_qr_state where card_id = v_card);
  v_state := t.card_state(v_card);

  -- forged ops: no proof, a made-up token, another card's token, dated before
  -- the token, a discount central never gave: each an exception, nothing applied
  v_mq1 := t.fresh_qr(v_other, true);
  v_ops := jsonb_build_array(
    t.op_charge(1, v_card, 10, 1.000, 'PAY-SPA-1'),
    t.with_proof(t.op_charge(2, v_card, 10, 1.000, 'PAY-SPA-2'), 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG', v_hash),
    t.with_proof(t.op_charge(3, v_card, 10, 1.000, 'PAY-SPA-3'), v_mq1),
    t.with_proof(t.op_charge(4, v_card, 10, 1.000, 'PAY-SPA-4', now() - interval '1 hour'), v_qr, v_hash),
    t.with_proof(t.op_charge(5, v_card, 1000, 0.000, 'PAY-SPA-5'), v_qr, v_hash));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq((select string_agg(r ->> 'reason', ',') from jsonb_array_elements(v_res -> 'results') r),
               'QR_PROOF_INVALID,QR_PROOF_INVALID,QR_PROOF_INVALID,QR_PROOF_INVALID,DISCOUNT_MISMATCH', 'forged ops refused');
  perform t.eq(t.card_state(v_card), v_state, 'the card is untouched');
  perform t.eq((select count(*)::int from mps_edge.exceptions where site_code = 'SPA'), 5, 'five exceptions');
  perform t.check(not exists (select 1 from mps_edge.qr_used where token_hash = v_hash),
                  'a refused op does not use the token up');
  perform t.eq(public.validate_qr_plain(v_qr), v_card, 'central still accepts the token');

  -- the genuine sale applies and uses the token up everywhere
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(6, v_card, 10, 1.000, 'PAY-SPA-6'), v_qr, v_hash));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  v_pull := public.edge_pull_changes(null, null, 'qr_states', now() - interval '1 hour', null, 5000);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'status', 'applied', 'the genuine sale applies');
  perform t.eq((t.card(v_card)).balance, 90.00::numeric, 'charged once');
  perform t.eq((select (r ->> 'used')::boolean from jsonb_array_elements(v_pull -> 'rows') r
                 where r ->> 'card_id' = v_card::text), true, 'the pull says used');
  perform t.eq((select (r ->> 'expires_at')::timestamptz <= now() from jsonb_array_elements(v_pull -> 'rows') r
                 where r ->> 'card_id' = v_card::text), true, 'and expired');
  v_valid := null;
  begin
    v_valid := public.validate_qr_plain(v_qr);
  exception when others then
    v_valid := null;
  end;
  perform t.check(v_valid is null, 'central''s validator refuses the used token');
  perform t.as_nobody();
  v_sid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  perform t.expect_error(format('select * from public.merchant_charge_by_qr(%L, %L, 5, null, %L::jsonb, null, %L)',
                                'SHOP1', v_qr, '{}', v_sid), 'QR_EXPIRED_OR_INVALID');
  perform t.as_nobody();

  -- the same token from another store (both accepted it offline): the second loses
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(1, v_card, 10, 1.000, 'PAY-SPB-1'), v_qr, v_hash));
  perform t.as_site(v_k2);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'reason', 'QR_ALREADY_USED', 'the second store''s op is refused');
  perform t.eq((t.card(v_card)).balance, 90.00::numeric, 'still charged once');

  -- an mq1 token checks by SHA-256, for its own card only
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(7, v_other, 10, 1.000, 'PAY-SPA-7'), v_mq1));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'status', 'applied', 'mq1 proof applies');

  -- a token used at central is marked used for the edges
  v_qr := t.fresh_qr(v_other);
  perform t.as_nobody();
  v_sid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  perform public.merchant_charge_by_qr('SHOP1', v_qr, 5, null, '{}'::jsonb, null, v_sid);
  perform t.as_nobody();
  perform t.check(exists (select 1 from mps_edge.qr_used u join public.card_qr_state q on q.token_hash = u.token_hash
                           where q.card_id = v_other and u.site_code = 'central'), 'central payment marks the token used');
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(8, v_other, 10, 1.000, 'PAY-SPA-8'), v_qr));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'reason', 'QR_ALREADY_USED', 'and an edge op with it is refused');
  raise notice 'PASS: proof of presence';
end
$test$;

-- SETUP: offline code (mq2) helpers: the member's app's arithmetic, in SQL
create or replace function t.sha_n(p_v bytea, p_n int) returns bytea
language plpgsql as $$
declare
  v bytea := p_v;
begin
  for i in 1 .. p_n loop
    v := extensions.digest(v, 'sha256');
  end loop;
  return v;
end $$;

create or replace function t.b64url(p_v bytea) returns text
language sql as $$ select rtrim(translate(encode(p_v, 'base64'), '+/', '-_'), '=') $$;

-- The code for slot j of the chain of seed s with n slots: v_j = H^(n-j)(s).
create or replace function t.mq2(p_card uuid, p_seed bytea, p_n int, p_j int) returns text
language sql as $$
  select 'mq2.' || replace(p_card::text, '-', '') || '.' || left(encode(t.sha_n(p_seed, p_n), 'hex'), 16)
         || '.' || p_j || '.' || t.b64url(t.sha_n(p_seed, p_n - p_j))
$$;

-- TEST: offline codes (mq2): enrolled under rotate_card_qr's rules, each slot pays once, forgeries and revoked chains refused, pulled by edges
do $test$
declare
  v_k1    text := public.edge_register_site('SHOP1', 'SQA') ->> 'site_key';
  v_k2    text := public.edge_register_site('SHOP1', 'SQB') ->> 'site_key';
  v_m     uuid;
  v_card  uuid;
  v_other uuid;
  v_sid   text;
  v_msid  text;
  v_seed  bytea := extensions.gen_random_bytes(32);
  v_seed2 bytea := extensions.gen_random_bytes(32);
  v_n     int := 1440;           -- one day of 60 s slots
  v_epoch timestamptz := now() - interval '3 hours';
  v_j     int := 181;            -- the slot of now: floor(3 h / 60 s) + 1
  v_en    record;
  v_ops   jsonb;
  v_res   jsonb;
  v_pull  jsonb;
  v_row   jsonb;
  v_forged text;
  v_used  bytea;
  v_state jsonb;
begin
  perform t.as_admin();
  v_m := public.create_member_profile('Offline Ola', '0900000601', null, 'olapass1');
  select id into v_card from public.member_cards where owner_member_id = v_m and card_type = 'standard';
  perform public.user_recharge_card(v_card, 100);
  v_other := t.new_card('Offline Otto', 100);

  -- the member enrols; only the anchor leaves the phone
  perform t.as_nobody();
  v_sid := public.member_login('0900000601', 'olapass1') ->> 'session_id';
  perform t.as_nobody();
  select * into v_en from public.edge_enroll_offline_qr(v_card, t.b64url(t.sha_n(v_seed, v_n)), 60, v_epoch, v_n, v_sid);
  perform t.eq(v_en.chain_id, left(encode(t.sha_n(v_seed, v_n), 'hex'), 16), 'chain id = first 16 hex of the anchor');
  perform t.eq(v_en.valid_until, v_epoch + interval '1 day', 'valid for n slots');
  perform t.check(exists (select 1 from audit.event_log where action = 'QR_OFFLINE_ENROL' and object_id = v_card),
                  'enrolment audited');
  perform t.check(not exists (select 1 from mps_edge.qr_chains c where c.anchor = t.sha_n(v_seed, v_n - 1)),
                  'central holds the anchor only');

  -- rights and bounds: rotate_card_qr's rules; nonsense refused, nothing written
  perform t.expect_error(format('select * from public.edge_enroll_offline_qr(%L, %L, 60, now(), 10, %L)',
                                v_other, t.b64url(t.sha_n(v_seed2, 10)), v_sid),
                         'PERMISSION_DENIED: 您沒有權限為此卡片生成 QR 碼');
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_enroll_offline_qr(%L, %L, 60, now(), 10)',
                                v_card, t.b64url(t.sha_n(v_seed2, 10))),
                         'PERMISSION_DENIED: 需要登入才能生成 QR 碼');
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_enroll_offline_qr(%L, %L, 60, now(), 10, %L)',
                                v_card, 'not-base64url', v_sid),
                         'INVALID_PARAMETER: anchor must be 32 bytes in base64url (43 characters, no padding)');
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_enroll_offline_qr(%L, %L, 5, now(), 10, %L)',
                                v_card, t.b64url(t.sha_n(v_seed2, 10)), v_sid),
                         'INVALID_PARAMETER: slot_secs must be between 15 and 600');
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_enroll_offline_qr(%L, %L, 60, now(), 20161, %L)',
                                v_card, t.b64url(t.sha_n(v_seed2, 10)), v_sid),
                         'INVALID_PARAMETER: slots must be at least 1 and cover at most 14 days');
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_enroll_offline_qr(%L, %L, 60, now() - interval ''2 days'', 10, %L)',
                                v_card, t.b64url(t.sha_n(v_seed2, 10)), v_sid),
                         'INVALID_PARAMETER: epoch must be within a day of now');
  perform t.as_nobody();
  perform t.eq((select count(*)::int from mps_edge.qr_chains where card_id in (v_card, v_other)), 1, 'one chain');

  -- the edges pull the chain (a bootstrap sees live chains only)
  perform t.as_site(v_k1);
  set local role anon;
  v_pull := public.edge_pull_changes(null, null, 'qr_chains', null, null, 5000);
  reset role;
  perform t.no_site();
  select r into v_row from jsonb_array_elements(v_pull -> 'rows') r where r ->> 'card_id' = v_card::text;
  perform t.eq(v_row ->> 'anchor', t.b64url(t.sha_n(v_seed, v_n)), 'pull: the anchor');
  perform t.eq((v_row ->> 'slots')::int, v_n, 'pull: slots');
  perform t.eq((v_row ->> 'slot_secs')::int, 60, 'pull: slot length');
  perform t.eq((v_row ->> 'epoch')::timestamptz, v_epoch, 'pull: epoch');
  perform t.eq(v_row -> 'revoked_at', 'null'::jsonb, 'pull: live');

  -- forged and misfit codes: each QR_PROOF_INVALID, nothing applied, nothing used
  v_state := t.card_state(v_card);
  -- the anchor's preimage chain run backwards is not computable; H(v_k) of a known
  -- value is the value of an EARLIER slot, not a later one
  v_forged := 'mq2.' || replace(v_card::text, '-', '') || '.' || v_en.chain_id || '.' || (v_j + 1) || '.'
              || t.b64url(extensions.digest(t.sha_n(v_seed, v_n - v_j), 'sha256'));
  v_ops := jsonb_build_array(
    t.with_proof(t.op_charge(1, v_card, 10, 1.000, 'PAY-SQA-1'), v_forged),
    t.with_proof(t.op_charge(2, v_other, 10, 1.000, 'PAY-SQA-2'), t.mq2(v_card, v_seed, v_n, v_j)),
    t.with_proof(t.op_charge(3, v_card, 10, 1.000, 'PAY-SQA-3'), t.mq2(v_card, v_seed, v_n, v_j + 60)),
    t.with_proof(t.op_charge(4, v_card, 10, 1.000, 'PAY-SQA-4'), t.mq2(v_card, v_seed2, v_n, v_j)),
    t.with_proof(t.op_charge(5, v_card, 10, 1.000, 'PAY-SQA-5'), t.mq2(v_card, v_seed, v_n, v_n + 1)),
    t.with_proof(t.op_charge(6, v_card, 10, 1.000, 'PAY-SQA-6'), t.mq2(v_card, v_seed, v_n, v_j) || 'A'));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq((select string_agg(r ->> 'reason', ',') from jsonb_array_elements(v_res -> 'results') r),
               'QR_PROOF_INVALID,QR_PROOF_INVALID,QR_PROOF_INVALID,QR_PROOF_INVALID,QR_PROOF_INVALID,QR_PROOF_INVALID',
               'forged, another card''s, a far slot, another chain, past the end, malformed');
  perform t.eq(t.card_state(v_card), v_state, 'the card is untouched');
  perform t.eq((select count(*)::int from mps_edge.qr_chain_slots where card_id = v_card), 0, 'no slot used');

  -- the genuine code of the sale's slot pays once; the walk starts at the anchor
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(7, v_card, 10, 1.000, 'PAY-SQA-7'),
                                          t.mq2(v_card, v_seed, v_n, v_j)));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'status', 'applied', 'the genuine code applies');
  perform t.eq((t.card(v_card)).balance, 90.00::numeric, 'charged once');
  select value into v_used from mps_edge.qr_chain_slots where card_id = v_card and slot = v_j;
  perform t.eq(v_used, t.sha_n(v_seed, v_n - v_j), 'the used value is recorded for the next walk');

  -- the same slot from another store (both offline in the same minute): refused
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(1, v_card, 10, 1.000, 'PAY-SQB-1'),
                                          t.mq2(v_card, v_seed, v_n, v_j)));
  perform t.as_site(v_k2);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'reason', 'QR_ALREADY_USED', 'a slot pays once');
  perform t.eq((t.card(v_card)).balance, 90.00::numeric, 'still charged once');

  -- the next minute's code walks one hash from the used value; edges learn the highest used slot
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(2, v_card, 5, 1.000, 'PAY-SQB-2', now() + interval '1 minute'),
                                          t.mq2(v_card, v_seed, v_n, v_j + 1)));
  perform t.as_site(v_k2);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  v_pull := public.edge_pull_changes(null, null, 'qr_chains', now() - interval '1 hour', null, 5000);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'status', 'applied', 'the next slot applies');
  perform t.eq((select (r ->> 'used_through')::int from jsonb_array_elements(v_pull -> 'rows') r
                 where r ->> 'card_id' = v_card::text), v_j + 1, 'pull: used_through');

  -- enrolling again revokes the old chain: its codes prove only sales dated before
  perform t.as_nobody();
  select * into v_en from public.edge_enroll_offline_qr(v_card, t.b64url(t.sha_n(v_seed2, v_n)), 60, v_epoch, v_n, v_sid);
  perform t.as_nobody();
  perform t.eq((select count(*)::int from mps_edge.qr_chains where card_id = v_card and revoked_at is null), 1,
               'one live chain');
  v_ops := jsonb_build_array(
    t.with_proof(t.op_charge(8, v_card, 1, 1.000, 'PAY-SQA-8', now() + interval '10 minutes'),
                 t.mq2(v_card, v_seed, v_n, v_j + 10)),
    t.with_proof(t.op_charge(9, v_card, 1, 1.000, 'PAY-SQA-9', now() - interval '2 minutes'),
                 t.mq2(v_card, v_seed, v_n, v_j - 2)),
    t.with_proof(t.op_charge(10, v_card, 1, 1.000, 'PAY-SQA-10'), t.mq2(v_card, v_seed2, v_n, v_j)));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq((select string_agg(coalesce(r ->> 'reason', r ->> 'status'), ',') from jsonb_array_elements(v_res -> 'results') r),
               'QR_PROOF_INVALID,applied,applied',
               'old chain after its revocation refused; before it (out of order) and the new chain apply');

  -- a code is dead once a later slot paid in a sale dated clearly before it (a photo of
  -- slot j hashes into the codes of j-1, j-2, ...): slot j-3 sold 5 minutes after slot j
  -- paid is refused; slot j-4 sold a minute after (stores' clocks differ) still applies
  v_ops := jsonb_build_array(
    t.with_proof(t.op_charge(11, v_card, 1, 1.000, 'PAY-SQA-11', now() + interval '5 minutes'),
                 t.mq2(v_card, v_seed2, v_n, v_j - 3)),
    t.with_proof(t.op_charge(12, v_card, 1, 1.000, 'PAY-SQA-12', now() + interval '1 minute'),
                 t.mq2(v_card, v_seed2, v_n, v_j - 4)));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq((select string_agg(coalesce(r ->> 'reason', r ->> 'status'), ',') from jsonb_array_elements(v_res -> 'results') r),
               'QR_ALREADY_USED,applied',
               'an earlier slot sold clearly after a later one paid is refused; within 2 minutes it applies');

  -- a lost phone: revoked; the edges pull the revocation
  perform t.as_nobody();
  perform t.eq(public.edge_revoke_offline_qr(v_card, v_sid), 1, 'one chain revoked');
  perform t.as_nobody();
  perform t.check(exists (select 1 from audit.event_log where action = 'QR_OFFLINE_REVOKE' and object_id = v_card),
                  'revocation audited');
  perform t.as_site(v_k1);
  set local role anon;
  v_pull := public.edge_pull_changes(null, null, 'qr_chains', now() - interval '1 hour', null, 5000);
  reset role;
  perform t.no_site();
  perform t.check((select bool_and(r ->> 'revoked_at' is not null) from jsonb_array_elements(v_pull -> 'rows') r
                    where r ->> 'card_id' = v_card::text), 'pull: both chains revoked');
  v_ops := jsonb_build_array(t.with_proof(t.op_charge(13, v_card, 1, 1.000, 'PAY-SQA-13', now() + interval '10 minutes'),
                                          t.mq2(v_card, v_seed2, v_n, v_j + 10)));
  perform t.as_site(v_k1);
  set local role anon;
  v_res := public.edge_apply_batch(null, null, v_ops);
  reset role;
  perform t.no_site();
  perform t.eq(v_res -> 'results' -> 0 ->> 'reason', 'QR_PROOF_INVALID', 'a revoked chain pays no more');

  -- a merchant may not enrol or revoke
  perform t.as_nobody();
  v_msid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  perform t.expect_error(format('select public.edge_revoke_offline_qr(%L, %L)', v_card, v_msid),
                         'PERMISSION_DENIED: 商戶不能生成 QR 碼');
  perform t.as_nobody();
  raise notice 'PASS: offline codes (mq2)';
end
$test$;

-- TEST: a chain's used slots are forgotten 35 days after its last slot, and a code that old is refused
do $test$
declare
  v_card uuid;
  v_seed bytea := extensions.gen_random_bytes(32);
  v_gone int;
begin
  perform t.as_admin();
  v_card := t.new_card('Old Chain', 100);
  insert into mps_edge.qr_chains (card_id, chain_id, anchor, epoch, slot_secs, slots, ends_at)
  values (v_card, left(encode(t.sha_n(v_seed, 10), 'hex'), 16), t.sha_n(v_seed, 10),
          now() - interval '40 days', 60, 10, now() - interval '40 days' + interval '10 minutes');
  insert into mps_edge.qr_chain_slots (card_id, chain_id, slot, value, site_code)
  values (v_card, left(encode(t.sha_n(v_seed, 10), 'hex'), 16), 1, t.sha_n(v_seed, 9), 'SQA');
  perform t.expect_error(format('select mps_edge.check_chain_proof(%L, %L, %L, %L, null, now())',
                                t.mq2(v_card, v_seed, 10, 2), v_card, now() - interval '40 days' + interval '1 minute', 'SQA'),
                         'QR_PROOF_INVALID');
  v_gone := mps_edge.prune_proofs(now(), 500);
  perform t.check(v_gone >= 0, 'pruned');
  perform t.check(not exists (select 1 from mps_edge.qr_chains where card_id = v_card), 'the chain is gone');
  perform t.check(not exists (select 1 from mps_edge.qr_chain_slots where card_id = v_card), 'with its slots');
  perform t.as_nobody();
  raise notice 'PASS: old chains pruned';
end
$test$;

-- TEST: the discount of a pushed charge must be one central gave the card: now, or any time from 7 days before the sale
do $test$
declare
  v_card uuid;
  v_res  jsonb;
begin
  perform t.as_admin();
  v_card := t.new_card('Disc Dora', 500);
  perform t.as_nobody();
  -- a corporate discount the card had, then lost
  update public.member_cards set corporate_discount = 0.800 where id = v_card;
  update public.member_cards set corporate_discount = null where id = v_card;
  insert into mps_edge.card_discount_changes (card_id, discount, changed_at)
  values (v_card, 0.700, now() - interval '10 days');
  v_res := public.edge_apply_batch('SDSC', 'SHOP1', jsonb_build_array(
    t.op_charge(1, v_card, 10, 0.800, 'PAY-SDSC-1'),                               -- had it minutes ago
    t.op_charge(2, v_card, 10, 0.900, 'PAY-SDSC-2'),                               -- never
    t.op_charge(3, v_card, 10, 0.700, 'PAY-SDSC-3'),                               -- had it, but 10 days ago
    t.op_charge(4, v_card, 10, 1.000, 'PAY-SDSC-4')));                              -- what it has now
  perform t.eq((select string_agg(coalesce(r ->> 'reason', r ->> 'status'), ',') from jsonb_array_elements(v_res -> 'results') r),
               'applied,DISCOUNT_MISMATCH,DISCOUNT_MISMATCH,applied', 'discounts checked against central''s data');
  raise notice 'PASS: discount check';
end
$test$;

-- TEST: used tokens are forgotten 35 days after they expired, and a proof that old is refused
do $test$
declare
  v_card uuid;
  v_old  text;
  v_new  text;
  v_res  jsonb;
begin
  perform t.as_admin();
  v_card := t.new_card('Old Olga', 100);
  perform t.as_nobody();
  v_old := t.fresh_qr(v_card, true);
  update mps_edge.qr_issued set issued_at = now() - interval '40 days', expires_at = now() - interval '36 days'
   where verifier = encode(extensions.digest(v_old, 'sha256'), 'hex');
  v_new := t.fresh_qr(v_card, true);
  insert into mps_edge.qr_used (token_hash, card_id, site_code, expires_at)
  values ('old-used', v_card, 'SOLD', now() - interval '36 days'),
         ('recent-used', v_card, 'SOLD', now() - interval '34 days'),
         ('legacy-row', v_card, 'SOLD', null);
  -- a sale dated while the old token was valid: too old to check now
  v_res := public.edge_apply_batch('SOLD', 'SHOP1', jsonb_build_array(
    t.with_proof(t.op_charge(1, v_card, 10, 1.000, 'PAY-SOLD-1', now() - interval '37 days'), v_old),
    t.with_proof(t.op_charge(2, v_card, 10, 1.000, 'PAY-SOLD-2'), v_new)));
  perform t.eq((select string_agg(coalesce(r ->> 'reason', r ->> 'status'), ',') from jsonb_array_elements(v_res -> 'results') r),
               'QR_PROOF_INVALID,applied', 'a proof older than central''s memory is refused');
  perform t.eq(mps_edge.prune_proofs(now(), 500), 2, 'one issued and one used row forgotten');
  perform t.check(not exists (select 1 from mps_edge.qr_issued where verifier = encode(extensions.digest(v_old, 'sha256'), 'hex')),
                  'the old token is forgotten');
  perform t.eq((select string_agg(token_hash, ',' order by token_hash) from mps_edge.qr_used
                 where token_hash in ('old-used', 'recent-used', 'legacy-row')), 'legacy-row,recent-used',
               'recent and undated rows stay');
  perform t.check(exists (select 1 from mps_edge.qr_used u where u.card_id = v_card and u.expires_at > now()),
                  'the new token is used, with its expiry');
  raise notice 'PASS: proof records are pruned';
end
$test$;

-- TEST: heartbeats: one row per site, skew measured by central, head office sees who needs a look
do $test$
declare
  v_key  text := public.edge_register_site('SHOP1', 'SHB') ->> 'site_key';
  v_res  jsonb;
  v_list jsonb;
  v_site jsonb;
  v_code text;
begin
  perform public.edge_register_site('SHOP1', 'SHBQUIET');
  perform t.as_site(v_key);
  set local role anon;
  v_res := public.edge_report_status(null, null, jsonb_build_object(
    'edge_time', now() + interval '10 minutes', 'version', '0.1.0', 'protocol', 1, 'queue_depth', 5000,
    'oldest_pending_age_secs', 30, 'open_exceptions', 2, 'replica_age_secs', 40, 'last_error', 'central unreachable'));
  v_res := public.edge_report_status(null, null, jsonb_build_object(
    'edge_time', now() + interval '10 minutes', 'version', '0.1.1', 'protocol', 1, 'queue_depth', 5000,
    'oldest_pending_age_secs', 30, 'open_exceptions', 2, 'replica_age_secs', 40, 'last_error', 'central unreachable'));
  v_code := public.edge_report_status(null, null, '[1]') ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_INVALID_REQUEST', 'a status must be an object');
  perform t.check(abs((v_res ->> 'clock_skew_secs')::numeric - 600) < 5, 'skew measured by central: ' || v_res::text);
  perform t.no_site();
  perform t.eq((select count(*)::int from mps_edge.site_status where site_code = 'SHB'), 1, 'one row per site');

  -- anon without an admin session may not list
  perform t.as_site(null);
  set local role anon;
  begin
    perform public.edge_list_sites();
    v_code := 'listed';
  exception when others then
    get stacked diagnostics v_code = message_text;
  end;
  reset role;
  perform t.check(v_code like 'PERMISSION_DENIED%', 'anon cannot list sites');
  perform t.no_site();

  v_list := public.edge_list_sites(600, 1000, 120);
  select j into v_site from jsonb_array_elements(v_list -> 'sites') j where j ->> 'site_code' = 'SHB';
  perform t.eq(v_site ->> 'version', '0.1.1', 'the last report wins');
  perform t.eq(v_site -> 'flags', '["behind", "skewed"]'::jsonb, 'behind and skewed');
  select j into v_site from jsonb_array_elements(v_list -> 'sites') j where j ->> 'site_code' = 'SHBQUIET';
  perform t.eq(v_site -> 'flags', '["never_seen"]'::jsonb, 'a registered site that never reported');
  update mps_edge.site_status set reported_at = now() - interval '1 hour' where site_code = 'SHB';
  select j into v_site from jsonb_array_elements(public.edge_list_sites(600, 1000, 120) -> 'sites') j
   where j ->> 'site_code' = 'SHB';
  perform t.check(v_site -> 'flags' ? 'silent', 'silent after the threshold');
  raise notice 'PASS: heartbeats';
end
$test$;

-- TEST: minimal replication: a site key gets no member names unless its merchant shares them
do $test$
declare
  v_key   text := public.edge_register_site('SHOP1', 'SMIN') ->> 'site_key';
  v_card  uuid;
  v_pull  jsonb;
  v_cards jsonb;
  v_sid   text;
  v_msg   text;
begin
  perform t.as_admin();
  v_card := t.new_card('Private Pia');
  update public.member_cards set name = 'Pia''s card' where id = v_card;
  perform t.as_nobody();
  perform t.as_site(v_key);
  set local role anon;
  v_pull := public.edge_pull_changes(null, null, 'members', null, null, 5000);
  v_cards := public.edge_pull_changes(null, null, 'cards', null, null, 5000);
  reset role;
  perform t.no_site();
  perform t.check(jsonb_array_length(v_pull -> 'rows') > 0, 'members are pulled');
  perform t.check(not exists (select 1 from jsonb_array_elements(v_pull -> 'rows') r where r ->> 'name' is not null),
                  'no member name leaves central by default');
  perform t.check(not exists (select 1 from jsonb_array_elements(v_cards -> 'rows') r where r ->> 'name' is not null),
                  'nor a card name');
  perform t.check(not exists (select 1 from jsonb_array_elements(v_pull -> 'rows') r, jsonb_object_keys(r) k
                               where k in ('password_hash', 'phone', 'email')), 'no password hash or contact');

  -- another merchant cannot turn it on; the site's own merchant can
  perform t.merchant('SHOP2');
  perform t.as_nobody();
  v_sid := public.merchant_login('SHOP2', 'mpass123') ->> 'session_id';
  perform t.as_site(null);
  set local role anon;
  begin
    perform public.edge_set_site_options('SMIN', true, v_sid);
    v_msg := 'changed';
  exception when others then
    get stacked diagnostics v_msg = message_text;
  end;
  reset role;
  perform t.check(v_msg like 'PERMISSION_DENIED%', 'another merchant is refused: ' || v_msg);
  perform t.as_nobody();
  v_sid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  perform t.as_site(null);
  set local role anon;
  v_msg := public.edge_set_site_options('SMIN', true, v_sid) ->> 'share_member_names';
  reset role;
  perform t.eq(v_msg, 'true', 'the merchant shares names with its site');
  perform t.as_site(v_key);
  set local role anon;
  v_pull := public.edge_pull_changes(null, null, 'members', null, null, 5000);
  reset role;
  perform t.no_site();
  perform t.check(exists (select 1 from jsonb_array_elements(v_pull -> 'rows') r where r ->> 'name' = 'Private Pia'),
                  'names once shared');
  perform t.as_nobody();
  raise notice 'PASS: minimal replication';
end
$test$;

-- TEST: unknown site keys are counted per address and throttled; a good key still works
do $test$
declare
  v_key  text;
  v_code text;
  i      int;
begin
  perform t.no_site();
  v_key := public.edge_register_site('SHOP1', 'STHR') ->> 'site_key';
  for i in 1 .. 20 loop
    perform t.as_site('mps_site_guess' || i, '198.51.100.1, 203.0.113.9');
    set local role anon;
    v_code := public.edge_sync_version() ->> 'code';
    reset role;
    perform t.eq(v_code, 'EDGE_SITE_KEY_INVALID', 'unknown key ' || i);
  end loop;
  perform t.eq((select failures from mps_edge.key_failures where source = '203.0.113.9'), 20,
               'counted against the last forwarded hop');
  perform t.as_site('mps_site_guess21', '203.0.113.9');
  set local role anon;
  v_code := public.edge_sync_version() ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_SITE_KEY_THROTTLED', 'the 21st is throttled');
  perform t.eq(current_setting('response.status', true), '429', '429');
  perform t.eq((select failures from mps_edge.key_failures where source = '203.0.113.9'), 20,
               'a throttled attempt writes nothing');
  -- the real store behind the same address still gets in
  perform t.as_site(v_key, '203.0.113.9');
  set local role anon;
  v_code := public.edge_sync_version() ->> 'site_code';
  reset role;
  perform t.eq(v_code, 'STHR', 'a good key is never throttled');
  -- another address is not affected
  perform t.as_site('mps_site_guess22', '192.0.2.5');
  set local role anon;
  v_code := public.edge_sync_version() ->> 'code';
  reset role;
  perform t.eq(v_code, 'EDGE_SITE_KEY_INVALID', 'other addresses are counted on their own');
  perform t.no_site();
  raise notice 'PASS: key throttling';
end
$test$;

-- TEST: edge_issue_qr issues mq1 tokens under rotate_card_qr's rules; central validates and charges them
do $test$
declare
  v_m1    uuid;
  v_m2    uuid;
  v_card1 uuid;
  v_card2 uuid;
  v_cor   uuid;
  v_bad   uuid := gen_random_uuid();
  v_sid1  text;
  v_msid  text;
  v_qr    record;
  v_qr2   record;
  v_hash  text;
  v_fast  mps_edge.qr_fast;
  v_pay   record;
  v_alt   text;
  v_ttl   int;
  v_rot   timestamptz;
  v_e1    text;
  v_e2    text;
  v_s1    text;
  v_s2    text;
begin
  perform t.as_admin();
  v_m1 := public.create_member_profile('Fast Fay', '0900000501', null, 'faypass1');
  v_m2 := public.create_member_profile('Fast Gus', '0900000502', null, 'guspass1');
  select id into v_card1 from public.member_cards where owner_member_id = v_m1 and card_type = 'standard';
  select id into v_card2 from public.member_cards where owner_member_id = v_m2 and card_type = 'standard';
  perform public.user_recharge_card(v_card1, 100);

  -- a member issues an mq1 token for their own card
  perform t.as_nobody();
  v_sid1 := public.member_login('0900000501', 'faypass1') ->> 'session_id';
  perform t.as_nobody();
  select * into v_qr from public.edge_issue_qr(v_card1, 900, v_sid1);
  perform t.check(v_qr.qr_plain ~ '^mq1\.[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$', 'mq1 format: ' || v_qr.qr_plain);
  perform t.eq(length(v_qr.qr_plain), 80, '4 + 32 + 1 + 43 chars');
  perform t.eq(split_part(v_qr.qr_plain, '.', 2)::uuid, v_card1, 'the token names its card');
  perform t.eq(split_part(v_qr.qr_plain, '.', 2), replace(v_card1::text, '-', ''), 'card id as 32 lowercase hex');
  perform t.eq(length(decode(translate(split_part(v_qr.qr_plain, '.', 3), '-_', '+/') || '=', 'base64')), 32,
               '43 base64url chars = 32 random bytes');
  perform t.eq(v_qr.qr_expires_at, now() + interval '900 seconds', 'TTL 900 s');

  -- the rows rotate_card_qr writes, plus qr_fast
  select token_hash into v_hash from public.card_qr_state where card_id = v_card1;
  perform t.check(v_hash like '$2a$06$%' and length(v_hash) = 60, 'bcrypt cost 6 hash in card_qr_state');
  perform t.eq(extensions.crypt(v_qr.qr_plain, v_hash), v_hash, 'bcrypt of the whole token text');
  perform t.eq((select expires_at from public.card_qr_state where card_id = v_card1), v_qr.qr_expires_at, 'state expiry');
  perform t.eq((select count(*)::int from public.card_qr_history
                 where card_id = v_card1 and token_hash = v_hash and expires_at = v_qr.qr_expires_at), 1, 'history row');
  perform t.check(exists (select 1 from audit.event_log
                           where action = 'QR_ROTATE' and object_type = 'member_cards' and object_id = v_card1
                             and context = '{"ttl": 900, "format": "mq1"}'::jsonb), 'QR_ROTATE audit row with the format');
  select * into v_fast from mps_edge.qr_fast where card_id = v_card1;
  perform t.eq(v_fast.token_hash, v_hash, 'qr_fast.token_hash = card_qr_state.token_hash');
  perform t.eq(v_fast.verifier, encode(extensions.digest(v_qr.qr_plain, 'sha256'), 'hex'), 'verifier = hex SHA-256');
  perform t.eq(v_fast.expires_at, v_qr.qr_expires_at, 'qr_fast expiry');

  -- central's own validator and charge accept it unchanged
  perform t.eq(public.validate_qr_plain(v_qr.qr_plain), v_card1, 'validate_qr_plain resolves the mq1 token');
  v_msid := public.merchant_login('SHOP1', 'mpass123') ->> 'session_id';
  select * into v_pay from public.merchant_charge_by_qr('SHOP1', v_qr.qr_plain, 12.34, null, '{}'::jsonb, null, v_msid);
  perform t.eq(v_pay.card_id, v_card1, 'merchant_charge_by_qr charged the token''s card');
  perform t.eq(v_pay.final_amount, 12.34, 'final amount');
  perform t.eq((t.card(v_card1)).balance, 87.66::numeric, 'balance 100 - 12.34');

  -- bcrypt reads only the first 72 bytes: central ignores the last 8 of the 43
  -- random chars (35 remain: 210 bits); the SHA-256 verifier covers all 80
  v_alt := left(v_qr.qr_plain, 72) || case when right(v_qr.qr_plain, 8) = 'AAAAAAAA' then 'BBBBBBBB' else 'AAAAAAAA' end;
  perform t.eq(extensions.crypt(v_alt, v_hash), v_hash, 'bcrypt ignores bytes past 72');
  perform t.check(encode(extensions.digest(v_alt, 'sha256'), 'hex') <> v_fast.verifier, 'the verifier does not');

  -- a merchant is refused, as by rotate_card_qr (the connection is now the merchant's)
  perform t.expect_error(format('select * from public.edge_issue_qr(%L, 900, %L)', v_card1, v_msid),
                         'PERMISSION_DENIED: 商戶不能生成 QR 碼');

  -- a member may not issue for someone else's card
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_issue_qr(%L, 900, %L)', v_card2, v_sid1),
                         'PERMISSION_DENIED: 您沒有權限為此卡片生成 QR 碼');
  perform t.expect_error(format('select * from public.rotate_card_qr(%L, 900, %L)', v_card2, v_sid1),
                         'PERMISSION_DENIED: 您沒有權限為此卡片生成 QR 碼');
  perform t.eq((select token_hash from mps_edge.qr_fast where card_id = v_card2), null::text, 'nothing written');

  -- ... but may for a card they hold an ACTIVE binding to
  perform t.as_admin();
  v_cor := public.create_corporate_card(v_m2, 'Gus Corp', 0, 0.900);
  perform public.set_card_binding_password(v_cor, 'corppw1');
  perform public.bind_member_to_card(v_cor, v_m1, 'member', 'corppw1');
  perform t.as_nobody();
  select * into v_qr2 from public.edge_issue_qr(v_cor, 900, v_sid1);
  perform t.eq(split_part(v_qr2.qr_plain, '.', 2)::uuid, v_cor, 'bound member issues for the shared card');
  update public.card_bindings set status = 'inactive' where card_id = v_cor and member_id = v_m1;
  perform t.expect_error(format('select * from public.edge_issue_qr(%L, 900, %L)', v_cor, v_sid1),
                         'PERMISSION_DENIED: 您沒有權限為此卡片生成 QR 碼');
  perform t.expect_error(format('select * from public.rotate_card_qr(%L, 900, %L)', v_cor, v_sid1),
                         'PERMISSION_DENIED: 您沒有權限為此卡片生成 QR 碼');

  -- no role at all (an unknown session id is ignored, as upstream)
  perform t.as_nobody();
  perform t.expect_error(format('select * from public.edge_issue_qr(%L)', v_card1), 'PERMISSION_DENIED: 需要登入才能生成 QR 碼');
  perform t.expect_error(format('select * from public.edge_issue_qr(%L, 900, %L)', v_card1, 'no-such-session'),
                         'PERMISSION_DENIED: 需要登入才能生成 QR 碼');

  -- the TTL rule is rotate_card_qr's: at least 60 s, null → 60, default 900, no maximum
  foreach v_ttl in array array[null, -5, 0, 59, 60, 61, 900, 86400, 2000000000]::int[] loop
    select qr_expires_at into v_rot from public.rotate_card_qr(v_card1, v_ttl, v_sid1);
    select * into v_qr2 from public.edge_issue_qr(v_card1, v_ttl, v_sid1);
    perform t.eq(v_qr2.qr_expires_at, v_rot, format('TTL %s as rotate_card_qr', coalesce(v_ttl::text, 'null')));
    perform t.eq(v_qr2.qr_expires_at, now() + make_interval(secs => greatest(v_ttl, 60)), 'TTL rule');
  end loop;
  select * into v_qr2 from public.edge_issue_qr(p_card_id => v_card1, p_session_id => v_sid1);
  perform t.eq(v_qr2.qr_expires_at, now() + interval '900 seconds', 'default TTL 900');
  perform t.check(exists (select 1 from audit.event_log where action = 'QR_ROTATE' and object_id = v_card1
                             and context = '{"ttl": null, "format": "mq1"}'::jsonb), 'audit keeps the TTL as requested');

  -- a super admin may issue for any card; an unknown card fails like rotate_card_qr
  perform t.as_admin();
  select * into v_qr2 from public.edge_issue_qr(v_card2, 900);
  perform t.eq(public.validate_qr_plain(v_qr2.qr_plain), v_card2, 'super_admin: any card');
  begin
    perform public.rotate_card_qr(v_bad);
  exception when others then
    get stacked diagnostics v_e1 = message_text, v_s1 = returned_sqlstate;
  end;
  begin
    perform public.edge_issue_qr(v_bad);
  exception when others then
    get stacked diagnostics v_e2 = message_text, v_s2 = returned_sqlstate;
  end;
  perform t.eq(v_s1, '23503', 'rotate_card_qr: FK violation for an unknown card');
  perform t.eq(v_s2, v_s1, 'edge_issue_qr: same SQLSTATE');
  perform t.eq(v_e2, v_e1, 'edge_issue_qr: same message');
  perform t.as_nobody();
  raise notice 'PASS: edge_issue_qr: mq1 tokens under rotate_card_qr''s rules';
end
$test$;

-- TEST: edge_issue_qr honours only the identity of its own call, and leaves none
-- behind (upstream's logins keep theirs in session-level settings, contract §6.1.6)
do $test$
declare
  v_member uuid;
  v_card   uuid;
  v_sid    text;
  v_qr     record;
begin
  perform t.as_nobody();
  v_member := public.create_member_profile('Ida Leak', '0911000777', null, 'leakpw1');
  select id into v_card from public.member_cards where owner_member_id = v_member;
  -- a login on this connection leaves the member's identity behind ...
  v_sid := public.member_login('0911000777', 'leakpw1') ->> 'session_id';
  perform t.eq(current_setting('app.user_role', true), 'member', 'member_login leaves its identity (upstream quirk)');
  -- ... which upstream's rotate_card_qr honours without a session id; ours does not
  perform public.rotate_card_qr(v_card, 900);
  perform t.expect_error(format('select * from public.edge_issue_qr(%L, 900)', v_card),
                         'PERMISSION_DENIED: 需要登入才能生成 QR 碼');
  perform t.expect_error(format('select * from public.edge_issue_qr(%L, 900, %L)', v_card, 'no-such-session'),
                         'PERMISSION_DENIED: 需要登入才能生成 QR 碼');
  -- with its own session it works, and clears what the session load set
  select * into v_qr from public.edge_issue_qr(v_card, 900, v_sid);
  perform t.eq(public.validate_qr_plain(v_qr.qr_plain), v_card, 'issued with the session');
  perform t.eq(coalesce(current_setting('app.user_role', true), ''), '', 'no role left behind');
  perform t.eq(coalesce(current_setting('app.user_id', true), ''), '', 'no user id left behind');
  perform t.eq(coalesce(current_setting('app.member_id', true), ''), '', 'no member id left behind');
  -- a Supabase-Auth admin still works (identity from the JWT of the same call)
  perform t.as_admin();
  select * into v_qr from public.edge_issue_qr(v_card, 900);
  perform t.eq(public.validate_qr_plain(v_qr.qr_plain), v_card, 'admin issues');
  perform t.as_nobody();
  raise notice 'PASS: edge_issue_qr: identity of its own call only';
end
$test$;

-- TEST: edge_self_test runs upstream code under each installed function's own
-- search_path, writes nothing, and names a function that cannot run on this central
do $test$
declare
  v_r       jsonb;
  v_before  jsonb;
  v_after   jsonb;
  v_f       jsonb;
begin
  v_before := jsonb_build_object(
    'cards', (select jsonb_agg(to_jsonb(m) order by id) from public.member_cards m),
    'txs', (select count(*) from public.transactions),
    'seq', (select last_value from public.seq_card_no));
  v_r := public.edge_self_test();
  perform t.eq(v_r -> 'ok', 'true'::jsonb, 'self test passes on a good install: ' || v_r::text);
  perform t.eq((v_r ->> 'probes')::int, 11, 'eleven probes');
  v_after := jsonb_build_object(
    'cards', (select jsonb_agg(to_jsonb(m) order by id) from public.member_cards m),
    'txs', (select count(*) from public.transactions),
    'seq', (select last_value from public.seq_card_no));
  perform t.eq(v_after - 'seq', v_before - 'seq', 'nothing written (updated_at unchanged, no card inserted)');

  -- the original defect: a function that runs upstream code pinned to ''
  alter function mps_edge.apply_charge(jsonb, text, public.merchants, timestamptz) set search_path = '';
  alter function public.edge_issue_qr(uuid, integer, text) set search_path = '';
  v_r := public.edge_self_test();
  perform t.eq(v_r -> 'ok', 'false'::jsonb, 'self test fails');
  perform t.eq(jsonb_array_length(v_r -> 'failures'), 3, 'apply_charge twice, edge_issue_qr once: ' || (v_r -> 'failures')::text);
  v_f := v_r -> 'failures' -> 0;
  perform t.eq(v_f ->> 'function', 'mps_edge.apply_charge(jsonb,text,public.merchants,timestamp with time zone)', 'names the function');
  perform t.eq(v_f ->> 'probe', 'member_cards', 'names the probe');
  perform t.eq(v_f ->> 'sqlstate', '42883', 'SQLSTATE');
  perform t.check(v_f ->> 'message' like 'function now_utc() does not exist%', 'message: ' || (v_f ->> 'message'));
  v_f := v_r -> 'failures' -> 2;
  perform t.eq(v_f ->> 'probe', 'identity', 'edge_issue_qr probe');
  perform t.eq(v_f ->> 'sqlstate', '42883', 'load_session fails the same way');
  alter function mps_edge.apply_charge(jsonb, text, public.merchants, timestamptz) set search_path = public, extensions, pg_temp;
  alter function public.edge_issue_qr(uuid, integer, text) set search_path = public, extensions, pg_temp;
  perform t.eq(public.edge_self_test() -> 'ok', 'true'::jsonb, 'passes again');
  raise notice 'PASS: edge_self_test';
end
$test$;

-- TEST: qr_states carries fast_verifier for the card's current mq1 token only
do $test$
declare
  v_member uuid;
  v_card   uuid;
  v_sid    text;
  v_end    jsonb;
  v_delta  jsonb;
  v_row    jsonb;
  v_boot   jsonb;
  v_qr     record;
  v_old    record;
  v_legacy record;
begin
  perform t.as_admin();
  v_member := public.create_member_profile('Fast Hal', '0900000503', null, 'halpass1');
  select id into v_card from public.member_cards where owner_member_id = v_member;
  perform t.as_nobody();
  v_end := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100);

  -- an mq1 issue reaches the pull with its verifier (card_qr_state's trigger
  -- stamps updated_at in the same transaction that writes qr_fast)
  v_sid := public.member_login('0900000503', 'halpass1') ->> 'session_id';
  select * into v_qr from public.edge_issue_qr(v_card, 600, v_sid);
  v_delta := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  perform t.eq((select count(*)::int from jsonb_array_elements(v_delta -> 'rows') r
                 where r ->> 'card_id' = v_card::text), 1, 'the issued card, once');
  select r into v_row from jsonb_array_elements(v_delta -> 'rows') r where r ->> 'card_id' = v_card::text;
  perform t.check(((v_row ->> 'updated_at')::timestamptz, v_card)
                  > ((v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid), 'past the cursor');
  perform t.eq((select array_agg(k order by k) from jsonb_object_keys(v_row) k),
               array['card_id', 'expires_at', 'fast_verifier', 'token_hash', 'updated_at', 'used'], 'qr fields');
  perform t.eq(v_row ->> 'fast_verifier', encode(extensions.digest(v_qr.qr_plain, 'sha256'), 'hex'),
               'fast_verifier = hex SHA-256 of the token');
  perform t.eq(v_row ->> 'token_hash', (select token_hash from public.card_qr_state where card_id = v_card), 'token_hash');
  perform t.eq((v_row ->> 'expires_at')::timestamptz, v_qr.qr_expires_at, 'expires_at');
  perform t.eq(jsonb_typeof(v_row -> 'fast_verifier'), 'string', 'a JSON string');
  -- the edge's O(1) check: the card id in the token picks the row; compare SHA-256
  perform t.eq((select r ->> 'fast_verifier' from jsonb_array_elements(v_delta -> 'rows') r
                 where (r ->> 'card_id')::uuid = split_part(v_qr.qr_plain, '.', 2)::uuid),
               encode(extensions.digest(v_qr.qr_plain, 'sha256'), 'hex'), 'located by the token, verified by SHA-256');

  v_boot := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100);
  perform t.check(exists (select 1 from jsonb_array_elements(v_boot -> 'rows') r
                           where r ->> 'card_id' = v_card::text and r ->> 'fast_verifier' = v_row ->> 'fast_verifier'),
                  'bootstrap carries the verifier');

  -- a second mq1 issue replaces the verifier; the old token is dead everywhere
  v_old := v_qr;
  v_end := v_delta;
  select * into v_qr from public.edge_issue_qr(v_card, 600, v_sid);
  v_delta := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  select r into v_row from jsonb_array_elements(v_delta -> 'rows') r where r ->> 'card_id' = v_card::text;
  perform t.eq(v_row ->> 'fast_verifier', encode(extensions.digest(v_qr.qr_plain, 'sha256'), 'hex'), 'new verifier');
  perform t.expect_error(format('select public.validate_qr_plain(%L)', v_old.qr_plain), 'QR_EXPIRED_OR_INVALID');

  -- an upstream rotate_card_qr makes the fast row stale: verifier null, by token_hash
  v_end := v_delta;
  select * into v_legacy from public.rotate_card_qr(v_card, 600, v_sid);
  v_delta := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  select r into v_row from jsonb_array_elements(v_delta -> 'rows') r where r ->> 'card_id' = v_card::text;
  perform t.check(v_row is not null, 'the rotation is in the delta');
  perform t.eq(v_row -> 'fast_verifier', 'null'::jsonb, 'after rotate_card_qr: fast_verifier null');
  perform t.eq(v_row ->> 'token_hash', (select token_hash from public.card_qr_state where card_id = v_card), 'legacy hash');
  perform t.check((select token_hash from mps_edge.qr_fast where card_id = v_card) <> v_row ->> 'token_hash',
                  'the qr_fast row stays, stale by token_hash');
  perform t.expect_error(format('select public.validate_qr_plain(%L)', v_qr.qr_plain), 'QR_EXPIRED_OR_INVALID');
  perform t.eq(public.validate_qr_plain(v_legacy.qr_plain), v_card, 'legacy tokens keep working');
  v_boot := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100);
  perform t.eq((select r -> 'fast_verifier' from jsonb_array_elements(v_boot -> 'rows') r
                 where r ->> 'card_id' = v_card::text), 'null'::jsonb, 'bootstrap: no verifier for a legacy token');

  -- revoke_card_qr changes only expires_at: the verifier still matches the
  -- token_hash, and the revocation reaches the edge as the expiry
  select * into v_qr from public.edge_issue_qr(v_card, 600, v_sid);
  v_end := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100, (v_end ->> 'next_after_ts')::timestamptz,
                      (v_end ->> 'next_after_id')::uuid);
  perform public.revoke_card_qr(v_card, v_sid);
  v_delta := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100,
                        (v_end ->> 'next_after_ts')::timestamptz, (v_end ->> 'next_after_id')::uuid);
  select r into v_row from jsonb_array_elements(v_delta -> 'rows') r where r ->> 'card_id' = v_card::text;
  perform t.check((v_row ->> 'expires_at')::timestamptz <= now(), 'revocation visible as the expiry');
  perform t.eq(v_row ->> 'fast_verifier', encode(extensions.digest(v_qr.qr_plain, 'sha256'), 'hex'),
               'revoke leaves token_hash, so the verifier is still listed');
  perform t.expect_error(format('select public.validate_qr_plain(%L)', v_qr.qr_plain), 'QR_EXPIRED_OR_INVALID');
  v_boot := t.pull_all('SHOP1', 'SMQ1', 'qr_states', 100);
  perform t.check(not exists (select 1 from jsonb_array_elements(v_boot -> 'rows') r where r ->> 'card_id' = v_card::text),
                  'revoked card not in bootstrap');
  perform t.as_nobody();
  raise notice 'PASS: qr_states.fast_verifier';
end
$test$;

-- TEST: members' apps may execute edge_issue_qr (anon, authenticated, service_role), PUBLIC may not
do $test$
declare
  v_card   uuid;
  v_no     text;
  v_sid    text;
  v_role   text;
  v_msg    text;
  v_state  text;
  v_tok    text;
  v_denied boolean;
begin
  perform t.as_admin();
  v_card := t.new_card('Fast Ida');
  select mp.member_no into v_no from public.member_profiles mp
    join public.member_cards c on c.owner_member_id = mp.id where c.id = v_card;
  perform t.as_nobody();
  v_sid := public.member_login(v_no, 'pw123456') ->> 'session_id';
  perform t.as_nobody();

  foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
    perform t.check(has_function_privilege(v_role, 'public.edge_issue_qr(uuid, integer, text)', 'EXECUTE'),
                    v_role || ' may execute edge_issue_qr');
    perform t.check(not has_table_privilege(v_role, 'mps_edge.qr_fast', 'SELECT'), v_role || ' cannot read qr_fast');
  end loop;
  perform t.check(not exists (select 1 from pg_proc p, aclexplode(p.proacl) a
                               where p.oid = 'public.edge_issue_qr(uuid, integer, text)'::regprocedure
                                 and a.grantee = 0), 'not granted to PUBLIC');
  -- the offline chain RPCs likewise; nobody reads the chain tables directly
  foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
    perform t.check(has_function_privilege(v_role,
                      'public.edge_enroll_offline_qr(uuid, text, integer, timestamptz, integer, text)', 'EXECUTE'),
                    v_role || ' may execute edge_enroll_offline_qr');
    perform t.check(has_function_privilege(v_role, 'public.edge_revoke_offline_qr(uuid, text)', 'EXECUTE'),
                    v_role || ' may execute edge_revoke_offline_qr');
    perform t.check(not has_table_privilege(v_role, 'mps_edge.qr_chains', 'SELECT'), v_role || ' cannot read qr_chains');
  end loop;
  perform t.check(not exists (select 1 from pg_proc p, aclexplode(p.proacl) a
                               where p.oid in ('public.edge_enroll_offline_qr(uuid, text, integer, timestamptz, integer, text)'::regprocedure,
                                               'public.edge_revoke_offline_qr(uuid, text)'::regprocedure)
                                 and a.grantee = 0), 'chain RPCs not granted to PUBLIC');

  foreach v_role in array array['anon', 'authenticated'] loop
    -- no identity: it runs, and the rules refuse
    v_msg := null;
    v_state := null;
    begin
      execute format('set local role %I', v_role);
      perform public.edge_issue_qr(v_card);
    exception when others then
      get stacked diagnostics v_msg = message_text, v_state = returned_sqlstate;
    end;
    reset role;
    perform t.eq(v_msg, 'PERMISSION_DENIED: 需要登入才能生成 QR 碼', v_role || ' without a login: no-login error');
    perform t.eq(v_state, 'P0001', v_role || ': a business error, not insufficient_privilege');

    -- a member's app: the API role plus the member's session id
    execute format('set local role %I', v_role);
    select qr_plain into v_tok from public.edge_issue_qr(v_card, 900, v_sid);
    reset role;
    perform t.as_nobody();
    perform t.check(v_tok ~ '^mq1\.[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$', v_role || ' + member session issues an mq1 token');
    perform t.eq(public.validate_qr_plain(v_tok), v_card, v_role || ': central validates it');

    -- the edge RPCs stay closed: authenticated may not execute them, anon
    -- needs a site key
    v_denied := false;
    begin
      execute format('set local role %I', v_role);
      v_msg := public.edge_apply_batch('SX', 'SHOP1', '[]') ->> 'code';
      v_denied := v_msg = 'EDGE_SITE_KEY_REQUIRED';
    exception when insufficient_privilege then
      v_denied := true;
    end;
    reset role;
    perform t.check(v_denied, v_role || ' still cannot push without a site key');
  end loop;
  raise notice 'PASS: edge_issue_qr execute rights';
end
$test$;

-- SETUP: cards for the concurrency tests (committed so other sessions see them)
do $setup$
begin
  perform t.as_admin();
  insert into t.ctx values ('conc_card', t.new_card('Conc C', 100)::text)
    on conflict (k) do update set v = excluded.v;
  insert into t.ctx values ('race_card', t.new_card('Race R', 50)::text)
    on conflict (k) do update set v = excluded.v;
  insert into t.ctx values ('conc_batch', jsonb_build_array(
      t.op_charge(1, (select v::uuid from t.ctx where k = 'conc_card'), 40, 1.000, 'PAY-SCONC-1'))::text)
    on conflict (k) do update set v = excluded.v;
  perform t.as_nobody();
end
$setup$;

-- TEST: the set-based happy path leaves what op by op leaves (mps_edge.apply_set = off forces op by op)
do $test$
declare
  v_key   text := public.edge_register_site('SHOP1', 'SSET') ->> 'site_key';
  v_start int[] := array[0, 985, 4985, 20];
  v_corp  numeric[] := array[null, null, null, 0.900];
  v_cards uuid[];                 -- [side][card]: side 1 set-based, side 2 op by op
  v_ops   jsonb[] := array['[]'::jsonb, '[]'::jsonb];
  v_res   jsonb[] := array[null::jsonb, null::jsonb];
  v_pts   int[];
  v_op    jsonb;
  v_tx    uuid[];
  s int; i int; k int;
begin
  perform t.as_admin();
  v_cards := array[array_fill(null::uuid, array[4]), array_fill(null::uuid, array[4])];
  for i in 1 .. 4 loop
    for s in 1 .. 2 loop
      v_cards[s][i] := t.new_card(format('Set %s.%s', s, i), 300);
      if v_start[i] > 0 then
        perform public.update_points_and_level(v_cards[s][i], v_start[i], 'manual_adjust');
      end if;
      update public.member_cards set corporate_discount = v_corp[i] where id = v_cards[s][i];
    end loop;
  end loop;
  perform t.as_nobody();
  -- three charges per card, the cards interleaved; some cross a level; the
  -- discount is what the edge computes from the points it knows
  for s in 1 .. 2 loop
    v_pts := array(select (t.card(c)).points from unnest(v_cards[s:s][1:4]) c);
    for k in 1 .. 3 loop
      for i in 1 .. 4 loop
        v_op := t.with_proof(
                  t.op_charge((k - 1) * 4 + i, v_cards[s][i], 15.00,
                              case when k = 1 then least((t.card(v_cards[s][i])).discount, coalesce(v_corp[i], 1.000))
                                   else least(mps_edge.discount_for_points(v_pts[i]), coalesce(v_corp[i], 1.000)) end,
                              format('PAY-SSET-%s-%s-%s', s, k, i), now(),
                              case when k = 2 and i = 1 then 'SET-ORDER-' || s end),
                  t.fresh_qr(v_cards[s][i], true));
        v_ops[s] := v_ops[s] || jsonb_build_array(v_op);
        v_pts[i] := v_pts[i] + 15;
      end loop;
    end loop;
    perform t.as_site(v_key);
    perform set_config('mps_edge.apply_set', case s when 1 then 'on' else 'off' end, true);
    set local role anon;
    v_res[s] := public.edge_apply_batch(null, null, v_ops[s]);
    reset role;
    perform t.no_site();
  end loop;
  perform set_config('mps_edge.apply_set', '', true);

  for s in 1 .. 2 loop
    perform t.eq((select string_agg(distinct r ->> 'status', ',') from jsonb_array_elements(v_res[s] -> 'results') r),
                 'applied', format('side %s: every op applied', s));
  end loop;
  for i in 1 .. 4 loop
    perform t.eq(t.card_state(v_cards[1][i]), t.card_state(v_cards[2][i]), format('card %s: same balance, points, level', i));
    perform t.eq((select last_seq from mps_edge.card_site_seq where card_id = v_cards[1][i] and site_code = 'SSET'),
                 (select last_seq from mps_edge.card_site_seq where card_id = v_cards[2][i] and site_code = 'SSET'),
                 format('card %s: same card_site_seq', i));
    perform t.eq((select count(*)::int from public.card_qr_state q where q.card_id = v_cards[1][i] and q.expires_at <= now()),
                 1, format('card %s: the token read last is expired', i));
  end loop;
  perform t.eq((t.card(v_cards[1][2])).level, 1, 'card 2 crossed into level 1');
  for k in 0 .. 11 loop
    v_tx := array[(v_ops[1] -> k ->> 'tx_id')::uuid, (v_ops[2] -> k ->> 'tx_id')::uuid];
    perform t.eq(t.tx_shape(v_tx[1]), t.tx_shape(v_tx[2]), format('op %s: same transaction', k));
    perform t.eq(t.ledger_shape(v_tx[1]), t.ledger_shape(v_tx[2]), format('op %s: same point ledger', k));
    perform t.eq((select count(*)::int from audit.event_log e where e.object_id = v_tx[1] and e.action = 'PAYMENT'),
                 1, format('op %s: one audit row', k));
    perform t.eq((select concat_ws(':', a.status, a.seq, a.op_type, a.tx_id = v_tx[1],
                                   a.result ->> 'card_id' = v_ops[1] -> k ->> 'card_id')
                    from mps_edge.applied_ops a where a.op_id = (v_ops[1] -> k ->> 'op_id')::uuid),
                 (select concat_ws(':', a.status, a.seq, a.op_type, a.tx_id = v_tx[2],
                                   a.result ->> 'card_id' = v_ops[2] -> k ->> 'card_id')
                    from mps_edge.applied_ops a where a.op_id = (v_ops[2] -> k ->> 'op_id')::uuid),
                 format('op %s: same registry row', k));
  end loop;
  perform t.eq((select count(*)::int from mps_edge.qr_used u where u.site_code = 'SSET'), 24, 'every token used once');
  perform t.eq((select count(*)::int from public.merchant_order_registry r where r.external_order_id like 'SET-ORDER-%'),
               2, 'the external orders are registered');
  -- what differs: op by op shows each card right after its op, the set the batch's end
  perform t.eq(t.result_of(v_res[2], 0) -> 'card' ->> 'balance', '285.00', 'op by op: card 1 after its first op');
  perform t.eq(t.result_of(v_res[1], 0) -> 'card', t.card_row('SHOP1', 'SSET', v_cards[1][1]),
               'set-based: card 1 as the batch left it');
  -- the first op of a card gets the discount the card HAS, even where the levels
  -- table would give another (a card whose stored discount is not its level's)
  perform t.as_admin();
  v_cards[1][1] := t.new_card('Set odd', 100);
  perform t.as_nobody();
  update public.member_cards set discount = 0.950 where id = v_cards[1][1];
  delete from mps_edge.card_discount_changes where card_id = v_cards[1][1];
  v_op := t.with_proof(t.op_charge(100, v_cards[1][1], 10, 1.000, 'PAY-SSET-ODD'), t.fresh_qr(v_cards[1][1], true));
  perform t.as_site(v_key);
  set local role anon;
  v_res[1] := public.edge_apply_batch(null, null, jsonb_build_array(v_op));
  reset role;
  perform t.no_site();
  perform t.eq(t.result_of(v_res[1], 0) ->> 'reason', 'DISCOUNT_MISMATCH', 'the levels table''s discount is not the card''s');
  raise notice 'PASS: set-based happy path = op by op';
end
$test$;

-- TEST: concurrent calls — same batch twice, and two sites spending one balance
do $test$
declare
  v_conn  text := format('host=127.0.0.1 port=%s dbname=%s user=%s',
                         current_setting('port'), current_database(), current_user);
  v_card  uuid := (select v::uuid from t.ctx where k = 'conc_card');
  v_race  uuid := (select v::uuid from t.ctx where k = 'race_card');
  v_batch text := (select v from t.ctx where k = 'conc_batch');
  v_r1    jsonb;
  v_r2    jsonb;
begin
  perform t.dblink_connect('c1', v_conn);
  perform t.dblink_connect('c2', v_conn);

  -- 1. the same batch from two connections: c1 applies and holds its locks,
  --    c2 waits, then sees c1's registry row and answers duplicate
  perform t.dblink_exec('c1', 'begin');
  select r::jsonb into v_r1 from t.dblink('c1', format('select public.edge_apply_batch(%L, %L, %L)::text',
                                                      'SCONC', 'SHOP1', v_batch)) as x(r text);
  perform t.dblink_send_query('c2', format('select public.edge_apply_batch(%L, %L, %L)::text', 'SCONC', 'SHOP1', v_batch));
  perform pg_sleep(0.3);
  perform t.eq(t.dblink_is_busy('c2'), 1, 'second call waits for the first');
  perform t.dblink_exec('c1', 'commit');
  select r::jsonb into v_r2 from t.dblink_get_result('c2') as x(r text);
  perform * from t.dblink_get_result('c2') as x(r text);
  perform t.eq(v_r1 -> 'results' -> 0 ->> 'status', 'applied', 'first applied');
  perform t.eq(v_r2 -> 'results' -> 0 ->> 'status', 'duplicate', 'second duplicate');
  perform t.eq((select balance from public.member_cards where id = v_card), 60.00::numeric, 'charged once');

  -- 2. two sites spend the same 50.00: the second waits on the card row lock
  --    and is rejected once the first has committed
  perform t.dblink_exec('c1', 'begin');
  select r::jsonb into v_r1 from t.dblink('c1', format('select public.edge_apply_batch(%L, %L, %L)::text', 'SR1', 'SHOP1',
                          jsonb_build_array(t.op_charge(1, v_race, 40, 1.000, 'PAY-SR1-1')))) as x(r text);
  perform t.dblink_send_query('c2', format('select public.edge_apply_batch(%L, %L, %L)::text', 'SR2', 'SHOP2',
                          jsonb_build_array(t.op_charge(1, v_race, 30, 1.000, 'PAY-SR2-1'))));
  perform pg_sleep(0.3);
  perform t.eq(t.dblink_is_busy('c2'), 1, 'other site waits on the card');
  perform t.dblink_exec('c1', 'commit');
  select r::jsonb into v_r2 from t.dblink_get_result('c2') as x(r text);
  perform * from t.dblink_get_result('c2') as x(r text);
  perform t.eq(v_r1 -> 'results' -> 0 ->> 'status', 'applied', 'site 1 applied');
  perform t.eq(v_r2 -> 'results' -> 0 ->> 'reason', 'INSUFFICIENT_BALANCE', 'site 2 rejected');
  perform t.eq(v_r2 -> 'results' -> 0 -> 'card' ->> 'balance', '10.00', 'site 2 sees the spent balance');
  perform t.eq((select balance from public.member_cards where id = v_race), 10.00::numeric, 'balance never negative');
  perform t.check(exists (select 1 from mps_edge.exceptions where site_code = 'SR2' and reason = 'INSUFFICIENT_BALANCE'),
                  'exception recorded for site 2');

  perform t.dblink_disconnect('c1');
  perform t.dblink_disconnect('c2');
  raise notice 'PASS: concurrency';
end
$test$;

-- SETUP: a card and two sessions of its member for the mq1 race (committed)
do $setup$
declare
  v_member uuid;
begin
  perform t.as_admin();
  v_member := public.create_member_profile('Race Mia', '0900000504', null, 'miapass1');
  insert into t.ctx values ('mq1_card', (select id from public.member_cards where owner_member_id = v_member)::text)
    on conflict (k) do update set v = excluded.v;
  perform t.as_nobody();
  insert into t.ctx values ('mq1_sid1', public.member_login('0900000504', 'miapass1') ->> 'session_id')
    on conflict (k) do update set v = excluded.v;
  insert into t.ctx values ('mq1_sid2', public.member_login('0900000504', 'miapass1') ->> 'session_id')
    on conflict (k) do update set v = excluded.v;
  perform t.as_nobody();
end
$setup$;

-- TEST: edge_issue_qr racing rotate_card_qr: the card_qr_state row lock orders them, the last writer wins
do $test$
declare
  v_conn text := format('host=127.0.0.1 port=%s dbname=%s user=%s',
                        current_setting('port'), current_database(), current_user);
  v_card uuid := (select v::uuid from t.ctx where k = 'mq1_card');
  v_sid1 text := (select v from t.ctx where k = 'mq1_sid1');
  v_sid2 text := (select v from t.ctx where k = 'mq1_sid2');
  v_fast text;
  v_lgcy text;
  v_row  jsonb;
begin
  perform t.dblink_connect('c1', v_conn);
  perform t.dblink_connect('c2', v_conn);

  -- 1. mq1 first, rotate_card_qr waits and commits last: the verifier is stale
  perform t.dblink_exec('c1', 'begin');
  select r into v_fast from t.dblink('c1', format('select qr_plain from public.edge_issue_qr(%L, 900, %L)',
                                                  v_card, v_sid1)) as x(r text);
  perform t.dblink_send_query('c2', format('select qr_plain from public.rotate_card_qr(%L, 900, %L)', v_card, v_sid2));
  perform pg_sleep(0.3);
  perform t.eq(t.dblink_is_busy('c2'), 1, 'rotate_card_qr waits for edge_issue_qr');
  perform t.dblink_exec('c1', 'commit');
  select r into v_lgcy from t.dblink_get_result('c2') as x(r text);
  perform * from t.dblink_get_result('c2') as x(r text);
  select r into v_row from jsonb_array_elements(public.edge_pull_changes('SHOP1', 'SRACE', 'qr_states', '-infinity',
                                                                         null, 5000) -> 'rows') r
   where r ->> 'card_id' = v_card::text;
  perform t.eq(v_row -> 'fast_verifier', 'null'::jsonb, 'rotate committed last: no verifier');
  perform t.eq(public.validate_qr_plain(v_lgcy), v_card, 'the legacy token is current');
  perform t.expect_error(format('select public.validate_qr_plain(%L)', v_fast), 'QR_EXPIRED_OR_INVALID');

  -- 2. rotate_card_qr first, mq1 waits and commits last: the verifier is current
  perform t.dblink_exec('c1', 'begin');
  select r into v_lgcy from t.dblink('c1', format('select qr_plain from public.rotate_card_qr(%L, 900, %L)',
                                                  v_card, v_sid1)) as x(r text);
  perform t.dblink_send_query('c2', format('select qr_plain from public.edge_issue_qr(%L, 900, %L)', v_card, v_sid2));
  perform pg_sleep(0.3);
  perform t.eq(t.dblink_is_busy('c2'), 1, 'edge_issue_qr waits for rotate_card_qr');
  perform t.dblink_exec('c1', 'commit');
  select r into v_fast from t.dblink_get_result('c2') as x(r text);
  perform * from t.dblink_get_result('c2') as x(r text);
  select r into v_row from jsonb_array_elements(public.edge_pull_changes('SHOP1', 'SRACE', 'qr_states', '-infinity',
                                                                         null, 5000) -> 'rows') r
   where r ->> 'card_id' = v_card::text;
  perform t.eq(v_row ->> 'fast_verifier', encode(extensions.digest(v_fast, 'sha256'), 'hex'),
               'edge_issue_qr committed last: its verifier');
  perform t.eq(public.validate_qr_plain(v_fast), v_card, 'the mq1 token is current');
  perform t.expect_error(format('select public.validate_qr_plain(%L)', v_lgcy), 'QR_EXPIRED_OR_INVALID');

  perform t.dblink_disconnect('c1');
  perform t.dblink_disconnect('c2');
  raise notice 'PASS: mq1 vs rotate_card_qr race';
end
$test$;
