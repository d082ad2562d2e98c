//! Invoices and credit notes.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{
    Address, Customer, DocumentRef, DocumentTotals, PricedLine, Pricing, unique_lines,
};
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{
    Amount, CountryCode, CurrencyCode, EmailAddress, Quantity, Sku, StoreId, TaxCategory, TaxClass,
    VatId, WarehouseId,
};
use crate::validate::{At, Validate, count, ensure, opt_text, text};

/// Most lines one invoice may have.
const MAX_LINES: usize = 1000;

string_enum! {
    /// When a store invoices.
    pub enum InvoiceTiming {
        /// When the order is accepted: one invoice for the whole order.
        OnOrder = "on_order",
        /// When goods are dispatched: one invoice per shipment, for what it contains.
        OnShipment = "on_shipment",
    }
}

/// A line to invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLine {
    /// The order line.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The product.
    pub sku: Sku,
    /// Product name as it goes on the invoice.
    #[schemars(length(max = 500))]
    pub title: String,
    /// Units invoiced (for per-shipment invoices: units in the shipment).
    pub quantity: Quantity,
    /// Price of one unit as ordered, gross or net as `prices_include_tax` says.
    pub unit_price: Amount,
    /// The share of the line's discount that falls on these units.
    pub discount: Amount,
    /// VAT category; invoicing turns it into a rate for the place of supply.
    pub tax_category: TaxCategory,
    /// The product's tax class, where the catalog gives one: rates differ by class in
    /// some countries (books, food, ...). Without it the category decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<TaxClass>,
    /// For an exempt line: the provision the supply is exempt under, from the catalog,
    /// printed on the invoice (Art. 226(11) of Directive 2006/112/EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub exemption_reference: Option<String>,
}

impl PricedLine for InvoiceLine {
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

/// `invoice.requested`: issue an invoice for (part of) an order.
///
/// Self-contained: carries the buyer, the addresses and the priced lines, so that invoicing
/// needs no copy of the order. Invoicing decides the VAT treatment (domestic, intra-EU
/// reverse charge with a valid VAT id, OSS distance sale, zero-rated export), numbers the
/// invoice gap-free in the store's series and renders the PDF. Issued once per
/// `request_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceRequested {
    /// Id of the request; `invoice.issued` echoes it, and a repeat issues nothing new.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store, whose invoice settings (seller, VAT id, number series) apply.
    pub store_id: StoreId,
    /// Why now: the store's invoice timing.
    pub timing: InvoiceTiming,
    /// The shipment being invoiced; required when `timing` is `on_shipment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<Uuid>,
    /// The warehouse the goods leave from: its address is where the supply starts for VAT
    /// (a German store shipping from a Dutch warehouse makes a Dutch supply). Absent (an
    /// invoice on order, before stock is allocated): the seller's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<WarehouseId>,
    /// The order number the buyer knows.
    #[schemars(length(max = 128))]
    pub external_order_id: String,
    /// When the order was placed (the invoice shows it).
    pub placed_at: DateTime<Utc>,
    /// Currency of every amount.
    pub currency: CurrencyCode,
    /// Whether unit prices, discount and shipping include VAT.
    pub prices_include_tax: bool,
    /// The buyer.
    pub buyer: Customer,
    /// Invoice address.
    pub billing_address: Address,
    /// Delivery address: its country is the place of supply for distance sales and exports.
    pub shipping_address: Address,
    /// What to invoice, at least one line.
    pub lines: Vec<InvoiceLine>,
    /// Shipping to invoice with these lines (usually on the first invoice of an order, 0 on
    /// the others).
    pub shipping: Amount,
    /// Order-level discount to apply to this invoice.
    pub discount: Amount,
}

impl Message for InvoiceRequested {
    const TYPE: &'static str = "invoice.requested";
    const VERSION: u16 = 1;
}

impl Validate for InvoiceRequested {
    fn validate(&self) -> Result<(), ContractError> {
        ensure(
            self.timing != InvoiceTiming::OnShipment || self.shipment_id.is_some(),
            || "required when invoicing on shipment".to_owned(),
        )
        .at("payload.shipment_id")?;
        text(&self.external_order_id, 128).at("payload.external_order_id")?;
        self.buyer.check("payload.buyer")?;
        self.billing_address.check("payload.billing_address")?;
        self.shipping_address.check("payload.shipping_address")?;
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
            tax: None,
            total: None,
        }
        .check()
    }
}

string_enum! {
    /// How VAT was applied to a document.
    pub enum VatTreatment {
        /// Taxed at the seller's rates: domestic sales, and EU consumer sales while the
        /// seller is under the EUR 10,000 distance-sales threshold.
        Domestic = "domestic",
        /// Intra-EU sale to a business with a valid VAT id: no VAT charged, the buyer
        /// accounts for it (reverse charge).
        IntraEuReverseCharge = "intra_eu_reverse_charge",
        /// EU consumer sale above the threshold: taxed at the destination country's rates,
        /// declared under the One-Stop-Shop.
        OssDistanceSale = "oss_distance_sale",
        /// Export outside the EU: zero-rated.
        ExportZeroRated = "export_zero_rated",
    }
}

/// Buyer details that accounting exports and OSS reports need without opening the PDF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentBuyer {
    /// Buyer name (company, or person).
    #[schemars(length(max = 200))]
    pub name: String,
    /// Buyer's country (billing address).
    pub country: CountryCode,
    /// Buyer's VAT id, for reverse-charge documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<VatId>,
    /// Where to send the document, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
}

/// A document number as printed: 1 to 64 of `A-Z a-z 0-9 - / _ .`.
fn document_number(s: &str) -> Result<(), String> {
    ensure(
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_.".contains(&b)),
        || format!("`{s}` is not a document number (1 to 64 of A-Z, a-z, 0-9, - / _ .)"),
    )
}

fn check_document(
    number: &str,
    number_field: &str,
    buyer: &DocumentBuyer,
    treatment: VatTreatment,
    totals: &DocumentTotals,
    currency: CurrencyCode,
) -> Result<(), ContractError> {
    document_number(number).at(number_field)?;
    text(&buyer.name, 200).at("payload.buyer.name")?;
    ensure(
        treatment != VatTreatment::IntraEuReverseCharge || buyer.vat_id.is_some(),
        || "a reverse-charge document must show the buyer's VAT id".to_owned(),
    )
    .at("payload.buyer.vat_id")?;
    ensure(
        treatment != VatTreatment::IntraEuReverseCharge || totals.tax.is_zero(),
        || {
            format!(
                "a reverse-charge document charges no VAT, this one charges {}",
                totals.tax
            )
        },
    )
    .at("payload.totals.tax")?;
    totals.check("payload.totals", currency)
}

/// The issued document's files: the PDF, and the XML when named.
fn check_files(pdf: &DocumentRef, xml: Option<&DocumentRef>) -> Result<(), ContractError> {
    pdf.check("payload.pdf")?;
    match xml {
        Some(xml) => xml.check("payload.xml"),
        None => Ok(()),
    }
}

/// `invoice.issued`: an invoice was numbered, stored and rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceIssued {
    /// Orderly's invoice id.
    pub invoice_id: Uuid,
    /// The number printed on it, gap-free within the store's series (`RE-2026-000123`).
    pub invoice_number: String,
    /// The `invoice.requested` this answers.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (the seller).
    pub store_id: StoreId,
    /// The shipment invoiced, for per-shipment invoices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<Uuid>,
    /// The invoice date.
    pub issued_at: DateTime<Utc>,
    /// Currency of the totals.
    pub currency: CurrencyCode,
    /// How VAT was applied.
    pub vat_treatment: VatTreatment,
    /// The buyer, as invoiced.
    pub buyer: DocumentBuyer,
    /// Net, tax and gross totals with the per-rate breakdown.
    pub totals: DocumentTotals,
    /// The rendered PDF: a Factur-X / ZUGFeRD invoice (PDF/A-3 with its EN 16931 XML
    /// embedded as `factur-x.xml`).
    pub pdf: DocumentRef,
    /// The structured e-invoice alone: the EN 16931 CII XML embedded in the PDF, stored
    /// beside it in the document store. Absent in messages sent before e-invoices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<DocumentRef>,
}

impl Message for InvoiceIssued {
    const TYPE: &'static str = "invoice.issued";
    const VERSION: u16 = 1;
}

impl Validate for InvoiceIssued {
    fn validate(&self) -> Result<(), ContractError> {
        check_document(
            &self.invoice_number,
            "payload.invoice_number",
            &self.buyer,
            self.vat_treatment,
            &self.totals,
            self.currency,
        )?;
        check_files(&self.pdf, self.xml.as_ref())
    }
}

string_enum! {
    /// Why a credit note was issued.
    pub enum CreditReason {
        /// A refund (`order.refund_requested`).
        Refund = "refund",
        /// A cancellation of invoiced lines (`order.cancelled`).
        Cancellation = "cancellation",
    }
}

/// `credit_note.issued`: a credit note was issued against an invoice, reversing (part of) it
/// with the invoice's VAT treatment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteIssued {
    /// Orderly's credit note id.
    pub credit_note_id: Uuid,
    /// The number printed on it, gap-free within the store's credit note series.
    pub credit_note_number: String,
    /// The invoice it credits.
    pub invoice_id: Uuid,
    /// That invoice's number (credit notes must quote it).
    pub invoice_number: String,
    /// The refund or cancellation request it answers, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    /// Why.
    pub reason: CreditReason,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The store (the seller).
    pub store_id: StoreId,
    /// The credit note date.
    pub issued_at: DateTime<Utc>,
    /// Currency of the totals (the invoice's).
    pub currency: CurrencyCode,
    /// The invoice's VAT treatment, reversed.
    pub vat_treatment: VatTreatment,
    /// The buyer, as on the invoice.
    pub buyer: DocumentBuyer,
    /// Amounts credited (positive).
    pub totals: DocumentTotals,
    /// The rendered PDF: a Factur-X / ZUGFeRD invoice (PDF/A-3 with its EN 16931 XML
    /// embedded as `factur-x.xml`).
    pub pdf: DocumentRef,
    /// The structured e-invoice alone: the EN 16931 CII XML embedded in the PDF, stored
    /// beside it in the document store. Absent in messages sent before e-invoices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<DocumentRef>,
}

impl Message for CreditNoteIssued {
    const TYPE: &'static str = "credit_note.issued";
    const VERSION: u16 = 1;
}

impl Validate for CreditNoteIssued {
    fn validate(&self) -> Result<(), ContractError> {
        document_number(&self.invoice_number).at("payload.invoice_number")?;
        check_document(
            &self.credit_note_number,
            "payload.credit_note_number",
            &self.buyer,
            self.vat_treatment,
            &self.totals,
            self.currency,
        )?;
        check_files(&self.pdf, self.xml.as_ref())
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            InvoiceRequested,
            example: golden::invoice_requested,
            from: "fulfillment",
            says: "invoice (part of) an order; self-contained: buyer, addresses, priced lines",
            to: [INVOICING],
        ),
        entry!(
            InvoiceIssued,
            example: golden::invoice_issued,
            from: "invoicing",
            says: "an invoice was numbered and rendered; totals, VAT treatment, PDF",
            to: [ORDERS, NOTIFICATIONS, API, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            CreditNoteIssued,
            example: golden::credit_note_issued,
            from: "invoicing",
            says: "a credit note against an invoice",
            to: [ORDERS, NOTIFICATIONS, API, OUT_MERCHANT_EVENTS],
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    /// Invoicing on shipment: the Berlin parcel (mugs) carries the shipping charge.
    pub(super) fn invoice_requested() -> Value {
        envelope::<InvoiceRequested>(
            Meta {
                n: 0x1b,
                correlation: ORDER,
                causation: Some(0x17),
                at: "2026-03-15T04:12:09.655Z",
                producer: "fulfillment",
                span: Some("1b2c3d4e5f607182"),
            },
            json!({
                "request_id": INVOICE_REQUEST,
                "order_id": ORDER,
                "store_id": STORE,
                "timing": "on_shipment",
                "shipment_id": SHIPMENT,
                "warehouse_id": "berlin-1",
                "external_order_id": "100234",
                "placed_at": "2026-03-14T09:26:51Z",
                "currency": "EUR",
                "prices_include_tax": true,
                "buyer": customer(),
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
                    }
                ],
                "shipping": "4.95",
                "discount": "0.00"
            }),
        )
    }

    /// 2 × 12.90 + 4.95 shipping = 30.75 gross at 19 %: 25.84 net + 4.91 VAT.
    pub(super) fn invoice_issued() -> Value {
        envelope::<InvoiceIssued>(
            Meta {
                n: 0x19,
                correlation: ORDER,
                causation: Some(0x1b),
                at: "2026-03-15T04:12:10.384Z",
                producer: "invoicing",
                span: Some("4e5f607182930415"),
            },
            json!({
                "invoice_id": INVOICE,
                "invoice_number": "RE-2026-000123",
                "request_id": INVOICE_REQUEST,
                "order_id": ORDER,
                "store_id": STORE,
                "shipment_id": SHIPMENT,
                "issued_at": "2026-03-15T04:12:10Z",
                "currency": "EUR",
                "vat_treatment": "domestic",
                "buyer": buyer(),
                "totals": {
                    "net": "25.84",
                    "tax": "4.91",
                    "gross": "30.75",
                    "breakdown": [{ "rate": "19", "category": "S", "net": "25.84", "tax": "4.91" }]
                },
                "pdf": pdf(
                    "invoices",
                    "RE-2026-000123",
                    "9f2c4be1d0a6e8f3b7c5d2a1e4f6b8c0d9e7f5a3b1c2d4e6f8a0b2c4d6e8f0a1",
                    48213
                )
            }),
        )
    }

    /// One broken mug refunded: 12.90 gross = 10.84 net + 2.06 VAT.
    pub(super) fn credit_note_issued() -> Value {
        envelope::<CreditNoteIssued>(
            Meta {
                n: 0x1c,
                correlation: ORDER,
                causation: Some(0x08),
                at: "2026-03-19T14:05:01.127Z",
                producer: "invoicing",
                span: Some("5f60718293041526"),
            },
            json!({
                "credit_note_id": CREDIT_NOTE,
                "credit_note_number": "GS-2026-000017",
                "invoice_id": INVOICE,
                "invoice_number": "RE-2026-000123",
                "request_id": REFUND_REQUEST,
                "reason": "refund",
                "order_id": ORDER,
                "store_id": STORE,
                "issued_at": "2026-03-19T14:05:01Z",
                "currency": "EUR",
                "vat_treatment": "domestic",
                "buyer": buyer(),
                "totals": {
                    "net": "10.84",
                    "tax": "2.06",
                    "gross": "12.90",
                    "breakdown": [{ "rate": "19", "category": "S", "net": "10.84", "tax": "2.06" }]
                },
                "pdf": pdf(
                    "credit-notes",
                    "GS-2026-000017",
                    "0c8d3f5e7a9b1c2d4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a4b6c8d",
                    39870
                )
            }),
        )
    }
}
