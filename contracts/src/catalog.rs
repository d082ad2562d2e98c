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
use crate::examples;
use crate::messages::*;
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
fn schema_of<P: Message + JsonSchema>() -> Value {
    schema_with::<P>(schemars::generate::SchemaSettings::draft2020_12())
}

/// [`schema_of`] in JSON Schema draft-07, the dialect AsyncAPI tools read by default
/// (definitions under `definitions`).
fn schema_draft07_of<P: Message + JsonSchema>() -> Value {
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

fn validate_as<P: Message + Validate>(raw: RawEnvelope) -> Result<(), ContractError> {
    raw.decode_valid::<P>().map(drop)
}

fn normalize_as<P: Message + Validate>(raw: RawEnvelope) -> Result<Value, ContractError> {
    let envelope = raw.decode_valid::<P>()?;
    serde_json::to_value(&envelope)
        .map_err(|e| ContractError::new("", format!("cannot encode: {e}")))
}

macro_rules! spec {
    ($payload:ty, $example:path, from: $from:literal, says: $summary:literal $(,)?) => {
        MessageSpec {
            message_type: <$payload as Message>::TYPE,
            from: $from,
            summary: $summary,
            version: <$payload as Message>::VERSION,
            schema: schema_of::<$payload>,
            schema_draft07: schema_draft07_of::<$payload>,
            example: $example,
            validate: validate_as::<$payload>,
            normalize: normalize_as::<$payload>,
        }
    };
}

/// Every message type, in lifecycle order.
pub fn catalog() -> Vec<MessageSpec> {
    vec![
        spec!(
            OrderPlaced,
            examples::order_placed,
            from: "storefront, marketplace connectors, tills, operators",
            says: "a new order or a new revision of one (identified by store, channel and external order id)",
        ),
        spec!(
            OrderAccepted,
            examples::order_accepted,
            from: "orders",
            says: "the order is valid and matched; carries the full accepted order",
        ),
        spec!(
            OrderOnHold,
            examples::order_on_hold,
            from: "orders",
            says: "lines matched no product (order item exceptions); waits for an operator",
        ),
        spec!(
            OrderStatusChanged,
            examples::order_status_changed,
            from: "orders",
            says: "status moved; per-order `sequence` lets consumers drop stale updates",
        ),
        spec!(
            OrderCancelRequested,
            examples::order_cancel_requested,
            from: "storefront, operators",
            says: "cancel an order or some lines",
        ),
        spec!(
            OrderCancelled,
            examples::order_cancelled,
            from: "orders",
            says: "the order or some lines are cancelled",
        ),
        spec!(
            OrderRefundRequested,
            examples::order_refund_requested,
            from: "operators, storefront",
            says: "refund lines and/or shipping of an invoiced order",
        ),
        spec!(
            OrderExceptionResolved,
            examples::order_exception_resolved,
            from: "operators",
            says: "an order item exception is resolved (map to SKU, remove line, cancel)",
        ),
        spec!(
            OrderAddressChanged,
            examples::order_address_changed,
            from: "orders",
            says: "an accepted order's addresses changed before anything shipped",
        ),
        spec!(
            OrderNoteRequested,
            examples::order_note_requested,
            from: "operators (admin API)",
            says: "add an internal note to an order's timeline",
        ),
        spec!(
            OrderHoldRequested,
            examples::order_hold_requested,
            from: "operators (admin API)",
            says: "put an order on hold: nothing more of it is shipped until it is released",
        ),
        spec!(
            OrderReleaseRequested,
            examples::order_release_requested,
            from: "operators (admin API)",
            says: "release an order an operator put on hold",
        ),
        spec!(
            OrderHoldChanged,
            examples::order_hold_changed,
            from: "orders",
            says: "an operator put the order on hold or released it (per-order `sequence`)",
        ),
        spec!(
            OrderRequestAnswered,
            examples::order_request_answered,
            from: "orders, notifications",
            says: "what became of a request about an order (applied, partly, refused), caused by the request",
        ),
        spec!(
            OrderCompleted,
            examples::order_completed,
            from: "orders",
            says: "delivered and invoiced; done",
        ),
        spec!(
            ProductUpserted,
            examples::product_upserted,
            from: "PIM",
            says: "a product's SKU, GTINs, VAT category, status",
        ),
        spec!(
            InventoryAdjusted,
            examples::inventory_adjusted,
            from: "WMS, marketplace connectors, operators",
            says: "a stock count (`set_on_hand`) or change (`delta`) for one SKU in one warehouse",
        ),
        spec!(
            StockReserved,
            examples::stock_reserved,
            from: "inventory",
            says: "every line reserved, with the per-warehouse allocation",
        ),
        spec!(
            StockUnavailable,
            examples::stock_unavailable,
            from: "inventory",
            says: "not enough stock; the shortages; nothing reserved",
        ),
        spec!(
            StockReleased,
            examples::stock_released,
            from: "inventory",
            says: "reserved units went back to stock",
        ),
        spec!(
            StockLevelChanged,
            examples::stock_level_changed,
            from: "inventory",
            says: "a SKU's stock changed: on hand, reserved or available (for listings); per-SKU `sequence`",
        ),
        spec!(
            ShipmentRequested,
            examples::shipment_requested,
            from: "fulfillment",
            says: "a warehouse is asked to ship part of an order",
        ),
        spec!(
            ShipmentUpdated,
            examples::shipment_updated,
            from: "carriers, 3PLs, tracking aggregators; ingress (their webhooks)",
            says: "a tracking event in the sender's vocabulary",
        ),
        spec!(
            ShipmentDispatched,
            examples::shipment_dispatched,
            from: "fulfillment",
            says: "a shipment left the warehouse, with its tracking number",
        ),
        spec!(
            ShipmentDelivered,
            examples::shipment_delivered,
            from: "fulfillment",
            says: "a shipment was delivered",
        ),
        spec!(
            ShipmentException,
            examples::shipment_exception,
            from: "fulfillment",
            says: "delivery failed, returned, or something needs a human",
        ),
        spec!(
            InvoiceRequested,
            examples::invoice_requested,
            from: "fulfillment",
            says: "invoice (part of) an order; self-contained: buyer, addresses, priced lines",
        ),
        spec!(
            InvoiceIssued,
            examples::invoice_issued,
            from: "invoicing",
            says: "an invoice was numbered and rendered; totals, VAT treatment, PDF",
        ),
        spec!(
            CreditNoteIssued,
            examples::credit_note_issued,
            from: "invoicing",
            says: "a credit note against an invoice",
        ),
        spec!(
            NotificationRequested,
            examples::notification_requested,
            from: "notifications",
            says: "deliver this rendered message to this recipient",
        ),
        spec!(
            NotificationResendRequested,
            examples::notification_resend_requested,
            from: "operators (admin API)",
            says: "send an order's newest customer notification (of an event) again",
        ),
        spec!(
            NotificationSent,
            examples::notification_sent,
            from: "notification system",
            says: "it was delivered",
        ),
        spec!(
            NotificationFailed,
            examples::notification_failed,
            from: "notification system",
            says: "it could not be delivered (and whether retrying can help)",
        ),
        spec!(
            StoreUpserted,
            examples::store_upserted,
            from: "admin API",
            says: "a store Orderly takes orders for: name, country, currency, open or closed",
        ),
        spec!(
            WarehouseUpserted,
            examples::warehouse_upserted,
            from: "admin API",
            says: "a warehouse: address (dispatch country), allocation priority, open or closed",
        ),
        spec!(
            StoreInvoiceSettingsUpdated,
            examples::store_invoice_settings_updated,
            from: "admin API",
            says: "a store's seller details, VAT id, number prefixes, invoice timing",
        ),
        spec!(
            StoreNotificationSettingsUpdated,
            examples::store_notification_settings_updated,
            from: "admin API",
            says: "a store's notification language, staff recipients, rules and template texts",
        ),
        spec!(
            WebhookEndpointRegistered,
            examples::webhook_endpoint_registered,
            from: "admin API",
            says: "a store's webhook endpoint: URL, event types, signing secret, enabled",
        ),
        spec!(
            WebhookEndpointDisabled,
            examples::webhook_endpoint_disabled,
            from: "notifications",
            says: "a webhook endpoint was disabled after repeated failures",
        ),
    ]
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
        let example = examples::order_placed();
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
