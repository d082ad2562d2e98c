//! The order's own messages: what producers send about orders, and what the orders worker
//! announces as an order moves through its lifecycle.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{
    Actor, Address, Customer, CustomerContact, PricedLine, Pricing, counts_from_one, unique_lines,
};
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{
    Amount, Channel, CurrencyCode, Gtin, OrderStatus, Quantity, Sku, StoreId, TaxCategory, TaxClass,
};
use crate::validate::{At, Validate, count, ensure, opt_text, text};

/// Most lines an order may have; more is a broken producer, not a big customer.
pub(super) const MAX_LINES: usize = 1000;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

string_enum! {
    /// Where the buyer's payment stands when the order is placed.
    pub enum PaymentStatus {
        /// Authorised (card hold); captured later, usually on shipment.
        Authorized = "authorized",
        /// Paid in full (captured, or collected by the marketplace or at the till).
        Paid = "paid",
        /// Expected later: bank transfer, pay on invoice.
        Pending = "pending",
    }
}

/// How the order is paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// Where the payment stands.
    pub status: PaymentStatus,
    /// Payment method as the producer names it (`card`, `paypal`, `klarna`, `invoice`,
    /// `marketplace`, `cash`).
    #[schemars(length(max = 64))]
    pub method: String,
    /// The payment provider's reference (PSP transaction id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub reference: Option<String>,
}

impl Payment {
    fn check(&self) -> Result<(), ContractError> {
        text(&self.method, 64).at("payload.payment.method")?;
        opt_text(self.reference.as_ref(), 256).at("payload.payment.reference")
    }
}

/// One line of a placed order, as the producer sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The producer's id for this line, unique within the order and stable across re-pushes
    /// (a marketplace's order item id, the storefront's line number).
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// Our SKU. Storefront, till and manual orders identify products by SKU. Exactly one of
    /// `sku` and `gtin` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// The product's GTIN/EAN. Marketplace orders usually identify products this way; the
    /// orders worker matches it to a SKU, or raises an order item exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<Gtin>,
    /// Product name as the buyer saw it.
    #[schemars(length(max = 500))]
    pub title: String,
    /// Units ordered.
    pub quantity: Quantity,
    /// Price of one unit, gross or net as the order's `prices_include_tax` says.
    pub unit_price: Amount,
    /// Discount on the whole line (not per unit), same tax basis as the price. Defaults to 0.
    #[serde(default)]
    pub discount: Amount,
    /// VAT category, if the producer knows it; otherwise the catalog's is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_category: Option<TaxCategory>,
}

impl PricedLine for OrderLine {
    fn quantity(&self) -> Quantity {
        self.quantity
    }
    fn unit_price(&self) -> Amount {
        self.unit_price
    }
    fn discount(&self) -> Amount {
        self.discount
    }
}

/// `order.placed`: a new order, or a new revision of one, from the storefront, a marketplace
/// connector, a till or an operator.
///
/// Orders are identified by `(store_id, channel, external_order_id)`: a re-push with a higher
/// `revision` updates the stored order, the same or a lower revision is a duplicate. The
/// orders worker matches lines to the catalog and answers with `order.accepted` or
/// `order.on_hold`. Correlation id: `{store_id}/{channel}/{external_order_id}` (the order id
/// does not exist yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPlaced {
    /// The store the order belongs to.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// The marketplace's name (`amazon.de`, `bol.com`, `zalando`); required for marketplace
    /// orders, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number, unique per store and channel.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// Revision of this order at the producer, from 1; a re-push after a change carries a
    /// higher revision.
    pub revision: u32,
    /// When the buyer placed the order.
    pub placed_at: DateTime<Utc>,
    /// Currency of every amount in the order.
    pub currency: CurrencyCode,
    /// Whether unit prices, discounts and shipping include VAT (consumer shops) or not
    /// (B2B shops; then `tax` is required and added to the total).
    pub prices_include_tax: bool,
    /// The buyer.
    pub customer: Customer,
    /// Invoice address.
    pub billing_address: Address,
    /// Delivery address.
    pub shipping_address: Address,
    /// The ordered items, at least one.
    pub lines: Vec<OrderLine>,
    /// Shipping charged to the buyer, same tax basis as the prices.
    pub shipping: Amount,
    /// Discount on the whole order (vouchers), same tax basis as the prices. Defaults to 0.
    #[serde(default)]
    pub discount: Amount,
    /// VAT the producer charged in total. Required when prices exclude tax; informational
    /// otherwise (invoicing decides the VAT that is finally charged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Amount>,
    /// What the buyer pays: lines + shipping − discount (+ tax when prices exclude it),
    /// within one cent.
    pub total: Amount,
    /// How the order is paid.
    pub payment: Payment,
}

impl Message for OrderPlaced {
    const TYPE: &'static str = "order.placed";
    const VERSION: u16 = 1;
}

/// Checks shared by `order.placed` and `order.accepted`.
fn check_order_header(
    channel: Channel,
    marketplace: Option<&String>,
    external_order_id: &str,
    revision: u32,
) -> Result<(), ContractError> {
    match (channel, marketplace) {
        (Channel::Marketplace, None) => {
            return Err(ContractError::new(
                "payload.marketplace",
                "required for marketplace orders",
            ));
        }
        (Channel::Marketplace, Some(name)) => text(name, 64).at("payload.marketplace")?,
        (_, Some(_)) => {
            return Err(ContractError::new(
                "payload.marketplace",
                format!("only marketplace orders name a marketplace, this is a {channel} order"),
            ));
        }
        (_, None) => {}
    }
    text(external_order_id, 128).at("payload.external_order_id")?;
    counts_from_one(u64::from(revision), "payload.revision")
}

fn check_customer(customer: &Customer, channel: Channel) -> Result<(), ContractError> {
    customer.check("payload.customer")?;
    ensure(
        channel != Channel::Storefront || customer.email.is_some(),
        || "required for storefront orders".to_owned(),
    )
    .at("payload.customer.email")
}

impl Validate for OrderPlaced {
    fn validate(&self) -> Result<(), ContractError> {
        check_order_header(
            self.channel,
            self.marketplace.as_ref(),
            &self.external_order_id,
            self.revision,
        )?;
        check_customer(&self.customer, self.channel)?;
        self.billing_address.check("payload.billing_address")?;
        self.shipping_address.check("payload.shipping_address")?;
        self.payment.check()?;
        count(&self.lines, 1, MAX_LINES).at("payload.lines")?;
        for (i, line) in self.lines.iter().enumerate() {
            text(&line.line_id, 64).at_with(|| format!("payload.lines[{i}].line_id"))?;
            text(&line.title, 500).at_with(|| format!("payload.lines[{i}].title"))?;
            match (&line.sku, &line.gtin) {
                (Some(_), None) | (None, Some(_)) => {}
                (None, None) => {
                    return Err(ContractError::new(
                        format!("payload.lines[{i}]"),
                        "a line needs a `sku` or a `gtin` to identify the product",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(ContractError::new(
                        format!("payload.lines[{i}]"),
                        "give exactly one of `sku` and `gtin`, not both: which one wins would be a guess",
                    ));
                }
            }
        }
        unique_lines(&self.lines, |l| l.line_id.as_str(), "payload.lines")?;
        Pricing {
            currency: self.currency,
            prices_include_tax: self.prices_include_tax,
            lines: &self.lines,
            shipping: self.shipping,
            discount: self.discount,
            tax: self.tax,
            total: Some(self.total),
        }
        .check()
    }
}

/// One line of an accepted order: matched to a SKU and a VAT category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedLine {
    /// The producer's line id.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The SKU the line was matched to (given, or found by GTIN).
    pub sku: Sku,
    /// The GTIN the producer sent, if it identified the line by GTIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<Gtin>,
    /// Product name as the buyer saw it.
    #[schemars(length(max = 500))]
    pub title: String,
    /// Units ordered.
    pub quantity: Quantity,
    /// Price of one unit, gross or net as `prices_include_tax` says.
    pub unit_price: Amount,
    /// Discount on the whole line.
    pub discount: Amount,
    /// VAT category (from the order, or the catalog).
    pub tax_category: TaxCategory,
    /// The product's tax class from the catalog, where it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<TaxClass>,
    /// For an exempt line: the provision the supply is exempt under, from the catalog,
    /// printed on the invoice (Art. 226(11) of Directive 2006/112/EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub exemption_reference: Option<String>,
    /// For a service product with a setup template: the template version in force when the
    /// line was matched. The setups worker starts one setup for the line, following that
    /// version; the order completes only when the setup does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_template_version: Option<u32>,
}

impl PricedLine for AcceptedLine {
    fn quantity(&self) -> Quantity {
        self.quantity
    }
    fn unit_price(&self) -> Amount {
        self.unit_price
    }
    fn discount(&self) -> Amount {
        self.discount
    }
}

/// `order.accepted`: the order is valid, every line matched a product; inventory now
/// reserves stock.
///
/// Carries the whole accepted order (a snapshot with SKUs and VAT categories resolved), so
/// that inventory, fulfillment and outside consumers need no second source for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderAccepted {
    /// Orderly's order id (also the envelope's correlation id from here on).
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// The `order.placed` revision that was accepted.
    pub revision: u32,
    /// When the buyer placed the order; backorders are served oldest first by this.
    pub placed_at: DateTime<Utc>,
    /// Currency of every amount.
    pub currency: CurrencyCode,
    /// Whether prices include VAT.
    pub prices_include_tax: bool,
    /// The buyer.
    pub customer: Customer,
    /// Invoice address.
    pub billing_address: Address,
    /// Delivery address.
    pub shipping_address: Address,
    /// The lines, matched.
    pub lines: Vec<AcceptedLine>,
    /// Shipping charged.
    pub shipping: Amount,
    /// Order-level discount.
    pub discount: Amount,
    /// VAT the producer charged, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Amount>,
    /// What the buyer pays.
    pub total: Amount,
    /// How the order is paid.
    pub payment: Payment,
}

impl Message for OrderAccepted {
    const TYPE: &'static str = "order.accepted";
    const VERSION: u16 = 1;
}

impl Validate for OrderAccepted {
    fn validate(&self) -> Result<(), ContractError> {
        check_order_header(
            self.channel,
            self.marketplace.as_ref(),
            &self.external_order_id,
            self.revision,
        )?;
        self.customer.check("payload.customer")?;
        self.billing_address.check("payload.billing_address")?;
        self.shipping_address.check("payload.shipping_address")?;
        self.payment.check()?;
        count(&self.lines, 1, MAX_LINES).at("payload.lines")?;
        for (i, line) in self.lines.iter().enumerate() {
            text(&line.line_id, 64).at_with(|| format!("payload.lines[{i}].line_id"))?;
            text(&line.title, 500).at_with(|| format!("payload.lines[{i}].title"))?;
            opt_text(line.exemption_reference.as_ref(), 200)
                .at_with(|| format!("payload.lines[{i}].exemption_reference"))?;
        }
        unique_lines(&self.lines, |l| l.line_id.as_str(), "payload.lines")?;
        Pricing {
            currency: self.currency,
            prices_include_tax: self.prices_include_tax,
            lines: &self.lines,
            shipping: self.shipping,
            discount: self.discount,
            tax: self.tax,
            total: Some(self.total),
        }
        .check()
    }
}

string_enum! {
    /// Why a line could not be matched to a product.
    pub enum ItemProblem {
        /// No product has this SKU.
        UnknownSku = "unknown_sku",
        /// No product has this GTIN (and no remembered mapping exists).
        UnknownGtin = "unknown_gtin",
        /// The product exists but is no longer sold.
        InactiveProduct = "inactive_product",
    }
}

/// An order item exception: one line an operator has to resolve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemException {
    /// Id of the exception; `order.exception_resolved` names it.
    pub exception_id: Uuid,
    /// The line it is about.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The SKU the line carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// The GTIN the line carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<Gtin>,
    /// Product name from the order, to help the operator find the product.
    #[schemars(length(max = 500))]
    pub title: String,
    /// Units the line asks for, as imported (added in the same version: optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// Price of one unit, as imported (added in the same version: optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Amount>,
    /// What is wrong.
    pub problem: ItemProblem,
}

/// `order.on_hold`: the order is stored but waits for an operator; nothing is reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderOnHold {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// The `order.placed` revision that is on hold.
    pub revision: u32,
    /// The lines that need resolving, at least one.
    pub exceptions: Vec<ItemException>,
}

impl Message for OrderOnHold {
    const TYPE: &'static str = "order.on_hold";
    const VERSION: u16 = 1;
}

impl Validate for OrderOnHold {
    fn validate(&self) -> Result<(), ContractError> {
        check_order_header(
            self.channel,
            self.marketplace.as_ref(),
            &self.external_order_id,
            self.revision,
        )?;
        count(&self.exceptions, 1, MAX_LINES).at("payload.exceptions")?;
        for (i, e) in self.exceptions.iter().enumerate() {
            text(&e.line_id, 64).at_with(|| format!("payload.exceptions[{i}].line_id"))?;
            text(&e.title, 500).at_with(|| format!("payload.exceptions[{i}].title"))?;
        }
        unique_lines(
            &self.exceptions,
            |e| e.line_id.as_str(),
            "payload.exceptions",
        )
    }
}

/// `order.status_changed`: the order moved from one status to another.
///
/// `sequence` counts this order's status changes from 1 without gaps: a consumer that has
/// seen sequence 5 drops anything at or below 5, whatever order messages arrive in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusChanged {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders (so connectors can pick theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number (what the marketplace or shop knows the order by).
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// Status before; absent for the first status an order gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<OrderStatus>,
    /// Status now.
    pub to: OrderStatus,
    /// Per-order change counter from 1, strictly increasing.
    pub sequence: u64,
    /// Why, in words for the timeline and the customer service ("Shipment 2 of 2 delivered").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
    /// Who to tell, for notifications.
    pub customer: CustomerContact,
    /// The order has nothing (left) to ship: every line is a service, set up rather than
    /// shipped (or its goods were cancelled). It reaches `processing` and `delivered`
    /// without a parcel; no "delivered" message goes to the customer then. Absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nothing_to_ship: bool,
}

impl Message for OrderStatusChanged {
    const TYPE: &'static str = "order.status_changed";
    const VERSION: u16 = 1;
}

impl Validate for OrderStatusChanged {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        opt_text(self.marketplace.as_ref(), 64).at("payload.marketplace")?;
        ensure(self.from != Some(self.to), || {
            format!("`from` and `to` are both {}", self.to)
        })
        .at("payload.to")?;
        ensure(self.from.is_none_or(|from| !from.is_terminal()), || {
            format!(
                "{} is final; an order does not leave it",
                self.from.map_or("", |f| f.as_str())
            )
        })
        .at("payload.from")?;
        counts_from_one(self.sequence, "payload.sequence")?;
        opt_text(self.reason.as_ref(), 1000).at("payload.reason")?;
        self.customer.check("payload.customer")
    }
}

string_enum! {
    /// How much of an order was cancelled.
    pub enum CancellationScope {
        /// The whole order.
        Order = "order",
        /// Some lines (or part of their quantities); the rest goes on.
        Lines = "lines",
    }
}

/// A cancelled line (or part of one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelledLine {
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// Its SKU; absent for a line that never matched a product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// Units cancelled.
    pub quantity: Quantity,
}

/// `order.cancelled`: the order (or some lines) is cancelled. Inventory releases the
/// reservation, fulfillment cancels open shipments, invoicing credits what was invoiced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// The `order.cancel_requested` this answers; absent when the cancellation came another
    /// way (a marketplace re-push, an exception resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    /// Whole order or some lines.
    pub scope: CancellationScope,
    /// What was cancelled (for the whole order: every line not yet dispatched).
    pub lines: Vec<CancelledLine>,
    /// Why, for the timeline and the merchant.
    #[schemars(length(max = 1000))]
    pub reason: String,
}

impl Message for OrderCancelled {
    const TYPE: &'static str = "order.cancelled";
    const VERSION: u16 = 1;
}

impl Validate for OrderCancelled {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        opt_text(self.marketplace.as_ref(), 64).at("payload.marketplace")?;
        count(&self.lines, 1, MAX_LINES).at("payload.lines")?;
        for (i, line) in self.lines.iter().enumerate() {
            text(&line.line_id, 64).at_with(|| format!("payload.lines[{i}].line_id"))?;
        }
        unique_lines(&self.lines, |l| l.line_id.as_str(), "payload.lines")?;
        text(&self.reason, 1000).at("payload.reason")
    }
}

/// `order.address_changed`: an accepted order's addresses changed before anything shipped
/// (a marketplace re-push with a new address, or an operator's `order.address_change_requested`,
/// applied by orders). Fulfillment ships what it
/// has not yet asked for to the new address and invoices to the new billing address; a
/// warehouse relabels the order's open shipments (nothing of the order has left: orders
/// refuses the change, with the reason on the timeline, once a shipment is dispatched).
///
/// Keep the highest (`revision`, `amendment`) seen: `revision` is the order's revision that
/// made the change, `amendment` counts operators' changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderAddressChanged {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// The order's revision that made the change (an operator's change keeps the order's
    /// revision and counts `amendment` up).
    pub revision: u32,
    /// How many operators' changes (`order.address_change_requested`) the order's address
    /// has had; absent (0) until the first. The newest address is the one with the highest
    /// (`revision`, `amendment`), compared in that order.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub amendment: u32,
    /// Invoice address, as it now is.
    pub billing_address: Address,
    /// Delivery address, as it now is.
    pub shipping_address: Address,
}

impl Message for OrderAddressChanged {
    const TYPE: &'static str = "order.address_changed";
    const VERSION: u16 = 1;
}

impl Validate for OrderAddressChanged {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        self.billing_address.check("payload.billing_address")?;
        self.shipping_address.check("payload.shipping_address")
    }
}

/// `order.completed`: everything delivered and invoiced; the order is done. Refunds may
/// still follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCompleted {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// Where the order came from.
    pub channel: Channel,
    /// Marketplace name, for marketplace orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub marketplace: Option<String>,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// Currency of `total`.
    pub currency: CurrencyCode,
    /// What the buyer paid, as placed.
    pub total: Amount,
    /// Invoice numbers issued for the order, in issue order.
    #[schemars(inner(length(max = 64)))]
    pub invoice_numbers: Vec<String>,
}

impl Message for OrderCompleted {
    const TYPE: &'static str = "order.completed";
    const VERSION: u16 = 1;
}

impl Validate for OrderCompleted {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        opt_text(self.marketplace.as_ref(), 64).at("payload.marketplace")?;
        for (i, number) in self.invoice_numbers.iter().enumerate() {
            text(number, 64).at_with(|| format!("payload.invoice_numbers[{i}]"))?;
        }
        Ok(())
    }
}

/// `order.hold_changed`: an operator put the order on hold (`held: true`) or released it.
/// Fulfillment asks no warehouse to ship a held order (a reservation made meanwhile waits for
/// the release); a warehouse pauses what it was already asked to ship. Not a status: the
/// order's status goes on as it was. `sequence` counts the order's hold changes from 1:
/// keep the highest seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderHoldChanged {
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: StoreId,
    /// The producer's order number.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// On hold now, or released.
    pub held: bool,
    /// The order's hold changes so far, from 1.
    pub sequence: u32,
    /// Why (the hold's reason, or the release's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
    /// Who did it.
    pub by: Actor,
}

impl Message for OrderHoldChanged {
    const TYPE: &'static str = "order.hold_changed";
    const VERSION: u16 = 1;
}

impl Validate for OrderHoldChanged {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        counts_from_one(u64::from(self.sequence), "payload.sequence")?;
        opt_text(self.reason.as_ref(), 1000).at("payload.reason")?;
        self.by.check("payload.by")
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            OrderPlaced,
            example: golden::order_placed,
            from: "storefront, marketplace connectors, tills, operators",
            says: "a new order or a new revision of one (identified by store, channel and external order id)",
            to: [ORDERS],
            only_from_outside,
        ),
        entry!(
            OrderAccepted,
            example: golden::order_accepted,
            from: "orders",
            says: "the order is valid and matched; carries the full accepted order",
            // Fulfillment keeps it as its copy of address, items and prices (for shipment.requested
            // and invoice.requested); stock.reserved only says which warehouse ships which line.
            to: [INVENTORY, FULFILLMENT, API, SETUPS, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            OrderOnHold,
            example: golden::order_on_hold,
            from: "orders",
            says: "lines matched no product (order item exceptions); waits for an operator",
            to: [API, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            OrderStatusChanged,
            example: golden::order_status_changed,
            from: "orders",
            says: "status moved; per-order `sequence` lets consumers drop stale updates",
            to: [NOTIFICATIONS, API, OUT_MARKETPLACE],
        ),
        entry!(
            OrderCancelled,
            example: golden::order_cancelled,
            from: "orders",
            says: "the order or some lines are cancelled",
            to: [
                INVENTORY,
                FULFILLMENT,
                INVOICING,
                API,
                SETUPS,
                OUT_WAREHOUSE,
                OUT_MERCHANT_EVENTS,
            ],
        ),
        entry!(
            OrderAddressChanged,
            example: golden::order_address_changed,
            from: "orders",
            says: "an accepted order's addresses changed before anything shipped",
            // Fulfillment replaces its copy's address for shipments and invoices not yet asked for;
            // the warehouse relabels the order's open shipments.
            to: [FULFILLMENT, API, OUT_WAREHOUSE, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            OrderHoldChanged,
            example: golden::order_hold_changed,
            from: "orders",
            says: "an operator put the order on hold or released it (per-order `sequence`)",
            // Fulfillment's reservations wait for the release instead of shipping; the warehouse
            // pauses the order's open shipments.
            to: [FULFILLMENT, API, OUT_WAREHOUSE],
        ),
        entry!(
            OrderCompleted,
            example: golden::order_completed,
            from: "orders",
            says: "delivered and invoiced; done",
            to: [API, OUT_MERCHANT_EVENTS],
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    /// A German storefront checkout: two lines, gross prices, card authorised.
    pub(super) fn order_placed() -> Value {
        envelope::<OrderPlaced>(
            Meta {
                n: 0x01,
                correlation: "shop-de/storefront/100234",
                causation: None,
                at: "2026-03-14T09:26:53.120Z",
                producer: "storefront",
                span: None,
            },
            json!({
                "store_id": STORE,
                "channel": "storefront",
                "external_order_id": "100234",
                "revision": 1,
                "placed_at": "2026-03-14T09:26:51Z",
                "currency": "EUR",
                "prices_include_tax": true,
                "customer": customer(),
                "billing_address": billing_address(),
                "shipping_address": shipping_address(),
                "lines": [
                    {
                        "line_id": "1",
                        "sku": "MUG-BLU-350",
                        "title": "Kaffeebecher „Blau“ 350 ml",
                        "quantity": 2,
                        "unit_price": "12.90",
                        "discount": "0.00",
                        "tax_category": "standard"
                    },
                    {
                        "line_id": "2",
                        "sku": "TEA-EARL-100",
                        "title": "Earl Grey Tee, 100 g",
                        "quantity": 1,
                        "unit_price": "7.50",
                        "discount": "0.75"
                    }
                ],
                "shipping": "4.95",
                "discount": "0.00",
                "tax": "5.35",
                "total": "37.50",
                "payment": payment()
            }),
        )
    }

    /// The same order, accepted: SKUs confirmed, the tea's VAT category taken from the catalog.
    pub(super) fn order_accepted() -> Value {
        envelope::<OrderAccepted>(
            Meta {
                n: 0x02,
                correlation: ORDER,
                causation: Some(0x01),
                at: "2026-03-14T09:26:53.412Z",
                producer: "orders",
                span: Some("00f067aa0ba902b7"),
            },
            json!({
                "order_id": ORDER,
                "store_id": STORE,
                "channel": "storefront",
                "external_order_id": "100234",
                "revision": 1,
                "placed_at": "2026-03-14T09:26:51Z",
                "currency": "EUR",
                "prices_include_tax": true,
                "customer": customer(),
                "billing_address": billing_address(),
                "shipping_address": shipping_address(),
                "lines": [
                    {
                        "line_id": "1",
                        "sku": "MUG-BLU-350",
                        "title": "Kaffeebecher „Blau“ 350 ml",
                        "quantity": 2,
                        "unit_price": "12.90",
                        "discount": "0.00",
                        "tax_category": "standard"
                    },
                    {
                        "line_id": "2",
                        "sku": "TEA-EARL-100",
                        "title": "Earl Grey Tee, 100 g",
                        "quantity": 1,
                        "unit_price": "7.50",
                        "discount": "0.75",
                        "tax_category": "reduced"
                    }
                ],
                "shipping": "4.95",
                "discount": "0.00",
                "tax": "5.35",
                "total": "37.50",
                "payment": payment()
            }),
        )
    }

    /// An Amazon order whose only line carries a GTIN we do not know.
    pub(super) fn order_on_hold() -> Value {
        envelope::<OrderOnHold>(
            Meta {
                n: 0x03,
                correlation: MARKETPLACE_ORDER,
                causation: Some(0x30),
                at: "2026-03-14T10:02:17.905Z",
                producer: "orders",
                span: Some("a3ce929d0e0e4736"),
            },
            json!({
                "order_id": MARKETPLACE_ORDER,
                "store_id": "amazon-de",
                "channel": "marketplace",
                "marketplace": "amazon.de",
                "external_order_id": "302-4417385-9926741",
                "revision": 1,
                "exceptions": [
                    {
                        "exception_id": EXCEPTION,
                        "line_id": "53842117299403",
                        "gtin": "4006381333931",
                        "title": "STABILO BOSS Textmarker, 4er-Etui",
                        "quantity": 2,
                        "unit_price": "5.49",
                        "problem": "unknown_gtin"
                    }
                ]
            }),
        )
    }

    pub(super) fn order_status_changed() -> Value {
        envelope::<OrderStatusChanged>(
            Meta {
                n: 0x04,
                correlation: ORDER,
                causation: Some(0x06),
                at: "2026-03-14T09:26:54.030Z",
                producer: "orders",
                span: Some("b7ad6b7169203331"),
            },
            json!({
                "order_id": ORDER,
                "store_id": STORE,
                "channel": "storefront",
                "external_order_id": "100234",
                "from": "accepted",
                "to": "processing",
                "sequence": 2,
                "reason": "Bestand reserviert in berlin-1 und hamburg-2",
                "customer": contact()
            }),
        )
    }

    pub(super) fn order_cancelled() -> Value {
        envelope::<OrderCancelled>(
            Meta {
                n: 0x07,
                correlation: ORDER,
                causation: Some(0x05),
                at: "2026-03-14T09:41:08.377Z",
                producer: "orders",
                span: Some("c1d2e3f4a5b6c7d8"),
            },
            json!({
                "order_id": ORDER,
                "store_id": STORE,
                "channel": "storefront",
                "external_order_id": "100234",
                "request_id": CANCEL_REQUEST,
                "scope": "order",
                "lines": [
                    { "line_id": "1", "sku": "MUG-BLU-350", "quantity": 2 },
                    { "line_id": "2", "sku": "TEA-EARL-100", "quantity": 1 }
                ],
                "reason": "Versehentlich doppelt bestellt"
            }),
        )
    }

    pub(super) fn order_address_changed() -> Value {
        envelope::<OrderAddressChanged>(
            Meta {
                n: 0x24,
                correlation: ORDER,
                causation: Some(0x01),
                at: "2026-03-14T10:05:12.402Z",
                producer: "orders",
                span: Some("e5f6a7b8c9d0e1f2"),
            },
            json!({
                "order_id": ORDER,
                "store_id": STORE,
                "external_order_id": "100234",
                "revision": 2,
                "billing_address": billing_address(),
                "shipping_address": {
                    "name": "Jörg Schäfer",
                    "lines": ["Paketshop Kiosk am Leopoldplatz", "Müllerstraße 24"],
                    "postal_code": "13353",
                    "city": "Berlin",
                    "country": "DE",
                    "phone": "+49 30 1234567"
                }
            }),
        )
    }

    pub(super) fn order_hold_changed() -> Value {
        envelope::<OrderHoldChanged>(
            Meta {
                n: 0x2c,
                correlation: ORDER,
                causation: Some(0x2a),
                at: "2026-03-14T09:20:11.318Z",
                producer: "orders",
                span: Some("f60718293a4b5c6d"),
            },
            json!({
                "order_id": ORDER,
                "store_id": STORE,
                "external_order_id": "100234",
                "held": true,
                "sequence": 1,
                "reason": "Zahlung wird vom Zahlungsdienstleister geprüft",
                "by": { "kind": "operator", "id": "anna.becker@example.de" }
            }),
        )
    }

    pub(super) fn order_completed() -> Value {
        envelope::<OrderCompleted>(
            Meta {
                n: 0x0a,
                correlation: ORDER,
                causation: Some(0x19),
                at: "2026-03-17T11:02:40.218Z",
                producer: "orders",
                span: Some("d4e5f6a7b8c9d0e1"),
            },
            json!({
                "order_id": ORDER,
                "store_id": STORE,
                "channel": "storefront",
                "external_order_id": "100234",
                "currency": "EUR",
                "total": "37.50",
                "invoice_numbers": ["RE-2026-000123", "RE-2026-000124"]
            }),
        )
    }
}
