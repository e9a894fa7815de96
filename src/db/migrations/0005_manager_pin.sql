-- Manager approval at the till (issue 14): a manager's or owner's PIN (argon2id PHC
-- string, like passwords) and its wrong-guess counter, kept apart from sign-in so a
-- guessed-at PIN never locks the manager out of the console.
ALTER TABLE users ADD COLUMN pin_hash TEXT;

CREATE TABLE pin_failures (
    user_id      TEXT PRIMARY KEY REFERENCES users(id),
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
) STRICT;
