//! The transactions CSV export (UTF-8 with BOM, the current filter).

use crate::db::queries::{self, TxFilter};
use crate::domain::money::{format_cents, format_milli};
use crate::domain::perm;
use crate::error::{AppError, AppResult};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// The CSV export's cap.
pub const EXPORT_MAX_ROWS: i64 = 100_000;

const CSV_HEADER: [&str; 19] = [
    "tx_no",
    "type",
    "status",
    "created_at",
    "local_time",
    "card_no",
    "raw_amount",
    "discount",
    "final_amount",
    "refunded_amount",
    "remaining_refundable",
    "points_earned",
    "original_tx_no",
    "reason",
    "operator",
    "device_id",
    "external_order_id",
    "sync_state",
    "tx_id",
];

/// Text that a spreadsheet would run as a formula gets an apostrophe in front (the csv
/// crate quotes; guarding formulas is ours).
fn guard(text: &str, is_text: bool) -> std::borrow::Cow<'_, str> {
    if is_text && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

pub(crate) fn csv_row(out: &mut csv::Writer<Vec<u8>>, fields: &[(&str, bool)]) -> AppResult<()> {
    out.write_record(
        fields
            .iter()
            .map(|(f, is_text)| guard(f, *is_text).into_owned()),
    )
    .map_err(|e| AppError::internal(format!("csv: {e}")))
}

pub(crate) fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

pub(crate) fn finish(w: csv::Writer<Vec<u8>>) -> AppResult<Vec<u8>> {
    w.into_inner()
        .map_err(|e| AppError::internal(format!("csv: {e}")))
}

/// Rows per page read and per chunk sent.
const PAGE: i64 = 2_000;
/// Chunks (of one page each) waiting for the client at most: memory stays at a few pages
/// whatever the export's size.
const CHUNKS_IN_FLIGHT: usize = 2;
/// A client that reads nothing for this long loses its export, so a stalled download
/// cannot hold a pooled read connection (and its snapshot) for ever.
const STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// The CSV, chunk by chunk: the BOM and header first, then one chunk per page.
pub struct CsvChunks {
    first: Option<Vec<u8>>,
    rest: tokio::sync::mpsc::Receiver<AppResult<Vec<u8>>>,
}

impl CsvChunks {
    pub async fn next(&mut self) -> Option<AppResult<Vec<u8>>> {
        match self.first.take() {
            Some(chunk) => Some(Ok(chunk)),
            None => self.rest.recv().await,
        }
    }
}

/// One page of transactions as CSV rows.
fn page_rows(list: &[crate::model::TransactionView], tz: chrono_tz::Tz) -> AppResult<Vec<u8>> {
    let mut out = writer();
    for t in list {
        let local = chrono::DateTime::parse_from_rfc3339(&t.created_at)
            .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let opt_cents = |v: Option<i64>| v.map(format_cents).unwrap_or_default();
        let (raw, disc, fin) = (
            format_cents(t.raw_amount),
            format_milli(t.discount_applied),
            format_cents(t.final_amount),
        );
        let (refunded, remaining, points) = (
            opt_cents(t.refunded_amount),
            opt_cents(t.remaining_refundable),
            t.points_earned.to_string(),
        );
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let (card, orig, reason, op, dev, ext) = (
            s(&t.card_no),
            s(&t.original_tx_no),
            s(&t.reason),
            s(&t.operator),
            s(&t.device_id),
            s(&t.external_order_id),
        );
        csv_row(
            &mut out,
            &[
                (&t.tx_no, true),
                (&t.tx_type, true),
                (&t.status, true),
                (&t.created_at, false),
                (&local, false),
                (&card, true),
                (&raw, false),
                (&disc, false),
                (&fin, false),
                (&refunded, false),
                (&remaining, false),
                (&points, false),
                (&orig, true),
                (&reason, true),
                (&op, true),
                (&dev, true),
                (&ext, true),
                (&t.sync_state, true),
                (&t.id, true),
            ],
        )?;
    }
    finish(out)
}

/// Reads the pages in one snapshot and sends them; stops when the client goes away or
/// stalls. Runs on a blocking thread.
fn produce(
    conn: &rusqlite::Connection,
    filter: &TxFilter,
    tz: chrono_tz::Tz,
    send: &dyn Fn(Vec<u8>) -> bool,
) -> AppResult<()> {
    // One read transaction: pages see one consistent snapshot.
    let tx = conn.unchecked_transaction()?;
    let mut head = writer();
    csv_row(
        &mut head,
        &CSV_HEADER.iter().map(|h| (*h, false)).collect::<Vec<_>>(),
    )?;
    let mut first = "\u{feff}".as_bytes().to_vec();
    first.extend(finish(head)?);
    if !send(first) {
        return Ok(());
    }
    let mut offset = 0;
    while offset < EXPORT_MAX_ROWS {
        let rows =
            queries::transaction_page(&tx, filter, PAGE.min(EXPORT_MAX_ROWS - offset), offset)?;
        let n = rows.len() as i64;
        if n > 0 && !send(page_rows(&rows, tz)?) {
            return Ok(());
        }
        offset += n;
        if n < PAGE {
            break;
        }
    }
    Ok(())
}

/// The filtered transactions as UTF-8 CSV with a BOM (so spreadsheet programs read
/// Chinese text correctly), newest first, at most [`EXPORT_MAX_ROWS`] rows, streamed:
/// memory stays at [`CHUNKS_IN_FLIGHT`] pages for any size. Errors before the first
/// chunk (permission, database) are returned; later ones end the stream early.
pub async fn export_csv(
    state: &AppState,
    user: &AuthUser,
    filter: TxFilter,
) -> AppResult<CsvChunks> {
    user.require(perm::READ_TRANSACTIONS)?;
    let tz = crate::service::settings::store_timezone(state);
    let (tx, rx) = tokio::sync::mpsc::channel::<AppResult<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let db = state.db.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let send = |chunk: Vec<u8>| rt.block_on(tx.send_timeout(Ok(chunk), STALL)).is_ok();
        if let Err(e) = db.read_blocking(|c| produce(c, &filter, tz, &send)) {
            let _ = rt.block_on(tx.send_timeout(Err(e), STALL));
        }
    });
    let mut rest = rx;
    // The first chunk (or the error that prevented it) decides the response's status.
    let first = rest
        .recv()
        .await
        .ok_or_else(|| AppError::internal("csv export ended before its header"))??;
    Ok(CsvChunks {
        first: Some(first),
        rest,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_quoting_and_formula_guard() {
        let mut out = writer();
        csv_row(
            &mut out,
            &[
                ("a,b", true),
                ("say \"hi\"", true),
                ("=SUM(A1)", true),
                ("-1.00", false),
                ("退款", true),
                ("two\nlines", true),
                ("", true),
            ],
        )
        .unwrap();
        let text = String::from_utf8(finish(out).unwrap()).unwrap();
        assert_eq!(
            text,
            "\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),-1.00,退款,\"two\nlines\",\r\n"
        );
    }
}
