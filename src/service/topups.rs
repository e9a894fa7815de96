//! Counter top-ups: the store's limits and business day in, the writer's answer out.

use serde_json::Value;

use crate::db::ledger::Idem;
use crate::db::topups::{commit_topup, TopupCmd};
use crate::db::users::Actor;
use crate::error::AppResult;
use crate::service::state::AppState;

pub struct TopupInput {
    pub card_no: String,
    pub amount_cents: i64,
    pub payment_method: String,
    pub idem: Option<Idem>,
    pub tag: Value,
}

/// When the store's current business day began, in UTC as RFC 3339 (how transactions'
/// `created_at` is written, so the two compare as text).
fn day_start(tz: chrono_tz::Tz, now: chrono::DateTime<chrono::Utc>) -> String {
    crate::domain::settlement::day_start(now.with_timezone(&tz).date_naive(), tz)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        // Out of chrono's range: a day back is never later than the truth, so the limit
        // only counts more.
        .unwrap_or(now - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Returns the response body and whether it replays an earlier identical request.
pub async fn topup(state: &AppState, actor: Actor, input: TopupInput) -> AppResult<(String, bool)> {
    let now = chrono::Utc::now();
    let cmd = TopupCmd {
        card_no: input.card_no,
        amount_cents: input.amount_cents,
        payment_method: input.payment_method,
        idem: input.idem,
        tag: input.tag,
        actor,
        site_code: state.cfg.site.code.clone(),
        limits: crate::service::settings::current_limits(state).topup,
        day_start: day_start(crate::service::settings::store_timezone(state), now),
        now,
    };
    let out = state.db.write(move |c| commit_topup(c, cmd)).await?;
    if !out.1 {
        state.events.publish_body("topup", &out.0);
    }
    if let Some(sync) = &state.sync {
        sync.notify();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_business_day_starts_at_local_midnight() {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 12, 4, 15, 30, 0)
            .unwrap();
        // Taipei is UTC+8: 23:30 local, the day began at 16:00 UTC the day before.
        assert_eq!(
            day_start(chrono_tz::Asia::Taipei, now),
            "2026-12-03T16:00:00.000000Z"
        );
        let early = chrono::Utc
            .with_ymd_and_hms(2026, 12, 4, 16, 30, 0)
            .unwrap();
        assert_eq!(
            day_start(chrono_tz::Asia::Taipei, early),
            "2026-12-04T16:00:00.000000Z"
        );
        assert_eq!(
            day_start(chrono_tz::UTC, now),
            "2026-12-04T00:00:00.000000Z"
        );
    }
}
