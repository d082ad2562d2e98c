//! VAT identification numbers: the 27 EU member states, Northern Ireland (XI), the United
//! Kingdom, Switzerland and Norway.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{CountryCode, InvalidValue, excerpt};

/// A VAT identification number in normalised form: prefix and body without spaces, dots or
/// dashes, uppercase (`DE123456789`, `NL123456789B01`, `CHE123456789`, `NO123456789MVA`).
///
/// Parsing checks the country's format (length, digits, letters in fixed places), not check
/// digits and not registration: whether the number exists is for VIES (or the UK/Swiss
/// registers) to say, and invoicing asks them before applying a reverse charge.
///
/// Greek ids use the prefix `EL` (the country code is `GR`); Northern Ireland's `XI` ids are
/// UK numbers that take part in EU rules for goods. Swiss UIDs are written
/// `CHE-123.456.789 MWST`; the `MWST`/`TVA`/`IVA` suffix is dropped when normalising.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VatId {
    id: String,
    country: CountryCode,
}

/// The format of one prefix's VAT ids.
struct Rule {
    prefix: &'static str,
    country_name: &'static str,
    country: CountryCode,
    /// What follows the prefix, for the error message.
    format: &'static str,
    /// Checks what follows the prefix (already normalised).
    check: fn(&str) -> bool,
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn digits_in(s: &str, lengths: &[usize]) -> bool {
    lengths.iter().any(|&n| digits(s, n))
}

fn is_upper(b: u8) -> bool {
    b.is_ascii_uppercase()
}

fn check_es(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 9
        && (is_upper(b[0]) || b[0].is_ascii_digit())
        && s[1..8].bytes().all(|c| c.is_ascii_digit())
        && (is_upper(b[8]) || b[8].is_ascii_digit())
        && (is_upper(b[0]) || is_upper(b[8]))
}

fn check_fr(s: &str) -> bool {
    let key_char = |c: u8| c.is_ascii_digit() || (is_upper(c) && c != b'I' && c != b'O');
    s.len() == 11 && s.bytes().take(2).all(key_char) && digits(&s[2..], 9)
}

fn check_ie(s: &str) -> bool {
    let b = s.as_bytes();
    // Current form: 7 digits, a letter A-W, optionally a second letter A-I.
    let current = (s.len() == 8 || s.len() == 9)
        && digits(&s[..7], 7)
        && (b'A'..=b'W').contains(&b[7])
        && (s.len() == 8 || (b'A'..=b'I').contains(&b[8]));
    // Old form: digit, letter or + or *, 5 digits, letter A-W.
    let old = s.len() == 8
        && b[0].is_ascii_digit()
        && (is_upper(b[1]) || b[1] == b'+' || b[1] == b'*')
        && digits(&s[2..7], 5)
        && (b'A'..=b'W').contains(&b[7]);
    current || old
}

fn check_gb(s: &str) -> bool {
    digits_in(s, &[9, 12])
        || (s.len() == 5 && (s.starts_with("GD") || s.starts_with("HA")) && digits(&s[2..], 3))
}

const RULES: &[Rule] = &[
    Rule {
        prefix: "AT",
        country_name: "Austria",
        country: CountryCode::known("AT"),
        format: "U and 8 digits",
        check: |s| s.len() == 9 && s.starts_with('U') && digits(&s[1..], 8),
    },
    Rule {
        prefix: "BE",
        country_name: "Belgium",
        country: CountryCode::known("BE"),
        format: "10 digits starting with 0 or 1 (old 9-digit numbers take a leading 0)",
        check: |s| digits(s, 10) && (s.starts_with('0') || s.starts_with('1')),
    },
    Rule {
        prefix: "BG",
        country_name: "Bulgaria",
        country: CountryCode::known("BG"),
        format: "9 or 10 digits",
        check: |s| digits_in(s, &[9, 10]),
    },
    Rule {
        prefix: "CY",
        country_name: "Cyprus",
        country: CountryCode::known("CY"),
        format: "8 digits and a letter",
        check: |s| s.len() == 9 && digits(&s[..8], 8) && is_upper(s.as_bytes()[8]),
    },
    Rule {
        prefix: "CZ",
        country_name: "Czechia",
        country: CountryCode::known("CZ"),
        format: "8, 9 or 10 digits",
        check: |s| digits_in(s, &[8, 9, 10]),
    },
    Rule {
        prefix: "DE",
        country_name: "Germany",
        country: CountryCode::known("DE"),
        format: "9 digits",
        check: |s| digits(s, 9),
    },
    Rule {
        prefix: "DK",
        country_name: "Denmark",
        country: CountryCode::known("DK"),
        format: "8 digits",
        check: |s| digits(s, 8),
    },
    Rule {
        prefix: "EE",
        country_name: "Estonia",
        country: CountryCode::known("EE"),
        format: "9 digits",
        check: |s| digits(s, 9),
    },
    Rule {
        prefix: "EL",
        country_name: "Greece",
        country: CountryCode::known("GR"),
        format: "9 digits",
        check: |s| digits(s, 9),
    },
    Rule {
        prefix: "ES",
        country_name: "Spain",
        country: CountryCode::known("ES"),
        format: "9 characters: a letter or digit, 7 digits, a letter or digit, with at least one letter",
        check: check_es,
    },
    Rule {
        prefix: "FI",
        country_name: "Finland",
        country: CountryCode::known("FI"),
        format: "8 digits",
        check: |s| digits(s, 8),
    },
    Rule {
        prefix: "FR",
        country_name: "France",
        country: CountryCode::known("FR"),
        format: "2 letters or digits (not I or O) and 9 digits",
        check: check_fr,
    },
    Rule {
        prefix: "HR",
        country_name: "Croatia",
        country: CountryCode::known("HR"),
        format: "11 digits",
        check: |s| digits(s, 11),
    },
    Rule {
        prefix: "HU",
        country_name: "Hungary",
        country: CountryCode::known("HU"),
        format: "8 digits",
        check: |s| digits(s, 8),
    },
    Rule {
        prefix: "IE",
        country_name: "Ireland",
        country: CountryCode::known("IE"),
        format: "7 digits and 1 or 2 letters (1234567T, 1234567WA), or the old form digit, letter or + or *, 5 digits, letter",
        check: check_ie,
    },
    Rule {
        prefix: "IT",
        country_name: "Italy",
        country: CountryCode::known("IT"),
        format: "11 digits",
        check: |s| digits(s, 11),
    },
    Rule {
        prefix: "LT",
        country_name: "Lithuania",
        country: CountryCode::known("LT"),
        format: "9 or 12 digits",
        check: |s| digits_in(s, &[9, 12]),
    },
    Rule {
        prefix: "LU",
        country_name: "Luxembourg",
        country: CountryCode::known("LU"),
        format: "8 digits",
        check: |s| digits(s, 8),
    },
    Rule {
        prefix: "LV",
        country_name: "Latvia",
        country: CountryCode::known("LV"),
        format: "11 digits",
        check: |s| digits(s, 11),
    },
    Rule {
        prefix: "MT",
        country_name: "Malta",
        country: CountryCode::known("MT"),
        format: "8 digits",
        check: |s| digits(s, 8),
    },
    Rule {
        prefix: "NL",
        country_name: "the Netherlands",
        country: CountryCode::known("NL"),
        format: "9 digits, B and 2 digits",
        check: |s| s.len() == 12 && digits(&s[..9], 9) && &s[9..10] == "B" && digits(&s[10..], 2),
    },
    Rule {
        prefix: "PL",
        country_name: "Poland",
        country: CountryCode::known("PL"),
        format: "10 digits",
        check: |s| digits(s, 10),
    },
    Rule {
        prefix: "PT",
        country_name: "Portugal",
        country: CountryCode::known("PT"),
        format: "9 digits",
        check: |s| digits(s, 9),
    },
    Rule {
        prefix: "RO",
        country_name: "Romania",
        country: CountryCode::known("RO"),
        format: "2 to 10 digits, not starting with 0",
        check: |s| (2..=10).any(|n| digits(s, n)) && !s.starts_with('0'),
    },
    Rule {
        prefix: "SE",
        country_name: "Sweden",
        country: CountryCode::known("SE"),
        format: "12 digits ending in 01",
        check: |s| digits(s, 12) && s.ends_with("01"),
    },
    Rule {
        prefix: "SI",
        country_name: "Slovenia",
        country: CountryCode::known("SI"),
        format: "8 digits",
        check: |s| digits(s, 8),
    },
    Rule {
        prefix: "SK",
        country_name: "Slovakia",
        country: CountryCode::known("SK"),
        format: "10 digits",
        check: |s| digits(s, 10),
    },
    Rule {
        prefix: "XI",
        country_name: "Northern Ireland",
        country: CountryCode::known("GB"),
        format: "9 or 12 digits, or GD or HA and 3 digits",
        check: check_gb,
    },
    Rule {
        prefix: "GB",
        country_name: "the United Kingdom",
        country: CountryCode::known("GB"),
        format: "9 or 12 digits, or GD or HA and 3 digits",
        check: check_gb,
    },
    Rule {
        prefix: "CH",
        country_name: "Switzerland",
        country: CountryCode::known("CH"),
        format: "E and 9 digits, optionally followed by MWST, TVA or IVA (CHE-123.456.789 MWST)",
        check: |s| s.len() == 10 && s.starts_with('E') && digits(&s[1..], 9),
    },
    Rule {
        prefix: "NO",
        country_name: "Norway",
        country: CountryCode::known("NO"),
        format: "9 digits and MVA (NO 123 456 789 MVA)",
        check: |s| s.len() == 12 && digits(&s[..9], 9) && s.ends_with("MVA"),
    },
];

/// Longest input accepted before normalising (`CHE-123.456.789 MWST` is 20).
const MAX_INPUT_LEN: usize = 40;

impl VatId {
    /// Normalises (drops spaces, dots and dashes; uppercases) and checks the format of the
    /// country named by the prefix. The error names the country and the rule.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.chars().count() > MAX_INPUT_LEN {
            return Err(InvalidValue::new(format!(
                "VAT id `{}` is longer than {MAX_INPUT_LEN} characters",
                excerpt(s)
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '+' | '*')))
        {
            return Err(InvalidValue::new(format!(
                "VAT id `{s}` contains `{}`; only letters, digits, spaces, dots and dashes are allowed",
                c.escape_default()
            )));
        }
        let normalised: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let Some(prefix) = normalised.get(..2).filter(|p| p.bytes().all(is_upper)) else {
            return Err(InvalidValue::new(format!(
                "VAT id `{s}` must start with a two-letter country prefix (DE, FR, EL, ...)"
            )));
        };
        if prefix == "GR" {
            return Err(InvalidValue::new(format!(
                "VAT id `{s}`: Greek VAT ids use the prefix EL, not GR"
            )));
        }
        let Some(rule) = RULES.iter().find(|r| r.prefix == prefix) else {
            return Err(InvalidValue::new(format!(
                "VAT id `{s}`: prefix {prefix} is not supported; expected an EU member state \
                 (EL for Greece), XI, GB, CH or NO"
            )));
        };
        let mut body = &normalised[2..];
        if prefix == "CH" {
            body = ["MWST", "TVA", "IVA"]
                .iter()
                .find_map(|suffix| body.strip_suffix(suffix))
                .unwrap_or(body);
        }
        if !(rule.check)(body) {
            return Err(InvalidValue::new(format!(
                "VAT id `{s}` does not match the format for {} ({}): {} followed by {}",
                rule.country_name, rule.prefix, rule.prefix, rule.format
            )));
        }
        Ok(Self {
            id: format!("{prefix}{body}"),
            country: rule.country,
        })
    }

    /// The normalised id, prefix included.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The two-letter prefix as written in the id: `DE`, `EL` for Greece, `XI` for
    /// Northern Ireland, `CH` for Switzerland (whose ids start `CHE`).
    pub fn country_prefix(&self) -> &str {
        &self.id[..2]
    }

    /// The ISO country the id belongs to: `GR` for `EL`, `GB` for `XI`.
    pub fn country(&self) -> CountryCode {
        self.country
    }
}

string_value!(VatId);

impl JsonSchema for VatId {
    fn schema_name() -> Cow<'static, str> {
        "VatId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "VAT identification number with its country prefix (EU member states with EL for Greece, XI, GB, CH, NO). Spaces, dots and dashes are ignored and letters uppercased; the country's format is checked. Serialised normalised: DE123456789, NL123456789B01, CHE123456789, NO123456789MVA.",
            "type": "string",
            "minLength": 4,
            "maxLength": 40,
            "pattern": "^[A-Za-z]{2}[A-Za-z0-9 .+*-]+$",
            "examples": ["DE123456789"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, normalised: &str) {
        let id = VatId::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(id.as_str(), normalised, "{input}");
    }

    fn bad(input: &str, expect_in_reason: &str) {
        let err = VatId::parse(input).expect_err(input);
        assert!(err.reason().contains(expect_in_reason), "{input}: {err}");
    }

    #[test]
    fn every_rule_names_a_real_country() {
        for rule in RULES {
            assert!(
                CountryCode::parse(rule.country.as_str()).is_ok(),
                "{}",
                rule.prefix
            );
        }
        // Every EU member state has a rule, under its VAT prefix.
        for code in super::super::EU_MEMBER_STATES {
            let country = CountryCode::parse(code).expect(code);
            assert!(
                RULES.iter().any(|r| r.prefix == country.vat_prefix()),
                "{code}"
            );
        }
    }

    #[test]
    fn accepts_every_eu_format() {
        ok("ATU12345678", "ATU12345678");
        ok("BE0123456789", "BE0123456789");
        ok("BE1123456789", "BE1123456789");
        ok("BG123456789", "BG123456789");
        ok("BG1234567890", "BG1234567890");
        ok("CY12345678X", "CY12345678X");
        ok("CZ12345678", "CZ12345678");
        ok("CZ123456789", "CZ123456789");
        ok("CZ1234567890", "CZ1234567890");
        ok("DE123456789", "DE123456789");
        ok("DK12345678", "DK12345678");
        ok("EE123456789", "EE123456789");
        ok("EL123456789", "EL123456789");
        ok("ESX1234567L", "ESX1234567L");
        ok("ES12345678Z", "ES12345678Z");
        ok("ESA12345674", "ESA12345674");
        ok("FI12345678", "FI12345678");
        ok("FR40303265045", "FR40303265045");
        ok("FRK7399859412", "FRK7399859412");
        ok("HR12345678901", "HR12345678901");
        ok("HU12345678", "HU12345678");
        ok("IE1234567T", "IE1234567T");
        ok("IE1234567WA", "IE1234567WA");
        ok("IE8Z49289F", "IE8Z49289F");
        ok("IE7+54321W", "IE7+54321W");
        ok("IT12345678901", "IT12345678901");
        ok("LT123456789", "LT123456789");
        ok("LT123456789012", "LT123456789012");
        ok("LU12345678", "LU12345678");
        ok("LV12345678901", "LV12345678901");
        ok("MT12345678", "MT12345678");
        ok("NL123456789B01", "NL123456789B01");
        ok("PL1234567890", "PL1234567890");
        ok("PT123456789", "PT123456789");
        ok("RO12", "RO12");
        ok("RO1234567890", "RO1234567890");
        ok("SE123456789001", "SE123456789001");
        ok("SI12345678", "SI12345678");
        ok("SK1234567890", "SK1234567890");
    }

    #[test]
    fn accepts_gb_xi_ch_no() {
        ok("GB123456789", "GB123456789");
        ok("GB123456789012", "GB123456789012");
        ok("GBGD001", "GBGD001");
        ok("GBHA599", "GBHA599");
        ok("XI123456789", "XI123456789");
        ok("CHE-123.456.789 MWST", "CHE123456789");
        ok("CHE-123.456.789 TVA", "CHE123456789");
        ok("CHE123456789", "CHE123456789");
        ok("NO 123 456 789 MVA", "NO123456789MVA");
    }

    #[test]
    fn normalises_spaces_dots_dashes_and_case() {
        ok("de 123 456 789", "DE123456789");
        ok("nl1234.56789-b01", "NL123456789B01");
        ok(" fr 40 303265045 ", "FR40303265045");
    }

    #[test]
    fn names_country_and_rule() {
        let err = VatId::parse("DE12345678").expect_err("8 digits");
        assert_eq!(
            err.reason(),
            "VAT id `DE12345678` does not match the format for Germany (DE): DE followed by 9 digits"
        );
        bad("ATU1234567", "Austria (AT): AT followed by U and 8 digits");
        bad("AT123456789", "Austria");
        bad("BE2123456789", "Belgium");
        bad("BE123456789", "Belgium");
        bad("CY123456789", "Cyprus");
        bad("ES123456789", "Spain");
        bad("FRIO123456789", "France");
        bad("FR1234567890", "France");
        bad("IE1234567", "Ireland");
        bad("IE1234567WZ", "Ireland");
        bad(
            "NL123456789A01",
            "the Netherlands (NL): NL followed by 9 digits, B and 2 digits",
        );
        bad("NL123456789B1", "the Netherlands");
        bad("RO0123", "Romania");
        bad("RO12345678901", "Romania");
        bad("SE123456789012", "Sweden");
        bad("GB12345678", "the United Kingdom");
        bad("GBGD12", "the United Kingdom");
        bad("CHE-123.456.78", "Switzerland");
        bad("CH123456789", "Switzerland");
        bad(
            "NO123456789",
            "Norway (NO): NO followed by 9 digits and MVA",
        );
        bad("PL123456789O", "Poland");
    }

    #[test]
    fn refuses_greek_iso_code_unknown_prefix_and_junk() {
        bad("GR123456789", "use the prefix EL, not GR");
        bad("US123456789", "prefix US is not supported");
        bad("123456789", "must start with a two-letter country prefix");
        bad("", "must start with a two-letter country prefix");
        bad("D", "must start with a two-letter country prefix");
        bad("DE123/456/789", "contains `/`");
        bad(&"DE1".repeat(20), "longer than 40");
    }

    #[test]
    fn prefix_and_country() {
        let el = VatId::parse("EL123456789").expect("EL");
        assert_eq!(el.country_prefix(), "EL");
        assert_eq!(el.country().as_str(), "GR");
        assert!(el.country().is_eu());
        let xi = VatId::parse("XI123456789").expect("XI");
        assert_eq!(xi.country_prefix(), "XI");
        assert_eq!(xi.country().as_str(), "GB");
        let ch = VatId::parse("CHE-123.456.789 MWST").expect("CH");
        assert_eq!(ch.country_prefix(), "CH");
        assert_eq!(ch.country().as_str(), "CH");
    }

    #[test]
    fn serde_normalises() {
        let id: VatId = serde_json::from_str("\"de 123 456 789\"").expect("decode");
        assert_eq!(
            serde_json::to_string(&id).expect("encode"),
            "\"DE123456789\""
        );
        let err = serde_json::from_str::<VatId>("\"DE1234\"").expect_err("short");
        assert!(err.to_string().contains("Germany"), "{err}");
    }
}
