-- Counter top-ups (issue 14, item 4): a recharge taken at the till is a transaction of
-- type 'recharge' (central's own tx_type) and an outbox operation 'recharge'. Both CHECKs
-- gain the new value; SQLite cannot alter a CHECK, so both tables are rebuilt.
--
-- transactions refers to itself (a refund's original_tx_id). The new table's reference
-- names the new table, which the RENAME then rewrites to 'transactions': dropping the old
-- table under foreign_keys = ON deletes only rows that reference each other.
CREATE TABLE transactions_new (
    id                  TEXT PRIMARY KEY,
    tx_no               TEXT NOT NULL UNIQUE,
    tx_type             TEXT NOT NULL CHECK (tx_type IN ('payment','refund','recharge')),
    card_id             TEXT NOT NULL REFERENCES cards(id),
    merchant_id         TEXT NOT NULL,
    raw_amount_cents    INTEGER NOT NULL CHECK (raw_amount_cents > 0),
    discount_milli      INTEGER NOT NULL,
    final_amount_cents  INTEGER NOT NULL CHECK (final_amount_cents >= 0),
    points_earned       INTEGER NOT NULL DEFAULT 0,
    status              TEXT NOT NULL CHECK (status IN ('completed','refunded')),
    refunded_cents      INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= final_amount_cents),
    original_tx_id      TEXT REFERENCES transactions_new(id),
    original_tx_no      TEXT,
    reason              TEXT,
    payment_method      TEXT NOT NULL DEFAULT 'balance',
    external_order_id   TEXT,
    tag                 TEXT NOT NULL DEFAULT '{}',
    operator_user_id    TEXT,
    operator_username   TEXT,
    device_id           TEXT,
    created_at          TEXT NOT NULL,
    created_unix        INTEGER NOT NULL,
    sync_state          TEXT NOT NULL DEFAULT 'pending' CHECK (sync_state IN ('pending','applied','exception')),
    balance_after_cents INTEGER,
    points_after        INTEGER
) STRICT;
INSERT INTO transactions_new (id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
    final_amount_cents, points_earned, status, refunded_cents, original_tx_id, original_tx_no, reason,
    payment_method, external_order_id, tag, operator_user_id, operator_username, device_id, created_at,
    created_unix, sync_state, balance_after_cents, points_after)
SELECT id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
    final_amount_cents, points_earned, status, refunded_cents, original_tx_id, original_tx_no, reason,
    payment_method, external_order_id, tag, operator_user_id, operator_username, device_id, created_at,
    created_unix, sync_state, balance_after_cents, points_after
FROM transactions;
DROP TABLE transactions;
ALTER TABLE transactions_new RENAME TO transactions;
CREATE INDEX transactions_created ON transactions(created_unix);
CREATE INDEX transactions_card ON transactions(card_id, created_unix);
CREATE INDEX transactions_original ON transactions(original_tx_id);
CREATE UNIQUE INDEX transactions_external_order ON transactions(external_order_id) WHERE external_order_id IS NOT NULL;
CREATE INDEX transactions_operator ON transactions(operator_user_id, created_at);

-- The outbox gains 'recharge'; rebuilt as in 0007, the AUTOINCREMENT counter carried over
-- so a seq is never reused.
CREATE TABLE outbox_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id        TEXT NOT NULL UNIQUE,
    op_type      TEXT NOT NULL CHECK (op_type IN ('charge','refund','settlement','settlement_void',
                                                  'card_freeze','card_unfreeze','recharge')),
    tx_id        TEXT,
    card_id      TEXT,
    delta_cents  INTEGER NOT NULL DEFAULT 0,
    points       INTEGER NOT NULL DEFAULT 0,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','applied','duplicate','rejected')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    created_unix INTEGER NOT NULL,
    done_at      TEXT
) STRICT;
INSERT INTO outbox_new SELECT seq, op_id, op_type, tx_id, card_id, delta_cents, points, payload, state,
    attempts, last_error, created_at, created_unix, done_at FROM outbox;
INSERT INTO sqlite_sequence(name, seq)
    SELECT 'outbox_new', MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
                             COALESCE((SELECT MAX(seq) FROM outbox), 0))
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_new');
UPDATE sqlite_sequence
   SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))
 WHERE name = 'outbox_new';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox(state, seq);
CREATE INDEX outbox_card ON outbox(card_id, seq);
-- The top-up limits sum what central has not confirmed, per card and for the site.
CREATE INDEX outbox_recharge ON outbox(op_type, state, card_id) WHERE op_type = 'recharge';
