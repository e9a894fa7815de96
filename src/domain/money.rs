//! Exact money: integer cents and discounts in thousandths (central's numeric(12,2) and
//! numeric(4,3)). No floating point anywhere in this module.

use std::fmt;

/// The largest amount central can store: numeric(12,2) → 9,999,999,999.99.
pub const MAX_CENTS: i64 = 999_999_999_999;

/// A discount in thousandths: 1000 = no discount, 950 = 5% off.
pub type Milli = i64;

pub const FULL_PRICE: Milli = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// Not a decimal number, more than 2 decimals, or out of range.
    Malformed,
    /// Zero or negative.
    NotPositive,
}

/// Parses a decimal amount ("12", "12.3", "12.34", "-1") into cents.
/// Accepts at most 2 decimals; rejects exponents, signs other than a leading '-',
/// whitespace, and anything beyond numeric(12,2).
pub fn parse_cents(text: &str) -> Result<i64, AmountError> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::Malformed);
    }
    let frac = match frac_part {
        None => 0,
        Some(f) if f.is_empty() || f.len() > 2 || !f.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(AmountError::Malformed)
        }
        Some(f) => {
            let v: i64 = f.parse().map_err(|_| AmountError::Malformed)?;
            if f.len() == 1 {
                v * 10
            } else {
                v
            }
        }
    };
    // Leading zeros are fine ("007.50"), but cap the length before parsing so huge
    // inputs cannot overflow.
    let trimmed = int_part.trim_start_matches('0');
    if trimmed.len() > 10 {
        return Err(AmountError::Malformed);
    }
    let units: i64 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().map_err(|_| AmountError::Malformed)?
    };
    let cents = units * 100 + frac;
    if cents > MAX_CENTS {
        return Err(AmountError::Malformed);
    }
    if negative || cents == 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(cents)
}

/// Parses any decimal with at most 2 places (zero and negatives allowed), as central's
/// numeric(12,2) values arrive in a pull: "0.00", "12.3", "-5.00".
pub fn parse_decimal_cents(text: &str) -> Option<i64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    match parse_cents(body) {
        Ok(c) => Some(if negative { -c } else { c }),
        Err(AmountError::NotPositive) => Some(0),
        Err(AmountError::Malformed) => None,
    }
}

/// Parses a positive amount given as a JSON number or string.
pub fn cents_from_json(value: &serde_json::Value) -> Result<i64, AmountError> {
    match value {
        // With serde_json's arbitrary_precision the number keeps its original text,
        // so "10.005" is seen as written, not as a rounded binary float.
        serde_json::Value::Number(n) => parse_cents(&n.to_string()),
        serde_json::Value::String(s) => parse_cents(s),
        _ => Err(AmountError::Malformed),
    }
}

/// Formats cents as a decimal with exactly two places: 1234 → "12.34", -5 → "-0.05".
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Formats a discount in thousandths: 950 → "0.950".
pub fn format_milli(milli: Milli) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Parses a discount such as "0.95", "0.950" or "1" into thousandths (0..=1000 not enforced here).
pub fn parse_milli(text: &str) -> Option<Milli> {
    let (int_part, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int_part.is_empty()
        || int_part.len() > 4
        || frac.len() > 3
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let units: i64 = int_part.parse().ok()?;
    let mut f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        f *= 10;
    }
    Some(units * 1000 + f)
}

/// The discount a standard card pays with: the lower (better) of its level discount and
/// its corporate discount (a missing corporate discount counts as full price). Central
/// takes the minimum, it does not multiply them.
pub fn effective_discount(level_discount: Milli, corporate_discount: Option<Milli>) -> Milli {
    level_discount.min(corporate_discount.unwrap_or(FULL_PRICE))
}

/// final = raw × discount, rounded to cents half away from zero (central's `round(x, 2)`).
pub fn final_amount(raw_cents: i64, discount: Milli) -> i64 {
    let product = i128::from(raw_cents) * i128::from(discount);
    let rounded = if product >= 0 {
        (product + 500) / 1000
    } else {
        (product - 500) / 1000
    };
    // raw ≤ MAX_CENTS and discount ≤ a few thousand, so this always fits.
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// Points earned: whole currency units of the raw amount (floor).
pub fn points_for(raw_cents: i64) -> i64 {
    raw_cents.div_euclid(100)
}

/// A positive amount of money — what a limit, a price or a refund is — as integer cents
/// in 1..=`MAX_CENTS`. Holding one means the text was checked once, where it came in;
/// nothing downstream re-parses it or falls back to a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    /// `None` outside 1..=`MAX_CENTS`.
    pub const fn from_cents(cents: i64) -> Option<Money> {
        if cents >= 1 && cents <= MAX_CENTS {
            Some(Money(cents))
        } else {
            None
        }
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    /// An amount written as JSON: a string ("12.30") or a number (`12.30`, kept as written
    /// thanks to serde_json's arbitrary_precision, so `10.005` is refused, not rounded).
    pub fn from_json(value: &serde_json::Value) -> Result<Money, String> {
        let text = match value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => return Err(format!("{other} must be an amount such as \"12.30\"")),
        };
        text.parse()
    }
}

impl std::str::FromStr for Money {
    /// The message the config file and the console have always shown for a bad amount.
    type Err = String;

    fn from_str(text: &str) -> Result<Money, String> {
        parse_cents(text)
            .map(Money)
            .map_err(|_| format!("{text:?} must be a positive amount with at most 2 decimals"))
    }
}

/// "12.30": the form the config file, the settings table and the logs hold.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_cents(self.0))
    }
}

/// An exact JSON number with two decimals (`12.30`), like every amount the API returns.
/// Meant for serde_json (the API, the audit log); other formats would see serde_json's
/// number token, which is why the config loader does not serialise its defaults.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_cents(&self.0, s)
    }
}

/// Accepts a decimal string, an integer or a float (TOML numbers, and the environment
/// layer, which hands `150.50` over as a float: its shortest form "150.5" is what is
/// judged, so `1.234` is still refused). Going through `serde_json::Value` keeps a JSON
/// number's original text.
impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
        Money::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// Serialises cents as a JSON number with exactly two decimals (`12.30`, not `12.3`),
/// without ever passing through a float.
pub fn json_amount(cents: i64) -> serde_json::Value {
    match format_cents(cents).parse::<serde_json::Number>() {
        Ok(n) => serde_json::Value::Number(n),
        Err(_) => serde_json::Value::String(format_cents(cents)),
    }
}

/// As `json_amount` for discounts: `0.950`.
pub fn json_discount(milli: Milli) -> serde_json::Value {
    match format_milli(milli).parse::<serde_json::Number>() {
        Ok(n) => serde_json::Value::Number(n),
        Err(_) => serde_json::Value::String(format_milli(milli)),
    }
}

/// serde helper: `#[serde(serialize_with = "money::ser_cents")]` on an i64 of cents.
pub fn ser_cents<S: serde::Serializer>(cents: &i64, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&json_amount(*cents), s)
}

pub fn ser_opt_cents<S: serde::Serializer>(cents: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match cents {
        Some(c) => ser_cents(c, s),
        None => s.serialize_none(),
    }
}

pub fn ser_milli<S: serde::Serializer>(milli: &Milli, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&json_discount(*milli), s)
}

pub fn ser_opt_milli<S: serde::Serializer>(milli: &Option<Milli>, s: S) -> Result<S::Ok, S::Error> {
    match milli {
        Some(m) => ser_milli(m, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_valid_amounts() {
        for (text, cents) in [
            ("1", 100),
            ("0.01", 1),
            ("12.3", 1230),
            ("12.34", 1234),
            ("007.50", 750),
            ("9999999999.99", MAX_CENTS),
        ] {
            assert_eq!(parse_cents(text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn rejects_bad_amounts() {
        for text in [
            "",
            ".",
            "1.",
            ".5",
            "1.234",
            "10.005",
            "1e3",
            "1E2",
            "+1",
            " 1",
            "1 ",
            "0x10",
            "NaN",
            "inf",
            "1,5",
            "10000000000",
            "99999999999.99",
            "1.2.3",
            "--1",
            "١",
        ] {
            assert_eq!(parse_cents(text), Err(AmountError::Malformed), "{text:?}");
        }
        for text in ["0", "0.00", "-1", "-0.01", "-0"] {
            assert_eq!(parse_cents(text), Err(AmountError::NotPositive), "{text:?}");
        }
    }

    #[test]
    fn json_numbers_keep_their_text() {
        let v: serde_json::Value = serde_json::from_str("10.005").unwrap();
        assert_eq!(cents_from_json(&v), Err(AmountError::Malformed));
        let v: serde_json::Value = serde_json::from_str("10.10").unwrap();
        assert_eq!(cents_from_json(&v), Ok(1010));
        let v: serde_json::Value = serde_json::from_str("1e2").unwrap();
        assert_eq!(cents_from_json(&v), Err(AmountError::Malformed));
        assert_eq!(
            cents_from_json(&serde_json::json!(true)),
            Err(AmountError::Malformed)
        );
        assert_eq!(
            cents_from_json(&serde_json::json!(null)),
            Err(AmountError::Malformed)
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_cents(1234), "12.34");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_milli(950), "0.950");
        assert_eq!(format_milli(1000), "1.000");
        assert_eq!(serde_json::to_string(&json_amount(1230)).unwrap(), "12.30");
        assert_eq!(parse_milli("0.95"), Some(950));
        assert_eq!(parse_milli("0.800"), Some(800));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("0.9501"), None);
        assert_eq!(parse_decimal_cents("0.00"), Some(0));
        assert_eq!(parse_decimal_cents("12.3"), Some(1230));
        assert_eq!(parse_decimal_cents("-5.00"), Some(-500));
        assert_eq!(parse_decimal_cents("1.234"), None);
    }

    #[test]
    fn central_worked_examples() {
        // Contract §3.8: corporate 0.8, charge 10.01 → final 8.01, 10 points.
        let d = effective_discount(1000, Some(800));
        assert_eq!(d, 800);
        assert_eq!(final_amount(1001, d), 801);
        assert_eq!(points_for(1001), 10);
        // The lower of the two, not the product.
        assert_eq!(effective_discount(900, Some(950)), 900);
        assert_eq!(effective_discount(950, None), 950);
        // Half away from zero: 0.05 × 0.9 = 0.045 → 0.05.
        assert_eq!(final_amount(5, 900), 5);
        // 10.03 × 0.8 = 8.024 → 8.02.
        assert_eq!(final_amount(1003, 800), 802);
        // 0.01 × 0.85 = 0.0085 → 0.01.
        assert_eq!(final_amount(1, 850), 1);
        assert_eq!(final_amount(1, 400), 0);
        assert_eq!(points_for(99), 0);
    }

    #[test]
    fn money_from_every_input_form() {
        use serde_json::json;
        let ok = |v: serde_json::Value| Money::from_json(&v).map(Money::cents);
        // Good: strings and numbers, integers and up to 2 decimals, up to central's maximum.
        for (v, cents) in [
            (json!("500.00"), 50_000),
            (json!("500"), 50_000),
            (json!("0.01"), 1),
            (json!("12.5"), 1250),
            (json!(12), 1200),
            (json!(12.5), 1250),
            (json!("9999999999.99"), MAX_CENTS),
            (serde_json::from_str("10.10").unwrap(), 1010),
        ] {
            assert_eq!(ok(v.clone()), Ok(cents), "{v}");
        }
        // Bad: zero, negative, too many decimals, not a number, empty, too big, wrong type.
        for v in [
            json!("0"),
            json!("0.00"),
            json!(0),
            json!("-1"),
            json!(-1),
            json!("1.234"),
            json!("abc"),
            json!(""),
            json!("1e3"),
            json!("10000000000"),
            json!(10_000_000_000_i64),
            json!(u64::MAX),
            json!(1e20),
            json!(true),
            json!(null),
            json!([1]),
            serde_json::from_str("10.005").unwrap(),
        ] {
            assert!(ok(v.clone()).is_err(), "{v}");
        }
        assert_eq!(
            Money::from_json(&json!("1.234")),
            Err("\"1.234\" must be a positive amount with at most 2 decimals".into())
        );
        assert_eq!(Money::from_cents(0), None);
        assert_eq!(Money::from_cents(MAX_CENTS + 1), None);
    }

    #[test]
    fn money_round_trips_as_an_exact_json_number() {
        let m: Money = "2000".parse().unwrap();
        assert_eq!(m.to_string(), "2000.00");
        assert_eq!(serde_json::to_string(&m).unwrap(), "2000.00");
        let back: Money = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<Money>("10.005").is_err());
        assert!(serde_json::from_str::<Money>("\"abc\"").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(c in 1i64..=MAX_CENTS) {
            prop_assert_eq!(parse_cents(&format_cents(c)), Ok(c));
        }

        #[test]
        fn final_is_exact_half_away_rounding(raw in 1i64..=MAX_CENTS, d in 0i64..=1000) {
            let f = final_amount(raw, d);
            // raw*d - f*1000 lies in [-500, 500).
            let diff = i128::from(raw) * i128::from(d) - i128::from(f) * 1000;
            // A tie (diff = -500) has been rounded up, i.e. away from zero.
            prop_assert!((-500..500).contains(&diff));
            prop_assert!(f <= raw);
            prop_assert!(f >= 0);
        }

        #[test]
        fn discount_never_increases_price(raw in 1i64..=1_000_000_000, l in 0i64..=1000, c in proptest::option::of(0i64..=1000)) {
            let d = effective_discount(l, c);
            prop_assert!(d <= l);
            prop_assert!(final_amount(raw, d) <= final_amount(raw, l));
        }

        #[test]
        fn points_are_whole_units(raw in 1i64..=MAX_CENTS) {
            let p = points_for(raw);
            prop_assert!(p * 100 <= raw && raw < (p + 1) * 100);
        }
    }
}
