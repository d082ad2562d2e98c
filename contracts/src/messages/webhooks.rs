//! Merchant webhooks: a store's endpoints for Orderly's events, and what Orderly says when it
//! gives up on one.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::counts_from_one;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::StoreId;
use crate::validate::{At, Validate, count, ensure, text};

/// The event types a webhook endpoint can subscribe to: what the notifications worker
/// receives about a store's orders.
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "order.status_changed",
    "shipment.dispatched",
    "shipment.delivered",
    "shipment.exception",
    "invoice.issued",
    "credit_note.issued",
];

/// `webhook.endpoint_registered`: a store registers a webhook endpoint, or changes one
/// (through the admin API).
///
/// Carries the endpoint's complete registration; `revision` increases with every change
/// and the highest wins. A disabled endpoint is enabled again by a registration with a
/// higher revision and `enabled: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointRegistered {
    /// Id of the endpoint, chosen by the admin API; stable across changes.
    pub endpoint_id: Uuid,
    /// The store whose events it receives.
    pub store_id: StoreId,
    /// Registration version, from 1, increasing with every change.
    pub revision: u64,
    /// Where events are POSTed. `https://` (plain `http://` only with `allow_private`).
    #[schemars(length(max = 2048))]
    pub url: String,
    /// The event types wanted, 1 to 6 of: `order.status_changed`, `shipment.dispatched`,
    /// `shipment.delivered`, `shipment.exception`, `invoice.issued`, `credit_note.issued`.
    pub event_types: Vec<String>,
    /// The shared secret deliveries are signed with (HMAC-SHA256), 32 to 256 printable
    /// ASCII characters.
    pub secret: String,
    /// Whether deliveries are made; `false` pauses them (they wait, nothing is lost).
    pub enabled: bool,
    /// Allow addresses that resolve to loopback, private, link-local or unique-local
    /// networks, and plain `http://`. Off for every merchant endpoint: only for endpoints
    /// inside our own network (and tests).
    #[serde(default)]
    pub allow_private: bool,
}

impl Message for WebhookEndpointRegistered {
    const TYPE: &'static str = "webhook.endpoint_registered";
    const VERSION: u16 = 1;
}

impl Validate for WebhookEndpointRegistered {
    fn validate(&self) -> Result<(), ContractError> {
        counts_from_one(self.revision, "payload.revision")?;
        text(&self.url, 2048).at("payload.url")?;
        let scheme_ok = if self.url.starts_with("https://") {
            true
        } else {
            self.url.starts_with("http://") && self.allow_private
        };
        ensure(scheme_ok, || {
            format!(
                "`{}` is not an https:// URL (plain http:// only with allow_private)",
                self.url
            )
        })
        .at("payload.url")?;
        ensure(
            self.url
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/')),
            || format!("`{}` has no host", self.url),
        )
        .at("payload.url")?;
        count(&self.event_types, 1, WEBHOOK_EVENT_TYPES.len()).at("payload.event_types")?;
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.event_types.iter().enumerate() {
            ensure(WEBHOOK_EVENT_TYPES.contains(&t.as_str()), || {
                format!(
                    "`{t}` is not a webhook event type; expected one of: {}",
                    WEBHOOK_EVENT_TYPES.join(", ")
                )
            })
            .at_with(|| format!("payload.event_types[{i}]"))?;
            ensure(seen.insert(t), || format!("`{t}` is listed twice"))
                .at_with(|| format!("payload.event_types[{i}]"))?;
        }
        ensure(
            (32..=256).contains(&self.secret.len())
                && self.secret.bytes().all(|b| b.is_ascii_graphic()),
            || "must be 32 to 256 printable ASCII characters without spaces".to_owned(),
        )
        .at("payload.secret")
    }
}

/// `webhook.endpoint_disabled`: Orderly stopped delivering to a merchant's endpoint after
/// repeated failures. Deliveries wait; a new registration (higher revision, enabled) resumes
/// them in order. The store's staff are also notified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointDisabled {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Its store.
    pub store_id: StoreId,
    /// The registration revision that was disabled.
    pub revision: u64,
    /// The endpoint's URL.
    #[schemars(length(max = 2048))]
    pub url: String,
    /// When it was disabled.
    pub disabled_at: DateTime<Utc>,
    /// Failed delivery attempts in a row that led to it.
    pub consecutive_failures: u32,
    /// The last attempt's error ("HTTP 503", "timed out after 10 s").
    #[schemars(length(max = 2000))]
    pub last_error: String,
}

impl Message for WebhookEndpointDisabled {
    const TYPE: &'static str = "webhook.endpoint_disabled";
    const VERSION: u16 = 1;
}

impl Validate for WebhookEndpointDisabled {
    fn validate(&self) -> Result<(), ContractError> {
        counts_from_one(self.revision, "payload.revision")?;
        text(&self.url, 2048).at("payload.url")?;
        ensure(self.consecutive_failures >= 1, || {
            "an endpoint is disabled after at least one failure".to_owned()
        })
        .at("payload.consecutive_failures")?;
        text(&self.last_error, 2000).at("payload.last_error")
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            WebhookEndpointRegistered,
            example: golden::webhook_endpoint_registered,
            from: "admin API",
            says: "a store's webhook endpoint: URL, event types, signing secret, enabled",
            to: [NOTIFICATIONS],
            only_from_outside,
        ),
        entry!(
            WebhookEndpointDisabled,
            example: golden::webhook_endpoint_disabled,
            from: "notifications",
            says: "a webhook endpoint was disabled after repeated failures",
            to: [OUT_MERCHANT_EVENTS],
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn webhook_endpoint_registered() -> Value {
        envelope::<WebhookEndpointRegistered>(
            Meta {
                n: 0x22,
                correlation: STORE,
                causation: None,
                at: "2026-01-02T09:00:00Z",
                producer: "admin-api",
                span: None,
            },
            json!({
                "endpoint_id": WEBHOOK_ENDPOINT,
                "store_id": STORE,
                "revision": 1,
                "url": "https://erp.beispiel-shop.de/hooks/orderly",
                "event_types": ["order.status_changed", "shipment.dispatched", "invoice.issued"],
                "secret": "whsec_4f9a1c7e2b8d6f0a3e5c9b1d7f2a4c6e",
                "enabled": true,
                "allow_private": false
            }),
        )
    }

    pub(super) fn webhook_endpoint_disabled() -> Value {
        envelope::<WebhookEndpointDisabled>(
            Meta {
                n: 0x23,
                correlation: STORE,
                causation: None,
                at: "2026-03-16T11:02:41.377Z",
                producer: "notifications",
                span: None,
            },
            json!({
                "endpoint_id": WEBHOOK_ENDPOINT,
                "store_id": STORE,
                "revision": 1,
                "url": "https://erp.beispiel-shop.de/hooks/orderly",
                "disabled_at": "2026-03-16T11:02:41.377Z",
                "consecutive_failures": 30,
                "last_error": "HTTP 503 Service Unavailable"
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::spec;
    use crate::envelope::RawEnvelope;

    fn golden() -> WebhookEndpointRegistered {
        let example = (spec(WebhookEndpointRegistered::TYPE, 1)
            .expect("spec")
            .example)();
        serde_json::from_value::<RawEnvelope>(example)
            .expect("raw")
            .decode_valid::<WebhookEndpointRegistered>()
            .expect("valid")
            .payload
    }

    fn field(e: &WebhookEndpointRegistered) -> String {
        e.validate().expect_err("invalid").field
    }

    #[test]
    fn https_unless_private_is_allowed() {
        let mut e = golden();
        e.url = "http://erp.example.com/hook".into();
        assert_eq!(field(&e), "payload.url");
        e.allow_private = true;
        assert!(e.validate().is_ok());
        e.url = "ftp://erp.example.com/hook".into();
        assert_eq!(field(&e), "payload.url");
        e.url = "https:///hook".into();
        assert_eq!(field(&e), "payload.url");
    }

    #[test]
    fn event_types_are_known_and_listed_once() {
        let mut e = golden();
        e.event_types = vec!["order.placed".into()];
        assert_eq!(field(&e), "payload.event_types[0]");
        e.event_types = vec!["invoice.issued".into(), "invoice.issued".into()];
        assert_eq!(field(&e), "payload.event_types[1]");
        e.event_types = Vec::new();
        assert_eq!(field(&e), "payload.event_types");
    }

    #[test]
    fn secrets_are_long_and_printable() {
        let mut e = golden();
        e.secret = "short".into();
        assert_eq!(field(&e), "payload.secret");
        e.secret = format!("{} {}", "a".repeat(20), "b".repeat(20));
        assert_eq!(field(&e), "payload.secret");
    }

    #[test]
    fn notification_settings_rules() {
        use crate::messages::{NotificationChannel, StoreNotificationSettingsUpdated};
        let example = (spec(StoreNotificationSettingsUpdated::TYPE, 1)
            .expect("spec")
            .example)();
        let mut s = serde_json::from_value::<RawEnvelope>(example)
            .expect("raw")
            .decode_valid::<StoreNotificationSettingsUpdated>()
            .expect("valid")
            .payload;
        let mut twice = s.clone();
        twice.rules.push(twice.rules[0].clone());
        assert_eq!(twice.validate().expect_err("dup").field, "payload.rules[2]");
        s.rules[0].channel = NotificationChannel::Sms;
        assert_eq!(
            s.validate().expect_err("sms").field,
            "payload.rules[0].channel"
        );
        s.rules[0].channel = NotificationChannel::Email;
        s.staff_recipients[1].address = "0170 123".into();
        assert_eq!(
            s.validate().expect_err("e164").field,
            "payload.staff_recipients[1].address"
        );
    }
}
