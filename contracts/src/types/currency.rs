//! ISO 4217 currency codes.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{InvalidValue, excerpt};

/// Every active ISO 4217 code with its minor units (`None` where ISO says "N.A.": funds,
/// precious metals, `XTS`, `XXX`), sorted by code.
///
/// Source: ISO 4217 list one as published on 2026-01-01 (`XCG` replaced `ANG`, `ZWG` replaced
/// `ZWL`, `SLE` replaced `SLL`; `BGN` ended when Bulgaria adopted the euro on 2026-01-01).
/// Updating it is a contract change: regenerate the schemas.
pub const ACTIVE_CURRENCIES: &[(&str, Option<u8>)] = &[
    ("AED", Some(2)),
    ("AFN", Some(2)),
    ("ALL", Some(2)),
    ("AMD", Some(2)),
    ("AOA", Some(2)),
    ("ARS", Some(2)),
    ("AUD", Some(2)),
    ("AWG", Some(2)),
    ("AZN", Some(2)),
    ("BAM", Some(2)),
    ("BBD", Some(2)),
    ("BDT", Some(2)),
    ("BHD", Some(3)),
    ("BIF", Some(0)),
    ("BMD", Some(2)),
    ("BND", Some(2)),
    ("BOB", Some(2)),
    ("BOV", Some(2)),
    ("BRL", Some(2)),
    ("BSD", Some(2)),
    ("BTN", Some(2)),
    ("BWP", Some(2)),
    ("BYN", Some(2)),
    ("BZD", Some(2)),
    ("CAD", Some(2)),
    ("CDF", Some(2)),
    ("CHE", Some(2)),
    ("CHF", Some(2)),
    ("CHW", Some(2)),
    ("CLF", Some(4)),
    ("CLP", Some(0)),
    ("CNY", Some(2)),
    ("COP", Some(2)),
    ("COU", Some(2)),
    ("CRC", Some(2)),
    ("CUP", Some(2)),
    ("CVE", Some(2)),
    ("CZK", Some(2)),
    ("DJF", Some(0)),
    ("DKK", Some(2)),
    ("DOP", Some(2)),
    ("DZD", Some(2)),
    ("EGP", Some(2)),
    ("ERN", Some(2)),
    ("ETB", Some(2)),
    ("EUR", Some(2)),
    ("FJD", Some(2)),
    ("FKP", Some(2)),
    ("GBP", Some(2)),
    ("GEL", Some(2)),
    ("GHS", Some(2)),
    ("GIP", Some(2)),
    ("GMD", Some(2)),
    ("GNF", Some(0)),
    ("GTQ", Some(2)),
    ("GYD", Some(2)),
    ("HKD", Some(2)),
    ("HNL", Some(2)),
    ("HTG", Some(2)),
    ("HUF", Some(2)),
    ("IDR", Some(2)),
    ("ILS", Some(2)),
    ("INR", Some(2)),
    ("IQD", Some(3)),
    ("IRR", Some(2)),
    ("ISK", Some(0)),
    ("JMD", Some(2)),
    ("JOD", Some(3)),
    ("JPY", Some(0)),
    ("KES", Some(2)),
    ("KGS", Some(2)),
    ("KHR", Some(2)),
    ("KMF", Some(0)),
    ("KPW", Some(2)),
    ("KRW", Some(0)),
    ("KWD", Some(3)),
    ("KYD", Some(2)),
    ("KZT", Some(2)),
    ("LAK", Some(2)),
    ("LBP", Some(2)),
    ("LKR", Some(2)),
    ("LRD", Some(2)),
    ("LSL", Some(2)),
    ("LYD", Some(3)),
    ("MAD", Some(2)),
    ("MDL", Some(2)),
    ("MGA", Some(2)),
    ("MKD", Some(2)),
    ("MMK", Some(2)),
    ("MNT", Some(2)),
    ("MOP", Some(2)),
    ("MRU", Some(2)),
    ("MUR", Some(2)),
    ("MVR", Some(2)),
    ("MWK", Some(2)),
    ("MXN", Some(2)),
    ("MXV", Some(2)),
    ("MYR", Some(2)),
    ("MZN", Some(2)),
    ("NAD", Some(2)),
    ("NGN", Some(2)),
    ("NIO", Some(2)),
    ("NOK", Some(2)),
    ("NPR", Some(2)),
    ("NZD", Some(2)),
    ("OMR", Some(3)),
    ("PAB", Some(2)),
    ("PEN", Some(2)),
    ("PGK", Some(2)),
    ("PHP", Some(2)),
    ("PKR", Some(2)),
    ("PLN", Some(2)),
    ("PYG", Some(0)),
    ("QAR", Some(2)),
    ("RON", Some(2)),
    ("RSD", Some(2)),
    ("RUB", Some(2)),
    ("RWF", Some(0)),
    ("SAR", Some(2)),
    ("SBD", Some(2)),
    ("SCR", Some(2)),
    ("SDG", Some(2)),
    ("SEK", Some(2)),
    ("SGD", Some(2)),
    ("SHP", Some(2)),
    ("SLE", Some(2)),
    ("SOS", Some(2)),
    ("SRD", Some(2)),
    ("SSP", Some(2)),
    ("STN", Some(2)),
    ("SVC", Some(2)),
    ("SYP", Some(2)),
    ("SZL", Some(2)),
    ("THB", Some(2)),
    ("TJS", Some(2)),
    ("TMT", Some(2)),
    ("TND", Some(3)),
    ("TOP", Some(2)),
    ("TRY", Some(2)),
    ("TTD", Some(2)),
    ("TWD", Some(2)),
    ("TZS", Some(2)),
    ("UAH", Some(2)),
    ("UGX", Some(0)),
    ("USD", Some(2)),
    ("USN", Some(2)),
    ("UYI", Some(0)),
    ("UYU", Some(2)),
    ("UYW", Some(4)),
    ("UZS", Some(2)),
    ("VED", Some(2)),
    ("VES", Some(2)),
    ("VND", Some(0)),
    ("VUV", Some(0)),
    ("WST", Some(2)),
    ("XAD", Some(2)),
    ("XAF", Some(0)),
    ("XAG", None),
    ("XAU", None),
    ("XBA", None),
    ("XBB", None),
    ("XBC", None),
    ("XBD", None),
    ("XCD", Some(2)),
    ("XCG", Some(2)),
    ("XDR", None),
    ("XOF", Some(0)),
    ("XPD", None),
    ("XPF", Some(0)),
    ("XPT", None),
    ("XSU", None),
    ("XTS", None),
    ("XUA", None),
    ("XXX", None),
    ("YER", Some(2)),
    ("ZAR", Some(2)),
    ("ZMW", Some(2)),
    ("ZWG", Some(2)),
];

/// An ISO 4217 alphabetic currency code that is active today: `EUR`, `CHF`, `JPY`.
///
/// Three uppercase letters from [`ACTIVE_CURRENCIES`]; lowercase is refused rather than
/// fixed up, so the wire form is always canonical. Every amount in a message is in the
/// message's one currency: there is no per-amount currency to disagree with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyCode(&'static str);

impl CurrencyCode {
    /// The euro.
    pub const EUR: Self = Self("EUR");

    /// Checks that `s` is an active ISO 4217 code.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(InvalidValue::new(format!(
                "currency `{}` must be three uppercase letters (ISO 4217)",
                excerpt(s)
            )));
        }
        ACTIVE_CURRENCIES
            .binary_search_by(|(code, _)| (*code).cmp(s))
            .map(|i| Self(ACTIVE_CURRENCIES[i].0))
            .map_err(|_| {
                InvalidValue::new(format!("`{s}` is not an active ISO 4217 currency code"))
            })
    }

    /// The code.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// Digits after the decimal point in this currency's smallest unit (EUR 2, JPY 0,
    /// KWD 3), or `None` for codes that are not money (funds, metals, `XXX`).
    pub fn minor_units(&self) -> Option<u8> {
        ACTIVE_CURRENCIES
            .binary_search_by(|(code, _)| (*code).cmp(self.0))
            .ok()
            .and_then(|i| ACTIVE_CURRENCIES[i].1)
    }
}

string_value!(CurrencyCode);

impl JsonSchema for CurrencyCode {
    fn schema_name() -> Cow<'static, str> {
        "CurrencyCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let codes: Vec<&str> = ACTIVE_CURRENCIES.iter().map(|(code, _)| *code).collect();
        json_schema!({
            "description": "Active ISO 4217 alphabetic currency code, uppercase.",
            "type": "string",
            "enum": codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(ACTIVE_CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ACTIVE_CURRENCIES.iter().all(|(c, _)| c.len() == 3));
    }

    #[test]
    fn minor_units_of_the_currencies_we_sell_in() {
        for (code, units) in [
            ("EUR", 2),
            ("USD", 2),
            ("GBP", 2),
            ("CHF", 2),
            ("SEK", 2),
            ("DKK", 2),
            ("PLN", 2),
            ("CZK", 2),
            ("HUF", 2),
            ("NOK", 2),
            ("JPY", 0),
            ("ISK", 0),
            ("KWD", 3),
            ("CLF", 4),
        ] {
            assert_eq!(
                CurrencyCode::parse(code).expect(code).minor_units(),
                Some(units),
                "{code}"
            );
        }
        assert_eq!(
            CurrencyCode::parse("XAU").expect("gold").minor_units(),
            None
        );
        assert_eq!(CurrencyCode::EUR.minor_units(), Some(2));
    }

    #[test]
    fn rejects_lowercase_unknown_and_withdrawn_codes() {
        assert_eq!(
            CurrencyCode::parse("eur").expect_err("lowercase").reason(),
            "currency `eur` must be three uppercase letters (ISO 4217)"
        );
        assert!(CurrencyCode::parse("EURO").is_err());
        assert!(CurrencyCode::parse("").is_err());
        for withdrawn in ["DEM", "HRK", "ANG", "ZWL", "BGN"] {
            let err = CurrencyCode::parse(withdrawn).expect_err(withdrawn);
            assert_eq!(
                err.reason(),
                format!("`{withdrawn}` is not an active ISO 4217 currency code")
            );
        }
        assert!(CurrencyCode::parse("XCG").is_ok());
    }

    #[test]
    fn serde_uses_the_code() {
        let c: CurrencyCode = serde_json::from_str("\"SEK\"").expect("decode");
        assert_eq!(c.as_str(), "SEK");
        assert_eq!(serde_json::to_string(&c).expect("encode"), "\"SEK\"");
        assert!(serde_json::from_str::<CurrencyCode>("\"sek\"").is_err());
    }
}
