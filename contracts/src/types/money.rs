//! Money amounts and tax rates: exact decimals, written as JSON strings.
//!
//! Floats lose cents (`0.1 + 0.2`), and JSON numbers are floats to most parsers, so every
//! amount travels as a decimal string (`"19.99"`) and is held as a [`Decimal`]. The scale is
//! kept as written: `"12.50"` stays `"12.50"` on the way back out.

use std::borrow::Cow;

use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{CurrencyCode, InvalidValue, excerpt};

/// Checks the `digits[.digits]` shape and parses; `what` names the value in errors.
fn parse_plain_decimal(
    what: &str,
    s: &str,
    max_int_digits: usize,
    max_frac_digits: usize,
) -> Result<Decimal, InvalidValue> {
    if let Some(rest) = s.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(InvalidValue::new(format!(
            "{what} {s} is negative; it must be 0 or more"
        )));
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let well_formed = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        // "5." and ".5" are not plain decimals: a dot needs digits on both sides.
        && (frac.is_empty() != s.contains('.'));
    if !well_formed {
        return Err(InvalidValue::new(format!(
            "{what} `{}` is not a plain decimal like \"19.99\" (digits, optionally a dot and more digits)",
            excerpt(s)
        )));
    }
    let significant_int = int.trim_start_matches('0').len();
    if significant_int > max_int_digits || frac.len() > max_frac_digits {
        return Err(InvalidValue::new(format!(
            "{what} {} is out of range: at most {max_int_digits} digits before and {max_frac_digits} after the dot",
            excerpt(s)
        )));
    }
    s.parse::<Decimal>()
        .map_err(|e| InvalidValue::new(format!("{what} {} is not a decimal: {e}", excerpt(s))))
}

/// A non-negative amount of money in the message's currency, e.g. `"19.99"`.
///
/// At most 15 digits before the dot and 8 after (unit prices may be more precise than the
/// currency's minor unit; totals are checked against it by payload validation). Negative
/// amounts are refused: discounts, refunds and credit notes are positive amounts in fields
/// whose name says which way the money goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(Decimal);

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);
    /// Digits allowed before the decimal point.
    pub const MAX_INT_DIGITS: usize = 15;
    /// Digits allowed after the decimal point.
    pub const MAX_FRAC_DIGITS: usize = 8;

    /// Parses a decimal string such as `"19.99"`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        parse_plain_decimal("amount", s, Self::MAX_INT_DIGITS, Self::MAX_FRAC_DIGITS).map(Self)
    }

    /// Wraps a decimal computed in code, with the same checks as [`Amount::parse`].
    pub fn new(value: Decimal) -> Result<Self, InvalidValue> {
        Self::parse(&value.to_string())
    }

    /// The value.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// Whether the amount is zero (at any scale).
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Whether the amount is expressible in `currency`'s minor unit (`12.345` is not in EUR,
    /// `1200.00` is in JPY). Currencies without minor units (funds, metals) accept anything.
    pub fn fits_minor_units(self, currency: CurrencyCode) -> bool {
        currency
            .minor_units()
            .is_none_or(|units| self.0.normalize().scale() <= u32::from(units))
    }

    /// The wire form (scale kept as given).
    pub fn as_string(&self) -> String {
        self.0.to_string()
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Amount {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<Decimal> for Amount {
    type Error = InvalidValue;

    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Amount> for Decimal {
    fn from(value: Amount) -> Decimal {
        value.0
    }
}

impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Strings only: a JSON number has already been through a float in many producers.
        let raw = <Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Non-negative amount of money in the message's currency, as a decimal string (never a JSON number): up to 15 digits, optionally a dot and up to 8 digits. The scale is kept as written.",
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?$",
            "examples": ["19.99", "0.00"]
        })
    }
}

/// A tax rate in percent, from 0 to 100: `"19"`, `"7.7"`, `"0"`. A string like [`Amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaxRate(Decimal);

impl TaxRate {
    /// Parses a percentage such as `"19"` or `"5.5"`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let value = parse_plain_decimal("tax rate", s, 3, 4)?;
        if value > Decimal::ONE_HUNDRED {
            return Err(InvalidValue::new(format!(
                "tax rate {s} is above 100 percent"
            )));
        }
        Ok(Self(value))
    }

    /// The rate in percent.
    pub fn percent(self) -> Decimal {
        self.0
    }
}

impl std::fmt::Display for TaxRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for TaxRate {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for TaxRate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TaxRate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for TaxRate {
    fn schema_name() -> Cow<'static, str> {
        "TaxRate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Tax rate in percent (0 to 100) as a decimal string: \"19\", \"5.5\", \"0\".",
            "type": "string",
            "pattern": "^[0-9]{1,3}(\\.[0-9]{1,4})?$",
            "examples": ["19", "7.7"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_and_keep_their_scale() {
        for s in [
            "0",
            "0.00",
            "19.99",
            "12.50",
            "1000000",
            "0.00012345",
            "999999999999999.99999999",
        ] {
            let a = Amount::parse(s).expect(s);
            assert_eq!(a.as_string(), s);
            assert_eq!(
                serde_json::to_string(&a).expect("encode"),
                format!("\"{s}\"")
            );
        }
        assert_eq!(
            Amount::parse("12.50").expect("a"),
            Amount::parse("12.5").expect("b")
        );
        assert!(Amount::parse("0.00").expect("zero").is_zero());
        assert_eq!(
            Amount::parse("007.5").expect("leading zeros").as_string(),
            "7.5"
        );
    }

    #[test]
    fn negative_amounts_say_so() {
        assert_eq!(
            Amount::parse("-1.00").expect_err("negative").reason(),
            "amount -1.00 is negative; it must be 0 or more"
        );
        assert!(Amount::parse("-0").is_err());
        assert!(Amount::new(Decimal::NEGATIVE_ONE).is_err());
    }

    #[test]
    fn malformed_amounts() {
        for s in [
            "", ".5", "5.", "1,00", "1e3", "+1", "1.2.3", " 1", "NaN", "--1", "１",
        ] {
            let err = Amount::parse(s).expect_err(s);
            assert!(err.reason().contains("plain decimal"), "{s}: {err}");
        }
        assert!(
            Amount::parse("1000000000000000")
                .expect_err("16 digits")
                .reason()
                .contains("out of range")
        );
        assert!(Amount::parse("0.123456789").is_err());
    }

    #[test]
    fn json_numbers_are_refused() {
        let err = serde_json::from_str::<Amount>("12.5").expect_err("number");
        assert!(
            err.to_string().contains("expected a string")
                || err.to_string().contains("invalid type"),
            "{err}"
        );
        let ok: Amount = serde_json::from_str("\"12.5\"").expect("string");
        assert_eq!(ok.as_string(), "12.5");
    }

    #[test]
    fn minor_units() {
        let eur = CurrencyCode::parse("EUR").expect("EUR");
        let jpy = CurrencyCode::parse("JPY").expect("JPY");
        let kwd = CurrencyCode::parse("KWD").expect("KWD");
        let xau = CurrencyCode::parse("XAU").expect("XAU");
        let a = |s: &str| Amount::parse(s).expect(s);
        assert!(a("12.34").fits_minor_units(eur));
        assert!(a("12.3400").fits_minor_units(eur));
        assert!(!a("12.345").fits_minor_units(eur));
        assert!(a("1200.00").fits_minor_units(jpy));
        assert!(!a("1200.5").fits_minor_units(jpy));
        assert!(a("1.234").fits_minor_units(kwd));
        assert!(a("1.23456").fits_minor_units(xau));
    }

    #[test]
    fn tax_rates() {
        for s in ["0", "19", "7.7", "5.5", "100", "8.1"] {
            assert_eq!(TaxRate::parse(s).expect(s).to_string(), s);
        }
        assert!(
            TaxRate::parse("100.01")
                .expect_err("above")
                .reason()
                .contains("above 100")
        );
        assert!(
            TaxRate::parse("-7")
                .expect_err("neg")
                .reason()
                .contains("negative")
        );
        assert!(TaxRate::parse("19%").is_err());
        assert!(TaxRate::parse("1000").is_err());
    }
}
