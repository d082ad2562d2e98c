//! The AsyncAPI 3.0 document of Orderly's whole message surface, generated from the catalog
//! (types, summaries, golden examples, schemas) and the routing table (queues and what they
//! receive), so it cannot say anything the code does not.
//!
//! - **Channels**: the topic exchange every message is published to (`events`, an AMQP
//!   0-9-1 `routingKey` channel whose routing key is the message type), and one channel per
//!   queue of the routing table (workers' and outside consumers' `out.*`), with their
//!   bindings.
//! - **Operations**: a `send` per message type on the exchange (who sends it is in its
//!   description) and a `receive` per queue.
//! - **Messages**: one per type and version; the payload is the whole envelope, in JSON
//!   Schema draft-07 (what AsyncAPI tools read by default), the AMQP headers Orderly sets
//!   (CloudEvents attributes, `traceparent`) described, the golden example attached.
//!
//! Names are the default namespace's (`orderly.events`, `orderly.orders`, ...); a deployment
//! with another namespace prefixes its own.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::catalog::{MessageSpec, catalog};
use crate::cloudevents::{AMQP_PREFIX, HTTP_PREFIX};
use crate::routing::{self, QueueKind};

/// The namespace the document's addresses use.
pub const NAMESPACE: &str = "orderly";

/// Version of the AsyncAPI AMQP bindings used.
const AMQP_BINDING: &str = "0.3.0";

/// A key AsyncAPI accepts for channels, operations and messages (`order.placed` →
/// `order_placed`).
fn key(name: &str) -> String {
    name.replace(['.', '-'], "_")
}

/// A spec's message key, with its version: `order_placed_v1`.
fn message_key(spec: &MessageSpec) -> String {
    format!("{}_v{}", key(spec.message_type), spec.version)
}

/// The document, as JSON.
pub fn document() -> Value {
    let specs = catalog();
    let mut schemas = Map::new();
    let mut messages = Map::new();
    for spec in &specs {
        let name = message_key(spec);
        let payload = payload_schema(spec, &mut schemas);
        schemas.insert(name.clone(), payload);
        messages.insert(name.clone(), message(spec, &name));
    }

    let events = format!("{NAMESPACE}.events");
    let mut channels = Map::new();
    channels.insert(
        "events".into(),
        json!({
            "address": events,
            "title": "The events exchange",
            "description": "Every message is published here, with its message type as the routing key; queues are bound to it per type (see the queue channels).",
            "messages": channel_messages(specs.iter()),
            "bindings": {"amqp": {
                "is": "routingKey",
                "exchange": {"name": events, "type": "topic", "durable": true, "autoDelete": false, "vhost": "/"},
                "bindingVersion": AMQP_BINDING
            }}
        }),
    );
    let mut operations = Map::new();
    for spec in &specs {
        let name = message_key(spec);
        operations.insert(
            format!("send_{name}"),
            json!({
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "title": format!("Publish {}", spec.message_type),
                "summary": spec.summary,
                "description": format!("Sent by: {}.", spec.from),
                "messages": [{"$ref": format!("#/channels/events/messages/{name}")}],
                "bindings": {"amqp": {"deliveryMode": 2, "mandatory": true, "bindingVersion": AMQP_BINDING}}
            }),
        );
    }
    for route in routing::routes() {
        let channel = key(route.queue);
        let address = format!("{NAMESPACE}.{}", route.queue);
        let received: Vec<&MessageSpec> = specs
            .iter()
            .filter(|s| route.receives(s.message_type))
            .collect();
        let (who, description) = match route.kind {
            QueueKind::Worker => (
                format!("the {} worker", route.queue),
                format!(
                    "The {} worker's queue (every copy of the worker reads it): quorum queue with a delivery limit, dead letters to {NAMESPACE}.dead-letter.",
                    route.queue
                ),
            ),
            QueueKind::Outbound { max_length } => (
                format!("the outside consumer of {}", route.queue),
                format!(
                    "For a consumer outside Orderly: quorum queue of at most {max_length} messages (reject-publish when full; the producing outbox keeps them)."
                ),
            ),
        };
        channels.insert(
            channel.clone(),
            json!({
                "address": address,
                "title": route.queue,
                "description": description,
                "messages": channel_messages(received.iter().copied()),
                "bindings": {"amqp": {
                    "is": "queue",
                    "queue": {"name": address, "durable": true, "exclusive": false, "autoDelete": false, "vhost": "/"},
                    "bindingVersion": AMQP_BINDING
                }}
            }),
        );
        operations.insert(
            format!("receive_{channel}"),
            json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{channel}")},
                "title": format!("Consume {}", route.queue),
                "description": format!("Read by {who}."),
                "messages": received
                    .iter()
                    .map(|s| json!({"$ref": format!("#/channels/{channel}/messages/{}", message_key(s))}))
                    .collect::<Vec<_>>(),
                "bindings": {"amqp": {"ack": true, "bindingVersion": AMQP_BINDING}}
            }),
        );
    }

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Orderly messages",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every message Orderly's workers and the systems around them exchange over RabbitMQ (AMQP 0-9-1). Generated from orderly-contracts; do not edit. Regenerate with: UPDATE_CONTRACTS=1 cargo test -p orderly-contracts --test schemas. See docs/contracts/README.md for the envelope, versioning and routing rules."
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker of a developer machine (scripts/services); production brokers are configured per deployment."
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages}
    })
}

/// The `messages` map of a channel: references to the messages' components.
fn channel_messages<'a>(specs: impl Iterator<Item = &'a MessageSpec>) -> Value {
    let map: Map<String, Value> = specs
        .map(|s| {
            let name = message_key(s);
            let reference = json!({"$ref": format!("#/components/messages/{name}")});
            (name, reference)
        })
        .collect();
    Value::Object(map)
}

/// The message component of `spec`.
fn message(spec: &MessageSpec, name: &str) -> Value {
    let mut headers = Map::new();
    for (attribute, description) in [
        ("specversion", "CloudEvents version, 1.0"),
        ("id", "= message_id"),
        ("type", "= message_type"),
        ("source", "= producer"),
        ("time", "= occurred_at"),
        ("subject", "= correlation_id"),
        (
            "dataschema",
            "urn:orderly:schema:<message_type>:v<schema_version>",
        ),
    ] {
        headers.insert(
            format!("{AMQP_PREFIX}{attribute}"),
            json!({"type": "string", "description": description}),
        );
        headers.insert(
            format!("{HTTP_PREFIX}{attribute}"),
            json!({"type": "string", "description": format!("the same as {AMQP_PREFIX}{attribute}")}),
        );
    }
    headers.insert(
        "traceparent".into(),
        json!({"type": "string", "description": "W3C trace context of the producing span"}),
    );
    json!({
        "name": spec.message_type,
        "title": format!("{} v{}", spec.message_type, spec.version),
        "summary": spec.summary,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "description": "AMQP headers Orderly sets on what it publishes (CloudEvents binary mode); outside producers need not set them: Orderly reads only the body.",
            "properties": headers
        },
        "payload": {"$ref": format!("#/components/schemas/{name}")},
        "correlationId": {"location": "$message.payload#/correlation_id"},
        "bindings": {"amqp": {"messageType": spec.message_type, "bindingVersion": AMQP_BINDING}},
        "examples": [{"name": "golden", "summary": "The story's example", "payload": (spec.example)()}]
    })
}

/// The draft-07 envelope schema of `spec`, its `definitions` moved into the document's
/// `components.schemas` (shared by every message; a name defined twice differently gets
/// the message's key as a prefix) and the references rewritten to point there.
fn payload_schema(spec: &MessageSpec, defs: &mut Map<String, Value>) -> Value {
    let mut schema = (spec.schema_draft07)();
    let definitions = schema
        .as_object_mut()
        .and_then(|root| {
            root.remove("$schema");
            root.remove("definitions")
        })
        .and_then(|d| match d {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    // Compared as they will be stored (references already pointing into the document).
    let same: BTreeMap<String, String> =
        definitions.keys().map(|k| (k.clone(), k.clone())).collect();
    let mut renamed = same.clone();
    for (name, definition) in &definitions {
        let mut stored = definition.clone();
        rewrite_refs(&mut stored, &same);
        if defs.get(name).is_some_and(|existing| *existing != stored) {
            renamed.insert(name.clone(), format!("{}_{name}", message_key(spec)));
        }
    }
    for (name, mut definition) in definitions {
        rewrite_refs(&mut definition, &renamed);
        let target = renamed.get(&name).cloned().unwrap_or(name);
        defs.entry(target).or_insert(definition);
    }
    rewrite_refs(&mut schema, &renamed);
    schema
}

/// Points `#/definitions/X` references at `#/components/schemas/<renamed X>`.
fn rewrite_refs(value: &mut Value, renamed: &BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref"
                    && let Value::String(reference) = child
                    && let Some(name) = reference.strip_prefix("#/definitions/")
                {
                    let target = renamed.get(name).map_or(name, String::as_str);
                    *reference = format!("#/components/schemas/{target}");
                } else {
                    rewrite_refs(child, renamed);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, renamed)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` of `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::String(r) if k == "$ref" => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_inside_the_document() {
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for reference in all {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external reference {reference}"));
            assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
        }
    }

    #[test]
    fn every_type_is_sent_and_every_queue_received() {
        let doc = document();
        for spec in catalog() {
            let op = format!("/operations/send_{}", message_key(&spec));
            assert!(doc.pointer(&op).is_some(), "{op}");
        }
        for route in routing::routes() {
            let op = format!("/operations/receive_{}", key(route.queue));
            let received = doc
                .pointer(&format!("{op}/messages"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert_eq!(received, route.message_types.len(), "{op}");
        }
    }
}
