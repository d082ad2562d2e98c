//! ISO 3166-1 alpha-2 country codes and EU membership.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{InvalidValue, excerpt};

/// All 249 officially assigned ISO 3166-1 alpha-2 codes, sorted.
///
/// User-assigned codes (`XK` for Kosovo, `EU`) and exceptionally reserved ones (`UK`, `EL`)
/// are not in it.
pub const COUNTRY_CODES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The 27 EU member states as of 2026, by ISO code (Greece is `GR` here, `EL` in VAT ids).
pub const EU_MEMBER_STATES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// An officially assigned ISO 3166-1 alpha-2 country code, uppercase: `DE`, `GR`, `GB`.
///
/// Lowercase is refused rather than fixed up; the common mix-ups (`UK`, `EL`) are refused
/// with a hint at the right code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(&'static str);

impl CountryCode {
    /// Checks that `s` is an assigned ISO 3166-1 alpha-2 code.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(InvalidValue::new(format!(
                "country `{}` must be two uppercase letters (ISO 3166-1 alpha-2)",
                excerpt(s)
            )));
        }
        match s {
            "EL" => {
                return Err(InvalidValue::new(
                    "`EL` is the VAT prefix for Greece; its ISO 3166-1 country code is `GR`",
                ));
            }
            "UK" => {
                return Err(InvalidValue::new(
                    "`UK` is not an ISO 3166-1 code; the United Kingdom is `GB`",
                ));
            }
            _ => {}
        }
        COUNTRY_CODES
            .binary_search(&s)
            .map(|i| Self(COUNTRY_CODES[i]))
            .map_err(|_| {
                InvalidValue::new(format!("`{s}` is not an ISO 3166-1 alpha-2 country code"))
            })
    }

    /// The code.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// A code known at compile time to be in [`COUNTRY_CODES`] (a unit test checks every use).
    pub(crate) const fn known(code: &'static str) -> Self {
        Self(code)
    }

    /// Whether the country is one of the 27 EU member states (2026). Special territories
    /// (Canary Islands, Åland, ...) that have their own ISO codes are not.
    pub fn is_eu(&self) -> bool {
        EU_MEMBER_STATES.binary_search(&self.0).is_ok()
    }

    /// The prefix this country's VAT ids carry: the ISO code, except `EL` for Greece.
    pub fn vat_prefix(&self) -> &'static str {
        if self.0 == "GR" { "EL" } else { self.0 }
    }
}

string_value!(CountryCode);

impl JsonSchema for CountryCode {
    fn schema_name() -> Cow<'static, str> {
        "CountryCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "ISO 3166-1 alpha-2 country code, uppercase (Greece is GR, the United Kingdom GB).",
            "type": "string",
            "enum": COUNTRY_CODES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_complete_and_consistent() {
        assert_eq!(COUNTRY_CODES.len(), 249);
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(EU_MEMBER_STATES.len(), 27);
        assert!(EU_MEMBER_STATES.windows(2).all(|w| w[0] < w[1]));
        assert!(EU_MEMBER_STATES.iter().all(|c| COUNTRY_CODES.contains(c)));
    }

    #[test]
    fn eu_membership() {
        for eu in ["DE", "FR", "GR", "HR", "BG", "RO", "CY", "IE"] {
            assert!(CountryCode::parse(eu).expect(eu).is_eu(), "{eu}");
        }
        for not_eu in ["GB", "CH", "NO", "IS", "LI", "US", "AX", "TR", "UA"] {
            assert!(
                !CountryCode::parse(not_eu).expect(not_eu).is_eu(),
                "{not_eu}"
            );
        }
    }

    #[test]
    fn greece_has_a_different_vat_prefix() {
        assert_eq!(CountryCode::parse("GR").expect("GR").vat_prefix(), "EL");
        assert_eq!(CountryCode::parse("DE").expect("DE").vat_prefix(), "DE");
        let err = CountryCode::parse("EL").expect_err("EL");
        assert!(err.reason().contains("`GR`"), "{err}");
    }

    #[test]
    fn rejects_bad_codes_with_reasons() {
        assert!(
            CountryCode::parse("UK")
                .expect_err("UK")
                .reason()
                .contains("`GB`")
        );
        assert_eq!(
            CountryCode::parse("de").expect_err("lowercase").reason(),
            "country `de` must be two uppercase letters (ISO 3166-1 alpha-2)"
        );
        assert_eq!(
            CountryCode::parse("XK").expect_err("kosovo").reason(),
            "`XK` is not an ISO 3166-1 alpha-2 country code"
        );
        assert!(CountryCode::parse("DEU").is_err());
        assert!(CountryCode::parse("").is_err());
    }
}
