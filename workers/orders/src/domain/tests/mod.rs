//! Unit tests of the decisions, with plain values: the helpers that build them here, one
//! file per concern below.

use orderly_contracts::Validate;
use orderly_contracts::messages::{
    CancellationScope, ExceptionResolution, ItemProblem, LineQuantity, OrderPlaced,
};
use orderly_contracts::types::{Amount, Gtin, OrderStatus, Quantity, Sku, TaxCategory};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use serde_json::json;

mod accepted;
mod matching;
mod plans;
mod status;

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
        tax_class: None,
        exemption_reference: None,
        setup_template_version: None,
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
                tax_class: None,
                exemption_reference: None,
                setup_template_version: None,
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

fn accepted_facts() -> Facts {
    let mut f = Facts::default();
    assert!(f.apply(&Event::Accepted));
    f
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
