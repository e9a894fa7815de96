-- Sign-in throttling (issue 12). Failed sign-ins are counted per username as typed, so
-- an unknown username is throttled exactly like a real one and the answers never tell
-- which usernames exist. users.failed_logins / users.locked_until are no longer used.

-- Failures per (username, client address): past auth.max_failed_logins the pair waits
-- exponentially longer before its next check. `ip` is '' when the address is unknown.
CREATE TABLE signin_failures (
    username    TEXT NOT NULL COLLATE NOCASE,
    ip          TEXT NOT NULL,
    failures    INTEGER NOT NULL,
    last_unix   INTEGER NOT NULL,
    lock_logged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (username, ip)
) STRICT, WITHOUT ROWID;
CREATE INDEX signin_failures_last ON signin_failures(last_unix);

-- Failures per username from every address: past auth.account_max_failed_logins the
-- account is locked, which spaces its checks out (one per interval) instead of refusing
-- them, so the owner at an address that has not failed still gets in.
CREATE TABLE signin_accounts (
    username      TEXT PRIMARY KEY COLLATE NOCASE,
    failures      INTEGER NOT NULL,
    first_unix    INTEGER NOT NULL,
    locked_until  INTEGER,
    next_check_ms INTEGER NOT NULL DEFAULT 0,
    lock_logged   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX signin_accounts_first ON signin_accounts(first_unix);

-- Refresh retries: when a token is rotated, what its successor's access token was made
-- of (the successor refresh token itself is re-derived, never stored; see
-- service/auth.rs), so the same token presented again within the grace window gets the
-- same pair back.
ALTER TABLE refresh_tokens ADD COLUMN used_unix INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN next_jti TEXT;
ALTER TABLE refresh_tokens ADD COLUMN next_iat INTEGER;
