//! Shifts at the till (issue 14, item 2): open, the X report while open, close with the
//! Z report frozen, and reading any report back. A cashier works with their own shift;
//! a manager or the owner may read and close anyone's (the end of the day).

use chrono::TimeZone;

use crate::db::shifts::{self as store, ShiftRow};
use crate::domain::perm;
use crate::domain::shift::{DailyReport, ShiftFigures, ShiftReport};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// What every report of this store shows besides the shift's own figures.
#[derive(Clone)]
struct Store {
    name: String,
    site_code: String,
    tz: chrono_tz::Tz,
    currency: String,
}

fn store(state: &AppState) -> Store {
    let s = state.settings.read();
    Store {
        name: s.settings.store_name.clone(),
        site_code: state.cfg.site.code.clone(),
        tz: crate::service::settings::store_timezone(state),
        currency: s.settings.currency.clone(),
    }
}

fn local(at: &str, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| {
            tz.from_utc_datetime(&t.naive_utc())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

fn build(s: &ShiftRow, figures: ShiftFigures, now: &str, st: &Store) -> ShiftReport {
    ShiftReport {
        kind: if s.closed_at.is_some() { "Z" } else { "X" }.into(),
        shift_id: s.id.clone(),
        shift_no: s.shift_no.clone(),
        store_name: st.name.clone(),
        site_code: st.site_code.clone(),
        cashier: s.username.clone(),
        terminal: s.device_name.clone(),
        device_id: s.device_id.clone(),
        opened_at: local(&s.opened_at, st.tz),
        closed_at: s.closed_at.as_deref().map(|c| local(c, st.tz)),
        closed_by: s.closed_by.clone(),
        generated_at: local(now, st.tz),
        timezone: st.tz.name().to_string(),
        currency: st.currency.clone(),
        figures,
    }
}

/// Own shift, or a manager's view of anyone's.
fn may_see(user: &AuthUser, s: &ShiftRow) -> AppResult<()> {
    if s.user_id == user.id {
        Ok(())
    } else {
        user.require(perm::READ_SUMMARY)
    }
}

/// A shift's report: the frozen Z of a closed shift, else the X up to now.
fn report_of(c: &rusqlite::Connection, s: &ShiftRow, st: &Store) -> AppResult<ShiftReport> {
    if let Some(z) = &s.z_report {
        return serde_json::from_str(z)
            .map_err(|e| AppError::internal(format!("stored Z report of {}: {e}", s.shift_no)));
    }
    let now = crate::db::now_rfc3339();
    Ok(build(s, store::figures(c, s, &now)?, &now, st))
}

fn no_shift() -> AppError {
    AppError::msg(ErrorCode::NotFound, "No such shift.")
}

pub async fn open(state: &AppState, user: &AuthUser) -> AppResult<ShiftReport> {
    user.require(perm::CHARGE)?;
    let (actor, st) = (user.actor(), store(state));
    state
        .db
        .write(move |c| {
            let s = store::open(c, &actor, &st.site_code)?;
            report_of(c, &s, &st)
        })
        .await
}

/// The caller's open shift (its X report), or 404.
pub async fn current(state: &AppState, user: &AuthUser) -> AppResult<ShiftReport> {
    user.require(perm::CHARGE)?;
    let (id, st) = (user.id.clone(), store(state));
    state
        .db
        .read(move |c| {
            let s = store::open_shift_of(c, &id)?
                .ok_or_else(|| AppError::msg(ErrorCode::NotFound, "You have no open shift."))?;
            report_of(c, &s, &st)
        })
        .await
}

pub async fn report(state: &AppState, user: &AuthUser, id: String) -> AppResult<ShiftReport> {
    user.require(perm::CHARGE)?;
    let (who, st) = (user.clone(), store(state));
    state
        .db
        .read(move |c| {
            let s = store::shift(c, &id)?.ok_or_else(no_shift)?;
            may_see(&who, &s)?;
            report_of(c, &s, &st)
        })
        .await
}

/// Closes the shift: its figures up to this moment become the Z report, stored with the
/// close in one transaction; audited; final.
pub async fn close(state: &AppState, user: &AuthUser, id: String) -> AppResult<ShiftReport> {
    user.require(perm::CHARGE)?;
    let (who, st) = (user.clone(), store(state));
    state
        .db
        .write(move |c| {
            let mut s = store::shift(c, &id)?.ok_or_else(no_shift)?;
            may_see(&who, &s)?;
            if s.closed_at.is_some() {
                return Err(AppError::new(ErrorCode::ShiftClosed)
                    .with_details(serde_json::json!({"shift_no": s.shift_no})));
            }
            let now = crate::db::now_rfc3339();
            let figures = store::figures(c, &s, &now)?;
            s.closed_at = Some(now.clone());
            s.closed_by = Some(who.username.clone());
            let z = build(&s, figures, &now, &st);
            let text = serde_json::to_string(&z).map_err(|e| AppError::internal(e.to_string()))?;
            store::close(c, &s, &who.actor(), &now, &text)?;
            Ok(z)
        })
        .await
}

/// The report as CSV (UTF-8 with BOM, like the transactions export): a header and one line.
pub fn report_csv(r: &ShiftReport) -> AppResult<Vec<u8>> {
    use crate::service::export::{csv_row, finish, writer};
    let mut w = writer();
    let mut header: Vec<(&str, bool)> = [
        "kind",
        "shift_no",
        "site",
        "terminal",
        "cashier",
        "opened_at",
        "closed_at",
        "closed_by",
    ]
    .iter()
    .map(|h| (*h, false))
    .collect();
    header.extend(ShiftFigures::CSV_HEADERS.iter().map(|h| (*h, false)));
    header.push(("timezone", false));
    csv_row(&mut w, &header)?;
    let numbers = r.figures.csv_cells();
    let mut row: Vec<(&str, bool)> = vec![
        (&r.kind, true),
        (&r.shift_no, true),
        (&r.site_code, true),
        (r.terminal.as_deref().unwrap_or(""), true),
        (&r.cashier, true),
        (&r.opened_at, true),
        (r.closed_at.as_deref().unwrap_or(""), true),
        (r.closed_by.as_deref().unwrap_or(""), true),
    ];
    row.extend(numbers.iter().map(|n| (n.as_str(), false)));
    row.push((&r.timezone, true));
    csv_row(&mut w, &row)?;
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend(finish(w)?);
    Ok(out)
}

/// The day's shifts (opened that day, or still open), each with its report: a
/// manager's or the owner's view of the till.
pub async fn list(
    state: &AppState,
    user: &AuthUser,
    (from, to): (i64, i64),
) -> AppResult<Vec<ShiftReport>> {
    user.require(perm::READ_SUMMARY)?;
    let st = store(state);
    let rfc = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .ok_or_else(|| AppError::validation("date", "date is out of range."))
    };
    let (from, to) = (rfc(from)?, rfc(to)?);
    state
        .db
        .read(move |c| {
            store::list(c, &from, &to)?
                .iter()
                .map(|s| report_of(c, s, &st))
                .collect()
        })
        .await
}

/// One business day by cashier or by terminal (a manager's or the owner's).
pub async fn daily(
    state: &AppState,
    user: &AuthUser,
    (date, from, to): (String, i64, i64),
    by_terminal: bool,
) -> AppResult<DailyReport> {
    user.require(perm::READ_SUMMARY)?;
    let st = store(state);
    let rows = state
        .db
        .read(move |c| store::daily(c, from, to, by_terminal))
        .await?;
    let head = DailyReport {
        date,
        timezone: st.tz.name().to_string(),
        by: if by_terminal { "terminal" } else { "cashier" }.into(),
        store_name: st.name,
        site_code: st.site_code,
        currency: st.currency,
        rows: Vec::new(),
        totals: ShiftFigures::default(),
    };
    Ok(DailyReport::new(head, rows))
}

/// The day's report as CSV (UTF-8 with BOM): one line per cashier or terminal.
pub fn daily_csv(r: &DailyReport) -> AppResult<Vec<u8>> {
    use crate::service::export::{csv_row, finish, writer};
    let mut w = writer();
    let mut header: Vec<(&str, bool)> = ["date", "by", "key", "name"]
        .iter()
        .map(|h| (*h, false))
        .collect();
    header.extend(ShiftFigures::CSV_HEADERS.iter().map(|h| (*h, false)));
    csv_row(&mut w, &header)?;
    for row in &r.rows {
        let numbers = row.figures.csv_cells();
        let mut cells: Vec<(&str, bool)> = vec![
            (&r.date, false),
            (&r.by, false),
            (row.key.as_deref().unwrap_or(""), true),
            (row.name.as_deref().unwrap_or(""), true),
        ];
        cells.extend(numbers.iter().map(|n| (n.as_str(), false)));
        csv_row(&mut w, &cells)?;
    }
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend(finish(w)?);
    Ok(out)
}
