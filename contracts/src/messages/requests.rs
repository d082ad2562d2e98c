//! Requests about an order, from operators (the admin API), storefronts and marketplaces:
//! cancel, refund, resolve an item exception, note, hold and release; and the answer the
//! owner of a request gives (`order.request_answered`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{Actor, Address, LineQuantity, OrderRef, check_line_quantities};
use super::orders::MAX_LINES;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{Amount, Sku, StoreId};
use crate::validate::{At, Validate, count, ensure, opt_text, text};

/// `order.cancel_requested`: someone asks to cancel an order, or some of its lines.
///
/// Before dispatch the orders worker cancels (→ `order.cancelled`); after dispatch it
/// cancels only what has not left a warehouse, or refuses with a reason on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelRequested {
    /// Id of this request; `order.cancelled` echoes it. Re-sending a request with the same
    /// id is harmless.
    pub request_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// The order.
    pub order: OrderRef,
    /// Who asks.
    pub requested_by: Actor,
    /// Why, for the timeline.
    #[schemars(length(max = 1000))]
    pub reason: String,
    /// The lines and quantities to cancel; absent to cancel the whole order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineQuantity>>,
}

impl Message for OrderCancelRequested {
    const TYPE: &'static str = "order.cancel_requested";
    const VERSION: u16 = 1;
}

impl Validate for OrderCancelRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.order.check("payload.order")?;
        self.requested_by.check("payload.requested_by")?;
        text(&self.reason, 1000).at("payload.reason")?;
        if let Some(lines) = &self.lines {
            count(lines, 1, MAX_LINES)
                .map_err(|_| {
                    "leave `lines` out to cancel the whole order; an empty list cancels nothing"
                        .to_owned()
                })
                .at("payload.lines")?;
            check_line_quantities(lines, "payload.lines")?;
        }
        Ok(())
    }
}

/// `order.refund_requested`: refund some lines, the shipping and/or a free amount of an
/// invoiced order.
/// Invoicing issues a credit note against the invoice, reversing its VAT treatment.
///
/// Names the order by Orderly's id (unlike a cancellation): invoicing, which acts on it,
/// knows orders only by that id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRefundRequested {
    /// Id of this request; `credit_note.issued` echoes it. Re-sending is harmless.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Who asks.
    pub requested_by: Actor,
    /// Why ("Returned: damaged in transit").
    #[schemars(length(max = 1000))]
    pub reason: String,
    /// Lines and quantities to refund; may be empty when only shipping or an amount is
    /// refunded.
    pub lines: Vec<LineQuantity>,
    /// Whether to refund the shipping charge too.
    pub refund_shipping: bool,
    /// A free amount to refund besides (or instead of) lines and shipping: a goodwill
    /// gesture, a price adjustment. Gross, in the order's currency, at most what the
    /// order's invoices still hold; invoicing credits it as a price reduction spread over
    /// the invoice's VAT rates in proportion to what each still holds. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
}

impl Message for OrderRefundRequested {
    const TYPE: &'static str = "order.refund_requested";
    const VERSION: u16 = 1;
}

impl Validate for OrderRefundRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.requested_by.check("payload.requested_by")?;
        text(&self.reason, 1000).at("payload.reason")?;
        if let Some(amount) = self.amount {
            ensure(!amount.is_zero(), || {
                "a refund of 0 refunds nothing; leave `amount` out".to_owned()
            })
            .at("payload.amount")?;
        }
        ensure(
            !self.lines.is_empty() || self.refund_shipping || self.amount.is_some(),
            || "nothing to refund: no lines, no amount and refund_shipping is false".to_owned(),
        )
        .at("payload.lines")?;
        count(&self.lines, 0, MAX_LINES).at("payload.lines")?;
        check_line_quantities(&self.lines, "payload.lines")
    }
}

string_enum! {
    /// What the operator decided for an order item exception.
    pub enum ExceptionResolution {
        /// The line is this SKU (`sku` says which).
        MapToSku = "map_to_sku",
        /// Drop the line from the order; the rest goes on.
        RemoveLine = "remove_line",
        /// Cancel the whole order.
        CancelOrder = "cancel_order",
    }
}

/// `order.exception_resolved`: an operator resolved an order item exception. When the last
/// one is resolved, the order is accepted (or cancelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderExceptionResolved {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// The exception resolved (from `order.on_hold`).
    pub exception_id: Uuid,
    /// The decision.
    pub resolution: ExceptionResolution,
    /// The SKU the line is; required for `map_to_sku`, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// Remember the line's GTIN → `sku` so future orders match by themselves. Only with
    /// `map_to_sku`.
    #[serde(default)]
    pub remember_mapping: bool,
    /// The operator.
    pub resolved_by: Actor,
    /// A note for the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub note: Option<String>,
}

impl Message for OrderExceptionResolved {
    const TYPE: &'static str = "order.exception_resolved";
    const VERSION: u16 = 1;
}

impl Validate for OrderExceptionResolved {
    fn validate(&self) -> Result<(), ContractError> {
        let mapping = self.resolution == ExceptionResolution::MapToSku;
        ensure(mapping == self.sku.is_some(), || {
            if mapping {
                "required to map a line to a SKU".to_owned()
            } else {
                format!(
                    "only `map_to_sku` names a SKU, this is `{}`",
                    self.resolution
                )
            }
        })
        .at("payload.sku")?;
        ensure(mapping || !self.remember_mapping, || {
            "only a `map_to_sku` resolution can be remembered".to_owned()
        })
        .at("payload.remember_mapping")?;
        self.resolved_by.check("payload.resolved_by")?;
        opt_text(self.note.as_ref(), 1000).at("payload.note")
    }
}

/// `order.note_requested`: an operator adds an internal note to an order's timeline (never
/// shown to the customer). Orders answers with `order.request_answered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderNoteRequested {
    /// Id of this request; re-sending it with the same id adds the note once.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (must be the order's).
    pub store_id: StoreId,
    /// Who writes it.
    pub requested_by: Actor,
    /// The note.
    #[schemars(length(min = 1, max = 2000))]
    pub text: String,
}

impl Message for OrderNoteRequested {
    const TYPE: &'static str = "order.note_requested";
    const VERSION: u16 = 1;
}

impl Validate for OrderNoteRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.requested_by.check("payload.requested_by")?;
        text(&self.text, 2000).at("payload.text")
    }
}

string_enum! {
    /// What became of a request about an order.
    pub enum RequestOutcome {
        /// Done as asked.
        Applied = "applied",
        /// Done in part; `refused` says what was not and why.
        PartiallyApplied = "partially_applied",
        /// Nothing done; `refused` says why.
        Refused = "refused",
        /// The request's id was answered before; nothing new was done.
        Duplicate = "duplicate",
    }
}

/// `order.request_answered`: what the worker that owns a request about an order made of it
/// (orders: `order.cancel_requested`, `order.refund_requested`, `order.exception_resolved`,
/// `order.note_requested`; notifications: `notification.resend_requested`). Its envelope's
/// `causation_id` is the request's `message_id`, so whoever sent the request (the admin
/// API's command resources) learns its outcome. A request about an order orders does not
/// know, or naming another store, gets no answer: it is dead-lettered with the reason like
/// any message its receiver cannot take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequestAnswered {
    /// The request's message type (`order.cancel_requested`, ...).
    #[schemars(length(max = 64))]
    pub request_type: String,
    /// The request's own id, where it has one (`request_id` of a cancel, refund or note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The order's store.
    pub store_id: StoreId,
    /// What became of it.
    pub outcome: RequestOutcome,
    /// One sentence saying what was done, as on the order's timeline.
    #[schemars(length(max = 2000))]
    pub detail: String,
    /// What was not done, and why (empty when applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 1000)))]
    pub refused: Vec<String>,
}

impl Message for OrderRequestAnswered {
    const TYPE: &'static str = "order.request_answered";
    const VERSION: u16 = 1;
}

impl Validate for OrderRequestAnswered {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.request_type, 64).at("payload.request_type")?;
        text(&self.detail, 2000).at("payload.detail")?;
        for (i, why) in self.refused.iter().enumerate() {
            text(why, 1000).at_with(|| format!("payload.refused[{i}]"))?;
        }
        let partial = matches!(
            self.outcome,
            RequestOutcome::Refused | RequestOutcome::PartiallyApplied
        );
        ensure(partial != self.refused.is_empty(), || {
            if partial {
                "a refusal says why".to_owned()
            } else {
                format!("`{}` refuses nothing", self.outcome)
            }
        })
        .at("payload.refused")
    }
}

/// `order.hold_requested`: an operator puts an order on hold (suspected fraud, the customer
/// asked to wait, an address to check). Until it is released nothing more of it is asked of
/// a warehouse; what a warehouse was already asked for is for it to pause
/// (`order.hold_changed`). Orders answers with `order.request_answered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderHoldRequested {
    /// Id of this request; re-sending it with the same id holds once.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (must be the order's).
    pub store_id: StoreId,
    /// Who asks.
    pub requested_by: Actor,
    /// Why, for the timeline and the warehouse.
    #[schemars(length(max = 1000))]
    pub reason: String,
}

impl Message for OrderHoldRequested {
    const TYPE: &'static str = "order.hold_requested";
    const VERSION: u16 = 1;
}

impl Validate for OrderHoldRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.requested_by.check("payload.requested_by")?;
        text(&self.reason, 1000).at("payload.reason")
    }
}

/// `order.release_requested`: an operator releases an order they put on hold; what waited
/// for the release goes on. Orders answers with `order.request_answered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderReleaseRequested {
    /// Id of this request; re-sending it with the same id releases once.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (must be the order's).
    pub store_id: StoreId,
    /// Who asks.
    pub requested_by: Actor,
    /// Why, for the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
}

impl Message for OrderReleaseRequested {
    const TYPE: &'static str = "order.release_requested";
    const VERSION: u16 = 1;
}

impl Validate for OrderReleaseRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.requested_by.check("payload.requested_by")?;
        opt_text(self.reason.as_ref(), 1000).at("payload.reason")
    }
}

/// `order.address_change_requested`: an operator corrects an accepted order's delivery
/// and/or invoice address before anything of it has left a warehouse (a typo, a customer's
/// call, a parcel shop instead of home). Orders applies it and announces
/// `order.address_changed` (with `amendment`, its count of operators' changes), or refuses it
/// once a shipment has been dispatched or the order is closed; either way it answers with
/// `order.request_answered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderAddressChangeRequested {
    /// Id of this request; re-sending it with the same id changes the address once.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (must be the order's).
    pub store_id: StoreId,
    /// Who asks.
    pub requested_by: Actor,
    /// Why, for the timeline.
    #[schemars(length(max = 1000))]
    pub reason: String,
    /// The new delivery address; absent to keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    /// The new invoice address; absent to keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
}

impl Message for OrderAddressChangeRequested {
    const TYPE: &'static str = "order.address_change_requested";
    const VERSION: u16 = 1;
}

impl Validate for OrderAddressChangeRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.requested_by.check("payload.requested_by")?;
        text(&self.reason, 1000).at("payload.reason")?;
        ensure(
            self.shipping_address.is_some() || self.billing_address.is_some(),
            || {
                "give `shipping_address`, `billing_address` or both: nothing would change"
                    .to_owned()
            },
        )
        .at("payload.shipping_address")?;
        if let Some(address) = &self.shipping_address {
            address.check("payload.shipping_address")?;
        }
        if let Some(address) = &self.billing_address {
            address.check("payload.billing_address")?;
        }
        Ok(())
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            OrderCancelRequested,
            example: golden::order_cancel_requested,
            from: "storefront, operators",
            says: "cancel an order or some lines",
            // Not only from outside: the admin API sends the requests about an order too.
            to: [ORDERS],
        ),
        entry!(
            OrderRefundRequested,
            example: golden::order_refund_requested,
            from: "operators, storefront",
            says: "refund lines and/or shipping of an invoiced order",
            to: [ORDERS, INVOICING],
        ),
        entry!(
            OrderExceptionResolved,
            example: golden::order_exception_resolved,
            from: "operators",
            says: "an order item exception is resolved (map to SKU, remove line, cancel)",
            to: [ORDERS],
        ),
        entry!(
            OrderNoteRequested,
            example: golden::order_note_requested,
            from: "operators (admin API)",
            says: "add an internal note to an order's timeline",
            to: [ORDERS],
        ),
        entry!(
            OrderHoldRequested,
            example: golden::order_hold_requested,
            from: "operators (admin API)",
            says: "put an order on hold: nothing more of it is shipped until it is released",
            to: [ORDERS],
        ),
        entry!(
            OrderReleaseRequested,
            example: golden::order_release_requested,
            from: "operators (admin API)",
            says: "release an order an operator put on hold",
            to: [ORDERS],
        ),
        entry!(
            OrderRequestAnswered,
            example: golden::order_request_answered,
            from: "orders, notifications",
            says: "what became of a request about an order (applied, partly, refused), caused by the request",
            // The API follows the outcomes of the requests it sent, for its command resources.
            to: [API],
        ),
        entry!(
            OrderAddressChangeRequested,
            example: golden::order_address_change_requested,
            from: "operators (admin API)",
            says: "correct an accepted order's delivery and/or invoice address before it ships",
            to: [ORDERS],
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn order_cancel_requested() -> Value {
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

    pub(super) fn order_refund_requested() -> Value {
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

    pub(super) fn order_exception_resolved() -> Value {
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

    pub(super) fn order_note_requested() -> Value {
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

    pub(super) fn order_hold_requested() -> Value {
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

    pub(super) fn order_release_requested() -> Value {
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

    pub(super) fn order_address_change_requested() -> Value {
        envelope::<OrderAddressChangeRequested>(
            Meta {
                n: 0x2d,
                correlation: ORDER,
                causation: None,
                at: "2026-03-14T09:58:03Z",
                producer: "api",
                span: Some("f60718293a4b5c6d"),
            },
            json!({
                "request_id": ADDRESS_REQUEST,
                "order_id": ORDER,
                "store_id": STORE,
                "requested_by": { "kind": "operator", "id": "anna.becker@example.de" },
                "reason": "Kunde rief an: bitte an den Paketshop liefern",
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

    pub(super) fn order_request_answered() -> Value {
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
}
