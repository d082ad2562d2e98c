//! Strict JSON: an object that names the same key twice is refused, with the key and where.
//!
//! Why: JSON leaves duplicate keys undefined. `serde_json::Value` keeps the last one, other
//! parsers keep the first, so a validating gateway in front of Orderly and Orderly itself would
//! read different messages from the same bytes (`"store_id":"shop-de","store_id":"other"`
//! files the order under whichever store the parser happens to keep). Every message Orderly
//! decodes goes through [`decode_json`] or [`crate::decode_raw`], which both refuse them.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ContractError;

/// A JSON value decoded with duplicate keys refused at every depth.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{key}` (a key may appear once in an object)"
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses `body` as JSON, refusing an object that names a key twice (at any depth): the
/// error names the object's path and the key.
pub fn decode_json(body: &[u8]) -> Result<Value, ContractError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let Strict(value) =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ContractError::from_path("", e))?;
    de.end()
        .map_err(|e| ContractError::new("", format!("trailing data: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::decode_json;

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let err = decode_json(br#"{"a":{"b":[{"c":1,"c":2}]}}"#).expect_err("duplicate c");
        let text = err.to_string();
        assert!(text.contains("duplicate key `c`"), "{text}");
        assert!(text.contains("a.b[0]"), "{text}");
        let value = decode_json(br#"{"a":[1,{"b":null}],"c":"d","e":1.5}"#).expect("no duplicates");
        assert_eq!(value["c"], "d");
        assert_eq!(value["a"][1]["b"], serde_json::Value::Null);
    }
}
