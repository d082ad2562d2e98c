//! The CloudEvents (1.0) attributes of a message, mapped from its envelope, for transports
//! that carry them beside the body (binary content mode): tools that speak CloudEvents can
//! route, filter and trace Orderly's messages without reading the JSON, which is unchanged.
//!
//! | attribute | from the envelope |
//! |---|---|
//! | `specversion` | always `1.0` |
//! | `id` | `message_id` |
//! | `type` | `message_type` |
//! | `source` | `producer` (the worker or outside system that sent it) |
//! | `time` | `occurred_at` |
//! | `subject` | `correlation_id` (the order, or the entity: SKU, store, tracking number) |
//! | `dataschema` | [`schema_uri`] of `message_type` and `schema_version` |
//! | `datacontenttype` | `application/json`, as the transport's own content type |
//!
//! Each transport names them its own way: the AMQP binding prefixes `cloudEvents_`
//! ([`AMQP_PREFIX`]), HTTP prefixes `ce-` ([`HTTP_PREFIX`]). The W3C `traceparent` travels
//! as its own header, as the distributed-tracing extension says.

/// The CloudEvents version the attributes follow.
pub const SPEC_VERSION: &str = "1.0";

/// Header prefix of the CloudEvents AMQP protocol binding (binary mode). The binding once
/// used `cloudEvents:`; `cloudEvents_` is the one it prefers now, and the one AMQP 0-9-1
/// header names and AMQP 1.0 application properties both accept.
pub const AMQP_PREFIX: &str = "cloudEvents_";

/// Header prefix of the CloudEvents HTTP protocol binding (binary mode).
pub const HTTP_PREFIX: &str = "ce-";

/// The URI naming the JSON Schema of a message type's version. A URN: the schema is the
/// file `docs/contracts/schemas/<type>.v<version>.schema.json` of the contracts, wherever a
/// deployment publishes them.
pub fn schema_uri(message_type: &str, version: u16) -> String {
    format!("urn:orderly:schema:{message_type}:v{version}")
}

/// One message's attributes, borrowed from its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// `message_id`.
    pub id: &'a str,
    /// `message_type`.
    pub message_type: &'a str,
    /// `schema_version`.
    pub schema_version: u16,
    /// `producer`.
    pub source: &'a str,
    /// `occurred_at`, RFC 3339.
    pub time: &'a str,
    /// `correlation_id`.
    pub subject: &'a str,
}

impl Attributes<'_> {
    /// (attribute name, value), in the order of the table above, without a prefix.
    pub fn pairs(&self) -> [(&'static str, String); 7] {
        [
            ("specversion", SPEC_VERSION.to_owned()),
            ("id", self.id.to_owned()),
            ("type", self.message_type.to_owned()),
            ("source", self.source.to_owned()),
            ("time", self.time.to_owned()),
            ("subject", self.subject.to_owned()),
            (
                "dataschema",
                schema_uri(self.message_type, self.schema_version),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_comes_from_the_envelope() {
        let a = Attributes {
            id: "0195f3a0-8000-7000-8000-000000000001",
            message_type: "order.placed",
            schema_version: 1,
            source: "storefront",
            time: "2026-03-14T09:12:44.127Z",
            subject: "shop-de/storefront/100234",
        };
        assert_eq!(
            a.pairs(),
            [
                ("specversion", "1.0".to_owned()),
                ("id", "0195f3a0-8000-7000-8000-000000000001".to_owned()),
                ("type", "order.placed".to_owned()),
                ("source", "storefront".to_owned()),
                ("time", "2026-03-14T09:12:44.127Z".to_owned()),
                ("subject", "shop-de/storefront/100234".to_owned()),
                (
                    "dataschema",
                    "urn:orderly:schema:order.placed:v1".to_owned()
                ),
            ]
        );
    }
}
