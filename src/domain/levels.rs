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
    fn inactive_levels_and_gaps_fall_back() {
        let mut l = central_seed_levels();
        l[1].is_active = false;
        assert_eq!(level_for_points(&l, 1500), (0, 1000));
        assert_eq!(level_for_points(&[], 1500), (0, 1000));
    }

    proptest! {
        #[test]
        fn more_points_never_lower_level(a in 0i64..50_000, b in 0i64..50_000) {
            let l = central_seed_levels();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(level_for_points(&l, lo).0 <= level_for_points(&l, hi).0);
            prop_assert!(level_for_points(&l, lo).1 >= level_for_points(&l, hi).1);
        }
    }
}
