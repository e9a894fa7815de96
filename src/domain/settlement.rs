//! Settlement rules: which periods may be closed, and how a period reads in the
//! store's calendar. Pure: the caller passes "now" and the store's time zone.

/// Central's `settlement_mode` values: how often a store settles.
pub const SETTLEMENT_MODES: [&str; 3] = ["realtime", "t_plus_1", "monthly"];

use chrono::{NaiveDate, TimeZone};

/// Why a period cannot be settled (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodProblem {
    /// The end is not after the start.
    EndNotAfterStart,
    /// The period has not ended: a future date, or a business day still open.
    NotEnded,
}

/// A period [start, end) may be settled once it is over: a sale can still land in a
/// period that ends in the future (a whole day ends at the next midnight in the store's
/// time zone), and once settled those later sales could never be settled.
pub fn check_period(start_unix: i64, end_unix: i64, now_unix: i64) -> Result<(), PeriodProblem> {
    if start_unix >= end_unix {
        return Err(PeriodProblem::EndNotAfterStart);
    }
    if end_unix > now_unix {
        return Err(PeriodProblem::NotEnded);
    }
    Ok(())
}

/// How a period reads to a person: its first and last calendar day in the store's
/// time zone (both inclusive) and whether it is made of whole days (so no times need
/// showing). [12-20 00:00, 12-21 00:00) is the single day 12-20.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodDays {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub whole_days: bool,
}

pub fn period_days(start_unix: i64, end_unix: i64, tz: chrono_tz::Tz) -> Option<PeriodDays> {
    let start = tz.timestamp_opt(start_unix, 0).single()?;
    // the last instant inside the period
    let last = tz
        .timestamp_opt(end_unix.max(start_unix + 1) - 1, 0)
        .single()?;
    let end = tz.timestamp_opt(end_unix, 0).single()?;
    let midnight = |t: &chrono::DateTime<chrono_tz::Tz>| t.time() == chrono::NaiveTime::MIN;
    Some(PeriodDays {
        first_day: start.date_naive(),
        last_day: last.date_naive(),
        whole_days: midnight(&start) && midnight(&end),
    })
}

/// When business day `day` begins in the store's zone, in unix seconds: its first
/// midnight (a zone may skip or repeat one). `None` past chrono's range.
pub fn day_start(day: NaiveDate, tz: chrono_tz::Tz) -> Option<i64> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp())
}

/// Longest free text kept with a void, in characters.
pub const VOID_REASON_MAX: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn periods_that_have_not_ended_are_refused() {
        let now = 1_000 * DAY + 3_600;
        let cases = [
            (0, DAY, Ok(())),
            (now - DAY, now, Ok(())),
            (now - 10, now + 1, Err(PeriodProblem::NotEnded)),
            // today as a whole day: ends at the next midnight
            (1_000 * DAY, 1_001 * DAY, Err(PeriodProblem::NotEnded)),
            (now + DAY, now + 2 * DAY, Err(PeriodProblem::NotEnded)),
            (DAY, DAY, Err(PeriodProblem::EndNotAfterStart)),
            (2 * DAY, DAY, Err(PeriodProblem::EndNotAfterStart)),
        ];
        for (start, end, want) in cases {
            assert_eq!(check_period(start, end, now), want, "{start}..{end}");
        }
    }

    #[test]
    fn a_whole_day_reads_as_one_day_in_the_store_zone() {
        let tz: chrono_tz::Tz = "Asia/Taipei".parse().unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let midnight = |d: NaiveDate| {
            tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                .unwrap()
                .timestamp()
        };
        let p = period_days(midnight(day(2026, 12, 20)), midnight(day(2026, 12, 21)), tz).unwrap();
        assert_eq!(
            p,
            PeriodDays {
                first_day: day(2026, 12, 20),
                last_day: day(2026, 12, 20),
                whole_days: true
            }
        );
        let p = period_days(midnight(day(2026, 12, 1)), midnight(day(2027, 1, 1)), tz).unwrap();
        assert_eq!(
            (p.first_day, p.last_day),
            (day(2026, 12, 1), day(2026, 12, 31))
        );
        // the same instants in UTC are not whole days
        let p = period_days(
            midnight(day(2026, 12, 20)),
            midnight(day(2026, 12, 21)),
            chrono_tz::UTC,
        )
        .unwrap();
        assert!(!p.whole_days);
        assert_eq!(
            (p.first_day, p.last_day),
            (day(2026, 12, 19), day(2026, 12, 20))
        );
    }
}
