//! What cancellations do to shipments: a whole-order cancellation cancels what has not
//! left; line cancellations are reconciled (not subtracted) against every shipment, so
//! applying them again changes nothing. Also the cancellations received before the
//! shipments existed, applied to the plan.

use std::collections::BTreeMap;

use orderly_contracts::messages::{CancellationScope, OrderAccepted};

use super::shipments::PlannedShipment;
use super::state::ShipmentState;

/// A cancellation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cancellation {
    /// Whole order or some lines.
    pub(crate) scope: CancellationScope,
    /// Units cancelled per line.
    pub(crate) lines: Vec<(String, u32)>,
}

/// A shipment as a cancellation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShipmentContents {
    /// Allocation position: shipments later in the preference order give up units first.
    pub(crate) position: u32,
    /// Its state.
    pub(crate) state: ShipmentState,
    /// Units per line still to ship.
    pub(crate) items: Vec<(String, u32)>,
}

/// A change a cancellation makes to shipment `shipment` (an index into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Adjustment {
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
pub(crate) fn reconcile_cancellations(
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
pub(crate) fn apply_cancellations_to_plan(
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
pub(crate) fn ordered_units(order: &OrderAccepted) -> BTreeMap<String, u32> {
    order
        .lines
        .iter()
        .map(|line| (line.line_id.clone(), line.quantity.get()))
        .collect()
}
