//! The message catalog: every message type with its version, JSON Schema, golden example and
//! validator, as one list that tools iterate over.
//!
//! The committed files under `docs/contracts/` are generated from this list and checked
//! against it by `contracts/tests/schemas.rs`, so the schemas other teams read cannot drift
//! from the types the workers compile against. Tools (the CLI's `validate` command, the
//! dead-letter inspector, the load generator) use the same list to check or produce any
//! message by its type name without a match over every type.

use schemars::JsonSchema;
use serde_json::Value;

use crate::envelope::{Envelope, Message, RawEnvelope};
use crate::error::ContractError;
use crate::validate::Validate;

/// Everything known about one message type and version.
#[derive(Debug, Clone, Copy)]
pub struct MessageSpec {
    /// Dotted type, the routing key: `order.placed`.
    pub message_type: &'static str,
    /// Who sends it (for the contracts' README).
    pub from: &'static str,
    /// What it says, in a line (for the contracts' README).
    pub summary: &'static str,
    /// The queues that receive it (the routing table is derived from these).
    pub to: &'static [&'static str],
    /// Only producers outside Orderly send it: it needs no route for Orderly's own
    /// publishing (it still has consumers).
    pub only_from_outside: bool,
    /// Schema version.
    pub version: u16,
    /// JSON Schema (2020-12) of the whole envelope with this payload, `message_type` and
    /// `schema_version` pinned to this spec's.
    pub schema: fn() -> Value,
    /// The same schema in JSON Schema draft-07 (for the AsyncAPI document).
    pub schema_draft07: fn() -> Value,
    /// A realistic golden example envelope with fixed ids and timestamps.
    pub example: fn() -> Value,
    /// Decodes a raw envelope as this type and version and runs its business rules.
    pub validate: fn(RawEnvelope) -> Result<(), ContractError>,
    /// Like `validate`, then re-encodes: the canonical wire form of a valid message (VAT ids
    /// normalised, absent optional fields left out, defaults written out).
    pub normalize: fn(RawEnvelope) -> Result<Value, ContractError>,
}

impl MessageSpec {
    /// Base name of this spec's committed files: `order.placed.v1`.
    pub fn file_stem(&self) -> String {
        format!("{}.v{}", self.message_type, self.version)
    }
}

/// The schema (2020-12) of `Envelope<P>`, with the envelope's type and version pinned to
/// `P`'s and the payload's description (what the message means) as the document's
/// description.
pub(crate) fn schema_of<P: Message + JsonSchema>() -> Value {
    schema_with::<P>(schemars::generate::SchemaSettings::draft2020_12())
}

/// [`schema_of`] in JSON Schema draft-07, the dialect AsyncAPI tools read by default
/// (definitions under `definitions`).
pub(crate) fn schema_draft07_of<P: Message + JsonSchema>() -> Value {
    schema_with::<P>(schemars::generate::SchemaSettings::draft07())
}

fn schema_with<P: Message + JsonSchema>(settings: schemars::generate::SchemaSettings) -> Value {
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<Envelope<P>>()
        .to_value();
    let payload_description = schema
        .pointer("/properties/payload/$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/"))
        .and_then(|path| schema.pointer(&format!("/{path}/description")))
        .cloned();
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "title".into(),
            format!("{} v{}", P::TYPE, P::VERSION).into(),
        );
        root.insert(
            "$comment".into(),
            "Generated from orderly-contracts; do not edit. Regenerate with: \
             UPDATE_CONTRACTS=1 cargo test -p orderly-contracts --test schemas"
                .into(),
        );
        if let Some(description) = payload_description {
            root.insert("description".into(), description);
        }
    }
    for (field, value) in [
        ("message_type", Value::from(P::TYPE)),
        ("schema_version", P::VERSION.into()),
    ] {
        if let Some(property) = schema
            .pointer_mut(&format!("/properties/{field}"))
            .and_then(Value::as_object_mut)
        {
            property.insert("const".into(), value);
        }
    }
    unwrap_descriptions(&mut schema);
    schema
}

/// Doc comments are wrapped at 100 columns; schema readers want paragraphs. Joins the lines
/// of each paragraph of every `description`, keeping blank-line paragraph breaks.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| {
                                paragraph
                                    .lines()
                                    .map(str::trim)
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

pub(crate) fn validate_as<P: Message + Validate>(raw: RawEnvelope) -> Result<(), ContractError> {
    raw.decode_valid::<P>().map(drop)
}

pub(crate) fn normalize_as<P: Message + Validate>(
    raw: RawEnvelope,
) -> Result<Value, ContractError> {
    let envelope = raw.decode_valid::<P>()?;
    serde_json::to_value(&envelope)
        .map_err(|e| ContractError::new("", format!("cannot encode: {e}")))
}

/// One catalog entry, written next to its type in `messages/<area>.rs`:
///
/// ```ignore
/// entry!(
///     OrderPlaced,
///     example: examples::order_placed,
///     from: "storefront, ...",      // who sends it
///     says: "a new order ...",      // what it says, in a line
///     to: [ORDERS],                 // the queues that receive it (`routing::queues`)
///     only_from_outside,            // optional: no producer inside Orderly
/// )
/// ```
macro_rules! entry {
    (
        $payload:ty,
        example: $example:path,
        from: $from:literal,
        says: $summary:literal,
        to: [$($queue:expr),* $(,)?]
        $(, $only_from_outside:ident)? $(,)?
    ) => {
        $crate::catalog::MessageSpec {
            message_type: <$payload as $crate::envelope::Message>::TYPE,
            from: $from,
            summary: $summary,
            to: &[$($queue),*],
            only_from_outside: $crate::catalog::entry!(@outside $($only_from_outside)?),
            version: <$payload as $crate::envelope::Message>::VERSION,
            schema: $crate::catalog::schema_of::<$payload>,
            schema_draft07: $crate::catalog::schema_draft07_of::<$payload>,
            example: $example,
            validate: $crate::catalog::validate_as::<$payload>,
            normalize: $crate::catalog::normalize_as::<$payload>,
        }
    };
    (@outside only_from_outside) => { true };
    (@outside) => { false };
}
pub(crate) use entry;

/// Every message type, in lifecycle order: each area's entries (next to its types), the
/// areas in the order an order meets them.
pub fn catalog() -> Vec<MessageSpec> {
    use crate::messages::{
        catalog, inventory, invoices, notifications, orders, requests, setups, shipments, stores,
        webhooks,
    };
    [
        orders::specs(),
        requests::specs(),
        catalog::specs(),
        inventory::specs(),
        shipments::specs(),
        invoices::specs(),
        setups::specs(),
        notifications::specs(),
        stores::specs(),
        webhooks::specs(),
    ]
    .concat()
}

/// The spec of one type and version.
pub fn spec(message_type: &str, version: u16) -> Option<MessageSpec> {
    catalog()
        .into_iter()
        .find(|s| s.message_type == message_type && s.version == version)
}

/// Checks any raw envelope against the spec its `message_type` and `schema_version` name.
pub fn validate_any(raw: RawEnvelope) -> Result<(), ContractError> {
    match spec(&raw.message_type, raw.schema_version) {
        Some(spec) => (spec.validate)(raw),
        None if catalog().iter().any(|s| s.message_type == raw.message_type) => {
            Err(ContractError::new(
                "schema_version",
                format!(
                    "version {} of `{}` does not exist",
                    raw.schema_version, raw.message_type
                ),
            ))
        }
        None => Err(ContractError::new(
            "message_type",
            format!("`{}` is not a known message type", raw.message_type),
        )),
    }
}

/// Pretty JSON with object keys sorted and a trailing newline: the committed files' format,
/// independent of serde_json's `preserve_order` feature.
pub fn to_canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_at_version_one() {
        assert!(catalog().iter().all(|s| s.version == 1));
    }

    #[test]
    fn schemas_pin_type_and_version() {
        let spec = spec("order.placed", 1).expect("order.placed v1");
        let schema = (spec.schema)();
        assert_eq!(
            schema.pointer("/properties/message_type/const"),
            Some(&Value::from("order.placed"))
        );
        assert_eq!(
            schema.pointer("/properties/schema_version/const"),
            Some(&Value::from(1))
        );
        assert_eq!(
            schema.pointer("/title"),
            Some(&Value::from("order.placed v1"))
        );
    }

    #[test]
    fn validate_any_dispatches_on_type_and_version() {
        let raw = |v: Value| serde_json::from_value::<RawEnvelope>(v).expect("raw envelope");
        let example = (spec("order.placed", 1).expect("order.placed v1").example)();
        assert_eq!(validate_any(raw(example.clone())), Ok(()));
        let mut unknown = example.clone();
        unknown["message_type"] = "order.teleported".into();
        assert_eq!(
            validate_any(raw(unknown)).expect_err("unknown").field,
            "message_type"
        );
        let mut future = example;
        future["schema_version"] = 2.into();
        assert_eq!(
            validate_any(raw(future)).expect_err("v2").field,
            "schema_version"
        );
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 0}], "c": null}});
        assert_eq!(
            to_canonical_json(&v),
            "{\n  \"a\": {\n    \"c\": null,\n    \"d\": [\n      1,\n      {\n        \"y\": 0,\n        \"z\": 0\n      }\n    ]\n  },\n  \"b\": 1\n}\n"
        );
    }
}
