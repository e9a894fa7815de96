//! Membership levels: which level and level discount a points total earns.

use super::money::{Milli, FULL_PRICE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub level: i64,
    pub name: String,
    pub min_points: i64,
    pub max_points: Option<i64>,
    pub discount: Milli,
    pub is_active: bool,
}

/// Central's rule: the highest active level whose [min, max] range contains the points
/// total; level 0 and full price when none does.
pub fn level_for_points(levels: &[Level], points: i64) -> (i64, Milli) {
    levels
        .iter()
        .filter(|l| {
            l.is_active && l.min_points <= points && l.max_points.is_none_or(|m| points <= m)
        })
        .max_by_key(|l| l.level)
        .map_or((0, FULL_PRICE), |l| (l.level, l.discount))
}

/// Where a card stands: its level (as central stored it on the card, which is what the
/// next charge's discount uses) and how many more points reach the next one, so a till
/// can tell the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub level: i64,
    /// The level's name, when the replica knows the level.
    pub name: Option<String>,
    /// The card's points-level discount (central's `member_cards.discount`).
    pub discount: Milli,
    pub next: Option<NextLevel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLevel {
    pub level: i64,
    pub name: String,
    pub min_points: i64,
    pub discount: Milli,
    /// Points still to earn: always at least 1.
    pub points_needed: i64,
}

/// The card's standing from its stored level and discount and its points total. The next
/// level is the lowest active level above the card's whose threshold is still ahead; a
/// card already past every threshold (or at the top) has none.
pub fn standing(levels: &[Level], level: i64, discount: Milli, points: i64) -> Standing {
    let name = levels
        .iter()
        .find(|l| l.level == level)
        .map(|l| l.name.clone());
    let next = levels
        .iter()
        .filter(|l| l.is_active && l.level > level && l.min_points > points)
        .min_by_key(|l| (l.min_points, l.level))
        .map(|l| NextLevel {
            level: l.level,
            name: l.name.clone(),
            min_points: l.min_points,
            discount: l.discount,
            points_needed: l.min_points - points,
        });
    Standing {
        level,
        name,
        discount,
        next,
    }
}

/// Central's four seed levels (contract §1.4), used by the demo dataset.
pub fn central_seed_levels() -> Vec<Level> {
    [
        (0, "普通會員", 0, Some(999), 1000),
        (1, "銀卡會員", 1000, Some(4999), 950),
        (2, "金卡會員", 5000, Some(9999), 900),
        (3, "鑽石會員", 10000, None, 850),
    ]
    .into_iter()
    .map(|(level, name, min_points, max_points, discount)| Level {
        level,
        name: name.to_string(),
        min_points,
        max_points,
        discount,
        is_active: true,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_levels() {
        let l = central_seed_levels();
        assert_eq!(level_for_points(&l, 0), (0, 1000));
        assert_eq!(level_for_points(&l, 999), (0, 1000));
        assert_eq!(level_for_points(&l, 1000), (1, 950));
        assert_eq!(level_for_points(&l, 4999), (1, 950));
        assert_eq!(level_for_points(&l, 5000), (2, 900));
        assert_eq!(level_for_points(&l, 10_000), (3, 850));
        assert_eq!(level_for_points(&l, 10_000_000), (3, 850));
    }

    #[test]
    fn standing_names_the_level_and_the_points_to_the_next() {
        let l = central_seed_levels();
        // (level, discount, points) → (name, next level, points needed)
        type Case = (i64, Milli, i64, Option<&'static str>, Option<(i64, i64)>);
        let cases: &[Case] = &[
            (0, 1000, 0, Some("普通會員"), Some((1, 1000))),
            (0, 1000, 999, Some("普通會員"), Some((1, 1))),
            (1, 950, 1000, Some("銀卡會員"), Some((2, 4000))),
            (2, 900, 9999, Some("金卡會員"), Some((3, 1))),
            (3, 850, 10_000, Some("鑽石會員"), None),
            (3, 850, 2_000_000, Some("鑽石會員"), None),
            // a level the replica does not know: no name, the next known threshold ahead
            (7, 800, 50, None, None),
            // central's stored level lags the points (levels changed centrally): the
            // next threshold still ahead of the points, above the stored level
            (0, 1000, 6000, Some("普通會員"), Some((3, 4000))),
        ];
        for &(level, discount, points, name, next) in cases {
            let s = standing(&l, level, discount, points);
            assert_eq!(s.level, level);
            assert_eq!(s.discount, discount);
            assert_eq!(s.name.as_deref(), name, "{level}/{points}");
            assert_eq!(
                s.next.as_ref().map(|n| (n.level, n.points_needed)),
                next,
                "{level}/{points}"
            );
        }
    }

    #[test]
    fn standing_skips_inactive_levels() {
        let mut l = central_seed_levels();
        l[1].is_active = false;
        let s = standing(&l, 0, 1000, 10);
        let n = s.next.expect("a next level");
        assert_eq!((n.level, n.points_needed, n.discount), (2, 4990, 900));
        assert_eq!(standing(&[], 0, 1000, 10).next, None);
    }

    #[test]
    fn inactive_levels_and_gaps_fall_back() {
        let mut l = central_seed_levels();
        l[1].is_active = false;
        assert_eq!(level_for_points(&l, 1500), (0, 1000));
        assert_eq!(level_for_points(&[], 1500), (0, 1000));
    }

    proptest! {
        #[test]
        fn points_needed_is_positive_and_lands_on_the_threshold(level in 0i64..4, points in 0i64..20_000) {
            let l = central_seed_levels();
            if let Some(n) = standing(&l, level, 1000, points).next {
                prop_assert!(n.points_needed >= 1);
                prop_assert_eq!(points + n.points_needed, n.min_points);
                prop_assert!(n.level > level);
            }
        }

        #[test]
        fn more_points_never_lower_level(a in 0i64..50_000, b in 0i64..50_000) {
            let l = central_seed_levels();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(level_for_points(&l, lo).0 <= level_for_points(&l, hi).0);
            prop_assert!(level_for_points(&l, lo).1 >= level_for_points(&l, hi).1);
        }
    }
}
