//! The issued document: an immutable snapshot of everything printed on an invoice or a
//! credit note (Art. 226 of Directive 2006/112/EC), stored as it was issued and rendered
//! to PDF from the same value.

use chrono::NaiveDate;
use orderly_contracts::messages::{
    Address, EinvoiceFormat, ElectronicAddress, PayeeAccount, SellerContact,
    StoreInvoiceSettingsUpdated,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::amounts::{PricedLine, RateTotal};
use super::language::Language;
use super::vat::{Rule, VatIdCheck};

/// Invoice or credit note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// An invoice.
    Invoice,
    /// A credit note against an invoice.
    CreditNote,
}

impl DocumentKind {
    /// The stored form, also the number series' kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::CreditNote => "credit_note",
        }
    }

    /// The kind from its stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invoice" => Some(Self::Invoice),
            "credit_note" => Some(Self::CreditNote),
            _ => None,
        }
    }

    /// Where its PDF is referenced from in the issued message.
    pub fn pdf_uri(self, number: &str) -> String {
        self.uri(number, "pdf")
    }

    /// Where its structured e-invoice (XML) is referenced from in the issued message.
    pub fn xml_uri(self, number: &str) -> String {
        self.uri(number, "xml")
    }

    fn uri(self, number: &str, extension: &str) -> String {
        let folder = match self {
            Self::Invoice => "invoices",
            Self::CreditNote => "credit-notes",
        };
        format!("orderly://invoicing/{folder}/{number}.{extension}")
    }
}

/// A party as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// Legal name (company, or person).
    pub name: String,
    /// Contact person, when the name is a company's.
    pub attention: Option<String>,
    /// Street lines.
    pub lines: Vec<String>,
    /// Postal code and city, as one printed line.
    pub city_line: String,
    /// ISO country code.
    pub country: String,
    /// VAT id, if printed.
    pub vat_id: Option<String>,
    /// National tax number, if printed.
    pub tax_number: Option<String>,
    /// The postcode alone (structured e-invoices need it apart from the city). Snapshots
    /// stored before e-invoices have none: their `city_line` holds both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// The city alone (see `postal_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

impl Party {
    /// The seller, from the store's settings.
    pub fn seller(s: &StoreInvoiceSettingsUpdated) -> Self {
        Self {
            name: s.legal_name.clone(),
            attention: None,
            lines: s.address.lines.clone(),
            city_line: city_line(&s.address),
            country: s.address.country.as_str().to_owned(),
            vat_id: s.vat_id.as_ref().map(|v| v.as_str().to_owned()),
            tax_number: s.tax_number.clone(),
            postal_code: s.address.postal_code.clone(),
            city: Some(s.address.city.clone()),
        }
    }

    /// A buyer from their billing address. The legal name is the address's company, else
    /// for a business buyer its own name (the address's person then reads "attention"),
    /// else the person on the address.
    pub fn buyer(name: &str, is_business: bool, address: &Address, vat_id: Option<String>) -> Self {
        let (name, attention) = match &address.company {
            Some(company) => (company.clone(), Some(address.name.clone())),
            None if is_business && name != address.name => {
                (name.to_owned(), Some(address.name.clone()))
            }
            None => (address.name.clone(), None),
        };
        Self {
            name,
            attention,
            lines: address.lines.clone(),
            city_line: city_line(address),
            country: address.country.as_str().to_owned(),
            vat_id,
            tax_number: None,
            postal_code: address.postal_code.clone(),
            city: Some(address.city.clone()),
        }
    }
}

fn city_line(a: &Address) -> String {
    let mut s = String::new();
    if let Some(pc) = &a.postal_code {
        s.push_str(pc);
        s.push(' ');
    }
    s.push_str(&a.city);
    if let Some(region) = &a.region {
        s.push_str(", ");
        s.push_str(region);
    }
    s
}

/// The invoice a credit note credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditedInvoice {
    /// Its number.
    pub number: String,
    /// Its issue date.
    pub issue_date: NaiveDate,
    /// Why it is credited.
    pub reason: String,
}

/// Everything printed on a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Invoice or credit note.
    pub kind: DocumentKind,
    /// The sequential number.
    pub number: String,
    /// Date of issue.
    pub issue_date: NaiveDate,
    /// Date of supply (Art. 226(7)).
    pub supply_date: NaiveDate,
    /// The order number the buyer knows.
    pub order_reference: String,
    /// ISO 4217.
    pub currency: String,
    /// The seller.
    pub seller: Party,
    /// The buyer.
    pub buyer: Party,
    /// Where the goods went, when that is not the buyer's address.
    pub ship_to: Option<Party>,
    /// The lines (positive amounts; a credit note's are the amounts credited).
    pub lines: Vec<PricedLine>,
    /// Per rate, highest first.
    pub breakdown: Vec<RateTotal>,
    /// Σ net.
    pub net: Decimal,
    /// Σ VAT.
    pub tax: Decimal,
    /// net + VAT.
    pub gross: Decimal,
    /// The VAT rule (the credited invoice's, for a credit note).
    pub rule: Rule,
    /// Why that rule, for the accountant.
    pub reason: String,
    /// How far the buyer's VAT id was checked (reverse charge).
    pub vat_id_check: Option<VatIdCheck>,
    /// Legal wording (reverse charge, export, small business).
    pub legal_note: Option<String>,
    /// For a credit note: the invoice credited.
    pub credits: Option<CreditedInvoice>,
    /// Days to pay (invoices).
    pub payment_terms_days: Option<u16>,
    /// The store's footer.
    pub footer: Option<String>,
    /// The language it is printed in (the store's, when issued; a credit note keeps its
    /// invoice's). Documents stored before languages existed were English.
    #[serde(default)]
    pub language: Language,
    /// What structured e-invoices need beyond the printed document. Documents stored
    /// before e-invoices have none (their XML is Factur-X without these terms).
    #[serde(default)]
    pub einvoice: EinvoiceData,
    /// The VAT in the national currency where it is due, when the document is in another
    /// currency (Art. 230).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_national: Option<super::fx::Conversion>,
}

/// What structured e-invoices need beyond what the PDF prints, snapshotted with it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EinvoiceData {
    /// The format written beside the PDF (`None`: Factur-X's CII, the one the PDF embeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<EinvoiceFormat>,
    /// BT-34.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_address: Option<ElectronicAddress>,
    /// BG-6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_contact: Option<SellerContact>,
    /// BG-17.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<PayeeAccount>,
    /// BT-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_reference: Option<String>,
    /// BT-49.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_address: Option<ElectronicAddress>,
}

impl EinvoiceData {
    /// What a request and its store's settings give: the buyer's format over the store's.
    pub fn of(
        settings: &StoreInvoiceSettingsUpdated,
        buyer: &orderly_contracts::messages::Customer,
    ) -> Self {
        let format = buyer.e_invoice_format.unwrap_or(settings.e_invoice_format);
        Self {
            format: (format != EinvoiceFormat::Facturx).then_some(format),
            seller_address: settings.electronic_address.clone(),
            seller_contact: settings.contact.clone(),
            payee: settings.payee_account.clone(),
            buyer_reference: buyer.buyer_reference.clone(),
            buyer_address: buyer.electronic_address.clone(),
        }
    }

    /// The terms the chosen format requires that are missing, by name.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let mut need = |present: bool, what: &'static str| {
            if !present {
                missing.push(what);
            }
        };
        // Both UBL formats route by electronic address; XRechnung asks for more.
        let ubl = matches!(
            self.format,
            Some(EinvoiceFormat::Peppol | EinvoiceFormat::Xrechnung)
        );
        let xrechnung = self.format == Some(EinvoiceFormat::Xrechnung);
        need(
            !ubl || self.seller_address.is_some(),
            "the store's electronic_address (BT-34)",
        );
        need(
            !ubl || self.buyer_address.is_some(),
            "the buyer's electronic_address (BT-49)",
        );
        need(
            !xrechnung || self.buyer_reference.is_some(),
            "the buyer's buyer_reference (BT-10, the Leitweg-ID)",
        );
        need(
            !xrechnung || self.seller_contact.is_some(),
            "the store's contact (BG-6: name, phone, email)",
        );
        need(
            !xrechnung || self.payee.is_some(),
            "the store's payee_account (BG-16/17: payment instructions)",
        );
        missing
    }
}
