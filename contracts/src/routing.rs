//! Which queue receives which message type: the routing table, as data.
//!
//! Every message is published to one topic exchange with its type as the routing key; each
//! queue here is bound to that exchange once per message type it lists. Worker queues are
//! named after the worker that consumes them (competing consumers: every copy of a worker
//! reads the same queue); outbound queues (`out.*`) are for consumers outside Orderly and
//! have a length limit so that a consumer that stops reading cannot fill the broker's disk.
//!
//! A worker that consumes no messages (the ingress worker takes carriers' webhooks over HTTP
//! and only publishes) has no queue here.
//!
//! Names here are logical. The runtime derives the broker's names from its namespace
//! (`orderly` by default), so that test environments can share a broker: the exchange is
//! `orderly.events`, the queues `orderly.orders`, `orderly.out.warehouse`, ...
//!
//! Invariants, checked by tests: every type Orderly publishes (all types minus
//! [`INBOUND_ONLY`]) has at least one route, so "unroutable" at publish time always means a
//! missing binding, never a forgotten design decision; and every type a route names is in
//! the catalog.

/// What kind of consumer reads a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// An Orderly worker; the queue is named after it.
    Worker,
    /// A consumer outside Orderly. When `max_length` messages are waiting, the broker refuses
    /// new ones (`reject-publish`), so the outbox keeps them instead of the broker dropping
    /// them.
    Outbound {
        /// Most messages the queue holds.
        max_length: u32,
    },
}

/// One queue and the message types bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Queue name.
    pub queue: &'static str,
    /// Who reads it.
    pub kind: QueueKind,
    /// Message types (routing keys) bound to it.
    pub message_types: &'static [&'static str],
}

impl Route {
    /// Whether `message_type` is bound to this queue.
    pub fn receives(&self, message_type: &str) -> bool {
        self.message_types.contains(&message_type)
    }
}

use crate::Message;
use crate::messages::*;

/// Length limit of every outbound queue.
const OUTBOUND_MAX_LENGTH: u32 = 100_000;

/// The routing table.
pub const ROUTES: &[Route] = &[
    Route {
        queue: "orders",
        kind: QueueKind::Worker,
        message_types: &[
            OrderPlaced::TYPE,
            OrderCancelRequested::TYPE,
            OrderRefundRequested::TYPE,
            OrderExceptionResolved::TYPE,
            OrderNoteRequested::TYPE,
            OrderHoldRequested::TYPE,
            OrderReleaseRequested::TYPE,
            ProductUpserted::TYPE,
            StoreUpserted::TYPE,
            StockReserved::TYPE,
            StockUnavailable::TYPE,
            StockReleased::TYPE,
            ShipmentRequested::TYPE,
            ShipmentDispatched::TYPE,
            ShipmentDelivered::TYPE,
            ShipmentException::TYPE,
            InvoiceIssued::TYPE,
            CreditNoteIssued::TYPE,
            NotificationSent::TYPE,
            NotificationFailed::TYPE,
        ],
    },
    Route {
        queue: "inventory",
        kind: QueueKind::Worker,
        message_types: &[
            OrderAccepted::TYPE,
            OrderCancelled::TYPE,
            ShipmentDispatched::TYPE,
            InventoryAdjusted::TYPE,
            ProductUpserted::TYPE,
            WarehouseUpserted::TYPE,
        ],
    },
    Route {
        queue: "fulfillment",
        kind: QueueKind::Worker,
        message_types: &[
            // The accepted order is fulfillment's copy of address, items and prices: it needs
            // them for shipment.requested and invoice.requested, and stock.reserved only says
            // which warehouse ships which line.
            OrderAccepted::TYPE,
            StockReserved::TYPE,
            ShipmentUpdated::TYPE,
            OrderCancelled::TYPE,
            // A new address replaces the copy's, for shipments and invoices not yet asked for.
            OrderAddressChanged::TYPE,
            StoreInvoiceSettingsUpdated::TYPE,
            // An operator's hold: reservations wait for the release instead of shipping.
            OrderHoldChanged::TYPE,
        ],
    },
    Route {
        queue: "invoicing",
        kind: QueueKind::Worker,
        message_types: &[
            InvoiceRequested::TYPE,
            OrderRefundRequested::TYPE,
            OrderCancelled::TYPE,
            StoreInvoiceSettingsUpdated::TYPE,
        ],
    },
    Route {
        queue: "notifications",
        kind: QueueKind::Worker,
        message_types: &[
            OrderStatusChanged::TYPE,
            ShipmentDispatched::TYPE,
            ShipmentDelivered::TYPE,
            ShipmentException::TYPE,
            InvoiceIssued::TYPE,
            CreditNoteIssued::TYPE,
            NotificationSent::TYPE,
            NotificationFailed::TYPE,
            StoreNotificationSettingsUpdated::TYPE,
            WebhookEndpointRegistered::TYPE,
            NotificationResendRequested::TYPE,
        ],
    },
    Route {
        queue: "api",
        kind: QueueKind::Worker,
        // The admin API's read model: what operators see of an order, from the events only.
        message_types: &[
            OrderOnHold::TYPE,
            OrderAccepted::TYPE,
            OrderStatusChanged::TYPE,
            OrderAddressChanged::TYPE,
            OrderCancelled::TYPE,
            OrderCompleted::TYPE,
            ShipmentRequested::TYPE,
            ShipmentDispatched::TYPE,
            ShipmentDelivered::TYPE,
            ShipmentException::TYPE,
            InvoiceIssued::TYPE,
            CreditNoteIssued::TYPE,
            // The outcomes of the requests the API sent, for its command resources.
            OrderRequestAnswered::TYPE,
            OrderHoldChanged::TYPE,
            // The carriers' scans, for a shipment's tracking history.
            ShipmentUpdated::TYPE,
            // What the customer was sent, and what the notification system made of it.
            NotificationRequested::TYPE,
            NotificationSent::TYPE,
            NotificationFailed::TYPE,
        ],
    },
    Route {
        queue: "out.notification-system",
        kind: QueueKind::Outbound {
            max_length: OUTBOUND_MAX_LENGTH,
        },
        message_types: &[NotificationRequested::TYPE],
    },
    Route {
        queue: "out.warehouse",
        kind: QueueKind::Outbound {
            max_length: OUTBOUND_MAX_LENGTH,
        },
        // order.cancelled lets the warehouse stop packing shipments of a cancelled order,
        // order.address_changed relabel the order's open ones, order.hold_changed pause them
        // (and resume them on release).
        message_types: &[
            ShipmentRequested::TYPE,
            OrderCancelled::TYPE,
            OrderAddressChanged::TYPE,
            OrderHoldChanged::TYPE,
        ],
    },
    Route {
        queue: "out.marketplace",
        kind: QueueKind::Outbound {
            max_length: OUTBOUND_MAX_LENGTH,
        },
        message_types: &[
            StockLevelChanged::TYPE,
            OrderStatusChanged::TYPE,
            ShipmentDispatched::TYPE,
        ],
    },
    Route {
        queue: "out.merchant-events",
        kind: QueueKind::Outbound {
            max_length: OUTBOUND_MAX_LENGTH,
        },
        message_types: &[
            OrderAccepted::TYPE,
            OrderOnHold::TYPE,
            OrderAddressChanged::TYPE,
            OrderCancelled::TYPE,
            OrderCompleted::TYPE,
            StockUnavailable::TYPE,
            InvoiceIssued::TYPE,
            CreditNoteIssued::TYPE,
            WebhookEndpointDisabled::TYPE,
        ],
    },
];

/// Types only producers outside Orderly publish; Orderly consumes them but never sends them,
/// so they need no route for Orderly's own publishing (they still have consumers).
pub const INBOUND_ONLY: &[&str] = &[
    OrderPlaced::TYPE,
    // Not the requests about an order (`order.cancel_requested`, `order.refund_requested`,
    // `order.exception_resolved`, `order.note_requested`): the admin API sends them too.
    ProductUpserted::TYPE,
    InventoryAdjusted::TYPE,
    // Not `ShipmentUpdated`: outside carriers publish it, and so does the ingress worker
    // (carriers' webhooks), so it needs its route for Orderly's own publishing too.
    NotificationSent::TYPE,
    NotificationFailed::TYPE,
    StoreInvoiceSettingsUpdated::TYPE,
    StoreNotificationSettingsUpdated::TYPE,
    WebhookEndpointRegistered::TYPE,
];

/// Every message type in the catalog, in catalog order (the catalog is the one list).
pub fn all_message_types() -> Vec<&'static str> {
    crate::catalog()
        .iter()
        .map(|spec| spec.message_type)
        .collect()
}

/// The queues `message_type` is delivered to.
pub fn routes_for(message_type: &str) -> impl Iterator<Item = &'static Route> + use<'_> {
    ROUTES
        .iter()
        .filter(move |route| route.receives(message_type))
}

/// The route of a queue, by name.
pub fn route(queue: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.queue == queue)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_type_orderly_publishes_has_a_route() {
        for t in all_message_types()
            .into_iter()
            .filter(|t| !INBOUND_ONLY.contains(t))
        {
            assert!(
                routes_for(t).next().is_some(),
                "`{t}` is published by Orderly but no queue receives it"
            );
        }
    }

    #[test]
    fn every_type_orderly_consumes_reaches_a_worker() {
        for t in all_message_types() {
            let consumers: Vec<_> = routes_for(t).collect();
            assert!(!consumers.is_empty(), "`{t}` has no queue at all");
        }
        for t in INBOUND_ONLY {
            assert!(
                routes_for(t).any(|r| r.kind == QueueKind::Worker),
                "inbound `{t}` is consumed by no worker"
            );
        }
    }

    #[test]
    fn every_routed_type_exists() {
        let types = all_message_types();
        let all: HashSet<_> = types.iter().collect();
        for route in ROUTES {
            for t in route.message_types {
                assert!(
                    all.contains(t),
                    "queue `{}` binds unknown type `{t}`",
                    route.queue
                );
            }
        }
        for t in INBOUND_ONLY {
            assert!(all.contains(t), "INBOUND_ONLY lists unknown type `{t}`");
        }
    }

    #[test]
    fn no_duplicates() {
        let queues: HashSet<_> = ROUTES.iter().map(|r| r.queue).collect();
        assert_eq!(queues.len(), ROUTES.len(), "a queue is declared twice");
        for route in ROUTES {
            let types: HashSet<_> = route.message_types.iter().collect();
            assert_eq!(
                types.len(),
                route.message_types.len(),
                "`{}` binds a type twice",
                route.queue
            );
        }
        let types = all_message_types();
        let all: HashSet<_> = types.iter().collect();
        assert_eq!(all.len(), types.len(), "the catalog lists a type twice");
    }

    #[test]
    fn outbound_queues_are_bounded_and_prefixed() {
        for route in ROUTES {
            match route.kind {
                QueueKind::Outbound { max_length } => {
                    assert!(route.queue.starts_with("out."), "{}", route.queue);
                    assert!(max_length > 0);
                }
                QueueKind::Worker => assert!(!route.queue.starts_with("out."), "{}", route.queue),
            }
        }
    }

    #[test]
    fn lookups() {
        let queues: Vec<_> = routes_for("shipment.dispatched").map(|r| r.queue).collect();
        assert_eq!(
            queues,
            [
                "orders",
                "inventory",
                "notifications",
                "api",
                "out.marketplace"
            ]
        );
        assert_eq!(routes_for("no.such.type").count(), 0);
        assert_eq!(
            route("out.warehouse").map(|r| r.kind),
            Some(QueueKind::Outbound {
                max_length: 100_000
            })
        );
        assert!(route("nope").is_none());
    }
}
