//! An operator's change of an order's addresses (`order.address_change_requested`): whether
//! it may be taken now, and what the addresses become.
//!
//! The address is the warehouse's label: once a parcel has left, changing it would describe
//! a delivery that is not happening, so a change is refused after the first dispatch (as a
//! marketplace re-push's is) and on a closed order. Before that it is taken whole: the
//! addresses it names replace the order's, the others stay.

use orderly_contracts::messages::{Address, OrderAddressChangeRequested};
use orderly_contracts::types::OrderStatus;

/// Whether an order at `status`, with a shipment dispatched or not (`any_shipped`), may have
/// its addresses changed; `Err` says why not.
pub(crate) fn check_address_change(status: OrderStatus, any_shipped: bool) -> Result<(), String> {
    match status {
        OrderStatus::Cancelled | OrderStatus::Completed => Err(format!(
            "the order is {status}: nothing will be shipped or invoiced"
        )),
        OrderStatus::PartiallyShipped | OrderStatus::Shipped | OrderStatus::Delivered => Err(
            format!("the order is {status}: a shipment has already left the warehouse"),
        ),
        _ if any_shipped => Err("a shipment has already left the warehouse".to_owned()),
        OrderStatus::Accepted
        | OrderStatus::OnHold
        | OrderStatus::Backordered
        | OrderStatus::Processing => Ok(()),
    }
}

/// The addresses after the change: (billing, shipping), each the request's when it names
/// one, else the current.
pub(crate) fn amended_addresses(
    request: &OrderAddressChangeRequested,
    billing: &Address,
    shipping: &Address,
) -> (Address, Address) {
    (
        request
            .billing_address
            .clone()
            .unwrap_or_else(|| billing.clone()),
        request
            .shipping_address
            .clone()
            .unwrap_or_else(|| shipping.clone()),
    )
}

/// What changed, in words for the timeline: "delivery address → …", "invoice address → …".
pub(crate) fn describe_change(request: &OrderAddressChangeRequested) -> String {
    let one = |what: &str, a: &Address| {
        let place = match &a.postal_code {
            Some(code) => format!("{code} {}", a.city),
            None => a.city.clone(),
        };
        format!(
            "{what} → {}, {}, {place} {}",
            a.name,
            a.lines.join(", "),
            a.country
        )
    };
    let mut parts = Vec::new();
    if let Some(a) = &request.shipping_address {
        parts.push(one("delivery address", a));
    }
    if let Some(a) = &request.billing_address {
        parts.push(one("invoice address", a));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_may_change_until_something_ships() {
        for s in [
            OrderStatus::Accepted,
            OrderStatus::OnHold,
            OrderStatus::Backordered,
            OrderStatus::Processing,
        ] {
            assert!(check_address_change(s, false).is_ok(), "{s}");
            let why = check_address_change(s, true).expect_err("a parcel left");
            assert!(why.contains("left the warehouse"), "{s}: {why}");
        }
        for s in [
            OrderStatus::PartiallyShipped,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ] {
            let why = check_address_change(s, false).expect_err("shipped");
            assert!(why.contains("left the warehouse"), "{s}: {why}");
        }
        for s in [OrderStatus::Cancelled, OrderStatus::Completed] {
            let why = check_address_change(s, false).expect_err("closed");
            assert!(why.contains(s.as_str()), "{s}: {why}");
        }
    }

    fn address(name: &str) -> Address {
        serde_json::from_value(serde_json::json!({
            "name": name, "lines": ["Hauptstraße 1"], "postal_code": "10115",
            "city": "Berlin", "country": "DE"
        }))
        .expect("address")
    }

    #[test]
    fn only_the_named_addresses_change() {
        let request: OrderAddressChangeRequested = serde_json::from_value(serde_json::json!({
            "request_id": "0195f3a6-6071-7283-8e9f-0a1b2c3d4e5f",
            "order_id": "0195f3a0-7c4e-7b1a-9d2e-3f4a5b6c7d8e",
            "store_id": "shop-de",
            "requested_by": {"kind": "operator", "id": "anna"},
            "reason": "typo",
            "shipping_address": {
                "name": "Neu", "lines": ["Paketshop"], "postal_code": "13353",
                "city": "Berlin", "country": "DE"
            }
        }))
        .expect("request");
        let (billing, shipping) = amended_addresses(&request, &address("Alt"), &address("Alt"));
        assert_eq!(billing, address("Alt"));
        assert_eq!(shipping.name, "Neu");
        assert_eq!(
            describe_change(&request),
            "delivery address → Neu, Paketshop, 13353 Berlin DE"
        );
    }
}
