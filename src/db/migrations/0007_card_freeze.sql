-- A manager may freeze a lost card at the counter (issue 14, item 5): the card is
-- refused here at once and the freeze is pushed to central as its own outbox operation
-- ('card_freeze'); an unfreeze likewise ('card_unfreeze'). Both carry the card id, so
-- they keep their place among the card's charges and refunds.
--
-- card_freezes: the freezes made at this edge. Only a card frozen here may be unfrozen
-- here: a card head office froze (fraud, a closed account) stays frozen until head
-- office says otherwise.
CREATE TABLE card_freezes (
    card_id   TEXT PRIMARY KEY,
    op_id     TEXT NOT NULL,
    frozen_at TEXT NOT NULL,
    frozen_by TEXT NOT NULL,
    reason    TEXT NOT NULL
) STRICT;

-- The outbox's op_type CHECK gains the two card operations; rebuilt as in 0006, with
-- the AUTOINCREMENT counter carried over so a seq is never reused.
CREATE TABLE outbox_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id        TEXT NOT NULL UNIQUE,
    op_type      TEXT NOT NULL CHECK (op_type IN ('charge','refund','settlement','settlement_void',
                                                  'card_freeze','card_unfreeze')),
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
