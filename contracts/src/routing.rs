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
//! Which types a queue receives is said where the type is declared: its catalog entry (in
//! `messages/<area>.rs`) lists the queues (`to: [...]`), so a message type has one home and
//! this table is derived from the catalog. Only the queues themselves are declared here.
//!
//! Invariants, checked by tests: every type Orderly publishes (all types minus
//! [`inbound_only`]) has at least one route, so "unroutable" at publish time always means a
//! missing binding, never a forgotten design decision; and every type a route names is in
//! the catalog.

use std::sync::LazyLock;

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

/// A queue, declared once here; which types it receives is said by each type's catalog entry
/// (`to: [...]`, next to the type), not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Queue name (logical; see the module doc).
    pub name: &'static str,
    /// Who reads it.
    pub kind: QueueKind,
}

/// One queue and the message types bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Queue name.
    pub queue: &'static str,
    /// Who reads it.
    pub kind: QueueKind,
    /// Message types (routing keys) bound to it, in catalog order.
    pub message_types: Vec<&'static str>,
}

impl Route {
    /// Whether `message_type` is bound to this queue.
    pub fn receives(&self, message_type: &str) -> bool {
        self.message_types.contains(&message_type)
    }
}

/// The queues' names, for the catalog entries' `to: [...]` (a typo does not compile).
pub mod queues {
    /// The orders worker.
    pub const ORDERS: &str = "orders";
    /// The inventory worker.
    pub const INVENTORY: &str = "inventory";
    /// The fulfillment worker.
    pub const FULFILLMENT: &str = "fulfillment";
    /// The invoicing worker.
    pub const INVOICING: &str = "invoicing";
    /// The notifications worker.
    pub const NOTIFICATIONS: &str = "notifications";
    /// The admin API's read model: what operators see of an order, from the events only, and
    /// the outcomes of the requests it sent, for its command resources.
    pub const API: &str = "api";
    /// The setups worker: setups of service products, their stages and the requests that
    /// move them.
    pub const SETUPS: &str = "setups";
    /// The customer notification system (outside Orderly) delivers what it is asked to.
    pub const OUT_NOTIFICATION_SYSTEM: &str = "out.notification-system";
    /// The warehouse (outside Orderly): what to ship, and what changed about orders it may be
    /// packing (a cancellation stops them, an address change relabels open shipments, a hold
    /// pauses them until the release).
    pub const OUT_WAREHOUSE: &str = "out.warehouse";
    /// Marketplace connectors (outside Orderly): stock for listings, statuses, dispatches.
    pub const OUT_MARKETPLACE: &str = "out.marketplace";
    /// The merchant's own systems (outside Orderly), through the merchant-events feed.
    pub const OUT_MERCHANT_EVENTS: &str = "out.merchant-events";
}

/// Length limit of every outbound queue.
const OUTBOUND_MAX_LENGTH: u32 = 100_000;

const fn worker(name: &'static str) -> Queue {
    Queue {
        name,
        kind: QueueKind::Worker,
    }
}

const fn outbound(name: &'static str) -> Queue {
    Queue {
        name,
        kind: QueueKind::Outbound {
            max_length: OUTBOUND_MAX_LENGTH,
        },
    }
}

/// Every queue, in the order the topology declares them.
pub const QUEUES: &[Queue] = &[
    worker(queues::ORDERS),
    worker(queues::INVENTORY),
    worker(queues::FULFILLMENT),
    worker(queues::INVOICING),
    worker(queues::NOTIFICATIONS),
    worker(queues::API),
    worker(queues::SETUPS),
    outbound(queues::OUT_NOTIFICATION_SYSTEM),
    outbound(queues::OUT_WAREHOUSE),
    outbound(queues::OUT_MARKETPLACE),
    outbound(queues::OUT_MERCHANT_EVENTS),
];

/// The routing table: every queue with the types whose catalog entry names it, derived once
/// from the catalog.
pub fn routes() -> &'static [Route] {
    static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
        let catalog = crate::catalog();
        QUEUES
            .iter()
            .map(|queue| Route {
                queue: queue.name,
                kind: queue.kind,
                message_types: catalog
                    .iter()
                    .filter(|spec| spec.to.contains(&queue.name))
                    .map(|spec| spec.message_type)
                    .collect(),
            })
            .collect()
    });
    &ROUTES
}

/// Types only producers outside Orderly publish (catalog entries marked
/// `only_from_outside`); Orderly consumes them but never sends them, so they need no route
/// for Orderly's own publishing (they still have consumers).
pub fn inbound_only() -> Vec<&'static str> {
    crate::catalog()
        .iter()
        .filter(|spec| spec.only_from_outside)
        .map(|spec| spec.message_type)
        .collect()
}

/// Every message type in the catalog, in catalog order (the catalog is the one list).
pub fn all_message_types() -> Vec<&'static str> {
    crate::catalog()
        .iter()
        .map(|spec| spec.message_type)
        .collect()
}

/// The queues `message_type` is delivered to.
pub fn routes_for(message_type: &str) -> impl Iterator<Item = &'static Route> + use<'_> {
    routes()
        .iter()
        .filter(move |route| route.receives(message_type))
}

/// The route of a queue, by name.
pub fn route(queue: &str) -> Option<&'static Route> {
    routes().iter().find(|route| route.queue == queue)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_type_orderly_publishes_has_a_route() {
        for t in all_message_types()
            .into_iter()
            .filter(|t| !inbound_only().contains(t))
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
        for t in inbound_only() {
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
        for route in routes() {
            for t in &route.message_types {
                assert!(
                    all.contains(t),
                    "queue `{}` binds unknown type `{t}`",
                    route.queue
                );
            }
        }
        for spec in crate::catalog() {
            for queue in spec.to {
                assert!(
                    QUEUES.iter().any(|q| q.name == *queue),
                    "`{}` is sent to `{queue}`, which is not a declared queue",
                    spec.message_type
                );
            }
        }
    }

    #[test]
    fn no_duplicates() {
        let queues: HashSet<_> = QUEUES.iter().map(|q| q.name).collect();
        assert_eq!(queues.len(), QUEUES.len(), "a queue is declared twice");
        for route in routes() {
            let types: HashSet<_> = route.message_types.iter().collect();
            assert_eq!(
                types.len(),
                route.message_types.len(),
                "`{}` binds a type twice",
                route.queue
            );
        }
        for spec in crate::catalog() {
            let to: HashSet<_> = spec.to.iter().collect();
            assert_eq!(
                to.len(),
                spec.to.len(),
                "`{}` names a queue twice",
                spec.message_type
            );
        }
        let types = all_message_types();
        let all: HashSet<_> = types.iter().collect();
        assert_eq!(all.len(), types.len(), "the catalog lists a type twice");
    }

    #[test]
    fn outbound_queues_are_bounded_and_prefixed() {
        for route in routes() {
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
