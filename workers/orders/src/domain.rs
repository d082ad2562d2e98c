//! The orders worker's decisions, as pure functions over plain values: no I/O, no SQL, no
//! async. The handlers load state, ask this module what it means, then write and emit.
//!
//! What lives here:
//! - **Matching** ([`match_line`]): a line by SKU or by GTIN (catalog first, then a mapping an
//!   operator remembered) to a product, or to an [`ItemProblem`].
//! - **The status machine** ([`Facts`], [`Event`], [`decide`], [`can_transition`]). The
//!   status is not a register that messages overwrite: it is *computed* from facts that only
//!   ever grow (accepted, backordered, the allocation, which shipments were dispatched and
//!   delivered, cancelled). Whatever order messages arrive in, the same facts give the same
//!   status, so the end state does not depend on arrival order. On top of that the status
//!   only moves forward ([`rank`]) along explicitly legal transitions: a late
//!   `stock.reserved` after a dispatch is recorded but does not move the order back.
//! - **Cancellations, refunds and re-pushes** ([`plan_cancellation`], [`plan_refund`],
//!   [`plan_repush`]): what can still be done to an order, and why not otherwise.
//! - **The accepted order** ([`accepted_order`]): the `order.accepted` snapshot, with amounts
//!   recomputed when lines were cancelled before acceptance so the message stays consistent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use orderly_contracts::Validate;
use orderly_contracts::messages::{
    AcceptedLine, Address, CancellationScope, CancelledLine, Customer, CustomerContact,
    ExceptionResolution, ItemProblem, LineQuantity, OrderAccepted, OrderLine, OrderPlaced, Payment,
};
use orderly_contracts::types::{
    Amount, Channel, CurrencyCode, Gtin, OrderStatus, Quantity, Sku, StoreId, TaxCategory,
};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The order and its lines
// ---------------------------------------------------------------------------------------------

/// An order's header: everything but its lines, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderHead {
    /// Orderly's id (UUIDv7).
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where it came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders.
    pub marketplace: Option<String>,
    /// The producer's order number.
    pub external_order_id: String,
    /// The last `order.placed` revision seen.
    pub revision: u32,
    /// Current status.
    pub status: OrderStatus,
    /// Last `order.status_changed` sequence sent (0: none yet).
    pub status_sequence: u64,
    /// When the buyer placed it.
    pub placed_at: DateTime<Utc>,
    /// Currency of every amount.
    pub currency: CurrencyCode,
    /// Whether prices include VAT.
    pub prices_include_tax: bool,
    /// The buyer.
    pub customer: Customer,
    /// Invoice address.
    pub billing_address: Address,
    /// Delivery address.
    pub shipping_address: Address,
    /// Payment, as last pushed.
    pub payment: Payment,
    /// Shipping charged.
    pub shipping: Amount,
    /// Order-level discount.
    pub discount: Amount,
    /// VAT stated by the producer.
    pub tax: Option<Amount>,
    /// What the buyer pays, as placed.
    pub total: Amount,
}

impl OrderHead {
    /// The header of a newly placed order.
    pub fn from_placed(order_id: Uuid, status: OrderStatus, placed: &OrderPlaced) -> Self {
        Self {
            order_id,
            store_id: placed.store_id.clone(),
            channel: placed.channel,
            marketplace: placed.marketplace.clone(),
            external_order_id: placed.external_order_id.clone(),
            revision: placed.revision,
            status,
            status_sequence: 0,
            placed_at: placed.placed_at,
            currency: placed.currency,
            prices_include_tax: placed.prices_include_tax,
            customer: placed.customer.clone(),
            billing_address: placed.billing_address.clone(),
            shipping_address: placed.shipping_address.clone(),
            payment: placed.payment.clone(),
            shipping: placed.shipping,
            discount: placed.discount,
            tax: placed.tax,
            total: placed.total,
        }
    }

    /// Takes over everything a revision says (used while the order is still on hold).
    pub fn replace_with(&mut self, placed: &OrderPlaced) {
        let status = self.status;
        let sequence = self.status_sequence;
        *self = Self::from_placed(self.order_id, status, placed);
        self.status_sequence = sequence;
    }

    /// How to reach the customer, for `order.status_changed`.
    pub fn contact(&self) -> CustomerContact {
        CustomerContact {
            name: self.customer.name.clone(),
            email: self.customer.email.clone(),
            locale: self.customer.locale.clone(),
        }
    }

    /// `100234 (storefront, shop-de)`, for log and timeline text.
    pub fn label(&self) -> String {
        match &self.marketplace {
            Some(m) => format!("{} ({m}, {})", self.external_order_id, self.store_id),
            None => format!(
                "{} ({}, {})",
                self.external_order_id, self.channel, self.store_id
            ),
        }
    }
}

/// The product a line was matched to, snapshotted on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedProduct {
    /// Our SKU.
    pub sku: Sku,
    /// VAT category: the line's own if the producer sent one, else the catalog's.
    pub tax_category: TaxCategory,
    /// The catalog's product name at matching time.
    pub catalog_title: String,
}

/// An order line as stored: the price snapshot as placed, the product snapshot as matched,
/// and what has been cancelled and refunded since.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The producer's line id.
    pub line_id: String,
    /// The SKU the producer sent, if any.
    pub requested_sku: Option<Sku>,
    /// The GTIN the producer sent, if any.
    pub gtin: Option<Gtin>,
    /// Product name as the buyer saw it.
    pub title: String,
    /// Units ordered (never shrinks; cancellations are counted in `cancelled`).
    pub quantity: u32,
    /// Price of one unit.
    pub unit_price: Amount,
    /// Discount on the whole line.
    pub discount: Amount,
    /// VAT category the producer sent, if any.
    pub requested_tax_category: Option<TaxCategory>,
    /// The product it was matched to; `None` while it is an open exception.
    pub matched: Option<MatchedProduct>,
    /// Units cancelled.
    pub cancelled: u32,
    /// Units refunds were requested for.
    pub refunded: u32,
}

impl Line {
    /// A new line from `order.placed`, not matched yet.
    pub fn from_placed(line: &OrderLine) -> Self {
        Self {
            line_id: line.line_id.clone(),
            requested_sku: line.sku.clone(),
            gtin: line.gtin.clone(),
            title: line.title.clone(),
            quantity: line.quantity.get(),
            unit_price: line.unit_price,
            discount: line.discount,
            requested_tax_category: line.tax_category,
            matched: None,
            cancelled: 0,
            refunded: 0,
        }
    }

    /// Units still ordered (not cancelled).
    pub fn open(&self) -> u32 {
        self.quantity.saturating_sub(self.cancelled)
    }

    /// The SKU the line was matched to.
    pub fn sku(&self) -> Option<&Sku> {
        self.matched.as_ref().map(|m| &m.sku)
    }

    /// `line 2 (GTIN 4006381333931)`, for timeline text and reasons.
    pub fn describe(&self) -> String {
        match (&self.requested_sku, &self.gtin) {
            (Some(sku), _) => format!("line {} (SKU {sku})", self.line_id),
            (None, Some(gtin)) => format!("line {} (GTIN {gtin})", self.line_id),
            (None, None) => format!("line {}", self.line_id),
        }
    }
}

/// The key of a customer who can be recognised again: the producer's customer id, else the
/// lowercased email; `None` for a guest without email.
pub fn returning_customer_key(id: Option<&str>, email: Option<&str>) -> Option<String> {
    if let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(id.to_owned());
    }
    email.map(str::to_lowercase)
}

/// The customer statistics key: the producer's customer id, else the lowercased email, else
/// a per-order guest key (a guest without email cannot be recognised again).
pub fn customer_key(customer: &Customer, order_id: Uuid) -> String {
    if let Some(key) = returning_customer_key(
        customer.id.as_deref(),
        customer.email.as_ref().map(|e| e.as_str()),
    ) {
        return key;
    }
    format!("guest:{order_id}")
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

/// A product as the catalog projection knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Its SKU.
    pub sku: Sku,
    /// Its name.
    pub title: String,
    /// Its VAT category.
    pub tax_category: TaxCategory,
    /// Whether it is sold.
    pub active: bool,
}

/// What the catalog and the remembered mappings say about one line's identifier.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookup<'a> {
    /// For a line by SKU: the product with that SKU.
    pub by_sku: Option<&'a Product>,
    /// For a line by GTIN: the catalog products sold under it.
    pub by_gtin: &'a [Product],
    /// For a line by GTIN: the store's remembered mapping, and the product it names (if the
    /// catalog knows it).
    pub mapping: Option<(&'a Sku, Option<&'a Product>)>,
}

/// The outcome of matching one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Matched to a sold product.
    Matched(MatchedProduct),
    /// Not matched: an order item exception.
    Unmatched {
        /// What is wrong.
        problem: ItemProblem,
        /// The SKU involved (the line's, or the one a mapping named), if any.
        sku: Option<Sku>,
    },
}

fn matched(product: &Product, line_tax: Option<TaxCategory>) -> Match {
    Match::Matched(MatchedProduct {
        sku: product.sku.clone(),
        tax_category: line_tax.unwrap_or(product.tax_category),
        catalog_title: product.title.clone(),
    })
}

/// Matches a line to a product.
///
/// - By SKU: the product must exist (else `unknown_sku`, whatever the channel) and be active
///   (else `inactive_product`).
/// - By GTIN (compared as GTIN-14, so an EAN-13 matches its zero-padded GTIN-14): an active
///   catalog product sold under it wins (several: the lowest SKU, deterministically); else the
///   store's remembered mapping (`unknown_sku` if the catalog does not know the SKU it names,
///   `inactive_product` if it is not sold); else `inactive_product` if only inactive products
///   carry the GTIN; else `unknown_gtin`.
///
/// The VAT category is the line's own when the producer sent one, else the catalog's.
pub fn match_line(line: &Line, lookup: &Lookup<'_>) -> Match {
    let tax = line.requested_tax_category;
    if let Some(sku) = &line.requested_sku {
        return match lookup.by_sku {
            Some(p) if p.active => matched(p, tax),
            Some(_) => Match::Unmatched {
                problem: ItemProblem::InactiveProduct,
                sku: Some(sku.clone()),
            },
            None => Match::Unmatched {
                problem: ItemProblem::UnknownSku,
                sku: Some(sku.clone()),
            },
        };
    }
    if let Some(p) = lookup
        .by_gtin
        .iter()
        .filter(|p| p.active)
        .min_by(|a, b| a.sku.cmp(&b.sku))
    {
        return matched(p, tax);
    }
    match lookup.mapping {
        Some((_, Some(p))) if p.active => matched(p, tax),
        Some((sku, Some(_))) => Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: Some(sku.clone()),
        },
        Some((sku, None)) => Match::Unmatched {
            problem: ItemProblem::UnknownSku,
            sku: Some(sku.clone()),
        },
        None if !lookup.by_gtin.is_empty() => Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: None,
        },
        None => Match::Unmatched {
            problem: ItemProblem::UnknownGtin,
            sku: None,
        },
    }
}

/// The product an operator named in a `map_to_sku` resolution, checked: it must be in the
/// catalog and sold (a typo must not reach inventory as a SKU nobody stocks).
pub fn resolve_to(
    sku: &Sku,
    product: Option<&Product>,
    line_tax: Option<TaxCategory>,
) -> Result<MatchedProduct, String> {
    match product {
        Some(p) if p.active => Ok(MatchedProduct {
            sku: p.sku.clone(),
            tax_category: line_tax.unwrap_or(p.tax_category),
            catalog_title: p.title.clone(),
        }),
        Some(_) => Err(format!(
            "SKU {sku} is not sold any more (inactive in the catalog)"
        )),
        None => Err(format!("SKU {sku} is not in the catalog")),
    }
}

/// Keeps what an earlier revision's line was matched to (possibly by an operator, without a
/// remembered mapping) when a replacing revision has the same line with the same product
/// identifiers and the catalog alone no longer matches it: an operator's work is not undone
/// by a re-push. Returns whether the match was carried over.
pub fn carry_over_match(old: &Line, new: &mut Line) -> bool {
    if new.matched.is_some()
        || old.line_id != new.line_id
        || old.requested_sku != new.requested_sku
        || old.gtin != new.gtin
    {
        return false;
    }
    let Some(m) = &old.matched else {
        return false;
    };
    new.matched = Some(MatchedProduct {
        sku: m.sku.clone(),
        tax_category: new.requested_tax_category.unwrap_or(m.tax_category),
        catalog_title: m.catalog_title.clone(),
    });
    true
}

/// Where an order item exception stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionStatus {
    /// Waiting for an operator.
    Open,
    /// An operator (or a cancellation) resolved it.
    Resolved,
    /// A newer revision of the order replaced the line or matched it.
    Superseded,
}

impl ExceptionStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Superseded => "superseded",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            "superseded" => Some(Self::Superseded),
            _ => None,
        }
    }
}

/// What to do with an `order.exception_resolved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolutionCheck {
    /// The exception is open: apply the resolution.
    Apply,
    /// It was already closed exactly this way: nothing to do (a re-sent resolution).
    AlreadyApplied,
    /// It was closed another way: refuse, with the reason.
    Refuse(String),
}

/// Checks a resolution against the exception's state.
pub fn check_resolution(
    status: ExceptionStatus,
    recorded: Option<ExceptionResolution>,
    recorded_sku: Option<&Sku>,
    requested: ExceptionResolution,
    requested_sku: Option<&Sku>,
) -> ResolutionCheck {
    match status {
        ExceptionStatus::Open => ResolutionCheck::Apply,
        ExceptionStatus::Resolved
            if recorded == Some(requested) && recorded_sku == requested_sku =>
        {
            ResolutionCheck::AlreadyApplied
        }
        ExceptionStatus::Resolved => ResolutionCheck::Refuse(format!(
            "the exception was already resolved as {}{}",
            recorded.map_or("(unknown)", |r| r.as_str()),
            recorded_sku.map(|s| format!(" {s}")).unwrap_or_default()
        )),
        ExceptionStatus::Superseded => ResolutionCheck::Refuse(
            "the exception was superseded by a newer revision of the order; resolve the current one"
                .to_owned(),
        ),
    }
}

/// An open exception as the re-push reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenException {
    /// Its id.
    pub exception_id: Uuid,
    /// The line.
    pub line_id: String,
    /// The problem.
    pub problem: ItemProblem,
    /// The SKU involved.
    pub sku: Option<Sku>,
    /// The GTIN involved.
    pub gtin: Option<Gtin>,
}

/// What to do with exceptions when a new revision replaces an on-hold order's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionReconciliation {
    /// Open exceptions that no longer apply (the line matched, changed or went away).
    pub supersede: Vec<Uuid>,
    /// Indexes (into the unmatched list given) of lines that need a new exception.
    pub raise: Vec<usize>,
}

/// Keeps an open exception when the new revision has the same problem on the same line with
/// the same identifiers (so an operator working on it is not pulled the rug from under),
/// supersedes the others and raises exceptions for newly unmatched lines.
pub fn reconcile_exceptions(
    open: &[OpenException],
    unmatched: &[(Line, ItemProblem, Option<Sku>)],
) -> ExceptionReconciliation {
    let mut out = ExceptionReconciliation::default();
    let mut kept = BTreeSet::new();
    for (i, (line, problem, sku)) in unmatched.iter().enumerate() {
        let same = open.iter().find(|e| {
            e.line_id == line.line_id
                && e.problem == *problem
                && e.sku == *sku
                && e.gtin == line.gtin
        });
        match same {
            Some(e) => {
                kept.insert(e.exception_id);
            }
            None => out.raise.push(i),
        }
    }
    out.supersede = open
        .iter()
        .map(|e| e.exception_id)
        .filter(|id| !kept.contains(id))
        .collect();
    out
}

// ---------------------------------------------------------------------------------------------
// The status machine
// ---------------------------------------------------------------------------------------------

/// How far along the lifecycle a status is. Statuses only move to a higher rank; `cancelled`
/// is reached only explicitly and is terminal, like `completed`.
pub const fn rank(status: OrderStatus) -> u8 {
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
pub fn can_transition(from: Option<OrderStatus>, to: OrderStatus) -> bool {
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
pub struct Units {
    /// The warehouse.
    pub warehouse_id: String,
    /// The order line.
    pub line_id: String,
    /// How many.
    pub quantity: u32,
}

/// A fact about an order, as one message brings it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
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
}

/// Everything known about an order's progress. Facts are only ever added, so applying the
/// same messages in any order gives the same facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Every line matched and `order.accepted` was sent.
    pub accepted: bool,
    /// The whole order was cancelled.
    pub cancelled: bool,
    /// Stock was reported unavailable at some point.
    pub backordered: bool,
    /// Warehouse → line → units reserved; `None` until `stock.reserved`.
    pub allocations: Option<BTreeMap<String, BTreeMap<String, u32>>>,
    /// (warehouse, line) → units released.
    pub released: BTreeMap<(String, String), u32>,
    /// Shipments seen dispatched, with line → units.
    pub dispatched: BTreeMap<Uuid, BTreeMap<String, u32>>,
    /// Shipments seen delivered.
    pub delivered: BTreeSet<Uuid>,
}

impl Facts {
    /// Adds what `event` says; `false` when it says nothing new (a duplicate).
    pub fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::Accepted => !std::mem::replace(&mut self.accepted, true),
            Event::Cancelled => !std::mem::replace(&mut self.cancelled, true),
            Event::StockUnavailable => !std::mem::replace(&mut self.backordered, true),
            Event::StockReserved(units) => {
                if self.allocations.is_some() || units.is_empty() {
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
        }
    }

    /// Shipments expected: warehouses with reserved units not released. `None` until
    /// `stock.reserved` says.
    pub fn expected_shipments(&self) -> Option<u32> {
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

    /// Shipments that left a warehouse (seen dispatched, or delivered, which implies it).
    pub fn shipped(&self) -> BTreeSet<Uuid> {
        self.dispatched
            .keys()
            .copied()
            .chain(self.delivered.iter().copied())
            .collect()
    }

    /// Whether any shipment left a warehouse.
    pub fn any_shipped(&self) -> bool {
        !self.dispatched.is_empty() || !self.delivered.is_empty()
    }

    /// Whether a shipment was reported delivered without its dispatch (so its contents are
    /// not known yet).
    pub fn contents_unknown(&self) -> bool {
        self.delivered
            .iter()
            .any(|id| !self.dispatched.contains_key(id))
    }

    /// Units of `line_id` that left a warehouse.
    pub fn dispatched_units(&self, line_id: &str) -> u32 {
        self.dispatched
            .values()
            .filter_map(|lines| lines.get(line_id))
            .fold(0u32, |acc, q| acc.saturating_add(*q))
    }

    /// The status these facts call for (before the forward-only rule of [`decide`]).
    pub fn target(&self) -> OrderStatus {
        if self.cancelled {
            return OrderStatus::Cancelled;
        }
        if !self.accepted {
            return OrderStatus::OnHold;
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
pub struct Transition {
    /// Before (`None` for a new order).
    pub from: Option<OrderStatus>,
    /// After.
    pub to: OrderStatus,
}

/// A computed move the transition table does not allow: a bug or impossible data, never
/// applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {} → {to}", from.map_or("(new)", OrderStatus::as_str))]
pub struct IllegalTransition {
    /// Current status.
    pub from: Option<OrderStatus>,
    /// The status the facts called for.
    pub to: OrderStatus,
}

/// The status changes `facts` call for from `current`: none when the order is terminal,
/// already there or further along (a stale message); else one legal step, followed at once
/// by `delivered → completed` (an order completes when every shipment is delivered).
pub fn decide(
    current: Option<OrderStatus>,
    facts: &Facts,
) -> Result<Vec<Transition>, IllegalTransition> {
    let target = facts.target();
    if let Some(cur) = current {
        if cur.is_terminal() || cur == target {
            return Ok(Vec::new());
        }
        if target != OrderStatus::Cancelled && rank(target) < rank(cur) {
            return Ok(Vec::new());
        }
    }
    if !can_transition(current, target) {
        return Err(IllegalTransition {
            from: current,
            to: target,
        });
    }
    let mut out = vec![Transition {
        from: current,
        to: target,
    }];
    if target == OrderStatus::Delivered {
        out.push(Transition {
            from: Some(OrderStatus::Delivered),
            to: OrderStatus::Completed,
        });
    }
    Ok(out)
}

/// "Shipment 1 of 2" (or "Shipment 1" while the count is unknown).
pub fn shipment_ordinal(nth: usize, expected: Option<u32>) -> String {
    match expected {
        Some(n) => format!("Shipment {nth} of {n}"),
        None => format!("Shipment {nth} (number of shipments not known yet)"),
    }
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

/// What a cancellation (request, re-push or exception resolution) does.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelPlan {
    /// `Some(Order)`: the whole order ends; `Some(Lines)`: some lines, the rest goes on;
    /// `None`: nothing is cancelled.
    pub scope: Option<CancellationScope>,
    /// What is cancelled.
    pub lines: Vec<CancelledLine>,
    /// What could not be cancelled, and why.
    pub refused: Vec<String>,
}

impl CancelPlan {
    fn refused(reason: impl Into<String>) -> Self {
        Self {
            scope: None,
            lines: Vec::new(),
            refused: vec![reason.into()],
        }
    }

    /// The recorded outcome: `cancelled`, `lines_cancelled`, `partially_refused`, `refused`.
    pub fn outcome(&self) -> &'static str {
        match (self.scope, self.refused.is_empty()) {
            (Some(CancellationScope::Order), _) => "cancelled",
            (Some(CancellationScope::Lines), true) => "lines_cancelled",
            (Some(CancellationScope::Lines), false) => "partially_refused",
            (None, _) => "refused",
        }
    }

    /// One sentence for the timeline.
    pub fn describe(&self) -> String {
        let what = self
            .lines
            .iter()
            .map(|l| format!("line {} × {}", l.line_id, l.quantity))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = match self.scope {
            Some(CancellationScope::Order) => format!("whole order cancelled ({what})"),
            Some(CancellationScope::Lines) => format!("cancelled {what}"),
            None => "nothing cancelled".to_owned(),
        };
        if !self.refused.is_empty() {
            out.push_str("; refused: ");
            out.push_str(&self.refused.join("; "));
        }
        out
    }
}

/// Decides a cancellation.
///
/// - Whole order (`request = None`): allowed in any non-terminal status while no shipment has
///   left a warehouse; every line with units left is cancelled. After a dispatch it is
///   refused: name the lines to cancel what has not left.
/// - Lines: each line's units not yet cancelled and not yet dispatched can be cancelled; a
///   request for more cancels what it can and refuses the rest, with the reason. When that
///   cancels everything still open and nothing has shipped, it is a whole-order cancellation.
pub fn plan_cancellation(
    status: OrderStatus,
    lines: &[Line],
    facts: &Facts,
    request: Option<&[LineQuantity]>,
) -> CancelPlan {
    match status {
        OrderStatus::Cancelled => return CancelPlan::refused("the order is already cancelled"),
        OrderStatus::Completed | OrderStatus::Delivered => {
            return CancelPlan::refused(
                "the order is delivered and completed; request a refund instead",
            );
        }
        _ => {}
    }
    let Some(request) = request else {
        if facts.any_shipped() {
            let n = facts.shipped().len();
            return CancelPlan::refused(format!(
                "{n} shipment{} already left the warehouse; a whole-order cancellation is no longer possible \
                 (name the lines to cancel what has not been dispatched)",
                if n == 1 { "" } else { "s" }
            ));
        }
        let cancelled: Vec<CancelledLine> = lines
            .iter()
            .filter_map(|l| cancelled_line(l, l.open()))
            .collect();
        if cancelled.is_empty() {
            return CancelPlan::refused("nothing left to cancel");
        }
        return CancelPlan {
            scope: Some(CancellationScope::Order),
            lines: cancelled,
            refused: Vec::new(),
        };
    };
    if facts.contents_unknown() {
        return CancelPlan::refused(
            "a shipment was reported delivered before its dispatch; what it holds is not known yet, \
             so no line can be cancelled safely (try again later)",
        );
    }
    let mut cancelled = Vec::new();
    let mut refused = Vec::new();
    let mut remaining: BTreeMap<&str, u32> = lines
        .iter()
        .map(|l| (l.line_id.as_str(), l.open()))
        .collect();
    for req in request {
        let Some(line) = lines.iter().find(|l| l.line_id == req.line_id) else {
            refused.push(format!("line {} is not part of the order", req.line_id));
            continue;
        };
        let dispatched = facts.dispatched_units(&line.line_id);
        let cancellable = line
            .quantity
            .saturating_sub(line.cancelled)
            .saturating_sub(dispatched);
        let wanted = req.quantity.get();
        if cancellable == 0 {
            refused.push(format!(
                "line {}: nothing left to cancel ({} ordered, {dispatched} dispatched, {} already cancelled)",
                line.line_id, line.quantity, line.cancelled
            ));
            continue;
        }
        let take = wanted.min(cancellable);
        if take < wanted {
            refused.push(format!(
                "line {}: only {take} of {wanted} units could be cancelled ({dispatched} dispatched, {} already cancelled)",
                line.line_id, line.cancelled
            ));
        }
        if let Some(slot) = remaining.get_mut(line.line_id.as_str()) {
            *slot = slot.saturating_sub(take);
        }
        if let Some(c) = cancelled_line(line, take) {
            cancelled.push(c);
        }
    }
    if cancelled.is_empty() {
        return CancelPlan {
            scope: None,
            lines: Vec::new(),
            refused,
        };
    }
    let everything = remaining.values().all(|q| *q == 0);
    let scope = if everything && !facts.any_shipped() {
        CancellationScope::Order
    } else {
        CancellationScope::Lines
    };
    CancelPlan {
        scope: Some(scope),
        lines: cancelled,
        refused,
    }
}

fn cancelled_line(line: &Line, quantity: u32) -> Option<CancelledLine> {
    Some(CancelledLine {
        line_id: line.line_id.clone(),
        sku: line.sku().cloned(),
        quantity: Quantity::new(quantity).ok()?,
    })
}

// ---------------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------------

/// What a refund request means to the order (invoicing issues the credit note itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundPlan {
    /// Line id → units counted as refunded.
    pub accepted: Vec<(String, u32)>,
    /// Lines refused, with why.
    pub refused: Vec<String>,
}

impl RefundPlan {
    /// The recorded outcome: `recorded`, `partially_refused`, `refused`.
    pub fn outcome(&self, refund_shipping: bool) -> &'static str {
        match (
            self.accepted.is_empty() && !refund_shipping,
            self.refused.is_empty(),
        ) {
            (_, true) => "recorded",
            (false, false) => "partially_refused",
            (true, false) => "refused",
        }
    }
}

/// Checks a refund's quantities: at most what was ordered, less what was cancelled and what
/// earlier refunds already covered. A line asking for more is refused as a whole.
pub fn plan_refund(lines: &[Line], request: &[LineQuantity]) -> RefundPlan {
    let mut plan = RefundPlan::default();
    for req in request {
        let Some(line) = lines.iter().find(|l| l.line_id == req.line_id) else {
            plan.refused
                .push(format!("line {} is not part of the order", req.line_id));
            continue;
        };
        let refundable = line.open().saturating_sub(line.refunded);
        let wanted = req.quantity.get();
        if wanted > refundable {
            plan.refused.push(format!(
                "line {}: {wanted} units asked, only {refundable} can be refunded ({} ordered, {} cancelled, {} already refunded)",
                line.line_id, line.quantity, line.cancelled, line.refunded
            ));
        } else {
            plan.accepted.push((line.line_id.clone(), wanted));
        }
    }
    plan
}

// ---------------------------------------------------------------------------------------------
// Re-pushes
// ---------------------------------------------------------------------------------------------

/// What a re-pushed `order.placed` does to an existing order.
#[derive(Debug, Clone, PartialEq)]
pub enum RepushPlan {
    /// Same or lower revision: nothing changes.
    Duplicate,
    /// The order is on hold (nothing reserved, nothing announced downstream): the revision
    /// replaces it wholesale and its lines are matched again.
    Replace,
    /// The order is completed or cancelled: the revision is noted, nothing applied.
    Closed,
    /// The order is accepted: the revision is applied as commands.
    Amend(Amendment),
}

/// A revision applied to an accepted order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Amendment {
    /// Whether, and how, the addresses change.
    pub addresses: AddressChange,
    /// Whether the payment snapshot changes (a record only).
    pub payment_changed: bool,
    /// Units no longer ordered, to cancel like a cancellation request.
    pub reductions: Vec<LineQuantity>,
    /// Changes refused, with why.
    pub refused: Vec<String>,
    /// Changes not applied after acceptance, noted on the timeline.
    pub ignored: Vec<String>,
}

/// An address change on a re-push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AddressChange {
    /// Same addresses.
    #[default]
    Unchanged,
    /// Nothing has shipped: take the new addresses.
    Apply,
    /// Something has shipped: refused, with why.
    Refused(String),
}

/// Decides what a re-push does. For an accepted order (see the crate docs for why):
/// - lines removed or reduced compared to what is still ordered are cancelled (like a
///   cancellation request, so dispatched units are refused);
/// - added lines, raised quantities and a changed product on a line are refused: stock was
///   reserved for the accepted lines, and a new order is the way to sell more;
/// - address changes are taken until the first dispatch, refused after;
/// - price, total, customer changes are noted, not applied: the accepted snapshot stays.
pub fn plan_repush(
    head: &OrderHead,
    lines: &[Line],
    facts: &Facts,
    new: &OrderPlaced,
) -> RepushPlan {
    if new.revision <= head.revision {
        return RepushPlan::Duplicate;
    }
    if head.status.is_terminal() {
        return RepushPlan::Closed;
    }
    if head.status == OrderStatus::OnHold {
        return RepushPlan::Replace;
    }
    let mut a = Amendment::default();
    if new.billing_address != head.billing_address || new.shipping_address != head.shipping_address
    {
        a.addresses = if facts.any_shipped() {
            AddressChange::Refused(
                "address change refused: a shipment has already left the warehouse".to_owned(),
            )
        } else {
            AddressChange::Apply
        };
    }
    a.payment_changed = new.payment != head.payment;
    for line in lines {
        let Some(n) = new.lines.iter().find(|n| n.line_id == line.line_id) else {
            if let Ok(q) = Quantity::new(line.open()) {
                a.reductions.push(LineQuantity {
                    line_id: line.line_id.clone(),
                    quantity: q,
                });
            }
            continue;
        };
        if n.sku != line.requested_sku || n.gtin != line.gtin {
            a.refused.push(format!(
                "line {}: product changed after acceptance; not applied (cancel the line and place a new order)",
                line.line_id
            ));
            continue;
        }
        let new_q = n.quantity.get();
        let open = line.open();
        if new_q > line.quantity {
            a.refused.push(format!(
                "line {}: quantity raised from {} to {new_q} after acceptance; not applied",
                line.line_id, line.quantity
            ));
        } else if new_q < open {
            if let Ok(q) = Quantity::new(open - new_q) {
                a.reductions.push(LineQuantity {
                    line_id: line.line_id.clone(),
                    quantity: q,
                });
            }
        } else if new_q > open {
            a.ignored.push(format!(
                "line {}: {} unit(s) cancelled earlier stay cancelled",
                line.line_id,
                new_q - open
            ));
        }
        if n.unit_price != line.unit_price || n.discount != line.discount {
            a.ignored.push(format!(
                "line {}: price change not applied after acceptance",
                line.line_id
            ));
        }
    }
    for n in &new.lines {
        if !lines.iter().any(|l| l.line_id == n.line_id) {
            a.refused.push(format!(
                "line {} (“{}”) added after acceptance; not applied (place a new order for it)",
                n.line_id, n.title
            ));
        }
    }
    if new.shipping != head.shipping
        || new.discount != head.discount
        || new.tax != head.tax
        || new.total != head.total
        || new.currency != head.currency
        || new.prices_include_tax != head.prices_include_tax
    {
        a.ignored
            .push("amounts changed; the accepted amounts stay".to_owned());
    }
    if new.customer != head.customer {
        a.ignored
            .push("customer details changed; not applied after acceptance".to_owned());
    }
    RepushPlan::Amend(a)
}

// ---------------------------------------------------------------------------------------------
// The accepted order
// ---------------------------------------------------------------------------------------------

fn round_minor(value: Decimal, currency: CurrencyCode, strategy: RoundingStrategy) -> Decimal {
    match currency.minor_units() {
        Some(dp) => value.round_dp_with_strategy(u32::from(dp), strategy),
        None => value,
    }
}

fn line_amount(unit_price: Amount, quantity: u32, discount: Decimal) -> Result<Decimal, String> {
    unit_price
        .value()
        .checked_mul(Decimal::from(quantity))
        .and_then(|gross| gross.checked_sub(discount))
        .ok_or_else(|| "line amount too large".to_owned())
}

fn amount(value: Decimal, what: &str) -> Result<Amount, String> {
    Amount::new(value).map_err(|e| format!("{what}: {e}"))
}

/// Builds `order.accepted` from the stored order: every line with units left, with its
/// matched SKU and VAT category.
///
/// When lines were cancelled before acceptance (an operator removed a line, a re-push or a
/// request cancelled units of an order on hold), the amounts are recomputed so the message
/// stays consistent (its total is checked against its lines): line discounts and the stated
/// VAT shrink in proportion, the order discount is capped at what is left, and the total is
/// lines + shipping − discount (+ VAT when prices exclude it), rounded to the currency's
/// minor unit. The payload is validated before it is returned: orders never sends a message
/// its consumers would refuse.
pub fn accepted_order(head: &OrderHead, lines: &[Line]) -> Result<OrderAccepted, String> {
    let currency = head.currency;
    let mut changed = false;
    let mut original = Decimal::ZERO;
    let mut kept = Decimal::ZERO;
    let mut accepted = Vec::new();
    for line in lines {
        let full = line_amount(line.unit_price, line.quantity, line.discount.value())?;
        original = original
            .checked_add(full)
            .ok_or("amounts too large to add up")?;
        let open = line.open();
        if open == 0 {
            changed = true;
            continue;
        }
        let Some(m) = &line.matched else {
            return Err(format!("{} is not matched to a product", line.describe()));
        };
        let discount = if open == line.quantity {
            line.discount
        } else {
            changed = true;
            let share = line
                .discount
                .value()
                .checked_mul(Decimal::from(open))
                .and_then(|d| d.checked_div(Decimal::from(line.quantity)))
                .ok_or("line discount too large")?;
            amount(
                round_minor(share, currency, RoundingStrategy::ToZero),
                "line discount",
            )?
        };
        kept = kept
            .checked_add(line_amount(line.unit_price, open, discount.value())?)
            .ok_or("amounts too large to add up")?;
        accepted.push(AcceptedLine {
            line_id: line.line_id.clone(),
            sku: m.sku.clone(),
            gtin: line.gtin.clone(),
            title: line.title.clone(),
            quantity: Quantity::new(open).map_err(|e| e.to_string())?,
            unit_price: line.unit_price,
            discount,
            tax_category: m.tax_category,
        });
    }
    if accepted.is_empty() {
        return Err("no line is left to accept".to_owned());
    }
    let (discount, tax, total) = if changed {
        let before = kept
            .checked_add(head.shipping.value())
            .ok_or("amounts too large to add up")?;
        let discount =
            head.discount
                .value()
                .min(round_minor(before, currency, RoundingStrategy::ToZero));
        let tax = match head.tax {
            Some(t) if !original.is_zero() => Some(round_minor(
                t.value()
                    .checked_mul(kept)
                    .and_then(|x| x.checked_div(original))
                    .ok_or("tax too large")?,
                currency,
                RoundingStrategy::MidpointAwayFromZero,
            )),
            Some(t) => Some(t.value()),
            None => None,
        };
        let mut total = before - discount;
        if !head.prices_include_tax {
            total += tax.unwrap_or_default();
        }
        let total = round_minor(total, currency, RoundingStrategy::MidpointAwayFromZero);
        (
            amount(discount, "discount")?,
            tax.map(|t| amount(t, "tax")).transpose()?,
            amount(total, "total")?,
        )
    } else {
        (head.discount, head.tax, head.total)
    };
    let accepted = OrderAccepted {
        order_id: head.order_id,
        store_id: head.store_id.clone(),
        channel: head.channel,
        marketplace: head.marketplace.clone(),
        external_order_id: head.external_order_id.clone(),
        revision: head.revision,
        placed_at: head.placed_at,
        currency,
        prices_include_tax: head.prices_include_tax,
        customer: head.customer.clone(),
        billing_address: head.billing_address.clone(),
        shipping_address: head.shipping_address.clone(),
        lines: accepted,
        shipping: head.shipping,
        discount,
        tax,
        total,
        payment: head.payment.clone(),
    };
    accepted
        .validate()
        .map_err(|e| format!("the accepted order would break its contract: {e}"))?;
    Ok(accepted)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn placed(lines: serde_json::Value, total: &str) -> OrderPlaced {
        serde_json::from_value(json!({
            "store_id": "shop-de",
            "channel": "storefront",
            "external_order_id": "100234",
            "revision": 1,
            "placed_at": "2026-03-14T09:26:51Z",
            "currency": "EUR",
            "prices_include_tax": true,
            "customer": {"email": "Joerg@Example.de", "name": "Jörg", "locale": "de-DE", "is_business": false},
            "billing_address": {"name": "Jörg", "lines": ["Hauptstraße 12"], "postal_code": "10115", "city": "Berlin", "country": "DE"},
            "shipping_address": {"name": "Jörg", "lines": ["Hauptstraße 12"], "postal_code": "10115", "city": "Berlin", "country": "DE"},
            "lines": lines,
            "shipping": "4.95",
            "discount": "0.00",
            "total": total,
            "payment": {"status": "authorized", "method": "card"}
        }))
        .expect("test order")
    }

    fn two_line_order() -> OrderPlaced {
        placed(
            json!([
                {"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 2, "unit_price": "12.90"},
                {"line_id": "2", "sku": "TEA", "title": "Tea", "quantity": 1, "unit_price": "7.50", "discount": "0.75"}
            ]),
            "37.50",
        )
    }

    fn product(sku: &str, active: bool) -> Product {
        Product {
            sku: Sku::parse(sku).unwrap(),
            title: format!("{sku} (catalog)"),
            tax_category: TaxCategory::Reduced,
            active,
        }
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn matched_lines(p: &OrderPlaced) -> Vec<Line> {
        p.lines
            .iter()
            .map(|l| {
                let mut line = Line::from_placed(l);
                let s = l.sku.clone().unwrap_or_else(|| sku("X"));
                line.matched = Some(MatchedProduct {
                    sku: s,
                    tax_category: TaxCategory::Standard,
                    catalog_title: l.title.clone(),
                });
                line
            })
            .collect()
    }

    fn head_of(p: &OrderPlaced, status: OrderStatus) -> OrderHead {
        OrderHead::from_placed(Uuid::now_v7(), status, p)
    }

    fn lq(line: &str, q: u32) -> LineQuantity {
        LineQuantity {
            line_id: line.to_owned(),
            quantity: Quantity::new(q).unwrap(),
        }
    }

    // ----- matching -----

    #[test]
    fn sku_lines_match_active_products_only() {
        let p = two_line_order();
        let line = Line::from_placed(&p.lines[0]);
        let active = product("MUG", true);
        let inactive = product("MUG", false);
        match match_line(
            &line,
            &Lookup {
                by_sku: Some(&active),
                ..Lookup::default()
            },
        ) {
            Match::Matched(m) => {
                assert_eq!(m.sku, sku("MUG"));
                assert_eq!(m.tax_category, TaxCategory::Reduced, "catalog's category");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            match_line(
                &line,
                &Lookup {
                    by_sku: Some(&inactive),
                    ..Lookup::default()
                }
            ),
            Match::Unmatched {
                problem: ItemProblem::InactiveProduct,
                sku: Some(sku("MUG"))
            }
        );
        assert_eq!(
            match_line(&line, &Lookup::default()),
            Match::Unmatched {
                problem: ItemProblem::UnknownSku,
                sku: Some(sku("MUG"))
            }
        );
    }

    #[test]
    fn the_lines_own_tax_category_wins() {
        let p = placed(
            json!([{"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "10.00", "tax_category": "zero"}]),
            "14.95",
        );
        let line = Line::from_placed(&p.lines[0]);
        let prod = product("MUG", true);
        let Match::Matched(m) = match_line(
            &line,
            &Lookup {
                by_sku: Some(&prod),
                ..Lookup::default()
            },
        ) else {
            panic!("should match")
        };
        assert_eq!(m.tax_category, TaxCategory::Zero);
    }

    fn gtin_line() -> Line {
        let p = placed(
            json!([{"line_id": "1", "gtin": "4006381333931", "title": "Pen", "quantity": 1, "unit_price": "10.00"}]),
            "14.95",
        );
        Line::from_placed(&p.lines[0])
    }

    #[test]
    fn gtin_lines_match_catalog_then_mapping() {
        let line = gtin_line();
        let catalog = [product("PEN-B", true), product("PEN-A", true)];
        let Match::Matched(m) = match_line(
            &line,
            &Lookup {
                by_gtin: &catalog,
                ..Lookup::default()
            },
        ) else {
            panic!()
        };
        assert_eq!(m.sku, sku("PEN-A"), "lowest SKU wins deterministically");

        let inactive = [product("OLD", false)];
        let mapped_sku = sku("PEN-NEW");
        let mapped = product("PEN-NEW", true);
        let Match::Matched(m) = match_line(
            &line,
            &Lookup {
                by_gtin: &inactive,
                mapping: Some((&mapped_sku, Some(&mapped))),
                ..Lookup::default()
            },
        ) else {
            panic!()
        };
        assert_eq!(
            m.sku, mapped_sku,
            "a mapping beats an inactive catalog match"
        );

        assert_eq!(
            match_line(
                &line,
                &Lookup {
                    by_gtin: &inactive,
                    ..Lookup::default()
                }
            ),
            Match::Unmatched {
                problem: ItemProblem::InactiveProduct,
                sku: None
            }
        );
        assert_eq!(
            match_line(
                &line,
                &Lookup {
                    mapping: Some((&mapped_sku, None)),
                    ..Lookup::default()
                }
            ),
            Match::Unmatched {
                problem: ItemProblem::UnknownSku,
                sku: Some(mapped_sku.clone())
            }
        );
        let gone = product("PEN-NEW", false);
        assert_eq!(
            match_line(
                &line,
                &Lookup {
                    mapping: Some((&mapped_sku, Some(&gone))),
                    ..Lookup::default()
                }
            ),
            Match::Unmatched {
                problem: ItemProblem::InactiveProduct,
                sku: Some(mapped_sku.clone())
            }
        );
        assert_eq!(
            match_line(&line, &Lookup::default()),
            Match::Unmatched {
                problem: ItemProblem::UnknownGtin,
                sku: None
            }
        );
    }

    #[test]
    fn gtin14_normalisation_is_what_the_store_compares() {
        let ean13 = Gtin::parse("4006381333931").unwrap();
        let gtin14 = Gtin::parse("04006381333931").unwrap();
        assert_eq!(ean13.to_gtin14(), gtin14.to_gtin14());
    }

    #[test]
    fn a_replacing_revision_keeps_an_operators_match() {
        let old_unmatched = gtin_line();
        let mut old = gtin_line();
        old.matched = Some(MatchedProduct {
            sku: sku("PEN-OP"),
            tax_category: TaxCategory::Standard,
            catalog_title: "Pen".into(),
        });
        let mut new = gtin_line();
        new.requested_tax_category = Some(TaxCategory::Reduced);
        assert!(carry_over_match(&old, &mut new));
        let m = new.matched.clone().unwrap();
        assert_eq!(m.sku, sku("PEN-OP"));
        assert_eq!(
            m.tax_category,
            TaxCategory::Reduced,
            "the new line's own category wins"
        );

        let mut fresh = gtin_line();
        assert!(
            !carry_over_match(&old_unmatched, &mut fresh),
            "nothing to carry"
        );
        let mut changed = gtin_line();
        changed.gtin = Some(Gtin::parse("4012345678901").unwrap());
        assert!(
            !carry_over_match(&old, &mut changed),
            "another product: match again"
        );
        assert!(changed.matched.is_none());
    }

    #[test]
    fn resolutions_must_name_a_sold_product() {
        let s = sku("PEN");
        assert!(resolve_to(&s, Some(&product("PEN", true)), None).is_ok());
        assert!(
            resolve_to(&s, Some(&product("PEN", false)), None)
                .unwrap_err()
                .contains("inactive")
        );
        assert!(
            resolve_to(&s, None, None)
                .unwrap_err()
                .contains("not in the catalog")
        );
    }

    #[test]
    fn resolution_checks() {
        use ExceptionResolution as R;
        let a = sku("A");
        let b = sku("B");
        assert_eq!(
            check_resolution(ExceptionStatus::Open, None, None, R::MapToSku, Some(&a)),
            ResolutionCheck::Apply
        );
        assert_eq!(
            check_resolution(
                ExceptionStatus::Resolved,
                Some(R::MapToSku),
                Some(&a),
                R::MapToSku,
                Some(&a)
            ),
            ResolutionCheck::AlreadyApplied
        );
        assert!(matches!(
            check_resolution(
                ExceptionStatus::Resolved,
                Some(R::MapToSku),
                Some(&a),
                R::MapToSku,
                Some(&b)
            ),
            ResolutionCheck::Refuse(r) if r.contains("map_to_sku A")
        ));
        assert!(matches!(
            check_resolution(
                ExceptionStatus::Resolved,
                Some(R::RemoveLine),
                None,
                R::CancelOrder,
                None
            ),
            ResolutionCheck::Refuse(_)
        ));
        assert!(matches!(
            check_resolution(
                ExceptionStatus::Superseded,
                None,
                None,
                R::RemoveLine,
                None
            ),
            ResolutionCheck::Refuse(r) if r.contains("superseded")
        ));
    }

    #[test]
    fn exception_reconciliation_keeps_identical_ones() {
        let line = gtin_line();
        let keep = Uuid::now_v7();
        let stale = Uuid::now_v7();
        let open = [
            OpenException {
                exception_id: keep,
                line_id: "1".into(),
                problem: ItemProblem::UnknownGtin,
                sku: None,
                gtin: line.gtin.clone(),
            },
            OpenException {
                exception_id: stale,
                line_id: "9".into(),
                problem: ItemProblem::UnknownGtin,
                sku: None,
                gtin: None,
            },
        ];
        let mut other = line.clone();
        other.line_id = "2".into();
        let r = reconcile_exceptions(
            &open,
            &[
                (line, ItemProblem::UnknownGtin, None),
                (other, ItemProblem::UnknownGtin, None),
            ],
        );
        assert_eq!(r.supersede, vec![stale]);
        assert_eq!(r.raise, vec![1]);
    }

    #[test]
    fn customer_keys() {
        let mut c = two_line_order().customer;
        let id = Uuid::now_v7();
        assert_eq!(customer_key(&c, id), "joerg@example.de");
        c.id = Some("C-1".into());
        assert_eq!(customer_key(&c, id), "C-1");
        c.id = None;
        c.email = None;
        assert_eq!(customer_key(&c, id), format!("guest:{id}"));
    }

    // ----- the transition table -----

    #[test]
    fn transition_table_is_explicit() {
        use OrderStatus as S;
        let legal: &[(Option<S>, S)] = &[
            (None, S::OnHold),
            (None, S::Accepted),
            (Some(S::OnHold), S::Accepted),
            (Some(S::OnHold), S::Cancelled),
            (Some(S::Accepted), S::Backordered),
            (Some(S::Accepted), S::Processing),
            (Some(S::Accepted), S::PartiallyShipped),
            (Some(S::Accepted), S::Cancelled),
            (Some(S::Backordered), S::Processing),
            (Some(S::Backordered), S::PartiallyShipped),
            (Some(S::Backordered), S::Cancelled),
            (Some(S::Processing), S::PartiallyShipped),
            (Some(S::Processing), S::Shipped),
            (Some(S::Processing), S::Delivered),
            (Some(S::Processing), S::Cancelled),
            (Some(S::PartiallyShipped), S::Shipped),
            (Some(S::PartiallyShipped), S::Delivered),
            (Some(S::Shipped), S::Delivered),
            (Some(S::Delivered), S::Completed),
        ];
        let froms = std::iter::once(None).chain(S::ALL.iter().copied().map(Some));
        for from in froms {
            for to in S::ALL.iter().copied() {
                assert_eq!(
                    can_transition(from, to),
                    legal.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
        // Every legal move goes forward, except into `cancelled` (terminal by itself).
        for (from, to) in legal {
            if let Some(from) = from {
                assert!(rank(*to) > rank(*from), "{from} → {to} goes backwards");
                assert!(!from.is_terminal());
            }
        }
    }

    fn accepted_facts() -> Facts {
        let mut f = Facts::default();
        assert!(f.apply(&Event::Accepted));
        f
    }

    /// Applies `event` and the transitions it calls for; returns them.
    fn step(status: &mut Option<OrderStatus>, facts: &mut Facts, event: &Event) -> Vec<Transition> {
        facts.apply(event);
        let transitions = decide(*status, facts).expect("legal");
        for t in &transitions {
            assert_eq!(t.from, *status, "transitions chain");
            assert!(can_transition(t.from, t.to));
            *status = Some(t.to);
        }
        transitions
    }

    fn reserved_two() -> Event {
        Event::StockReserved(vec![
            Units {
                warehouse_id: "berlin".into(),
                line_id: "1".into(),
                quantity: 2,
            },
            Units {
                warehouse_id: "hamburg".into(),
                line_id: "2".into(),
                quantity: 1,
            },
        ])
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn a_new_order_is_accepted_or_held() {
        let t = decide(None, &accepted_facts()).unwrap();
        assert_eq!(
            t,
            vec![Transition {
                from: None,
                to: OrderStatus::Accepted
            }]
        );
        let t = decide(None, &Facts::default()).unwrap();
        assert_eq!(t[0].to, OrderStatus::OnHold);
    }

    #[test]
    fn the_happy_path_in_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut status = Some(OrderStatus::Accepted);
        let mut facts = accepted_facts();
        let to = |t: Vec<Transition>| t.iter().map(|t| t.to).collect::<Vec<_>>();
        assert_eq!(
            to(step(&mut status, &mut facts, &reserved_two())),
            [OrderStatus::Processing]
        );
        assert_eq!(
            to(step(
                &mut status,
                &mut facts,
                &Event::Dispatched {
                    shipment_id: a,
                    items: vec![("1".into(), 2)]
                }
            )),
            [OrderStatus::PartiallyShipped]
        );
        assert_eq!(
            to(step(
                &mut status,
                &mut facts,
                &Event::Dispatched {
                    shipment_id: b,
                    items: vec![("2".into(), 1)]
                }
            )),
            [OrderStatus::Shipped]
        );
        assert!(
            step(
                &mut status,
                &mut facts,
                &Event::Delivered { shipment_id: a }
            )
            .is_empty()
        );
        assert_eq!(
            to(step(
                &mut status,
                &mut facts,
                &Event::Delivered { shipment_id: b }
            )),
            [OrderStatus::Delivered, OrderStatus::Completed]
        );
    }

    #[test]
    fn every_arrival_order_ends_completed_in_the_same_state() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let events = vec![
            reserved_two(),
            Event::Dispatched {
                shipment_id: a,
                items: vec![("1".into(), 2)],
            },
            Event::Dispatched {
                shipment_id: b,
                items: vec![("2".into(), 1)],
            },
            Event::Delivered { shipment_id: a },
            Event::Delivered { shipment_id: b },
        ];
        let all = permutations(&events);
        assert_eq!(all.len(), 120);
        let mut final_facts = None;
        for order in all {
            let mut status = Some(OrderStatus::Accepted);
            let mut facts = accepted_facts();
            let mut completions = 0;
            for event in &order {
                let before = status;
                for t in step(&mut status, &mut facts, event) {
                    if t.to == OrderStatus::Completed {
                        completions += 1;
                    }
                }
                // Never backwards.
                assert!(rank(status.unwrap()) >= rank(before.unwrap()), "{order:?}");
                // Duplicates change nothing, at any point.
                let snapshot = facts.clone();
                assert!(!facts.apply(event), "duplicate {event:?} reported as new");
                assert_eq!(facts, snapshot);
                assert!(decide(status, &facts).unwrap().is_empty());
            }
            assert_eq!(status, Some(OrderStatus::Completed), "{order:?}");
            assert_eq!(completions, 1, "completed exactly once: {order:?}");
            match &final_facts {
                None => final_facts = Some(facts),
                Some(f) => assert_eq!(f, &facts, "{order:?}"),
            }
        }
    }

    #[test]
    fn every_arrival_order_passes_only_through_legal_states() {
        // Including stock.unavailable (a backorder later served) and a second, late
        // stock.reserved that must change nothing.
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let events = vec![
            Event::StockUnavailable,
            reserved_two(),
            Event::Dispatched {
                shipment_id: a,
                items: vec![("1".into(), 2)],
            },
            Event::Dispatched {
                shipment_id: b,
                items: vec![("2".into(), 1)],
            },
            Event::Delivered { shipment_id: a },
            Event::Delivered { shipment_id: b },
        ];
        for order in permutations(&events) {
            let mut status = Some(OrderStatus::Accepted);
            let mut facts = accepted_facts();
            for event in &order {
                step(&mut status, &mut facts, event);
            }
            assert_eq!(status, Some(OrderStatus::Completed), "{order:?}");
            assert!(!facts.apply(&Event::StockReserved(vec![Units {
                warehouse_id: "x".into(),
                line_id: "1".into(),
                quantity: 1
            }])));
            assert!(decide(status, &facts).unwrap().is_empty());
        }
    }

    #[test]
    fn a_dispatch_before_the_reservation_waits_for_the_count() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut status = Some(OrderStatus::Accepted);
        let mut facts = accepted_facts();
        for id in [a, b] {
            step(
                &mut status,
                &mut facts,
                &Event::Dispatched {
                    shipment_id: id,
                    items: vec![],
                },
            );
        }
        assert_eq!(
            status,
            Some(OrderStatus::PartiallyShipped),
            "count unknown: partially"
        );
        step(
            &mut status,
            &mut facts,
            &Event::Delivered { shipment_id: a },
        );
        step(
            &mut status,
            &mut facts,
            &Event::Delivered { shipment_id: b },
        );
        assert_eq!(status, Some(OrderStatus::PartiallyShipped));
        let t = step(&mut status, &mut facts, &reserved_two());
        assert_eq!(
            t.iter().map(|t| t.to).collect::<Vec<_>>(),
            [OrderStatus::Delivered, OrderStatus::Completed]
        );
    }

    #[test]
    fn a_backorder_is_served_later() {
        let mut status = Some(OrderStatus::Accepted);
        let mut facts = accepted_facts();
        step(&mut status, &mut facts, &Event::StockUnavailable);
        assert_eq!(status, Some(OrderStatus::Backordered));
        assert!(step(&mut status, &mut facts, &Event::StockUnavailable).is_empty());
        step(&mut status, &mut facts, &reserved_two());
        assert_eq!(status, Some(OrderStatus::Processing));
        // A stale stock.unavailable (overtaken by the reservation) changes nothing.
        let mut late = Facts {
            backordered: false,
            ..facts.clone()
        };
        assert!(late.apply(&Event::StockUnavailable));
        assert!(decide(status, &late).unwrap().is_empty());
    }

    #[test]
    fn a_delivery_before_its_dispatch_counts_as_shipped() {
        let a = Uuid::now_v7();
        let mut status = Some(OrderStatus::Processing);
        let mut facts = accepted_facts();
        facts.apply(&Event::StockReserved(vec![Units {
            warehouse_id: "berlin".into(),
            line_id: "1".into(),
            quantity: 1,
        }]));
        let t = step(
            &mut status,
            &mut facts,
            &Event::Delivered { shipment_id: a },
        );
        assert_eq!(
            t.iter().map(|t| t.to).collect::<Vec<_>>(),
            [OrderStatus::Delivered, OrderStatus::Completed]
        );
        assert!(
            step(
                &mut status,
                &mut facts,
                &Event::Dispatched {
                    shipment_id: a,
                    items: vec![("1".into(), 1)]
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn released_allocations_are_not_waited_for() {
        let a = Uuid::now_v7();
        let mut status = Some(OrderStatus::Processing);
        let mut facts = accepted_facts();
        facts.apply(&reserved_two());
        step(
            &mut status,
            &mut facts,
            &Event::Dispatched {
                shipment_id: a,
                items: vec![("1".into(), 2)],
            },
        );
        assert_eq!(status, Some(OrderStatus::PartiallyShipped));
        // Line 2 (all of hamburg's allocation) was cancelled and released.
        step(
            &mut status,
            &mut facts,
            &Event::StockReleased(vec![Units {
                warehouse_id: "hamburg".into(),
                line_id: "2".into(),
                quantity: 1,
            }]),
        );
        assert_eq!(facts.expected_shipments(), Some(1));
        assert_eq!(status, Some(OrderStatus::Shipped));
    }

    #[test]
    fn terminal_states_stay() {
        let mut facts = accepted_facts();
        facts.apply(&Event::Cancelled);
        assert_eq!(
            decide(Some(OrderStatus::Processing), &facts).unwrap()[0].to,
            OrderStatus::Cancelled
        );
        // A dispatch that raced the cancellation is recorded but changes nothing.
        facts.apply(&Event::Dispatched {
            shipment_id: Uuid::now_v7(),
            items: vec![],
        });
        assert!(
            decide(Some(OrderStatus::Cancelled), &facts)
                .unwrap()
                .is_empty()
        );
        let mut done = accepted_facts();
        done.apply(&Event::Cancelled);
        assert!(
            decide(Some(OrderStatus::Completed), &done)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn cancelling_after_a_dispatch_is_illegal_in_the_machine() {
        let mut facts = accepted_facts();
        facts.apply(&Event::Cancelled);
        assert_eq!(
            decide(Some(OrderStatus::Shipped), &facts),
            Err(IllegalTransition {
                from: Some(OrderStatus::Shipped),
                to: OrderStatus::Cancelled
            })
        );
    }

    #[test]
    fn on_hold_orders_are_accepted_or_cancelled() {
        let mut facts = Facts::default();
        assert!(
            decide(Some(OrderStatus::OnHold), &facts)
                .unwrap()
                .is_empty()
        );
        let mut cancelled = facts.clone();
        cancelled.apply(&Event::Cancelled);
        assert_eq!(
            decide(Some(OrderStatus::OnHold), &cancelled).unwrap()[0].to,
            OrderStatus::Cancelled
        );
        facts.apply(&Event::Accepted);
        assert_eq!(
            decide(Some(OrderStatus::OnHold), &facts).unwrap()[0].to,
            OrderStatus::Accepted
        );
    }

    // ----- cancellation -----

    #[test]
    fn whole_cancellation_before_dispatch() {
        let p = two_line_order();
        let lines = matched_lines(&p);
        for status in [
            OrderStatus::OnHold,
            OrderStatus::Accepted,
            OrderStatus::Backordered,
            OrderStatus::Processing,
        ] {
            let plan = plan_cancellation(status, &lines, &accepted_facts(), None);
            assert_eq!(plan.scope, Some(CancellationScope::Order), "{status}");
            assert_eq!(plan.lines.len(), 2);
            assert_eq!(plan.outcome(), "cancelled");
        }
    }

    #[test]
    fn whole_cancellation_after_dispatch_is_refused() {
        let p = two_line_order();
        let lines = matched_lines(&p);
        let mut facts = accepted_facts();
        facts.apply(&reserved_two());
        facts.apply(&Event::Dispatched {
            shipment_id: Uuid::now_v7(),
            items: vec![("1".into(), 2)],
        });
        let plan = plan_cancellation(OrderStatus::PartiallyShipped, &lines, &facts, None);
        assert_eq!(plan.scope, None);
        assert_eq!(plan.outcome(), "refused");
        assert!(plan.refused[0].contains("already left"), "{plan:?}");

        // Naming the undispatched line works; the dispatched one is refused.
        let plan = plan_cancellation(
            OrderStatus::PartiallyShipped,
            &lines,
            &facts,
            Some(&[lq("2", 1), lq("1", 1)]),
        );
        assert_eq!(plan.scope, Some(CancellationScope::Lines));
        assert_eq!(plan.lines.len(), 1);
        assert_eq!(plan.lines[0].line_id, "2");
        assert_eq!(plan.lines[0].sku, Some(sku("TEA")));
        assert_eq!(plan.outcome(), "partially_refused");
        assert!(plan.refused[0].contains("line 1"), "{plan:?}");
    }

    #[test]
    fn cancelling_every_open_unit_is_a_whole_cancellation() {
        let p = two_line_order();
        let mut lines = matched_lines(&p);
        lines[0].cancelled = 1;
        let plan = plan_cancellation(
            OrderStatus::Accepted,
            &lines,
            &accepted_facts(),
            Some(&[lq("1", 5), lq("2", 1)]),
        );
        assert_eq!(plan.scope, Some(CancellationScope::Order));
        assert_eq!(plan.lines[0].quantity.get(), 1, "only the open unit");
        assert!(plan.refused[0].contains("only 1 of 5"), "{plan:?}");
    }

    #[test]
    fn cancelling_part_of_a_line() {
        let p = two_line_order();
        let lines = matched_lines(&p);
        let plan = plan_cancellation(
            OrderStatus::Processing,
            &lines,
            &accepted_facts(),
            Some(&[lq("1", 1)]),
        );
        assert_eq!(plan.scope, Some(CancellationScope::Lines));
        assert_eq!(plan.outcome(), "lines_cancelled");
        let plan = plan_cancellation(
            OrderStatus::Processing,
            &lines,
            &accepted_facts(),
            Some(&[lq("7", 1)]),
        );
        assert_eq!(plan.scope, None);
        assert!(plan.refused[0].contains("not part of the order"));
    }

    #[test]
    fn terminal_orders_cannot_be_cancelled() {
        let lines = matched_lines(&two_line_order());
        for status in [
            OrderStatus::Cancelled,
            OrderStatus::Completed,
            OrderStatus::Delivered,
        ] {
            assert_eq!(
                plan_cancellation(status, &lines, &accepted_facts(), None).scope,
                None
            );
        }
    }

    #[test]
    fn unknown_shipment_contents_block_line_cancellations() {
        let lines = matched_lines(&two_line_order());
        let mut facts = accepted_facts();
        facts.apply(&Event::Delivered {
            shipment_id: Uuid::now_v7(),
        });
        let plan = plan_cancellation(
            OrderStatus::PartiallyShipped,
            &lines,
            &facts,
            Some(&[lq("2", 1)]),
        );
        assert_eq!(plan.scope, None);
        assert!(plan.refused[0].contains("not known yet"));
    }

    // ----- refunds -----

    #[test]
    fn refunds_are_capped_by_the_ordered_quantity() {
        let mut lines = matched_lines(&two_line_order());
        lines[0].refunded = 1;
        let plan = plan_refund(&lines, &[lq("1", 1), lq("2", 2), lq("9", 1)]);
        assert_eq!(plan.accepted, vec![("1".to_owned(), 1)]);
        assert_eq!(plan.refused.len(), 2);
        assert!(
            plan.refused[0].contains("only 1 can be refunded"),
            "{plan:?}"
        );
        assert_eq!(plan.outcome(false), "partially_refused");
        let plan = plan_refund(&lines, &[lq("1", 2)]);
        assert_eq!(plan.outcome(false), "refused");
        assert_eq!(plan.outcome(true), "partially_refused");
        assert_eq!(plan_refund(&lines, &[]).outcome(true), "recorded");
    }

    // ----- re-pushes -----

    #[test]
    fn repush_revisions() {
        let p = two_line_order();
        let lines = matched_lines(&p);
        let head = head_of(&p, OrderStatus::Accepted);
        assert_eq!(
            plan_repush(&head, &lines, &accepted_facts(), &p),
            RepushPlan::Duplicate
        );
        let mut lower = p.clone();
        lower.revision = 0;
        assert_eq!(
            plan_repush(&head, &lines, &accepted_facts(), &lower),
            RepushPlan::Duplicate
        );
        let mut next = p.clone();
        next.revision = 2;
        assert_eq!(
            plan_repush(
                &head_of(&p, OrderStatus::OnHold),
                &lines,
                &Facts::default(),
                &next
            ),
            RepushPlan::Replace
        );
        assert_eq!(
            plan_repush(
                &head_of(&p, OrderStatus::Cancelled),
                &lines,
                &accepted_facts(),
                &next
            ),
            RepushPlan::Closed
        );
        let RepushPlan::Amend(a) = plan_repush(&head, &lines, &accepted_facts(), &next) else {
            panic!()
        };
        assert_eq!(
            a,
            Amendment::default(),
            "an unchanged revision changes nothing"
        );
    }

    #[test]
    fn repush_after_acceptance_is_applied_as_commands() {
        let p = two_line_order();
        let lines = matched_lines(&p);
        let head = head_of(&p, OrderStatus::Processing);
        let mut next = placed(
            json!([
                {"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "12.90"},
                {"line_id": "3", "sku": "CUP", "title": "Cup", "quantity": 1, "unit_price": "5.00"}
            ]),
            "22.85",
        );
        next.revision = 2;
        next.shipping_address.city = "Potsdam".into();
        let RepushPlan::Amend(a) = plan_repush(&head, &lines, &accepted_facts(), &next) else {
            panic!()
        };
        assert_eq!(a.addresses, AddressChange::Apply);
        assert_eq!(a.reductions, vec![lq("1", 1), lq("2", 1)]);
        assert_eq!(a.refused.len(), 1);
        assert!(a.refused[0].contains("line 3"), "{a:?}");
        assert!(a.ignored.iter().any(|i| i.contains("amounts")), "{a:?}");

        // After a dispatch, the address stays.
        let mut facts = accepted_facts();
        facts.apply(&Event::Dispatched {
            shipment_id: Uuid::now_v7(),
            items: vec![("1".into(), 2)],
        });
        let RepushPlan::Amend(a) = plan_repush(&head, &lines, &facts, &next) else {
            panic!()
        };
        assert!(matches!(a.addresses, AddressChange::Refused(_)));
    }

    #[test]
    fn repush_raising_quantities_is_refused_and_earlier_cancellations_stay() {
        let p = two_line_order();
        let mut lines = matched_lines(&p);
        lines[0].cancelled = 1;
        let head = head_of(&p, OrderStatus::Processing);
        let mut next = p.clone();
        next.revision = 3;
        next.lines[1].quantity = Quantity::new(4).unwrap();
        let RepushPlan::Amend(a) = plan_repush(&head, &lines, &accepted_facts(), &next) else {
            panic!()
        };
        assert!(a.reductions.is_empty());
        assert!(a.refused[0].contains("raised from 1 to 4"), "{a:?}");
        assert!(a.ignored[0].contains("stay cancelled"), "{a:?}");
    }

    // ----- the accepted order -----

    #[test]
    fn the_accepted_order_carries_every_line_as_placed() {
        let p = two_line_order();
        let lines = matched_lines(&p);
        let head = head_of(&p, OrderStatus::Accepted);
        let a = accepted_order(&head, &lines).unwrap();
        assert_eq!(a.lines.len(), 2);
        assert_eq!(a.total, p.total);
        assert_eq!(a.lines[1].discount, p.lines[1].discount);
        assert_eq!(a.lines[0].tax_category, TaxCategory::Standard);
    }

    #[test]
    fn cancelled_lines_before_acceptance_recompute_the_amounts() {
        let mut p = placed(
            json!([
                {"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 2, "unit_price": "12.90"},
                {"line_id": "2", "sku": "TEA", "title": "Tea", "quantity": 3, "unit_price": "7.50", "discount": "1.00"}
            ]),
            "52.25",
        );
        p.discount = Amount::parse("1.00").unwrap();
        p.total = Amount::parse("51.25").unwrap();
        p.validate().unwrap();
        let mut lines = matched_lines(&p);
        let head = head_of(&p, OrderStatus::OnHold);

        // Remove line 1 entirely, one unit of line 2.
        lines[0].cancelled = 2;
        lines[1].cancelled = 1;
        let a = accepted_order(&head, &lines).unwrap();
        assert_eq!(a.lines.len(), 1);
        assert_eq!(a.lines[0].quantity.get(), 2);
        assert_eq!(
            a.lines[0].discount.value(),
            Decimal::new(66, 2),
            "1.00 × 2/3 rounded down"
        );
        // 2 × 7.50 − 0.66 + 4.95 − 1.00
        assert_eq!(a.total.value(), Decimal::new(1829, 2));
        a.validate().unwrap();
    }

    #[test]
    fn recomputed_amounts_for_net_prices_prorate_the_tax() {
        let mut p = placed(
            json!([
                {"line_id": "1", "sku": "A", "title": "A", "quantity": 1, "unit_price": "100.00"},
                {"line_id": "2", "sku": "B", "title": "B", "quantity": 1, "unit_price": "100.00"}
            ]),
            "0.00",
        );
        p.prices_include_tax = false;
        p.shipping = Amount::parse("0.00").unwrap();
        p.tax = Some(Amount::parse("38.00").unwrap());
        p.total = Amount::parse("238.00").unwrap();
        p.validate().unwrap();
        let mut lines = matched_lines(&p);
        lines[1].cancelled = 1;
        let a = accepted_order(&head_of(&p, OrderStatus::OnHold), &lines).unwrap();
        assert_eq!(a.tax.unwrap().value(), Decimal::new(1900, 2));
        assert_eq!(a.total.value(), Decimal::new(11900, 2));
    }

    #[test]
    fn an_order_discount_larger_than_what_is_left_is_capped() {
        let mut p = placed(
            json!([
                {"line_id": "1", "sku": "A", "title": "A", "quantity": 1, "unit_price": "50.00"},
                {"line_id": "2", "sku": "B", "title": "B", "quantity": 1, "unit_price": "5.00"}
            ]),
            "0.00",
        );
        p.shipping = Amount::parse("0.00").unwrap();
        p.discount = Amount::parse("20.00").unwrap();
        p.total = Amount::parse("35.00").unwrap();
        p.validate().unwrap();
        let mut lines = matched_lines(&p);
        lines[0].cancelled = 1;
        let a = accepted_order(&head_of(&p, OrderStatus::OnHold), &lines).unwrap();
        assert_eq!(a.discount.value(), Decimal::new(500, 2));
        assert!(a.total.is_zero());
    }

    #[test]
    fn unmatched_or_empty_orders_are_not_accepted() {
        let p = two_line_order();
        let mut lines = matched_lines(&p);
        lines[1].matched = None;
        let head = head_of(&p, OrderStatus::OnHold);
        assert!(
            accepted_order(&head, &lines)
                .unwrap_err()
                .contains("not matched")
        );
        lines[1].cancelled = 1;
        assert!(
            accepted_order(&head, &lines).is_ok(),
            "a cancelled unmatched line is fine"
        );
        lines[0].cancelled = 2;
        assert!(
            accepted_order(&head, &lines)
                .unwrap_err()
                .contains("no line")
        );
    }

    #[test]
    fn ordinals() {
        assert_eq!(shipment_ordinal(1, Some(2)), "Shipment 1 of 2");
        assert!(shipment_ordinal(1, None).contains("not known"));
    }
}
