//! Identifiers we own or agree on with producers: SKUs, warehouses, stores.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{InvalidValue, excerpt};

/// A stock keeping unit: the merchant's own product code, shared by every store.
///
/// 1–64 characters, no whitespace and no control characters; otherwise free-form and
/// case-sensitive (`mug-blu` and `MUG-BLU` are different SKUs), kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    /// Maximum length in characters.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a SKU.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let len = s.chars().count();
        if len == 0 {
            return Err(InvalidValue::new("SKU is empty"));
        }
        if len > Self::MAX_LEN {
            return Err(InvalidValue::new(format!(
                "SKU `{}` is {len} characters long, at most {} are allowed",
                excerpt(s),
                Self::MAX_LEN
            )));
        }
        if let Some((pos, c)) = s
            .char_indices()
            .find(|(_, c)| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidValue::new(format!(
                "SKU `{}` contains {} at byte {pos}; SKUs have no whitespace or control characters",
                excerpt(s),
                c.escape_unicode()
            )));
        }
        Ok(Self(s.to_owned()))
    }

    /// The SKU as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_value!(Sku);

impl JsonSchema for Sku {
    fn schema_name() -> Cow<'static, str> {
        "Sku".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Stock keeping unit: 1-64 characters, no whitespace or control characters; case-sensitive.",
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": "^[^\\s\\u0000-\\u001F\\u007F-\\u009F]+$",
            "examples": ["MUG-BLU-350"]
        })
    }
}

/// Declares an identifier made of 1–64 characters from `[A-Za-z0-9_.-]`.
macro_rules! simple_id {
    ($(#[$meta:meta])* $name:ident, $what:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Maximum length in characters.
            pub const MAX_LEN: usize = 64;

            /// Checks and wraps the identifier.
            pub fn parse(s: &str) -> Result<Self, InvalidValue> {
                check_simple_id($what, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_value!($name);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": concat!($what, ": 1-64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`."),
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": "^[A-Za-z0-9_.-]{1,64}$",
                    "examples": [$example]
                })
            }
        }
    };
}

fn check_simple_id(what: &str, s: &str) -> Result<(), InvalidValue> {
    if s.is_empty() {
        return Err(InvalidValue::new(format!("{what} is empty")));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(InvalidValue::new(format!(
            "{what} `{}` contains `{}`; only A-Z, a-z, 0-9, `_`, `.` and `-` are allowed",
            excerpt(s),
            c.escape_default()
        )));
    }
    // Only ASCII is left, so bytes are characters.
    if s.len() > 64 {
        return Err(InvalidValue::new(format!(
            "{what} `{}` is {} characters long, at most 64 are allowed",
            excerpt(s),
            s.len()
        )));
    }
    Ok(())
}

simple_id!(
    /// A warehouse (a stock location that ships), as configured in inventory: `berlin-1`.
    WarehouseId,
    "warehouse id",
    "berlin-1"
);

simple_id!(
    /// A store: one sales front (storefront, marketplace account, shop) with its own invoice
    /// settings: `shop-de`.
    StoreId,
    "store id",
    "shop-de"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_accepts_free_form_codes() {
        for ok in [
            "A",
            "MUG-BLU-350",
            "tea/earl_grey.100g",
            "Größe-42",
            &"x".repeat(64),
        ] {
            assert_eq!(Sku::parse(ok).expect(ok).as_str(), ok);
        }
    }

    #[test]
    fn sku_rejects_empty_long_whitespace_and_control() {
        assert_eq!(Sku::parse("").expect_err("empty").reason(), "SKU is empty");
        assert!(
            Sku::parse(&"x".repeat(65))
                .expect_err("long")
                .reason()
                .contains("65 characters")
        );
        let err = Sku::parse("MUG BLU").expect_err("space");
        assert!(err.reason().contains("whitespace"), "{err}");
        assert!(Sku::parse("MUG\tBLU").is_err());
        assert!(Sku::parse("MUG\u{7}").is_err());
        assert!(
            Sku::parse("MUG\u{a0}").is_err(),
            "no-break space is whitespace"
        );
    }

    #[test]
    fn sku_roundtrips_through_serde() {
        let sku: Sku = serde_json::from_str("\"MUG-BLU-350\"").expect("decode");
        assert_eq!(
            serde_json::to_string(&sku).expect("encode"),
            "\"MUG-BLU-350\""
        );
        let err = serde_json::from_str::<Sku>("\"a b\"").expect_err("space");
        assert!(err.to_string().contains("whitespace"), "{err}");
    }

    #[test]
    fn simple_ids() {
        assert!(WarehouseId::parse("berlin-1").is_ok());
        assert!(WarehouseId::parse("WH_01.a").is_ok());
        assert!(StoreId::parse(&"s".repeat(64)).is_ok());
        assert!(StoreId::parse(&"s".repeat(65)).is_err());
        assert_eq!(
            StoreId::parse("").expect_err("empty").reason(),
            "store id is empty"
        );
        let err = StoreId::parse("shop de").expect_err("space");
        assert!(err.reason().contains("contains ` `"), "{err}");
        assert!(WarehouseId::parse("lager-köln").is_err());
        assert!(WarehouseId::parse("a/b").is_err());
    }
}
