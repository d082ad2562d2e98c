//! Unit tests of the decisions, with plain values.

use orderly_contracts::Validate;
use orderly_contracts::messages::{
    CancellationScope, ExceptionResolution, ItemProblem, LineQuantity, OrderPlaced,
};
use orderly_contracts::types::{Amount, Gtin, OrderStatus, Quantity, Sku, TaxCategory};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use serde_json::json;

fn placed(lines: serde_json::Value, total: &str) -> OrderPlaced {
    serde_json::from_value(json!({
        "store_id": "shop-de",
        "channel": "storefront",
        "external_order_id": "100234",
        "revision": 1,
        "placed_at": "2026-03-14T09:26:51Z",
        "currency": "EUR",
        "prices_include_tax": true,
        "customer": {"email": "Joerg@Example.de", "name": "Jörg", "locale": "de-DE", "is_business": false},
        "billing_address": {"name": "Jörg", "lines": ["Hauptstraße 12"], "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "shipping_address": {"name": "Jörg", "lines": ["Hauptstraße 12"], "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "lines": lines,
        "shipping": "4.95",
        "discount": "0.00",
        "total": total,
        "payment": {"status": "authorized", "method": "card"}
    }))
    .expect("test order")
}

fn two_line_order() -> OrderPlaced {
    placed(
        json!([
            {"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 2, "unit_price": "12.90"},
            {"line_id": "2", "sku": "TEA", "title": "Tea", "quantity": 1, "unit_price": "7.50", "discount": "0.75"}
        ]),
        "37.50",
    )
}

fn product(sku: &str, active: bool) -> Product {
    Product {
        sku: Sku::parse(sku).unwrap(),
        title: format!("{sku} (catalog)"),
        tax_category: TaxCategory::Reduced,
        active,
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn matched_lines(p: &OrderPlaced) -> Vec<Line> {
    p.lines
        .iter()
        .map(|l| {
            let mut line = Line::from_placed(l);
            let s = l.sku.clone().unwrap_or_else(|| sku("X"));
            line.matched = Some(MatchedProduct {
                sku: s,
                tax_category: TaxCategory::Standard,
                catalog_title: l.title.clone(),
            });
            line
        })
        .collect()
}

fn head_of(p: &OrderPlaced, status: OrderStatus) -> OrderHead {
    OrderHead::from_placed(Uuid::now_v7(), status, p)
}

fn lq(line: &str, q: u32) -> LineQuantity {
    LineQuantity {
        line_id: line.to_owned(),
        quantity: Quantity::new(q).unwrap(),
    }
}

// ----- matching -----

#[test]
fn sku_lines_match_active_products_only() {
    let p = two_line_order();
    let line = Line::from_placed(&p.lines[0]);
    let active = product("MUG", true);
    let inactive = product("MUG", false);
    match match_line(
        &line,
        &Lookup {
            by_sku: Some(&active),
            ..Lookup::default()
        },
    ) {
        Match::Matched(m) => {
            assert_eq!(m.sku, sku("MUG"));
            assert_eq!(m.tax_category, TaxCategory::Reduced, "catalog's category");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        match_line(
            &line,
            &Lookup {
                by_sku: Some(&inactive),
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: Some(sku("MUG"))
        }
    );
    assert_eq!(
        match_line(&line, &Lookup::default()),
        Match::Unmatched {
            problem: ItemProblem::UnknownSku,
            sku: Some(sku("MUG"))
        }
    );
}

#[test]
fn the_lines_own_tax_category_wins() {
    let p = placed(
        json!([{"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "10.00", "tax_category": "zero"}]),
        "14.95",
    );
    let line = Line::from_placed(&p.lines[0]);
    let prod = product("MUG", true);
    let Match::Matched(m) = match_line(
        &line,
        &Lookup {
            by_sku: Some(&prod),
            ..Lookup::default()
        },
    ) else {
        panic!("should match")
    };
    assert_eq!(m.tax_category, TaxCategory::Zero);
}

fn gtin_line() -> Line {
    let p = placed(
        json!([{"line_id": "1", "gtin": "4006381333931", "title": "Pen", "quantity": 1, "unit_price": "10.00"}]),
        "14.95",
    );
    Line::from_placed(&p.lines[0])
}

#[test]
fn gtin_lines_match_catalog_then_mapping() {
    let line = gtin_line();
    let catalog = [product("PEN-B", true), product("PEN-A", true)];
    let Match::Matched(m) = match_line(
        &line,
        &Lookup {
            by_gtin: &catalog,
            ..Lookup::default()
        },
    ) else {
        panic!()
    };
    assert_eq!(m.sku, sku("PEN-A"), "lowest SKU wins deterministically");

    let inactive = [product("OLD", false)];
    let mapped_sku = sku("PEN-NEW");
    let mapped = product("PEN-NEW", true);
    let Match::Matched(m) = match_line(
        &line,
        &Lookup {
            by_gtin: &inactive,
            mapping: Some((&mapped_sku, Some(&mapped))),
            ..Lookup::default()
        },
    ) else {
        panic!()
    };
    assert_eq!(
        m.sku, mapped_sku,
        "a mapping beats an inactive catalog match"
    );

    assert_eq!(
        match_line(
            &line,
            &Lookup {
                by_gtin: &inactive,
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: None
        }
    );
    assert_eq!(
        match_line(
            &line,
            &Lookup {
                mapping: Some((&mapped_sku, None)),
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::UnknownSku,
            sku: Some(mapped_sku.clone())
        }
    );
    let gone = product("PEN-NEW", false);
    assert_eq!(
        match_line(
            &line,
            &Lookup {
                mapping: Some((&mapped_sku, Some(&gone))),
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: Some(mapped_sku.clone())
        }
    );
    assert_eq!(
        match_line(&line, &Lookup::default()),
        Match::Unmatched {
            problem: ItemProblem::UnknownGtin,
            sku: None
        }
    );
}

#[test]
fn gtin14_normalisation_is_what_the_store_compares() {
    let ean13 = Gtin::parse("4006381333931").unwrap();
    let gtin14 = Gtin::parse("04006381333931").unwrap();
    assert_eq!(ean13.to_gtin14(), gtin14.to_gtin14());
}

#[test]
fn a_replacing_revision_keeps_an_operators_match() {
    let old_unmatched = gtin_line();
    let mut old = gtin_line();
    old.matched = Some(MatchedProduct {
        sku: sku("PEN-OP"),
        tax_category: TaxCategory::Standard,
        catalog_title: "Pen".into(),
    });
    let mut new = gtin_line();
    new.requested_tax_category = Some(TaxCategory::Reduced);
    assert!(carry_over_match(&old, &mut new));
    let m = new.matched.clone().unwrap();
    assert_eq!(m.sku, sku("PEN-OP"));
    assert_eq!(
        m.tax_category,
        TaxCategory::Reduced,
        "the new line's own category wins"
    );

    let mut fresh = gtin_line();
    assert!(
        !carry_over_match(&old_unmatched, &mut fresh),
        "nothing to carry"
    );
    let mut changed = gtin_line();
    changed.gtin = Some(Gtin::parse("4012345678901").unwrap());
    assert!(
        !carry_over_match(&old, &mut changed),
        "another product: match again"
    );
    assert!(changed.matched.is_none());
}

#[test]
fn resolutions_must_name_a_sold_product() {
    let s = sku("PEN");
    assert!(resolve_to(&s, Some(&product("PEN", true)), None).is_ok());
    assert!(
        resolve_to(&s, Some(&product("PEN", false)), None)
            .unwrap_err()
            .contains("inactive")
    );
    assert!(
        resolve_to(&s, None, None)
            .unwrap_err()
            .contains("not in the catalog")
    );
}

#[test]
fn resolution_checks() {
    use ExceptionResolution as R;
    let a = sku("A");
    let b = sku("B");
    assert_eq!(
        check_resolution(ExceptionStatus::Open, None, None, R::MapToSku, Some(&a)),
        ResolutionCheck::Apply
    );
    assert_eq!(
        check_resolution(
            ExceptionStatus::Resolved,
            Some(R::MapToSku),
            Some(&a),
            R::MapToSku,
            Some(&a)
        ),
        ResolutionCheck::AlreadyApplied
    );
    assert!(matches!(
        check_resolution(
            ExceptionStatus::Resolved,
            Some(R::MapToSku),
            Some(&a),
            R::MapToSku,
            Some(&b)
        ),
        ResolutionCheck::Refuse(r) if r.contains("map_to_sku A")
    ));
    assert!(matches!(
        check_resolution(
            ExceptionStatus::Resolved,
            Some(R::RemoveLine),
            None,
            R::CancelOrder,
            None
        ),
        ResolutionCheck::Refuse(_)
    ));
    assert!(matches!(
        check_resolution(
            ExceptionStatus::Superseded,
            None,
            None,
            R::RemoveLine,
            None
        ),
        ResolutionCheck::Refuse(r) if r.contains("superseded")
    ));
}

#[test]
fn exception_reconciliation_keeps_identical_ones() {
    let line = gtin_line();
    let keep = Uuid::now_v7();
    let stale = Uuid::now_v7();
    let open = [
        OpenException {
            exception_id: keep,
            line_id: "1".into(),
            problem: ItemProblem::UnknownGtin,
            sku: None,
            gtin: line.gtin.clone(),
        },
        OpenException {
            exception_id: stale,
            line_id: "9".into(),
            problem: ItemProblem::UnknownGtin,
            sku: None,
            gtin: None,
        },
    ];
    let mut other = line.clone();
    other.line_id = "2".into();
    let r = reconcile_exceptions(
        &open,
        &[
            (line, ItemProblem::UnknownGtin, None),
            (other, ItemProblem::UnknownGtin, None),
        ],
    );
    assert_eq!(r.supersede, vec![stale]);
    assert_eq!(r.raise, vec![1]);
}

#[test]
fn customer_keys() {
    let mut c = two_line_order().customer;
    let id = Uuid::now_v7();
    assert_eq!(customer_key(&c, id), "joerg@example.de");
    c.id = Some("C-1".into());
    assert_eq!(customer_key(&c, id), "C-1");
    c.id = None;
    c.email = None;
    assert_eq!(customer_key(&c, id), format!("guest:{id}"));
}

// ----- the transition table -----

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

fn accepted_facts() -> Facts {
    let mut f = Facts::default();
    assert!(f.apply(&Event::Accepted));
    f
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

fn reserved_two() -> Event {
    Event::StockReserved(vec![
        Units {
            warehouse_id: "berlin".into(),
            line_id: "1".into(),
            quantity: 2,
        },
        Units {
            warehouse_id: "hamburg".into(),
            line_id: "2".into(),
            quantity: 1,
        },
    ])
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
    assert_eq!(
        t,
        vec![Transition {
            from: None,
            to: OrderStatus::Accepted
        }]
    );
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

// ----- cancellation -----

#[test]
fn whole_cancellation_before_dispatch() {
    let p = two_line_order();
    let lines = matched_lines(&p);
    for status in [
        OrderStatus::OnHold,
        OrderStatus::Accepted,
        OrderStatus::Backordered,
        OrderStatus::Processing,
    ] {
        let plan = plan_cancellation(status, &lines, &accepted_facts(), None);
        assert_eq!(plan.scope, Some(CancellationScope::Order), "{status}");
        assert_eq!(plan.lines.len(), 2);
        assert_eq!(plan.outcome(), "cancelled");
    }
}

#[test]
fn whole_cancellation_after_dispatch_is_refused() {
    let p = two_line_order();
    let lines = matched_lines(&p);
    let mut facts = accepted_facts();
    facts.apply(&reserved_two());
    facts.apply(&Event::Dispatched {
        shipment_id: Uuid::now_v7(),
        items: vec![("1".into(), 2)],
    });
    let plan = plan_cancellation(OrderStatus::PartiallyShipped, &lines, &facts, None);
    assert_eq!(plan.scope, None);
    assert_eq!(plan.outcome(), "refused");
    assert!(plan.refused[0].contains("already left"), "{plan:?}");

    // Naming the undispatched line works; the dispatched one is refused.
    let plan = plan_cancellation(
        OrderStatus::PartiallyShipped,
        &lines,
        &facts,
        Some(&[lq("2", 1), lq("1", 1)]),
    );
    assert_eq!(plan.scope, Some(CancellationScope::Lines));
    assert_eq!(plan.lines.len(), 1);
    assert_eq!(plan.lines[0].line_id, "2");
    assert_eq!(plan.lines[0].sku, Some(sku("TEA")));
    assert_eq!(plan.outcome(), "partially_refused");
    assert!(plan.refused[0].contains("line 1"), "{plan:?}");
}

#[test]
fn cancelling_every_open_unit_is_a_whole_cancellation() {
    let p = two_line_order();
    let mut lines = matched_lines(&p);
    lines[0].cancelled = 1;
    let plan = plan_cancellation(
        OrderStatus::Accepted,
        &lines,
        &accepted_facts(),
        Some(&[lq("1", 5), lq("2", 1)]),
    );
    assert_eq!(plan.scope, Some(CancellationScope::Order));
    assert_eq!(plan.lines[0].quantity.get(), 1, "only the open unit");
    assert!(plan.refused[0].contains("only 1 of 5"), "{plan:?}");
}

#[test]
fn cancelling_part_of_a_line() {
    let p = two_line_order();
    let lines = matched_lines(&p);
    let plan = plan_cancellation(
        OrderStatus::Processing,
        &lines,
        &accepted_facts(),
        Some(&[lq("1", 1)]),
    );
    assert_eq!(plan.scope, Some(CancellationScope::Lines));
    assert_eq!(plan.outcome(), "lines_cancelled");
    let plan = plan_cancellation(
        OrderStatus::Processing,
        &lines,
        &accepted_facts(),
        Some(&[lq("7", 1)]),
    );
    assert_eq!(plan.scope, None);
    assert!(plan.refused[0].contains("not part of the order"));
}

#[test]
fn terminal_orders_cannot_be_cancelled() {
    let lines = matched_lines(&two_line_order());
    for status in [
        OrderStatus::Cancelled,
        OrderStatus::Completed,
        OrderStatus::Delivered,
    ] {
        assert_eq!(
            plan_cancellation(status, &lines, &accepted_facts(), None).scope,
            None
        );
    }
}

#[test]
fn unknown_shipment_contents_block_line_cancellations() {
    let lines = matched_lines(&two_line_order());
    let mut facts = accepted_facts();
    facts.apply(&Event::Delivered {
        shipment_id: Uuid::now_v7(),
    });
    let plan = plan_cancellation(
        OrderStatus::PartiallyShipped,
        &lines,
        &facts,
        Some(&[lq("2", 1)]),
    );
    assert_eq!(plan.scope, None);
    assert!(plan.refused[0].contains("not known yet"));
}

// ----- refunds -----

#[test]
fn refunds_are_capped_by_the_ordered_quantity() {
    let mut lines = matched_lines(&two_line_order());
    lines[0].refunded = 1;
    let plan = plan_refund(&lines, &[lq("1", 1), lq("2", 2), lq("9", 1)]);
    assert_eq!(plan.accepted, vec![("1".to_owned(), 1)]);
    assert_eq!(plan.refused.len(), 2);
    assert!(
        plan.refused[0].contains("only 1 can be refunded"),
        "{plan:?}"
    );
    assert_eq!(plan.outcome(false), "partially_refused");
    let plan = plan_refund(&lines, &[lq("1", 2)]);
    assert_eq!(plan.outcome(false), "refused");
    assert_eq!(plan.outcome(true), "partially_refused");
    assert_eq!(plan_refund(&lines, &[]).outcome(true), "recorded");
}

// ----- re-pushes -----

#[test]
fn repush_revisions() {
    let p = two_line_order();
    let lines = matched_lines(&p);
    let head = head_of(&p, OrderStatus::Accepted);
    assert_eq!(
        plan_repush(&head, &lines, &accepted_facts(), &p),
        RepushPlan::Duplicate
    );
    let mut lower = p.clone();
    lower.revision = 0;
    assert_eq!(
        plan_repush(&head, &lines, &accepted_facts(), &lower),
        RepushPlan::Duplicate
    );
    let mut next = p.clone();
    next.revision = 2;
    assert_eq!(
        plan_repush(
            &head_of(&p, OrderStatus::OnHold),
            &lines,
            &Facts::default(),
            &next
        ),
        RepushPlan::Replace
    );
    assert_eq!(
        plan_repush(
            &head_of(&p, OrderStatus::Cancelled),
            &lines,
            &accepted_facts(),
            &next
        ),
        RepushPlan::Closed
    );
    let RepushPlan::Amend(a) = plan_repush(&head, &lines, &accepted_facts(), &next) else {
        panic!()
    };
    assert_eq!(
        a,
        Amendment::default(),
        "an unchanged revision changes nothing"
    );
}

#[test]
fn repush_after_acceptance_is_applied_as_commands() {
    let p = two_line_order();
    let lines = matched_lines(&p);
    let head = head_of(&p, OrderStatus::Processing);
    let mut next = placed(
        json!([
            {"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "12.90"},
            {"line_id": "3", "sku": "CUP", "title": "Cup", "quantity": 1, "unit_price": "5.00"}
        ]),
        "22.85",
    );
    next.revision = 2;
    next.shipping_address.city = "Potsdam".into();
    let RepushPlan::Amend(a) = plan_repush(&head, &lines, &accepted_facts(), &next) else {
        panic!()
    };
    assert_eq!(a.addresses, AddressChange::Apply);
    assert_eq!(a.reductions, vec![lq("1", 1), lq("2", 1)]);
    assert_eq!(a.refused.len(), 1);
    assert!(a.refused[0].contains("line 3"), "{a:?}");
    assert!(a.ignored.iter().any(|i| i.contains("amounts")), "{a:?}");

    // After a dispatch, the address stays.
    let mut facts = accepted_facts();
    facts.apply(&Event::Dispatched {
        shipment_id: Uuid::now_v7(),
        items: vec![("1".into(), 2)],
    });
    let RepushPlan::Amend(a) = plan_repush(&head, &lines, &facts, &next) else {
        panic!()
    };
    assert!(matches!(a.addresses, AddressChange::Refused(_)));
}

#[test]
fn repush_raising_quantities_is_refused_and_earlier_cancellations_stay() {
    let p = two_line_order();
    let mut lines = matched_lines(&p);
    lines[0].cancelled = 1;
    let head = head_of(&p, OrderStatus::Processing);
    let mut next = p.clone();
    next.revision = 3;
    next.lines[1].quantity = Quantity::new(4).unwrap();
    let RepushPlan::Amend(a) = plan_repush(&head, &lines, &accepted_facts(), &next) else {
        panic!()
    };
    assert!(a.reductions.is_empty());
    assert!(a.refused[0].contains("raised from 1 to 4"), "{a:?}");
    assert!(a.ignored[0].contains("stay cancelled"), "{a:?}");
}

// ----- the accepted order -----

#[test]
fn the_accepted_order_carries_every_line_as_placed() {
    let p = two_line_order();
    let lines = matched_lines(&p);
    let head = head_of(&p, OrderStatus::Accepted);
    let a = accepted_order(&head, &lines).unwrap();
    assert_eq!(a.lines.len(), 2);
    assert_eq!(a.total, p.total);
    assert_eq!(a.lines[1].discount, p.lines[1].discount);
    assert_eq!(a.lines[0].tax_category, TaxCategory::Standard);
}

#[test]
fn cancelled_lines_before_acceptance_recompute_the_amounts() {
    let mut p = placed(
        json!([
            {"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 2, "unit_price": "12.90"},
            {"line_id": "2", "sku": "TEA", "title": "Tea", "quantity": 3, "unit_price": "7.50", "discount": "1.00"}
        ]),
        "52.25",
    );
    p.discount = Amount::parse("1.00").unwrap();
    p.total = Amount::parse("51.25").unwrap();
    p.validate().unwrap();
    let mut lines = matched_lines(&p);
    let head = head_of(&p, OrderStatus::OnHold);

    // Remove line 1 entirely, one unit of line 2.
    lines[0].cancelled = 2;
    lines[1].cancelled = 1;
    let a = accepted_order(&head, &lines).unwrap();
    assert_eq!(a.lines.len(), 1);
    assert_eq!(a.lines[0].quantity.get(), 2);
    assert_eq!(
        a.lines[0].discount.value(),
        Decimal::new(66, 2),
        "1.00 × 2/3 rounded down"
    );
    // 2 × 7.50 − 0.66 + 4.95 − 1.00
    assert_eq!(a.total.value(), Decimal::new(1829, 2));
    a.validate().unwrap();
}

#[test]
fn recomputed_amounts_for_net_prices_prorate_the_tax() {
    let mut p = placed(
        json!([
            {"line_id": "1", "sku": "A", "title": "A", "quantity": 1, "unit_price": "100.00"},
            {"line_id": "2", "sku": "B", "title": "B", "quantity": 1, "unit_price": "100.00"}
        ]),
        "0.00",
    );
    p.prices_include_tax = false;
    p.shipping = Amount::parse("0.00").unwrap();
    p.tax = Some(Amount::parse("38.00").unwrap());
    p.total = Amount::parse("238.00").unwrap();
    p.validate().unwrap();
    let mut lines = matched_lines(&p);
    lines[1].cancelled = 1;
    let a = accepted_order(&head_of(&p, OrderStatus::OnHold), &lines).unwrap();
    assert_eq!(a.tax.unwrap().value(), Decimal::new(1900, 2));
    assert_eq!(a.total.value(), Decimal::new(11900, 2));
}

#[test]
fn an_order_discount_larger_than_what_is_left_is_capped() {
    let mut p = placed(
        json!([
            {"line_id": "1", "sku": "A", "title": "A", "quantity": 1, "unit_price": "50.00"},
            {"line_id": "2", "sku": "B", "title": "B", "quantity": 1, "unit_price": "5.00"}
        ]),
        "0.00",
    );
    p.shipping = Amount::parse("0.00").unwrap();
    p.discount = Amount::parse("20.00").unwrap();
    p.total = Amount::parse("35.00").unwrap();
    p.validate().unwrap();
    let mut lines = matched_lines(&p);
    lines[0].cancelled = 1;
    let a = accepted_order(&head_of(&p, OrderStatus::OnHold), &lines).unwrap();
    assert_eq!(a.discount.value(), Decimal::new(500, 2));
    assert!(a.total.is_zero());
}

#[test]
fn unmatched_or_empty_orders_are_not_accepted() {
    let p = two_line_order();
    let mut lines = matched_lines(&p);
    lines[1].matched = None;
    let head = head_of(&p, OrderStatus::OnHold);
    assert!(
        accepted_order(&head, &lines)
            .unwrap_err()
            .contains("not matched")
    );
    lines[1].cancelled = 1;
    assert!(
        accepted_order(&head, &lines).is_ok(),
        "a cancelled unmatched line is fine"
    );
    lines[0].cancelled = 2;
    assert!(
        accepted_order(&head, &lines)
            .unwrap_err()
            .contains("no line")
    );
}

#[test]
fn ordinals() {
    assert_eq!(shipment_ordinal(1, Some(2)), "Shipment 1 of 2");
    assert!(shipment_ordinal(1, None).contains("not known"));
}
