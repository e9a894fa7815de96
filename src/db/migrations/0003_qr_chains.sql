-- Offline payment codes (mq2, issue 11): the hash chains enrolled for cards, pulled
-- from central (kind 'qr_chains'). The edge holds each chain's anchor only: it can
-- check a code but cannot make one (src/domain/mq2.rs).
CREATE TABLE qr_chains (
    card_id          TEXT NOT NULL,                -- no FK: a chain may arrive before its card
    chain_id         TEXT NOT NULL,                -- the anchor's first 8 bytes, hex
    central_id       TEXT NOT NULL,
    anchor           BLOB NOT NULL CHECK (length(anchor) = 32),
    epoch_unix       INTEGER NOT NULL,
    slot_secs        INTEGER NOT NULL CHECK (slot_secs > 0),
    slots            INTEGER NOT NULL CHECK (slots > 0),
    ends_at_unix     INTEGER NOT NULL,
    revoked_at_unix  INTEGER,
    -- the highest slot used, here or (per central) anywhere: slots up to it are refused
    used_through     INTEGER NOT NULL DEFAULT 0,
    -- the highest slot this edge verified and its value, where the next walk starts
    last_slot        INTEGER,
    last_value       BLOB CHECK (last_value IS NULL OR length(last_value) = 32),
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (card_id, chain_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX qr_chains_ends ON qr_chains(ends_at_unix);

-- Standalone demo mode only: the demo plays the member's phone, so it keeps the seeds
-- of the chains it enrols for demo cards (`mps-edge demo qr --offline`). Never written
-- when a central is configured.
CREATE TABLE demo_chain_seeds (
    card_id   TEXT NOT NULL,
    chain_id  TEXT NOT NULL,
    seed      BLOB NOT NULL CHECK (length(seed) = 32),
    PRIMARY KEY (card_id, chain_id)
) STRICT, WITHOUT ROWID;
