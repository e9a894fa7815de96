-- =============================================================================
-- sync/central.sql — the central side of mps-edge sync (protocol version 1)
--
-- Install on the central MPS database (Supabase SQL editor, or
-- `psql -v ON_ERROR_STOP=1 -f sync/central.sql`) AFTER the upstream schema and
-- RPCs. Re-runnable: every statement is `create or replace` / `if not exists` /
-- `on conflict do nothing`, and the whole file runs in one transaction.
--
-- It changes no upstream function. It adds:
--   * schema mps_edge (private): registries, exceptions, card versions, helpers;
--   * triggers on public.member_cards (card version; discount history),
--     public.card_qr_state (updated_at := clock_timestamp(), because upstream's
--     revoke_card_qr does not touch updated_at) and public.transactions (a
--     payment central takes marks the card's current QR token used);
--   * indexes on upstream tables for keyset paging (updated_at, id);
--   * public.edge_* RPCs for the edge: anon + a per-site key (x-mps-site-key),
--     or service_role while a store is migrated; edge_register_site and
--     edge_revoke_site for head office;
--   * public.edge_issue_qr, for members' apps: issues QR tokens in the fast
--     `mq1` format (same permission rules as rotate_card_qr; anon,
--     authenticated and service_role may execute it).
-- See sync/README.md for the protocol, install, upgrade and uninstall.
-- =============================================================================

set client_min_messages = warning;

begin;

-- pgcrypto must be where Supabase (and upstream's RPCs) have it. Function
-- bodies are not checked when they are created, so check here, once.
do $check$
begin
  if to_regprocedure('extensions.crypt(text, text)') is null
     or to_regprocedure('extensions.gen_salt(text, integer)') is null
     or to_regprocedure('extensions.gen_random_bytes(integer)') is null
     or to_regprocedure('extensions.digest(text, text)') is null then
    raise exception 'sync/central.sql needs the pgcrypto extension in schema "extensions" (as on Supabase)';
  end if;
end
$check$;

create schema if not exists mps_edge;
comment on schema mps_edge is 'mps-edge sync: private tables and helpers (see sync/README.md)';
revoke all on schema mps_edge from public;

-- -----------------------------------------------------------------------------
-- 1. Install record
-- -----------------------------------------------------------------------------

create table if not exists mps_edge.schema_versions (
  version      int primary key,
  installed_at timestamptz not null default clock_timestamp()
);
insert into mps_edge.schema_versions (version) values (1) on conflict do nothing;

-- -----------------------------------------------------------------------------
-- 2. Per-card monotonic version
--
-- Every insert or update of a member_cards row takes a fresh value from one
-- sequence. Two updates of the same row are serialised by the row lock, so the
-- later committed update always carries the larger version: an edge keeps a
-- pulled card only when its version is larger than the one it holds.
-- -----------------------------------------------------------------------------

create sequence if not exists mps_edge.card_version_seq;

create table if not exists mps_edge.card_versions (
  card_id uuid primary key references public.member_cards(id) on delete cascade,
  version bigint not null
);

create or replace function mps_edge.bump_card_version() returns trigger
language plpgsql security definer
set search_path = ''
as $fn$
begin
  insert into mps_edge.card_versions as v (card_id, version)
  values (new.id, pg_catalog.nextval('mps_edge.card_version_seq'))
  on conflict (card_id) do update set version = excluded.version;
  return null;
end
$fn$;

create or replace trigger edge_card_version
  after insert or update on public.member_cards
  for each row execute function mps_edge.bump_card_version();

-- Backfill cards that existed before the install (oldest change first).
insert into mps_edge.card_versions (card_id, version)
select c.id, nextval('mps_edge.card_version_seq')
  from (select id from public.member_cards order by updated_at, id) c
on conflict (card_id) do nothing;

-- The discounts a card HAD: each change of its effective discount (the lower of
-- its level discount and its corporate discount, upstream's payment rule)
-- records the value it replaced. A charge made offline against an older
-- replica is checked against these (mps_edge.apply_charge, DISCOUNT_MISMATCH).
create table if not exists mps_edge.card_discount_changes (
  card_id    uuid not null references public.member_cards(id) on delete cascade,
  discount   numeric(4,3) not null,
  changed_at timestamptz not null default clock_timestamp()
);
create index if not exists card_discount_changes_card on mps_edge.card_discount_changes (card_id, changed_at);

create or replace function mps_edge.record_discount_change() returns trigger
language plpgsql security definer
set search_path = ''
as $fn$
begin
  insert into mps_edge.card_discount_changes (card_id, discount)
  values (old.id, least(old.discount, coalesce(old.corporate_discount, 1.000)));
  return null;
end
$fn$;

create or replace trigger edge_card_discount
  after update of discount, corporate_discount on public.member_cards
  for each row
  when (least(old.discount, coalesce(old.corporate_discount, 1.000))
        is distinct from least(new.discount, coalesce(new.corporate_discount, 1.000)))
  execute function mps_edge.record_discount_change();

-- -----------------------------------------------------------------------------
-- 3. QR state change time
--
-- Upstream's rotate_card_qr sets updated_at (to now_utc(), the transaction
-- start) but revoke_card_qr changes only expires_at, so a revocation would be
-- invisible to an updated_at cursor. This trigger stamps every write with the
-- wall clock; being a BEFORE ROW trigger it runs after the row lock is taken,
-- so a card's later write always gets the later stamp.
-- -----------------------------------------------------------------------------

create or replace function mps_edge.touch_qr_state() returns trigger
language plpgsql security definer
set search_path = ''
as $fn$
begin
  new.updated_at := pg_catalog.clock_timestamp();
  return new;
end
$fn$;

create or replace trigger edge_qr_state_touch
  before insert or update on public.card_qr_state
  for each row execute function mps_edge.touch_qr_state();

-- -----------------------------------------------------------------------------
-- 4. Registries and exceptions
-- -----------------------------------------------------------------------------

-- One row per edge operation ever processed (applied or rejected): the
-- at-most-once guarantee.
create table if not exists mps_edge.applied_ops (
  op_id      uuid primary key,
  site_code  text not null,
  seq        bigint,
  op_type    text,
  tx_id      uuid,
  status     text not null check (status in ('applied', 'rejected')),
  reason     text,
  result     jsonb not null default '{}'::jsonb,
  applied_at timestamptz not null default clock_timestamp()
);
create index if not exists applied_ops_site_seq on mps_edge.applied_ops (site_code, seq);

-- Highest op seq of each site processed for each card. A pulled card carries
-- this as edge_seq: the snapshot reflects every op of that site up to it.
create table if not exists mps_edge.card_site_seq (
  card_id   uuid not null,
  site_code text not null,
  last_seq  bigint not null,
  primary key (card_id, site_code)
);

-- Rejected edge operations, for a person to resolve. Never deleted by sync.
create table if not exists mps_edge.exceptions (
  id              uuid primary key default gen_random_uuid(),
  site_code       text not null,
  merchant_id     uuid,
  op_id           uuid not null unique,
  op_type         text,
  tx_no           text,
  card_id         uuid,
  reason          text not null,
  payload         jsonb not null,
  created_at      timestamptz not null default clock_timestamp(),
  resolved_at     timestamptz,
  resolved_by     text,
  resolution_note text,
  detail          text
);
create index if not exists exceptions_site_created on mps_edge.exceptions (site_code, created_at, id);

-- The fast verifier of a card's mq1 token (written only by edge_issue_qr, in
-- the transaction that writes the same token's card_qr_state row).
-- token_hash is the bcrypt hash edge_issue_qr wrote to card_qr_state: the row
-- is current only while card_qr_state.token_hash still equals it. A later
-- rotate_card_qr (or any other writer of card_qr_state) leaves it stale.
-- verifier = lowercase hex SHA-256 of the whole token text.
create table if not exists mps_edge.qr_fast (
  card_id    uuid primary key references public.member_cards(id) on delete cascade,
  token_hash text not null,
  verifier   text not null,
  expires_at timestamptz not null,
  updated_at timestamptz not null default clock_timestamp()
);

-- The site registry: one row per store (edge), with the hash of its key.
-- A site code belongs to one merchant for good (its transaction numbers carry
-- it), so re-registering a revoked code for another merchant is refused.
-- key_hash = lowercase hex SHA-256 of the key text: the key is 32 random bytes,
-- so a fast hash is enough (no password to stretch) and a lookup is one index
-- probe. The key itself is shown once, by edge_register_site.
create table if not exists mps_edge.sites (
  id          uuid primary key default gen_random_uuid(),
  site_code   text not null unique check (site_code ~ '^[A-Z0-9]{1,16}$'),
  merchant_id uuid not null references public.merchants(id),
  key_hash    text not null unique,
  key_hint    text not null,
  created_at  timestamptz not null default clock_timestamp(),
  created_by  text not null,
  revoked_at  timestamptz,
  revoked_by  text
);

-- What a site may see beyond what deciding a charge needs: member names (the
-- members pull's name, a card's name) only where head office or the merchant
-- turns it on (edge_set_site_options). Off by default.
alter table mps_edge.sites add column if not exists share_member_names boolean not null default false;

-- Unknown site keys per caller address, in a 10-minute window (see
-- mps_edge.authenticate). Rows older than the window are deleted as new ones
-- come in, so the table stays small even when the address is forged.
create table if not exists mps_edge.key_failures (
  source       text primary key,
  window_start timestamptz not null,
  failures     int not null
);

-- Every mq1 token ever issued (edge_issue_qr), by verifier: what central needs
-- to check a pushed charge's proof in O(1) as of the sale, after the card has
-- been issued newer codes. token_hash is the token's bcrypt hash in
-- card_qr_state / card_qr_history.
create table if not exists mps_edge.qr_issued (
  verifier   text primary key,
  card_id    uuid not null references public.member_cards(id) on delete cascade,
  token_hash text not null,
  issued_at  timestamptz not null,
  expires_at timestamptz not null
);
-- tokens issued before this table existed: the live one of each card
insert into mps_edge.qr_issued (verifier, card_id, token_hash, issued_at, expires_at)
select f.verifier, f.card_id, f.token_hash,
       coalesce((select max(h.issued_at) from public.card_qr_history h
                  where h.card_id = f.card_id and h.token_hash = f.token_hash), f.updated_at),
       f.expires_at
  from mps_edge.qr_fast f
on conflict do nothing;

-- Tokens that paid: one row per token (its bcrypt hash), written when a pushed
-- charge carrying it is applied, or when central itself takes a payment from
-- the card's current token. A second charge with the same token anywhere is
-- QR_ALREADY_USED.
create table if not exists mps_edge.qr_used (
  token_hash text primary key,
  card_id    uuid not null,
  site_code  text not null,
  op_id      uuid,
  used_at    timestamptz not null default clock_timestamp()
);
create index if not exists qr_used_card on mps_edge.qr_used (card_id);

-- Both tables are kept small: a token is remembered until 35 days after it
-- expired (mps_edge.prune_proofs, run with the heartbeats), and a proof whose
-- token expired longer ago than that is refused (QR_PROOF_INVALID), so a
-- forgotten used token can never pay again. expires_at is the token's own
-- expiry (null on rows from before this column: those are kept).
alter table mps_edge.qr_used add column if not exists expires_at timestamptz;
create index if not exists qr_used_expires on mps_edge.qr_used (expires_at);
create index if not exists qr_issued_expires on mps_edge.qr_issued (expires_at);

-- Offline payment codes (mq2): a hash chain per card, made on the member's phone.
-- The phone keeps a random seed s; central (and, through the pull, every edge)
-- holds only the anchor A = H^n(s), H = SHA-256. The code for slot j (1..n,
-- slot j starts at epoch + (j-1) * slot_secs) carries v_j = H^(n-j)(s), so
-- H^j(v_j) = A and, for a verified v_k with k < j, H^(j-k)(v_j) = v_k. Knowing A
-- and every used v_k does not give a later v_j: an edge (or a thief of its box)
-- can check codes but cannot make one. chain_id = the first 16 hex digits of A.
-- Enrolling again revokes the card's live chain; a revoked chain still proves
-- sales dated before its revocation.
create table if not exists mps_edge.qr_chains (
  id         uuid primary key default gen_random_uuid(),
  card_id    uuid not null references public.member_cards(id) on delete cascade,
  chain_id   text not null,
  anchor     bytea not null,
  epoch      timestamptz not null,
  slot_secs  int not null,
  slots      int not null,
  enrolled_at timestamptz not null default clock_timestamp(),
  revoked_at timestamptz,
  -- when its last slot ends (epoch + slots * slot_secs)
  ends_at    timestamptz not null,
  -- the highest slot that paid (0 = none): edges refuse slots up to it
  used_through int not null default 0,
  updated_at timestamptz not null default clock_timestamp(),
  unique (card_id, chain_id)
);
create index if not exists qr_chains_pull on mps_edge.qr_chains (updated_at, id);
create index if not exists qr_chains_ends on mps_edge.qr_chains (ends_at);

-- Every slot that paid, with its value: single use per slot, and the nearest
-- verified value below a new slot, so a check walks j - k hashes, not j.
create table if not exists mps_edge.qr_chain_slots (
  card_id   uuid not null,
  chain_id  text not null,
  slot      int not null,
  value     bytea not null,
  site_code text not null,
  op_id     uuid,
  used_at   timestamptz not null default clock_timestamp(),
  primary key (card_id, chain_id, slot)
);
-- the sale's time (the op's created_at): a code is dead once a later slot of its chain
-- paid in a sale dated clearly before (see check_chain_proof)
alter table mps_edge.qr_chain_slots add column if not exists sold_at timestamptz;

-- Cards frozen by an edge (issue 14): which site froze each card, so that only that
-- site may lift the freeze. A card head office froze (freeze_card) has no row here
-- and no edge can unfreeze it.
create table if not exists mps_edge.card_freezes (
  card_id   uuid primary key,
  site_code text not null,
  op_id     uuid not null,
  frozen_at timestamptz not null,
  reason    text not null
);

alter table mps_edge.schema_versions enable row level security;
alter table mps_edge.card_versions   enable row level security;
alter table mps_edge.applied_ops     enable row level security;
alter table mps_edge.card_site_seq   enable row level security;
alter table mps_edge.exceptions      enable row level security;
alter table mps_edge.qr_fast         enable row level security;
alter table mps_edge.sites           enable row level security;
alter table mps_edge.key_failures    enable row level security;
alter table mps_edge.qr_issued       enable row level security;
alter table mps_edge.qr_used         enable row level security;
alter table mps_edge.card_discount_changes enable row level security;
alter table mps_edge.qr_chains       enable row level security;
alter table mps_edge.qr_chain_slots  enable row level security;
alter table mps_edge.card_freezes    enable row level security;

revoke all on all tables    in schema mps_edge from public, anon, authenticated;
revoke all on all sequences in schema mps_edge from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- 5. Indexes on upstream tables: each pull page is an index range scan
-- -----------------------------------------------------------------------------

create index if not exists edge_member_cards_updated_id      on public.member_cards (updated_at, id);
create index if not exists edge_card_qr_state_updated_card   on public.card_qr_state (updated_at, card_id);
create index if not exists edge_member_profiles_updated_id   on public.member_profiles (updated_at, id);
create index if not exists edge_membership_levels_updated_id on public.membership_levels (updated_at, id);
-- refund remaining = sum over refunds whose reason is the original tx_no
create index if not exists edge_transactions_refund_reason
  on public.transactions (reason, card_id) where tx_type = 'refund';

-- -----------------------------------------------------------------------------
-- 6. Private helpers
-- -----------------------------------------------------------------------------

-- try_uuid and try_bigint have no SET clause on purpose: a SQL function with
-- one is never inlined, and is then parsed and planned again on every call
-- inside a statement (about 10 µs each, several per op). Without it the
-- planner inlines them into the caller; every name in the body is
-- schema-qualified, so the caller's search_path cannot change its meaning.
create or replace function mps_edge.try_uuid(p_text text) returns uuid
language sql immutable
as $fn$
  select case when p_text operator(pg_catalog.~*) '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then p_text::pg_catalog.uuid end
$fn$;

create or replace function mps_edge.try_bigint(p_text text) returns bigint
language sql immutable
as $fn$
  select case when p_text operator(pg_catalog.~) '^[0-9]{1,18}$' then p_text::pg_catalog.int8 end
$fn$;

-- Level and discount for a points total, the way upstream recomputes them after
-- a payment: the highest active level whose [min, max] holds the total; level 0
-- and discount 1.000 when none does. apply_charge applies the same rule with
-- one lookup inside its UPDATE (two SQL-function calls there cost two extra
-- parse/plan/execute rounds per op).
create or replace function mps_edge.level_for_points(p_points int) returns int
language sql stable
set search_path = ''
as $fn$
  select coalesce((select l.level from public.membership_levels l
                    where l.is_active and p_points >= l.min_points
                      and (l.max_points is null or p_points <= l.max_points)
                    order by l.level desc limit 1), 0)
$fn$;

create or replace function mps_edge.discount_for_points(p_points int) returns numeric
language sql stable
set search_path = ''
as $fn$
  select coalesce((select l.discount from public.membership_levels l
                    where l.is_active and p_points >= l.min_points
                      and (l.max_points is null or p_points <= l.max_points)
                    order by l.level desc limit 1), 1.000)
$fn$;

-- The card object of the protocol (pull kind `cards` and push results), minus
-- the site-specific edge_seq. A view rather than a function so the planner
-- inlines it: the keyset condition and ORDER BY reach member_cards' index.
-- Money and discounts are strings with their column scale ("12.30", "0.950");
-- timestamps render in the caller's TimeZone (every edge_* function pins UTC).
create or replace view mps_edge.card_objects as
select c.id,
       c.updated_at,
       jsonb_build_object(
         'id',                 c.id,
         'card_no',            c.card_no,
         'card_type',          c.card_type,
         'owner_member_id',    c.owner_member_id,
         'name',               c.name,
         'balance',            c.balance::text,
         'points',             c.points,
         'level',              c.level,
         'discount',           c.discount::text,
         'corporate_discount', c.corporate_discount::text,
         'fixed_discount',     c.fixed_discount::text,
         'status',             c.status,
         'expires_at',         c.expires_at,
         'updated_at',         c.updated_at,
         'version',            coalesce(v.version, 0)) as card
  from public.member_cards c
  left join mps_edge.card_versions v on v.card_id = c.id;

-- One card as the given site sees it now (null when the card does not exist).
-- edge_apply_batch reads the same join inline for the ops it applies.
create or replace function mps_edge.card_snapshot(p_card_id uuid, p_site_code text) returns jsonb
language sql stable
set search_path = ''
set timezone = 'UTC'
as $fn$
  select o.card || jsonb_build_object('edge_seq', coalesce(s.last_seq, 0))
    from mps_edge.card_objects o
    left join mps_edge.card_site_seq s on s.card_id = o.id and s.site_code = p_site_code
   where o.id = p_card_id
$fn$;

create or replace function mps_edge.exception_json(e mps_edge.exceptions) returns jsonb
language sql stable
set search_path = ''
set timezone = 'UTC'
as $fn$
  select jsonb_build_object(
           'id', e.id, 'site_code', e.site_code, 'merchant_id', e.merchant_id, 'op_id', e.op_id,
           'op_type', e.op_type, 'tx_no', e.tx_no, 'card_id', e.card_id, 'reason', e.reason,
           'detail', e.detail, 'payload', e.payload, 'created_at', e.created_at,
           'resolved_at', e.resolved_at, 'resolved_by', e.resolved_by,
           'resolution_note', e.resolution_note)
$fn$;

-- The tag stored on an edge transaction: the op's tag plus the `edge` block.
create or replace function mps_edge.edge_tag(p_op jsonb, p_site_code text) returns jsonb
language plpgsql immutable
set search_path = ''
as $fn$
declare
  v_tag jsonb := coalesce(p_op -> 'tag', '{}'::jsonb);
begin
  if jsonb_typeof(v_tag) = 'null' then
    v_tag := '{}'::jsonb;
  elsif jsonb_typeof(v_tag) <> 'object' then
    raise exception 'EDGE_INVALID_OPERATION' using detail = 'tag must be a JSON object';
  end if;
  return v_tag || jsonb_build_object('edge', jsonb_build_object(
           'site',     p_site_code,
           'terminal', p_op -> 'terminal',
           'operator', p_op -> 'operator',
           'offline',  true,
           'op_id',    p_op -> 'op_id',
           'seq',      p_op -> 'seq'));
end
$fn$;

-- Fields every op carries. Malformed values raise class-22 errors, which the
-- batch turns into EDGE_INVALID_OPERATION.
--
-- require is a one-line SQL function with no SET clause so the planner
-- inlines it into each caller's expression: an op reads about ten fields, and
-- a PL/pgSQL call with a SET clause per field was a measurable share of an
-- op. The error comes from missing_field, reached through COALESCE only when
-- the field is absent or blank; it is VOLATILE so the planner never evaluates
-- it ahead of time (the field name is a constant), and require is VOLATILE
-- too because an inlined body may not be more volatile than its function.
create or replace function mps_edge.missing_field(p_field text) returns text
language plpgsql volatile
set search_path = ''
as $fn$
begin
  raise exception 'EDGE_INVALID_OPERATION' using detail = format('missing field %s', p_field);
end
$fn$;

create or replace function mps_edge.require(p_op jsonb, p_field text) returns text
language sql volatile
as $fn$
  select coalesce(nullif(pg_catalog.btrim(p_op operator(pg_catalog.->>) p_field), ''),
                  mps_edge.missing_field(p_field))
$fn$;

-- The op appliers take p_now, upstream's now_utc() (the transaction start),
-- from edge_apply_batch, which reads it once per batch: now_utc() is a SQL
-- function with a SET clause, so each call inside a statement costs a parse
-- and plan. The 3-argument versions of the first release are dropped.
drop function if exists mps_edge.apply_charge(jsonb, text, public.merchants);
drop function if exists mps_edge.apply_refund(jsonb, text, public.merchants);
drop function if exists mps_edge.apply_settlement(jsonb, text, public.merchants);

-- A charge made at the edge, applied with the edge's own amounts (the sale has
-- already happened at that price). Returns the card id. Raises the upstream
-- error string (or EDGE_*) to reject.
-- search_path: upstream's own, not ''. This function writes upstream tables whose
-- triggers run upstream code (set_updated_at() calls now_utc() unqualified) or calls
-- upstream functions that resolve their names through the caller's search_path;
-- with '' they fail with 42883/42P01 (sync/README.md, "search_path"). Only
-- upstream's schemas, pg_temp last so no temporary object can shadow them; every
-- name written here stays schema-qualified.
create or replace function mps_edge.apply_charge(p_op jsonb, p_site_code text, p_merchant public.merchants,
                                                 p_now timestamptz)
returns uuid
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_tx_id    uuid          := mps_edge.require(p_op, 'tx_id')::uuid;
  v_tx_no    text          := mps_edge.require(p_op, 'tx_no');
  v_card_id  uuid          := mps_edge.require(p_op, 'card_id')::uuid;
  v_seq      bigint        := mps_edge.require(p_op, 'seq')::bigint;
  v_raw      numeric       := mps_edge.require(p_op, 'raw_amount')::numeric;
  v_rate     numeric       := mps_edge.require(p_op, 'discount')::numeric;
  v_final    numeric       := mps_edge.require(p_op, 'final_amount')::numeric;
  v_points   int           := mps_edge.require(p_op, 'points_earned')::int;
  v_sold_at  timestamptz   := mps_edge.require(p_op, 'created_at')::timestamptz;
  v_order    text          := nullif(btrim(p_op ->> 'external_order_id'), '');
  v_tag      jsonb         := mps_edge.edge_tag(p_op, p_site_code);
  c          public.member_cards;
  v_after    int;
  v_inserted int;
begin
  -- the op must be self-consistent, by central's own rules
  if v_seq <= 0 or v_raw <= 0 or v_raw <> round(v_raw, 2)
     or v_rate < 0 or v_rate > 1 or v_rate <> round(v_rate, 3)
     or v_final <> round(v_raw * v_rate, 2)          -- numeric round: half away from zero
     or v_points <> floor(v_raw) then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = format('inconsistent amounts: raw %s discount %s final %s points %s',
                            v_raw, v_rate, v_final, v_points);
  end if;

  -- a site numbers its own transactions: another site's number would take
  -- that site's next tx_no away from it (tx_registry is global)
  if not pg_catalog.starts_with(v_tx_no, 'PAY-' || p_site_code || '-') then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = pg_catalog.format('tx_no %s is not a payment number of site %s', v_tx_no, p_site_code);
  end if;

  if p_merchant.id is null or p_merchant.status <> 'active' then
    raise exception 'MERCHANT_NOT_FOUND_OR_INACTIVE';
  end if;

  -- NO KEY UPDATE (what the UPDATE below takes anyway): a card's key never changes
  -- here, and FOR UPDATE would also block the FK checks (FOR KEY SHARE) of
  -- upstream's rotate_card_qr while it holds the card_qr_state row that
  -- check_charge_proof updates: a deadlock.
  select * into c from public.member_cards m where m.id = v_card_id for no key update;
  if not found then
    raise exception 'CARD_NOT_FOUND';
  end if;
  if c.status <> 'active' then
    raise exception 'CARD_NOT_ACTIVE';
  end if;
  -- expiry is judged at the time of the sale, not of the sync
  if c.expires_at is not null and c.expires_at < v_sold_at then
    raise exception 'CARD_EXPIRED';
  end if;
  if c.card_type = 'corporate' then
    raise exception 'CORPORATE_CARD_CANNOT_PAY';
  elsif c.card_type <> 'standard' then
    raise exception 'UNSUPPORTED_CARD_TYPE_FOR_PAYMENT';
  end if;
  if c.balance < v_final then
    raise exception 'INSUFFICIENT_BALANCE';
  end if;
  -- the discount must be one central gave this card: its effective discount now
  -- (upstream's rule: the lower of level and corporate discount) or one it had
  -- at any time since 7 days before the sale (a replica that old could still
  -- show it). Not "at the sale" exactly: a level reached through this site's own
  -- earlier ops is recorded when they are applied, after the sale.
  if v_rate <> least(c.discount, coalesce(c.corporate_discount, 1.000))
     and not exists (select 1 from mps_edge.card_discount_changes d
                      where d.card_id = c.id and d.changed_at >= v_sold_at - interval '7 days'
                        and d.discount = v_rate) then
    raise exception 'DISCOUNT_MISMATCH'
      using detail = pg_catalog.format('discount %s is not one central gave card %s (now %s)',
                                       v_rate, c.id, least(c.discount, coalesce(c.corporate_discount, 1.000)));
  end if;

  if v_order is not null then
    insert into public.merchant_order_registry (merchant_id, external_order_id, tx_id, created_at)
    values (p_merchant.id, v_order, v_tx_id, p_now)
    on conflict do nothing;
    get diagnostics v_inserted = row_count;
    if v_inserted = 0 then
      raise exception 'EDGE_DUPLICATE_EXTERNAL_ORDER'
        using detail = format('external order %s is already registered for this merchant', v_order);
    end if;
  end if;

  insert into public.tx_registry (tx_no, tx_id, created_at)
  values (v_tx_no, v_tx_id, p_now)
  on conflict do nothing;

  -- updated_at: the column default's value (now_utc()), given explicitly
  -- because a default that calls a SQL function is planned again per row
  insert into public.transactions (id, tx_no, tx_type, card_id, merchant_id, raw_amount, discount_applied,
                                   final_amount, points_earned, status, payment_method, tag, created_at,
                                   updated_at)
  values (v_tx_id, v_tx_no, 'payment', c.id, p_merchant.id, v_raw, v_rate,
          v_final, v_points, 'completed', 'balance', v_tag, v_sold_at, p_now);

  -- level and discount of the new total: level_for_points / discount_for_points
  -- in one lookup (the highest active level holding it, else 0 and 1.000)
  update public.member_cards m
     set balance    = m.balance - v_final,
         points     = m.points + v_points,
         (level, discount) =
           (select coalesce(l.level, 0), coalesce(l.discount, 1.000)
              from (values (1)) as one (x)
              left join lateral (
                     select lv.level, lv.discount from public.membership_levels lv
                      where lv.is_active and m.points + v_points >= lv.min_points
                        and (lv.max_points is null or m.points + v_points <= lv.max_points)
                      order by lv.level desc limit 1) l on true),
         updated_at = p_now
   where m.id = c.id
  returning m.points into v_after;

  insert into public.point_ledger (card_id, tx_id, change, balance_before, balance_after, reason, created_at)
  values (c.id, v_tx_id, v_points, c.points, v_after, 'payment_earn', p_now);

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'PAYMENT', 'transactions', v_tx_id,
          jsonb_build_object('merchant', p_merchant.code, 'final', v_final,
                             'edge', jsonb_build_object('site', p_site_code, 'op_id', p_op -> 'op_id')),
          p_now);

  return c.id;
end
$fn$;

-- Proof of presence for a pushed charge: the QR token the till read, checked
-- for the op's card as of the sale, then marked used everywhere. Raises
-- QR_PROOF_INVALID or QR_ALREADY_USED (the op becomes an exception and nothing
-- of it is applied). p_required is false only for the service role, whose
-- stores predate proofs; a site key must always carry one.
--   mq1:    the token names its card; its SHA-256 is looked up in qr_issued.
--   legacy: the op names the bcrypt hash the edge matched (token_hash); one
--           bcrypt check against that card's issued hash in card_qr_history.
-- Used: qr_used gets the token, and if it is still the card's current token,
-- card_qr_state expires it now, so central's own validator
-- (merchant_charge_by_qr) and every edge (through the qr_states pull) refuse it.
-- search_path: upstream's own, not ''. This function writes upstream tables whose
-- triggers run upstream code (set_updated_at() calls now_utc() unqualified) or calls
-- upstream functions that resolve their names through the caller's search_path;
-- with '' they fail with 42883/42P01 (sync/README.md, "search_path"). Only
-- upstream's schemas, pg_temp last so no temporary object can shadow them; every
-- name written here stays schema-qualified.
-- 32 bytes from base64url without padding (43 characters), or null. Only the
-- canonical spelling: one code, one text.
create or replace function mps_edge.b64url_32(p_text text) returns bytea
language plpgsql immutable
set search_path = ''
as $fn$
declare
  v bytea;
begin
  if p_text is null or p_text !~ '^[A-Za-z0-9_-]{43}$' then
    return null;
  end if;
  v := pg_catalog.decode(pg_catalog.translate(p_text, '-_', '+/') || '=', 'base64');
  if pg_catalog.length(v) <> 32
     or pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(v, 'base64'), '+/', '-_'), '=') <> p_text then
    return null;
  end if;
  return v;
end
$fn$;

-- An mq2 code (offline payment code, see mps_edge.qr_chains):
--   mq2.<card id, 32 hex>.<chain id, 16 hex>.<slot j, decimal>.<v_j, base64url of 32 bytes>
-- Proves the card's member showed a code of a chain enrolled for the card, for a
-- slot near the sale's time, never used before anywhere. Refusals raise
-- QR_PROOF_INVALID or QR_ALREADY_USED.
create or replace function mps_edge.check_chain_proof(p_token text, p_card_id uuid, p_sold_at timestamptz,
                                                      p_site_code text, p_op_id uuid, p_now timestamptz)
returns void
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_parts   text[] := pg_catalog.string_to_array(p_token, '.');
  v_chain   mps_edge.qr_chains;
  v_slot    int;
  v_value   bytea;
  v_k       int;
  v_known   bytea;
  v_x       bytea;
  v_start   timestamptz;
  v_ends    timestamptz;
  v_inserted int;
  v_later   record;
begin
  if pg_catalog.cardinality(v_parts) <> 5
     or v_parts[2] <> pg_catalog.replace(p_card_id::text, '-', '')
     or v_parts[3] !~ '^[0-9a-f]{16}$'
     or v_parts[4] !~ '^[1-9][0-9]{0,5}$' then
    raise exception 'QR_PROOF_INVALID' using detail = 'the mq2 code is malformed or names another card';
  end if;
  v_slot := v_parts[4]::int;
  v_value := mps_edge.b64url_32(v_parts[5]);
  if v_value is null then
    raise exception 'QR_PROOF_INVALID' using detail = 'the mq2 code is malformed';
  end if;
  select * into v_chain from mps_edge.qr_chains c
   where c.card_id = p_card_id and c.chain_id = v_parts[3]
   for update;
  if not found then
    raise exception 'QR_PROOF_INVALID' using detail = 'no offline chain with this id was enrolled for the card';
  end if;
  if v_slot > v_chain.slots then
    raise exception 'QR_PROOF_INVALID' using detail = 'the slot is past the end of the chain';
  end if;
  v_start := v_chain.epoch + (v_slot - 1) * pg_catalog.make_interval(secs => v_chain.slot_secs);
  v_ends := v_chain.ends_at;
  -- the slot is the sale's minute: 15 minutes of clock allowance either way
  if p_sold_at < v_start - interval '15 minutes'
     or p_sold_at > v_start + pg_catalog.make_interval(secs => v_chain.slot_secs) + interval '15 minutes' then
    raise exception 'QR_PROOF_INVALID'
      using detail = pg_catalog.format('slot %s is %s, the sale is dated %s', v_slot, v_start, p_sold_at);
  end if;
  if v_chain.revoked_at is not null and p_sold_at > v_chain.revoked_at + interval '5 minutes' then
    raise exception 'QR_PROOF_INVALID'
      using detail = pg_catalog.format('the chain was revoked %s, the sale is dated %s', v_chain.revoked_at, p_sold_at);
  end if;
  -- too old to check: central forgets a chain's used slots 35 days after it ended
  if v_ends < p_now - interval '35 days' then
    raise exception 'QR_PROOF_INVALID'
      using detail = pg_catalog.format('the chain ended %s, longer ago than central remembers used codes (35 days)', v_ends);
  end if;
  -- the nearest verified value below the slot (the anchor is slot 0)
  select s.slot, s.value into v_k, v_known
    from mps_edge.qr_chain_slots s
   where s.card_id = p_card_id and s.chain_id = v_chain.chain_id and s.slot < v_slot
   order by s.slot desc
   limit 1;
  if not found then
    v_k := 0;
    v_known := v_chain.anchor;
  end if;
  v_x := v_value;
  for i in 1 .. v_slot - v_k loop
    v_x := extensions.digest(v_x, 'sha256');
  end loop;
  if v_x <> v_known then
    raise exception 'QR_PROOF_INVALID' using detail = 'the code is not a value of the card''s chain';
  end if;
  -- Anyone who saw the code of a slot can hash it into the codes of every earlier slot
  -- (a photographed code, or a store that took it). The member's phone only moves
  -- forward, so once a later slot paid in a sale dated before this one, this slot's code
  -- is dead: refused, with 2 minutes of allowance for stores' clocks. (Earlier slots
  -- dated before the later sale stay possible: an offline store pushing late.)
  select s.slot, s.site_code, s.sold_at into v_later
    from mps_edge.qr_chain_slots s
   where s.card_id = p_card_id and s.chain_id = v_chain.chain_id and s.slot > v_slot
     and s.sold_at < p_sold_at - interval '2 minutes'
   order by s.slot
   limit 1;
  if found then
    raise exception 'QR_ALREADY_USED'
      using detail = pg_catalog.format('slot %s of the chain paid at %s (%s), before this sale of slot %s (%s)',
                                       v_later.slot, v_later.sold_at, v_later.site_code, v_slot, p_sold_at);
  end if;
  insert into mps_edge.qr_chain_slots (card_id, chain_id, slot, value, site_code, op_id, used_at, sold_at)
  values (p_card_id, v_chain.chain_id, v_slot, v_value, p_site_code, p_op_id, p_now, p_sold_at)
  on conflict do nothing;
  get diagnostics v_inserted = row_count;
  if v_inserted = 0 then
    raise exception 'QR_ALREADY_USED'
      using detail = (select pg_catalog.format('slot %s of the chain already paid (%s, %s)', v_slot, s.site_code, s.used_at)
                        from mps_edge.qr_chain_slots s
                       where s.card_id = p_card_id and s.chain_id = v_chain.chain_id and s.slot = v_slot);
  end if;
  -- edges pull the highest used slot and refuse slots up to it
  if v_slot > v_chain.used_through then
    update mps_edge.qr_chains c
       set used_through = v_slot, updated_at = pg_catalog.clock_timestamp()
     where c.id = v_chain.id;
  end if;
end
$fn$;

create or replace function mps_edge.check_charge_proof(p_op jsonb, p_site_code text, p_required boolean,
                                                       p_now timestamptz)
returns void
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_proof    jsonb := p_op -> 'qr_proof';
  v_card_id  uuid := mps_edge.require(p_op, 'card_id')::uuid;
  v_sold_at  timestamptz := mps_edge.require(p_op, 'created_at')::timestamptz;
  v_token    text;
  v_hash     text;
  v_issued   timestamptz;
  v_expires  timestamptz;
  v_inserted int;
begin
  if v_proof is null or jsonb_typeof(v_proof) <> 'object' then
    if p_required then
      raise exception 'QR_PROOF_INVALID' using detail = 'the charge carries no qr_proof';
    end if;
    return;
  end if;
  v_token := v_proof ->> 'token';
  if v_token is null or pg_catalog.length(v_token) not between 20 and 200 then
    raise exception 'QR_PROOF_INVALID' using detail = 'qr_proof.token is missing or malformed';
  end if;

  if pg_catalog.starts_with(v_token, 'mq2.') then
    perform mps_edge.check_chain_proof(v_token, v_card_id, v_sold_at, p_site_code,
                                       mps_edge.try_uuid(p_op ->> 'op_id'), p_now);
    return;
  end if;

  if pg_catalog.starts_with(v_token, 'mq1.') then
    select i.token_hash, i.issued_at, i.expires_at into v_hash, v_issued, v_expires
      from mps_edge.qr_issued i
     where i.verifier = pg_catalog.encode(extensions.digest(v_token, 'sha256'), 'hex')
       and i.card_id = v_card_id;
    if not found then
      raise exception 'QR_PROOF_INVALID' using detail = 'no mq1 token with this proof was issued for the card';
    end if;
  else
    v_hash := v_proof ->> 'token_hash';
    -- the card's own history, newest first from the sale (index card_id, issued_at desc)
    select h.issued_at, h.expires_at into v_issued, v_expires
      from public.card_qr_history h
     where h.card_id = v_card_id and h.token_hash = v_hash
       and h.issued_at <= v_sold_at + interval '5 minutes'
     order by h.issued_at desc
     limit 1;
    if not found or extensions.crypt(v_token, v_hash) <> v_hash then
      raise exception 'QR_PROOF_INVALID' using detail = 'the token is not one issued for the card';
    end if;
  end if;
  -- valid when sold (5 minutes of clock allowance either way)
  if v_sold_at < v_issued - interval '5 minutes' or v_sold_at > v_expires + interval '5 minutes' then
    raise exception 'QR_PROOF_INVALID'
      using detail = pg_catalog.format('the token was valid %s .. %s, the sale is dated %s', v_issued, v_expires, v_sold_at);
  end if;

  -- too old to check: central forgets used tokens 35 days after they expired
  if v_expires < p_now - interval '35 days' then
    raise exception 'QR_PROOF_INVALID'
      using detail = pg_catalog.format('the token expired %s, longer ago than central remembers used tokens (35 days)',
                                       v_expires);
  end if;

  insert into mps_edge.qr_used (token_hash, card_id, site_code, op_id, used_at, expires_at)
  values (v_hash, v_card_id, p_site_code, mps_edge.try_uuid(p_op ->> 'op_id'), p_now, v_expires)
  on conflict do nothing;
  get diagnostics v_inserted = row_count;
  if v_inserted = 0 then
    raise exception 'QR_ALREADY_USED'
      using detail = (select pg_catalog.format('the token already paid (%s, %s)', u.site_code, u.used_at)
                        from mps_edge.qr_used u where u.token_hash = v_hash);
  end if;
  update public.card_qr_state q
     set expires_at = p_now
   where q.card_id = v_card_id and q.token_hash = v_hash and q.expires_at > p_now;
end
$fn$;

-- rotate_card_qr's rules for who may make a card's payment codes, for THIS
-- request only: forgets any identity the connection carries, loads the
-- session's, and requires a super admin, or a member who owns the card or holds
-- an active binding to it. The caller forgets the identity again before it
-- returns (mps_edge.forget_app_identity).
create or replace function mps_edge.require_qr_rights(p_card_id uuid, p_session_id text) returns void
language plpgsql
set search_path = public, extensions, pg_temp
as $fn$
declare
  v_role text;
begin
  perform mps_edge.forget_app_identity();
  if p_session_id is not null then
    perform public.load_session(p_session_id);
  end if;
  v_role := public.get_user_role();
  if v_role = 'merchant' then
    raise exception 'PERMISSION_DENIED: 商戶不能生成 QR 碼';
  elsif v_role is distinct from 'super_admin' and v_role is distinct from 'member' then
    raise exception 'PERMISSION_DENIED: 需要登入才能生成 QR 碼';
  elsif v_role = 'member' and not mps_edge.qr_member_may_use_card(p_card_id) then
    raise exception 'PERMISSION_DENIED: 您沒有權限為此卡片生成 QR 碼';
  end if;
end
$fn$;

-- A payment central takes itself (upstream's merchant_charge_by_qr; any payment
-- not pushed by an edge) uses the card's current token: mark it used, and touch
-- its state so edges pull it again and refuse it. Central's own rule for its
-- own payments is unchanged (it may accept the token again until it expires).
create or replace function mps_edge.mark_central_payment() returns trigger
language plpgsql security definer
set search_path = ''
as $fn$
begin
  insert into mps_edge.qr_used (token_hash, card_id, site_code, expires_at)
  select q.token_hash, q.card_id, 'central', q.expires_at
    from public.card_qr_state q
   where q.card_id = new.card_id and q.expires_at > pg_catalog.clock_timestamp()
  on conflict do nothing;
  if found then
    -- edge_qr_state_touch stamps updated_at: the qr_states pull carries it again.
    -- SKIP LOCKED: the payment holds the card, and a rotation holding this row
    -- waits for the card (its card_qr_history FK check); that rotation replaces
    -- the token anyway, and its own write is pulled.
    update public.card_qr_state q set token_hash = q.token_hash
     where q.card_id = new.card_id
       and q.ctid in (select x.ctid from public.card_qr_state x where x.card_id = new.card_id
                       for update skip locked);
  end if;
  return null;
end
$fn$;

create or replace trigger edge_central_payment
  after insert on public.transactions
  for each row
  when (new.tx_type = 'payment' and new.tag -> 'edge' is null)
  execute function mps_edge.mark_central_payment();

-- A refund made at the edge, with upstream's merchant_refund_tx effects.
-- Unlike upstream it locks the card and the original, so concurrent refunds
-- of one payment cannot over-refund. Returns the card id.
-- search_path: upstream's own, not ''. This function writes upstream tables whose
-- triggers run upstream code (set_updated_at() calls now_utc() unqualified) or calls
-- upstream functions that resolve their names through the caller's search_path;
-- with '' they fail with 42883/42P01 (sync/README.md, "search_path"). Only
-- upstream's schemas, pg_temp last so no temporary object can shadow them; every
-- name written here stays schema-qualified.
create or replace function mps_edge.apply_refund(p_op jsonb, p_site_code text, p_merchant public.merchants,
                                                 p_now timestamptz)
returns uuid
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_tx_id    uuid        := mps_edge.require(p_op, 'tx_id')::uuid;
  v_tx_no    text        := mps_edge.require(p_op, 'tx_no');
  v_card_id  uuid        := mps_edge.require(p_op, 'card_id')::uuid;
  v_seq      bigint      := mps_edge.require(p_op, 'seq')::bigint;
  v_amount   numeric     := mps_edge.require(p_op, 'final_amount')::numeric;
  v_raw      numeric     := nullif(btrim(p_op ->> 'raw_amount'), '')::numeric;
  v_rate     numeric     := nullif(btrim(p_op ->> 'discount'), '')::numeric;
  v_points   int         := nullif(btrim(p_op ->> 'points_earned'), '')::int;
  v_made_at  timestamptz := mps_edge.require(p_op, 'created_at')::timestamptz;
  v_orig_no  text        := mps_edge.require(p_op, 'original_tx_no');
  v_orig_id  uuid        := nullif(btrim(p_op ->> 'original_tx_id'), '')::uuid;
  v_tag      jsonb       := mps_edge.edge_tag(p_op, p_site_code);
  o          public.transactions;
  v_left     numeric(12,2);
begin
  -- a refund is money back at face value: raw = final, discount 1, no points
  if v_seq <= 0 or v_amount <= 0 or v_amount <> round(v_amount, 2)
     or (v_raw is not null and v_raw <> v_amount)
     or (v_rate is not null and v_rate <> 1)
     or (v_points is not null and v_points <> 0) then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = format('inconsistent refund amounts: raw %s discount %s final %s points %s',
                            v_raw, v_rate, v_amount, v_points);
  end if;

  if not pg_catalog.starts_with(v_tx_no, 'REF-' || p_site_code || '-') then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = pg_catalog.format('tx_no %s is not a refund number of site %s', v_tx_no, p_site_code);
  end if;

  if p_merchant.id is null or p_merchant.status <> 'active' then
    raise exception 'MERCHANT_NOT_FOUND_OR_INACTIVE';
  end if;

  select * into o from public.transactions t
   where t.tx_no = v_orig_no and t.merchant_id = p_merchant.id;
  if not found then
    raise exception 'ORIGINAL_TX_NOT_FOUND';
  end if;
  if (v_orig_id is not null and v_orig_id <> o.id) or v_card_id <> o.card_id then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = 'original_tx_id / card_id do not match the original transaction';
  end if;

  -- card first (the order charges use), then the original; re-read under lock
  perform 1 from public.member_cards m where m.id = o.card_id for no key update;
  select * into o from public.transactions t where t.id = o.id for update;

  if o.tx_type <> 'payment' or o.status not in ('completed', 'refunded') then
    raise exception 'ONLY_COMPLETED_PAYMENT_REFUNDABLE';
  end if;

  v_left := o.final_amount - coalesce((
              select sum(r.final_amount) from public.transactions r
               where r.tx_type = 'refund' and r.card_id = o.card_id and r.reason = o.tx_no
                 and r.status in ('processing', 'completed')), 0);
  if v_amount > v_left then
    raise exception 'REFUND_EXCEEDS_REMAINING';
  end if;

  insert into public.tx_registry (tx_no, tx_id, created_at)
  values (v_tx_no, v_tx_id, p_now)
  on conflict do nothing;

  -- like upstream: linked through reason only, original_tx_id stays null
  -- updated_at given explicitly, as in apply_charge
  insert into public.transactions (id, tx_no, tx_type, card_id, merchant_id, raw_amount, discount_applied,
                                   final_amount, points_earned, status, reason, payment_method, tag, created_at,
                                   updated_at)
  values (v_tx_id, v_tx_no, 'refund', o.card_id, p_merchant.id, v_amount, 1.000,
          v_amount, 0, 'completed', o.tx_no, o.payment_method, v_tag, v_made_at, p_now);

  -- card status is not checked and points are not reversed (as upstream)
  update public.member_cards m
     set balance = m.balance + v_amount, updated_at = p_now
   where m.id = o.card_id;

  if v_amount >= v_left then
    update public.transactions t set status = 'refunded' where t.id = o.id;
  end if;

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'REFUND', 'transactions', v_tx_id,
          jsonb_build_object('merchant', p_merchant.code, 'amount', v_amount,
                             'edge', jsonb_build_object('site', p_site_code, 'op_id', p_op -> 'op_id')),
          p_now);

  return o.card_id;
end
$fn$;

-- A settlement generated at the edge. The edge's record is authoritative for
-- its own site: the row is stored with the edge's id and figures, in the shape
-- upstream's generate_settlement writes (status pending, SETTLEMENT_GENERATE
-- audit row), with the edge's breakdown in payload.edge. Central's own figures
-- for the merchant and period (generate_settlement's rule) are added as
-- payload.edge.central_total / central_count when they differ. A negative total
-- cannot be stored (settlements_check) and is rejected. Returns nothing: a
-- settlement has no card.
-- search_path: upstream's own, not ''. This function writes upstream tables whose
-- triggers run upstream code (set_updated_at() calls now_utc() unqualified) or calls
-- upstream functions that resolve their names through the caller's search_path;
-- with '' they fail with 42883/42P01 (sync/README.md, "search_path"). Only
-- upstream's schemas, pg_temp last so no temporary object can shadow them; every
-- name written here stays schema-qualified.
create or replace function mps_edge.apply_settlement(p_op jsonb, p_site_code text, p_merchant public.merchants,
                                                     p_now timestamptz)
returns void
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_id        uuid                     := mps_edge.require(p_op, 'settlement_id')::uuid;
  v_no        text                     := mps_edge.require(p_op, 'settlement_no');
  v_seq       bigint                   := mps_edge.require(p_op, 'seq')::bigint;
  v_mode      public.settlement_mode   := mps_edge.require(p_op, 'mode')::public.settlement_mode;
  v_start     timestamptz              := mps_edge.require(p_op, 'period_start')::timestamptz;
  v_end       timestamptz              := mps_edge.require(p_op, 'period_end')::timestamptz;
  v_pay_count bigint                   := mps_edge.require(p_op, 'payment_count')::bigint;
  v_pay_amt   numeric                  := mps_edge.require(p_op, 'payment_amount')::numeric;
  v_ref_count bigint                   := mps_edge.require(p_op, 'refund_count')::bigint;
  v_ref_amt   numeric                  := mps_edge.require(p_op, 'refund_amount')::numeric;
  v_total     numeric                  := mps_edge.require(p_op, 'total_amount')::numeric;
  v_count     bigint                   := mps_edge.require(p_op, 'tx_count')::bigint;
  v_made_at   timestamptz              := mps_edge.require(p_op, 'created_at')::timestamptz;
  v_c_total   numeric(12,2);
  v_c_count   bigint;
  v_edge      jsonb;
begin
  -- the op must be self-consistent: total = payments - refunds, count = both
  -- NaN is named: it passes every comparison below (NaN = NaN in numeric) and the
  -- table's CHECK, and would be stored as the settlement's total.
  if v_seq <= 0 or v_end < v_start
     or 'NaN'::numeric in (v_pay_amt, v_ref_amt, v_total)
     or v_pay_count < 0 or v_ref_count < 0 or v_pay_amt < 0 or v_ref_amt < 0
     or v_pay_amt <> round(v_pay_amt, 2) or v_ref_amt <> round(v_ref_amt, 2)
     or v_total <> v_pay_amt - v_ref_amt or v_count <> v_pay_count + v_ref_count then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = format('inconsistent settlement: period %s..%s payments %s/%s refunds %s/%s total %s count %s',
                            v_start, v_end, v_pay_count, v_pay_amt, v_ref_count, v_ref_amt, v_total, v_count);
  end if;

  if not pg_catalog.starts_with(v_no, 'STL-' || p_site_code || '-') then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = pg_catalog.format('settlement_no %s is not a settlement number of site %s', v_no, p_site_code);
  end if;

  if p_merchant.id is null or p_merchant.status <> 'active' then
    raise exception 'MERCHANT_NOT_FOUND_OR_INACTIVE';
  end if;

  -- settlements_check (total_amount >= 0) would refuse the row
  if v_total < 0 then
    raise exception 'SETTLEMENT_NEGATIVE_TOTAL'
      using detail = format('settlement %s totals %s (refunds %s exceed payments %s); central settlements cannot be negative',
                            v_no, v_total, v_ref_amt, v_pay_amt);
  end if;

  -- central's own figures, by generate_settlement's rule
  select coalesce(sum(case when t.tx_type = 'payment' then t.final_amount else -t.final_amount end), 0),
         count(*)
    into v_c_total, v_c_count
    from public.transactions t
   where t.merchant_id = p_merchant.id
     and t.created_at >= v_start and t.created_at < v_end
     and t.status in ('completed', 'refunded');

  v_edge := jsonb_build_object(
    'site',           p_site_code,
    'op_id',          p_op -> 'op_id',
    'seq',            v_seq,
    'settlement_no',  v_no,
    'operator',       p_op -> 'operator',
    'payment_count',  v_pay_count,
    'payment_amount', round(v_pay_amt, 2),
    'refund_count',   v_ref_count,
    'refund_amount',  round(v_ref_amt, 2));
  if v_c_total <> v_total or v_c_count <> v_count then
    v_edge := v_edge || jsonb_build_object('central_total', v_c_total, 'central_count', v_c_count);
  end if;

  insert into public.settlements (id, merchant_id, period_start, period_end, mode, total_amount,
                                  total_tx_count, status, payload, created_at)
  values (v_id, p_merchant.id, v_start, v_end, v_mode, v_total, v_count::int, 'pending',
          jsonb_build_object('edge', v_edge), v_made_at);

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'SETTLEMENT_GENERATE', 'settlements', v_id,
          jsonb_build_object('merchant_id', p_merchant.id, 'total', round(v_total, 2), 'count', v_count,
                             'edge', jsonb_build_object('site', p_site_code, 'op_id', p_op -> 'op_id')),
          p_now);
end
$fn$;

-- An owner voided, at the edge, a settlement this site reported earlier. Upstream has
-- no "voided" status (settlement_status: pending, settled, failed, paid) and no void
-- call, only update_settlement_status (super_admin, no transition checks). The row
-- stays, as upstream keeps every settlement: its status becomes 'failed', the void's
-- who/when/why go in payload.edge.void, and an audit row SETTLEMENT_VOID is written.
-- Refused: a settlement of another site or unknown here (SETTLEMENT_NOT_FOUND,
-- upstream's string), and one central has already moved to settled or paid
-- (SETTLEMENT_ALREADY_PAID: money has moved, a person must sort it out). The edge's
-- ops are applied in seq order, so the settlement always arrives first.
-- search_path: as apply_settlement (upstream's updated_at trigger runs on the update).
create or replace function mps_edge.apply_settlement_void(p_op jsonb, p_site_code text, p_now timestamptz)
returns void
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_id      uuid        := mps_edge.require(p_op, 'settlement_id')::uuid;
  v_no      text        := mps_edge.require(p_op, 'settlement_no');
  v_reason  text        := mps_edge.require(p_op, 'reason');
  v_at      timestamptz := mps_edge.require(p_op, 'voided_at')::timestamptz;
  v_row     public.settlements;
begin
  if pg_catalog.length(pg_catalog.btrim(v_reason)) = 0 or pg_catalog.length(v_reason) > 500 then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = 'a void needs a reason of 1-500 characters';
  end if;

  select s.* into v_row
    from public.settlements s
   where s.id = v_id
     and s.payload -> 'edge' ->> 'site' = p_site_code
     and s.payload -> 'edge' ->> 'settlement_no' = v_no
     for update;
  if not found then
    raise exception 'SETTLEMENT_NOT_FOUND'
      using detail = pg_catalog.format('no settlement %s of site %s', v_no, p_site_code);
  end if;
  if v_row.status in ('settled', 'paid') then
    raise exception 'SETTLEMENT_ALREADY_PAID'
      using detail = pg_catalog.format('settlement %s is %s at central', v_no, v_row.status);
  end if;

  update public.settlements s
     set status = 'failed',
         payload = pg_catalog.jsonb_set(s.payload, '{edge,void}',
                     pg_catalog.jsonb_build_object('op_id', p_op -> 'op_id', 'voided_at', v_at,
                                                   'operator', p_op -> 'operator', 'reason', v_reason,
                                                   'status_before', v_row.status))
   where s.id = v_id;

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'SETTLEMENT_VOID', 'settlements', v_id,
          pg_catalog.jsonb_build_object('merchant_id', v_row.merchant_id, 'reason', v_reason,
                                        'status_before', v_row.status,
                                        'edge', pg_catalog.jsonb_build_object('site', p_site_code, 'op_id', p_op -> 'op_id')),
          p_now);
end
$fn$;

-- A manager froze a lost card at the edge (card_freeze) or lifted that freeze
-- (card_unfreeze). The effect on the card is upstream's freeze_card / unfreeze_card:
-- status 'inactive' / 'active', updated_at, and an audit row CARD_FREEZE /
-- CARD_UNFREEZE on member_cards (with the edge's site, op, operator and reason in its
-- context; upstream writes '{}'). Stricter than those calls:
-- - the card must exist (CARD_NOT_FOUND, upstream's string; freeze_card accepts any id);
-- - a freeze of a card already inactive changes nothing and claims nothing (head office
--   or another site froze it first); of a lost, expired or closed card it is refused
--   (CARD_NOT_ACTIVE): freezing must not make a card an unfreeze would reactivate;
-- - an unfreeze lifts only this site's own freeze (EDGE_CARD_NOT_FROZEN_HERE otherwise),
--   and only from 'inactive': a card head office has since marked lost stays lost and
--   the freeze record is dropped (upstream's unfreeze_card reactivates any status).
-- The op carries the card id, so it is applied in its place among the card's charges.
-- search_path: upstream's (the updated_at trigger on member_cards runs upstream code).
create or replace function mps_edge.apply_card_status(p_op jsonb, p_site_code text, p_now timestamptz)
returns uuid
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_freeze  boolean     := (p_op ->> 'op_type') = 'card_freeze';
  v_card_id uuid        := mps_edge.require(p_op, 'card_id')::uuid;
  v_reason  text        := mps_edge.require(p_op, 'reason');
  v_op_id   uuid        := mps_edge.require(p_op, 'op_id')::uuid;
  v_at      timestamptz := mps_edge.require(p_op, 'at')::timestamptz;
  v_status  text;
  v_mine    mps_edge.card_freezes;
begin
  if pg_catalog.length(pg_catalog.btrim(v_reason)) = 0 or pg_catalog.length(v_reason) > 500 then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = 'a freeze or unfreeze needs a reason of 1-500 characters';
  end if;
  select c.status::text into v_status from public.member_cards c where c.id = v_card_id for update;
  if not found then
    raise exception 'CARD_NOT_FOUND' using detail = pg_catalog.format('no card %s', v_card_id);
  end if;

  if v_freeze then
    if v_status = 'inactive' then
      return v_card_id;         -- frozen already: nothing to do, nothing to claim
    end if;
    if v_status <> 'active' then
      raise exception 'CARD_NOT_ACTIVE'
        using detail = pg_catalog.format('the card is %s at central', v_status);
    end if;
    update public.member_cards c set status = 'inactive', updated_at = p_now where c.id = v_card_id;
    insert into mps_edge.card_freezes (card_id, site_code, op_id, frozen_at, reason)
    values (v_card_id, p_site_code, v_op_id, v_at, v_reason)
    on conflict (card_id) do update
      set site_code = excluded.site_code, op_id = excluded.op_id,
          frozen_at = excluded.frozen_at, reason = excluded.reason;
  else
    select f.* into v_mine from mps_edge.card_freezes f
     where f.card_id = v_card_id and f.site_code = p_site_code
       for update;
    if not found then
      raise exception 'EDGE_CARD_NOT_FROZEN_HERE'
        using detail = pg_catalog.format('site %s did not freeze card %s', p_site_code, v_card_id);
    end if;
    delete from mps_edge.card_freezes f where f.card_id = v_card_id;
    if v_status <> 'inactive' then
      return v_card_id;         -- active again already, or lost/closed since: left as is
    end if;
    update public.member_cards c set status = 'active', updated_at = p_now where c.id = v_card_id;
  end if;

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, case when v_freeze then 'CARD_FREEZE' else 'CARD_UNFREEZE' end, 'member_cards', v_card_id,
          pg_catalog.jsonb_build_object('reason', v_reason,
                                        'edge', pg_catalog.jsonb_build_object('site', p_site_code, 'op_id', v_op_id,
                                                                              'operator', p_op -> 'operator', 'at', v_at)),
          p_now);
  return v_card_id;
end
$fn$;

-- A top-up taken at the edge's till (recharge): the rows upstream's user_recharge_card
-- writes (contract §3.10) — tx_registry, a completed 'recharge' transaction with no
-- merchant, the card's balance, a RECHARGE audit row — with the edge's figures. Returns
-- the card id. After the op's own shape, upstream's checks in upstream's order and with
-- its strings: the card, locked, must exist and be active (CARD_NOT_FOUND_OR_INACTIVE),
-- then be a standard card (UNSUPPORTED_CARD_TYPE_FOR_RECHARGE). Upstream checks no
-- expiry and no merchant, and neither does this. On purpose unlike user_recharge_card:
-- - tx_no is the edge's RCG-<site>-… number, not one from central's RCG sequence, so the
--   member's receipt and central name the same transaction (as for charges and refunds);
-- - created_at is when the till took the money, not when the op reached central;
-- - no idempotency_registry or merchant_order_registry row: exactly once comes from
--   applied_ops (op_id) and the unique tx_no, and upstream's order registry never
--   de-duplicates a recharge anyway (it files it under a null merchant);
-- - the card is locked FOR NO KEY UPDATE, not FOR UPDATE: the batch already holds that
--   lock, and FOR UPDATE would block rotate_card_qr's FK check on the card while a
--   later charge of the same batch waits for the card_qr_state row rotate_card_qr
--   holds — the deadlock apply_charge avoids (sync/README.md, "Lock order").
-- merchant_id stays null, as upstream's: a recharge belongs to no merchant, so the
-- site's merchant's settlements and day statistics do not count it.
-- search_path: upstream's (the updated_at trigger on member_cards runs upstream code).
create or replace function mps_edge.apply_recharge(p_op jsonb, p_site_code text, p_now timestamptz)
returns uuid
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_tx_id    uuid        := mps_edge.require(p_op, 'tx_id')::uuid;
  v_tx_no    text        := mps_edge.require(p_op, 'tx_no');
  v_card_id  uuid        := mps_edge.require(p_op, 'card_id')::uuid;
  v_seq      bigint      := mps_edge.require(p_op, 'seq')::bigint;
  v_amount   numeric     := mps_edge.require(p_op, 'final_amount')::numeric;
  v_raw      numeric     := mps_edge.require(p_op, 'raw_amount')::numeric;
  v_rate     numeric     := mps_edge.require(p_op, 'discount')::numeric;
  v_points   int         := mps_edge.require(p_op, 'points_earned')::int;
  v_method   text        := mps_edge.require(p_op, 'payment_method');
  v_made_at  timestamptz := mps_edge.require(p_op, 'created_at')::timestamptz;
  v_order    text        := nullif(pg_catalog.btrim(p_op ->> 'external_order_id'), '');
  v_tag      jsonb       := mps_edge.edge_tag(p_op, p_site_code);
  c          public.member_cards;
begin
  -- a top-up is money in at face value: raw = final, discount 1, no points, at most
  -- 2 decimals (upstream would store a rounded amount and audit the unrounded one).
  -- NaN is named: it passes "> 0" and the CHECKs, and would make the balance NaN.
  if v_seq <= 0 or v_amount <= 0 or v_amount = 'NaN'::numeric or v_amount <> pg_catalog.round(v_amount, 2)
     or v_raw <> v_amount or v_rate <> 1 or v_points <> 0 then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = pg_catalog.format('inconsistent recharge amounts: raw %s discount %s final %s points %s',
                                       v_raw, v_rate, v_amount, v_points);
  end if;

  -- a site numbers its own transactions (tx_registry is global), as for charges
  if not pg_catalog.starts_with(v_tx_no, 'RCG-' || p_site_code || '-') then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = pg_catalog.format('tx_no %s is not a recharge number of site %s', v_tx_no, p_site_code);
  end if;

  -- upstream's pay_method values less 'balance' (a top-up paid out of the balance it
  -- tops up is no top-up). Checked here so an unknown text is refused with a clear
  -- detail, not by the enum cast's 22P02.
  if v_method = 'balance' or v_method <> all (pg_catalog.enum_range(null::public.pay_method)::text[]) then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = pg_catalog.format('payment_method %s cannot pay a recharge (cash, wechat or alipay)', v_method);
  end if;

  -- upstream files a recharge's external order under a null merchant, where it never
  -- de-duplicates; the edge sends none, so one that arrives is a protocol mismatch for
  -- a person to look at, not something to drop silently
  if v_order is not null then
    raise exception 'EDGE_INVALID_OPERATION'
      using detail = 'a recharge carries no external_order_id';
  end if;

  select * into c from public.member_cards m where m.id = v_card_id for no key update;
  if c.id is null or c.status <> 'active' then
    raise exception 'CARD_NOT_FOUND_OR_INACTIVE'
      using detail = case when c.id is null then pg_catalog.format('no card %s', v_card_id)
                          else pg_catalog.format('the card is %s at central', c.status) end;
  end if;
  if c.card_type <> 'standard' then
    raise exception 'UNSUPPORTED_CARD_TYPE_FOR_RECHARGE'
      using detail = pg_catalog.format('the card is a %s card', c.card_type);
  end if;

  insert into public.tx_registry (tx_no, tx_id, created_at)
  values (v_tx_no, v_tx_id, p_now)
  on conflict do nothing;

  -- the manager who approved a top-up over the till's limits goes with the
  -- transaction, next to the operator (edge_tag's block is the same for every op)
  v_tag := v_tag || jsonb_build_object('edge', (v_tag -> 'edge')
                                               || jsonb_build_object('approved_by', p_op -> 'approved_by'));

  -- upstream inserts 'processing' and sets 'completed' before it commits: the
  -- committed row is this one. updated_at given explicitly, as in apply_charge.
  insert into public.transactions (id, tx_no, tx_type, card_id, merchant_id, raw_amount, discount_applied,
                                   final_amount, points_earned, status, reason, payment_method, tag, created_at,
                                   updated_at)
  values (v_tx_id, v_tx_no, 'recharge', c.id, null, v_amount, 1.000,
          v_amount, 0, 'completed', 'recharge', v_method::public.pay_method, v_tag, v_made_at, p_now);

  -- no points, no level change (as upstream)
  update public.member_cards m
     set balance = m.balance + v_amount, updated_at = p_now
   where m.id = c.id;

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'RECHARGE', 'transactions', v_tx_id,
          jsonb_build_object('amount', pg_catalog.round(v_amount, 2), 'method', v_method,
                             'edge', jsonb_build_object('site', p_site_code, 'op_id', p_op -> 'op_id',
                                                        'operator', p_op -> 'operator',
                                                        'approved_by', p_op -> 'approved_by')),
          p_now);

  return c.id;
end
$fn$;

-- rotate_card_qr's rule for a member caller (contract §3.4), for
-- edge_issue_qr: the caller owns the card, or holds an ACTIVE binding to it.
-- "The caller" is a member profile whose id is the connection's app.user_id
-- (custom session), or whose Supabase mapping (binding_user_org 'supabase',
-- binding_org_id = auth.uid()) names the JWT subject. Upstream has this check
-- inline in rotate_card_qr/revoke_card_qr, not as a callable helper.
create or replace function mps_edge.qr_member_may_use_card(p_card_id uuid) returns boolean
language sql stable
set search_path = ''
as $fn$
  -- both branches start from the card (primary key / (card_id, status) index)
  select exists (select 1
                   from public.member_cards mc
                   join public.member_profiles mp on mp.id = mc.owner_member_id
                  where mc.id = p_card_id
                    and (mp.id::text = pg_catalog.current_setting('app.user_id', true)
                         or (mp.binding_user_org = 'supabase' and mp.binding_org_id = auth.uid()::text)))
      or exists (select 1
                   from public.card_bindings b
                   join public.member_profiles mp on mp.id = b.member_id
                  where b.card_id = p_card_id and b.status = 'active'
                    and (mp.id::text = pg_catalog.current_setting('app.user_id', true)
                         or (mp.binding_user_org = 'supabase' and mp.binding_org_id = auth.uid()::text)))
$fn$;

-- Clears upstream's session-level login identity (load_session and the login
-- RPCs set app.user_role, app.user_id, app.merchant_id and app.member_id with
-- set_config(..., false)); see edge_issue_qr.
create or replace function mps_edge.forget_app_identity() returns void
language sql volatile
set search_path = ''
as $fn$
  select pg_catalog.set_config('app.user_role', '', false),
         pg_catalog.set_config('app.user_id', '', false),
         pg_catalog.set_config('app.merchant_id', '', false),
         pg_catalog.set_config('app.member_id', '', false);
$fn$;

-- -----------------------------------------------------------------------------
-- 6b. Who is calling: site keys
--
-- A store calls central with the project's anon key plus its own site key in
-- the request header x-mps-site-key (PostgREST hands the request headers to
-- SQL as the JSON setting request.headers). Every edge_* function the edge
-- calls starts with mps_edge.authenticate, which takes the site and merchant
-- from the key; the p_site_code / p_merchant_code arguments only have to agree.
-- The service role may still call without a key (stores being migrated): then
-- the arguments name the site, as in protocol version 1.
-- -----------------------------------------------------------------------------

-- True when the caller is the service role or a database login that is not an
-- API role: the SET ROLE PostgREST made (anon, authenticated, service_role)
-- survives into SECURITY DEFINER functions, unlike current_user.
create or replace function mps_edge.caller_is_service() returns boolean
language sql stable
set search_path = ''
as $fn$
  select coalesce(pg_catalog.current_setting('role', true), 'none') not in ('anon', 'authenticated')
     and coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role',
                  'service_role') = 'service_role'
$fn$;

-- One request header (lowercase name), or null.
create or replace function mps_edge.request_header(p_name text) returns text
language sql stable
set search_path = ''
as $fn$
  select nullif(btrim(nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb ->> p_name), '')
$fn$;

-- A refusal the caller sees as an HTTP status with PostgREST's error body. The
-- function returns it instead of raising, so that what it wrote (the count of
-- bad keys) commits; PostgREST takes the status from response.status.
create or replace function mps_edge.refusal(p_status int, p_code text, p_message text, p_details text default null)
returns jsonb
language plpgsql volatile
set search_path = ''
as $fn$
begin
  perform pg_catalog.set_config('response.status', p_status::text, true);
  if p_status = 429 then
    perform pg_catalog.set_config('response.headers', '[{"Retry-After": "600"}]', true);
  end if;
  return jsonb_build_object('ok', false,
                            'error', jsonb_build_object('code', p_code, 'message', p_message,
                                                        'details', p_details, 'hint', null));
end
$fn$;

-- Authenticates an edge call. Returns {"ok": true, "site_code", "merchant_id",
-- "merchant_code", "keyed"} or {"ok": false, "error": {...}} (response.status
-- set). Order: a known key is accepted at once (keys are 256-bit: guessing is
-- not the threat, and refusing a good key because someone else behind the same
-- address sent bad ones would let a LAN visitor stop a store's sync); an
-- unknown key is counted per caller address, and past 20 in 10 minutes the
-- address gets 429 without another write.
create or replace function mps_edge.authenticate(p_site_code text, p_merchant_code text) returns jsonb
language plpgsql volatile
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_key      text := mps_edge.request_header('x-mps-site-key');
  v_now      timestamptz := pg_catalog.clock_timestamp();
  s          mps_edge.sites;
  m          public.merchants;
  v_source   text;
  f          mps_edge.key_failures;
begin
  if v_key is null then
    if not mps_edge.caller_is_service() then
      return mps_edge.refusal(401, 'EDGE_SITE_KEY_REQUIRED',
                              'this call needs the store''s site key in the x-mps-site-key header');
    end if;
    -- the service role without a key: the arguments name the site (migration)
    if coalesce(btrim(p_site_code), '') = '' then
      return mps_edge.refusal(400, 'EDGE_INVALID_REQUEST', 'p_site_code is required');
    end if;
    select * into m from public.merchants x where x.code = p_merchant_code;
    return jsonb_build_object('ok', true, 'keyed', false, 'site_code', p_site_code,
                              'merchant_id', m.id, 'merchant_code', p_merchant_code);
  end if;

  select * into s from mps_edge.sites x
   where x.key_hash = pg_catalog.encode(extensions.digest(v_key, 'sha256'), 'hex');
  if found then
    if s.revoked_at is not null then
      return mps_edge.refusal(401, 'EDGE_SITE_REVOKED',
                              pg_catalog.format('central revoked the key of site %s at %s', s.site_code,
                                                pg_catalog.to_char(s.revoked_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
    end if;
    select * into m from public.merchants x where x.id = s.merchant_id;
    if coalesce(btrim(p_site_code), s.site_code) <> s.site_code
       or coalesce(btrim(p_merchant_code), m.code) <> m.code then
      return mps_edge.refusal(403, 'EDGE_SITE_MISMATCH',
                              pg_catalog.format('this key belongs to site %s of merchant %s, not to site %s of merchant %s',
                                                s.site_code, m.code, p_site_code, p_merchant_code));
    end if;
    return jsonb_build_object('ok', true, 'keyed', true, 'site_code', s.site_code,
                              'merchant_id', m.id, 'merchant_code', m.code);
  end if;

  -- an unknown key: count it against the caller's address. cf-connecting-ip is
  -- set by Supabase's edge; else the last x-forwarded-for hop (the one our own
  -- proxy appended: earlier hops are whatever the client sent).
  v_source := pg_catalog.left(coalesce(mps_edge.request_header('cf-connecting-ip'),
                                       nullif(btrim(pg_catalog.regexp_replace(
                                         coalesce(mps_edge.request_header('x-forwarded-for'), ''), '^.*,', '')), ''),
                                       'unknown'), 64);
  select * into f from mps_edge.key_failures x where x.source = v_source for update;
  if found and f.window_start > v_now - interval '10 minutes' and f.failures >= 20 then
    return mps_edge.refusal(429, 'EDGE_SITE_KEY_THROTTLED',
                            'too many unknown site keys from this address; try again in 10 minutes');
  end if;
  -- keep the table small: forget windows that have ended (a few rows per call)
  delete from mps_edge.key_failures x
   where x.ctid in (select y.ctid from mps_edge.key_failures y
                     where y.window_start < v_now - interval '10 minutes' limit 20);
  insert into mps_edge.key_failures as x (source, window_start, failures)
  values (v_source, v_now, 1)
  on conflict (source) do update
     set failures     = case when x.window_start > v_now - interval '10 minutes' then x.failures + 1 else 1 end,
         window_start = case when x.window_start > v_now - interval '10 minutes' then x.window_start else v_now end;
  return mps_edge.refusal(401, 'EDGE_SITE_KEY_INVALID', 'central does not know this site key');
end
$fn$;

-- The caller of an RPC that head office may also call: the service role
-- without a key passes ({"ok": true, "keyed": false}); anyone else, or the
-- service role with a key, must hold a good site key (mps_edge.authenticate).
create or replace function mps_edge.authenticate_caller() returns jsonb
language plpgsql volatile
set search_path = ''
as $fn$
begin
  if mps_edge.request_header('x-mps-site-key') is null and mps_edge.caller_is_service() then
    return jsonb_build_object('ok', true, 'keyed', false);
  end if;
  return mps_edge.authenticate(null, null);
end
$fn$;

-- Who is calling, as upstream's own session rules say: the service role, or
-- the identity of a custom session (p_session_id) or a Supabase Auth JWT.
-- Honours only the identity of its own call and leaves none behind (like
-- edge_issue_qr). role is null for an unknown caller.
create or replace function mps_edge.caller_identity(p_session_id text, out role text, out merchant_id text,
                                                    out who text)
language plpgsql volatile
set search_path = public, extensions, pg_temp
as $fn$
begin
  if mps_edge.caller_is_service() then
    role := 'service_role';
    who := 'service_role';
    return;
  end if;
  perform mps_edge.forget_app_identity();
  if p_session_id is not null then
    perform public.load_session(p_session_id);
  end if;
  role := public.get_user_role();
  merchant_id := nullif(pg_catalog.current_setting('app.merchant_id', true), '');
  who := coalesce(nullif(pg_catalog.current_setting('app.user_id', true), ''), auth.uid()::text, '?');
  perform mps_edge.forget_app_identity();
end
$fn$;

-- Who may register and revoke sites: the service role, or an upstream super
-- admin identified by a custom session (p_session_id) or a Supabase Auth JWT.
-- Returns the actor's label for the registry. Like edge_issue_qr it honours
-- only the identity of its own call and leaves none behind.
create or replace function mps_edge.site_admin(p_session_id text) returns text
language plpgsql volatile
set search_path = ''
as $fn$
declare
  v_who record := mps_edge.caller_identity(p_session_id);
begin
  if v_who.role = 'service_role' then
    return 'service_role';
  end if;
  if v_who.role is distinct from 'super_admin' then
    raise exception 'PERMISSION_DENIED: only the service role or a super admin may manage edge sites';
  end if;
  return 'admin:' || v_who.who;
end
$fn$;

revoke all on all functions in schema mps_edge from public;
revoke all on all tables    in schema mps_edge from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- 7. RPCs called by the edge (anon + site key; service_role during migration)
-- -----------------------------------------------------------------------------

-- With a site key it also names the site and merchant the key belongs to, so
-- `mps-edge doctor` can show who central thinks this store is.
create or replace function public.edge_sync_version() returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_auth jsonb;
begin
  v_auth := mps_edge.authenticate_caller();
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  -- features: optional capabilities of this install within the version
  -- ("mq1": edge_issue_qr and qr_states.fast_verifier; "self_test": edge_self_test;
  -- "site_keys": edge_register_site and x-mps-site-key; "recharge": edge_apply_batch
  -- applies op_type recharge, mps_edge.apply_recharge)
  return (select jsonb_strip_nulls(jsonb_build_object(
                   'version', v.version, 'installed_at', v.installed_at,
                   'features', jsonb_build_array('mq1', 'settlements', 'self_test', 'site_keys', 'proofs', 'heartbeat', 'mq2', 'settlement_void', 'card_freeze', 'recharge'),
                   'site_code', v_auth ->> 'site_code',
                   'merchant_code', v_auth ->> 'merchant_code'))
            from mps_edge.schema_versions v
           order by v.version desc
           limit 1);
end
$fn$;

create or replace function public.edge_pull_changes(
  p_merchant_code text,
  p_site_code     text,
  p_kind          text,
  p_after_ts      timestamptz default null,
  p_after_id      uuid default null,
  p_limit         int default 500
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_server_time timestamptz := pg_catalog.clock_timestamp();
  v_limit       int := least(greatest(coalesce(p_limit, 500), 1), 5000);
  -- a null cursor starts before everything; a null id sorts first at its ts
  v_from_ts     timestamptz := coalesce(p_after_ts, '-infinity'::timestamptz);
  v_from_id     uuid := coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid);
  v_merchant_id uuid;
  v_rows        jsonb;
  v_has_more    boolean := false;
  v_last        jsonb;
  v_key         text := 'id';
  v_auth        jsonb;
  v_site        text;
  v_names       boolean;
begin
  -- site and merchant come from the site key (volatile: a bad key is counted)
  v_auth := mps_edge.authenticate(p_site_code, p_merchant_code);
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  v_site := v_auth ->> 'site_code';
  v_merchant_id := (v_auth ->> 'merchant_id')::uuid;
  if v_merchant_id is null then
    raise exception 'MERCHANT_NOT_FOUND';
  end if;
  -- minimal replication: names only where shared with this site (the service
  -- role, for stores not yet migrated, sees them as before)
  v_names := not (v_auth ->> 'keyed')::boolean
             or coalesce((select s.share_member_names from mps_edge.sites s where s.site_code = v_site), false);

  -- Each branch is one statement (one snapshot), reading limit + 1 rows in
  -- (updated_at, id) order through an index on exactly that pair.
  case p_kind
  when 'cards' then
    select coalesce(jsonb_agg(p.j order by p.k_ts, p.k_id), '[]'::jsonb) into v_rows
      from (select o.card || jsonb_build_object('edge_seq', coalesce(s.last_seq, 0))
                   || case when v_names then '{}'::jsonb else '{"name": null}'::jsonb end as j,
                   o.updated_at as k_ts, o.id as k_id
              from mps_edge.card_objects o
              left join mps_edge.card_site_seq s on s.card_id = o.id and s.site_code = v_site
             where (o.updated_at, o.id) > (v_from_ts, v_from_id)
             order by o.updated_at, o.id
             limit v_limit + 1) p;

  when 'qr_states' then
    v_key := 'card_id';
    select coalesce(jsonb_agg(p.j order by p.k_ts, p.k_id), '[]'::jsonb) into v_rows
      from (select jsonb_build_object('card_id', q.card_id, 'token_hash', q.token_hash,
                                      'expires_at', q.expires_at, 'updated_at', q.updated_at,
                                      -- the mq1 verifier, only while it belongs to the
                                      -- card's current token (else null)
                                      'fast_verifier', f.verifier,
                                      -- the token already paid (at an edge or at central)
                                      'used', exists (select 1 from mps_edge.qr_used u
                                                       where u.token_hash = q.token_hash)) as j,
                   q.updated_at as k_ts, q.card_id as k_id
              from public.card_qr_state q
              left join mps_edge.qr_fast f on f.card_id = q.card_id and f.token_hash = q.token_hash
             where (q.updated_at, q.card_id) > (v_from_ts, v_from_id)
               -- a bootstrap (null cursor) needs only the live tokens
               and (p_after_ts is not null or q.expires_at > v_server_time)
             order by q.updated_at, q.card_id
             limit v_limit + 1) p;

  when 'qr_chains' then
    -- offline payment code chains (mq2): anchors, revocations, the highest used slot
    select coalesce(jsonb_agg(p.j order by p.k_ts, p.k_id), '[]'::jsonb) into v_rows
      from (select jsonb_build_object('id', c.id, 'card_id', c.card_id, 'chain_id', c.chain_id,
                                      'anchor', pg_catalog.rtrim(pg_catalog.translate(
                                                  pg_catalog.encode(c.anchor, 'base64'), '+/', '-_'), '='),
                                      'epoch', c.epoch, 'slot_secs', c.slot_secs, 'slots', c.slots,
                                      'ends_at', c.ends_at,
                                      'revoked_at', c.revoked_at, 'used_through', c.used_through,
                                      'updated_at', c.updated_at) as j,
                   c.updated_at as k_ts, c.id as k_id
              from mps_edge.qr_chains c
             where (c.updated_at, c.id) > (v_from_ts, v_from_id)
               -- a bootstrap (null cursor) needs only the live chains
               and (p_after_ts is not null
                    or (c.revoked_at is null and c.ends_at > v_server_time))
             order by c.updated_at, c.id
             limit v_limit + 1) p;

  when 'members' then
    select coalesce(jsonb_agg(p.j order by p.k_ts, p.k_id), '[]'::jsonb) into v_rows
      from (select jsonb_build_object('id', m.id, 'member_no', m.member_no,
                                      'name', case when v_names then m.name end,
                                      'status', m.status, 'updated_at', m.updated_at) as j,
                   m.updated_at as k_ts, m.id as k_id
              from public.member_profiles m
             where (m.updated_at, m.id) > (v_from_ts, v_from_id)
             order by m.updated_at, m.id
             limit v_limit + 1) p;

  when 'levels' then
    select coalesce(jsonb_agg(p.j order by p.k_ts, p.k_id), '[]'::jsonb) into v_rows
      from (select jsonb_build_object('id', l.id, 'level', l.level, 'name', l.name,
                                      'min_points', l.min_points, 'max_points', l.max_points,
                                      'discount', l.discount::text, 'is_active', l.is_active,
                                      'updated_at', l.updated_at) as j,
                   l.updated_at as k_ts, l.id as k_id
              from public.membership_levels l
             where (l.updated_at, l.id) > (v_from_ts, v_from_id)
             order by l.updated_at, l.id
             limit v_limit + 1) p;

  when 'merchant' then
    select coalesce(jsonb_agg(p.j order by p.k_ts, p.k_id), '[]'::jsonb) into v_rows
      from (select jsonb_build_object('id', m.id, 'code', m.code, 'name', m.name,
                                      'status', m.status, 'updated_at', m.updated_at) as j,
                   m.updated_at as k_ts, m.id as k_id
              from public.merchants m
             where m.id = v_merchant_id
               and (m.updated_at, m.id) > (v_from_ts, v_from_id)) p;

  else
    raise exception 'EDGE_UNKNOWN_KIND' using detail = format('unknown kind %L', p_kind);
  end case;

  if jsonb_array_length(v_rows) > v_limit then
    v_has_more := true;
    v_rows := v_rows - v_limit;          -- drop the look-ahead row
  end if;
  v_last := v_rows -> -1;

  return jsonb_build_object(
    'kind',          p_kind,
    'rows',          v_rows,
    'has_more',      v_has_more,
    -- the cursor is echoed when the page is empty
    'next_after_ts', coalesce(v_last -> 'updated_at', to_jsonb(p_after_ts)),
    'next_after_id', coalesce(v_last -> v_key, to_jsonb(p_after_id)),
    'server_time',   v_server_time);
end
$fn$;

-- One op of a batch: its proof (charges), then its effects. Returns the card id
-- (null for a settlement). Refusals raise; edge_apply_batch decides what a
-- refusal undoes.
create or replace function mps_edge.apply_op(p_op jsonb, p_site_code text, p_merchant public.merchants,
                                             p_now timestamptz, p_keyed boolean)
returns uuid
language plpgsql
set search_path = ''
set timezone = 'UTC'
as $fn$
begin
  case p_op ->> 'op_type'
    when 'charge' then
      -- presence first: a forged op touches no card
      perform mps_edge.check_charge_proof(p_op, p_site_code, p_keyed, p_now);
      return mps_edge.apply_charge(p_op, p_site_code, p_merchant, p_now);
    when 'refund' then
      return mps_edge.apply_refund(p_op, p_site_code, p_merchant, p_now);
    when 'settlement' then
      perform mps_edge.apply_settlement(p_op, p_site_code, p_merchant, p_now);
      return null;              -- no card: card_site_seq untouched, result card null
    when 'settlement_void' then
      perform mps_edge.apply_settlement_void(p_op, p_site_code, p_now);
      return null;
    when 'card_freeze', 'card_unfreeze' then
      return mps_edge.apply_card_status(p_op, p_site_code, p_now);
    when 'recharge' then
      -- a card op like a refund: the batch advances the card's edge_seq, refused or not
      return mps_edge.apply_recharge(p_op, p_site_code, p_now);
    else
      raise exception 'EDGE_INVALID_OPERATION'
        using detail = pg_catalog.format('unknown op_type %L', p_op ->> 'op_type');
  end case;
end
$fn$;

-- One op of a batch as apply_charges_set has checked it (the statements that
-- write read an array of these). Recreated on every install: nothing stores it.
drop type if exists mps_edge.charge_row;
create type mps_edge.charge_row as (
  n int, op_id uuid, op_id_json jsonb, seq bigint, tx_id uuid, tx_no text, card_id uuid,
  raw numeric, rate numeric, final numeric, points int, sold_at timestamptz, ext_order text,
  tag jsonb, proof_hash text, proof_expires timestamptz, points_before int, points_after int);

-- The happy path of a batch of charges, set-based: one statement per table for
-- the whole batch instead of ~15 statements per op (their per-statement cost
-- was most of central's time per op). It applies the batch only when every op
-- would certainly be applied by apply_op one at a time — the same rules, read
-- from the same rows, checked for all ops before anything is written — and
-- otherwise returns null without writing anything, and edge_apply_batch goes
-- op by op (that path decides refusals and exceptions). It may decline a batch
-- the op-by-op path would apply in full (e.g. legacy tokens, refunds, a
-- discount from the middle of the batch); never the other way round. Malformed
-- values (class 22) or a conflicting row (class 23) raise and are caught by the
-- caller like a decline.
-- Differences from op by op that nobody outside can tell: a card the batch
-- charges twice is updated once (one card version, one discount-change row
-- for the whole batch), and every result shows the card as the batch leaves it.
-- search_path: upstream's own, not ''. This function writes upstream tables whose
-- triggers run upstream code (set_updated_at() calls now_utc() unqualified) or calls
-- upstream functions that resolve their names through the caller's search_path;
-- with '' they fail with 42883/42P01 (sync/README.md, "search_path"). Only
-- upstream's schemas, pg_temp last so no temporary object can shadow them; every
-- name written here stays schema-qualified.
create or replace function mps_edge.apply_charges_set(p_ops jsonb[], p_site_code text,
                                                      p_merchant public.merchants,
                                                      p_now timestamptz, p_keyed boolean)
returns jsonb[]
language plpgsql
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_n     int := pg_catalog.cardinality(p_ops);
  v_rows  mps_edge.charge_row[];
  v_bad   int;
  v_count int;
begin
  if v_n = 0 or p_merchant.id is null or p_merchant.status <> 'active' then
    return null;
  end if;
  -- serialise with any concurrent call carrying the same ops (as op by op does), in one order
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mps_edge.op:' || x.id::text, 0))
     from (select distinct (e operator(pg_catalog.->>) 'op_id')::uuid as id
             from pg_catalog.unnest(p_ops) e order by 1) x;

  -- Every op, parsed, with its card before the batch and the running totals of
  -- the ops before it on the same card; `ok` is apply_op's verdict.
  with o as (
    select a.n::int as n, a.e as op,
           (a.e ->> 'op_id')::uuid as op_id,
           a.e ->> 'op_type' as op_type,
           (nullif(pg_catalog.btrim(a.e ->> 'seq'), ''))::bigint as seq,
           (nullif(pg_catalog.btrim(a.e ->> 'tx_id'), ''))::uuid as tx_id,
           nullif(pg_catalog.btrim(a.e ->> 'tx_no'), '') as tx_no,
           (nullif(pg_catalog.btrim(a.e ->> 'card_id'), ''))::uuid as card_id,
           (nullif(pg_catalog.btrim(a.e ->> 'raw_amount'), ''))::numeric as raw,
           (nullif(pg_catalog.btrim(a.e ->> 'discount'), ''))::numeric as rate,
           (nullif(pg_catalog.btrim(a.e ->> 'final_amount'), ''))::numeric as final,
           (nullif(pg_catalog.btrim(a.e ->> 'points_earned'), ''))::int as points,
           (nullif(pg_catalog.btrim(a.e ->> 'created_at'), ''))::timestamptz as sold_at,
           nullif(pg_catalog.btrim(a.e ->> 'external_order_id'), '') as ext_order,
           a.e -> 'qr_proof' as proof
      from pg_catalog.unnest(p_ops) with ordinality as a (e, n)
  ), w as (
    select o.*,
           pg_catalog.row_number() over card_so_far as nth,
           coalesce(sum(o.final)  over card_so_far, 0) as final_incl,
           coalesce(sum(o.points) over card_so_far, 0) - o.points as points_before
      from o
    window card_so_far as (partition by o.card_id order by o.n rows between unbounded preceding and current row)
  ), j as (
    select w.*, m.id as found_card, m.status as card_status, m.expires_at, m.card_type, m.balance,
           m.points as points0,
           least(m.discount, coalesce(m.corporate_discount, 1.000)) as effective0,
           least(coalesce(l.discount, 1.000), coalesce(m.corporate_discount, 1.000)) as effective_now,
           i.token_hash as proof_hash, i.issued_at as proof_issued, i.expires_at as proof_expires,
           -- mps_edge.edge_tag inline (a PL/pgSQL call per op); a tag that is
           -- not an object leaves null, which declines the batch
           case jsonb_typeof(coalesce(w.op -> 'tag', 'null'::jsonb))
             when 'object' then w.op -> 'tag' when 'null' then '{}'::jsonb end
           || jsonb_build_object('edge', jsonb_build_object(
                'site', p_site_code, 'terminal', w.op -> 'terminal', 'operator', w.op -> 'operator',
                'offline', true, 'op_id', w.op -> 'op_id', 'seq', w.op -> 'seq')) as tag
      from w
      left join public.member_cards m on m.id = w.card_id
      left join lateral (
             select lv.discount from public.membership_levels lv
              where lv.is_active and m.points + w.points_before >= lv.min_points
                and (lv.max_points is null or m.points + w.points_before <= lv.max_points)
              order by lv.level desc limit 1) l on true
      left join mps_edge.qr_issued i
             on pg_catalog.starts_with(w.proof ->> 'token', 'mq1.')
            and i.verifier = pg_catalog.encode(extensions.digest(w.proof ->> 'token', 'sha256'), 'hex')
            and i.card_id = w.card_id
  ), v as (
    select j.*,
           j.op_type = 'charge' and j.tag is not null
           and j.seq > 0 and j.tx_id is not null and j.tx_no is not null and j.sold_at is not null
           and j.raw > 0 and j.raw = round(j.raw, 2)
           and j.rate between 0 and 1 and j.rate = round(j.rate, 3)
           and j.final = round(j.raw * j.rate, 2) and j.points = floor(j.raw)
           and pg_catalog.starts_with(j.tx_no, 'PAY-' || p_site_code || '-')
           and j.sold_at <= p_now + interval '1 day'
           -- the card, as apply_charge checks it
           and j.found_card is not null and j.card_status = 'active' and j.card_type = 'standard'
           and (j.expires_at is null or j.expires_at >= j.sold_at)
           and j.balance - j.final_incl >= 0
           -- a discount central gave: before the batch, after this card's earlier
           -- ops in it, or recorded since 7 days before the sale
           and (j.rate = j.effective0
                or (j.nth > 1 and j.rate = j.effective_now)
                or exists (select 1 from mps_edge.card_discount_changes d
                            where d.card_id = j.card_id and d.changed_at >= j.sold_at - interval '7 days'
                              and d.discount = j.rate))
           -- proof of presence: an mq1 token issued for the card, valid at the sale, unused
           and case
                 when j.proof is null or jsonb_typeof(j.proof) <> 'object' then not p_keyed
                 else pg_catalog.length(j.proof ->> 'token') between 20 and 200
                      and j.proof_hash is not null
                      and j.sold_at >= j.proof_issued - interval '5 minutes'
                      and j.sold_at <= j.proof_expires + interval '5 minutes'
                      and j.proof_expires >= p_now - interval '35 days'
                      and not exists (select 1 from mps_edge.qr_used u where u.token_hash = j.proof_hash)
               end
           and not exists (select 1 from mps_edge.applied_ops a where a.op_id = j.op_id)
           and not exists (select 1 from public.tx_registry r where r.tx_no = j.tx_no)
           and (j.ext_order is null
                or not exists (select 1 from public.merchant_order_registry r
                                where r.merchant_id = p_merchant.id and r.external_order_id = j.ext_order))
           as ok
      from j
  )
  select count(*) filter (where not coalesce(v.ok, false))
         -- within the batch: no op id, number, tx id, token or order twice
         + (count(*) - count(distinct v.op_id)) + (count(*) - count(distinct v.tx_no))
         + (count(*) - count(distinct v.tx_id))
         + (count(v.proof_hash) - count(distinct v.proof_hash))
         + (count(v.ext_order) - count(distinct v.ext_order)),
         array_agg(row(v.n, v.op_id, v.op -> 'op_id', v.seq, v.tx_id, v.tx_no, v.card_id, v.raw, v.rate,
                       v.final, v.points, v.sold_at, v.ext_order, v.tag, v.proof_hash, v.proof_expires,
                       v.points0 + v.points_before, v.points0 + v.points_before + v.points
                      )::mps_edge.charge_row order by v.n)
    into v_bad, v_rows
    from v;
  if v_bad <> 0 then
    return null;
  end if;

  -- Nothing below may refuse an op: a surprise (a concurrent writer) raises
  -- P0001 and the caller goes op by op.
  insert into public.merchant_order_registry (merchant_id, external_order_id, tx_id, created_at)
  select p_merchant.id, r.ext_order, r.tx_id, p_now
    from pg_catalog.unnest(v_rows) as r
   where r.ext_order is not null
  on conflict do nothing;
  get diagnostics v_count = row_count;
  if v_count <> (select count(*) from pg_catalog.unnest(v_rows) as r where r.ext_order is not null) then
    raise exception 'EDGE_SET_DECLINED' using detail = 'external order registered meanwhile';
  end if;

  insert into public.tx_registry (tx_no, tx_id, created_at)
  select r.tx_no, r.tx_id, p_now
    from pg_catalog.unnest(v_rows) as r
  on conflict do nothing;

  insert into public.transactions (id, tx_no, tx_type, card_id, merchant_id, raw_amount, discount_applied,
                                   final_amount, points_earned, status, payment_method, tag, created_at,
                                   updated_at)
  select r.tx_id, r.tx_no, 'payment', r.card_id, p_merchant.id, r.raw, r.rate,
         r.final, r.points, 'completed', 'balance', r.tag, r.sold_at, p_now
    from pg_catalog.unnest(v_rows) as r
   order by r.n;

  -- each card once, with the totals of its ops; level and discount as apply_charge sets them
  update public.member_cards m
     set balance    = m.balance - t.final,
         points     = m.points + t.points,
         (level, discount) =
           (select coalesce(l.level, 0), coalesce(l.discount, 1.000)
              from (values (1)) as one (x)
              left join lateral (
                     select lv.level, lv.discount from public.membership_levels lv
                      where lv.is_active and m.points + t.points >= lv.min_points
                        and (lv.max_points is null or m.points + t.points <= lv.max_points)
                      order by lv.level desc limit 1) l on true),
         updated_at = p_now
    from (select r.card_id, sum(r.final) as final, sum(r.points) as points
            from pg_catalog.unnest(v_rows) as r
           group by r.card_id) t
   where m.id = t.card_id;

  insert into public.point_ledger (card_id, tx_id, change, balance_before, balance_after, reason, created_at)
  select r.card_id, r.tx_id, r.points, r.points_before, r.points_after, 'payment_earn', p_now
    from pg_catalog.unnest(v_rows) as r
   order by r.n;

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  select null, 'PAYMENT', 'transactions', r.tx_id,
         jsonb_build_object('merchant', p_merchant.code, 'final', r.final,
                            'edge', jsonb_build_object('site', p_site_code, 'op_id', r.op_id_json)),
         p_now
    from pg_catalog.unnest(v_rows) as r
   order by r.n;

  -- used everywhere: qr_used, and the card's current token expires now
  insert into mps_edge.qr_used (token_hash, card_id, site_code, op_id, used_at, expires_at)
  select r.proof_hash, r.card_id, p_site_code, r.op_id, p_now, r.proof_expires
    from pg_catalog.unnest(v_rows) as r
   where r.proof_hash is not null
  on conflict do nothing;
  get diagnostics v_count = row_count;
  if v_count <> (select count(*) from pg_catalog.unnest(v_rows) as r where r.proof_hash is not null) then
    raise exception 'EDGE_SET_DECLINED' using detail = 'a token was used meanwhile';
  end if;
  update public.card_qr_state q
     set expires_at = p_now
    from pg_catalog.unnest(v_rows) as r
   where r.proof_hash is not null and q.card_id = r.card_id and q.token_hash = r.proof_hash
     and q.expires_at > p_now;

  insert into mps_edge.card_site_seq as s (card_id, site_code, last_seq)
  select r.card_id, p_site_code, max(r.seq)
    from pg_catalog.unnest(v_rows) as r
   group by r.card_id
  on conflict (card_id, site_code) do update set last_seq = greatest(s.last_seq, excluded.last_seq);

  insert into mps_edge.applied_ops (op_id, site_code, seq, op_type, tx_id, status, reason, result, applied_at)
  select r.op_id, p_site_code, r.seq, 'charge', r.tx_id, 'applied', null,
         jsonb_build_object('tx_no', r.tx_no, 'exception_id', null, 'card_id', r.card_id, 'detail', null),
         pg_catalog.clock_timestamp()
    from pg_catalog.unnest(v_rows) as r
   order by r.n;

  -- the results, in the batch's order, each with its card as the batch leaves it
  return array(
    select jsonb_build_object(
             'op_id',        r.op_id,
             'status',       'applied',
             'reason',       null,
             'exception_id', null,
             'tx_no',        r.tx_no,
             'card',         c.card || jsonb_build_object('edge_seq', coalesce(s.last_seq, 0)))
      from pg_catalog.unnest(v_rows) as r
      join mps_edge.card_objects c on c.id = r.card_id
      left join mps_edge.card_site_seq s on s.card_id = r.card_id and s.site_code = p_site_code
     order by r.n);
end
$fn$;

-- Cost notes (a drain pushes 100,000s of ops through here, one batch at a
-- time):
--   * results are collected in a jsonb[] (appending to a PL/pgSQL array
--     variable is done in place) and turned into one jsonb array at the end;
--     `jsonb || jsonb` per op would copy the whole result so far every time;
--   * the applied_ops rows of the batch are collected in arrays and written by
--     one INSERT at the end (same transaction, so the registry commits or
--     rolls back with the ops exactly as before). An op id seen earlier in the
--     same batch is found in those arrays instead of the table;
--   * now_utc() is read once per batch;
--   * the card object of each result comes from one inline query that also
--     serves as the card's existence check.
--   * no subtransaction per op on the happy path: see the two passes below.
create or replace function public.edge_apply_batch(
  p_site_code     text,
  p_merchant_code text,
  p_ops           jsonb
) returns jsonb
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_merchant   public.merchants;
  v_now        timestamptz;
  v_results    jsonb[] := '{}';
  -- the applied_ops rows of this batch, written at the end
  v_reg_op     uuid[] := '{}';
  v_reg_seq    bigint[] := '{}';
  v_reg_type   text[] := '{}';
  v_reg_tx     uuid[] := '{}';
  v_reg_status text[] := '{}';
  v_reg_reason text[] := '{}';
  v_reg_result jsonb[] := '{}';
  v_reg_at     timestamptz[] := '{}';
  v_reg_ix     int;
  v_ops        jsonb[];
  v_op         jsonb;
  v_op_id      uuid;
  v_prev       mps_edge.applied_ops;
  v_card_id    uuid;
  v_card       jsonb;
  v_last_seq   bigint;
  v_seq        bigint;
  v_status     text;
  v_reason     text;
  v_detail     text;
  v_exc_id     uuid;
  v_state      text;
  v_message    text;
  v_sql_detail text;
  i            int;
  v_auth       jsonb;
  v_site       text;
  v_pass       int;
begin
  -- site and merchant come from the site key
  v_auth := mps_edge.authenticate(p_site_code, p_merchant_code);
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  v_site := v_auth ->> 'site_code';
  if p_ops is null or jsonb_typeof(p_ops) <> 'array' then
    raise exception 'EDGE_INVALID_BATCH' using detail = 'p_ops must be a JSON array';
  end if;
  if jsonb_array_length(p_ops) > 1000 then
    raise exception 'EDGE_BATCH_TOO_LARGE' using detail = 'at most 1000 ops per batch';
  end if;
  -- the op id is the at-most-once key: without one nothing can be recorded
  -- The ops as an array of small values, taken apart once: p_ops is one large
  -- (compressed) value, and each `p_ops -> i` decompressed all of it again,
  -- which made a batch cost quadratic in its size.
  v_ops := array(select e from jsonb_array_elements(p_ops) with ordinality as a (e, n) order by n);
  for i in 1 .. pg_catalog.cardinality(v_ops) loop
    if jsonb_typeof(v_ops[i]) <> 'object' or mps_edge.try_uuid(v_ops[i] ->> 'op_id') is null then
      raise exception 'EDGE_INVALID_BATCH' using detail = format('op #%s has no valid op_id', i - 1);
    end if;
  end loop;

  select * into v_merchant from public.merchants m where m.id = (v_auth ->> 'merchant_id')::uuid;
  -- upstream's clock (the transaction start), once for the whole batch
  v_now := public.now_utc();

  -- Lock every card of the batch in id order up front, so that concurrent
  -- batches touching the same cards queue instead of deadlocking.
  perform 1 from public.member_cards m
   where m.id in (select mps_edge.try_uuid(o ->> 'card_id') from pg_catalog.unnest(v_ops) o)
   order by m.id
   for no key update;

  -- The happy path first: the whole batch set-based (apply_charges_set). Null,
  -- or a malformed value / conflicting row: nothing of it stays, go op by op.
  -- `mps_edge.apply_set = off` (a setting of the database or session) always
  -- goes op by op: the tests compare the two paths with it, and it is the
  -- operator's way back should the set path ever misbehave.
  v_results := null;
  begin
    if coalesce(pg_catalog.current_setting('mps_edge.apply_set', true), '') <> 'off' then
      v_results := mps_edge.apply_charges_set(v_ops, v_site, v_merchant, v_now, (v_auth ->> 'keyed')::boolean);
    end if;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate;
    if v_state = 'P0001' or left(v_state, 2) in ('22', '23') then
      v_results := null;
    else
      raise;
    end if;
  end;
  if v_results is not null then
    return jsonb_build_object('version', 1, 'results', to_jsonb(v_results));
  end if;

  -- Two passes. The first applies every op without a subtransaction of its own
  -- (the happy path: a subtransaction per op was most of central's cost per
  -- op). If any op is refused, everything the first pass wrote is undone with
  -- its one enclosing block, and the second pass goes op by op, each in its own
  -- subtransaction, so a refused op rolls back alone and becomes an exception.
  <<passes>>
  for v_pass in 1 .. 2 loop
  v_results := '{}'; v_reg_op := '{}'; v_reg_seq := '{}'; v_reg_type := '{}'; v_reg_tx := '{}';
  v_reg_status := '{}'; v_reg_reason := '{}'; v_reg_result := '{}'; v_reg_at := '{}';
  begin
  for i in 1 .. pg_catalog.cardinality(v_ops) loop
    v_op      := v_ops[i];
    v_op_id   := (v_op ->> 'op_id')::uuid;
    v_card_id := mps_edge.try_uuid(v_op ->> 'card_id');
    v_seq     := mps_edge.try_bigint(v_op ->> 'seq');
    v_exc_id  := null;
    v_reason  := null;
    v_detail  := null;

    -- an op already processed earlier in this batch: a duplicate of that one
    v_reg_ix := pg_catalog.array_position(v_reg_op, v_op_id);
    if v_reg_ix is not null then
      v_results := pg_catalog.array_append(v_results, jsonb_build_object(
        'op_id',        v_op_id,
        'status',       'duplicate',
        'reason',       v_reg_reason[v_reg_ix],
        'exception_id', v_reg_result[v_reg_ix] -> 'exception_id',
        'tx_no',        v_reg_result[v_reg_ix] -> 'tx_no',
        'card',         mps_edge.card_snapshot(mps_edge.try_uuid(v_reg_result[v_reg_ix] ->> 'card_id'),
                                               v_site)));
      continue;
    end if;

    -- serialise with any concurrent call carrying the same op, then look it up
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mps_edge.op:' || v_op_id::text, 0));
    select * into v_prev from mps_edge.applied_ops a where a.op_id = v_op_id;
    if found and v_prev.site_code <> v_site then
      -- another site's op id: say nothing about that op, record nothing
      v_results := pg_catalog.array_append(v_results, jsonb_build_object(
        'op_id', v_op_id, 'status', 'rejected', 'reason', 'EDGE_OP_ID_CONFLICT',
        'exception_id', null, 'tx_no', v_op ->> 'tx_no', 'card', null));
      continue;
    end if;
    if found then
      v_results := pg_catalog.array_append(v_results, jsonb_build_object(
        'op_id',        v_op_id,
        'status',       'duplicate',
        'reason',       v_prev.reason,
        'exception_id', v_prev.result -> 'exception_id',
        'tx_no',        v_prev.result -> 'tx_no',
        'card',         mps_edge.card_snapshot(mps_edge.try_uuid(v_prev.result ->> 'card_id'), v_site)));
      continue;
    end if;

    if v_pass = 1 then
      -- a refusal leaves this pass through the handler at its end
      v_card_id := mps_edge.apply_op(v_op, v_site, v_merchant, v_now, (v_auth ->> 'keyed')::boolean);
      v_status := 'applied';
    else
    begin
      v_card_id := mps_edge.apply_op(v_op, v_site, v_merchant, v_now, (v_auth ->> 'keyed')::boolean);
      v_status := 'applied';
    exception when others then
      -- everything the op wrote is rolled back to here
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                              v_sql_detail = pg_exception_detail;
      if v_state = 'P0001' then
        -- a business rule said no
        v_reason := v_message;
        v_detail := nullif(v_sql_detail, '');
      elsif left(v_state, 2) in ('22', '23') then
        -- malformed values or a conflicting row (e.g. a tx_no already used)
        v_reason := 'EDGE_INVALID_OPERATION';
        v_detail := format('%s: %s%s', v_state, v_message, coalesce(' — ' || nullif(v_sql_detail, ''), ''));
      else
        -- deadlock, serialization failure, timeout, missing object...: not the
        -- op's fault. Fail the whole batch so nothing is recorded and the edge
        -- retries it later.
        raise;
      end if;
      v_status := 'rejected';
    end;
    end if;

    if v_status = 'rejected' then
      insert into mps_edge.exceptions (site_code, merchant_id, op_id, op_type, tx_no, card_id, reason, payload, detail)
      values (v_site, v_merchant.id, v_op_id, v_op ->> 'op_type', v_op ->> 'tx_no', v_card_id,
              v_reason, v_op, v_detail)
      returning id into v_exc_id;
    end if;

    -- the registry row (written at the end of the batch); applied_at is the
    -- time the op was processed, as when each row was inserted on its own
    v_reg_op     := pg_catalog.array_append(v_reg_op, v_op_id);
    v_reg_seq    := pg_catalog.array_append(v_reg_seq, v_seq);
    v_reg_type   := pg_catalog.array_append(v_reg_type, v_op ->> 'op_type');
    v_reg_tx     := pg_catalog.array_append(v_reg_tx, mps_edge.try_uuid(v_op ->> 'tx_id'));
    v_reg_status := pg_catalog.array_append(v_reg_status, v_status);
    v_reg_reason := pg_catalog.array_append(v_reg_reason, v_reason);
    v_reg_result := pg_catalog.array_append(v_reg_result,
                      jsonb_build_object('tx_no', v_op ->> 'tx_no', 'exception_id', v_exc_id,
                                         'card_id', v_card_id, 'detail', v_detail));
    v_reg_at     := pg_catalog.array_append(v_reg_at, pg_catalog.clock_timestamp());

    -- An op with a seq advances the site's last seq of its card, if the card
    -- exists. The result carries the card as mps_edge.card_snapshot would show
    -- it afterwards, read inline: the card read comes first and is the
    -- existence check; with a seq, edge_seq is what the upsert leaves
    -- (RETURNING), else the stored one. card_site_seq is not part of what
    -- card_objects shows, so reading the card before the upsert is the same
    -- as reading it after.
    v_card := null;
    if v_card_id is not null then
      if v_seq is not null then
        select o.card into v_card from mps_edge.card_objects o where o.id = v_card_id;
        if found then
          insert into mps_edge.card_site_seq as s (card_id, site_code, last_seq)
          values (v_card_id, v_site, v_seq)
          on conflict (card_id, site_code) do update set last_seq = greatest(s.last_seq, excluded.last_seq)
          returning s.last_seq into v_last_seq;
        end if;
      else
        select o.card, s.last_seq into v_card, v_last_seq
          from mps_edge.card_objects o
          left join mps_edge.card_site_seq s on s.card_id = o.id and s.site_code = v_site
         where o.id = v_card_id;
      end if;
      v_card := v_card || jsonb_build_object('edge_seq', coalesce(v_last_seq, 0));
    end if;

    v_results := pg_catalog.array_append(v_results, jsonb_build_object(
      'op_id',        v_op_id,
      'status',       v_status,
      'reason',       v_reason,
      'exception_id', v_exc_id,
      'tx_no',        v_op ->> 'tx_no',
      'card',         v_card));
  end loop;
  exit passes;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate;
    -- an op was refused in the first pass: go again, op by op; anything else
    -- (deadlock, timeout, ...) fails the batch as before
    if v_pass = 1 and (v_state = 'P0001' or left(v_state, 2) in ('22', '23')) then
      continue passes;
    end if;
    raise;
  end;
  end loop;

  insert into mps_edge.applied_ops (op_id, site_code, seq, op_type, tx_id, status, reason, result, applied_at)
  select r.op_id, v_site, r.seq, r.op_type, r.tx_id, r.status, r.reason, r.result, r.applied_at
    from unnest(v_reg_op, v_reg_seq, v_reg_type, v_reg_tx, v_reg_status, v_reg_reason, v_reg_result, v_reg_at)
         as r (op_id, seq, op_type, tx_id, status, reason, result, applied_at);

  return jsonb_build_object('version', 1, 'results', to_jsonb(v_results));
end
$fn$;

create or replace function public.edge_list_exceptions(
  p_site_code  text,
  p_only_open  boolean default true
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_auth jsonb := mps_edge.authenticate(p_site_code, null);
  v_site text := v_auth ->> 'site_code';
begin
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  return (select jsonb_build_object(
                   'site_code', v_site,
                   'exceptions', coalesce(jsonb_agg(mps_edge.exception_json(e) order by e.created_at, e.id), '[]'::jsonb))
            from mps_edge.exceptions e
           where e.site_code = v_site
             and (not coalesce(p_only_open, true) or e.resolved_at is null));
end
$fn$;

-- Marks an exception resolved. The first resolution wins; repeating the call
-- returns the row unchanged, so a retried request is harmless.
create or replace function public.edge_resolve_exception(
  p_exception_id uuid,
  p_resolved_by  text,
  p_note         text
) returns jsonb
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  e      mps_edge.exceptions;
  v_auth jsonb;
begin
  -- with a site key: only that site's exceptions (the service role: any)
  v_auth := mps_edge.authenticate_caller();
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  if coalesce(btrim(p_resolved_by), '') = '' then
    raise exception 'EDGE_INVALID_REQUEST' using detail = 'p_resolved_by is required';
  end if;
  update mps_edge.exceptions x
     set resolved_at = pg_catalog.clock_timestamp(), resolved_by = p_resolved_by, resolution_note = p_note
   where x.id = p_exception_id and x.resolved_at is null
     and (not (v_auth ->> 'keyed')::boolean or x.site_code = v_auth ->> 'site_code');
  select * into e from mps_edge.exceptions x
   where x.id = p_exception_id and (not (v_auth ->> 'keyed')::boolean or x.site_code = v_auth ->> 'site_code');
  if not found then
    raise exception 'EDGE_EXCEPTION_NOT_FOUND';
  end if;
  return mps_edge.exception_json(e);
end
$fn$;

-- edge_self_test: does the INSTALLED code run on THIS central? For each function
-- here that runs upstream code, it runs what that function makes upstream run
-- (upstream's updated_at trigger on member_cards / transactions / settlements, the
-- card-number trigger, load_session, get_user_role) under that function's own
-- installed search_path, read from the catalog, inside a subtransaction that is
-- always rolled back. `mps-edge doctor` calls it: a central.sql older than the
-- search_path fix, an upstream change that breaks us, or a hand-edited function
-- shows up as {function, probe, sqlstate, message} before any sale is pushed.
-- Nothing is written: each probe ends by raising the sentinel SQLSTATE MPSOK.
create or replace function public.edge_self_test() returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_check    record;
  v_path     text;
  v_state    text;
  v_message  text;
  v_failures jsonb := '[]'::jsonb;
  v_probes   int := 0;
  v_auth     jsonb;
begin
  v_auth := mps_edge.authenticate_caller();
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  for v_check in
    select * from (values
      ('mps_edge.apply_charge(jsonb,text,public.merchants,timestamp with time zone)', 'member_cards'),
      ('mps_edge.apply_charge(jsonb,text,public.merchants,timestamp with time zone)', 'transactions'),
      ('mps_edge.apply_refund(jsonb,text,public.merchants,timestamp with time zone)', 'member_cards'),
      ('mps_edge.apply_refund(jsonb,text,public.merchants,timestamp with time zone)', 'transactions'),
      ('mps_edge.apply_settlement(jsonb,text,public.merchants,timestamp with time zone)', 'settlements'),
      ('mps_edge.apply_settlement_void(jsonb,text,timestamp with time zone)', 'settlements'),
      ('mps_edge.apply_card_status(jsonb,text,timestamp with time zone)', 'member_cards'),
      -- as apply_refund: its other tables (tx_registry, audit.event_log) run no upstream code
      ('mps_edge.apply_recharge(jsonb,text,timestamp with time zone)', 'member_cards'),
      ('mps_edge.apply_recharge(jsonb,text,timestamp with time zone)', 'transactions'),
      ('mps_edge.check_charge_proof(jsonb,text,boolean,timestamp with time zone)', 'card_qr_state'),
      ('public.edge_issue_qr(uuid,integer,text)', 'identity')
    ) as c(fn, probe)
  loop
    select coalesce((select pg_catalog.substr(x, 13) from pg_catalog.unnest(p.proconfig) x
                      where x operator(pg_catalog.~~) 'search_path=%'), '')
      into v_path
      from pg_catalog.pg_proc p
     where p.oid = pg_catalog.to_regprocedure(v_check.fn);
    if not found then
      v_failures := v_failures || jsonb_build_object('function', v_check.fn, 'probe', v_check.probe,
                                                     'sqlstate', '42883', 'message', 'function is not installed');
      continue;
    end if;
    v_probes := v_probes + 1;
    begin
      perform pg_catalog.set_config('search_path', v_path, true);
      case v_check.probe
        when 'member_cards' then
          update public.member_cards set updated_at = updated_at
           where id = (select id from public.member_cards limit 1);
          -- the card-number trigger (BEFORE INSERT) runs before any constraint check
          insert into public.member_cards (id, card_type, owner_member_id)
          values (gen_random_uuid(), 'standard', null);
        when 'transactions' then
          update public.transactions set updated_at = updated_at
           where id = (select id from public.transactions limit 1);
        when 'settlements' then
          update public.settlements set updated_at = updated_at
           where id = (select id from public.settlements limit 1);
        when 'card_qr_state' then
          update public.card_qr_state set expires_at = expires_at
           where card_id = (select card_id from public.card_qr_state limit 1);
        when 'identity' then
          perform public.load_session('mps-edge-self-test: no such session');
          perform public.get_user_role();
      end case;
      raise exception using errcode = 'MPSOK', message = 'EDGE_SELF_TEST_OK';
    exception when others then
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
      -- the insert probe may stop at a constraint after the trigger ran: also fine
      if v_state <> 'MPSOK' and not (v_check.probe = 'member_cards' and v_state operator(pg_catalog.~~) '23%') then
        v_failures := v_failures || jsonb_build_object('function', v_check.fn, 'probe', v_check.probe,
                                                       'search_path', v_path,
                                                       'sqlstate', v_state, 'message', v_message);
      end if;
    end;
  end loop;
  return jsonb_build_object('ok', jsonb_array_length(v_failures) = 0, 'probes', v_probes,
                            'failures', v_failures);
end
$fn$;

-- Registers a store: returns its site key ONCE (only the hash is kept). For
-- the service role, or an upstream super admin (p_session_id, or a Supabase
-- Auth JWT). A site code that is registered and not revoked is refused (revoke
-- first: that is how a key is replaced); a revoked code may be registered
-- again for the same merchant only, since its transaction numbers carry it.
create or replace function public.edge_register_site(
  p_merchant_code text,
  p_site_code     text,
  p_session_id    text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_actor text := mps_edge.site_admin(p_session_id);
  m       public.merchants;
  s       mps_edge.sites;
  v_key   text;
begin
  if p_site_code is null or p_site_code !~ '^[A-Z0-9]{1,16}$' then
    raise exception 'EDGE_INVALID_REQUEST' using detail = 'p_site_code must be 1-16 of A-Z, 0-9';
  end if;
  select * into m from public.merchants x where x.code = p_merchant_code;
  if not found then
    raise exception 'MERCHANT_NOT_FOUND';
  end if;
  v_key := 'mps_site_' || pg_catalog.rtrim(pg_catalog.translate(
             pg_catalog.encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=');

  select * into s from mps_edge.sites x where x.site_code = p_site_code for update;
  if found and s.revoked_at is null then
    raise exception 'EDGE_SITE_ALREADY_REGISTERED'
      using detail = pg_catalog.format('site %s has a live key (%s...); revoke it first', p_site_code, s.key_hint);
  elsif found and s.merchant_id <> m.id then
    raise exception 'EDGE_SITE_CODE_TAKEN'
      using detail = pg_catalog.format('site code %s belongs to another merchant', p_site_code);
  elsif found then
    update mps_edge.sites x
       set key_hash = pg_catalog.encode(extensions.digest(v_key, 'sha256'), 'hex'),
           key_hint = pg_catalog.left(v_key, 14), created_at = pg_catalog.clock_timestamp(),
           created_by = v_actor, revoked_at = null, revoked_by = null
     where x.id = s.id
    returning * into s;
  else
    insert into mps_edge.sites (site_code, merchant_id, key_hash, key_hint, created_by)
    values (p_site_code, m.id, pg_catalog.encode(extensions.digest(v_key, 'sha256'), 'hex'),
            pg_catalog.left(v_key, 14), v_actor)
    returning * into s;
  end if;

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'EDGE_SITE_REGISTER', 'edge_sites', s.id,
          jsonb_build_object('site', s.site_code, 'merchant', m.code, 'by', v_actor, 'key_hint', s.key_hint),
          pg_catalog.clock_timestamp());

  return jsonb_build_object('site_code', s.site_code, 'merchant_code', m.code, 'site_key', v_key,
                            'key_hint', s.key_hint, 'created_at', s.created_at);
end
$fn$;

-- Revokes a store's key at once: its next pull or push is refused with
-- EDGE_SITE_REVOKED. Repeating the call changes nothing.
create or replace function public.edge_revoke_site(
  p_site_code  text,
  p_session_id text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_actor text := mps_edge.site_admin(p_session_id);
  s       mps_edge.sites;
begin
  update mps_edge.sites x
     set revoked_at = pg_catalog.clock_timestamp(), revoked_by = v_actor
   where x.site_code = p_site_code and x.revoked_at is null
  returning * into s;
  if found then
    insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
    values (null, 'EDGE_SITE_REVOKE', 'edge_sites', s.id,
            jsonb_build_object('site', s.site_code, 'by', v_actor, 'key_hint', s.key_hint),
            pg_catalog.clock_timestamp());
  else
    select * into s from mps_edge.sites x where x.site_code = p_site_code;
    if not found then
      raise exception 'EDGE_SITE_NOT_FOUND';
    end if;
  end if;
  return jsonb_build_object('site_code', s.site_code, 'key_hint', s.key_hint, 'created_at', s.created_at,
                            'revoked_at', s.revoked_at, 'revoked_by', s.revoked_by);
end
$fn$;

-- What a site may see beyond what deciding a charge needs. For the service
-- role, a super admin, or the site's own merchant (upstream's merchant session
-- in p_session_id). Returns the site's options.
create or replace function public.edge_set_site_options(
  p_site_code          text,
  p_share_member_names boolean,
  p_session_id         text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  s       mps_edge.sites;
  v_who   record;
  v_actor text;
begin
  select * into s from mps_edge.sites x where x.site_code = p_site_code;
  if not found then
    raise exception 'EDGE_SITE_NOT_FOUND';
  end if;
  v_who := mps_edge.caller_identity(p_session_id);
  v_actor := case when v_who.role = 'service_role' then 'service_role' else v_who.role || ':' || v_who.who end;
  if not (v_who.role in ('service_role', 'super_admin')
          or (v_who.role = 'merchant' and v_who.merchant_id = s.merchant_id::text)) then
    raise exception 'PERMISSION_DENIED: only the service role, a super admin or the site''s merchant may change its options';
  end if;
  update mps_edge.sites x set share_member_names = coalesce(p_share_member_names, false)
   where x.id = s.id returning * into s;
  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (null, 'EDGE_SITE_OPTIONS', 'edge_sites', s.id,
          jsonb_build_object('site', s.site_code, 'by', v_actor, 'share_member_names', s.share_member_names),
          pg_catalog.clock_timestamp());
  return jsonb_build_object('site_code', s.site_code, 'share_member_names', s.share_member_names);
end
$fn$;

-- Who may execute what. Supabase's default privileges grant EXECUTE on new
-- public functions to anon and authenticated: take it back, then grant
--   * the edge RPCs to anon (a store: anon key + site key, checked inside) and
--     service_role (stores not yet migrated to a site key);
--   * edge_register_site / edge_revoke_site to anon and authenticated too:
--     upstream's admins sign in through custom sessions (anon) or Supabase
--     Auth; the function itself admits only the service role and super admins.
revoke execute on function public.edge_sync_version()                                              from public, anon, authenticated;
revoke execute on function public.edge_self_test()                                                 from public, anon, authenticated;
revoke execute on function public.edge_pull_changes(text, text, text, timestamptz, uuid, int)      from public, anon, authenticated;
revoke execute on function public.edge_apply_batch(text, text, jsonb)                              from public, anon, authenticated;
revoke execute on function public.edge_list_exceptions(text, boolean)                              from public, anon, authenticated;
revoke execute on function public.edge_resolve_exception(uuid, text, text)                         from public, anon, authenticated;
revoke execute on function public.edge_register_site(text, text, text)                             from public;
revoke execute on function public.edge_revoke_site(text, text)                                     from public;
revoke execute on function public.edge_set_site_options(text, boolean, text)                       from public;
grant  execute on function public.edge_set_site_options(text, boolean, text)                       to anon, authenticated, service_role;
grant  execute on function public.edge_sync_version()                                              to anon, service_role;
grant  execute on function public.edge_self_test()                                                 to anon, service_role;
grant  execute on function public.edge_pull_changes(text, text, text, timestamptz, uuid, int)      to anon, service_role;
grant  execute on function public.edge_apply_batch(text, text, jsonb)                              to anon, service_role;
grant  execute on function public.edge_list_exceptions(text, boolean)                              to anon, service_role;
grant  execute on function public.edge_resolve_exception(uuid, text, text)                         to anon, service_role;
grant  execute on function public.edge_register_site(text, text, text)                             to anon, authenticated, service_role;
grant  execute on function public.edge_revoke_site(text, text)                                     to anon, authenticated, service_role;

-- -----------------------------------------------------------------------------
-- 8. Fast QR tokens (mq1), for members' apps
--
-- Central's own tokens (rotate_card_qr) are 44 random base64 characters with
-- only a bcrypt hash stored, so finding the card of a token costs one bcrypt
-- per live token (contract §3.6, §6.3). An mq1 token names its card:
--
--   mq1.<card id: 32 lowercase hex, no dashes>.<32 random bytes: base64url, no padding (43)>
--
-- edge_issue_qr is a drop-in for rotate_card_qr (same parameters, result,
-- permission rules, error strings and TTL rule). It writes the same rows
-- rotate_card_qr writes -- card_qr_state gets a bcrypt cost-6 hash of the
-- whole token text, so validate_qr_plain and merchant_charge_by_qr accept the
-- token unchanged -- plus mps_edge.qr_fast: the SHA-256 verifier the edge
-- checks in O(1). The card_qr_state write fires edge_qr_state_touch, so the
-- new verifier reaches the qr_states pull with the state itself.
-- -----------------------------------------------------------------------------

-- search_path: upstream's own, not ''. This function writes upstream tables whose
-- triggers run upstream code (set_updated_at() calls now_utc() unqualified) or calls
-- upstream functions that resolve their names through the caller's search_path;
-- with '' they fail with 42883/42P01 (sync/README.md, "search_path"). Only
-- upstream's schemas, pg_temp last so no temporary object can shadow them; every
-- name written here stays schema-qualified.
create or replace function public.edge_issue_qr(
  p_card_id     uuid,
  p_ttl_seconds integer default 900,
  p_session_id  text default null
) returns table (qr_plain text, qr_expires_at timestamptz)
language plpgsql volatile security definer
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_token   text;
  v_hash    text;
  -- as rotate_card_qr: greatest() ignores a null TTL (→ the 60 s minimum); no maximum
  v_expires timestamptz := public.now_utc() + pg_catalog.make_interval(secs => greatest(p_ttl_seconds, 60));
begin
  -- who is calling: rotate_card_qr's rules, through upstream's own helpers, but
  -- for THIS request only. Upstream keeps a login's identity in session-level
  -- settings (app.*) that outlive the request on a pooled connection
  -- (central-contract.md §6.1.6): forget any such identity first, so a stale
  -- one cannot authorise this call, and again before returning, so this call
  -- leaves none behind. (If the call fails, PostgreSQL restores the settings as
  -- they were before it, as for any failed transaction.)
  perform mps_edge.require_qr_rights(p_card_id, p_session_id);

  v_token := 'mq1.' || pg_catalog.replace(p_card_id::text, '-', '') || '.'
          || pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(extensions.gen_random_bytes(32), 'base64'),
                                                   '+/', '-_'), '=');
  -- bcrypt cost 6 ($2a$06$), as upstream's gen_salt('bf')
  v_hash := extensions.crypt(v_token, extensions.gen_salt('bf', 6));

  -- the rows rotate_card_qr writes (an unknown card fails here on the same FK)
  insert into public.card_qr_state as s (card_id, token_hash, updated_at, expires_at)
  values (p_card_id, v_hash, public.now_utc(), v_expires)
  on conflict (card_id) do update
     set token_hash = excluded.token_hash,
         updated_at = excluded.updated_at,
         expires_at = excluded.expires_at;

  insert into public.card_qr_history (card_id, token_hash, issued_at, expires_at)
  values (p_card_id, v_hash, public.now_utc(), v_expires);

  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (auth.uid(), 'QR_ROTATE', 'member_cards', p_card_id,
          jsonb_build_object('ttl', p_ttl_seconds, 'format', 'mq1'), public.now_utc());

  -- after card_qr_state: its row lock orders concurrent writers of the card,
  -- so the last committed qr_fast row belongs to the last edge_issue_qr
  -- every issued mq1 token, for the proofs of charges pushed later
  insert into mps_edge.qr_issued (verifier, card_id, token_hash, issued_at, expires_at)
  values (pg_catalog.encode(extensions.digest(v_token, 'sha256'), 'hex'), p_card_id, v_hash,
          public.now_utc(), v_expires);

  insert into mps_edge.qr_fast as f (card_id, token_hash, verifier, expires_at)
  values (p_card_id, v_hash, pg_catalog.encode(extensions.digest(v_token, 'sha256'), 'hex'), v_expires)
  on conflict (card_id) do update
     set token_hash = excluded.token_hash,
         verifier   = excluded.verifier,
         expires_at = excluded.expires_at,
         updated_at = pg_catalog.clock_timestamp();

  perform mps_edge.forget_app_identity();
  qr_plain := v_token;
  qr_expires_at := v_expires;
  return next;
end
$fn$;

-- For members' apps, like rotate_card_qr: anon (custom sessions travel in
-- p_session_id), authenticated (Supabase Auth members) and service_role.
revoke execute on function public.edge_issue_qr(uuid, integer, text) from public;
grant  execute on function public.edge_issue_qr(uuid, integer, text) to anon, authenticated, service_role;

-- Enrols the card's offline payment codes (mq2, see mps_edge.qr_chains): the
-- member's app sends only the anchor A = H^slots(seed) (43 characters of
-- base64url), the slot length, the epoch (slot 1 starts there) and the number of
-- slots. Same rights as edge_issue_qr. Revokes the card's live chain, if any.
-- Bounds: slots of 15..600 s, at most 14 days of them, an epoch within a day of
-- now.
create or replace function public.edge_enroll_offline_qr(
  p_card_id    uuid,
  p_anchor     text,
  p_slot_secs  integer,
  p_epoch      timestamptz,
  p_slots      integer,
  p_session_id text default null
) returns table (chain_id text, valid_until timestamptz)
language plpgsql volatile security definer
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_anchor bytea := mps_edge.b64url_32(p_anchor);
  v_now    timestamptz := public.now_utc();
  v_chain  text;
begin
  perform mps_edge.require_qr_rights(p_card_id, p_session_id);
  if v_anchor is null then
    raise exception 'INVALID_PARAMETER: anchor must be 32 bytes in base64url (43 characters, no padding)';
  elsif p_slot_secs is null or p_slot_secs not between 15 and 600 then
    raise exception 'INVALID_PARAMETER: slot_secs must be between 15 and 600';
  elsif p_slots is null or p_slots < 1 or p_slots::bigint * p_slot_secs > 14 * 86400 then
    raise exception 'INVALID_PARAMETER: slots must be at least 1 and cover at most 14 days';
  elsif p_epoch is null or p_epoch not between v_now - interval '1 day' and v_now + interval '1 day' then
    raise exception 'INVALID_PARAMETER: epoch must be within a day of now';
  end if;
  v_chain := pg_catalog.left(pg_catalog.encode(v_anchor, 'hex'), 16);
  -- lock the card's row first: concurrent enrolments of one card take turns
  perform 1 from public.member_cards m where m.id = p_card_id for update;
  if not found then
    raise exception 'CARD_NOT_FOUND';
  end if;
  update mps_edge.qr_chains c
     set revoked_at = v_now, updated_at = pg_catalog.clock_timestamp()
   where c.card_id = p_card_id and c.revoked_at is null;
  insert into mps_edge.qr_chains (card_id, chain_id, anchor, epoch, slot_secs, slots, ends_at)
  values (p_card_id, v_chain, v_anchor, p_epoch, p_slot_secs, p_slots,
          p_epoch + p_slots * pg_catalog.make_interval(secs => p_slot_secs))
  on conflict on constraint qr_chains_card_id_chain_id_key do nothing;
  if not found then
    raise exception 'INVALID_PARAMETER: this anchor was enrolled for the card before; draw a new seed';
  end if;
  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (auth.uid(), 'QR_OFFLINE_ENROL', 'member_cards', p_card_id,
          jsonb_build_object('chain_id', v_chain, 'slot_secs', p_slot_secs, 'slots', p_slots,
                             'epoch', p_epoch), v_now);
  perform mps_edge.forget_app_identity();
  chain_id := v_chain;
  valid_until := p_epoch + p_slots * pg_catalog.make_interval(secs => p_slot_secs);
  return next;
end
$fn$;

-- Revokes the card's live offline chain (a lost phone): edges refuse its codes
-- after their next pull, and central refuses codes of sales dated after now.
-- Same rights as edge_issue_qr. Returns how many chains it revoked (0 or 1).
create or replace function public.edge_revoke_offline_qr(
  p_card_id    uuid,
  p_session_id text default null
) returns integer
language plpgsql volatile security definer
set search_path = public, extensions, pg_temp
set timezone = 'UTC'
as $fn$
declare
  v_n int;
begin
  perform mps_edge.require_qr_rights(p_card_id, p_session_id);
  update mps_edge.qr_chains c
     set revoked_at = public.now_utc(), updated_at = pg_catalog.clock_timestamp()
   where c.card_id = p_card_id and c.revoked_at is null;
  get diagnostics v_n = row_count;
  insert into audit.event_log (actor_user_id, action, object_type, object_id, context, happened_at)
  values (auth.uid(), 'QR_OFFLINE_REVOKE', 'member_cards', p_card_id,
          jsonb_build_object('revoked', v_n), public.now_utc());
  perform mps_edge.forget_app_identity();
  return v_n;
end
$fn$;

revoke execute on function public.edge_enroll_offline_qr(uuid, text, integer, timestamptz, integer, text) from public;
grant  execute on function public.edge_enroll_offline_qr(uuid, text, integer, timestamptz, integer, text)
  to anon, authenticated, service_role;
revoke execute on function public.edge_revoke_offline_qr(uuid, text) from public;
grant  execute on function public.edge_revoke_offline_qr(uuid, text) to anon, authenticated, service_role;

-- -----------------------------------------------------------------------------
-- 9. Fleet visibility: a heartbeat per store, a list for head office
-- -----------------------------------------------------------------------------

-- One row per site: its last report (figures as the edge sent them, bounded)
-- and central's clock when it arrived.
create table if not exists mps_edge.site_status (
  site_code               text primary key,
  merchant_id             uuid,
  reported_at             timestamptz not null,
  edge_time               timestamptz,
  clock_skew_secs         numeric(12,3),
  version                 text,
  protocol                int,
  queue_depth             bigint,
  oldest_pending_age_secs bigint,
  open_exceptions         bigint,
  replica_age_secs        bigint,
  last_error              text
);
alter table mps_edge.site_status enable row level security;
revoke all on mps_edge.site_status from public, anon, authenticated;

-- The edge calls this with every sync cycle (at most every 30 s). Returns
-- central's time and the skew it measured (edge clock minus central clock).
-- Forgets tokens that expired more than 35 days before p_now, at most p_limit
-- rows of each table per call (a call must stay cheap; the heartbeats of all
-- stores together keep up). Safe because check_charge_proof and the set path
-- refuse proofs of tokens that old. Returns how many rows went.
create or replace function mps_edge.prune_proofs(p_now timestamptz, p_limit int) returns int
language plpgsql volatile
set search_path = ''
as $fn$
declare
  v_issued int;
  v_used   int;
begin
  delete from mps_edge.qr_issued x
   where x.verifier in (select y.verifier from mps_edge.qr_issued y
                         where y.expires_at < p_now - interval '35 days' limit p_limit);
  get diagnostics v_issued = row_count;
  delete from mps_edge.qr_used x
   where x.token_hash in (select y.token_hash from mps_edge.qr_used y
                           where y.expires_at < p_now - interval '35 days' limit p_limit);
  get diagnostics v_used = row_count;
  -- offline chains 35 days after their last slot, with their used slots
  with gone as (
    delete from mps_edge.qr_chains x
     where x.id in (select y.id from mps_edge.qr_chains y
                     where y.ends_at < p_now - interval '35 days'
                     limit p_limit)
    returning x.card_id, x.chain_id)
  delete from mps_edge.qr_chain_slots s using gone g
   where s.card_id = g.card_id and s.chain_id = g.chain_id;
  return v_issued + v_used;
end
$fn$;

create or replace function public.edge_report_status(
  p_site_code     text,
  p_merchant_code text,
  p_status        jsonb
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_auth jsonb := mps_edge.authenticate(p_site_code, p_merchant_code);
  v_now  timestamptz := pg_catalog.clock_timestamp();
  v_edge timestamptz;
  v_skew numeric(12,3);
begin
  if not (v_auth ->> 'ok')::boolean then
    return v_auth -> 'error';
  end if;
  if p_status is null or jsonb_typeof(p_status) <> 'object' or pg_catalog.length(p_status::text) > 4096 then
    return mps_edge.refusal(400, 'EDGE_INVALID_REQUEST', 'p_status must be a JSON object of at most 4096 bytes') -> 'error';
  end if;
  begin
    v_edge := (p_status ->> 'edge_time')::timestamptz;
  exception when others then
    return mps_edge.refusal(400, 'EDGE_INVALID_REQUEST', 'p_status.edge_time is not a timestamp') -> 'error';
  end;
  v_skew := case when v_edge is null then null
                 else least(greatest(extract(epoch from v_edge - v_now), -1e8), 1e8) end;
  insert into mps_edge.site_status as s (site_code, merchant_id, reported_at, edge_time, clock_skew_secs, version,
                                         protocol, queue_depth, oldest_pending_age_secs, open_exceptions,
                                         replica_age_secs, last_error)
  values (v_auth ->> 'site_code', (v_auth ->> 'merchant_id')::uuid, v_now, v_edge, v_skew,
          pg_catalog.left(p_status ->> 'version', 40),
          least(mps_edge.try_bigint(p_status ->> 'protocol'), 1000000)::int,
          mps_edge.try_bigint(p_status ->> 'queue_depth'),
          mps_edge.try_bigint(p_status ->> 'oldest_pending_age_secs'),
          mps_edge.try_bigint(p_status ->> 'open_exceptions'),
          mps_edge.try_bigint(p_status ->> 'replica_age_secs'),
          pg_catalog.left(p_status ->> 'last_error', 500))
  on conflict (site_code) do update
     set merchant_id = excluded.merchant_id, reported_at = excluded.reported_at, edge_time = excluded.edge_time,
         clock_skew_secs = excluded.clock_skew_secs, version = excluded.version, protocol = excluded.protocol,
         queue_depth = excluded.queue_depth, oldest_pending_age_secs = excluded.oldest_pending_age_secs,
         open_exceptions = excluded.open_exceptions, replica_age_secs = excluded.replica_age_secs,
         last_error = excluded.last_error;
  -- housekeeping rides on the heartbeats (every store, every half minute)
  perform mps_edge.prune_proofs(v_now, 500);
  return jsonb_build_object('server_time', v_now, 'clock_skew_secs', v_skew);
end
$fn$;

-- Head office's view of its stores: every registered site (and any site that
-- reported without a key), with its last report and what needs a look:
-- "never_seen", "silent" (no report for p_silent_after_secs), "behind"
-- (queue_depth above p_max_queue, or its oldest op older than the silence
-- threshold), "skewed" (|clock skew| above p_max_skew_secs), "revoked",
-- "exceptions" (open exceptions central holds for it). Service role or an
-- upstream super admin.
create or replace function public.edge_list_sites(
  p_silent_after_secs int default 600,
  p_max_queue         bigint default 1000,
  p_max_skew_secs     int default 120,
  p_session_id        text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set timezone = 'UTC'
as $fn$
declare
  v_actor text := mps_edge.site_admin(p_session_id);
  v_now   timestamptz := pg_catalog.clock_timestamp();
begin
  return jsonb_build_object('server_time', v_now, 'sites', coalesce((
    select jsonb_agg(x.j order by x.site_code)
      from (select coalesce(s.site_code, st.site_code) as site_code,
                   jsonb_build_object(
                     'site_code', coalesce(s.site_code, st.site_code),
                     'merchant_code', m.code,
                     'registered', s.site_code is not null,
                     'key_hint', s.key_hint,
                     'revoked_at', s.revoked_at,
                     'last_seen', st.reported_at,
                     'silent_secs', floor(extract(epoch from v_now - st.reported_at)),
                     'version', st.version,
                     'protocol', st.protocol,
                     'queue_depth', st.queue_depth,
                     'oldest_pending_age_secs', st.oldest_pending_age_secs,
                     'open_exceptions', e.n,
                     'edge_open_exceptions', st.open_exceptions,
                     'replica_age_secs', st.replica_age_secs,
                     'clock_skew_secs', st.clock_skew_secs,
                     'last_error', st.last_error,
                     'flags', to_jsonb(array_remove(array[
                        case when st.reported_at is null then 'never_seen' end,
                        case when st.reported_at < v_now - pg_catalog.make_interval(secs => p_silent_after_secs)
                             then 'silent' end,
                        case when st.queue_depth > p_max_queue
                               or st.oldest_pending_age_secs > p_silent_after_secs then 'behind' end,
                        case when abs(st.clock_skew_secs) > p_max_skew_secs then 'skewed' end,
                        case when s.revoked_at is not null then 'revoked' end,
                        case when e.n > 0 then 'exceptions' end], null))) as j
              from mps_edge.sites s
              full join mps_edge.site_status st on st.site_code = s.site_code
              left join public.merchants m on m.id = coalesce(s.merchant_id, st.merchant_id)
              left join lateral (select count(*) as n from mps_edge.exceptions x
                                  where x.site_code = coalesce(s.site_code, st.site_code)
                                    and x.resolved_at is null) e on true) x), '[]'::jsonb));
end
$fn$;

revoke execute on function public.edge_report_status(text, text, jsonb)        from public, anon, authenticated;
revoke execute on function public.edge_list_sites(int, bigint, int, text)      from public;
grant  execute on function public.edge_report_status(text, text, jsonb)        to anon, service_role;
grant  execute on function public.edge_list_sites(int, bigint, int, text)      to anon, authenticated, service_role;

-- the helpers defined after the first revoke (section 6) get PUBLIC EXECUTE by
-- default; nobody but the schema owner reaches mps_edge, but take it back too
revoke all on all functions in schema mps_edge from public;

commit;
