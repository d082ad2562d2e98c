//! Shipments from an allocation, and what cancellations do to them.

use super::*;

fn alloc(warehouse: &str, lines: &[(&str, &str, u32)]) -> Allocation {
    Allocation {
        warehouse_id: WarehouseId::parse(warehouse).expect("warehouse"),
        lines: lines
            .iter()
            .map(|(line_id, sku, q)| AllocatedLine {
                line_id: (*line_id).to_owned(),
                sku: Sku::parse(sku).expect("sku"),
                quantity: Quantity::new(*q).expect("quantity"),
            })
            .collect(),
    }
}

#[test]
fn one_shipment_per_allocation_with_titles_from_the_order() {
    let order = golden_order();
    let plan = plan_shipments(
        &order,
        &[
            alloc("berlin-1", &[("1", "MUG-BLU-350", 2)]),
            alloc("hamburg-2", &[("2", "TEA-EARL-100", 1)]),
        ],
    )
    .expect("plan");
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].warehouse_id.as_str(), "berlin-1");
    assert_eq!(plan[0].position, 0);
    assert_eq!(plan[0].items[0].title, order.lines[0].title);
    assert_eq!(plan[0].items[0].quantity, 2);
    assert_eq!(plan[1].warehouse_id.as_str(), "hamburg-2");
    assert_eq!(plan[1].position, 1);
    assert_eq!(plan[1].items[0].sku.as_str(), "TEA-EARL-100");
    assert!(plan.iter().all(|s| !s.cancelled));
}

#[test]
fn a_split_line_appears_in_each_warehouse() {
    let order = golden_order();
    let plan = plan_shipments(
        &order,
        &[
            alloc(
                "berlin-1",
                &[("1", "MUG-BLU-350", 1), ("2", "TEA-EARL-100", 1)],
            ),
            alloc("hamburg-2", &[("1", "MUG-BLU-350", 1)]),
        ],
    )
    .expect("plan");
    assert_eq!(plan[0].items.len(), 2);
    assert_eq!(plan[1].items[0].quantity, 1);
}

#[test]
fn allocations_that_do_not_fit_the_order_are_refused() {
    let order = golden_order();
    let err =
        plan_shipments(&order, &[alloc("berlin-1", &[("9", "X", 1)])]).expect_err("unknown line");
    assert!(matches!(err, PlanError::UnknownLine { ref line_id, .. } if line_id == "9"));
    assert!(err.to_string().contains("line `9`"), "{err}");
    let err = plan_shipments(
        &order,
        &[
            alloc("berlin-1", &[("1", "MUG-BLU-350", 2)]),
            alloc("hamburg-2", &[("1", "MUG-BLU-350", 1)]),
        ],
    )
    .expect_err("over-allocated");
    assert!(matches!(
        err,
        PlanError::OverAllocated {
            allocated: 3,
            ordered: 2,
            ..
        }
    ));
}

fn contents(position: u32, state: ShipmentState, items: &[(&str, u32)]) -> ShipmentContents {
    ShipmentContents {
        position,
        state,
        items: items.iter().map(|(l, q)| ((*l).to_owned(), *q)).collect(),
    }
}

fn ordered(lines: &[(&str, u32)]) -> BTreeMap<String, u32> {
    lines.iter().map(|(l, q)| ((*l).to_owned(), *q)).collect()
}

fn lines_cancel(lines: &[(&str, u32)]) -> Cancellation {
    Cancellation {
        scope: CancellationScope::Lines,
        lines: lines.iter().map(|(l, q)| ((*l).to_owned(), *q)).collect(),
    }
}

fn whole_cancel() -> Cancellation {
    Cancellation {
        scope: CancellationScope::Order,
        lines: vec![("1".into(), 2)],
    }
}

#[test]
fn a_whole_order_cancellation_cancels_what_has_not_left() {
    let shipments = [
        contents(0, ShipmentState::Requested, &[("1", 2)]),
        contents(1, ShipmentState::LabelCreated, &[("2", 1)]),
        contents(2, ShipmentState::InTransit, &[("3", 1)]),
        contents(3, ShipmentState::Cancelled, &[("4", 1)]),
    ];
    let out = reconcile_cancellations(
        &ordered(&[("1", 2), ("2", 1), ("3", 1), ("4", 1)]),
        &[whole_cancel()],
        &shipments,
    );
    assert_eq!(
        out,
        [
            Adjustment::Cancel { shipment: 0 },
            Adjustment::Cancel { shipment: 1 }
        ]
    );
}

#[test]
fn a_line_cancellation_takes_units_from_the_latest_open_shipment() {
    let shipments = [
        contents(0, ShipmentState::Requested, &[("1", 3), ("2", 1)]),
        contents(1, ShipmentState::Requested, &[("1", 2)]),
    ];
    let order = ordered(&[("1", 5), ("2", 1)]);
    let out = reconcile_cancellations(&order, &[lines_cancel(&[("1", 3)])], &shipments);
    assert_eq!(
        out,
        [
            Adjustment::SetQuantity {
                shipment: 0,
                line_id: "1".into(),
                quantity: 2
            },
            Adjustment::SetQuantity {
                shipment: 1,
                line_id: "1".into(),
                quantity: 0
            },
            Adjustment::Cancel { shipment: 1 },
        ]
    );
}

#[test]
fn line_cancellations_are_reconciled_not_subtracted() {
    // Applied once: line 1 goes from 5 to 3 units.
    let before = [contents(0, ShipmentState::Requested, &[("1", 5), ("2", 1)])];
    let order = ordered(&[("1", 5), ("2", 1)]);
    let cancel = [lines_cancel(&[("1", 2)])];
    let out = reconcile_cancellations(&order, &cancel, &before);
    assert_eq!(
        out,
        [Adjustment::SetQuantity {
            shipment: 0,
            line_id: "1".into(),
            quantity: 3
        }]
    );
    // Applied again to the result: nothing more. (This is also the case of an allocation
    // from which inventory had already left the cancelled units out.)
    let after = [contents(0, ShipmentState::Requested, &[("1", 3), ("2", 1)])];
    assert!(reconcile_cancellations(&order, &cancel, &after).is_empty());
    // Two distinct cancellation requests of 2 units each cancel 4 of the 5 units: 1 is left.
    let twice = [lines_cancel(&[("1", 2)]), lines_cancel(&[("1", 2)])];
    assert_eq!(
        reconcile_cancellations(&order, &twice, &after),
        [Adjustment::SetQuantity {
            shipment: 0,
            line_id: "1".into(),
            quantity: 1
        }]
    );
}

#[test]
fn dispatched_shipments_are_untouched_by_line_cancellations() {
    let shipments = [
        contents(0, ShipmentState::InTransit, &[("1", 2)]),
        contents(1, ShipmentState::Requested, &[("1", 2), ("2", 1)]),
    ];
    let order = ordered(&[("1", 4), ("2", 1)]);
    // Cancel 3 of line 1: only 2 are still open; the dispatched 2 stay.
    let out = reconcile_cancellations(&order, &[lines_cancel(&[("1", 3)])], &shipments);
    assert_eq!(
        out,
        [Adjustment::SetQuantity {
            shipment: 1,
            line_id: "1".into(),
            quantity: 0
        }]
    );
    // Cancelling line 2 as well empties shipment 1: it is cancelled.
    let out = reconcile_cancellations(
        &order,
        &[lines_cancel(&[("1", 3)]), lines_cancel(&[("2", 1)])],
        &shipments,
    );
    assert!(out.contains(&Adjustment::Cancel { shipment: 1 }));
    assert!(!out.iter().any(|a| matches!(
        a,
        Adjustment::SetQuantity { shipment: 0, .. } | Adjustment::Cancel { shipment: 0 }
    )));
}

#[test]
fn cancellations_of_unknown_lines_are_ignored() {
    let shipments = [contents(0, ShipmentState::Requested, &[("1", 2)])];
    let out = reconcile_cancellations(
        &ordered(&[("1", 2)]),
        &[lines_cancel(&[("9", 1)])],
        &shipments,
    );
    assert!(out.is_empty());
}

#[test]
fn cancellations_received_before_the_allocation_shrink_the_plan() {
    let order = golden_order();
    let allocations = [
        alloc("berlin-1", &[("1", "MUG-BLU-350", 2)]),
        alloc("hamburg-2", &[("2", "TEA-EARL-100", 1)]),
    ];
    let mut plan = plan_shipments(&order, &allocations).expect("plan");
    apply_cancellations_to_plan(&order, &[lines_cancel(&[("2", 1), ("1", 1)])], &mut plan);
    assert_eq!(plan[0].items[0].quantity, 1);
    assert!(!plan[0].cancelled);
    assert_eq!(plan[1].items[0].quantity, 0);
    assert!(plan[1].cancelled);

    let mut plan = plan_shipments(&order, &allocations).expect("plan");
    apply_cancellations_to_plan(&order, &[whole_cancel()], &mut plan);
    assert!(plan.iter().all(|s| s.cancelled));
}
