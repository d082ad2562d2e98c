//! Shipment states, the tracking state machine and the notices it owes.

use super::*;

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

/// Arrival-order properties of [`derive`] over generated histories. Event times come from a
/// tiny range, so many events share an instant (and often a status) and differ only by their
/// message id: arrival order is then not erased by a unique sort key, and the result must
/// still not depend on it. Proptest shrinks a failure to the smallest history and arrival.
mod arrival_order {
    use proptest::prelude::*;

    use super::*;

    /// Carrier events with distinct message ids, times in minutes 1..=3.
    fn history() -> impl Strategy<Value = Vec<Observation>> {
        let event = (prop::sample::select(S::ALL), 1u32..=3);
        prop::collection::vec(event, 1..9).prop_map(|events| {
            (1u128..)
                .zip(events)
                .map(|(n, (status, minute))| obs(status, minute, n))
                .collect()
        })
    }

    /// A history and an arrival of it: a permutation with duplicates (index, position)
    /// inserted, as a carrier resending an event or the broker redelivering it gives.
    fn history_and_arrival() -> impl Strategy<Value = (Vec<Observation>, Vec<Observation>)> {
        history().prop_flat_map(|events| {
            let n = events.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let duplicates = prop::collection::vec((0..n, 0..=n), 0..4);
            (Just(events), order, duplicates).prop_map(|(events, order, duplicates)| {
                let mut arrival: Vec<Observation> = order.iter().map(|&i| events[i]).collect();
                for (i, at) in duplicates {
                    arrival.insert(at.min(arrival.len()), events[i]);
                }
                (events, arrival)
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_arrival_order_with_equal_times_and_duplicates_ends_in_the_in_order_state(
            (events, arrival) in history_and_arrival()
        ) {
            let in_order = arrive(&events);
            let arrived = arrive(&arrival);
            prop_assert_eq!(arrived.last(), in_order.last(), "arrived {:?}", arrival);
            // As the worker sees it: after each arrival, the state derived from what came so
            // far. Once delivered, only returned; returned stays; dispatched stays.
            for pair in arrived.windows(2) {
                let (before, after) = (pair[0].state, pair[1].state);
                if before == ShipmentState::Returned {
                    prop_assert_eq!(after, ShipmentState::Returned);
                }
                if before == ShipmentState::Delivered {
                    prop_assert!(
                        matches!(after, ShipmentState::Delivered | ShipmentState::Returned),
                        "delivered then {}", after
                    );
                }
                if before.is_dispatched() {
                    prop_assert!(after.is_dispatched(), "{} then {}", before, after);
                }
            }
        }
    }
}
