//! GS1 Global Trade Item Numbers (EAN-8, UPC-A, EAN-13, GTIN-14).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{InvalidValue, excerpt};

/// A GTIN as printed under a barcode: 8 (EAN-8), 12 (UPC-A), 13 (EAN-13) or 14 (GTIN-14)
/// digits, the last being the GS1 mod-10 check digit, which is verified.
///
/// Kept exactly as given (no padding), because that is what marketplaces send back to us and
/// what an operator searches for. Compare across lengths with [`Gtin::to_gtin14`]: the EAN-13
/// `4006381333931` and the GTIN-14 `04006381333931` are the same item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin(String);

impl Gtin {
    /// Checks length, digits and check digit.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if let Some(c) = s.chars().find(|c| !c.is_ascii_digit()) {
            return Err(InvalidValue::new(format!(
                "GTIN `{}` contains `{}`; a GTIN is digits only",
                excerpt(s),
                c.escape_default()
            )));
        }
        if !matches!(s.len(), 8 | 12 | 13 | 14) {
            return Err(InvalidValue::new(format!(
                "GTIN `{}` has {} digits; a GTIN has 8, 12, 13 or 14",
                excerpt(s),
                s.len()
            )));
        }
        let (body, check) = s.split_at(s.len() - 1);
        let expected = check_digit(body);
        let given = check.as_bytes()[0] - b'0';
        if given != expected {
            return Err(InvalidValue::new(format!(
                "GTIN {s} has check digit {given}, expected {expected}"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    /// The GTIN as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 14-digit form (left-padded with zeros), for comparing GTINs of different lengths.
    pub fn to_gtin14(&self) -> String {
        format!("{:0>14}", self.0)
    }
}

/// GS1 mod-10: from the right, digits are weighted 3, 1, 3, 1, ...; the check digit brings the
/// sum up to a multiple of 10. Padding with leading zeros does not change it.
fn check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    // The remainder is below 10, so it fits.
    ((10 - sum % 10) % 10) as u8
}

string_value!(Gtin);

impl JsonSchema for Gtin {
    fn schema_name() -> Cow<'static, str> {
        "Gtin".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "GS1 GTIN (EAN-8, UPC-A, EAN-13 or GTIN-14) as printed: 8, 12, 13 or 14 digits; the last digit is the GS1 mod-10 check digit and is verified.",
            "type": "string",
            "pattern": "^([0-9]{8}|[0-9]{12,14})$",
            "examples": ["4006381333931"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_gtins_of_every_length() {
        for ok in [
            "4006381333931",  // EAN-13
            "96385074",       // EAN-8
            "036000291452",   // UPC-A
            "00012345600012", // GTIN-14
            "5901234123457",  // EAN-13 from the GS1 spec
            "04006381333931", // the EAN-13 above, padded
        ] {
            assert_eq!(Gtin::parse(ok).expect(ok).as_str(), ok, "kept as given");
        }
    }

    #[test]
    fn names_the_wrong_check_digit() {
        let err = Gtin::parse("4006381333932").expect_err("bad check digit");
        assert_eq!(
            err.reason(),
            "GTIN 4006381333932 has check digit 2, expected 1"
        );
        assert_eq!(
            Gtin::parse("96385075").expect_err("ean-8").reason(),
            "GTIN 96385075 has check digit 5, expected 4"
        );
        assert!(Gtin::parse("036000291453").is_err());
    }

    #[test]
    fn rejects_wrong_lengths_and_non_digits() {
        for bad in [
            "",
            "1234567",
            "400638133393",
            "40063813339311",
            "400638133393100",
        ] {
            // 12 digits of the EAN-13 body fail on the check digit, not on length.
            assert!(Gtin::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Gtin::parse("12345678901").expect_err("11").reason(),
            "GTIN `12345678901` has 11 digits; a GTIN has 8, 12, 13 or 14"
        );
        assert!(
            Gtin::parse("40063813339 1")
                .expect_err("space")
                .reason()
                .contains("digits only")
        );
        assert!(
            Gtin::parse("４００６３８１３３３９３１").is_err(),
            "full-width digits are not digits here"
        );
    }

    #[test]
    fn gtin14_pads_for_comparison() {
        let ean13 = Gtin::parse("4006381333931").expect("ean-13");
        let gtin14 = Gtin::parse("04006381333931").expect("gtin-14");
        assert_ne!(ean13, gtin14);
        assert_eq!(ean13.to_gtin14(), gtin14.to_gtin14());
        assert_eq!(
            Gtin::parse("96385074").expect("ean-8").to_gtin14(),
            "00000096385074"
        );
    }
}
