//! Contact details and languages: email addresses and locales.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{InvalidValue, excerpt};

/// An email address, checked for shape only: one `@`, a local part of 1–64 characters, a
/// domain with at least one dot and no empty labels, 254 characters at most, no whitespace.
///
/// Whether it receives mail is for the notification system to find out (it reports
/// `notification.failed`). Kept as given: the local part may be case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks the shape of an address.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let refuse = |why: &str| {
            Err(InvalidValue::new(format!(
                "email address `{}` {why}",
                excerpt(s)
            )))
        };
        if s.len() > 254 {
            return refuse("is longer than 254 characters");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("contains whitespace or control characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return refuse("has no `@`");
        };
        if domain.contains('@') {
            return refuse("has more than one `@`");
        }
        if local.is_empty() || local.len() > 64 {
            return refuse("needs 1 to 64 characters before the `@`");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels
                .iter()
                .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
        {
            return refuse("needs a domain like example.com after the `@`");
        }
        Ok(Self(s.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_value!(EmailAddress);

impl JsonSchema for EmailAddress {
    fn schema_name() -> Cow<'static, str> {
        "EmailAddress".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Email address (shape checked: local part, one @, a dotted domain).",
            "type": "string",
            "format": "email",
            "maxLength": 254,
            "examples": ["joerg.schaefer@example.de"]
        })
    }
}

/// A language for customer-facing text, as a BCP 47 tag of the common shape: a language
/// (2–3 lowercase letters), optionally a script (4 letters, titlecase) and a region
/// (2 uppercase letters or 3 digits): `de`, `de-DE`, `fr-CH`, `zh-Hant-TW`, `es-419`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locale(String);

impl Locale {
    /// Checks the tag's shape.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let refuse = |why: &str| {
            Err(InvalidValue::new(format!(
                "locale `{}` {why}; expected a BCP 47 tag like de-DE, fr or zh-Hant-TW",
                excerpt(s)
            )))
        };
        if s.contains('_') {
            return refuse("uses `_`; BCP 47 separates with `-`");
        }
        let mut parts = s.split('-');
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_lowercase()) {
            return refuse("must start with a 2-3 letter lowercase language code");
        }
        let mut rest: Vec<&str> = parts.collect();
        if let Some(script) = rest.first().copied().filter(|p| p.len() == 4) {
            let b = script.as_bytes();
            if !(b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_lowercase)) {
                return refuse("has a script that is not 4 letters in titlecase (Hant, Latn)");
            }
            rest.remove(0);
        }
        match rest.as_slice() {
            [] => {}
            [region]
                if (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase()))
                    || (region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit())) => {}
            _ => return refuse("has a region that is not 2 uppercase letters or 3 digits"),
        }
        Ok(Self(s.to_owned()))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language part: `de` for `de-AT`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

string_value!(Locale);

impl JsonSchema for Locale {
    fn schema_name() -> Cow<'static, str> {
        "Locale".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "BCP 47 language tag: language, optional script, optional region (de-DE, fr, zh-Hant-TW, es-419).",
            "type": "string",
            "pattern": "^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$",
            "examples": ["de-DE"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "a@b.de",
            "joerg.schaefer@example.de",
            "x+tag@mail.example.co.uk",
            "Jörg@müller.de",
        ] {
            assert_eq!(EmailAddress::parse(ok).expect(ok).as_str(), ok);
        }
        for (bad, why) in [
            ("", "has no `@`"),
            ("joerg", "has no `@`"),
            ("@example.de", "1 to 64 characters"),
            ("a@b@c.de", "more than one"),
            ("a@localhost", "domain"),
            ("a@.de", "domain"),
            ("a@-x.de", "domain"),
            ("a b@c.de", "whitespace"),
        ] {
            let err = EmailAddress::parse(bad).expect_err(bad);
            assert!(err.reason().contains(why), "{bad}: {err}");
        }
        assert!(EmailAddress::parse(&format!("{}@x.de", "a".repeat(65))).is_err());
    }

    #[test]
    fn locales() {
        for ok in [
            "de",
            "de-DE",
            "fr-CH",
            "zh-Hant-TW",
            "es-419",
            "sr-Latn",
            "fil-PH",
        ] {
            assert_eq!(Locale::parse(ok).expect(ok).as_str(), ok);
        }
        assert_eq!(Locale::parse("de-AT").expect("de-AT").language(), "de");
        for bad in [
            "",
            "DE",
            "de_DE",
            "de-de",
            "german",
            "de-DE-x",
            "zh-hant-TW",
            "e",
            "de-",
        ] {
            assert!(Locale::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Locale::parse("de_DE")
                .expect_err("underscore")
                .reason()
                .contains("`-`")
        );
    }
}
