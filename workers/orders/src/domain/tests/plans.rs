//! Cancellations, refunds and re-pushes: what can still be done to an order.

use super::*;

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

    // After an operator changed the address, a re-push's address does not undo it.
    let mut facts = accepted_facts();
    facts.address_amended = true;
    let RepushPlan::Amend(a) = plan_repush(&head, &lines, &facts, &next) else {
        panic!()
    };
    let AddressChange::Refused(why) = &a.addresses else {
        panic!("{a:?}")
    };
    assert!(
        why.contains("operator changed the order's address"),
        "{why}"
    );
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
