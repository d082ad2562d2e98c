//! The status machine. The status is not a register that messages overwrite: it is
//! *computed* from facts that only ever grow ([`Facts`], changed by an [`Event`]), so the
//! same facts give the same status whatever order messages arrive in; and it only moves
//! forward ([`rank`]) along explicitly legal transitions ([`can_transition`]), so a late
//! `stock.reserved` after a dispatch is recorded but does not move the order back.

use std::collections::{BTreeMap, BTreeSet};

use orderly_contracts::types::OrderStatus;
use uuid::Uuid;

/// How far along the lifecycle a status is. Statuses only move to a higher rank; `cancelled`
/// is reached only explicitly and is terminal, like `completed`.
pub(crate) const fn rank(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::OnHold => 0,
        OrderStatus::Accepted => 1,
        OrderStatus::Backordered => 2,
        OrderStatus::Processing => 3,
        OrderStatus::PartiallyShipped => 4,
        OrderStatus::Shipped => 5,
        OrderStatus::Delivered => 6,
        OrderStatus::Completed => 7,
        OrderStatus::Cancelled => 8,
    }
}

/// The legal transitions, each legal only from the states it names. `None` is a new order.
///
/// Why each is there (one message can cause each of these):
/// - new → `on_hold` | `accepted`: `order.placed` with or without unmatched lines.
/// - `on_hold` → `accepted` (last exception resolved) | `cancelled`.
/// - `accepted` → `backordered` (`stock.unavailable`) | `processing` (`stock.reserved`) |
///   `partially_shipped` (a dispatch overtook the reservation: the shipment count is not
///   known yet) | `cancelled`.
/// - `backordered` → `processing` (stock arrived) | `partially_shipped` | `cancelled`.
/// - `processing` → `partially_shipped` | `shipped` | `delivered` (a delivery overtook the
///   dispatch of the only shipment) | `cancelled`.
/// - `partially_shipped` → `shipped` | `delivered` (the last shipment's delivery, or the
///   reservation that finally says how many there are).
/// - `shipped` → `delivered`; `delivered` → `completed` (at once).
/// - Nothing leaves `completed` or `cancelled`; nothing is cancelled once a shipment left.
pub(crate) fn can_transition(from: Option<OrderStatus>, to: OrderStatus) -> bool {
    use OrderStatus as S;
    match from {
        None => matches!(to, S::OnHold | S::Accepted),
        Some(S::OnHold) => matches!(to, S::Accepted | S::Cancelled),
        Some(S::Accepted) => matches!(
            to,
            S::Backordered | S::Processing | S::PartiallyShipped | S::Cancelled
        ),
        Some(S::Backordered) => matches!(to, S::Processing | S::PartiallyShipped | S::Cancelled),
        Some(S::Processing) => matches!(
            to,
            S::PartiallyShipped | S::Shipped | S::Delivered | S::Cancelled
        ),
        Some(S::PartiallyShipped) => matches!(to, S::Shipped | S::Delivered),
        Some(S::Shipped) => matches!(to, S::Delivered),
        Some(S::Delivered) => matches!(to, S::Completed),
        Some(S::Completed | S::Cancelled) => false,
    }
}

/// Units of one order line in one warehouse (reserved or released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Units {
    /// The warehouse.
    pub(crate) warehouse_id: String,
    /// The order line.
    pub(crate) line_id: String,
    /// How many.
    pub(crate) quantity: u32,
}

/// A fact about an order, as one message brings it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Every line matched (at placing, or when the last exception was resolved).
    Accepted,
    /// `stock.unavailable`.
    StockUnavailable,
    /// `stock.reserved`: units per warehouse and line; one shipment per warehouse follows.
    StockReserved(Vec<Units>),
    /// `stock.released`: reserved units given back (cancelled lines).
    StockReleased(Vec<Units>),
    /// `shipment.dispatched`, with the units per line it carries.
    Dispatched {
        /// The shipment.
        shipment_id: Uuid,
        /// Line id → units.
        items: Vec<(String, u32)>,
    },
    /// `shipment.delivered`.
    Delivered {
        /// The shipment.
        shipment_id: Uuid,
    },
    /// The whole order was cancelled.
    Cancelled,
    /// `setup.completed`: the setup of a service line went through every stage.
    SetupCompleted {
        /// The service line.
        line_id: String,
    },
}

/// Everything known about an order's progress. Facts are only ever added, so applying the
/// same messages in any order gives the same facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Every line matched and `order.accepted` was sent.
    pub(crate) accepted: bool,
    /// The whole order was cancelled.
    pub(crate) cancelled: bool,
    /// Stock was reported unavailable at some point.
    pub(crate) backordered: bool,
    /// An operator changed the order's address (`order.address_change_requested`).
    pub(crate) address_amended: bool,
    /// Warehouse → line → units reserved; `None` until `stock.reserved`.
    pub(crate) allocations: Option<BTreeMap<String, BTreeMap<String, u32>>>,
    /// (warehouse, line) → units released.
    pub(crate) released: BTreeMap<(String, String), u32>,
    /// Shipments seen dispatched, with line → units.
    pub(crate) dispatched: BTreeMap<Uuid, BTreeMap<String, u32>>,
    /// Shipments seen delivered.
    pub(crate) delivered: BTreeSet<Uuid>,
    /// Service lines (not cancelled) that are set up after the order → whether their setup
    /// completed. The order completes only when every one has.
    pub(crate) setups: BTreeMap<String, bool>,
}

impl Facts {
    /// Adds what `event` says; `false` when it says nothing new (a duplicate).
    pub(crate) fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::Accepted => !std::mem::replace(&mut self.accepted, true),
            Event::Cancelled => !std::mem::replace(&mut self.cancelled, true),
            Event::StockUnavailable => !std::mem::replace(&mut self.backordered, true),
            Event::StockReserved(units) => {
                if self.allocations.is_some() {
                    return false;
                }
                let mut map: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
                for u in units {
                    let slot = map
                        .entry(u.warehouse_id.clone())
                        .or_default()
                        .entry(u.line_id.clone())
                        .or_default();
                    *slot = slot.saturating_add(u.quantity);
                }
                self.allocations = Some(map);
                true
            }
            Event::StockReleased(units) => {
                for u in units {
                    let slot = self
                        .released
                        .entry((u.warehouse_id.clone(), u.line_id.clone()))
                        .or_default();
                    *slot = slot.saturating_add(u.quantity);
                }
                !units.is_empty()
            }
            Event::Dispatched { shipment_id, items } => {
                if self.dispatched.contains_key(shipment_id) {
                    return false;
                }
                let mut lines = BTreeMap::new();
                for (line, qty) in items {
                    let slot: &mut u32 = lines.entry(line.clone()).or_default();
                    *slot = slot.saturating_add(*qty);
                }
                self.dispatched.insert(*shipment_id, lines);
                true
            }
            Event::Delivered { shipment_id } => self.delivered.insert(*shipment_id),
            Event::SetupCompleted { line_id } => match self.setups.get_mut(line_id) {
                Some(done) => !std::mem::replace(done, true),
                // A line cancelled since, or not set up: nothing waits for it.
                None => false,
            },
        }
    }

    /// Whether every setup the order waits for completed (true when it has none).
    pub(crate) fn setups_done(&self) -> bool {
        self.setups.values().all(|done| *done)
    }

    /// Shipments expected: warehouses with reserved units not released. `None` until
    /// `stock.reserved` says.
    pub(crate) fn expected_shipments(&self) -> Option<u32> {
        let allocations = self.allocations.as_ref()?;
        let live = allocations
            .iter()
            .filter(|(warehouse, lines)| {
                lines.iter().any(|(line, qty)| {
                    let released = self
                        .released
                        .get(&((*warehouse).clone(), line.clone()))
                        .copied()
                        .unwrap_or(0);
                    *qty > released
                })
            })
            .count();
        Some(u32::try_from(live).unwrap_or(u32::MAX))
    }

    /// Whether the order has nothing (left) to ship: reserved with no warehouse to ship
    /// from (every line a service, or its goods released) and nothing shipped.
    pub(crate) fn nothing_to_ship(&self) -> bool {
        self.expected_shipments() == Some(0) && !self.any_shipped()
    }

    /// What completes the order, in words.
    pub(crate) fn completion(&self) -> &'static str {
        match (self.setups.is_empty(), self.nothing_to_ship()) {
            (true, _) => "Every shipment delivered",
            (false, true) => "Every setup completed (nothing to ship)",
            (false, false) => "Every shipment delivered and every setup completed",
        }
    }

    /// Shipments that left a warehouse (seen dispatched, or delivered, which implies it).
    pub(crate) fn shipped(&self) -> BTreeSet<Uuid> {
        self.dispatched
            .keys()
            .copied()
            .chain(self.delivered.iter().copied())
            .collect()
    }

    /// Whether any shipment left a warehouse.
    pub(crate) fn any_shipped(&self) -> bool {
        !self.dispatched.is_empty() || !self.delivered.is_empty()
    }

    /// Whether a shipment was reported delivered without its dispatch (so its contents are
    /// not known yet).
    pub(crate) fn contents_unknown(&self) -> bool {
        self.delivered
            .iter()
            .any(|id| !self.dispatched.contains_key(id))
    }

    /// Units of `line_id` that left a warehouse.
    pub(crate) fn dispatched_units(&self, line_id: &str) -> u32 {
        self.dispatched
            .values()
            .filter_map(|lines| lines.get(line_id))
            .fold(0u32, |acc, q| acc.saturating_add(*q))
    }

    /// The status these facts call for (before the forward-only rule of [`decide`]).
    pub(crate) fn target(&self) -> OrderStatus {
        if self.cancelled {
            return OrderStatus::Cancelled;
        }
        if !self.accepted {
            return OrderStatus::OnHold;
        }
        if self.nothing_to_ship() {
            return OrderStatus::Delivered;
        }
        let shipped = self.shipped().len();
        if shipped > 0 {
            let shipped = u32::try_from(shipped).unwrap_or(u32::MAX);
            let delivered = u32::try_from(self.delivered.len()).unwrap_or(u32::MAX);
            return match self.expected_shipments() {
                Some(n) if shipped >= n && delivered >= n => OrderStatus::Delivered,
                Some(n) if shipped >= n => OrderStatus::Shipped,
                // Some shipments are out, or we cannot tell how many there are.
                _ => OrderStatus::PartiallyShipped,
            };
        }
        if self.allocations.is_some() {
            OrderStatus::Processing
        } else if self.backordered {
            OrderStatus::Backordered
        } else {
            OrderStatus::Accepted
        }
    }
}

/// One status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    /// Before (`None` for a new order).
    pub(crate) from: Option<OrderStatus>,
    /// After.
    pub(crate) to: OrderStatus,
    /// Why, in the domain's words, when it knows better than the message that caused it
    /// (what completed the order; that there is nothing to ship).
    pub(crate) why: Option<&'static str>,
    /// The order has nothing (left) to ship (`order.status_changed`'s `nothing_to_ship`).
    pub(crate) nothing_to_ship: bool,
}

impl Transition {
    /// A change from `from` to `to`, for the reason of the message that caused it.
    pub(crate) fn new(from: Option<OrderStatus>, to: OrderStatus) -> Self {
        Self {
            from,
            to,
            why: None,
            nothing_to_ship: false,
        }
    }
}

/// A computed move the transition table does not allow: a bug or impossible data, never
/// applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {} → {to}", from.map_or("(new)", OrderStatus::as_str))]
pub(crate) struct IllegalTransition {
    /// Current status.
    pub(crate) from: Option<OrderStatus>,
    /// The status the facts called for.
    pub(crate) to: OrderStatus,
}

/// The status changes `facts` call for from `current`: none when the order is terminal,
/// already there or further along (a stale message); else one legal step, followed at once
/// by `delivered → completed` (an order completes when every shipment is delivered and
/// every setup of its service lines completed; until the last setup completes it stays
/// `delivered`).
pub(crate) fn decide(
    current: Option<OrderStatus>,
    facts: &Facts,
) -> Result<Vec<Transition>, IllegalTransition> {
    let target = facts.target();
    let nothing_to_ship = facts.nothing_to_ship();
    let step = |from, to| Transition {
        why: (nothing_to_ship && to != OrderStatus::Cancelled)
            .then_some("Nothing to ship: every line left is a service"),
        nothing_to_ship,
        ..Transition::new(from, to)
    };
    let completes = Transition {
        why: Some(facts.completion()),
        ..step(Some(OrderStatus::Delivered), OrderStatus::Completed)
    };
    if current == Some(OrderStatus::Delivered)
        && target == OrderStatus::Delivered
        && facts.setups_done()
    {
        return Ok(vec![completes]);
    }
    if let Some(cur) = current {
        if cur.is_terminal() || cur == target {
            return Ok(Vec::new());
        }
        if target != OrderStatus::Cancelled && rank(target) < rank(cur) {
            return Ok(Vec::new());
        }
    }
    let mut out = Vec::new();
    // Nothing to ship: reserved (`processing`) and done with its goods (`delivered`) at once.
    let mut from = current;
    if nothing_to_ship
        && target == OrderStatus::Delivered
        && matches!(
            current,
            Some(OrderStatus::Accepted | OrderStatus::Backordered)
        )
    {
        out.push(step(current, OrderStatus::Processing));
        from = Some(OrderStatus::Processing);
    }
    if !can_transition(from, target) {
        return Err(IllegalTransition {
            from: current,
            to: target,
        });
    }
    out.push(step(from, target));
    if target == OrderStatus::Delivered && facts.setups_done() {
        out.push(completes);
    }
    Ok(out)
}

/// "Shipment 1 of 2" (or "Shipment 1" while the count is unknown).
pub(crate) fn shipment_ordinal(nth: usize, expected: Option<u32>) -> String {
    match expected {
        Some(n) => format!("Shipment {nth} of {n}"),
        None => format!("Shipment {nth} (number of shipments not known yet)"),
    }
}
