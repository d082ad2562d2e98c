//! The pure core of inventory: allocation, backorder fairness, adjustments, dispatches,
//! releases and the level message.
//!
//! Nothing here does I/O. The handlers lock and load the rows a decision needs, call one of
//! these functions with plain values, and write back what it decided; so every rule that
//! decides who gets stock is unit-tested below with plain numbers, and the concurrency story
//! (locks, ordering) stays in one place, the handlers.
//!
//! Conventions: a warehouse with a *lower* `priority` number is preferred (ties broken by
//! warehouse id); quantities are `u64` inside, so sums of `u32` quantities never overflow.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    AllocatedLine, Allocation, Shortage, StockLevelChanged, WarehouseLevel,
};
use orderly_contracts::types::{Gtin, Quantity, Sku, WarehouseId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most units a stock row can hold (the contracts count stock in `u32`).
pub(crate) const MAX_ON_HAND: u64 = u32::MAX as u64;

/// One order line to reserve. Also the stored form of a backordered order's lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRequest {
    /// The order line.
    pub line_id: String,
    /// Its SKU.
    pub sku: Sku,
    /// Units it needs.
    pub quantity: Quantity,
}

/// Units of one SKU a warehouse can still promise (on hand minus reserved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockSlot {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Its preference: lower is preferred.
    pub priority: i32,
    /// The SKU.
    pub sku: Sku,
    /// Units available.
    pub available: u64,
}

/// Units of one line taken from one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pick {
    /// The order line.
    pub line_id: String,
    /// Its SKU.
    pub sku: Sku,
    /// Units, at least 1.
    pub quantity: u32,
    /// Whether the units are reserved out of stock: false for a product whose stock is not
    /// tracked (a gift card, a download, a service), which ships with the order but is
    /// never counted, reserved or deducted.
    pub reserved: bool,
}

/// What one warehouse reserves for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WarehousePicks {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Lines (or parts of lines) it serves, each line at most once.
    pub picks: Vec<Pick>,
}

/// A line that cannot be served in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineShortage {
    /// The order line.
    pub line_id: String,
    /// Its SKU.
    pub sku: Sku,
    /// Units it needs.
    pub requested: Quantity,
    /// Units left for it in all warehouses together, after the order's earlier lines of
    /// the same SKU took theirs (always less than `requested`).
    pub available: u32,
}

/// The outcome of allocating an order: all of it, or nothing and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allocated {
    /// Every line is served; one entry per warehouse, most preferred first.
    Reserved(Vec<WarehousePicks>),
    /// Some line cannot be served in full; nothing is reserved.
    Short(Vec<LineShortage>),
}

/// Available stock of some SKUs across warehouses: what the allocator decides on.
///
/// Built from the rows the handler has locked, so a decision made on it holds until commit.
#[derive(Debug, Clone, Default)]
pub(crate) struct StockView {
    /// Warehouses, most preferred first.
    warehouses: Vec<WarehouseId>,
    /// Available units by SKU, then warehouse.
    available: BTreeMap<Sku, BTreeMap<WarehouseId, u64>>,
    /// Products whose stock is not tracked: always available, never reserved.
    untracked: BTreeSet<Sku>,
    /// Where an order of untracked products only ships from: the most preferred warehouse
    /// inventory knows.
    default_warehouse: Option<WarehouseId>,
}

impl StockView {
    /// A view of `slots`. A warehouse listed with several priorities gets the best one.
    pub(crate) fn new(slots: impl IntoIterator<Item = StockSlot>) -> Self {
        let mut priority: BTreeMap<WarehouseId, i32> = BTreeMap::new();
        let mut available: BTreeMap<Sku, BTreeMap<WarehouseId, u64>> = BTreeMap::new();
        for slot in slots {
            priority
                .entry(slot.warehouse_id.clone())
                .and_modify(|p| *p = (*p).min(slot.priority))
                .or_insert(slot.priority);
            *available
                .entry(slot.sku)
                .or_default()
                .entry(slot.warehouse_id)
                .or_default() += slot.available;
        }
        let mut warehouses: Vec<(i32, WarehouseId)> =
            priority.into_iter().map(|(w, p)| (p, w)).collect();
        warehouses.sort();
        Self {
            warehouses: warehouses.into_iter().map(|(_, w)| w).collect(),
            available,
            untracked: BTreeSet::new(),
            default_warehouse: None,
        }
    }

    /// The same view, knowing that `untracked` products are not counted: stock rows they
    /// may have (added by hand) are ignored, their lines are always available and ride with
    /// the order's first warehouse, or with `default_warehouse` when the order has nothing
    /// else.
    pub(crate) fn with_untracked(
        mut self,
        untracked: BTreeSet<Sku>,
        default_warehouse: Option<WarehouseId>,
    ) -> Self {
        for sku in &untracked {
            self.available.remove(sku);
        }
        self.untracked = untracked;
        self.default_warehouse = default_warehouse;
        self
    }

    /// Whether `sku`'s stock is counted.
    pub(crate) fn tracks(&self, sku: &Sku) -> bool {
        !self.untracked.contains(sku)
    }

    /// Units of `sku` available in `warehouse`.
    pub(crate) fn available(&self, warehouse: &WarehouseId, sku: &Sku) -> u64 {
        self.available
            .get(sku)
            .and_then(|by_warehouse| by_warehouse.get(warehouse))
            .copied()
            .unwrap_or(0)
    }

    /// Units of `sku` available in all warehouses together.
    pub(crate) fn total(&self, sku: &Sku) -> u64 {
        self.available
            .get(sku)
            .map_or(0, |by_warehouse| by_warehouse.values().sum())
    }

    /// Allocates `lines`, all or nothing.
    ///
    /// 1. If any line cannot be served by all warehouses together (lines of the same SKU
    ///    taking their units in order), nothing is reserved: [`Allocated::Short`] lists every
    ///    line left short.
    /// 2. Else, if one warehouse can serve the whole order, the most preferred such warehouse
    ///    serves it (one parcel).
    /// 3. Else lines are split greedily, line by line: a line goes whole to a warehouse the
    ///    order already uses if one can serve it, else whole to the most preferred warehouse
    ///    that can, else it is taken in parts, from the used warehouses first, then the
    ///    others, in preference order. This keeps the number of warehouses (parcels) low
    ///    without searching every combination.
    ///
    /// Lines of untracked products take no stock: they join the first warehouse's picks
    /// unreserved, or the default warehouse's when the order has no tracked line (short,
    /// with 0 available, only if inventory knows no warehouse at all). No lines at all (an
    /// order of services, which are set up, not shipped): reserved, in no warehouse.
    pub(crate) fn allocate(&self, lines: &[LineRequest]) -> Allocated {
        if lines.is_empty() {
            // Nothing to ship (every line of the order is a service): no warehouse.
            return Allocated::Reserved(Vec::new());
        }
        let (tracked, free): (Vec<LineRequest>, Vec<LineRequest>) =
            lines.iter().cloned().partition(|l| self.tracks(&l.sku));
        let unreserved = |l: &LineRequest| Pick {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity.get(),
            reserved: false,
        };
        if tracked.is_empty() {
            return match &self.default_warehouse {
                Some(warehouse) => Allocated::Reserved(vec![WarehousePicks {
                    warehouse_id: warehouse.clone(),
                    picks: free.iter().map(unreserved).collect(),
                }]),
                None => Allocated::Short(
                    free.iter()
                        .map(|l| LineShortage {
                            line_id: l.line_id.clone(),
                            sku: l.sku.clone(),
                            requested: l.quantity,
                            available: 0,
                        })
                        .collect(),
                ),
            };
        }
        match self.allocate_tracked(&tracked) {
            Allocated::Reserved(mut picks) => {
                if let Some(first) = picks.first_mut() {
                    first.picks.extend(free.iter().map(unreserved));
                }
                Allocated::Reserved(picks)
            }
            short => short,
        }
    }

    /// [`StockView::allocate`] for lines whose stock is counted.
    fn allocate_tracked(&self, lines: &[LineRequest]) -> Allocated {
        let shortages = self.shortages(lines);
        if !shortages.is_empty() {
            return Allocated::Short(shortages);
        }

        let mut demand: BTreeMap<&Sku, u64> = BTreeMap::new();
        for line in lines {
            *demand.entry(&line.sku).or_default() += u64::from(line.quantity.get());
        }
        let whole = self.warehouses.iter().find(|w| {
            demand
                .iter()
                .all(|(sku, units)| self.available(w, sku) >= *units)
        });
        if let Some(warehouse) = whole {
            let picks = lines
                .iter()
                .map(|line| Pick {
                    line_id: line.line_id.clone(),
                    sku: line.sku.clone(),
                    quantity: line.quantity.get(),
                    reserved: true,
                })
                .collect();
            return Allocated::Reserved(vec![WarehousePicks {
                warehouse_id: warehouse.clone(),
                picks,
            }]);
        }

        self.split(lines)
    }

    /// Every line that cannot be served in full by all warehouses together.
    fn shortages(&self, lines: &[LineRequest]) -> Vec<LineShortage> {
        let mut left: BTreeMap<&Sku, u64> = BTreeMap::new();
        let mut shortages = Vec::new();
        for line in lines {
            let left = left
                .entry(&line.sku)
                .or_insert_with(|| self.total(&line.sku));
            let wanted = u64::from(line.quantity.get());
            if *left < wanted {
                shortages.push(LineShortage {
                    line_id: line.line_id.clone(),
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    // Less than `wanted`, a u32, so it fits.
                    available: u32::try_from(*left).unwrap_or(u32::MAX),
                });
                *left = 0;
            } else {
                *left -= wanted;
            }
        }
        shortages
    }

    /// Step 3 of [`StockView::allocate`]; called only when the lines fit in total.
    fn split(&self, lines: &[LineRequest]) -> Allocated {
        let n = self.warehouses.len();
        let mut left: BTreeMap<(usize, &Sku), u64> = BTreeMap::new();
        let mut used = vec![false; n];
        let mut picks: Vec<Vec<Pick>> = vec![Vec::new(); n];
        for line in lines {
            let mut need = u64::from(line.quantity.get());
            let order: Vec<usize> = (0..n)
                .filter(|&i| used[i])
                .chain((0..n).filter(|&i| !used[i]))
                .collect();
            let whole = order
                .iter()
                .copied()
                .find(|&i| self.left(&mut left, i, &line.sku) >= need);
            let sources: Vec<usize> = match whole {
                Some(i) => vec![i],
                None => order,
            };
            for i in sources {
                if need == 0 {
                    break;
                }
                let here = self.left(&mut left, i, &line.sku);
                let take = here.min(need);
                if take == 0 {
                    continue;
                }
                left.insert((i, &line.sku), here - take);
                need -= take;
                used[i] = true;
                picks[i].push(Pick {
                    line_id: line.line_id.clone(),
                    sku: line.sku.clone(),
                    // At most the line's quantity, a u32.
                    quantity: u32::try_from(take).unwrap_or(u32::MAX),
                    reserved: true,
                });
            }
        }
        Allocated::Reserved(
            self.warehouses
                .iter()
                .zip(picks)
                .filter(|(_, picks)| !picks.is_empty())
                .map(|(w, picks)| WarehousePicks {
                    warehouse_id: w.clone(),
                    picks,
                })
                .collect(),
        )
    }

    /// What is left of `sku` in warehouse number `i` during a split.
    fn left<'s>(&self, left: &mut BTreeMap<(usize, &'s Sku), u64>, i: usize, sku: &'s Sku) -> u64 {
        *left
            .entry((i, sku))
            .or_insert_with(|| self.available(&self.warehouses[i], sku))
    }

    /// Takes what `allocation` reserved out of the view (for deciding several orders in a
    /// row, oldest first).
    pub(crate) fn take(&mut self, allocation: &[WarehousePicks]) {
        for warehouse in allocation {
            for pick in warehouse.picks.iter().filter(|p| p.reserved) {
                if let Some(units) = self
                    .available
                    .get_mut(&pick.sku)
                    .and_then(|by_warehouse| by_warehouse.get_mut(&warehouse.warehouse_id))
                {
                    *units = units.saturating_sub(u64::from(pick.quantity));
                }
            }
        }
    }
}

/// A backordered order waiting for stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backorder {
    /// The order.
    pub order_id: Uuid,
    /// What it needs.
    pub lines: Vec<LineRequest>,
}

/// What to do with one backorder when stock arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackorderDecision {
    /// Reserve it now, like this.
    Serve(Vec<WarehousePicks>),
    /// It still cannot be served in full.
    StillShort(Vec<LineShortage>),
    /// It could perhaps be served, but an older backorder is still short of `sku`, which
    /// this one needs too: the older one gets that stock first.
    Behind {
        /// The SKU both wait for.
        sku: Sku,
        /// The older backorder.
        older: Uuid,
    },
}

/// Decides which of `oldest_first` to serve from `view`, taking what each served one
/// reserves out of the view.
///
/// Fairness: stock goes to the oldest order first. A backorder that still cannot be served
/// stays backordered and does not block younger ones in general (one order short of a rare
/// SKU must not hold up everybody); but a younger order is served only if it needs none of
/// the SKUs an older, still-backordered order is short of. So a trickle of stock for a SKU
/// always goes to the oldest order waiting for it, never to a small younger order that
/// happens to fit.
pub(crate) fn plan_backorders(
    view: &mut StockView,
    oldest_first: &[Backorder],
) -> Vec<(Uuid, BackorderDecision)> {
    let mut blocked: BTreeMap<Sku, Uuid> = BTreeMap::new();
    let mut decisions = Vec::with_capacity(oldest_first.len());
    for backorder in oldest_first {
        let blocker = backorder
            .lines
            .iter()
            .find_map(|line| blocked.get(&line.sku).map(|older| (&line.sku, *older)));
        let decision = match blocker {
            Some((sku, older)) => BackorderDecision::Behind {
                sku: sku.clone(),
                older,
            },
            None => match view.allocate(&backorder.lines) {
                Allocated::Reserved(picks) => {
                    view.take(&picks);
                    BackorderDecision::Serve(picks)
                }
                Allocated::Short(shortages) => {
                    for shortage in &shortages {
                        blocked
                            .entry(shortage.sku.clone())
                            .or_insert(backorder.order_id);
                    }
                    BackorderDecision::StillShort(shortages)
                }
            },
        };
        decisions.push((backorder.order_id, decision));
    }
    decisions
}

/// A stock row's numbers, as an adjustment or a dispatch sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Units on hand.
    pub on_hand: u64,
    /// Units reserved for orders.
    pub reserved: u64,
    /// `as_of` of the newest absolute count applied to this row.
    pub last_count_as_of: Option<DateTime<Utc>>,
}

/// What an `inventory.adjusted` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdjustmentChange {
    /// An absolute count, taken at `as_of`.
    Count {
        /// Units counted.
        on_hand: u32,
        /// When.
        as_of: DateTime<Utc>,
    },
    /// A relative change.
    Delta(i64),
}

/// What to do with an adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdjustmentOutcome {
    /// Change on hand by `on_hand_delta` (may be 0: a count that confirms the stock); a
    /// count also becomes the row's newest count.
    Apply {
        /// The change of on hand.
        on_hand_delta: i64,
        /// Set for counts: the new `last_count_as_of`.
        count_as_of: Option<DateTime<Utc>>,
    },
    /// A count older than (or as old as) the newest applied: ignored, it would undo newer
    /// information.
    Stale {
        /// The newest count applied.
        newest: DateTime<Utc>,
    },
}

/// Why an adjustment is refused (bad data from the source, never retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AdjustmentRefused {
    /// The result would be below zero.
    #[error("it would leave {on_hand} units on hand, below zero")]
    Negative {
        /// What on hand would become.
        on_hand: i128,
    },
    /// The result would be below what is reserved: orders already promised those units.
    #[error(
        "it would leave {on_hand} units on hand, fewer than the {reserved} reserved for orders; \
         cancel or reallocate those orders first"
    )]
    BelowReserved {
        /// What on hand would become.
        on_hand: u64,
        /// Units reserved.
        reserved: u64,
    },
    /// The result would not fit the contracts' stock counts.
    #[error(
        "it would leave {on_hand} units on hand, more than the {MAX_ON_HAND} a stock level can hold"
    )]
    TooLarge {
        /// What on hand would become.
        on_hand: i128,
    },
}

/// Decides an adjustment of a stock row at `level`.
///
/// Counts are applied only if newer than the newest count applied (counts arrive late and
/// out of order); deltas always apply (the caller makes each apply once, by source and
/// reference). Either way the result must stay within `reserved..=MAX_ON_HAND`: stock
/// promised to orders is never taken back by an adjustment.
pub(crate) fn plan_adjustment(
    level: Level,
    change: AdjustmentChange,
) -> Result<AdjustmentOutcome, AdjustmentRefused> {
    let (target, count_as_of) = match change {
        AdjustmentChange::Count { on_hand, as_of } => {
            if let Some(newest) = level.last_count_as_of
                && as_of <= newest
            {
                return Ok(AdjustmentOutcome::Stale { newest });
            }
            (i128::from(on_hand), Some(as_of))
        }
        AdjustmentChange::Delta(delta) => (i128::from(level.on_hand) + i128::from(delta), None),
    };
    if target < 0 {
        return Err(AdjustmentRefused::Negative { on_hand: target });
    }
    if target > i128::from(MAX_ON_HAND) {
        return Err(AdjustmentRefused::TooLarge { on_hand: target });
    }
    // In range 0..=u32::MAX, so both conversions hold.
    let target_u64 = u64::try_from(target).unwrap_or(0);
    if target_u64 < level.reserved {
        return Err(AdjustmentRefused::BelowReserved {
            on_hand: target_u64,
            reserved: level.reserved,
        });
    }
    let on_hand_delta = i64::try_from(target - i128::from(level.on_hand)).unwrap_or(0);
    Ok(AdjustmentOutcome::Apply {
        on_hand_delta,
        count_as_of,
    })
}

/// How a dispatched item leaves stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DispatchPlan {
    /// Units taken out of the line's open reservation (on hand and reserved both drop).
    pub from_reservation: u64,
    /// Units beyond the open reservation, taken from unreserved stock (on hand drops): the
    /// warehouse shipped more than was reserved, e.g. after a late cancellation.
    pub from_free_stock: u64,
}

impl DispatchPlan {
    /// The change of on hand.
    pub(crate) fn on_hand_delta(self) -> i64 {
        -i64::try_from(self.from_reservation + self.from_free_stock).unwrap_or(i64::MAX)
    }

    /// The change of reserved.
    pub(crate) fn reserved_delta(self) -> i64 {
        -i64::try_from(self.from_reservation).unwrap_or(i64::MAX)
    }
}

/// Why a dispatch cannot be booked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{quantity} units shipped but only {open} were reserved for the line and {free} more are \
     unreserved; book the missing stock with an adjustment, then replay"
)]
pub(crate) struct DispatchRefused {
    /// Units shipped.
    pub quantity: u32,
    /// The line's open reservation in that warehouse.
    pub open: u64,
    /// Unreserved units in that warehouse.
    pub free: u64,
}

/// Decides how `quantity` shipped units of a line leave a stock row at `level`, given the
/// line's `open` reservation there.
pub(crate) fn plan_dispatch(
    quantity: u32,
    open: u64,
    level: Level,
) -> Result<DispatchPlan, DispatchRefused> {
    let quantity_u64 = u64::from(quantity);
    let from_reservation = quantity_u64.min(open).min(level.reserved);
    let excess = quantity_u64 - from_reservation;
    let free = level.on_hand.saturating_sub(level.reserved);
    if excess > free {
        return Err(DispatchRefused {
            quantity,
            open,
            free,
        });
    }
    Ok(DispatchPlan {
        from_reservation,
        from_free_stock: excess,
    })
}

/// Splits a release of `quantity` units (everything open if `None`) over a line's open
/// reservations, in the order given. Returns the units to release per warehouse, leaving out
/// zeros; releases at most what is open.
pub(crate) fn plan_release(
    open: &[(WarehouseId, u64)],
    quantity: Option<u32>,
) -> Vec<(WarehouseId, u64)> {
    let mut left = quantity.map_or(u64::MAX, u64::from);
    let mut out = Vec::new();
    for (warehouse, units) in open {
        if left == 0 {
            break;
        }
        let take = (*units).min(left);
        if take > 0 {
            out.push((warehouse.clone(), take));
            left -= take;
        }
    }
    out
}

/// A backorder's lines after some of them were cancelled: each cancelled quantity comes off
/// its line, lines reaching zero disappear.
pub(crate) fn reduce_lines(lines: &[LineRequest], cancelled: &[(String, u32)]) -> Vec<LineRequest> {
    lines
        .iter()
        .filter_map(|line| {
            let gone: u32 = cancelled
                .iter()
                .filter(|(id, _)| *id == line.line_id)
                .map(|(_, q)| *q)
                .fold(0, u32::saturating_add);
            let left = line.quantity.get().saturating_sub(gone);
            Quantity::new(left).ok().map(|quantity| LineRequest {
                quantity,
                ..line.clone()
            })
        })
        .collect()
}

/// One warehouse's stock of a SKU, for the level message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseStock {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Units on hand.
    pub on_hand: u64,
    /// Units reserved.
    pub reserved: u64,
}

/// The `stock.level_changed` of `sku`, or `None` when it has no stock row anywhere.
pub(crate) fn level_changed(
    sku: Sku,
    gtins: Vec<Gtin>,
    warehouses: &[WarehouseStock],
    sequence: u64,
    as_of: DateTime<Utc>,
) -> Option<StockLevelChanged> {
    if warehouses.is_empty() {
        return None;
    }
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let levels: Vec<WarehouseLevel> = warehouses
        .iter()
        .map(|w| {
            let on_hand = clamp(w.on_hand);
            let reserved = clamp(w.reserved);
            WarehouseLevel {
                warehouse_id: w.warehouse_id.clone(),
                on_hand,
                reserved,
                available: on_hand.saturating_sub(reserved),
            }
        })
        .collect();
    let sum = |f: fn(&WarehouseLevel) -> u32| levels.iter().map(|w| u64::from(f(w))).sum();
    Some(StockLevelChanged {
        sku,
        gtins,
        on_hand: sum(|w| w.on_hand),
        reserved: sum(|w| w.reserved),
        available: sum(|w| w.available),
        warehouses: levels,
        sequence,
        as_of,
    })
}

/// The contract form of an allocation.
pub(crate) fn to_allocations(picks: &[WarehousePicks]) -> Vec<Allocation> {
    picks
        .iter()
        .map(|w| Allocation {
            warehouse_id: w.warehouse_id.clone(),
            lines: w
                .picks
                .iter()
                .filter_map(|p| {
                    Quantity::new(p.quantity)
                        .ok()
                        .map(|quantity| AllocatedLine {
                            line_id: p.line_id.clone(),
                            sku: p.sku.clone(),
                            quantity,
                        })
                })
                .collect(),
        })
        .filter(|a| !a.lines.is_empty())
        .collect()
}

/// The contract form of shortages.
pub(crate) fn to_shortages(shortages: &[LineShortage]) -> Vec<Shortage> {
    shortages
        .iter()
        .map(|s| Shortage {
            line_id: s.line_id.clone(),
            sku: s.sku.clone(),
            requested: s.requested,
            available: s.available,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn wh(s: &str) -> WarehouseId {
        WarehouseId::parse(s).unwrap()
    }

    fn line(id: &str, s: &str, q: u32) -> LineRequest {
        LineRequest {
            line_id: id.into(),
            sku: sku(s),
            quantity: Quantity::new(q).unwrap(),
        }
    }

    fn slot(w: &str, priority: i32, s: &str, available: u64) -> StockSlot {
        StockSlot {
            warehouse_id: wh(w),
            priority,
            sku: sku(s),
            available,
        }
    }

    /// The allocation as (warehouse, [what `pick` says of each pick]).
    fn shape_with<T>(allocated: &Allocated, pick: impl Fn(&Pick) -> T) -> Vec<(String, Vec<T>)> {
        match allocated {
            Allocated::Reserved(picks) => picks
                .iter()
                .map(|w| {
                    (
                        w.warehouse_id.to_string(),
                        w.picks.iter().map(&pick).collect(),
                    )
                })
                .collect(),
            Allocated::Short(s) => panic!("expected a reservation, got shortages {s:?}"),
        }
    }

    /// The allocation as (warehouse, [(line, units)]), for compact assertions.
    fn shape(allocated: &Allocated) -> Vec<(String, Vec<(String, u32)>)> {
        shape_with(allocated, |p| (p.line_id.clone(), p.quantity))
    }

    fn pairs(v: &[(&str, &[(&str, u32)])]) -> Vec<(String, Vec<(String, u32)>)> {
        v.iter()
            .map(|(w, lines)| {
                (
                    (*w).to_owned(),
                    lines.iter().map(|(l, q)| ((*l).to_owned(), *q)).collect(),
                )
            })
            .collect()
    }

    fn untracked(skus: &[&str]) -> BTreeSet<Sku> {
        skus.iter().map(|s| sku(s)).collect()
    }

    /// (warehouse, [(line, units, reserved)]).
    type Flags = Vec<(String, Vec<(String, u32, bool)>)>;

    fn reserved_flags(allocated: &Allocated) -> Flags {
        shape_with(allocated, |p| (p.line_id.clone(), p.quantity, p.reserved))
    }

    #[test]
    fn untracked_lines_ride_unreserved_with_the_first_warehouse() {
        let view = StockView::new([slot("berlin-1", 100, "MUG", 10)])
            .with_untracked(untracked(&["GIFT"]), Some(wh("hamburg-1")));
        let got = view.allocate(&[line("1", "GIFT", 3), line("2", "MUG", 2)]);
        assert_eq!(
            reserved_flags(&got),
            vec![(
                "berlin-1".to_owned(),
                vec![("2".to_owned(), 2, true), ("1".to_owned(), 3, false)]
            )]
        );
    }

    #[test]
    fn an_order_of_untracked_products_only_ships_from_the_default_warehouse() {
        let view = StockView::new([]).with_untracked(untracked(&["GIFT"]), Some(wh("hamburg-1")));
        let got = view.allocate(&[line("1", "GIFT", 1000)]);
        assert_eq!(
            reserved_flags(&got),
            vec![("hamburg-1".to_owned(), vec![("1".to_owned(), 1000, false)])]
        );
    }

    #[test]
    fn an_order_with_nothing_to_ship_is_reserved_in_no_warehouse() {
        let view = StockView::new([slot("berlin-1", 100, "MUG", 10)]);
        assert_eq!(view.allocate(&[]), Allocated::Reserved(Vec::new()));
    }

    #[test]
    fn untracked_products_need_some_warehouse_to_ship_from() {
        let view = StockView::new([]).with_untracked(untracked(&["GIFT"]), None);
        let Allocated::Short(shortages) = view.allocate(&[line("1", "GIFT", 1)]) else {
            panic!("no warehouse at all: nothing to ship from");
        };
        assert_eq!(shortages.len(), 1);
        assert_eq!(shortages[0].available, 0);
    }

    #[test]
    fn stock_added_by_hand_to_an_untracked_product_is_neither_needed_nor_taken() {
        let mut view = StockView::new([
            slot("berlin-1", 100, "GIFT", 1),
            slot("berlin-1", 100, "MUG", 5),
        ])
        .with_untracked(untracked(&["GIFT"]), Some(wh("berlin-1")));
        let got = view.allocate(&[line("1", "GIFT", 4), line("2", "MUG", 1)]);
        let Allocated::Reserved(picks) = &got else {
            panic!("an untracked product is always available: {got:?}");
        };
        view.take(picks);
        assert_eq!(view.available(&wh("berlin-1"), &sku("MUG")), 4);
        assert_eq!(view.available(&wh("berlin-1"), &sku("GIFT")), 0);
        assert!(!view.tracks(&sku("GIFT")));
    }

    #[test]
    fn a_short_tracked_line_still_backorders_an_order_with_untracked_lines() {
        let view = StockView::new([slot("berlin-1", 100, "MUG", 1)])
            .with_untracked(untracked(&["GIFT"]), Some(wh("berlin-1")));
        let Allocated::Short(shortages) =
            view.allocate(&[line("1", "GIFT", 1), line("2", "MUG", 2)])
        else {
            panic!("MUG is short");
        };
        assert_eq!(
            shortages
                .iter()
                .map(|s| s.line_id.as_str())
                .collect::<Vec<_>>(),
            vec!["2"]
        );
    }

    #[test]
    fn single_warehouse_serves_the_whole_order() {
        let view = StockView::new([
            slot("berlin-1", 100, "MUG", 10),
            slot("berlin-1", 100, "TEA", 3),
        ]);
        let got = view.allocate(&[line("1", "MUG", 2), line("2", "TEA", 1)]);
        assert_eq!(shape(&got), pairs(&[("berlin-1", &[("1", 2), ("2", 1)])]));
    }

    #[test]
    fn preferred_warehouse_wins_when_several_can_serve_everything() {
        let view = StockView::new([
            slot("aachen", 50, "MUG", 10),
            slot("berlin-1", 10, "MUG", 10),
            slot("celle", 10, "MUG", 10),
        ]);
        // berlin-1 and celle share the best priority: the id breaks the tie.
        let got = view.allocate(&[line("1", "MUG", 5)]);
        assert_eq!(shape(&got), pairs(&[("berlin-1", &[("1", 5)])]));
    }

    #[test]
    fn a_less_preferred_warehouse_that_serves_everything_beats_a_split() {
        let view = StockView::new([
            slot("berlin-1", 1, "MUG", 10),
            slot("berlin-1", 1, "TEA", 0),
            slot("hamburg-2", 9, "MUG", 2),
            slot("hamburg-2", 9, "TEA", 1),
        ]);
        let got = view.allocate(&[line("1", "MUG", 2), line("2", "TEA", 1)]);
        assert_eq!(shape(&got), pairs(&[("hamburg-2", &[("1", 2), ("2", 1)])]));
    }

    #[test]
    fn split_when_no_warehouse_serves_everything() {
        let view = StockView::new([
            slot("berlin-1", 1, "MUG", 5),
            slot("hamburg-2", 2, "TEA", 5),
        ]);
        let got = view.allocate(&[line("1", "MUG", 2), line("2", "TEA", 1)]);
        assert_eq!(
            shape(&got),
            pairs(&[("berlin-1", &[("1", 2)]), ("hamburg-2", &[("2", 1)])])
        );
    }

    #[test]
    fn split_prefers_warehouses_already_used() {
        // Line 1 only fits in hamburg-2. Line 2 would fit in berlin-1 (preferred) too, but
        // hamburg-2 is already shipping, so it goes there: one parcel less.
        let view = StockView::new([
            slot("berlin-1", 1, "TEA", 5),
            slot("hamburg-2", 2, "MUG", 5),
            slot("hamburg-2", 2, "TEA", 5),
            slot("koeln", 3, "CUP", 5),
        ]);
        let got = view.allocate(&[
            line("1", "MUG", 3),
            line("2", "TEA", 2),
            line("3", "CUP", 1),
        ]);
        assert_eq!(
            shape(&got),
            pairs(&[("hamburg-2", &[("1", 3), ("2", 2)]), ("koeln", &[("3", 1)])])
        );
    }

    #[test]
    fn a_line_too_big_for_any_warehouse_is_split_in_priority_order() {
        let view = StockView::new([
            slot("a", 3, "MUG", 4),
            slot("b", 1, "MUG", 3),
            slot("c", 2, "MUG", 2),
        ]);
        let got = view.allocate(&[line("1", "MUG", 8)]);
        assert_eq!(
            shape(&got),
            pairs(&[("b", &[("1", 3)]), ("c", &[("1", 2)]), ("a", &[("1", 3)])])
        );
    }

    #[test]
    fn exact_fit_uses_everything_and_one_more_unit_is_short() {
        let view = StockView::new([slot("a", 1, "MUG", 3), slot("b", 2, "MUG", 2)]);
        let got = view.allocate(&[line("1", "MUG", 5)]);
        assert_eq!(
            shape(&got),
            pairs(&[("a", &[("1", 3)]), ("b", &[("1", 2)])])
        );

        let got = view.allocate(&[line("1", "MUG", 6)]);
        assert_eq!(
            got,
            Allocated::Short(vec![LineShortage {
                line_id: "1".into(),
                sku: sku("MUG"),
                requested: Quantity::new(6).unwrap(),
                available: 5,
            }])
        );
    }

    #[test]
    fn one_short_line_among_several_reserves_nothing() {
        let view = StockView::new([
            slot("a", 1, "MUG", 10),
            slot("a", 1, "TEA", 1),
            slot("b", 2, "CUP", 10),
        ]);
        let got = view.allocate(&[
            line("1", "MUG", 2),
            line("2", "TEA", 3),
            line("3", "CUP", 1),
        ]);
        assert_eq!(
            got,
            Allocated::Short(vec![LineShortage {
                line_id: "2".into(),
                sku: sku("TEA"),
                requested: Quantity::new(3).unwrap(),
                available: 1,
            }])
        );
    }

    #[test]
    fn unknown_sku_is_short_with_nothing_available() {
        let view = StockView::new([]);
        let got = view.allocate(&[line("1", "GHOST", 1)]);
        assert_eq!(
            got,
            Allocated::Short(vec![LineShortage {
                line_id: "1".into(),
                sku: sku("GHOST"),
                requested: Quantity::ONE,
                available: 0,
            }])
        );
    }

    #[test]
    fn same_sku_on_two_lines_counts_both() {
        // 5 units wanted in total; a holds 4, b holds 1: no single warehouse, split.
        let view = StockView::new([slot("a", 1, "MUG", 4), slot("b", 2, "MUG", 1)]);
        let got = view.allocate(&[line("1", "MUG", 3), line("2", "MUG", 2)]);
        assert_eq!(
            shape(&got),
            pairs(&[("a", &[("1", 3), ("2", 1)]), ("b", &[("2", 1)])])
        );

        // Each line alone fits in a, both together do not fit anywhere: both lines short,
        // the second one sees what the first left.
        let view = StockView::new([slot("a", 1, "MUG", 2)]);
        let got = view.allocate(&[line("1", "MUG", 2), line("2", "MUG", 2)]);
        assert_eq!(
            got,
            Allocated::Short(vec![LineShortage {
                line_id: "2".into(),
                sku: sku("MUG"),
                requested: Quantity::new(2).unwrap(),
                available: 0,
            }])
        );

        let got = view.allocate(&[line("1", "MUG", 3), line("2", "MUG", 1)]);
        let Allocated::Short(short) = got else {
            panic!("expected shortages")
        };
        let short: Vec<(&str, u32)> = short
            .iter()
            .map(|s| (s.line_id.as_str(), s.available))
            .collect();
        assert_eq!(short, [("1", 2), ("2", 0)]);
    }

    #[test]
    fn same_sku_on_two_lines_fits_in_one_warehouse() {
        let view = StockView::new([slot("a", 1, "MUG", 4), slot("b", 2, "MUG", 5)]);
        let got = view.allocate(&[line("1", "MUG", 3), line("2", "MUG", 2)]);
        assert_eq!(shape(&got), pairs(&[("b", &[("1", 3), ("2", 2)])]));
    }

    #[test]
    fn take_reduces_the_view() {
        let mut view = StockView::new([slot("a", 1, "MUG", 4)]);
        let Allocated::Reserved(picks) = view.allocate(&[line("1", "MUG", 3)]) else {
            panic!("expected a reservation")
        };
        view.take(&picks);
        assert_eq!(view.available(&wh("a"), &sku("MUG")), 1);
        assert!(matches!(
            view.allocate(&[line("1", "MUG", 2)]),
            Allocated::Short(_)
        ));
    }

    #[test]
    fn allocations_map_to_the_contract() {
        let view = StockView::new([
            slot("berlin-1", 1, "MUG", 5),
            slot("hamburg-2", 2, "TEA", 5),
        ]);
        let Allocated::Reserved(picks) = view.allocate(&[line("1", "MUG", 2), line("2", "TEA", 1)])
        else {
            panic!("expected a reservation")
        };
        let allocations = to_allocations(&picks);
        assert_eq!(allocations.len(), 2);
        assert_eq!(allocations[1].warehouse_id, wh("hamburg-2"));
        assert_eq!(allocations[1].lines[0].quantity, Quantity::ONE);
        use orderly_contracts::Validate;
        orderly_contracts::messages::StockReserved {
            order_id: Uuid::nil(),
            store_id: orderly_contracts::types::StoreId::parse("shop-de").unwrap(),
            allocations,
        }
        .validate()
        .unwrap();
    }

    fn backorder(n: u128, lines: Vec<LineRequest>) -> Backorder {
        Backorder {
            order_id: Uuid::from_u128(n),
            lines,
        }
    }

    fn served(decisions: &[(Uuid, BackorderDecision)]) -> Vec<u128> {
        decisions
            .iter()
            .filter(|(_, d)| matches!(d, BackorderDecision::Serve(_)))
            .map(|(id, _)| id.as_u128())
            .collect()
    }

    #[test]
    fn backorders_are_served_oldest_first_until_stock_runs_out() {
        let mut view = StockView::new([slot("a", 1, "MUG", 3)]);
        let queue: Vec<Backorder> = (1..=5)
            .map(|n| backorder(n, vec![line("1", "MUG", 1)]))
            .collect();
        let decisions = plan_backorders(&mut view, &queue);
        assert_eq!(served(&decisions), [1, 2, 3]);
        assert!(matches!(decisions[3].1, BackorderDecision::StillShort(_)));
        // The fifth is behind the fourth: both wait for MUG.
        assert_eq!(
            decisions[4].1,
            BackorderDecision::Behind {
                sku: sku("MUG"),
                older: Uuid::from_u128(4)
            }
        );
        assert_eq!(view.total(&sku("MUG")), 0);
    }

    #[test]
    fn a_younger_small_order_does_not_overtake_an_older_big_one_on_the_same_sku() {
        // 2 units arrive. The oldest wants 3 (cannot be served), the younger wants 1 (would
        // fit): the younger must wait, the units stay for the oldest.
        let mut view = StockView::new([slot("a", 1, "MUG", 2)]);
        let queue = vec![
            backorder(1, vec![line("1", "MUG", 3)]),
            backorder(2, vec![line("1", "MUG", 1)]),
        ];
        let decisions = plan_backorders(&mut view, &queue);
        assert!(served(&decisions).is_empty());
        assert_eq!(
            decisions[1].1,
            BackorderDecision::Behind {
                sku: sku("MUG"),
                older: Uuid::from_u128(1)
            }
        );
        assert_eq!(view.total(&sku("MUG")), 2, "nothing taken");
    }

    #[test]
    fn a_younger_order_that_needs_none_of_the_missing_skus_is_served() {
        // The oldest is short of TEA (none anywhere); it also needs MUG. A younger order
        // needing only MUG is served: the oldest could not have used the MUG now anyway.
        // A third, needing TEA, stays behind the oldest.
        let mut view = StockView::new([slot("a", 1, "MUG", 5)]);
        let queue = vec![
            backorder(1, vec![line("1", "MUG", 1), line("2", "TEA", 1)]),
            backorder(2, vec![line("1", "MUG", 2)]),
            backorder(3, vec![line("1", "TEA", 1), line("2", "MUG", 1)]),
        ];
        let decisions = plan_backorders(&mut view, &queue);
        assert_eq!(served(&decisions), [2]);
        assert!(
            matches!(&decisions[0].1, BackorderDecision::StillShort(s) if s[0].sku == sku("TEA"))
        );
        assert_eq!(
            decisions[2].1,
            BackorderDecision::Behind {
                sku: sku("TEA"),
                older: Uuid::from_u128(1)
            }
        );
        assert_eq!(view.total(&sku("MUG")), 3);
    }

    #[test]
    fn several_served_backorders_share_the_stock_without_overselling() {
        let mut view = StockView::new([slot("a", 1, "MUG", 2), slot("b", 2, "MUG", 2)]);
        let queue = vec![
            backorder(1, vec![line("1", "MUG", 3)]),
            backorder(2, vec![line("1", "MUG", 1)]),
            backorder(3, vec![line("1", "MUG", 1)]),
        ];
        let decisions = plan_backorders(&mut view, &queue);
        assert_eq!(served(&decisions), [1, 2]);
        assert!(matches!(decisions[2].1, BackorderDecision::StillShort(_)));
        let BackorderDecision::Serve(second) = &decisions[1].1 else {
            panic!("expected the second to be served")
        };
        assert_eq!(second[0].warehouse_id, wh("b"));
    }

    fn level(on_hand: u64, reserved: u64, last: Option<i64>) -> Level {
        Level {
            on_hand,
            reserved,
            last_count_as_of: last.map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn counts_set_on_hand_and_become_the_newest() {
        let got = plan_adjustment(
            level(10, 2, Some(100)),
            AdjustmentChange::Count {
                on_hand: 7,
                as_of: at(200),
            },
        );
        assert_eq!(
            got,
            Ok(AdjustmentOutcome::Apply {
                on_hand_delta: -3,
                count_as_of: Some(at(200))
            })
        );
        let first = plan_adjustment(
            level(0, 0, None),
            AdjustmentChange::Count {
                on_hand: 140,
                as_of: at(1),
            },
        );
        assert_eq!(
            first,
            Ok(AdjustmentOutcome::Apply {
                on_hand_delta: 140,
                count_as_of: Some(at(1))
            })
        );
    }

    #[test]
    fn an_older_or_equal_count_is_stale() {
        for as_of in [99, 100] {
            let got = plan_adjustment(
                level(10, 0, Some(100)),
                AdjustmentChange::Count {
                    on_hand: 50,
                    as_of: at(as_of),
                },
            );
            assert_eq!(got, Ok(AdjustmentOutcome::Stale { newest: at(100) }));
        }
    }

    #[test]
    fn deltas_apply_whatever_the_last_count() {
        let got = plan_adjustment(level(10, 4, Some(100)), AdjustmentChange::Delta(-6));
        assert_eq!(
            got,
            Ok(AdjustmentOutcome::Apply {
                on_hand_delta: -6,
                count_as_of: None
            })
        );
    }

    #[test]
    fn adjustments_never_take_back_reserved_units_or_go_negative() {
        assert_eq!(
            plan_adjustment(level(10, 4, None), AdjustmentChange::Delta(-7)),
            Err(AdjustmentRefused::BelowReserved {
                on_hand: 3,
                reserved: 4
            })
        );
        assert_eq!(
            plan_adjustment(
                level(10, 4, None),
                AdjustmentChange::Count {
                    on_hand: 3,
                    as_of: at(5)
                }
            ),
            Err(AdjustmentRefused::BelowReserved {
                on_hand: 3,
                reserved: 4
            })
        );
        assert_eq!(
            plan_adjustment(level(2, 0, None), AdjustmentChange::Delta(-3)),
            Err(AdjustmentRefused::Negative { on_hand: -1 })
        );
        assert!(matches!(
            plan_adjustment(level(MAX_ON_HAND, 0, None), AdjustmentChange::Delta(1)),
            Err(AdjustmentRefused::TooLarge { .. })
        ));
        // Down to exactly what is reserved is fine: nothing available, nothing oversold.
        assert_eq!(
            plan_adjustment(level(10, 4, None), AdjustmentChange::Delta(-6)),
            Ok(AdjustmentOutcome::Apply {
                on_hand_delta: -6,
                count_as_of: None
            })
        );
    }

    #[test]
    fn dispatch_consumes_the_reservation() {
        let plan = plan_dispatch(2, 2, level(10, 5, None)).unwrap();
        assert_eq!(
            plan,
            DispatchPlan {
                from_reservation: 2,
                from_free_stock: 0
            }
        );
        assert_eq!((plan.on_hand_delta(), plan.reserved_delta()), (-2, -2));
    }

    #[test]
    fn dispatch_beyond_the_reservation_takes_free_stock_or_is_refused() {
        let plan = plan_dispatch(3, 1, level(10, 5, None)).unwrap();
        assert_eq!((plan.on_hand_delta(), plan.reserved_delta()), (-3, -1));
        // 1 reserved for the line, 1 unreserved: 3 shipped cannot be booked.
        assert_eq!(
            plan_dispatch(3, 1, level(6, 5, None)),
            Err(DispatchRefused {
                quantity: 3,
                open: 1,
                free: 1
            })
        );
    }

    #[test]
    fn release_takes_at_most_what_is_open() {
        let open = vec![(wh("a"), 2), (wh("b"), 3)];
        assert_eq!(plan_release(&open, None), vec![(wh("a"), 2), (wh("b"), 3)]);
        assert_eq!(
            plan_release(&open, Some(4)),
            vec![(wh("a"), 2), (wh("b"), 2)]
        );
        assert_eq!(
            plan_release(&open, Some(9)),
            vec![(wh("a"), 2), (wh("b"), 3)]
        );
        assert_eq!(plan_release(&[(wh("a"), 0)], None), vec![]);
    }

    #[test]
    fn cancelled_quantities_come_off_backordered_lines() {
        let lines = vec![line("1", "MUG", 3), line("2", "TEA", 1)];
        assert_eq!(
            reduce_lines(&lines, &[("1".into(), 1), ("2".into(), 1)]),
            vec![line("1", "MUG", 2)]
        );
        assert_eq!(reduce_lines(&lines, &[("9".into(), 1)]), lines);
        assert!(reduce_lines(&lines, &[("1".into(), 5), ("2".into(), 5)]).is_empty());
    }

    #[test]
    fn level_message_sums_warehouses_and_never_shows_negative_available() {
        let msg = level_changed(
            sku("MUG"),
            vec![Gtin::parse("5901234123457").unwrap()],
            &[
                WarehouseStock {
                    warehouse_id: wh("berlin-1"),
                    on_hand: 140,
                    reserved: 2,
                },
                WarehouseStock {
                    warehouse_id: wh("hamburg-2"),
                    on_hand: 12,
                    reserved: 0,
                },
            ],
            5812,
            at(0),
        )
        .unwrap();
        assert_eq!((msg.on_hand, msg.reserved, msg.available), (152, 2, 150));
        assert_eq!(msg.warehouses[0].available, 138);
        use orderly_contracts::Validate;
        msg.validate().unwrap();
        assert!(level_changed(sku("MUG"), vec![], &[], 1, at(0)).is_none());
    }

    /// Arrival-order properties, over generated inputs: the same movements or stock rows in
    /// any order (with duplicates where the rule must absorb them) give the same levels and
    /// allocations. Proptest shrinks a failure to a minimal counterexample.
    mod arrival_order {
        use proptest::prelude::*;

        use super::*;

        /// A permutation of `items` with duplicates (index, position) inserted.
        fn arrival_of<T: Clone + std::fmt::Debug>(
            items: Vec<T>,
            max_duplicates: usize,
        ) -> impl Strategy<Value = Vec<T>> {
            let n = items.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let duplicates = prop::collection::vec((0..n.max(1), 0..=n), 0..=max_duplicates);
            (order, duplicates).prop_map(move |(order, duplicates)| {
                let mut arrival: Vec<T> = order.iter().map(|&i| items[i].clone()).collect();
                for (i, at) in duplicates {
                    if let Some(item) = items.get(i) {
                        arrival.insert(at.min(arrival.len()), item.clone());
                    }
                }
                arrival
            })
        }

        /// Applies adjustments one at a time as the handler does (refusals change nothing).
        fn apply_all(start: Level, changes: &[AdjustmentChange]) -> Level {
            changes.iter().fold(start, |level, change| {
                match plan_adjustment(level, *change) {
                    Ok(AdjustmentOutcome::Apply {
                        on_hand_delta,
                        count_as_of,
                    }) => Level {
                        on_hand: level.on_hand.saturating_add_signed(on_hand_delta),
                        last_count_as_of: count_as_of.or(level.last_count_as_of),
                        ..level
                    },
                    Ok(AdjustmentOutcome::Stale { .. }) | Err(_) => level,
                }
            })
        }

        /// Counts with distinct times (seconds 1..=n, values random), in the order taken.
        fn counts() -> impl Strategy<Value = Vec<AdjustmentChange>> {
            prop::collection::vec(0u32..50, 1..7).prop_map(|values| {
                (1i64..)
                    .zip(values)
                    .map(|(s, on_hand)| AdjustmentChange::Count {
                        on_hand,
                        as_of: at(s),
                    })
                    .collect()
            })
        }

        fn counts_and_arrival()
        -> impl Strategy<Value = (Vec<AdjustmentChange>, Vec<AdjustmentChange>)> {
            counts().prop_flat_map(|c| (Just(c.clone()), arrival_of(c, 3)))
        }

        fn deltas_and_arrival()
        -> impl Strategy<Value = (Vec<AdjustmentChange>, Vec<AdjustmentChange>)> {
            prop::collection::vec(-20i64..20, 0..8).prop_flat_map(|d| {
                let d: Vec<_> = d.into_iter().map(AdjustmentChange::Delta).collect();
                (Just(d.clone()), arrival_of(d, 0))
            })
        }

        /// Stock rows of 3 SKUs in 3 warehouses with tied and distinct priorities.
        fn slots() -> impl Strategy<Value = Vec<StockSlot>> {
            prop::collection::vec((0u8..3, 0i32..2, 0u8..3, 0u64..4), 1..8).prop_map(|rows| {
                rows.into_iter()
                    .map(|(w, priority, s, available)| {
                        slot(&format!("w{w}"), priority, &format!("SKU-{s}"), available)
                    })
                    .collect()
            })
        }

        fn order_lines() -> impl Strategy<Value = Vec<LineRequest>> {
            prop::collection::vec((0u8..3, 1u32..4), 1..4).prop_map(|lines| {
                (1..)
                    .zip(lines)
                    .map(|(n, (s, q))| line(&n.to_string(), &format!("SKU-{s}"), q))
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn counts_in_any_arrival_order_with_duplicates_leave_the_newest_count(
                (taken, arrival) in counts_and_arrival()
            ) {
                let start = Level { on_hand: 10, reserved: 0, last_count_as_of: None };
                let in_order = apply_all(start, &taken);
                prop_assert_eq!(apply_all(start, &arrival), in_order);
                // Independently of the rule: the newest count is what is on hand.
                let newest = taken.last().expect("one count");
                let AdjustmentChange::Count { on_hand, as_of } = *newest else {
                    unreachable!("counts only")
                };
                prop_assert_eq!(in_order.on_hand, u64::from(on_hand));
                prop_assert_eq!(in_order.last_count_as_of, Some(as_of));
            }

            #[test]
            fn deltas_in_any_order_give_the_same_level(
                (booked, arrival) in deltas_and_arrival()
            ) {
                // Enough stock that no order of these deltas goes below zero.
                let start = Level { on_hand: 200, reserved: 5, last_count_as_of: None };
                let in_order = apply_all(start, &booked);
                prop_assert_eq!(apply_all(start, &arrival), in_order);
                let sum: i64 = booked.iter().map(|c| match c {
                    AdjustmentChange::Delta(d) => *d,
                    AdjustmentChange::Count { .. } => 0,
                }).sum();
                prop_assert_eq!(in_order.on_hand, 200u64.saturating_add_signed(sum));
            }

            #[test]
            fn stock_rows_read_in_any_order_allocate_the_same(
                (rows, arrival, lines) in slots()
                    .prop_flat_map(|rows| (Just(rows.clone()), arrival_of(rows, 0), order_lines()))
            ) {
                let in_order = StockView::new(rows).allocate(&lines);
                prop_assert_eq!(StockView::new(arrival).allocate(&lines), in_order);
            }

            #[test]
            fn backorders_are_served_oldest_first_per_sku(
                (rows, backorders) in (slots(), prop::collection::vec(order_lines(), 1..5))
            ) {
                let oldest_first: Vec<Backorder> = (1u128..)
                    .zip(backorders)
                    .map(|(n, lines)| Backorder { order_id: Uuid::from_u128(n), lines })
                    .collect();
                let mut view = StockView::new(rows.clone());
                let decisions = plan_backorders(&mut view, &oldest_first);
                // The oldest backorder is served whenever the stock can serve it alone.
                if let Allocated::Reserved(_) = StockView::new(rows).allocate(&oldest_first[0].lines) {
                    prop_assert!(matches!(decisions[0].1, BackorderDecision::Serve(_)), "{:?}", decisions);
                }
                // No younger order is served a SKU an older unserved order is short of.
                for (i, (_, older)) in decisions.iter().enumerate() {
                    let BackorderDecision::StillShort(shortages) = older else { continue };
                    for (j, (_, younger)) in decisions.iter().enumerate().skip(i + 1) {
                        if let BackorderDecision::Serve(picks) = younger {
                            for shortage in shortages {
                                prop_assert!(
                                    !picks.iter().flat_map(|w| &w.picks).any(|p| p.sku == shortage.sku),
                                    "backorder {} served {} that older {} is short of", j, shortage.sku, i
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
