//! The closed vocabularies shared by several messages.

string_enum! {
    /// Where an order came from. Decides how lines are matched (SKU for our own channels,
    /// GTIN for marketplaces) and who is told about changes.
    pub enum Channel {
        /// Our own web shop; lines carry our SKUs.
        Storefront = "storefront",
        /// A marketplace (Amazon, bol.com, Zalando, ...) via its connector; lines usually carry
        /// GTINs, and the marketplace re-pushes the order when it changes.
        Marketplace = "marketplace",
        /// A point-of-sale till in a physical shop.
        Pos = "pos",
        /// Entered by an operator (phone orders, replacements).
        Manual = "manual",
    }
}

string_enum! {
    /// The state of an order in its lifecycle, as the orders worker keeps it. Transitions are
    /// monotonic; `order.status_changed` reports each one with a per-order sequence number.
    pub enum OrderStatus {
        /// Valid and stored; stock is being reserved.
        Accepted = "accepted",
        /// Waiting for an operator: a line matched no product (an order item exception).
        /// Nothing is reserved until it is resolved.
        OnHold = "on_hold",
        /// Not enough stock; retried, oldest first, when stock arrives.
        Backordered = "backordered",
        /// Stock reserved, shipments requested from the warehouses.
        Processing = "processing",
        /// Some but not all shipments have left a warehouse.
        PartiallyShipped = "partially_shipped",
        /// Every shipment has left a warehouse.
        Shipped = "shipped",
        /// Every shipment has been delivered.
        Delivered = "delivered",
        /// Delivered and invoiced; nothing left to do. Refunds can still follow.
        Completed = "completed",
        /// Cancelled before dispatch; reservations released, invoices credited.
        Cancelled = "cancelled",
    }
}

impl OrderStatus {
    /// Whether no further status change can follow.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

string_enum! {
    /// One vocabulary for tracking events, whatever the carrier calls them.
    pub enum ShipmentStatus {
        /// The carrier knows the parcel (label printed) but has not picked it up.
        LabelCreated = "label_created",
        /// Picked up and moving.
        InTransit = "in_transit",
        /// With the driver for delivery today.
        OutForDelivery = "out_for_delivery",
        /// Delivered to the recipient, a neighbour or a pick-up point.
        Delivered = "delivered",
        /// A delivery attempt failed; the carrier will usually try again.
        DeliveryFailed = "delivery_failed",
        /// On its way back to the sender (refused, undeliverable, returned).
        Returned = "returned",
        /// Anything else that needs a human: lost, damaged, held in customs.
        Exception = "exception",
    }
}

string_enum! {
    /// The VAT category of a product; invoicing turns it into a rate for the country where
    /// the supply is taxed.
    pub enum TaxCategory {
        /// The country's standard rate (DE 19 %, FR 20 %).
        Standard = "standard",
        /// A reduced rate (DE 7 % for food and books).
        Reduced = "reduced",
        /// A super-reduced rate where a country has one (FR 2.1 %, ES 4 %).
        SuperReduced = "super_reduced",
        /// Taxable at 0 % (with the right to deduct input tax).
        Zero = "zero",
        /// Exempt from VAT (no right to deduct input tax).
        Exempt = "exempt",
    }
}

string_enum! {
    /// What a product is, for the countries whose rates differ by kind of product: "reduced"
    /// does not mean the same everywhere (books are 0 % in Ireland and 25 % in Denmark, food
    /// 0 % in Ireland and Malta, 5.5 % in France). Invoicing looks the class up in its dated
    /// rate data per country; a product without a class takes its [`TaxCategory`].
    pub enum TaxClass {
        /// Printed books.
        Books = "books",
        /// Electronically supplied books.
        Ebooks = "ebooks",
        /// Printed newspapers and periodicals.
        Newspapers = "newspapers",
        /// Foodstuffs for human consumption (not alcohol, not catering).
        Food = "food",
        /// Children's clothing and footwear.
        ChildrensClothing = "childrens_clothing",
        /// Pharmaceutical products for human use.
        Medicines = "medicines",
        /// Women's sanitary protection products.
        SanitaryProducts = "sanitary_products",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_match_serde() {
        for c in Channel::ALL {
            let json = serde_json::to_string(c).expect("encode");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(c.as_str().parse::<Channel>().expect("parse"), *c);
        }
        for s in OrderStatus::ALL {
            assert_eq!(serde_json::to_value(s).expect("encode"), s.as_str());
        }
        for s in ShipmentStatus::ALL {
            assert_eq!(serde_json::to_value(s).expect("encode"), s.as_str());
        }
        for t in TaxCategory::ALL {
            assert_eq!(serde_json::to_value(t).expect("encode"), t.as_str());
        }
        for t in TaxClass::ALL {
            assert_eq!(serde_json::to_value(t).expect("encode"), t.as_str());
        }
        assert_eq!(OrderStatus::PartiallyShipped.as_str(), "partially_shipped");
        assert_eq!(ShipmentStatus::ALL.len(), 7);
    }

    #[test]
    fn unknown_values_are_named() {
        let err = "web".parse::<Channel>().expect_err("unknown");
        assert_eq!(
            err.reason(),
            "unknown Channel `web`, expected one of: storefront, marketplace, pos, manual"
        );
        assert!(serde_json::from_str::<Channel>("\"web\"").is_err());
    }

    #[test]
    fn terminal_statuses() {
        assert!(OrderStatus::Completed.is_terminal());
        assert!(OrderStatus::Cancelled.is_terminal());
        assert!(!OrderStatus::Delivered.is_terminal());
    }
}
