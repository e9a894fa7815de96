-- An owner may void a settlement (issue 13): the record stays, marked voided with who,
-- when and why, its period can be settled again, and the void is its own outbox
-- operation ('settlement_void'), pushed after the settlement it voids.
ALTER TABLE settlements ADD COLUMN voided_at TEXT;
ALTER TABLE settlements ADD COLUMN voided_by TEXT;
ALTER TABLE settlements ADD COLUMN void_reason TEXT;

-- The outbox's op_type CHECK gains 'settlement_void'. SQLite cannot alter a CHECK, so
-- the table is rebuilt. Its AUTOINCREMENT counter is carried over: seq numbers are
-- what central orders a site's ops by, and must never be reused even after pruning.
CREATE TABLE outbox_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id        TEXT NOT NULL UNIQUE,
    op_type      TEXT NOT NULL CHECK (op_type IN ('charge','refund','settlement','settlement_void')),
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
