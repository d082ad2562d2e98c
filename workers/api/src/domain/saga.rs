//! Where an order stands in its saga: what it waits for, since when, and why, derived from
//! what the read model holds (status, its time, shipments). Operators ask this first ("why
//! has it not shipped?"), and no single worker can answer it: each knows only its part.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

/// Who or what the order waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WaitingFor {
    /// An operator: lines matched no product (order item exceptions).
    Operator,
    /// Inventory: a reservation, or stock for a backorder.
    Stock,
    /// A warehouse: to ship what it was asked to (or fulfillment to ask it).
    Warehouse,
    /// A carrier: to deliver what left.
    Carrier,
    /// The setups of its service lines: the agency's work or the client (the goods are
    /// delivered; the order completes when every setup is completed).
    Setups,
    /// Nothing: the order is done (completed or cancelled).
    Nothing,
}

/// What the saga position is derived from, for one shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShipmentFacts<'a> {
    /// The warehouse asked to ship it.
    pub(crate) warehouse_id: Option<&'a str>,
    /// When it was asked for.
    pub(crate) requested_at: Option<DateTime<Utc>>,
    /// When it left.
    pub(crate) dispatched_at: Option<DateTime<Utc>>,
    /// When it arrived.
    pub(crate) delivered_at: Option<DateTime<Utc>>,
    /// The carrier's newest problem report, with its time.
    pub(crate) exception: Option<(&'a str, DateTime<Utc>)>,
}

/// Where the order stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct SagaPosition {
    /// Who or what it waits for.
    pub(crate) waiting_for: WaitingFor,
    /// Since when (the event that put it there).
    pub(crate) since: DateTime<Utc>,
    /// In words, for the operator.
    pub(crate) detail: String,
}

/// The position of an order an operator put on hold (`since` the hold, for `reason`): it
/// waits for an operator to release it, whatever else it waits for. A finished order
/// (completed, cancelled) is past any hold.
pub(crate) fn held(
    position: SagaPosition,
    since: DateTime<Utc>,
    reason: Option<&str>,
) -> SagaPosition {
    if position.waiting_for == WaitingFor::Nothing {
        return position;
    }
    let why = reason.map(|r| format!(" (“{r}”)")).unwrap_or_default();
    SagaPosition {
        waiting_for: WaitingFor::Operator,
        since,
        detail: format!(
            "put on hold by an operator{why}: nothing more is shipped until it is released; \
             then: {}",
            position.detail
        ),
    }
}

/// The position of an order with `status` (`None` before any status is known), changed at
/// `status_changed_at` (else `placed_at`), with `shipments`.
pub(crate) fn position(
    status: Option<&str>,
    status_changed_at: Option<DateTime<Utc>>,
    placed_at: DateTime<Utc>,
    shipments: &[ShipmentFacts<'_>],
) -> SagaPosition {
    let since = status_changed_at.unwrap_or(placed_at);
    let at = |waiting_for, since, detail: String| SagaPosition {
        waiting_for,
        since,
        detail,
    };
    // A carrier reports only on parcels it has: an exception means the parcel left, even
    // when its dispatch has not been heard of yet.
    let with_carrier = |s: &ShipmentFacts<'_>| s.dispatched_at.is_some() || s.exception.is_some();
    let waiting_warehouse: Vec<&ShipmentFacts<'_>> = shipments
        .iter()
        .filter(|s| s.requested_at.is_some() && !with_carrier(s) && s.delivered_at.is_none())
        .collect();
    let in_transit: Vec<&ShipmentFacts<'_>> = shipments
        .iter()
        .filter(|s| with_carrier(s) && s.delivered_at.is_none())
        .collect();
    match status {
        None | Some("on_hold") => at(
            WaitingFor::Operator,
            since,
            "lines matched no product: order item exceptions wait for an operator".into(),
        ),
        Some("accepted") => at(
            WaitingFor::Stock,
            since,
            "accepted; inventory is reserving the lines".into(),
        ),
        Some("backordered") => at(
            WaitingFor::Stock,
            since,
            "backordered: waits for stock".into(),
        ),
        Some("completed") => at(WaitingFor::Nothing, since, "completed".into()),
        Some("cancelled") => at(WaitingFor::Nothing, since, "cancelled".into()),
        Some(_) if !waiting_warehouse.is_empty() => {
            let oldest = waiting_warehouse
                .iter()
                .filter_map(|s| s.requested_at)
                .min()
                .unwrap_or(since);
            let warehouses: Vec<&str> = waiting_warehouse
                .iter()
                .filter_map(|s| s.warehouse_id)
                .collect();
            at(
                WaitingFor::Warehouse,
                oldest,
                format!(
                    "{} shipment(s) not yet dispatched ({})",
                    waiting_warehouse.len(),
                    warehouses.join(", ")
                ),
            )
        }
        Some("processing") => at(
            WaitingFor::Warehouse,
            since,
            "stock reserved; fulfillment is asking the warehouses".into(),
        ),
        Some(_) if !in_transit.is_empty() => {
            let problem = in_transit
                .iter()
                .filter_map(|s| s.exception)
                .max_by_key(|(_, at)| *at);
            match problem {
                Some((status, when)) => at(
                    WaitingFor::Carrier,
                    when,
                    format!("in transit; the carrier reported {status}"),
                ),
                None => {
                    let left = in_transit
                        .iter()
                        .filter_map(|s| s.dispatched_at)
                        .max()
                        .unwrap_or(since);
                    at(
                        WaitingFor::Carrier,
                        left,
                        format!("{} shipment(s) in transit", in_transit.len()),
                    )
                }
            }
        }
        Some(other) => at(WaitingFor::Nothing, since, other.replace('_', " ")),
    }
}

/// An open setup of the order, as the position names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenSetup<'a> {
    pub(crate) sku: &'a str,
    pub(crate) stage: &'a str,
    pub(crate) status: &'a str,
}

/// The position of an order with `status` whose goods are done (it waits for nothing
/// else) but which has open setups: it waits for them, naming each.
pub(crate) fn with_setups(
    position: SagaPosition,
    status: Option<&str>,
    open: &[OpenSetup<'_>],
) -> SagaPosition {
    if position.waiting_for != WaitingFor::Nothing
        || open.is_empty()
        || matches!(status, Some("completed" | "cancelled"))
    {
        return position;
    }
    let each: Vec<String> = open
        .iter()
        .map(|s| {
            format!(
                "{} at `{}` ({})",
                s.sku,
                s.stage,
                s.status.replace('_', " ")
            )
        })
        .collect();
    SagaPosition {
        waiting_for: WaitingFor::Setups,
        since: position.since,
        detail: format!(
            "{}; {} setup(s) open: {}",
            position.detail,
            open.len(),
            each.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_held_order_waits_for_an_operator_unless_it_is_done() {
        let t0 = Utc::now();
        let hold_at = t0 + chrono::Duration::minutes(5);
        let processing = position(Some("processing"), Some(t0), t0, &[]);
        let held_position = held(processing.clone(), hold_at, Some("Zahlung prüfen"));
        assert_eq!(held_position.waiting_for, WaitingFor::Operator);
        assert_eq!(held_position.since, hold_at);
        assert!(
            held_position.detail.contains("Zahlung prüfen"),
            "{held_position:?}"
        );
        assert!(
            held_position.detail.contains(&processing.detail),
            "{held_position:?}"
        );
        let done = position(Some("completed"), Some(t0), t0, &[]);
        assert_eq!(held(done.clone(), hold_at, None), done);
    }

    #[test]
    fn an_order_with_open_setups_waits_for_them_once_its_goods_are_done() {
        let t0 = Utc::now();
        let open = [OpenSetup {
            sku: "SVC-ADS",
            stage: "review",
            status: "awaiting_client",
        }];
        let at = |status| position(Some(status), Some(t0), t0, &[]);
        let delivered = with_setups(at("delivered"), Some("delivered"), &open);
        assert_eq!(delivered.waiting_for, WaitingFor::Setups);
        assert!(
            delivered
                .detail
                .contains("1 setup(s) open: SVC-ADS at `review` (awaiting client)"),
            "{delivered:?}"
        );
        // Goods still on their way come first; a finished order waits for nothing.
        let processing = at("processing");
        assert_eq!(
            with_setups(processing.clone(), Some("processing"), &open),
            processing
        );
        for done in ["completed", "cancelled"] {
            assert_eq!(with_setups(at(done), Some(done), &open), at(done));
        }
        let delivered = at("delivered");
        assert_eq!(
            with_setups(delivered.clone(), Some("delivered"), &[]),
            delivered
        );
    }

    fn t(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-03-14T10:{minute:02}:00Z"))
            .unwrap()
            .to_utc()
    }

    fn shipment(
        requested: u32,
        dispatched: Option<u32>,
        delivered: Option<u32>,
    ) -> ShipmentFacts<'static> {
        ShipmentFacts {
            warehouse_id: Some("berlin-1"),
            requested_at: Some(t(requested)),
            dispatched_at: dispatched.map(t),
            delivered_at: delivered.map(t),
            exception: None,
        }
    }

    #[test]
    fn each_stage_waits_for_its_owner_since_the_event_that_put_it_there() {
        let p = |status, shipments: &[ShipmentFacts<'_>]| {
            let s = position(status, Some(t(5)), t(0), shipments);
            (s.waiting_for, s.since)
        };
        assert_eq!(p(None, &[]), (WaitingFor::Operator, t(5)));
        assert_eq!(p(Some("on_hold"), &[]), (WaitingFor::Operator, t(5)));
        assert_eq!(p(Some("accepted"), &[]), (WaitingFor::Stock, t(5)));
        assert_eq!(p(Some("backordered"), &[]), (WaitingFor::Stock, t(5)));
        assert_eq!(p(Some("processing"), &[]), (WaitingFor::Warehouse, t(5)));
        // Asked at :07 and :09, nothing left: waits for the warehouse since the older ask.
        let asked = [shipment(9, None, None), shipment(7, None, None)];
        assert_eq!(p(Some("processing"), &asked), (WaitingFor::Warehouse, t(7)));
        // One left at :20, one not yet: still the warehouse.
        let half = [shipment(7, Some(20), None), shipment(8, None, None)];
        assert_eq!(
            p(Some("partially_shipped"), &half),
            (WaitingFor::Warehouse, t(8))
        );
        // Both left: the carrier, since the later departure.
        let gone = [shipment(7, Some(20), None), shipment(8, Some(25), None)];
        assert_eq!(p(Some("shipped"), &gone), (WaitingFor::Carrier, t(25)));
        assert_eq!(p(Some("completed"), &gone), (WaitingFor::Nothing, t(5)));
        assert_eq!(p(Some("cancelled"), &[]), (WaitingFor::Nothing, t(5)));
    }

    #[test]
    fn a_carrier_problem_is_named_with_its_time() {
        let mut late = shipment(7, Some(20), None);
        late.exception = Some(("delivery_failed", t(40)));
        let s = position(Some("shipped"), Some(t(20)), t(0), &[late]);
        assert_eq!((s.waiting_for, s.since), (WaitingFor::Carrier, t(40)));
        assert!(s.detail.contains("delivery_failed"), "{}", s.detail);
    }

    #[test]
    fn a_parcel_the_carrier_reports_on_has_left_even_before_its_dispatch_is_heard_of() {
        let reported = ShipmentFacts {
            warehouse_id: None,
            requested_at: None,
            dispatched_at: None,
            delivered_at: None,
            exception: Some(("returned", t(30))),
        };
        let s = position(Some("shipped"), Some(t(20)), t(0), &[reported]);
        assert_eq!((s.waiting_for, s.since), (WaitingFor::Carrier, t(30)));
    }

    #[test]
    fn without_a_status_time_the_placement_counts() {
        let s = position(Some("accepted"), None, t(1), &[]);
        assert_eq!(s.since, t(1));
    }
}
