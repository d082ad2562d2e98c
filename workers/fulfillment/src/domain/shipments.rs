//! How a reservation's warehouse allocations become shipments: one per allocation, its
//! items joined with the order's lines, refused when the allocation does not fit the order.

use std::collections::BTreeMap;

use orderly_contracts::messages::{AcceptedLine, Allocation, OrderAccepted};
use orderly_contracts::types::{Gtin, Sku, WarehouseId};
use uuid::Uuid;

/// An item of a shipment to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedItem {
    /// The order line.
    pub(crate) line_id: String,
    /// The SKU inventory reserved.
    pub(crate) sku: Sku,
    /// The line's GTIN, if the order had one.
    pub(crate) gtin: Option<Gtin>,
    /// Product name from the order.
    pub(crate) title: String,
    /// Units inventory allocated to this warehouse.
    pub(crate) allocated: u32,
    /// Units to ship (allocated minus cancelled).
    pub(crate) quantity: u32,
}

/// A shipment to be made from one warehouse allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedShipment {
    /// The warehouse.
    pub(crate) warehouse_id: WarehouseId,
    /// Position of the allocation (warehouse preference order).
    pub(crate) position: u32,
    /// What it ships.
    pub(crate) items: Vec<PlannedItem>,
    /// Whether a cancellation received earlier leaves nothing to ship.
    pub(crate) cancelled: bool,
}

/// Why an allocation cannot be turned into shipments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlanError {
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
pub(crate) fn plan_shipments(
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
