//! Golden examples: one realistic envelope per message type, with fixed ids and timestamps.
//!
//! They follow one German storefront order (`shop-de` #100234, Jörg Schäfer in Berlin, two
//! lines in EUR) from checkout to refund, with the roads not taken (no stock, a cancellation
//! before dispatch, a failed delivery attempt), plus an Amazon order that goes on hold over
//! an unknown GTIN. They are committed as `docs/contracts/examples/<type>.v1.json`, and a test
//! decodes and validates every one, so they are always correct documentation.
//!
//! Written as JSON rather than built from the types on purpose: that is what other teams
//! read and send, and a type change that silently alters the wire form makes the committed
//! example stop matching.

use serde_json::{Value, json};

use crate::envelope::Message;
use crate::messages::*;

const STORE: &str = "shop-de";
const ORDER: &str = "0195f3a0-7c4e-7b1a-9d2e-3f4a5b6c7d8e";
const MARKETPLACE_ORDER: &str = "0195f3a1-1e2f-7a3b-8c4d-5e6f7a8b9c0d";
const EXCEPTION: &str = "0195f3a1-2f3a-7b4c-9d5e-6f7a8b9c0d1e";
const CANCEL_REQUEST: &str = "0195f3a0-9a8b-7c6d-8e5f-4a3b2c1d0e9f";
const SHIPMENT: &str = "0195f3a2-4b5c-7d6e-8f70-8192a3b4c5d6";
const INVOICE_REQUEST: &str = "0195f3a3-0a1b-7c2d-9e3f-4a5b6c7d8e9f";
const INVOICE: &str = "0195f3a3-5f60-7718-8293-a4b5c6d7e8f9";
const REFUND_REQUEST: &str = "0195f3a4-0b1c-7d2e-8f3a-4b5c6d7e8f90";
const NOTE_REQUEST: &str = "0195f3a6-2c3d-7e4f-8a5b-6c7d8e9f0a1b";
const RESEND_REQUEST: &str = "0195f3a6-3d4e-7f50-8b6c-7d8e9f0a1b2c";
const HOLD_REQUEST: &str = "0195f3a6-4e5f-7061-8c7d-8e9f0a1b2c3d";
const RELEASE_REQUEST: &str = "0195f3a6-5f60-7172-8d8e-9f0a1b2c3d4e";
const CREDIT_NOTE: &str = "0195f3a4-1a2b-7c3d-8e4f-5a6b7c8d9e0f";
const NOTIFICATION: &str = "0195f3a5-3c4d-7e5f-8a6b-7c8d9e0f1a2b";
const TRACKING: &str = "00340434161094042557";
/// The trace of the checkout, carried through the saga.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Envelope metadata of one example.
struct Meta {
    /// Last two hex digits of the message id.
    n: u8,
    correlation: &'static str,
    causation: Option<u8>,
    at: &'static str,
    producer: &'static str,
    /// Span id for the trace context; `None` for messages from outside Orderly.
    span: Option<&'static str>,
}

fn message_id(n: u8) -> String {
    format!("0195f3a0-8000-7000-8000-0000000000{n:02x}")
}

fn envelope<P: Message>(meta: Meta, payload: Value) -> Value {
    let mut envelope = json!({
        "message_id": message_id(meta.n),
        "message_type": P::TYPE,
        "schema_version": P::VERSION,
        "correlation_id": meta.correlation,
        "occurred_at": meta.at,
        "producer": meta.producer,
        "payload": payload
    });
    if let Some(object) = envelope.as_object_mut() {
        if let Some(cause) = meta.causation {
            object.insert("causation_id".into(), message_id(cause).into());
        }
        if let Some(span) = meta.span {
            object.insert(
                "trace".into(),
                json!({ "traceparent": format!("00-{TRACE_ID}-{span}-01") }),
            );
        }
    }
    envelope
}

fn customer() -> Value {
    json!({
        "id": "C-48213",
        "email": "joerg.schaefer@example.de",
        "name": "Jörg Schäfer",
        "locale": "de-DE",
        "is_business": false
    })
}

fn contact() -> Value {
    json!({ "name": "Jörg Schäfer", "email": "joerg.schaefer@example.de", "locale": "de-DE" })
}

fn billing_address() -> Value {
    json!({
        "name": "Jörg Schäfer",
        "lines": ["Hauptstraße 12"],
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE"
    })
}

fn shipping_address() -> Value {
    json!({
        "name": "Jörg Schäfer",
        "lines": ["Müllerstraße 138", "Hinterhaus, 3. OG"],
        "postal_code": "13353",
        "city": "Berlin",
        "country": "DE",
        "phone": "+49 30 1234567"
    })
}

fn payment() -> Value {
    json!({ "status": "authorized", "method": "card", "reference": "psp_8f2c1e77a9" })
}

/// A PDF as invoicing announces it: `folder` is `invoices` or `credit-notes`.
fn pdf(folder: &str, number: &str, sha256: &str, size_bytes: u64) -> Value {
    json!({
        "uri": format!("orderly://invoicing/{folder}/{number}.pdf"),
        "media_type": "application/pdf",
        "sha256": sha256,
        "size_bytes": size_bytes,
        "key": format!("{folder}/{STORE}/{number}.pdf")
    })
}

/// A German storefront checkout: two lines, gross prices, card authorised.
pub(crate) fn order_placed() -> Value {
    envelope::<OrderPlaced>(
        Meta {
            n: 0x01,
            correlation: "shop-de/storefront/100234",
            causation: None,
            at: "2026-03-14T09:26:53.120Z",
            producer: "storefront",
            span: None,
        },
        json!({
            "store_id": STORE,
            "channel": "storefront",
            "external_order_id": "100234",
            "revision": 1,
            "placed_at": "2026-03-14T09:26:51Z",
            "currency": "EUR",
            "prices_include_tax": true,
            "customer": customer(),
            "billing_address": billing_address(),
            "shipping_address": shipping_address(),
            "lines": [
                {
                    "line_id": "1",
                    "sku": "MUG-BLU-350",
                    "title": "Kaffeebecher „Blau“ 350 ml",
                    "quantity": 2,
                    "unit_price": "12.90",
                    "discount": "0.00",
                    "tax_category": "standard"
                },
                {
                    "line_id": "2",
                    "sku": "TEA-EARL-100",
                    "title": "Earl Grey Tee, 100 g",
                    "quantity": 1,
                    "unit_price": "7.50",
                    "discount": "0.75"
                }
            ],
            "shipping": "4.95",
            "discount": "0.00",
            "tax": "5.35",
            "total": "37.50",
            "payment": payment()
        }),
    )
}

/// The same order, accepted: SKUs confirmed, the tea's VAT category taken from the catalog.
pub(crate) fn order_accepted() -> Value {
    envelope::<OrderAccepted>(
        Meta {
            n: 0x02,
            correlation: ORDER,
            causation: Some(0x01),
            at: "2026-03-14T09:26:53.412Z",
            producer: "orders",
            span: Some("00f067aa0ba902b7"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "channel": "storefront",
            "external_order_id": "100234",
            "revision": 1,
            "placed_at": "2026-03-14T09:26:51Z",
            "currency": "EUR",
            "prices_include_tax": true,
            "customer": customer(),
            "billing_address": billing_address(),
            "shipping_address": shipping_address(),
            "lines": [
                {
                    "line_id": "1",
                    "sku": "MUG-BLU-350",
                    "title": "Kaffeebecher „Blau“ 350 ml",
                    "quantity": 2,
                    "unit_price": "12.90",
                    "discount": "0.00",
                    "tax_category": "standard"
                },
                {
                    "line_id": "2",
                    "sku": "TEA-EARL-100",
                    "title": "Earl Grey Tee, 100 g",
                    "quantity": 1,
                    "unit_price": "7.50",
                    "discount": "0.75",
                    "tax_category": "reduced"
                }
            ],
            "shipping": "4.95",
            "discount": "0.00",
            "tax": "5.35",
            "total": "37.50",
            "payment": payment()
        }),
    )
}

/// An Amazon order whose only line carries a GTIN we do not know.
pub(crate) fn order_on_hold() -> Value {
    envelope::<OrderOnHold>(
        Meta {
            n: 0x03,
            correlation: MARKETPLACE_ORDER,
            causation: Some(0x30),
            at: "2026-03-14T10:02:17.905Z",
            producer: "orders",
            span: Some("a3ce929d0e0e4736"),
        },
        json!({
            "order_id": MARKETPLACE_ORDER,
            "store_id": "amazon-de",
            "channel": "marketplace",
            "marketplace": "amazon.de",
            "external_order_id": "302-4417385-9926741",
            "revision": 1,
            "exceptions": [
                {
                    "exception_id": EXCEPTION,
                    "line_id": "53842117299403",
                    "gtin": "4006381333931",
                    "title": "STABILO BOSS Textmarker, 4er-Etui",
                    "quantity": 2,
                    "unit_price": "5.49",
                    "problem": "unknown_gtin"
                }
            ]
        }),
    )
}

pub(crate) fn order_status_changed() -> Value {
    envelope::<OrderStatusChanged>(
        Meta {
            n: 0x04,
            correlation: ORDER,
            causation: Some(0x06),
            at: "2026-03-14T09:26:54.030Z",
            producer: "orders",
            span: Some("b7ad6b7169203331"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "channel": "storefront",
            "external_order_id": "100234",
            "from": "accepted",
            "to": "processing",
            "sequence": 2,
            "reason": "Bestand reserviert in berlin-1 und hamburg-2",
            "customer": contact()
        }),
    )
}

pub(crate) fn order_cancel_requested() -> Value {
    envelope::<OrderCancelRequested>(
        Meta {
            n: 0x05,
            correlation: "shop-de/storefront/100234",
            causation: None,
            at: "2026-03-14T09:41:08Z",
            producer: "storefront",
            span: None,
        },
        json!({
            "request_id": CANCEL_REQUEST,
            "store_id": STORE,
            "order": { "channel": "storefront", "external_order_id": "100234" },
            "requested_by": { "kind": "customer", "id": "C-48213" },
            "reason": "Versehentlich doppelt bestellt"
        }),
    )
}

pub(crate) fn order_cancelled() -> Value {
    envelope::<OrderCancelled>(
        Meta {
            n: 0x07,
            correlation: ORDER,
            causation: Some(0x05),
            at: "2026-03-14T09:41:08.377Z",
            producer: "orders",
            span: Some("c1d2e3f4a5b6c7d8"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "channel": "storefront",
            "external_order_id": "100234",
            "request_id": CANCEL_REQUEST,
            "scope": "order",
            "lines": [
                { "line_id": "1", "sku": "MUG-BLU-350", "quantity": 2 },
                { "line_id": "2", "sku": "TEA-EARL-100", "quantity": 1 }
            ],
            "reason": "Versehentlich doppelt bestellt"
        }),
    )
}

pub(crate) fn order_refund_requested() -> Value {
    envelope::<OrderRefundRequested>(
        Meta {
            n: 0x08,
            correlation: ORDER,
            causation: None,
            at: "2026-03-19T14:05:00Z",
            producer: "admin-api",
            span: None,
        },
        json!({
            "request_id": REFUND_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "requested_by": { "kind": "operator", "id": "anna.becker" },
            "reason": "Ein Becher kam zerbrochen an (Foto liegt vor)",
            "lines": [{ "line_id": "1", "quantity": 1 }],
            "refund_shipping": false
        }),
    )
}

pub(crate) fn order_exception_resolved() -> Value {
    envelope::<OrderExceptionResolved>(
        Meta {
            n: 0x09,
            correlation: MARKETPLACE_ORDER,
            causation: None,
            at: "2026-03-14T10:15:42Z",
            producer: "admin-api",
            span: None,
        },
        json!({
            "order_id": MARKETPLACE_ORDER,
            "store_id": "amazon-de",
            "exception_id": EXCEPTION,
            "resolution": "map_to_sku",
            "sku": "HL-STABILO-4",
            "remember_mapping": true,
            "resolved_by": { "kind": "operator", "id": "anna.becker" },
            "note": "Neue EAN des Herstellers, Artikel ist identisch"
        }),
    )
}

pub(crate) fn order_address_changed() -> Value {
    envelope::<OrderAddressChanged>(
        Meta {
            n: 0x24,
            correlation: ORDER,
            causation: Some(0x01),
            at: "2026-03-14T10:05:12.402Z",
            producer: "orders",
            span: Some("e5f6a7b8c9d0e1f2"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "external_order_id": "100234",
            "revision": 2,
            "billing_address": billing_address(),
            "shipping_address": {
                "name": "Jörg Schäfer",
                "lines": ["Paketshop Kiosk am Leopoldplatz", "Müllerstraße 24"],
                "postal_code": "13353",
                "city": "Berlin",
                "country": "DE",
                "phone": "+49 30 1234567"
            }
        }),
    )
}

pub(crate) fn order_note_requested() -> Value {
    envelope::<OrderNoteRequested>(
        Meta {
            n: 0x27,
            correlation: ORDER,
            causation: None,
            at: "2026-03-14T11:02:40Z",
            producer: "api",
            span: Some("a1b2c3d4e5f60718"),
        },
        json!({
            "request_id": NOTE_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "requested_by": { "kind": "operator", "id": "anna.becker@example.de" },
            "text": "Kunde hat angerufen: bitte vor 12 Uhr zustellen, Lieferung an Nachbarn erlaubt."
        }),
    )
}

pub(crate) fn order_request_answered() -> Value {
    envelope::<OrderRequestAnswered>(
        Meta {
            n: 0x28,
            correlation: ORDER,
            causation: Some(0x05),
            at: "2026-03-14T09:41:08.214Z",
            producer: "orders",
            span: Some("b2c3d4e5f6071829"),
        },
        json!({
            "request_type": "order.cancel_requested",
            "request_id": CANCEL_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "outcome": "partially_applied",
            "detail": "cancelled line 2 × 1; refused: line 1 has left the warehouse (shipment dispatched)",
            "refused": ["line 1 has left the warehouse (shipment dispatched)"]
        }),
    )
}

pub(crate) fn order_completed() -> Value {
    envelope::<OrderCompleted>(
        Meta {
            n: 0x0a,
            correlation: ORDER,
            causation: Some(0x19),
            at: "2026-03-17T11:02:40.218Z",
            producer: "orders",
            span: Some("d4e5f6a7b8c9d0e1"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "channel": "storefront",
            "external_order_id": "100234",
            "currency": "EUR",
            "total": "37.50",
            "invoice_numbers": ["RE-2026-000123", "RE-2026-000124"]
        }),
    )
}

pub(crate) fn product_upserted() -> Value {
    envelope::<ProductUpserted>(
        Meta {
            n: 0x10,
            correlation: "MUG-BLU-350",
            causation: None,
            at: "2026-03-02T07:00:12Z",
            producer: "pim",
            span: None,
        },
        json!({
            "sku": "MUG-BLU-350",
            "gtins": ["5901234123457"],
            "title": "Kaffeebecher „Blau“ 350 ml",
            "tax_category": "standard",
            "active": true,
            "stock_tracked": true,
            "weight_grams": 420,
            "hs_code": "691200",
            "country_of_origin": "PT",
            "updated_at": "2026-03-02T06:59:58Z"
        }),
    )
}

pub(crate) fn inventory_adjusted() -> Value {
    envelope::<InventoryAdjusted>(
        Meta {
            n: 0x11,
            correlation: "berlin-1/MUG-BLU-350",
            causation: None,
            at: "2026-03-14T06:15:03Z",
            producer: "wms",
            span: None,
        },
        json!({
            "warehouse_id": "berlin-1",
            "sku": "MUG-BLU-350",
            "set_on_hand": 140,
            "reason": "stock_count",
            "source": "wms",
            "reference": "ZAEHLUNG-2026-03-14-0815",
            "as_of": "2026-03-14T06:00:00Z"
        }),
    )
}

/// The order split across two warehouses: the mugs from Berlin, the tea from Hamburg.
pub(crate) fn stock_reserved() -> Value {
    envelope::<StockReserved>(
        Meta {
            n: 0x06,
            correlation: ORDER,
            causation: Some(0x02),
            at: "2026-03-14T09:26:53.870Z",
            producer: "inventory",
            span: Some("e2f3a4b5c6d7e8f9"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "allocations": [
                {
                    "warehouse_id": "berlin-1",
                    "lines": [{ "line_id": "1", "sku": "MUG-BLU-350", "quantity": 2 }]
                },
                {
                    "warehouse_id": "hamburg-2",
                    "lines": [{ "line_id": "2", "sku": "TEA-EARL-100", "quantity": 1 }]
                }
            ]
        }),
    )
}

pub(crate) fn stock_unavailable() -> Value {
    envelope::<StockUnavailable>(
        Meta {
            n: 0x12,
            correlation: ORDER,
            causation: Some(0x02),
            at: "2026-03-14T09:26:53.870Z",
            producer: "inventory",
            span: Some("e2f3a4b5c6d7e8f9"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "shortages": [
                { "line_id": "2", "sku": "TEA-EARL-100", "requested": 1, "available": 0 }
            ],
            "backordered": true
        }),
    )
}

pub(crate) fn stock_released() -> Value {
    envelope::<StockReleased>(
        Meta {
            n: 0x13,
            correlation: ORDER,
            causation: Some(0x07),
            at: "2026-03-14T09:41:08.702Z",
            producer: "inventory",
            span: Some("f1e2d3c4b5a69788"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "reason": "order_cancelled",
            "lines": [
                { "warehouse_id": "berlin-1", "line_id": "1", "sku": "MUG-BLU-350", "quantity": 2 },
                { "warehouse_id": "hamburg-2", "line_id": "2", "sku": "TEA-EARL-100", "quantity": 1 }
            ]
        }),
    )
}

pub(crate) fn stock_level_changed() -> Value {
    envelope::<StockLevelChanged>(
        Meta {
            n: 0x14,
            correlation: "MUG-BLU-350",
            causation: Some(0x06),
            at: "2026-03-14T09:26:53.901Z",
            producer: "inventory",
            span: Some("e2f3a4b5c6d7e8f9"),
        },
        json!({
            "sku": "MUG-BLU-350",
            "gtins": ["5901234123457"],
            "on_hand": 152,
            "reserved": 2,
            "available": 150,
            "warehouses": [
                { "warehouse_id": "berlin-1", "on_hand": 140, "reserved": 2, "available": 138 },
                { "warehouse_id": "hamburg-2", "on_hand": 12, "reserved": 0, "available": 12 }
            ],
            "sequence": 5812,
            "as_of": "2026-03-14T09:26:53.860Z"
        }),
    )
}

pub(crate) fn shipment_requested() -> Value {
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
pub(crate) fn shipment_updated() -> Value {
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

pub(crate) fn shipment_dispatched() -> Value {
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

pub(crate) fn shipment_delivered() -> Value {
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

pub(crate) fn shipment_exception() -> Value {
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

/// Invoicing on shipment: the Berlin parcel (mugs) carries the shipping charge.
pub(crate) fn invoice_requested() -> Value {
    envelope::<InvoiceRequested>(
        Meta {
            n: 0x1b,
            correlation: ORDER,
            causation: Some(0x17),
            at: "2026-03-15T04:12:09.655Z",
            producer: "fulfillment",
            span: Some("1b2c3d4e5f607182"),
        },
        json!({
            "request_id": INVOICE_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "timing": "on_shipment",
            "shipment_id": SHIPMENT,
            "external_order_id": "100234",
            "placed_at": "2026-03-14T09:26:51Z",
            "currency": "EUR",
            "prices_include_tax": true,
            "buyer": customer(),
            "billing_address": billing_address(),
            "shipping_address": shipping_address(),
            "lines": [
                {
                    "line_id": "1",
                    "sku": "MUG-BLU-350",
                    "title": "Kaffeebecher „Blau“ 350 ml",
                    "quantity": 2,
                    "unit_price": "12.90",
                    "discount": "0.00",
                    "tax_category": "standard"
                }
            ],
            "shipping": "4.95",
            "discount": "0.00"
        }),
    )
}

fn buyer() -> Value {
    json!({ "name": "Jörg Schäfer", "country": "DE", "email": "joerg.schaefer@example.de" })
}

/// 2 × 12.90 + 4.95 shipping = 30.75 gross at 19 %: 25.84 net + 4.91 VAT.
pub(crate) fn invoice_issued() -> Value {
    envelope::<InvoiceIssued>(
        Meta {
            n: 0x19,
            correlation: ORDER,
            causation: Some(0x1b),
            at: "2026-03-15T04:12:10.384Z",
            producer: "invoicing",
            span: Some("4e5f607182930415"),
        },
        json!({
            "invoice_id": INVOICE,
            "invoice_number": "RE-2026-000123",
            "request_id": INVOICE_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "shipment_id": SHIPMENT,
            "issued_at": "2026-03-15T04:12:10Z",
            "currency": "EUR",
            "vat_treatment": "domestic",
            "buyer": buyer(),
            "totals": {
                "net": "25.84",
                "tax": "4.91",
                "gross": "30.75",
                "breakdown": [{ "rate": "19", "net": "25.84", "tax": "4.91" }]
            },
            "pdf": pdf(
                "invoices",
                "RE-2026-000123",
                "9f2c4be1d0a6e8f3b7c5d2a1e4f6b8c0d9e7f5a3b1c2d4e6f8a0b2c4d6e8f0a1",
                48213
            )
        }),
    )
}

/// One broken mug refunded: 12.90 gross = 10.84 net + 2.06 VAT.
pub(crate) fn credit_note_issued() -> Value {
    envelope::<CreditNoteIssued>(
        Meta {
            n: 0x1c,
            correlation: ORDER,
            causation: Some(0x08),
            at: "2026-03-19T14:05:01.127Z",
            producer: "invoicing",
            span: Some("5f60718293041526"),
        },
        json!({
            "credit_note_id": CREDIT_NOTE,
            "credit_note_number": "GS-2026-000017",
            "invoice_id": INVOICE,
            "invoice_number": "RE-2026-000123",
            "request_id": REFUND_REQUEST,
            "reason": "refund",
            "order_id": ORDER,
            "store_id": STORE,
            "issued_at": "2026-03-19T14:05:01Z",
            "currency": "EUR",
            "vat_treatment": "domestic",
            "buyer": buyer(),
            "totals": {
                "net": "10.84",
                "tax": "2.06",
                "gross": "12.90",
                "breakdown": [{ "rate": "19", "net": "10.84", "tax": "2.06" }]
            },
            "pdf": pdf(
                "credit-notes",
                "GS-2026-000017",
                "0c8d3f5e7a9b1c2d4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a4b6c8d",
                39870
            )
        }),
    )
}

pub(crate) fn notification_requested() -> Value {
    envelope::<NotificationRequested>(
        Meta {
            n: 0x1d,
            correlation: ORDER,
            causation: Some(0x17),
            at: "2026-03-15T04:12:09.911Z",
            producer: "notifications",
            span: Some("6071829304152637"),
        },
        json!({
            "request_id": NOTIFICATION,
            "store_id": STORE,
            "order_id": ORDER,
            "channel": "email",
            "recipient": "joerg.schaefer@example.de",
            "locale": "de-DE",
            "template": "order.shipped",
            "subject": "Deine Bestellung 100234 ist unterwegs",
            "body": format!(
                "Hallo Jörg,\n\ndeine Bestellung 100234 hat unser Lager verlassen und ist mit DHL unterwegs.\n\
                 Sendungsnummer: {TRACKING}\n\nViele Grüße\ndein Team von shop-de"
            )
        }),
    )
}

pub(crate) fn notification_sent() -> Value {
    envelope::<NotificationSent>(
        Meta {
            n: 0x1e,
            correlation: ORDER,
            causation: Some(0x1d),
            at: "2026-03-15T04:12:11.204Z",
            producer: "notification-system",
            span: None,
        },
        json!({
            "request_id": NOTIFICATION,
            "order_id": ORDER,
            "channel": "email",
            "template": "order.shipped",
            "delivered_at": "2026-03-15T04:12:11Z",
            "provider": "ses",
            "provider_message_id": "0102018e3f6c2b1a-7d4e9c2f-5b8a-4e1d-9c3f-2a7b6d8e0f11-000000"
        }),
    )
}

pub(crate) fn notification_failed() -> Value {
    envelope::<NotificationFailed>(
        Meta {
            n: 0x1f,
            correlation: ORDER,
            causation: Some(0x33),
            at: "2026-03-16T06:30:02Z",
            producer: "notification-system",
            span: None,
        },
        json!({
            "request_id": "0195f3a5-4d5e-7f60-9172-8394a5b6c7d8",
            "order_id": ORDER,
            "channel": "sms",
            "template": "order.out_for_delivery",
            "failed_at": "2026-03-16T06:30:01Z",
            "error": "21614: 'To' number is not a valid mobile number",
            "permanent": true
        }),
    )
}

pub(crate) fn store_upserted() -> Value {
    envelope::<StoreUpserted>(
        Meta {
            n: 0x25,
            correlation: STORE,
            causation: None,
            at: "2026-01-02T08:00:00Z",
            producer: "admin-api",
            span: None,
        },
        json!({
            "store_id": STORE,
            "revision": 1,
            "name": "Beispiel Shop Deutschland",
            "country": "DE",
            "currency": "EUR",
            "active": true
        }),
    )
}

pub(crate) fn warehouse_upserted() -> Value {
    envelope::<WarehouseUpserted>(
        Meta {
            n: 0x26,
            correlation: "berlin-1",
            causation: None,
            at: "2026-01-02T08:10:00Z",
            producer: "admin-api",
            span: None,
        },
        json!({
            "warehouse_id": "berlin-1",
            "revision": 2,
            "name": "Lager Berlin-Tempelhof",
            "address": {
                "name": "Beispiel Handels GmbH – Lager",
                "lines": ["Oberlandstraße 26"],
                "postal_code": "12099",
                "city": "Berlin",
                "country": "DE"
            },
            "priority": 10,
            "active": true
        }),
    )
}

pub(crate) fn store_invoice_settings_updated() -> Value {
    envelope::<StoreInvoiceSettingsUpdated>(
        Meta {
            n: 0x20,
            correlation: STORE,
            causation: None,
            at: "2026-01-02T08:30:00Z",
            producer: "admin-api",
            span: None,
        },
        json!({
            "store_id": STORE,
            "revision": 3,
            "legal_name": "Beispiel Handels GmbH",
            "address": {
                "name": "Beispiel Handels GmbH",
                "lines": ["Torstraße 101"],
                "postal_code": "10119",
                "city": "Berlin",
                "country": "DE"
            },
            "vat_id": "DE123456789",
            "tax_number": "37/123/45678",
            "invoice_timing": "on_shipment",
            "invoice_number_prefix": "RE-",
            "credit_note_number_prefix": "GS-",
            "oss_registered": true,
            "locale": "de-DE",
            "payment_terms_days": 14,
            "footer": "Beispiel Handels GmbH · Amtsgericht Berlin-Charlottenburg HRB 123456 · Geschäftsführerin: Zoë Krüger",
            "number_digits": 6,
            "number_yearly_reset": true,
            "rounding": "per_line"
        }),
    )
}

const WEBHOOK_ENDPOINT: &str = "0195f3a6-1b2c-7d3e-8f40-5a6b7c8d9e0f";

pub(crate) fn store_notification_settings_updated() -> Value {
    envelope::<StoreNotificationSettingsUpdated>(
        Meta {
            n: 0x21,
            correlation: STORE,
            causation: None,
            at: "2026-01-02T08:45:00Z",
            producer: "admin-api",
            span: None,
        },
        json!({
            "store_id": STORE,
            "revision": 2,
            "store_name": "Beispiel Shop",
            "locale": "de-DE",
            "staff_recipients": [
                { "channel": "email", "address": "bestellungen@beispiel-shop.de" },
                { "channel": "sms", "address": "+491701234567", "locale": "de" }
            ],
            "rules": [
                {
                    "event": "shipment.delivered",
                    "audience": "customer",
                    "enabled": false,
                    "channel": "email"
                },
                {
                    "event": "shipment.exception",
                    "audience": "staff",
                    "enabled": true,
                    "channel": "sms",
                    "template": "shipment.exception.short"
                }
            ],
            "templates": [
                {
                    "key": "shipment.exception.short",
                    "locale": "de",
                    "subject": "Problem mit Sendung {tracking_number}",
                    "body": "Bestellung {order_number}: {carrier} meldet {status} für {tracking_number}."
                }
            ]
        }),
    )
}

pub(crate) fn webhook_endpoint_registered() -> Value {
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

pub(crate) fn webhook_endpoint_disabled() -> Value {
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

pub(crate) fn notification_resend_requested() -> Value {
    envelope::<NotificationResendRequested>(
        Meta {
            n: 0x29,
            correlation: ORDER,
            causation: None,
            at: "2026-03-16T08:12:03Z",
            producer: "api",
            span: Some("c3d4e5f607182930"),
        },
        json!({
            "request_id": RESEND_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "requested_by": { "kind": "operator", "id": "anna.becker@example.de" },
            "event": "shipment.dispatched"
        }),
    )
}

pub(crate) fn order_hold_requested() -> Value {
    envelope::<OrderHoldRequested>(
        Meta {
            n: 0x2a,
            correlation: ORDER,
            causation: None,
            at: "2026-03-14T09:20:11Z",
            producer: "api",
            span: Some("d4e5f60718293a4b"),
        },
        json!({
            "request_id": HOLD_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "requested_by": { "kind": "operator", "id": "anna.becker@example.de" },
            "reason": "Zahlung wird vom Zahlungsdienstleister geprüft"
        }),
    )
}

pub(crate) fn order_release_requested() -> Value {
    envelope::<OrderReleaseRequested>(
        Meta {
            n: 0x2b,
            correlation: ORDER,
            causation: None,
            at: "2026-03-14T11:45:30Z",
            producer: "api",
            span: Some("e5f60718293a4b5c"),
        },
        json!({
            "request_id": RELEASE_REQUEST,
            "order_id": ORDER,
            "store_id": STORE,
            "requested_by": { "kind": "operator", "id": "anna.becker@example.de" },
            "reason": "Zahlung bestätigt"
        }),
    )
}

pub(crate) fn order_hold_changed() -> Value {
    envelope::<OrderHoldChanged>(
        Meta {
            n: 0x2c,
            correlation: ORDER,
            causation: Some(0x2a),
            at: "2026-03-14T09:20:11.318Z",
            producer: "orders",
            span: Some("f60718293a4b5c6d"),
        },
        json!({
            "order_id": ORDER,
            "store_id": STORE,
            "external_order_id": "100234",
            "held": true,
            "sequence": 1,
            "reason": "Zahlung wird vom Zahlungsdienstleister geprüft",
            "by": { "kind": "operator", "id": "anna.becker@example.de" }
        }),
    )
}
