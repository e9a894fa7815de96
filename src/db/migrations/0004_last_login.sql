-- When each account last signed in (console or POS), for the staff page: a manager
-- spots an account nobody uses, or one used when its owner was away.
ALTER TABLE users ADD COLUMN last_login_at TEXT;
