//! Item quantities.

use std::borrow::Cow;
use std::num::NonZeroU32;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::InvalidValue;

/// A number of units of an item: a whole number from 1 to 4,294,967,295.
///
/// Zero is not a quantity: a line with nothing on it is a mistake upstream, and a
/// reservation of nothing would succeed vacuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(NonZeroU32);

impl Quantity {
    /// One unit.
    pub const ONE: Self = Self(NonZeroU32::MIN);

    /// Checks that `n` is at least 1.
    pub fn new(n: u32) -> Result<Self, InvalidValue> {
        NonZeroU32::new(n)
            .map(Self)
            .ok_or_else(|| InvalidValue::new("quantity must be at least 1, got 0"))
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<u32> for Quantity {
    type Error = InvalidValue;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.get()
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(deserializer)?;
        Self::new(n).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Quantity {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "format": "uint32",
            "minimum": 1,
            "maximum": u32::MAX,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_only() {
        assert_eq!(Quantity::new(1).expect("1").get(), 1);
        assert_eq!(Quantity::new(u32::MAX).expect("max").get(), u32::MAX);
        assert_eq!(
            Quantity::new(0).expect_err("0").reason(),
            "quantity must be at least 1, got 0"
        );
    }

    #[test]
    fn serde() {
        let q: Quantity = serde_json::from_str("3").expect("3");
        assert_eq!(q.get(), 3);
        assert_eq!(serde_json::to_string(&q).expect("encode"), "3");
        for bad in ["0", "-1", "1.5", "\"2\"", "4294967296"] {
            assert!(serde_json::from_str::<Quantity>(bad).is_err(), "{bad}");
        }
    }
}
