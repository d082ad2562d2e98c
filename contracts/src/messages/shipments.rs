//! Shipments: what we ask warehouses to ship, what carriers tell us, and what fulfillment
//! concludes from it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{Address, unique_lines};
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{
    Channel, CountryCode, EmailAddress, Gtin, Quantity, ShipmentStatus, Sku, StoreId, WarehouseId,
};
use crate::validate::{At, Validate, count, ensure, opt_text, text};

/// Most items one shipment may carry.
const MAX_ITEMS: usize = 1000;

/// An item to pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentItem {
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The product.
    pub sku: Sku,
    /// Its GTIN, for scanning at packing, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<Gtin>,
    /// Product name for the packing slip.
    #[schemars(length(max = 500))]
    pub title: String,
    /// Units to pack.
    pub quantity: Quantity,
}

/// `shipment.requested`: a warehouse (or 3PL) is asked to ship part of an order. One per
/// warehouse allocation; an order split across two warehouses gets two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentRequested {
    /// Orderly's shipment id; the warehouse quotes it back in `shipment.updated`.
    pub shipment_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (for branded packing slips).
    pub store_id: StoreId,
    /// The order number the buyer knows, for the packing slip.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// The warehouse that ships.
    pub warehouse_id: WarehouseId,
    /// Delivery address.
    pub ship_to: Address,
    /// Recipient's email for the carrier's delivery notices, if the buyer agreed to share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_email: Option<EmailAddress>,
    /// Shipping method as the store sells it (`standard`, `express`), if not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub shipping_method: Option<String>,
    /// What to pack.
    pub items: Vec<ShipmentItem>,
}

impl Message for ShipmentRequested {
    const TYPE: &'static str = "shipment.requested";
    const VERSION: u16 = 1;
}

impl Validate for ShipmentRequested {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        self.ship_to.check("payload.ship_to")?;
        opt_text(self.shipping_method.as_ref(), 64).at("payload.shipping_method")?;
        count(&self.items, 1, MAX_ITEMS).at("payload.items")?;
        for (i, item) in self.items.iter().enumerate() {
            text(&item.line_id, 64).at_with(|| format!("payload.items[{i}].line_id"))?;
            text(&item.title, 500).at_with(|| format!("payload.items[{i}].title"))?;
        }
        unique_lines(&self.items, |item| item.line_id.as_str(), "payload.items")
    }
}

string_enum! {
    /// Whose status words `raw_status` uses.
    pub enum StatusVocabulary {
        /// EasyPost tracker statuses (`pre_transit`, `in_transit`, `delivered`, ...).
        Easypost = "easypost",
        /// AfterShip tags (`InfoReceived`, `InTransit`, `AttemptFail`, ...).
        Aftership = "aftership",
        /// Shippo tracking statuses (`PRE_TRANSIT`, `TRANSIT`, `DELIVERED`, ...).
        Shippo = "shippo",
        /// Orderly's own: `raw_status` is a `ShipmentStatus` value (for warehouses and
        /// carriers integrated directly).
        Orderly = "orderly",
    }
}

/// Where a tracking event happened, as far as the carrier says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingLocation {
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub city: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub postal_code: Option<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// The carrier's description ("Paketzentrum Rüdersdorf").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub description: Option<String>,
}

/// `shipment.updated`: a tracking event from a carrier, 3PL or tracking aggregator, in the
/// sender's own words.
///
/// Fulfillment maps `raw_status` from `vocabulary` onto `ShipmentStatus`, keeps every event
/// in the tracking history, and moves the shipment's state only forward: a late
/// `in_transit` after `delivered` is recorded but changes nothing. Events can repeat and
/// arrive out of order; `event_at` orders them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentUpdated {
    /// Orderly's shipment id, when the sender knows it (warehouses do; aggregators may only
    /// know the tracking number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<Uuid>,
    /// Carrier code, lowercase (`dhl`, `ups`, `dpd`, `postnl`).
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// Whose words `raw_status` is in.
    pub vocabulary: StatusVocabulary,
    /// The status as the sender wrote it; unknown words are kept and recorded, not refused.
    #[schemars(length(max = 64))]
    pub raw_status: String,
    /// The sender's finer status under `raw_status`, as sent (AfterShip's `subtag`
    /// `InTransit_003`, EasyPost's `status_detail` `arrived_at_facility`, Shippo's
    /// `substatus.code`), kept with the tracking event; it does not change the mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub raw_substatus: Option<String>,
    /// The carrier's detail text ("Zustellung an Nachbar Hausnummer 14").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub description: Option<String>,
    /// When the event happened at the carrier.
    pub event_at: DateTime<Utc>,
    /// Where it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<TrackingLocation>,
    /// The carrier's current delivery estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_at: Option<DateTime<Utc>>,
}

impl Message for ShipmentUpdated {
    const TYPE: &'static str = "shipment.updated";
    const VERSION: u16 = 1;
}

/// A carrier code: lowercase letters, digits, `_` and `-`, 1 to 32 characters.
fn carrier_code(s: &str) -> Result<(), String> {
    ensure(
        (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
        || {
            format!(
                "`{s}` is not a carrier code (lowercase letters, digits, _ and -, like dhl or dhl_express)"
            )
        },
    )
}

/// A tracking number: 1 to 64 characters, no whitespace.
fn tracking_number(s: &str) -> Result<(), String> {
    ensure(
        (1..=64).contains(&s.chars().count())
            && !s.chars().any(|c| c.is_whitespace() || c.is_control()),
        || format!("`{s}` is not a tracking number (1 to 64 characters, no spaces)"),
    )
}

impl Validate for ShipmentUpdated {
    fn validate(&self) -> Result<(), ContractError> {
        carrier_code(&self.carrier).at("payload.carrier")?;
        tracking_number(&self.tracking_number).at("payload.tracking_number")?;
        text(&self.raw_status, 64).at("payload.raw_status")?;
        opt_text(self.raw_substatus.as_ref(), 64).at("payload.raw_substatus")?;
        if self.vocabulary == StatusVocabulary::Orderly {
            self.raw_status
                .parse::<ShipmentStatus>()
                .map_err(|e| e.reason().to_owned())
                .at("payload.raw_status")?;
        }
        opt_text(self.description.as_ref(), 1000).at("payload.description")?;
        if let Some(location) = &self.location {
            opt_text(location.city.as_ref(), 100).at("payload.location.city")?;
            opt_text(location.postal_code.as_ref(), 16).at("payload.location.postal_code")?;
            opt_text(location.description.as_ref(), 200).at("payload.location.description")?;
        }
        Ok(())
    }
}

/// Units of a line that left the warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchedItem {
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The product.
    pub sku: Sku,
    /// Units shipped.
    pub quantity: Quantity,
}

/// `shipment.dispatched`: a shipment left the warehouse (first carrier scan). Inventory turns
/// its reservation into a deduction; orders moves to `partially_shipped` or `shipped`;
/// marketplace connectors confirm the shipment with its tracking number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentDispatched {
    /// Orderly's shipment id.
    pub shipment_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders: the connector confirms the shipment there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// The warehouse it left.
    pub warehouse_id: WarehouseId,
    /// Carrier code.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// Where the buyer can follow the parcel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    /// When it left (the carrier's first scan).
    pub dispatched_at: DateTime<Utc>,
    /// What is in it.
    pub items: Vec<DispatchedItem>,
}

impl Message for ShipmentDispatched {
    const TYPE: &'static str = "shipment.dispatched";
    const VERSION: u16 = 1;
}

impl Validate for ShipmentDispatched {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        opt_text(self.marketplace.as_ref(), 64).at("payload.marketplace")?;
        carrier_code(&self.carrier).at("payload.carrier")?;
        tracking_number(&self.tracking_number).at("payload.tracking_number")?;
        if let Some(url) = &self.tracking_url {
            ensure(
                url.starts_with("https://") || url.starts_with("http://"),
                || format!("`{url}` is not an http(s) URL"),
            )
            .at("payload.tracking_url")?;
            text(url, 2048).at("payload.tracking_url")?;
        }
        count(&self.items, 1, MAX_ITEMS).at("payload.items")?;
        for (i, item) in self.items.iter().enumerate() {
            text(&item.line_id, 64).at_with(|| format!("payload.items[{i}].line_id"))?;
        }
        unique_lines(&self.items, |item| item.line_id.as_str(), "payload.items")
    }
}

/// `shipment.delivered`: the carrier delivered the shipment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentDelivered {
    /// Orderly's shipment id.
    pub shipment_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Carrier code.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// When it was delivered, per the carrier.
    pub delivered_at: DateTime<Utc>,
}

impl Message for ShipmentDelivered {
    const TYPE: &'static str = "shipment.delivered";
    const VERSION: u16 = 1;
}

impl Validate for ShipmentDelivered {
    fn validate(&self) -> Result<(), ContractError> {
        carrier_code(&self.carrier).at("payload.carrier")?;
        tracking_number(&self.tracking_number).at("payload.tracking_number")
    }
}

/// `shipment.exception`: delivery failed, the parcel is coming back, or something else
/// needs a human. Published when a shipment enters such a state, not for every repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentException {
    /// Orderly's shipment id.
    pub shipment_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Carrier code.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// `delivery_failed`, `returned` or `exception`.
    pub status: ShipmentStatus,
    /// The carrier's own status word, for the operator.
    #[schemars(length(max = 64))]
    pub raw_status: String,
    /// The carrier's detail text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub description: Option<String>,
    /// When it happened at the carrier.
    pub event_at: DateTime<Utc>,
}

impl Message for ShipmentException {
    const TYPE: &'static str = "shipment.exception";
    const VERSION: u16 = 1;
}

impl Validate for ShipmentException {
    fn validate(&self) -> Result<(), ContractError> {
        carrier_code(&self.carrier).at("payload.carrier")?;
        tracking_number(&self.tracking_number).at("payload.tracking_number")?;
        ensure(
            matches!(
                self.status,
                ShipmentStatus::DeliveryFailed
                    | ShipmentStatus::Returned
                    | ShipmentStatus::Exception
            ),
            || {
                format!(
                    "{} is not an exception; expected delivery_failed, returned or exception",
                    self.status
                )
            },
        )
        .at("payload.status")?;
        text(&self.raw_status, 64).at("payload.raw_status")?;
        opt_text(self.description.as_ref(), 1000).at("payload.description")
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            ShipmentRequested,
            example: golden::shipment_requested,
            from: "fulfillment",
            says: "a warehouse is asked to ship part of an order",
            to: [ORDERS, API, OUT_WAREHOUSE],
        ),
        entry!(
            ShipmentUpdated,
            example: golden::shipment_updated,
            from: "carriers, 3PLs, tracking aggregators; ingress (their webhooks)",
            says: "a tracking event in the sender's vocabulary",
            // Not only from outside: the ingress worker publishes carriers' webhooks as this type.
            // The API keeps the scans for a shipment's tracking history.
            to: [FULFILLMENT, API],
        ),
        entry!(
            ShipmentDispatched,
            example: golden::shipment_dispatched,
            from: "fulfillment",
            says: "a shipment left the warehouse, with its tracking number",
            to: [ORDERS, INVENTORY, NOTIFICATIONS, API, OUT_MARKETPLACE],
        ),
        entry!(
            ShipmentDelivered,
            example: golden::shipment_delivered,
            from: "fulfillment",
            says: "a shipment was delivered",
            to: [ORDERS, NOTIFICATIONS, API],
        ),
        entry!(
            ShipmentException,
            example: golden::shipment_exception,
            from: "fulfillment",
            says: "delivery failed, returned, or something needs a human",
            to: [ORDERS, NOTIFICATIONS, API],
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn shipment_requested() -> Value {
        envelope::<ShipmentRequested>(
            Meta {
                n: 0x15,
                correlation: ORDER,
                causation: Some(0x06),
                at: "2026-03-14T09:26:54.115Z",
                producer: "fulfillment",
                span: Some("0a1b2c3d4e5f6071"),
            },
            json!({
                "shipment_id": SHIPMENT,
                "order_id": ORDER,
                "store_id": STORE,
                "external_order_id": "100234",
                "warehouse_id": "berlin-1",
                "ship_to": shipping_address(),
                "recipient_email": "joerg.schaefer@example.de",
                "shipping_method": "standard",
                "items": [
                    {
                        "line_id": "1",
                        "sku": "MUG-BLU-350",
                        "gtin": "5901234123457",
                        "title": "Kaffeebecher „Blau“ 350 ml",
                        "quantity": 2
                    }
                ]
            }),
        )
    }

    /// A DHL scan relayed by AfterShip, in AfterShip's words.
    pub(super) fn shipment_updated() -> Value {
        envelope::<ShipmentUpdated>(
            Meta {
                n: 0x16,
                correlation: SHIPMENT,
                causation: None,
                at: "2026-03-15T04:12:09Z",
                producer: "aftership",
                span: None,
            },
            json!({
                "shipment_id": SHIPMENT,
                "carrier": "dhl",
                "tracking_number": TRACKING,
                "vocabulary": "aftership",
                "raw_status": "InTransit",
                "raw_substatus": "InTransit_003",
                "description": "Die Sendung wurde im Start-Paketzentrum bearbeitet.",
                "event_at": "2026-03-15T03:58:00Z",
                "location": {
                    "city": "Rüdersdorf",
                    "postal_code": "15562",
                    "country": "DE",
                    "description": "Paketzentrum Rüdersdorf bei Berlin"
                },
                "estimated_delivery_at": "2026-03-16T18:00:00Z"
            }),
        )
    }

    pub(super) fn shipment_dispatched() -> Value {
        envelope::<ShipmentDispatched>(
            Meta {
                n: 0x17,
                correlation: ORDER,
                causation: Some(0x16),
                at: "2026-03-15T04:12:09.640Z",
                producer: "fulfillment",
                span: Some("1b2c3d4e5f607182"),
            },
            json!({
                "shipment_id": SHIPMENT,
                "order_id": ORDER,
                "store_id": STORE,
                "channel": "storefront",
                "external_order_id": "100234",
                "warehouse_id": "berlin-1",
                "carrier": "dhl",
                "tracking_number": TRACKING,
                "tracking_url": format!("https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={TRACKING}"),
                "dispatched_at": "2026-03-15T03:58:00Z",
                "items": [{ "line_id": "1", "sku": "MUG-BLU-350", "quantity": 2 }]
            }),
        )
    }

    pub(super) fn shipment_delivered() -> Value {
        envelope::<ShipmentDelivered>(
            Meta {
                n: 0x18,
                correlation: ORDER,
                causation: Some(0x31),
                at: "2026-03-16T13:27:45.102Z",
                producer: "fulfillment",
                span: Some("2c3d4e5f60718293"),
            },
            json!({
                "shipment_id": SHIPMENT,
                "order_id": ORDER,
                "store_id": STORE,
                "carrier": "dhl",
                "tracking_number": TRACKING,
                "delivered_at": "2026-03-16T13:21:00Z"
            }),
        )
    }

    pub(super) fn shipment_exception() -> Value {
        envelope::<ShipmentException>(
            Meta {
                n: 0x1a,
                correlation: ORDER,
                causation: Some(0x32),
                at: "2026-03-16T11:05:31.550Z",
                producer: "fulfillment",
                span: Some("3d4e5f6071829304"),
            },
            json!({
                "shipment_id": SHIPMENT,
                "order_id": ORDER,
                "store_id": STORE,
                "carrier": "dhl",
                "tracking_number": TRACKING,
                "status": "delivery_failed",
                "raw_status": "AttemptFail",
                "description": "Empfänger nicht angetroffen. Benachrichtigungskarte hinterlassen.",
                "event_at": "2026-03-16T10:58:00Z"
            }),
        )
    }
}
