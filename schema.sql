-- mps-edge local schema, version 1.
-- Applied by the migrator when PRAGMA user_version = 0. Never edit a shipped version:
-- later changes are new migrations in src/db/migrate.rs.
-- Money is integer cents (*_cents); discounts are thousandths (*_milli); times are
-- RFC 3339 UTC text (created_at) or unix seconds (*_unix) where compared often.

-- Key/value facts about this installation: mode, demo flag, replica freshness.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- ---------------------------------------------------------------------------------
-- Replica of central (read-mostly; written by demo seeding and the sync pull).
-- ---------------------------------------------------------------------------------

CREATE TABLE merchant (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE membership_levels (
    id             TEXT PRIMARY KEY,
    level          INTEGER NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    min_points     INTEGER NOT NULL,
    max_points     INTEGER,
    discount_milli INTEGER NOT NULL,
    is_active      INTEGER NOT NULL DEFAULT 1,
    updated_at     TEXT NOT NULL
) STRICT;

CREATE TABLE members (
    id         TEXT PRIMARY KEY,
    member_no  TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- A card: central's last snapshot plus the edge's unsynced effect on it.
-- available balance = snapshot_balance_cents - pending_debit_cents + pending_credit_cents
-- where the pending sums cover local operations with outbox seq > reflected_seq.
CREATE TABLE cards (
    id                       TEXT PRIMARY KEY,
    card_no                  TEXT NOT NULL UNIQUE,
    card_type                TEXT NOT NULL CHECK (card_type IN ('standard','voucher','corporate')),
    owner_member_id          TEXT,
    name                     TEXT,
    status                   TEXT NOT NULL,
    expires_at_unix          INTEGER,
    corporate_discount_milli INTEGER,
    fixed_discount_milli     INTEGER,
    -- central snapshot
    snapshot_balance_cents   INTEGER NOT NULL CHECK (snapshot_balance_cents >= 0),
    snapshot_points          INTEGER NOT NULL DEFAULT 0,
    snapshot_level           INTEGER,
    snapshot_discount_milli  INTEGER NOT NULL DEFAULT 1000,
    snapshot_version         INTEGER NOT NULL DEFAULT 0,
    snapshot_updated_at      TEXT NOT NULL,
    reflected_seq            INTEGER NOT NULL DEFAULT 0,
    -- unsynced local effect (derived from outbox operations with seq > reflected_seq)
    pending_debit_cents      INTEGER NOT NULL DEFAULT 0 CHECK (pending_debit_cents >= 0),
    pending_credit_cents     INTEGER NOT NULL DEFAULT 0 CHECK (pending_credit_cents >= 0),
    pending_points           INTEGER NOT NULL DEFAULT 0,
    -- the edge's current view of level and level discount (= snapshot when nothing pending)
    level                    INTEGER,
    discount_milli           INTEGER NOT NULL DEFAULT 1000,
    is_demo                  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX cards_owner ON cards(owner_member_id);

-- Central's card_qr_state: one current token hash per card. consumed_hash marks a token
-- already used for a charge at this edge (single-use rule).
CREATE TABLE card_qr_state (
    card_id          TEXT PRIMARY KEY,             -- no FK: a state may arrive before its card
    token_hash       TEXT NOT NULL,
    expires_at_unix  INTEGER NOT NULL,
    updated_at       TEXT NOT NULL,
    issued_seq       INTEGER NOT NULL,
    -- SHA-256 (hex) of an mq1 token, valid only together with this token_hash
    fast_verifier    TEXT,
    consumed_hash    TEXT,
    consumed_at      TEXT
) STRICT;
-- Newest-issued first among live tokens.
CREATE INDEX card_qr_state_live ON card_qr_state(expires_at_unix, issued_seq);
CREATE INDEX card_qr_state_issued ON card_qr_state(issued_seq);
-- The legacy (bcrypt) scan: only states without a fast verifier, newest first.
CREATE INDEX card_qr_state_legacy ON card_qr_state(issued_seq) WHERE fast_verifier IS NULL;

-- ---------------------------------------------------------------------------------
-- Local tables.
-- ---------------------------------------------------------------------------------

-- Transactions made at this edge (payments and refunds).
CREATE TABLE transactions (
    id                 TEXT PRIMARY KEY,            -- UUIDv7, kept when applied centrally
    tx_no              TEXT NOT NULL UNIQUE,
    tx_type            TEXT NOT NULL CHECK (tx_type IN ('payment','refund')),
    card_id            TEXT NOT NULL REFERENCES cards(id),
    merchant_id        TEXT NOT NULL,
    raw_amount_cents   INTEGER NOT NULL CHECK (raw_amount_cents > 0),
    discount_milli     INTEGER NOT NULL,
    final_amount_cents INTEGER NOT NULL CHECK (final_amount_cents >= 0),
    points_earned      INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL CHECK (status IN ('completed','refunded')),
    refunded_cents     INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= final_amount_cents),
    original_tx_id     TEXT REFERENCES transactions(id),
    original_tx_no     TEXT,
    reason             TEXT,
    payment_method     TEXT NOT NULL DEFAULT 'balance',
    external_order_id  TEXT,
    tag                TEXT NOT NULL DEFAULT '{}',
    operator_user_id   TEXT,
    operator_username  TEXT,
    device_id          TEXT,
    created_at         TEXT NOT NULL,
    created_unix       INTEGER NOT NULL,
    sync_state         TEXT NOT NULL DEFAULT 'pending' CHECK (sync_state IN ('pending','applied','exception'))
) STRICT;
CREATE INDEX transactions_created ON transactions(created_unix);
CREATE INDEX transactions_card ON transactions(card_id, created_unix);
CREATE INDEX transactions_original ON transactions(original_tx_id);
CREATE UNIQUE INDEX transactions_external_order ON transactions(external_order_id) WHERE external_order_id IS NOT NULL;

-- Operations waiting to be pushed to central, in order. Written in the same SQLite
-- transaction as the balance change they describe.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id        TEXT NOT NULL UNIQUE,               -- UUIDv7
    op_type      TEXT NOT NULL CHECK (op_type IN ('charge','refund','settlement')),
    tx_id        TEXT,
    card_id      TEXT,
    delta_cents  INTEGER NOT NULL DEFAULT 0,          -- effect on the card's balance
    points       INTEGER NOT NULL DEFAULT 0,
    payload      TEXT NOT NULL,                       -- JSON sent to central
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','applied','duplicate','rejected')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    created_unix INTEGER NOT NULL,
    done_at      TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox(state, seq);
CREATE INDEX outbox_card ON outbox(card_id, seq);

-- POS retries: the same key from the same device/user returns the stored result.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,                       -- 'device:<id>' or 'user:<id>'
    key          TEXT NOT NULL,
    operation    TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    tx_id        TEXT NOT NULL,
    response     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash   TEXT NOT NULL,                    -- argon2id PHC string
    role            TEXT NOT NULL CHECK (role IN ('owner','manager','cashier')),
    disabled        INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,                          -- unix seconds
    token_epoch     INTEGER NOT NULL DEFAULT 0,       -- bump to end every session at once
    locale          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

-- Rotating refresh tokens, stored as SHA-256; a reused (already rotated) token revokes
-- its whole family.
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    device_id   TEXT,
    expires_unix INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

-- Operations central could not apply (card frozen centrally, balance spent elsewhere…):
-- never dropped, shown to the merchant until resolved.
CREATE TABLE sync_exceptions (
    id                   TEXT PRIMARY KEY,
    op_id                TEXT NOT NULL UNIQUE,
    op_type              TEXT NOT NULL,
    tx_id                TEXT,
    tx_no                TEXT,
    card_id              TEXT,
    amount_cents         INTEGER NOT NULL DEFAULT 0,
    reason               TEXT NOT NULL,
    central_exception_id TEXT,
    created_at           TEXT NOT NULL,
    resolved_at          TEXT,
    resolved_by          TEXT,
    resolution_note      TEXT,
    central_resolved     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX sync_exceptions_open ON sync_exceptions(resolved_at, created_at);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor_user_id TEXT,
    actor         TEXT,
    action        TEXT NOT NULL,
    object_type   TEXT,
    object_id     TEXT,
    ip            TEXT,
    device_id     TEXT,
    details       TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_log_at ON audit_log(at);

-- ---------------------------------------------------------------------------------
-- Web console (issue #4).
-- ---------------------------------------------------------------------------------

-- Console sign-ins: an HttpOnly cookie holds a random token; only its SHA-256 is kept.
-- A session belongs to a sign-in family (refresh_tokens.family_id) and to the user's
-- token epoch at sign-in, so "sign out everywhere" ends it like any bearer token.
CREATE TABLE console_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id    TEXT NOT NULL,
    token_epoch  INTEGER NOT NULL,
    csrf_token   TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    created_at   TEXT NOT NULL,
    expires_unix INTEGER NOT NULL,
    revoked_at   TEXT
) STRICT;
CREATE INDEX console_sessions_user ON console_sessions(user_id);

-- Enrolled POS terminals. The secret is 256 random bits, kept as SHA-256.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT,
    revoked_at  TEXT,
    revoked_by  TEXT
) STRICT;

-- One-time enrollment codes (kept as SHA-256; single use; short-lived).
CREATE TABLE enrollment_codes (
    code_hash    TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT,
    expires_unix INTEGER NOT NULL,
    used_at      TEXT,
    device_id    TEXT
) STRICT;

-- Local settlements over [period_start, period_end). total may be negative (more refunds
-- than payments in the period). Each one is also an outbox operation of type 'settlement'.
CREATE TABLE settlements (
    id                   TEXT PRIMARY KEY,
    settlement_no        TEXT NOT NULL UNIQUE,
    mode                 TEXT NOT NULL CHECK (mode IN ('realtime','t_plus_1','monthly')),
    period_start         TEXT NOT NULL,
    period_end           TEXT NOT NULL,
    period_start_unix    INTEGER NOT NULL,
    period_end_unix      INTEGER NOT NULL CHECK (period_end_unix > period_start_unix),
    payment_count        INTEGER NOT NULL,
    payment_amount_cents INTEGER NOT NULL,
    refund_count         INTEGER NOT NULL,
    refund_amount_cents  INTEGER NOT NULL,
    total_amount_cents   INTEGER NOT NULL,
    tx_count             INTEGER NOT NULL,
    status               TEXT NOT NULL DEFAULT 'pending',
    created_at           TEXT NOT NULL,
    created_by           TEXT
) STRICT;
CREATE INDEX settlements_period ON settlements(period_start_unix, period_end_unix);

-- Settings changed in the console; they override the config file's values at runtime.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT
) STRICT;
CREATE INDEX audit_log_action ON audit_log(action, at);
