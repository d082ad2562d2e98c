//! The status machine: the transition table, and every arrival order of the same facts.

use super::*;

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
    assert_eq!(t, vec![Transition::new(None, OrderStatus::Accepted)]);
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

/// Arrival-order properties of the status machine, over generated histories: an order's
/// messages (a backorder, one reservation, releases, dispatches and deliveries of up to four
/// shipments) are delivered in a random order with random duplicates, and the end state must
/// be the one the history reaches in the order it was generated. Proptest shrinks a failure
/// to the shortest history and arrival order that show it.
mod arrival_order {
    use proptest::prelude::*;

    use super::*;

    /// (warehouse, line, units), from small ranges so that histories collide often.
    fn units() -> impl Strategy<Value = Units> {
        (0u8..3, 0u8..3, 1u32..4).prop_map(|(w, l, quantity)| Units {
            warehouse_id: format!("w{w}"),
            line_id: format!("{l}"),
            quantity,
        })
    }

    /// The messages about one accepted order, in the order they were generated.
    fn history() -> impl Strategy<Value = Vec<Event>> {
        let shipment = (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((0u8..3, 1u32..4), 0..3),
        );
        (
            any::<bool>(),
            prop::collection::vec(units(), 0..4),
            prop::collection::vec(prop::collection::vec(units(), 1..3), 0..3),
            prop::collection::vec(shipment, 0..4),
        )
            .prop_map(|(unavailable, reserved, releases, shipments)| {
                let mut events = Vec::new();
                if unavailable {
                    events.push(Event::StockUnavailable);
                }
                if !reserved.is_empty() {
                    events.push(Event::StockReserved(reserved));
                }
                events.extend(releases.into_iter().map(Event::StockReleased));
                for (n, (dispatched, delivered, items)) in (1u128..).zip(shipments) {
                    let shipment_id = Uuid::from_u128(n);
                    if dispatched {
                        let items = items.into_iter().map(|(l, q)| (format!("{l}"), q));
                        events.push(Event::Dispatched {
                            shipment_id,
                            items: items.collect(),
                        });
                    }
                    if delivered {
                        events.push(Event::Delivered { shipment_id });
                    }
                }
                events
            })
    }

    /// A history, and an arrival of it: a permutation of its messages with duplicates
    /// (message index, position) inserted. Releases are not duplicated: they add units, and
    /// a redelivered release is stopped by the inbox before it reaches the domain.
    fn history_and_arrival() -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
        history().prop_flat_map(|events| {
            let n = events.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let duplicates = prop::collection::vec((0..n.max(1), 0..=n), 0..4);
            (Just(events), order, duplicates).prop_map(|(events, order, duplicates)| {
                let mut arrival: Vec<Event> = order.iter().map(|&i| events[i].clone()).collect();
                for (i, at) in duplicates {
                    if let Some(event) = events.get(i)
                        && !matches!(event, Event::StockReleased(_))
                    {
                        arrival.insert(at.min(arrival.len()), event.clone());
                    }
                }
                (events, arrival)
            })
        })
    }

    /// Handles `events` one at a time from an accepted order: end status, end facts, and how
    /// often the order completed. Checks on the way that the status never goes backwards.
    fn run(events: &[Event]) -> Result<(Option<OrderStatus>, Facts, usize), TestCaseError> {
        let mut status = Some(OrderStatus::Accepted);
        let mut facts = accepted_facts();
        let mut completions = 0;
        for event in events {
            let before = status;
            facts.apply(event);
            let transitions = decide(status, &facts)
                .map_err(|e| TestCaseError::fail(format!("{e} after {event:?}")))?;
            for t in transitions {
                prop_assert_eq!(t.from, status, "transitions chain");
                prop_assert!(can_transition(t.from, t.to), "{:?} → {}", t.from, t.to);
                completions += usize::from(t.to == OrderStatus::Completed);
                status = Some(t.to);
            }
            prop_assert!(
                rank(status.expect("set")) >= rank(before.expect("set")),
                "{:?} went back to {:?} on {:?}",
                before,
                status,
                event
            );
        }
        Ok((status, facts, completions))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_arrival_order_with_duplicates_ends_in_the_in_order_state(
            (events, arrival) in history_and_arrival()
        ) {
            let (in_order, in_order_facts, in_order_completions) = run(&events)?;
            let (arrived, arrived_facts, arrived_completions) = run(&arrival)?;
            prop_assert_eq!(arrived, in_order, "status");
            prop_assert_eq!(arrived_facts, in_order_facts, "facts");
            prop_assert_eq!(arrived_completions, in_order_completions, "completions");
            prop_assert!(arrived_completions <= 1, "completed twice");
        }
    }
}

/// An order with two service lines set up after the order: whatever order the shipment's
/// delivery and the two setups' completions arrive in, it completes once, when the last of
/// them arrives, and stays `delivered` before.
#[test]
fn an_order_with_setups_completes_when_the_last_setup_and_delivery_are_in() {
    let a = Uuid::now_v7();
    let events = vec![
        Event::Delivered { shipment_id: a },
        Event::SetupCompleted {
            line_id: "2".into(),
        },
        Event::SetupCompleted {
            line_id: "3".into(),
        },
    ];
    for order in permutations(&events) {
        let mut status = Some(OrderStatus::Processing);
        let mut facts = accepted_facts();
        facts.setups = [("2".to_owned(), false), ("3".to_owned(), false)].into();
        facts.apply(&Event::StockReserved(vec![Units {
            warehouse_id: "berlin".into(),
            line_id: "1".into(),
            quantity: 1,
        }]));
        facts.apply(&Event::Dispatched {
            shipment_id: a,
            items: vec![("1".into(), 1), ("2".into(), 1), ("3".into(), 1)],
        });
        let _ = step(&mut status, &mut facts, &Event::Accepted);
        assert_eq!(status, Some(OrderStatus::Shipped));
        let mut completions = 0;
        for (i, event) in order.iter().enumerate() {
            for t in step(&mut status, &mut facts, event) {
                completions += usize::from(t.to == OrderStatus::Completed);
            }
            let last = i + 1 == order.len();
            let delivered = order[..=i]
                .iter()
                .any(|e| matches!(e, Event::Delivered { .. }));
            let expected = match (last, delivered) {
                (true, _) => OrderStatus::Completed,
                (false, true) => OrderStatus::Delivered,
                (false, false) => OrderStatus::Shipped,
            };
            assert_eq!(
                status,
                Some(expected),
                "after {:?} of {order:?}",
                &order[..=i]
            );
            assert!(!facts.apply(event), "a duplicate {event:?} is nothing new");
        }
        assert_eq!(completions, 1, "{order:?}");
    }
}

#[test]
fn a_setup_of_a_line_not_waited_for_changes_nothing() {
    let mut facts = accepted_facts();
    assert!(
        facts.setups_done(),
        "an order without setups waits for none"
    );
    assert!(!facts.apply(&Event::SetupCompleted {
        line_id: "9".into()
    }));
    assert!(facts.setups_done());
}

/// An order of services only is reserved in no warehouse: it is `processing` and
/// `delivered` at once (nothing to ship, said on each change), and completes with its last
/// setup, saying so.
#[test]
fn an_order_with_nothing_to_ship_is_delivered_at_once_and_completes_with_its_setups() {
    let mut facts = accepted_facts();
    facts.setups = [("1".to_owned(), false)].into();
    assert!(facts.apply(&Event::StockReserved(Vec::new())));
    assert!(facts.nothing_to_ship());
    let t = decide(Some(OrderStatus::Accepted), &facts).unwrap();
    let moves: Vec<_> = t
        .iter()
        .map(|t| (t.from, t.to, t.nothing_to_ship))
        .collect();
    assert_eq!(
        moves,
        [
            (Some(OrderStatus::Accepted), OrderStatus::Processing, true),
            (Some(OrderStatus::Processing), OrderStatus::Delivered, true),
        ]
    );
    assert!(
        t.iter()
            .all(|t| t.why.is_some_and(|w| w.contains("Nothing to ship")))
    );
    assert!(facts.apply(&Event::SetupCompleted {
        line_id: "1".into()
    }));
    let t = decide(Some(OrderStatus::Delivered), &facts).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, OrderStatus::Completed);
    assert_eq!(t[0].why, Some("Every setup completed (nothing to ship)"));
    // Goods shipped and setups done: both said.
    let mut goods = accepted_facts();
    goods.setups = [("2".to_owned(), true)].into();
    goods.apply(&Event::StockReserved(vec![Units {
        warehouse_id: "berlin".into(),
        line_id: "1".into(),
        quantity: 1,
    }]));
    assert!(!goods.nothing_to_ship());
    assert_eq!(
        goods.completion(),
        "Every shipment delivered and every setup completed"
    );
    assert_eq!(accepted_facts().completion(), "Every shipment delivered");
}
