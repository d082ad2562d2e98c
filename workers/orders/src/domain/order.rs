//! An order as this worker holds it: its header ([`OrderHead`]) and its lines ([`Line`],
//! with the price snapshot as placed and the product snapshot as matched), and the key its
//! customer's statistics are counted under.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    Address, Customer, CustomerContact, OrderLine, OrderPlaced, Payment,
};
use orderly_contracts::types::{
    Amount, Channel, CurrencyCode, Gtin, OrderStatus, Sku, StoreId, TaxCategory, TaxClass,
};
use uuid::Uuid;

/// An order's header: everything but its lines, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderHead {
    /// Orderly's id (UUIDv7).
    pub(crate) order_id: Uuid,
    /// The store.
    pub(crate) store_id: StoreId,
    /// Where it came from.
    pub(crate) channel: Channel,
    /// Marketplace name, for marketplace orders.
    pub(crate) marketplace: Option<String>,
    /// The producer's order number.
    pub(crate) external_order_id: String,
    /// The last `order.placed` revision seen.
    pub(crate) revision: u32,
    /// Current status.
    pub(crate) status: OrderStatus,
    /// Last `order.status_changed` sequence sent (0: none yet).
    pub(crate) status_sequence: u64,
    /// When the buyer placed it.
    pub(crate) placed_at: DateTime<Utc>,
    /// Currency of every amount.
    pub(crate) currency: CurrencyCode,
    /// Whether prices include VAT.
    pub(crate) prices_include_tax: bool,
    /// The buyer.
    pub(crate) customer: Customer,
    /// Invoice address.
    pub(crate) billing_address: Address,
    /// Delivery address.
    pub(crate) shipping_address: Address,
    /// Payment, as last pushed.
    pub(crate) payment: Payment,
    /// Shipping charged.
    pub(crate) shipping: Amount,
    /// Order-level discount.
    pub(crate) discount: Amount,
    /// VAT stated by the producer.
    pub(crate) tax: Option<Amount>,
    /// What the buyer pays, as placed.
    pub(crate) total: Amount,
}

impl OrderHead {
    /// The header of a newly placed order.
    pub(crate) fn from_placed(order_id: Uuid, status: OrderStatus, placed: &OrderPlaced) -> Self {
        Self {
            order_id,
            store_id: placed.store_id.clone(),
            channel: placed.channel,
            marketplace: placed.marketplace.clone(),
            external_order_id: placed.external_order_id.clone(),
            revision: placed.revision,
            status,
            status_sequence: 0,
            placed_at: placed.placed_at,
            currency: placed.currency,
            prices_include_tax: placed.prices_include_tax,
            customer: placed.customer.clone(),
            billing_address: placed.billing_address.clone(),
            shipping_address: placed.shipping_address.clone(),
            payment: placed.payment.clone(),
            shipping: placed.shipping,
            discount: placed.discount,
            tax: placed.tax,
            total: placed.total,
        }
    }

    /// Takes over everything a revision says (used while the order is still on hold).
    pub(crate) fn replace_with(&mut self, placed: &OrderPlaced) {
        let status = self.status;
        let sequence = self.status_sequence;
        *self = Self::from_placed(self.order_id, status, placed);
        self.status_sequence = sequence;
    }

    /// How to reach the customer, for `order.status_changed`.
    pub(crate) fn contact(&self) -> CustomerContact {
        CustomerContact {
            name: self.customer.name.clone(),
            email: self.customer.email.clone(),
            locale: self.customer.locale.clone(),
        }
    }

    /// `100234 (storefront, shop-de)`, for log and timeline text.
    pub(crate) fn label(&self) -> String {
        match &self.marketplace {
            Some(m) => format!("{} ({m}, {})", self.external_order_id, self.store_id),
            None => format!(
                "{} ({}, {})",
                self.external_order_id, self.channel, self.store_id
            ),
        }
    }
}

/// The product a line was matched to, snapshotted on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatchedProduct {
    /// Our SKU.
    pub(crate) sku: Sku,
    /// VAT category: the line's own if the producer sent one, else the catalog's.
    pub(crate) tax_category: TaxCategory,
    /// The catalog's tax class, if it gives one (books, food, ...).
    pub(crate) tax_class: Option<TaxClass>,
    /// The catalog's exemption reference of an exempt product (Art. 226(11)).
    pub(crate) exemption_reference: Option<String>,
    /// The setup template version of a service product, when the line was matched.
    pub(crate) setup_template_version: Option<u32>,
    /// The catalog's product name at matching time.
    pub(crate) catalog_title: String,
}

/// An order line as stored: the price snapshot as placed, the product snapshot as matched,
/// and what has been cancelled and refunded since.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// The producer's line id.
    pub(crate) line_id: String,
    /// The SKU the producer sent, if any.
    pub(crate) requested_sku: Option<Sku>,
    /// The GTIN the producer sent, if any.
    pub(crate) gtin: Option<Gtin>,
    /// Product name as the buyer saw it.
    pub(crate) title: String,
    /// Units ordered (never shrinks; cancellations are counted in `cancelled`).
    pub(crate) quantity: u32,
    /// Price of one unit.
    pub(crate) unit_price: Amount,
    /// Discount on the whole line.
    pub(crate) discount: Amount,
    /// VAT category the producer sent, if any.
    pub(crate) requested_tax_category: Option<TaxCategory>,
    /// The product it was matched to; `None` while it is an open exception.
    pub(crate) matched: Option<MatchedProduct>,
    /// Units cancelled.
    pub(crate) cancelled: u32,
    /// Units refunds were requested for.
    pub(crate) refunded: u32,
}

impl Line {
    /// A new line from `order.placed`, not matched yet.
    pub(crate) fn from_placed(line: &OrderLine) -> Self {
        Self {
            line_id: line.line_id.clone(),
            requested_sku: line.sku.clone(),
            gtin: line.gtin.clone(),
            title: line.title.clone(),
            quantity: line.quantity.get(),
            unit_price: line.unit_price,
            discount: line.discount,
            requested_tax_category: line.tax_category,
            matched: None,
            cancelled: 0,
            refunded: 0,
        }
    }

    /// Units still ordered (not cancelled).
    pub(crate) fn open(&self) -> u32 {
        self.quantity.saturating_sub(self.cancelled)
    }

    /// The SKU the line was matched to.
    pub(crate) fn sku(&self) -> Option<&Sku> {
        self.matched.as_ref().map(|m| &m.sku)
    }

    /// `line 2 (GTIN 4006381333931)`, for timeline text and reasons.
    pub(crate) fn describe(&self) -> String {
        match (&self.requested_sku, &self.gtin) {
            (Some(sku), _) => format!("line {} (SKU {sku})", self.line_id),
            (None, Some(gtin)) => format!("line {} (GTIN {gtin})", self.line_id),
            (None, None) => format!("line {}", self.line_id),
        }
    }
}

/// The key of a customer who can be recognised again: the producer's customer id, else the
/// lowercased email; `None` for a guest without email.
pub(crate) fn returning_customer_key(id: Option<&str>, email: Option<&str>) -> Option<String> {
    if let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(id.to_owned());
    }
    email.map(str::to_lowercase)
}

/// The customer statistics key: the producer's customer id, else the lowercased email, else
/// a per-order guest key (a guest without email cannot be recognised again).
pub(crate) fn customer_key(customer: &Customer, order_id: Uuid) -> String {
    if let Some(key) = returning_customer_key(
        customer.id.as_deref(),
        customer.email.as_ref().map(|e| e.as_str()),
    ) {
        return key;
    }
    format!("guest:{order_id}")
}
