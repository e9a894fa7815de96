//! Shifts: opened and closed by the single writer; the figures read from the ledger.
//! The Z report is stored in the row at the close and never recomputed (the migration's
//! triggers refuse any change to a closed shift).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::json;

use super::users::{audit, Actor};
use super::CachedExt;
use crate::domain::shift::{DailyRow, FigureRow, ShiftFigures};
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Clone)]
pub struct ShiftRow {
    pub id: String,
    pub shift_no: String,
    pub user_id: String,
    pub username: String,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    /// The Z report as frozen at the close (JSON).
    pub z_report: Option<String>,
}

const COLUMNS: &str = "s.id, s.shift_no, s.user_id, s.username, s.device_id, d.name, s.opened_at, \
    s.closed_at, s.closed_by, s.z_report";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ShiftRow> {
    Ok(ShiftRow {
        id: r.get(0)?,
        shift_no: r.get(1)?,
        user_id: r.get(2)?,
        username: r.get(3)?,
        device_id: r.get(4)?,
        device_name: r.get(5)?,
        opened_at: r.get(6)?,
        closed_at: r.get(7)?,
        closed_by: r.get(8)?,
        z_report: r.get(9)?,
    })
}

pub fn shift(conn: &Connection, id_or_no: &str) -> AppResult<Option<ShiftRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM shifts s LEFT JOIN devices d ON d.id = s.device_id WHERE s.id = ?1 OR s.shift_no = ?1"),
            [id_or_no],
            from_row,
        )
        .optional()?)
}

/// The shifts opened in [from, to) (RFC 3339, as `opened_at` is written), and every
/// shift still open, oldest first.
pub fn list(conn: &Connection, from: &str, to: &str) -> AppResult<Vec<ShiftRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM shifts s LEFT JOIN devices d ON d.id = s.device_id
          WHERE (s.opened_at >= ?1 AND s.opened_at < ?2) OR s.closed_at IS NULL
          ORDER BY s.opened_at, s.id LIMIT 500"
    ))?;
    let rows = stmt.query_map(params![from, to], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The person's open shift, if any.
pub fn open_shift_of(conn: &Connection, user_id: &str) -> AppResult<Option<ShiftRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM shifts s LEFT JOIN devices d ON d.id = s.device_id WHERE s.user_id = ?1 AND s.closed_at IS NULL"),
            [user_id],
            from_row,
        )
        .optional()?)
}

/// Opens a shift for the actor on their terminal (device), numbered per site.
pub fn open(conn: &Connection, actor: &Actor, site_code: &str) -> AppResult<ShiftRow> {
    let user_id = actor
        .user_id
        .clone()
        .ok_or_else(|| AppError::internal("a shift needs a signed-in person"))?;
    if let Some(open) = open_shift_of(conn, &user_id)? {
        return Err(AppError::new(ErrorCode::ShiftAlreadyOpen)
            .with_details(json!({"shift_no": open.shift_no, "opened_at": open.opened_at})));
    }
    let id = super::new_id();
    let shift_no = format!(
        "SFT-{site_code}-{:06}",
        super::meta::next(conn, "shift_seq")?
    );
    conn.exec_cached(
        "INSERT INTO shifts(id, shift_no, user_id, username, device_id, opened_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, shift_no, user_id, actor.username.clone().unwrap_or_default(), actor.device_id, super::now_rfc3339()],
    )?;
    audit(
        conn,
        actor,
        "shift.open",
        Some(("shift", &shift_no)),
        json!({"device_id": actor.device_id}),
    )?;
    shift(conn, &id)?.ok_or_else(|| AppError::internal("the shift vanished in its own transaction"))
}

/// The shift's figures up to `until` (RFC 3339, the close or now): its person's
/// payments and refunds on its terminal since it opened.
pub fn figures(conn: &Connection, s: &ShiftRow, until: &str) -> AppResult<ShiftFigures> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM transactions t
          WHERE t.operator_user_id = ?1 AND t.device_id IS ?2 AND t.created_at >= ?3 AND t.created_at <= ?4
          GROUP BY t.tx_type",
        FigureRow::COLUMNS
    ))?;
    let rows = stmt
        .query_map(params![s.user_id, s.device_id, s.opened_at, until], |r| {
            figure_row(r, 0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ShiftFigures::from_rows(&rows))
}

/// A `FigureRow::COLUMNS` group read from column `first` on.
fn figure_row(r: &Row<'_>, first: usize) -> rusqlite::Result<FigureRow> {
    Ok(FigureRow {
        kind: r.get(first)?,
        count: r.get(first + 1)?,
        amount: r.get(first + 2)?,
        pending: r.get(first + 3)?,
        pending_amount: r.get(first + 4)?,
        exceptions: r.get(first + 5)?,
        cash_amount: r.get(first + 6)?,
    })
}

/// Closes the shift at `closed_at`, storing its Z report (`report`, JSON, made from the
/// figures up to that moment) in the same transaction.
pub fn close(
    conn: &Connection,
    s: &ShiftRow,
    actor: &Actor,
    closed_at: &str,
    report: &str,
) -> AppResult<()> {
    let changed = conn.exec_cached(
        "UPDATE shifts SET closed_at = ?2, closed_by = ?3, z_report = ?4 WHERE id = ?1 AND closed_at IS NULL",
        params![s.id, closed_at, actor.username, report],
    )?;
    if changed == 0 {
        return Err(ErrorCode::ShiftClosed.into());
    }
    audit(
        conn,
        actor,
        "shift.close",
        Some(("shift", &s.shift_no)),
        json!({"cashier": s.username}),
    )?;
    Ok(())
}

/// One business day [from, to) grouped by cashier (`by_terminal` false) or by terminal,
/// by name. A sale without a device groups under a null key.
pub fn daily(
    conn: &Connection,
    from_unix: i64,
    to_unix: i64,
    by_terminal: bool,
) -> AppResult<Vec<DailyRow>> {
    let (key, name) = if by_terminal {
        ("t.device_id", "d.name")
    } else {
        ("t.operator_user_id", "t.operator_username")
    };
    let sql = format!(
        "SELECT {key}, MAX({name}), {}
           FROM transactions t LEFT JOIN devices d ON d.id = t.device_id
          WHERE t.created_unix >= ?1 AND t.created_unix < ?2
          GROUP BY {key}, t.tx_type",
        FigureRow::COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![from_unix, to_unix], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, Option<String>>(1)?,
            figure_row(r, 2)?,
        ))
    })?;
    // (key, name, its rows), in first-seen order
    let mut groups: Vec<(Option<String>, Option<String>, Vec<FigureRow>)> = Vec::new();
    for row in rows {
        let (k, n, figure) = row?;
        match groups.iter_mut().find(|g| g.0 == k) {
            Some(g) => {
                g.1 = g.1.take().or(n);
                g.2.push(figure);
            }
            None => groups.push((k, n, vec![figure])),
        }
    }
    let mut out: Vec<DailyRow> = groups
        .into_iter()
        .map(|(key, name, rows)| DailyRow {
            key,
            name,
            figures: ShiftFigures::from_rows(&rows),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
