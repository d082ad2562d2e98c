//! Unit tests of the pure rules, with plain values.

use chrono::TimeZone;
use orderly_contracts::Validate;
use orderly_contracts::messages::{AllocatedLine, OrderAccepted};
use orderly_contracts::types::Quantity;

use super::*;

use ShipmentStatus as S;

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 8, minute, 0)
        .single()
        .expect("valid time")
}

fn obs(status: ShipmentStatus, minute: u32, n: u128) -> Observation {
    Observation {
        at: t(minute),
        status,
        source: Uuid::from_u128(n),
    }
}

fn state_of(events: &[Observation]) -> ShipmentState {
    derive(events).state
}

// --- vocabularies ---------------------------------------------------------------------------

#[test]
fn easypost_words() {
    let v = StatusVocabulary::Easypost;
    for (raw, expected) in [
        ("pre_transit", StatusMapping::Status(S::LabelCreated)),
        ("in_transit", StatusMapping::Status(S::InTransit)),
        ("out_for_delivery", StatusMapping::Status(S::OutForDelivery)),
        ("delivered", StatusMapping::Status(S::Delivered)),
        ("available_for_pickup", StatusMapping::Status(S::Delivered)),
        ("return_to_sender", StatusMapping::Status(S::Returned)),
        ("failure", StatusMapping::Status(S::DeliveryFailed)),
        ("cancelled", StatusMapping::Status(S::Exception)),
        ("error", StatusMapping::Status(S::Exception)),
        ("unknown", StatusMapping::NoStatus),
    ] {
        assert_eq!(map_status(v, raw), expected, "{raw}");
        assert_eq!(map_status(v, &raw.to_uppercase()), expected, "{raw} upper");
    }
    assert_eq!(EASYPOST.len(), 10, "every EasyPost word is tested above");
}

#[test]
fn aftership_tags() {
    let v = StatusVocabulary::Aftership;
    for (raw, expected) in [
        ("InfoReceived", StatusMapping::Status(S::LabelCreated)),
        ("InTransit", StatusMapping::Status(S::InTransit)),
        ("OutForDelivery", StatusMapping::Status(S::OutForDelivery)),
        ("AttemptFail", StatusMapping::Status(S::DeliveryFailed)),
        ("Delivered", StatusMapping::Status(S::Delivered)),
        ("AvailableForPickup", StatusMapping::Status(S::Delivered)),
        ("Exception", StatusMapping::Status(S::Exception)),
        ("Expired", StatusMapping::Status(S::Exception)),
        ("Pending", StatusMapping::NoStatus),
    ] {
        assert_eq!(map_status(v, raw), expected, "{raw}");
        assert_eq!(map_status(v, &raw.to_lowercase()), expected, "{raw} lower");
        assert_eq!(map_status(v, &raw.to_uppercase()), expected, "{raw} upper");
    }
    assert_eq!(AFTERSHIP.len(), 9, "every AfterShip tag is tested above");
}

#[test]
fn shippo_statuses() {
    let v = StatusVocabulary::Shippo;
    for (raw, expected) in [
        ("PRE_TRANSIT", StatusMapping::Status(S::LabelCreated)),
        ("TRANSIT", StatusMapping::Status(S::InTransit)),
        ("DELIVERED", StatusMapping::Status(S::Delivered)),
        ("RETURNED", StatusMapping::Status(S::Returned)),
        ("FAILURE", StatusMapping::Status(S::Exception)),
        ("UNKNOWN", StatusMapping::NoStatus),
    ] {
        assert_eq!(map_status(v, raw), expected, "{raw}");
        assert_eq!(map_status(v, &raw.to_lowercase()), expected, "{raw} lower");
    }
    assert_eq!(SHIPPO.len(), 6, "every Shippo status is tested above");
}

#[test]
fn orderly_words() {
    let v = StatusVocabulary::Orderly;
    for status in S::ALL {
        assert_eq!(
            map_status(v, status.as_str()),
            StatusMapping::Status(*status)
        );
        assert_eq!(
            map_status(v, &status.as_str().to_uppercase()),
            StatusMapping::Status(*status)
        );
    }
    assert_eq!(ORDERLY.len(), S::ALL.len());
}

#[test]
fn unknown_words_are_unrecognised_not_errors() {
    for v in [
        StatusVocabulary::Easypost,
        StatusVocabulary::Aftership,
        StatusVocabulary::Shippo,
        StatusVocabulary::Orderly,
    ] {
        assert_eq!(map_status(v, "teleported"), StatusMapping::Unrecognised);
        assert_eq!(map_status(v, ""), StatusMapping::Unrecognised);
        assert_eq!(map_status(v, "teleported").status(), None);
    }
    // Words of one vocabulary mean nothing in another.
    assert_eq!(
        map_status(StatusVocabulary::Shippo, "in_transit"),
        StatusMapping::Unrecognised
    );
    assert_eq!(
        map_status(StatusVocabulary::Easypost, "AttemptFail"),
        StatusMapping::Unrecognised
    );
    assert_eq!(
        map_status(StatusVocabulary::Aftership, " Delivered "),
        StatusMapping::Status(S::Delivered),
        "surrounding spaces are ignored"
    );
}

#[test]
fn states_round_trip_and_classify() {
    for state in ShipmentState::ALL {
        assert_eq!(ShipmentState::parse(state.as_str()), Some(state));
    }
    assert_eq!(ShipmentState::parse("lost"), None);
    for status in S::ALL {
        assert_eq!(
            ShipmentState::from_status(*status).as_str(),
            status.as_str()
        );
    }
    let dispatched: Vec<_> = ShipmentState::ALL
        .into_iter()
        .filter(|s| s.is_dispatched())
        .collect();
    assert_eq!(
        dispatched,
        [
            ShipmentState::InTransit,
            ShipmentState::OutForDelivery,
            ShipmentState::Delivered,
            ShipmentState::DeliveryFailed,
            ShipmentState::Exception,
            ShipmentState::Returned
        ]
    );
    let open: Vec<_> = ShipmentState::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .collect();
    assert_eq!(
        open,
        [ShipmentState::Requested, ShipmentState::LabelCreated]
    );
}

// --- the state machine --------------------------------------------------------------------

#[test]
fn the_main_chain_moves_up() {
    let events = [
        obs(S::LabelCreated, 1, 1),
        obs(S::InTransit, 2, 2),
        obs(S::OutForDelivery, 3, 3),
        obs(S::Delivered, 4, 4),
    ];
    let tracking = derive(&events);
    assert_eq!(tracking.state, ShipmentState::Delivered);
    assert_eq!(tracking.since, Some(t(4)));
    assert_eq!(tracking.cause, Some(Uuid::from_u128(4)));
    assert_eq!(tracking.dispatched_at, Some(t(2)), "first carrier scan");
}

#[test]
fn no_events_is_requested() {
    assert_eq!(derive(&[]), Tracking::REQUESTED);
}

#[test]
fn label_created_is_not_dispatched() {
    let tracking = derive(&[obs(S::LabelCreated, 1, 1)]);
    assert_eq!(tracking.state, ShipmentState::LabelCreated);
    assert_eq!(tracking.dispatched_at, None);
    assert!(due_notices(&tracking, &[]).is_empty());
}

#[test]
fn late_in_transit_after_delivered_changes_nothing() {
    // A later timestamp, lower rank: no.
    let events = [obs(S::Delivered, 5, 1), obs(S::InTransit, 6, 2)];
    assert_eq!(state_of(&events), ShipmentState::Delivered);
    // An older timestamp, arriving later: no.
    let events = [
        obs(S::InTransit, 1, 1),
        obs(S::Delivered, 5, 2),
        obs(S::InTransit, 3, 3),
    ];
    let tracking = derive(&events);
    assert_eq!(tracking.state, ShipmentState::Delivered);
    assert_eq!(tracking.cause, Some(Uuid::from_u128(2)));
}

#[test]
fn lower_ranks_never_move_the_state_back() {
    for (from, lower) in [
        (S::InTransit, S::LabelCreated),
        (S::OutForDelivery, S::InTransit),
        (S::OutForDelivery, S::LabelCreated),
        (S::Delivered, S::OutForDelivery),
        (S::Delivered, S::LabelCreated),
    ] {
        let events = [obs(from, 1, 1), obs(lower, 2, 2)];
        assert_eq!(
            state_of(&events),
            ShipmentState::from_status(from),
            "{lower} after {from}"
        );
    }
}

#[test]
fn duplicates_change_nothing() {
    let once = derive(&[obs(S::InTransit, 1, 1), obs(S::Delivered, 2, 2)]);
    let twice = derive(&[
        obs(S::InTransit, 1, 1),
        obs(S::InTransit, 1, 3),
        obs(S::Delivered, 2, 2),
        obs(S::Delivered, 2, 4),
        obs(S::Delivered, 2, 2),
    ]);
    assert_eq!(once.state, twice.state);
    assert_eq!(once.since, twice.since);
    assert_eq!(once.dispatched_at, twice.dispatched_at);
    // The same event applied to the state it produced is a no-op.
    let e = obs(S::OutForDelivery, 3, 9);
    let after = Tracking::REQUESTED.step(&e).expect("moves");
    assert_eq!(after.step(&e), None);
}

#[test]
fn side_states_are_entered_from_transit_and_left_by_later_progress() {
    // Entered from in_transit and out_for_delivery.
    assert_eq!(
        state_of(&[obs(S::InTransit, 1, 1), obs(S::DeliveryFailed, 2, 2)]),
        ShipmentState::DeliveryFailed
    );
    assert_eq!(
        state_of(&[obs(S::OutForDelivery, 1, 1), obs(S::Exception, 2, 2)]),
        ShipmentState::Exception
    );
    // Not from requested or label_created.
    assert_eq!(
        state_of(&[obs(S::Exception, 2, 2)]),
        ShipmentState::Requested
    );
    assert_eq!(
        state_of(&[obs(S::LabelCreated, 1, 1), obs(S::DeliveryFailed, 2, 2)]),
        ShipmentState::LabelCreated
    );
    // Not from delivered.
    assert_eq!(
        state_of(&[obs(S::Delivered, 1, 1), obs(S::Exception, 2, 2)]),
        ShipmentState::Delivered
    );
    // Left by later in_transit, out_for_delivery, delivered.
    for leave in [S::InTransit, S::OutForDelivery, S::Delivered] {
        for side in [S::DeliveryFailed, S::Exception] {
            let events = [
                obs(S::OutForDelivery, 1, 1),
                obs(side, 2, 2),
                obs(leave, 3, 3),
            ];
            assert_eq!(
                state_of(&events),
                ShipmentState::from_status(leave),
                "{leave} after {side}"
            );
            // ... but not by one at the same instant (not later).
            let side_state = Tracking::REQUESTED
                .step(&obs(S::OutForDelivery, 1, 1))
                .and_then(|t| t.step(&obs(side, 2, 2)))
                .expect("side state");
            assert_eq!(side_state.step(&obs(leave, 2, 3)), None);
            // ... and never by label_created.
            assert_eq!(side_state.step(&obs(S::LabelCreated, 9, 3)), None);
        }
    }
    // One side state to the other, later.
    assert_eq!(
        state_of(&[
            obs(S::OutForDelivery, 1, 1),
            obs(S::DeliveryFailed, 2, 2),
            obs(S::Exception, 3, 3)
        ]),
        ShipmentState::Exception
    );
    // A repeated failed attempt is the same state.
    let failed = derive(&[
        obs(S::OutForDelivery, 1, 1),
        obs(S::DeliveryFailed, 2, 2),
        obs(S::DeliveryFailed, 3, 3),
    ]);
    assert_eq!(failed.state, ShipmentState::DeliveryFailed);
    assert_eq!(failed.since, Some(t(2)), "the first failure moved it");
}

#[test]
fn an_older_side_event_arriving_late_does_not_undo_later_progress() {
    // Out for delivery at 3; a failed attempt stamped 2 arrives afterwards.
    let events = [
        obs(S::InTransit, 1, 1),
        obs(S::OutForDelivery, 3, 2),
        obs(S::DeliveryFailed, 2, 3),
    ];
    assert_eq!(state_of(&events), ShipmentState::OutForDelivery);
}

#[test]
fn returned_is_terminal_and_delivered_only_leads_to_returned() {
    assert_eq!(
        state_of(&[obs(S::Delivered, 1, 1), obs(S::Returned, 2, 2)]),
        ShipmentState::Returned
    );
    for after in S::ALL {
        assert_eq!(
            state_of(&[
                obs(S::InTransit, 1, 1),
                obs(S::Returned, 2, 2),
                obs(*after, 3, 3)
            ]),
            ShipmentState::Returned,
            "{after} after returned"
        );
    }
    // Returned from anywhere that is not terminal.
    for before in [
        S::LabelCreated,
        S::InTransit,
        S::OutForDelivery,
        S::Exception,
    ] {
        let events = [
            obs(S::InTransit, 1, 1),
            obs(before, 2, 2),
            obs(S::Returned, 3, 3),
        ];
        assert_eq!(state_of(&events), ShipmentState::Returned, "after {before}");
    }
    let tracking = derive(&[obs(S::Returned, 1, 1)]);
    assert_eq!(
        tracking.dispatched_at,
        Some(t(1)),
        "returned goods had left"
    );
}

#[test]
fn a_cancelled_shipment_never_moves() {
    let cancelled = Tracking {
        state: ShipmentState::Cancelled,
        ..Tracking::REQUESTED
    };
    for status in S::ALL {
        assert_eq!(cancelled.step(&obs(*status, 1, 1)), None, "{status}");
    }
}

#[test]
fn every_transition_of_the_table() {
    // (from, event, to): the whole table from each state, with the event later than the
    // state's own event. `None` means no change.
    use ShipmentState as St;
    type Row = (S, Option<St>);
    let table: &[(St, &[Row])] = &[
        (
            St::Requested,
            &[
                (S::LabelCreated, Some(St::LabelCreated)),
                (S::InTransit, Some(St::InTransit)),
                (S::OutForDelivery, Some(St::OutForDelivery)),
                (S::Delivered, Some(St::Delivered)),
                (S::DeliveryFailed, None),
                (S::Exception, None),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (
            St::LabelCreated,
            &[
                (S::LabelCreated, None),
                (S::InTransit, Some(St::InTransit)),
                (S::OutForDelivery, Some(St::OutForDelivery)),
                (S::Delivered, Some(St::Delivered)),
                (S::DeliveryFailed, None),
                (S::Exception, None),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (
            St::InTransit,
            &[
                (S::LabelCreated, None),
                (S::InTransit, None),
                (S::OutForDelivery, Some(St::OutForDelivery)),
                (S::Delivered, Some(St::Delivered)),
                (S::DeliveryFailed, Some(St::DeliveryFailed)),
                (S::Exception, Some(St::Exception)),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (
            St::OutForDelivery,
            &[
                (S::LabelCreated, None),
                (S::InTransit, None),
                (S::OutForDelivery, None),
                (S::Delivered, Some(St::Delivered)),
                (S::DeliveryFailed, Some(St::DeliveryFailed)),
                (S::Exception, Some(St::Exception)),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (
            St::Delivered,
            &[
                (S::LabelCreated, None),
                (S::InTransit, None),
                (S::OutForDelivery, None),
                (S::Delivered, None),
                (S::DeliveryFailed, None),
                (S::Exception, None),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (
            St::DeliveryFailed,
            &[
                (S::LabelCreated, None),
                (S::InTransit, Some(St::InTransit)),
                (S::OutForDelivery, Some(St::OutForDelivery)),
                (S::Delivered, Some(St::Delivered)),
                (S::DeliveryFailed, None),
                (S::Exception, Some(St::Exception)),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (
            St::Exception,
            &[
                (S::LabelCreated, None),
                (S::InTransit, Some(St::InTransit)),
                (S::OutForDelivery, Some(St::OutForDelivery)),
                (S::Delivered, Some(St::Delivered)),
                (S::DeliveryFailed, Some(St::DeliveryFailed)),
                (S::Exception, None),
                (S::Returned, Some(St::Returned)),
            ],
        ),
        (St::Returned, &[]),
        (St::Cancelled, &[]),
    ];
    assert_eq!(table.len(), ShipmentState::ALL.len());
    for (from, rows) in table {
        let current = Tracking {
            state: *from,
            since: Some(t(1)),
            cause: Some(Uuid::from_u128(1)),
            dispatched_at: from.is_dispatched().then(|| t(1)),
        };
        for status in S::ALL {
            let expected = rows
                .iter()
                .find(|(s, _)| s == status)
                .and_then(|(_, to)| *to);
            let got = current.step(&obs(*status, 2, 2)).map(|t| t.state);
            assert_eq!(got, expected, "{from} + {status}");
        }
    }
}

/// All orderings of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, a: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        heap(k - 1, a, out);
        for i in 0..k - 1 {
            if k.is_multiple_of(2) {
                a.swap(i, k - 1);
            } else {
                a.swap(0, k - 1);
            }
            heap(k - 1, a, out);
        }
    }
    let mut a = items.to_vec();
    let mut out = Vec::new();
    heap(a.len(), &mut a, &mut out);
    out
}

/// Handles events one at a time as the worker does: after each arrival the state is derived
/// from everything received so far. Returns the states after each arrival.
fn arrive(events: &[Observation]) -> Vec<Tracking> {
    (1..=events.len()).map(|n| derive(&events[..n])).collect()
}

#[test]
fn the_example_sequence_in_all_24_orders() {
    // The carrier's course: label, pickup, delivery, and a late stray in_transit scan.
    let events = [
        obs(S::LabelCreated, 1, 1),
        obs(S::InTransit, 2, 2),
        obs(S::Delivered, 4, 3),
        obs(S::InTransit, 5, 4),
    ];
    let perms = permutations(&events);
    assert_eq!(perms.len(), 24);
    for order in perms {
        let states = arrive(&order);
        let last = states.last().expect("four states");
        assert_eq!(last.state, ShipmentState::Delivered, "{order:?}");
        assert_eq!(last.since, Some(t(4)));
        assert_eq!(last.dispatched_at, Some(t(2)));
    }
}

#[test]
fn any_four_events_in_any_order_end_in_the_same_state() {
    // Every combination of 4 statuses (7^4) under several timings (distinct, reversed,
    // ties), each in all 24 arrival orders: same final state, and along the way the state
    // never leaves delivered/returned once there, nor un-dispatches.
    let timings: [[u32; 4]; 6] = [
        [1, 2, 3, 4],
        [4, 3, 2, 1],
        [1, 1, 2, 2],
        [2, 1, 2, 1],
        [1, 1, 1, 1],
        [1, 3, 1, 2],
    ];
    let mut checked = 0usize;
    for a in S::ALL {
        for b in S::ALL {
            for c in S::ALL {
                for d in S::ALL {
                    for times in &timings {
                        let events: Vec<Observation> = [*a, *b, *c, *d]
                            .iter()
                            .zip(times)
                            .zip(1u128..)
                            .map(|((s, m), n)| obs(*s, *m, n))
                            .collect();
                        let expected = derive(&events);
                        for order in permutations(&events) {
                            let states = arrive(&order);
                            assert_eq!(states.last(), Some(&expected), "{order:?}");
                            for pair in states.windows(2) {
                                let (before, after) = (pair[0].state, pair[1].state);
                                if before == ShipmentState::Returned {
                                    assert_eq!(after, ShipmentState::Returned, "{order:?}");
                                }
                                if before == ShipmentState::Delivered {
                                    assert!(
                                        matches!(
                                            after,
                                            ShipmentState::Delivered | ShipmentState::Returned
                                        ),
                                        "{order:?}"
                                    );
                                }
                                if before.is_dispatched() {
                                    assert!(after.is_dispatched(), "{order:?}");
                                }
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 7usize.pow(4) * 6 * 24);
}

// --- notices ---------------------------------------------------------------------------------

#[test]
fn notices_are_owed_once() {
    let dispatched = derive(&[obs(S::InTransit, 1, 1)]);
    assert_eq!(due_notices(&dispatched, &[]), [Notice::Dispatched]);
    assert!(due_notices(&dispatched, &[Notice::Dispatched]).is_empty());

    let delivered = derive(&[obs(S::Delivered, 1, 1)]);
    assert_eq!(
        due_notices(&delivered, &[]),
        [Notice::Dispatched, Notice::Delivered],
        "straight to delivered still dispatches first"
    );
    assert_eq!(
        due_notices(&delivered, &[Notice::Dispatched]),
        [Notice::Delivered]
    );
    assert!(due_notices(&delivered, &[Notice::Dispatched, Notice::Delivered]).is_empty());

    for (status, state) in [
        (S::DeliveryFailed, ShipmentState::DeliveryFailed),
        (S::Exception, ShipmentState::Exception),
        (S::Returned, ShipmentState::Returned),
    ] {
        let tracking = derive(&[obs(S::InTransit, 1, 1), obs(status, 2, 2)]);
        assert_eq!(tracking.state, state);
        assert_eq!(
            due_notices(&tracking, &[Notice::Dispatched]),
            [Notice::Exception(status)]
        );
        assert!(
            due_notices(&tracking, &[Notice::Dispatched, Notice::Exception(status)]).is_empty()
        );
    }
    assert!(due_notices(&Tracking::REQUESTED, &[]).is_empty());
}

#[test]
fn notice_keys_round_trip() {
    let mut all = vec![Notice::Dispatched, Notice::Delivered];
    all.extend(S::ALL.iter().map(|s| Notice::Exception(*s)));
    for notice in all {
        assert_eq!(Notice::parse(&notice.key()), Some(notice));
    }
    assert_eq!(Notice::Exception(S::Returned).key(), "exception:returned");
    assert_eq!(Notice::parse("exception:lost"), None);
    assert_eq!(Notice::parse("shipped"), None);
}

// --- shipments and cancellations -------------------------------------------------------------

fn golden_order() -> OrderAccepted {
    let example = (orderly_contracts::catalog::spec("order.accepted", 1)
        .expect("order.accepted v1")
        .example)();
    serde_json::from_value::<orderly_contracts::RawEnvelope>(example)
        .expect("envelope")
        .decode_valid::<OrderAccepted>()
        .expect("valid example")
        .payload
}

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

// --- invoices --------------------------------------------------------------------------------

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

#[test]
fn an_order_invoice_is_the_whole_order() {
    let order = golden_order();
    let id = Uuid::from_u128(7);
    let invoice = invoice_for_order(&order, id);
    invoice.validate().expect("valid invoice.requested");
    assert_eq!(invoice.request_id, id);
    assert_eq!(invoice.timing, InvoiceTiming::OnOrder);
    assert_eq!(invoice.shipment_id, None);
    assert_eq!(invoice.lines.len(), 2);
    assert_eq!(invoice.shipping, order.shipping);
    assert_eq!(invoice.discount, order.discount);
    assert_eq!(invoice.buyer, order.customer);
    assert_eq!(invoice.lines[1].discount, order.lines[1].discount);
    assert_eq!(invoice.lines[1].tax_category, order.lines[1].tax_category);
}

#[test]
fn shipment_invoices_share_shipping_and_discounts_exactly() {
    let mut order = golden_order();
    // Line 1: 3 units at 10.00 with 1.00 discount; order discount 25.00; shipping 4.95.
    order.lines[0].quantity = Quantity::new(3).expect("3");
    order.lines[0].unit_price = Amount::parse("10.00").expect("price");
    order.lines[0].discount = Amount::parse("1.00").expect("discount");
    order.discount = Amount::parse("25.00").expect("discount");
    let s1 = Uuid::from_u128(1);
    let s2 = Uuid::from_u128(2);
    let s3 = Uuid::from_u128(3);

    // First shipment: 1 unit of line 1 → 10.00 − 0.33, plus shipping 4.95.
    let (first, progress) = invoice_for_shipment(
        &order,
        &InvoiceProgress::default(),
        s1,
        &[("1".into(), 1)],
        Uuid::from_u128(11),
    )
    .expect("first");
    first.validate().expect("valid");
    assert_eq!(first.timing, InvoiceTiming::OnShipment);
    assert_eq!(first.shipment_id, Some(s1));
    assert_eq!(first.lines[0].discount.value(), dec("0.33"));
    assert_eq!(first.shipping, order.shipping);
    // The order discount is capped at what this invoice can carry: 9.67 + 4.95.
    assert_eq!(first.discount.value(), dec("14.62"));
    assert!(progress.shipping_invoiced);

    // Second: 1 unit of line 1 and line 2 (7.50 − 0.75): the rest of the order discount.
    let (second, progress) = invoice_for_shipment(
        &order,
        &progress,
        s2,
        &[("1".into(), 1), ("2".into(), 1)],
        Uuid::from_u128(12),
    )
    .expect("second");
    second.validate().expect("valid");
    assert_eq!(second.shipping.value(), Decimal::ZERO);
    assert_eq!(second.lines[0].discount.value(), dec("0.33"));
    assert_eq!(second.lines[1].discount.value(), dec("0.75"));
    assert_eq!(second.discount.value(), dec("10.38"));

    // Third: the last unit of line 1 takes the rest of its discount (0.34), no more order
    // discount is left.
    let (third, progress) = invoice_for_shipment(
        &order,
        &progress,
        s3,
        &[("1".into(), 1)],
        Uuid::from_u128(13),
    )
    .expect("third");
    third.validate().expect("valid");
    assert_eq!(third.lines[0].discount.value(), dec("0.34"));
    assert_eq!(third.discount.value(), Decimal::ZERO);
    let line1 = progress.lines.get("1").expect("line 1");
    assert_eq!(line1.quantity, 3);
    assert_eq!(line1.discount, dec("1.00"));
    assert_eq!(progress.discount_invoiced, dec("25.00"));
}

#[test]
fn a_shipment_invoice_needs_known_lines_and_units() {
    let order = golden_order();
    let p = InvoiceProgress::default();
    let id = Uuid::from_u128(1);
    assert_eq!(
        invoice_for_shipment(&order, &p, id, &[("9".into(), 1)], id).expect_err("unknown"),
        InvoiceError::UnknownLine("9".into())
    );
    assert_eq!(
        invoice_for_shipment(&order, &p, id, &[("1".into(), 0)], id).expect_err("empty"),
        InvoiceError::Empty
    );
    assert_eq!(
        invoice_for_shipment(&order, &p, id, &[], id).expect_err("empty"),
        InvoiceError::Empty
    );
}

// --- tracking links -------------------------------------------------------------------------

#[test]
fn tracking_urls_for_known_carriers() {
    for carrier in ["dhl", "ups", "dpd", "postnl", "gls"] {
        let url = tracking_url(carrier, "00340434161094042557").expect(carrier);
        assert!(url.starts_with("https://"), "{url}");
        assert!(url.contains("00340434161094042557"), "{url}");
    }
    assert_eq!(
        tracking_url("ups", "1Z 999&x").as_deref(),
        Some("https://www.ups.com/track?tracknum=1Z%20999%26x")
    );
    assert_eq!(tracking_url("hermes", "123"), None);
    assert_eq!(
        tracking_url("DHL", "123"),
        None,
        "carrier codes are lowercase"
    );
}
