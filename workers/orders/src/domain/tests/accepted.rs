//! The `order.accepted` snapshot, with amounts recomputed after cancellations.

use super::*;

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
fn only_an_exempt_line_carries_its_products_exemption_reference() {
    let p = two_line_order();
    let mut lines = matched_lines(&p);
    let head = head_of(&p, OrderStatus::Accepted);
    let reference = "Art. 135(1)(h) Directive 2006/112/EC";
    for (line, category) in lines
        .iter_mut()
        .zip([TaxCategory::Exempt, TaxCategory::Standard])
    {
        let m = line.matched.as_mut().unwrap();
        m.tax_category = category;
        m.exemption_reference = Some(reference.to_owned());
    }
    let a = accepted_order(&head, &lines).unwrap();
    assert_eq!(a.lines[0].exemption_reference.as_deref(), Some(reference));
    assert_eq!(
        a.lines[1].exemption_reference, None,
        "a line taxed by its own category cites no exemption"
    );
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
