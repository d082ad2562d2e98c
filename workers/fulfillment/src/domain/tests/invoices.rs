//! Invoice requests: per order, and per shipment with shares that add up.

use super::*;

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

/// A store that invoices per shipment: the services of an order (never shipped) are
/// invoiced on a request of their own, order-wide; the shipping charge stays for the first
/// parcel while the order has goods, and goes with the services when it has none.
#[test]
fn services_are_invoiced_on_their_own_and_shipping_follows_the_goods() {
    let mut order = golden_order();
    assert!(
        invoice_for_services(&order, &InvoiceProgress::default(), Uuid::from_u128(1)).is_none(),
        "an order of goods only has nothing to invoice before its parcels"
    );
    order.lines[1].setup_template_version = Some(1);
    let (services, progress) =
        invoice_for_services(&order, &InvoiceProgress::default(), Uuid::from_u128(2))
            .expect("a service line")
            .expect("valid");
    services.validate().expect("valid invoice.requested");
    assert_eq!(services.timing, InvoiceTiming::OnOrder);
    assert_eq!(services.shipment_id, None);
    let ids: Vec<&str> = services.lines.iter().map(|l| l.line_id.as_str()).collect();
    assert_eq!(ids, [order.lines[1].line_id.as_str()]);
    assert_eq!(services.shipping.value(), Decimal::ZERO);
    assert!(!progress.shipping_invoiced);
    // The parcel's invoice then takes the goods and the shipping.
    let goods = order.lines[0].line_id.clone();
    let units = order.lines[0].quantity.get();
    let (parcel, _) = invoice_for_shipment(
        &order,
        &progress,
        Uuid::from_u128(3),
        &[(goods, units)],
        Uuid::from_u128(4),
    )
    .expect("the parcel");
    assert_eq!(parcel.shipping, order.shipping);

    // Services only: the shipping charge (if any) goes with them.
    order.lines[0].setup_template_version = Some(1);
    let (all, progress) =
        invoice_for_services(&order, &InvoiceProgress::default(), Uuid::from_u128(5))
            .expect("service lines")
            .expect("valid");
    assert_eq!(all.lines.len(), 2);
    assert_eq!(all.shipping, order.shipping);
    assert!(progress.shipping_invoiced);
}
