use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Invalid;

/// An amount of money: exact, never negative, at most two decimal places,
/// below 10^12. Matches the `write.money` domain (`numeric(14,2)`).
///
/// Accepted from JSON as a number (`109.97`, read exactly, never through a
/// float) or a string (`"109.97"`); written as a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Digits with an optional sign and fraction (`19.99`). Nothing else:
    /// rust_decimal alone would also read `1_0` as ten.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.contains(['e', 'E']) {
            return Err(Invalid(format!(
                "{:?} is not a decimal amount (write it without an exponent)",
                raw.trim()
            )));
        }
        Self::parse_json_number(raw)
    }

    /// A JSON number's text, which may have an exponent (`1.5E1` is 15).
    pub fn parse_json_number(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let not_a_number = || Invalid(format!("{raw:?} is not a decimal amount"));
        let (mantissa, exponent) = match raw.find(['e', 'E']) {
            Some(i) => (&raw[..i], Some(&raw[i + 1..])),
            None => (raw, None),
        };
        let digits = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !all_digits(int)
            || !all_digits(frac)
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(not_a_number());
        }
        let value = match exponent {
            None => Decimal::from_str_exact(raw).map_err(|_| not_a_number())?,
            Some(exp) => {
                let e = exp.strip_prefix(['-', '+']).unwrap_or(exp);
                if e.is_empty() || !all_digits(e) || e.len() > 3 {
                    return Err(not_a_number());
                }
                Decimal::from_scientific(raw).map_err(|_| not_a_number())?
            }
        };
        Self::from_decimal(value)
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, Invalid> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(Invalid(format!("must not be negative, got {value}")));
        }
        let value = value.normalize();
        if value.scale() > 2 {
            return Err(Invalid(format!(
                "must have at most two decimal places, got {value}"
            )));
        }
        if value >= Decimal::from(1_000_000_000_000_i64) {
            return Err(Invalid(format!("must be below 1000000000000, got {value}")));
        }
        let mut value = value.abs();
        value.rescale(2);
        Ok(Self(value))
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    /// `self × quantity`, exactly. None if the product leaves the money range.
    pub fn times(self, quantity: i32) -> Option<Money> {
        self.0
            .checked_mul(Decimal::from(quantity))
            .and_then(|v| Self::from_decimal(v).ok())
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0
            .checked_add(other.0)
            .and_then(|v| Self::from_decimal(v).ok())
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision::serialize(&self.0.normalize(), s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // With serde_json's arbitrary_precision a Number keeps its digits, so
        // 0.1 arrives as "0.1" and never as the nearest binary float.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => Money::parse_json_number(&n.to_string()),
            serde_json::Value::String(s) => Money::parse(&s),
            other => Err(Invalid(format!(
                "must be an amount as a number or a string, got {other}"
            ))),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// Write a NUMERIC amount read from the database as an exact JSON number,
/// without trailing zeros (`10.50` → `10.5`), the way [`Money`] is written.
pub fn serialize_amount<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    rust_decimal::serde::arbitrary_precision::serialize(&value.normalize(), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn an_amount_with_two_decimals_is_kept_exactly() {
        assert_eq!(m("109.97").to_string(), "109.97");
        assert_eq!(m("0.10").amount(), Decimal::new(10, 2));
    }

    #[test]
    fn trailing_zeros_beyond_two_decimals_are_accepted() {
        assert_eq!(m("1.500"), m("1.5"));
    }

    #[test]
    fn three_significant_decimals_are_rejected() {
        assert!(Money::parse("1.005").is_err());
    }

    #[test]
    fn a_negative_amount_is_rejected_but_negative_zero_is_zero() {
        assert!(Money::parse("-0.01").is_err());
        assert_eq!(m("-0"), Money::ZERO);
    }

    #[test]
    fn an_amount_of_a_trillion_is_rejected() {
        assert!(Money::parse("1000000000000").is_err());
        assert!(Money::parse("999999999999.99").is_ok());
    }

    #[test]
    fn a_json_number_in_exponent_notation_is_read_exactly_but_not_a_string() {
        let n = |s: &str| Money::parse_json_number(s);
        assert_eq!(n("1.5E1"), Ok(m("15")));
        assert_eq!(n("1999e-2"), Ok(m("19.99")));
        assert!(n("1e-3").is_err());
        assert!(Money::parse("1e3").is_err());
    }

    #[test]
    fn text_that_is_not_a_number_is_rejected() {
        for s in [
            "", "abc", "NaN", "1,5", "0x10", "1_0", "19_99", ".5", "5.", "1e", "--1", "+",
        ] {
            assert!(Money::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn a_json_number_is_read_without_float_rounding() {
        let v: Money = serde_json::from_str("0.1").unwrap();
        assert_eq!(v.amount(), Decimal::new(10, 2));
        let sum = m("0.1").checked_add(m("0.2")).unwrap();
        assert_eq!(sum, m("0.3"));
    }

    #[test]
    fn a_json_string_is_accepted_and_a_bool_is_not() {
        assert_eq!(
            serde_json::from_str::<Money>("\"19.99\"").unwrap(),
            m("19.99")
        );
        assert!(serde_json::from_str::<Money>("true").is_err());
    }

    #[test]
    fn money_is_written_as_an_exact_json_number() {
        assert_eq!(serde_json::to_string(&m("109.97")).unwrap(), "109.97");
        assert_eq!(serde_json::to_string(&m("10.50")).unwrap(), "10.5");
    }

    #[test]
    fn multiplying_by_a_quantity_is_exact() {
        assert_eq!(m("33.33").times(3), Some(m("99.99")));
        assert_eq!(m("999999999999.99").times(2), None);
    }
}
