//! Fulfillment's rules, with no I/O: what a carrier's word means, which state a shipment is
//! in given its tracking history, which events that state owes the rest of the system, how
//! an allocation becomes shipments, how a cancellation shrinks them, and what goes on an
//! invoice request.
//!
//! # The shipment state is a function of its history
//! Carriers send events late, twice and out of order. Rather than moving a stored state by
//! each event as it arrives (where the result would depend on the arrival order), the state
//! is [`derive`]d from the whole tracking history every time: the events are sorted by the
//! carrier's `event_at` (ties broken by a fixed status order, then by message id) and folded
//! through one transition function ([`Tracking::step`]). The same set of events therefore
//! gives the same state in any arrival order, by construction.
//!
//! The transition function is monotonic:
//! - the main chain `requested < label_created < in_transit < out_for_delivery < delivered`
//!   only moves up by rank;
//! - `delivery_failed` and `exception` are side states, entered from `in_transit` or
//!   `out_for_delivery`, and left by an `in_transit`, `out_for_delivery` or `delivered` (or
//!   the other side state) with a strictly later `event_at`;
//! - `delivered` is terminal except for `returned`; `returned` is terminal; `cancelled` (ours,
//!   not a carrier's) is terminal.
//!
//! So a late `in_transit` after `delivered` changes nothing, a duplicate changes nothing, and
//! an event older than the state's last transition can only matter where it was the true
//! course of events (a `delivered` at 10:00 reported after an `exception` at 11:00 means the
//! parcel was delivered; the exception after delivery is kept in the history only).
//!
//! # Events owed, once
//! [`due_notices`] says which one-off events the current state calls for (`dispatched` once,
//! `delivered` once, one `exception` per exception status); the store remembers which were
//! sent, so each is published exactly once however often it is asked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    AcceptedLine, Allocation, CancellationScope, InvoiceLine, InvoiceRequested, InvoiceTiming,
    OrderAccepted, StatusVocabulary,
};
use orderly_contracts::types::{Amount, Gtin, InvalidValue, ShipmentStatus, Sku, WarehouseId};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Shipment states
// ---------------------------------------------------------------------------------------

/// Where a shipment stands: the carrier statuses plus our own `requested` (asked of the
/// warehouse, nothing heard yet) and `cancelled` (cancelled before it left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentState {
    /// `shipment.requested` sent; no tracking event yet.
    Requested,
    /// The carrier has a label, nothing picked up yet. Not dispatched.
    LabelCreated,
    /// Picked up and moving: dispatched.
    InTransit,
    /// With the driver.
    OutForDelivery,
    /// Delivered (to the recipient, a neighbour or a pick-up point).
    Delivered,
    /// A delivery attempt failed (side state).
    DeliveryFailed,
    /// Something needs a human (side state).
    Exception,
    /// On its way back to the sender. Terminal.
    Returned,
    /// Cancelled before dispatch. Terminal.
    Cancelled,
}

impl ShipmentState {
    /// Every state.
    pub const ALL: [Self; 9] = [
        Self::Requested,
        Self::LabelCreated,
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::DeliveryFailed,
        Self::Exception,
        Self::Returned,
        Self::Cancelled,
    ];

    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::LabelCreated => "label_created",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::DeliveryFailed => "delivery_failed",
            Self::Exception => "exception",
            Self::Returned => "returned",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The state a carrier status puts a shipment in.
    pub const fn from_status(status: ShipmentStatus) -> Self {
        match status {
            ShipmentStatus::LabelCreated => Self::LabelCreated,
            ShipmentStatus::InTransit => Self::InTransit,
            ShipmentStatus::OutForDelivery => Self::OutForDelivery,
            ShipmentStatus::Delivered => Self::Delivered,
            ShipmentStatus::DeliveryFailed => Self::DeliveryFailed,
            ShipmentStatus::Exception => Self::Exception,
            ShipmentStatus::Returned => Self::Returned,
        }
    }

    /// Whether the goods have left the warehouse: the carrier has them (`label_created` only
    /// means a label was printed).
    pub const fn is_dispatched(self) -> bool {
        matches!(
            self,
            Self::InTransit
                | Self::OutForDelivery
                | Self::Delivered
                | Self::DeliveryFailed
                | Self::Exception
                | Self::Returned
        )
    }

    /// Whether the shipment has not left yet and can still be cancelled or shrunk.
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::LabelCreated)
    }

    /// Rank on the main chain; `None` for side and terminal-only states.
    const fn rank(self) -> Option<u8> {
        match self {
            Self::Requested => Some(0),
            Self::LabelCreated => Some(1),
            Self::InTransit => Some(2),
            Self::OutForDelivery => Some(3),
            Self::Delivered => Some(4),
            Self::DeliveryFailed | Self::Exception | Self::Returned | Self::Cancelled => None,
        }
    }
}

impl std::fmt::Display for ShipmentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// Carrier vocabularies
// ---------------------------------------------------------------------------------------

/// What a carrier's status word means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMapping {
    /// The word maps onto this status.
    Status(ShipmentStatus),
    /// A known word that says nothing about where the parcel is (`unknown`, `Pending`).
    NoStatus,
    /// A word the vocabulary's table does not have.
    Unrecognised,
}

impl StatusMapping {
    /// The status, if the word has one.
    pub const fn status(self) -> Option<ShipmentStatus> {
        match self {
            Self::Status(status) => Some(status),
            Self::NoStatus | Self::Unrecognised => None,
        }
    }
}

/// One vocabulary: each word, and the status it maps to (`None`: known, but no status).
pub type VocabularyTable = &'static [(&'static str, Option<ShipmentStatus>)];

/// EasyPost tracker statuses.
///
/// `available_for_pickup` is `delivered`: our vocabulary counts delivery to a pick-up point
/// as delivery (an uncollected parcel later comes back as `return_to_sender`). `failure` is
/// EasyPost's undeliverable-attempt status; `cancelled` (the label was voided) and `error`
/// (the tracker broke) need a human.
pub const EASYPOST: VocabularyTable = &[
    ("pre_transit", Some(ShipmentStatus::LabelCreated)),
    ("in_transit", Some(ShipmentStatus::InTransit)),
    ("out_for_delivery", Some(ShipmentStatus::OutForDelivery)),
    ("delivered", Some(ShipmentStatus::Delivered)),
    ("available_for_pickup", Some(ShipmentStatus::Delivered)),
    ("return_to_sender", Some(ShipmentStatus::Returned)),
    ("failure", Some(ShipmentStatus::DeliveryFailed)),
    ("cancelled", Some(ShipmentStatus::Exception)),
    ("error", Some(ShipmentStatus::Exception)),
    ("unknown", None),
];

/// AfterShip tags. `Expired` (no news for 30 days) needs a human; `Pending` (nothing known
/// yet) says nothing.
pub const AFTERSHIP: VocabularyTable = &[
    ("InfoReceived", Some(ShipmentStatus::LabelCreated)),
    ("InTransit", Some(ShipmentStatus::InTransit)),
    ("OutForDelivery", Some(ShipmentStatus::OutForDelivery)),
    ("AttemptFail", Some(ShipmentStatus::DeliveryFailed)),
    ("Delivered", Some(ShipmentStatus::Delivered)),
    ("AvailableForPickup", Some(ShipmentStatus::Delivered)),
    ("Exception", Some(ShipmentStatus::Exception)),
    ("Expired", Some(ShipmentStatus::Exception)),
    ("Pending", None),
];

/// Shippo tracking statuses. `FAILURE` (lost, damaged, undeliverable) needs a human.
pub const SHIPPO: VocabularyTable = &[
    ("PRE_TRANSIT", Some(ShipmentStatus::LabelCreated)),
    ("TRANSIT", Some(ShipmentStatus::InTransit)),
    ("DELIVERED", Some(ShipmentStatus::Delivered)),
    ("RETURNED", Some(ShipmentStatus::Returned)),
    ("FAILURE", Some(ShipmentStatus::Exception)),
    ("UNKNOWN", None),
];

/// Our own words: each `ShipmentStatus` by its wire name.
pub const ORDERLY: VocabularyTable = &[
    ("label_created", Some(ShipmentStatus::LabelCreated)),
    ("in_transit", Some(ShipmentStatus::InTransit)),
    ("out_for_delivery", Some(ShipmentStatus::OutForDelivery)),
    ("delivered", Some(ShipmentStatus::Delivered)),
    ("delivery_failed", Some(ShipmentStatus::DeliveryFailed)),
    ("returned", Some(ShipmentStatus::Returned)),
    ("exception", Some(ShipmentStatus::Exception)),
];

/// The table of `vocabulary`.
pub const fn vocabulary_table(vocabulary: StatusVocabulary) -> VocabularyTable {
    match vocabulary {
        StatusVocabulary::Easypost => EASYPOST,
        StatusVocabulary::Aftership => AFTERSHIP,
        StatusVocabulary::Shippo => SHIPPO,
        StatusVocabulary::Orderly => ORDERLY,
    }
}

/// Maps `raw` (case-insensitive, surrounding spaces ignored) from `vocabulary` onto ours.
pub fn map_status(vocabulary: StatusVocabulary, raw: &str) -> StatusMapping {
    let raw = raw.trim();
    match vocabulary_table(vocabulary)
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(raw))
    {
        Some((_, Some(status))) => StatusMapping::Status(*status),
        Some((_, None)) => StatusMapping::NoStatus,
        None => StatusMapping::Unrecognised,
    }
}

// ---------------------------------------------------------------------------------------
// The tracking state machine
// ---------------------------------------------------------------------------------------

/// A mapped tracking event, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// When it happened at the carrier.
    pub at: DateTime<Utc>,
    /// What it says.
    pub status: ShipmentStatus,
    /// The message that brought it (identifies the event; last tie-breaker).
    pub source: Uuid,
}

/// A shipment's tracking state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracking {
    /// The state.
    pub state: ShipmentState,
    /// Carrier time of the event that moved the shipment into `state`.
    pub since: Option<DateTime<Utc>>,
    /// That event's source message.
    pub cause: Option<Uuid>,
    /// Carrier time of the first move into a dispatched state.
    pub dispatched_at: Option<DateTime<Utc>>,
}

impl Tracking {
    /// A shipment just requested: no tracking yet.
    pub const REQUESTED: Self = Self {
        state: ShipmentState::Requested,
        since: None,
        cause: None,
        dispatched_at: None,
    };

    /// The state after `obs`, or `None` when `obs` changes nothing. Assumes observations come
    /// in [`derive`]'s order (never earlier than `self.since`).
    pub fn step(&self, obs: &Observation) -> Option<Self> {
        use ShipmentState as St;
        use ShipmentStatus as S;
        let to = St::from_status(obs.status);
        let later = self.since.is_none_or(|since| obs.at > since);
        let allowed = match self.state {
            St::Cancelled | St::Returned => false,
            St::Delivered => obs.status == S::Returned,
            St::Requested | St::LabelCreated | St::InTransit | St::OutForDelivery => {
                match obs.status {
                    S::LabelCreated | S::InTransit | S::OutForDelivery | S::Delivered => {
                        to.rank() > self.state.rank()
                    }
                    S::DeliveryFailed | S::Exception => {
                        matches!(self.state, St::InTransit | St::OutForDelivery)
                    }
                    S::Returned => true,
                }
            }
            St::DeliveryFailed | St::Exception => match obs.status {
                S::InTransit | S::OutForDelivery | S::Delivered => later,
                S::DeliveryFailed | S::Exception => to != self.state && later,
                S::LabelCreated => false,
                S::Returned => true,
            },
        };
        allowed.then(|| Self {
            state: to,
            since: Some(obs.at),
            cause: Some(obs.source),
            dispatched_at: self
                .dispatched_at
                .or_else(|| to.is_dispatched().then_some(obs.at)),
        })
    }
}

/// Order of statuses reported at the same instant: the course a parcel takes, with
/// `delivered` before the side states so that a delivery wins a tie.
const fn tie_order(status: ShipmentStatus) -> u8 {
    match status {
        ShipmentStatus::LabelCreated => 0,
        ShipmentStatus::InTransit => 1,
        ShipmentStatus::OutForDelivery => 2,
        ShipmentStatus::Delivered => 3,
        ShipmentStatus::DeliveryFailed => 4,
        ShipmentStatus::Exception => 5,
        ShipmentStatus::Returned => 6,
    }
}

/// The state a shipment is in after `observations`, whatever order they arrived in.
pub fn derive(observations: &[Observation]) -> Tracking {
    let mut sorted = observations.to_vec();
    sorted.sort_by_key(|o| (o.at, tie_order(o.status), o.source));
    sorted.iter().fold(Tracking::REQUESTED, |tracking, obs| {
        tracking.step(obs).unwrap_or(tracking)
    })
}

/// A one-off event about a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// `shipment.dispatched` (and, when the order is invoiced per shipment, its invoice).
    Dispatched,
    /// `shipment.delivered`.
    Delivered,
    /// `shipment.exception` for this status (`delivery_failed`, `exception`, `returned`).
    Exception(ShipmentStatus),
}

impl Notice {
    /// The stored key (unique per shipment).
    pub fn key(self) -> String {
        match self {
            Self::Dispatched => "dispatched".to_owned(),
            Self::Delivered => "delivered".to_owned(),
            Self::Exception(status) => format!("exception:{status}"),
        }
    }

    /// Parses a stored key.
    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "dispatched" => Some(Self::Dispatched),
            "delivered" => Some(Self::Delivered),
            other => other
                .strip_prefix("exception:")
                .and_then(|s| s.parse::<ShipmentStatus>().ok())
                .map(Self::Exception),
        }
    }
}

/// The one-off events `tracking` calls for that are not in `sent` yet, in publishing order.
///
/// Judged on the current state (not on the transition), so an event is never missed even if
/// an earlier run was interrupted; `sent` makes each happen once.
pub fn due_notices(tracking: &Tracking, sent: &[Notice]) -> Vec<Notice> {
    let mut due = Vec::new();
    if tracking.state.is_dispatched() {
        due.push(Notice::Dispatched);
    }
    match tracking.state {
        ShipmentState::Delivered => due.push(Notice::Delivered),
        ShipmentState::DeliveryFailed => {
            due.push(Notice::Exception(ShipmentStatus::DeliveryFailed));
        }
        ShipmentState::Exception => due.push(Notice::Exception(ShipmentStatus::Exception)),
        ShipmentState::Returned => due.push(Notice::Exception(ShipmentStatus::Returned)),
        _ => {}
    }
    due.retain(|notice| !sent.contains(notice));
    due
}

// ---------------------------------------------------------------------------------------
// Shipments from an allocation, and cancellations
// ---------------------------------------------------------------------------------------

/// An item of a shipment to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    /// The order line.
    pub line_id: String,
    /// The SKU inventory reserved.
    pub sku: Sku,
    /// The line's GTIN, if the order had one.
    pub gtin: Option<Gtin>,
    /// Product name from the order.
    pub title: String,
    /// Units inventory allocated to this warehouse.
    pub allocated: u32,
    /// Units to ship (allocated minus cancelled).
    pub quantity: u32,
}

/// A shipment to be made from one warehouse allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedShipment {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Position of the allocation (warehouse preference order).
    pub position: u32,
    /// What it ships.
    pub items: Vec<PlannedItem>,
    /// Whether a cancellation received earlier leaves nothing to ship.
    pub cancelled: bool,
}

/// Why an allocation cannot be turned into shipments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The allocation names a line the order does not have.
    #[error(
        "warehouse {warehouse_id} is allocated line `{line_id}`, which order {order_id} does not have"
    )]
    UnknownLine {
        /// The order.
        order_id: Uuid,
        /// The warehouse.
        warehouse_id: WarehouseId,
        /// The line.
        line_id: String,
    },
    /// More units of a line are allocated than were ordered.
    #[error(
        "line `{line_id}` of order {order_id} is allocated {allocated} units, but {ordered} were ordered"
    )]
    OverAllocated {
        /// The order.
        order_id: Uuid,
        /// The line.
        line_id: String,
        /// Units allocated over all warehouses.
        allocated: u64,
        /// Units ordered.
        ordered: u32,
    },
}

/// One shipment per allocation, its items joined with the order's lines.
pub fn plan_shipments(
    order: &OrderAccepted,
    allocations: &[Allocation],
) -> Result<Vec<PlannedShipment>, PlanError> {
    let lines: BTreeMap<&str, &AcceptedLine> = order
        .lines
        .iter()
        .map(|line| (line.line_id.as_str(), line))
        .collect();
    let mut allocated: BTreeMap<&str, u64> = BTreeMap::new();
    let mut shipments = Vec::with_capacity(allocations.len());
    for (position, allocation) in (0u32..).zip(allocations) {
        let mut items = Vec::with_capacity(allocation.lines.len());
        for allocated_line in &allocation.lines {
            let Some(line) = lines.get(allocated_line.line_id.as_str()) else {
                return Err(PlanError::UnknownLine {
                    order_id: order.order_id,
                    warehouse_id: allocation.warehouse_id.clone(),
                    line_id: allocated_line.line_id.clone(),
                });
            };
            *allocated.entry(line.line_id.as_str()).or_default() +=
                u64::from(allocated_line.quantity.get());
            items.push(PlannedItem {
                line_id: allocated_line.line_id.clone(),
                sku: allocated_line.sku.clone(),
                gtin: line.gtin.clone(),
                title: line.title.clone(),
                allocated: allocated_line.quantity.get(),
                quantity: allocated_line.quantity.get(),
            });
        }
        shipments.push(PlannedShipment {
            warehouse_id: allocation.warehouse_id.clone(),
            position,
            items,
            cancelled: false,
        });
    }
    for (line_id, units) in allocated {
        let ordered = lines.get(line_id).map_or(0, |line| line.quantity.get());
        if units > u64::from(ordered) {
            return Err(PlanError::OverAllocated {
                order_id: order.order_id,
                line_id: line_id.to_owned(),
                allocated: units,
                ordered,
            });
        }
    }
    Ok(shipments)
}

/// A cancellation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// Whole order or some lines.
    pub scope: CancellationScope,
    /// Units cancelled per line.
    pub lines: Vec<(String, u32)>,
}

/// A shipment as a cancellation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentContents {
    /// Allocation position: shipments later in the preference order give up units first.
    pub position: u32,
    /// Its state.
    pub state: ShipmentState,
    /// Units per line still to ship.
    pub items: Vec<(String, u32)>,
}

/// A change a cancellation makes to shipment `shipment` (an index into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjustment {
    /// Ship `quantity` units of the line instead.
    SetQuantity {
        /// Index of the shipment.
        shipment: usize,
        /// The line.
        line_id: String,
        /// The new quantity.
        quantity: u32,
    },
    /// Cancel the shipment.
    Cancel {
        /// Index of the shipment.
        shipment: usize,
    },
}

/// What `cancellations` (all those recorded for the order) change in `shipments`.
///
/// A whole-order cancellation cancels every shipment that has not left. Line cancellations
/// are reconciled, not subtracted: each line may ship at most `ordered − cancelled` units
/// over all shipments, and any excess is taken from open shipments, latest allocation
/// first; an open shipment left with nothing is cancelled. Reconciling makes this idempotent
/// (applying it twice changes nothing the second time) and right whether or not inventory
/// already left the cancelled units out of its allocation. Dispatched shipments are never
/// touched.
pub fn reconcile_cancellations(
    ordered: &BTreeMap<String, u32>,
    cancellations: &[Cancellation],
    shipments: &[ShipmentContents],
) -> Vec<Adjustment> {
    let mut out = Vec::new();
    if cancellations
        .iter()
        .any(|c| c.scope == CancellationScope::Order)
    {
        for (i, shipment) in shipments.iter().enumerate() {
            if shipment.state.is_open() {
                out.push(Adjustment::Cancel { shipment: i });
            }
        }
        return out;
    }
    let mut cancelled: BTreeMap<&str, u64> = BTreeMap::new();
    for cancellation in cancellations {
        for (line_id, units) in &cancellation.lines {
            *cancelled.entry(line_id.as_str()).or_default() += u64::from(*units);
        }
    }
    let mut quantities: Vec<Vec<u32>> = shipments
        .iter()
        .map(|s| s.items.iter().map(|(_, q)| *q).collect())
        .collect();
    let mut open_latest_first: Vec<usize> = (0..shipments.len())
        .filter(|&i| shipments[i].state.is_open())
        .collect();
    open_latest_first.sort_by_key(|&i| std::cmp::Reverse(shipments[i].position));
    for (line_id, units) in cancelled {
        let Some(&ordered_units) = ordered.get(line_id) else {
            continue;
        };
        let target = u64::from(ordered_units).saturating_sub(units);
        let shipping: u64 = shipments
            .iter()
            .zip(&quantities)
            .filter(|(s, _)| s.state != ShipmentState::Cancelled)
            .flat_map(|(s, qs)| s.items.iter().zip(qs))
            .filter(|((line, _), _)| line == line_id)
            .map(|(_, q)| u64::from(*q))
            .sum();
        let mut excess = shipping.saturating_sub(target);
        for &i in &open_latest_first {
            if excess == 0 {
                break;
            }
            for (j, (line, _)) in shipments[i].items.iter().enumerate() {
                if line != line_id || quantities[i][j] == 0 {
                    continue;
                }
                let have = quantities[i][j];
                let take = u32::try_from(excess.min(u64::from(have))).unwrap_or(have);
                quantities[i][j] = have - take;
                excess -= u64::from(take);
                out.push(Adjustment::SetQuantity {
                    shipment: i,
                    line_id: line.clone(),
                    quantity: have - take,
                });
            }
        }
    }
    for &i in &open_latest_first {
        let had_units = shipments[i].items.iter().any(|(_, q)| *q > 0);
        if had_units && quantities[i].iter().all(|q| *q == 0) {
            out.push(Adjustment::Cancel { shipment: i });
        }
    }
    out.sort_by_key(|a| match a {
        Adjustment::SetQuantity { shipment, .. } => (*shipment, 0),
        Adjustment::Cancel { shipment } => (*shipment, 1),
    });
    out
}

/// Applies the cancellations received so far to freshly planned shipments.
pub fn apply_cancellations_to_plan(
    order: &OrderAccepted,
    cancellations: &[Cancellation],
    plan: &mut [PlannedShipment],
) {
    if cancellations.is_empty() {
        return;
    }
    let contents: Vec<ShipmentContents> = plan
        .iter()
        .map(|s| ShipmentContents {
            position: s.position,
            state: ShipmentState::Requested,
            items: s
                .items
                .iter()
                .map(|item| (item.line_id.clone(), item.quantity))
                .collect(),
        })
        .collect();
    for adjustment in reconcile_cancellations(&ordered_units(order), cancellations, &contents) {
        match adjustment {
            Adjustment::SetQuantity {
                shipment,
                line_id,
                quantity,
            } => {
                if let Some(item) = plan
                    .get_mut(shipment)
                    .and_then(|s| s.items.iter_mut().find(|item| item.line_id == line_id))
                {
                    item.quantity = quantity;
                }
            }
            Adjustment::Cancel { shipment } => {
                if let Some(s) = plan.get_mut(shipment) {
                    s.cancelled = true;
                }
            }
        }
    }
}

/// Units ordered per line.
pub fn ordered_units(order: &OrderAccepted) -> BTreeMap<String, u32> {
    order
        .lines
        .iter()
        .map(|line| (line.line_id.clone(), line.quantity.get()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Invoice requests
// ---------------------------------------------------------------------------------------

/// How much of an order line per-shipment invoices have covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineProgress {
    /// Units invoiced.
    pub quantity: u32,
    /// Line discount invoiced.
    pub discount: Decimal,
}

/// How much of an order per-shipment invoices have covered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvoiceProgress {
    /// Whether the shipping charge was invoiced (it goes on the first invoice).
    pub shipping_invoiced: bool,
    /// Order discount invoiced so far.
    pub discount_invoiced: Decimal,
    /// Per line.
    pub lines: BTreeMap<String, LineProgress>,
}

/// Why an invoice request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// The shipment ships a line the order does not have.
    #[error("the shipment has line `{0}`, which the order does not have")]
    UnknownLine(String),
    /// The shipment ships nothing.
    #[error("the shipment ships nothing to invoice")]
    Empty,
    /// An amount came out of range.
    #[error("amount out of range: {0}")]
    Amount(#[from] InvalidValue),
}

/// `invoice.requested` for the whole order (the store invoices on order).
pub fn invoice_for_order(order: &OrderAccepted, request_id: Uuid) -> InvoiceRequested {
    let lines = order
        .lines
        .iter()
        .map(|line| InvoiceLine {
            line_id: line.line_id.clone(),
            sku: line.sku.clone(),
            title: line.title.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            discount: line.discount,
            tax_category: line.tax_category,
        })
        .collect();
    invoice_request(
        order,
        request_id,
        InvoiceTiming::OnOrder,
        None,
        lines,
        order.shipping,
        order.discount,
    )
}

/// `invoice.requested` for one shipment's `items` (line, units), and the order's invoice
/// progress after it.
///
/// Each line carries its share of the line discount, proportional to the units and rounded
/// to the currency's minor unit; the invoice that covers a line's last units takes whatever
/// is left, so the shares add up to the line discount exactly. Shipping goes on the first
/// invoice of the order; the order discount too, as far as that invoice can carry it, the
/// rest on the next ones.
pub fn invoice_for_shipment(
    order: &OrderAccepted,
    progress: &InvoiceProgress,
    shipment_id: Uuid,
    items: &[(String, u32)],
    request_id: Uuid,
) -> Result<(InvoiceRequested, InvoiceProgress), InvoiceError> {
    let minor_units = order.currency.minor_units().map_or(8, u32::from);
    let mut next = progress.clone();
    let mut lines = Vec::with_capacity(items.len());
    let mut base = Decimal::ZERO;
    for (line_id, units) in items.iter().filter(|(_, units)| *units > 0) {
        let line = order
            .lines
            .iter()
            .find(|line| &line.line_id == line_id)
            .ok_or_else(|| InvoiceError::UnknownLine(line_id.clone()))?;
        let done = next.lines.entry(line_id.clone()).or_default();
        let share = discount_share(line, *done, *units, minor_units);
        let gross = line.unit_price.value() * Decimal::from(*units);
        done.quantity = done.quantity.saturating_add(*units);
        done.discount += share;
        base += gross - share;
        lines.push(InvoiceLine {
            line_id: line.line_id.clone(),
            sku: line.sku.clone(),
            title: line.title.clone(),
            quantity: orderly_contracts::types::Quantity::new(*units)?,
            unit_price: line.unit_price,
            discount: Amount::new(share)?,
            tax_category: line.tax_category,
        });
    }
    if lines.is_empty() {
        return Err(InvoiceError::Empty);
    }
    let shipping = if progress.shipping_invoiced {
        Decimal::ZERO
    } else {
        order.shipping.value()
    };
    next.shipping_invoiced = true;
    let discount_left = (order.discount.value() - progress.discount_invoiced).max(Decimal::ZERO);
    let room = (base + shipping)
        .round_dp_with_strategy(minor_units, RoundingStrategy::ToZero)
        .max(Decimal::ZERO);
    let discount = discount_left.min(room);
    next.discount_invoiced += discount;
    let request = invoice_request(
        order,
        request_id,
        InvoiceTiming::OnShipment,
        Some(shipment_id),
        lines,
        Amount::new(shipping)?,
        Amount::new(discount)?,
    );
    Ok((request, next))
}

/// The share of `line`'s discount that falls on `units` more units, given what was invoiced.
fn discount_share(
    line: &AcceptedLine,
    done: LineProgress,
    units: u32,
    minor_units: u32,
) -> Decimal {
    let total = line.discount.value();
    let left = (total - done.discount).max(Decimal::ZERO);
    let units_left = line.quantity.get().saturating_sub(done.quantity);
    let gross = line.unit_price.value() * Decimal::from(units);
    let share = if units >= units_left {
        left
    } else {
        (total * Decimal::from(units) / Decimal::from(line.quantity.get()))
            .round_dp_with_strategy(minor_units, RoundingStrategy::MidpointNearestEven)
            .min(left)
    };
    share.min(gross).max(Decimal::ZERO)
}

fn invoice_request(
    order: &OrderAccepted,
    request_id: Uuid,
    timing: InvoiceTiming,
    shipment_id: Option<Uuid>,
    lines: Vec<InvoiceLine>,
    shipping: Amount,
    discount: Amount,
) -> InvoiceRequested {
    InvoiceRequested {
        request_id,
        order_id: order.order_id,
        store_id: order.store_id.clone(),
        timing,
        shipment_id,
        external_order_id: order.external_order_id.clone(),
        placed_at: order.placed_at,
        currency: order.currency,
        prices_include_tax: order.prices_include_tax,
        buyer: order.customer.clone(),
        billing_address: order.billing_address.clone(),
        shipping_address: order.shipping_address.clone(),
        lines,
        shipping,
        discount,
    }
}

// ---------------------------------------------------------------------------------------
// Tracking links
// ---------------------------------------------------------------------------------------

/// Where a buyer can follow a parcel of a carrier we know; `None` for others.
pub fn tracking_url(carrier: &str, tracking_number: &str) -> Option<String> {
    let n = percent_encode(tracking_number);
    match carrier {
        "dhl" => Some(format!(
            "https://www.dhl.com/global-en/home/tracking.html?tracking-id={n}"
        )),
        "ups" => Some(format!("https://www.ups.com/track?tracknum={n}")),
        "dpd" => Some(format!("https://tracking.dpd.de/status/en_US/parcel/{n}")),
        "postnl" => Some(format!("https://postnl.nl/tracktrace/?B={n}")),
        "gls" => Some(format!("https://gls-group.com/track?match={n}")),
        _ => None,
    }
}

/// Percent-encodes everything but unreserved URL characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
