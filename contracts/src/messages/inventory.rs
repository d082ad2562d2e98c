//! Stock: counts pushed in, reservations for orders, and levels published for listings.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{Address, counts_from_one, unique_lines};
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{CountryCode, Gtin, Quantity, Sku, StoreId, WarehouseId};
use crate::validate::{At, Validate, count, ensure, first_duplicate, text};

/// Most warehouses one message may list.
const MAX_WAREHOUSES: usize = 100;
/// Most lines one message may list.
const MAX_LINES: usize = 1000;

string_enum! {
    /// Why stock changed outside an order.
    pub enum AdjustmentReason {
        /// A physical count (cycle count, stocktake) or a marketplace's stock sync.
        StockCount = "stock_count",
        /// Goods received from a supplier.
        GoodsReceived = "goods_received",
        /// A customer return put back into stock.
        CustomerReturn = "customer_return",
        /// Damaged goods written off.
        Damaged = "damaged",
        /// Goods that cannot be found.
        Lost = "lost",
        /// Fixing an earlier mistake.
        Correction = "correction",
    }
}

/// `inventory.adjusted`: stock of one SKU in one warehouse changed outside an order, as an
/// absolute count or a relative change.
///
/// Exactly one of `set_on_hand` and `delta`. Counts can arrive late and out of order: the
/// inventory worker applies an absolute count only if its `as_of` is newer than the last
/// count applied for that SKU and warehouse, and applies each delta once (by `source` and
/// `reference`). Reserved units stay reserved; if a count drops below them, the shortfall
/// shows up as zero available, never as a negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryAdjusted {
    /// Where the stock is.
    pub warehouse_id: WarehouseId,
    /// Which product.
    pub sku: Sku,
    /// Units physically on hand, including units reserved for orders but not yet shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_on_hand: Option<u32>,
    /// Units added (positive) or removed (negative); never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    /// Why.
    pub reason: AdjustmentReason,
    /// The system that reports it (`wms`, `amazon.de`, `pim`, `cli`).
    #[schemars(length(max = 64))]
    pub source: String,
    /// The source's reference for this change (receipt number, count id); with `source`, it
    /// identifies the adjustment.
    #[schemars(length(max = 128))]
    pub reference: String,
    /// When the count was taken or the change happened at the source.
    pub as_of: DateTime<Utc>,
}

impl Message for InventoryAdjusted {
    const TYPE: &'static str = "inventory.adjusted";
    const VERSION: u16 = 1;
}

impl Validate for InventoryAdjusted {
    fn validate(&self) -> Result<(), ContractError> {
        match (self.set_on_hand, self.delta) {
            (Some(_), None) => {}
            (None, Some(delta)) => {
                ensure(delta != 0, || "a delta of 0 changes nothing".to_owned())
                    .at("payload.delta")?;
                ensure(delta.unsigned_abs() <= u64::from(u32::MAX), || {
                    format!("{delta} is beyond any stock level (at most ±{})", u32::MAX)
                })
                .at("payload.delta")?;
            }
            (None, None) => {
                return Err(ContractError::new(
                    "payload.set_on_hand",
                    "give either `set_on_hand` (a count) or `delta` (a change)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ContractError::new(
                    "payload.delta",
                    "give either `set_on_hand` or `delta`, not both",
                ));
            }
        }
        text(&self.source, 64).at("payload.source")?;
        text(&self.reference, 128).at("payload.reference")
    }
}

/// Units of one order line taken from one warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocatedLine {
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// Its SKU.
    pub sku: Sku,
    /// Units reserved in this warehouse (a line split across warehouses appears in each).
    pub quantity: Quantity,
}

/// What one warehouse ships for the order; fulfillment makes one shipment of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// The lines (or parts of lines) it ships.
    pub lines: Vec<AllocatedLine>,
}

/// `warehouse.upserted`: a warehouse (own or a 3PL's) declared or changed by a setup manager:
/// where it is and how much it is preferred. Inventory allocates an order to the most
/// preferred active warehouse that can serve it whole, else splits in preference order; a
/// closed warehouse (`active: false`) is not allocated from (its stock is still counted and
/// its shipments still ship). A warehouse seen in stock counts but never declared is used
/// with priority 100.
///
/// Carries the whole warehouse, not a diff; `revision` increases with every change and the
/// highest wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseUpserted {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Version of this warehouse's record, from 1, increasing with every change.
    pub revision: u64,
    /// The warehouse's name, as operators see it.
    #[schemars(length(max = 200))]
    pub name: String,
    /// Where goods leave from (the dispatch country matters for VAT).
    pub address: Address,
    /// Preference: lower is preferred (0 to 10,000).
    #[schemars(range(max = 10000))]
    pub priority: u16,
    /// Whether orders are allocated to it.
    pub active: bool,
}

impl WarehouseUpserted {
    /// The country goods leave from.
    pub fn country(&self) -> &CountryCode {
        &self.address.country
    }
}

impl Message for WarehouseUpserted {
    const TYPE: &'static str = "warehouse.upserted";
    const VERSION: u16 = 1;
}

impl Validate for WarehouseUpserted {
    fn validate(&self) -> Result<(), ContractError> {
        counts_from_one(self.revision, "payload.revision")?;
        text(&self.name, 200).at("payload.name")?;
        self.address.check("payload.address")?;
        ensure(self.priority <= 10_000, || {
            format!("{} is above the highest priority, 10000", self.priority)
        })
        .at("payload.priority")
    }
}

/// `stock.reserved`: every line of the order is reserved, all or nothing, split across
/// warehouses in preference order where one cannot serve it all. No allocation at all: the
/// order has nothing to ship (every line is a service, set up rather than shipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReserved {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Per warehouse, what it ships; each warehouse once. Empty when nothing is shipped.
    pub allocations: Vec<Allocation>,
}

impl Message for StockReserved {
    const TYPE: &'static str = "stock.reserved";
    const VERSION: u16 = 1;
}

impl Validate for StockReserved {
    fn validate(&self) -> Result<(), ContractError> {
        count(&self.allocations, 0, MAX_WAREHOUSES).at("payload.allocations")?;
        if let Some(i) = first_duplicate(&self.allocations, |a| a.warehouse_id.clone()) {
            return Err(ContractError::new(
                format!("payload.allocations[{i}].warehouse_id"),
                format!(
                    "warehouse {} appears more than once",
                    self.allocations[i].warehouse_id
                ),
            ));
        }
        for (i, allocation) in self.allocations.iter().enumerate() {
            let at = format!("payload.allocations[{i}].lines");
            count(&allocation.lines, 1, MAX_LINES).at(&at)?;
            for (j, line) in allocation.lines.iter().enumerate() {
                text(&line.line_id, 64).at_with(|| format!("{at}[{j}].line_id"))?;
            }
            unique_lines(&allocation.lines, |l| l.line_id.as_str(), &at)?;
        }
        Ok(())
    }
}

/// A line that cannot be served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shortage {
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// Its SKU.
    pub sku: Sku,
    /// Units the line needs.
    pub requested: Quantity,
    /// Units available across all warehouses (less than requested).
    pub available: u32,
}

/// `stock.unavailable`: the order cannot be reserved in full; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockUnavailable {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// The lines short of stock.
    pub shortages: Vec<Shortage>,
    /// Whether the order waits for stock (retried oldest first when `inventory.adjusted`
    /// brings some) rather than being given up.
    pub backordered: bool,
}

impl Message for StockUnavailable {
    const TYPE: &'static str = "stock.unavailable";
    const VERSION: u16 = 1;
}

impl Validate for StockUnavailable {
    fn validate(&self) -> Result<(), ContractError> {
        count(&self.shortages, 1, MAX_LINES).at("payload.shortages")?;
        for (i, s) in self.shortages.iter().enumerate() {
            text(&s.line_id, 64).at_with(|| format!("payload.shortages[{i}].line_id"))?;
            ensure(s.available < s.requested.get(), || {
                format!(
                    "{} available covers the {} requested; that is not a shortage",
                    s.available, s.requested
                )
            })
            .at_with(|| format!("payload.shortages[{i}].available"))?;
        }
        unique_lines(&self.shortages, |s| s.line_id.as_str(), "payload.shortages")
    }
}

string_enum! {
    /// Why a reservation was given back.
    pub enum ReleaseReason {
        /// The order was cancelled.
        OrderCancelled = "order_cancelled",
        /// Some lines were cancelled.
        LinesCancelled = "lines_cancelled",
    }
}

/// Units given back to stock from one warehouse for one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleasedLine {
    /// The warehouse the units were reserved in.
    pub warehouse_id: WarehouseId,
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// Its SKU.
    pub sku: Sku,
    /// Units released.
    pub quantity: Quantity,
}

/// `stock.released`: reserved units went back to available stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReleased {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Why.
    pub reason: ReleaseReason,
    /// What was released, per warehouse and line.
    pub lines: Vec<ReleasedLine>,
}

impl Message for StockReleased {
    const TYPE: &'static str = "stock.released";
    const VERSION: u16 = 1;
}

impl Validate for StockReleased {
    fn validate(&self) -> Result<(), ContractError> {
        count(&self.lines, 1, MAX_LINES).at("payload.lines")?;
        for (i, line) in self.lines.iter().enumerate() {
            text(&line.line_id, 64).at_with(|| format!("payload.lines[{i}].line_id"))?;
        }
        if let Some(i) =
            first_duplicate(&self.lines, |l| (l.warehouse_id.clone(), l.line_id.clone()))
        {
            return Err(ContractError::new(
                format!("payload.lines[{i}]"),
                "a line appears twice for the same warehouse",
            ));
        }
        Ok(())
    }
}

/// Stock of the SKU in one warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseLevel {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Units physically there.
    pub on_hand: u32,
    /// Units reserved for orders.
    pub reserved: u32,
    /// Units that can be sold: on hand minus reserved, never below 0.
    pub available: u32,
}

/// `stock.level_changed`: the stock of a SKU changed, any figure it carries (on hand,
/// reserved or available: a dispatch lowers on hand and reserved and leaves available as
/// it was). For marketplace connectors and other listing consumers. One message may cover
/// several changes made together (a batch of reservations): it carries the levels after
/// all of them. Products whose stock is not tracked have no levels and no such message.
///
/// `sequence` increases with every level published for this SKU: keep the highest seen and
/// drop anything older.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockLevelChanged {
    /// The product.
    pub sku: Sku,
    /// Its GTINs, for listings keyed by GTIN.
    pub gtins: Vec<Gtin>,
    /// Units on hand, all warehouses.
    pub on_hand: u64,
    /// Units reserved, all warehouses.
    pub reserved: u64,
    /// Units that can be sold, all warehouses: the sum of the warehouses' `available`.
    pub available: u64,
    /// Per warehouse.
    pub warehouses: Vec<WarehouseLevel>,
    /// Per-SKU change counter, from 1.
    pub sequence: u64,
    /// When the levels were computed.
    pub as_of: DateTime<Utc>,
}

impl Message for StockLevelChanged {
    const TYPE: &'static str = "stock.level_changed";
    const VERSION: u16 = 1;
}

impl Validate for StockLevelChanged {
    fn validate(&self) -> Result<(), ContractError> {
        counts_from_one(self.sequence, "payload.sequence")?;
        count(&self.warehouses, 1, MAX_WAREHOUSES).at("payload.warehouses")?;
        if let Some(i) = first_duplicate(&self.warehouses, |w| w.warehouse_id.clone()) {
            return Err(ContractError::new(
                format!("payload.warehouses[{i}].warehouse_id"),
                format!(
                    "warehouse {} appears more than once",
                    self.warehouses[i].warehouse_id
                ),
            ));
        }
        for (i, w) in self.warehouses.iter().enumerate() {
            let expected = w.on_hand.saturating_sub(w.reserved);
            ensure(w.available == expected, || {
                format!("{} is not on_hand − reserved = {expected}", w.available)
            })
            .at_with(|| format!("payload.warehouses[{i}].available"))?;
        }
        let total = |f: fn(&WarehouseLevel) -> u32| {
            self.warehouses.iter().map(|w| u64::from(f(w))).sum::<u64>()
        };
        for (name, stated, sum) in [
            ("on_hand", self.on_hand, total(|w| w.on_hand)),
            ("reserved", self.reserved, total(|w| w.reserved)),
            ("available", self.available, total(|w| w.available)),
        ] {
            ensure(stated == sum, || {
                format!("{stated} is not the warehouses' sum {sum}")
            })
            .at_with(|| format!("payload.{name}"))?;
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
            InventoryAdjusted,
            example: golden::inventory_adjusted,
            from: "WMS, marketplace connectors, operators",
            says: "a stock count (`set_on_hand`) or change (`delta`) for one SKU in one warehouse",
            to: [INVENTORY],
            only_from_outside,
        ),
        entry!(
            StockReserved,
            example: golden::stock_reserved,
            from: "inventory",
            says: "every line reserved, with the per-warehouse allocation",
            to: [ORDERS, FULFILLMENT],
        ),
        entry!(
            StockUnavailable,
            example: golden::stock_unavailable,
            from: "inventory",
            says: "not enough stock; the shortages; nothing reserved",
            to: [ORDERS, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            StockReleased,
            example: golden::stock_released,
            from: "inventory",
            says: "reserved units went back to stock",
            to: [ORDERS],
        ),
        entry!(
            StockLevelChanged,
            example: golden::stock_level_changed,
            from: "inventory",
            says: "a SKU's stock changed: on hand, reserved or available (for listings); per-SKU `sequence`",
            to: [OUT_MARKETPLACE],
        ),
        entry!(
            WarehouseUpserted,
            example: golden::warehouse_upserted,
            from: "admin API",
            says: "a warehouse: address (dispatch country), allocation priority, open or closed",
            to: [INVENTORY, INVOICING],
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn inventory_adjusted() -> Value {
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
    pub(super) fn stock_reserved() -> Value {
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

    pub(super) fn stock_unavailable() -> Value {
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

    pub(super) fn stock_released() -> Value {
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

    pub(super) fn stock_level_changed() -> Value {
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

    pub(super) fn warehouse_upserted() -> Value {
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
}
