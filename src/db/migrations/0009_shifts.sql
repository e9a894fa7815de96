-- Shifts (issue 14, item 2): a cashier opens a shift on a terminal and closes it; the
-- close report (Z) is frozen into the row. A closed shift can never change and no shift
-- is ever deleted: the triggers refuse it, whatever code runs.
CREATE TABLE shifts (
    id          TEXT PRIMARY KEY,
    shift_no    TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL,
    username    TEXT NOT NULL,
    device_id   TEXT,
    opened_at   TEXT NOT NULL,
    closed_at   TEXT,
    closed_by   TEXT,
    z_report    TEXT
) STRICT;
-- One open shift per person.
CREATE UNIQUE INDEX shifts_one_open ON shifts(user_id) WHERE closed_at IS NULL;
CREATE INDEX shifts_opened ON shifts(opened_at);
CREATE TRIGGER shifts_closed_are_final BEFORE UPDATE ON shifts WHEN OLD.closed_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a closed shift cannot be changed');
END;
CREATE TRIGGER shifts_are_kept BEFORE DELETE ON shifts
BEGIN
    SELECT RAISE(ABORT, 'shifts are never deleted');
END;
-- The report's query: one person's transactions on one terminal over a span of time.
CREATE INDEX transactions_operator ON transactions(operator_user_id, created_at);
