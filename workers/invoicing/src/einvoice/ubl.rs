//! The UBL 2.1 invoice or credit note of a document, as Peppol BIS Billing 3.0 and
//! XRechnung 3.0 (UBL) want it: the same EN 16931 terms as the CII ([`super::cii`]), in
//! UBL's element order; amounts carry their currency. Every business term written is named
//! (`BT-n`) beside it.

use orderly_contracts::messages::{EinvoiceFormat, ElectronicAddress};
use rust_decimal::Decimal;

use super::xml::Xml;
use super::{VatCode, categories, due_date, line_code};
use crate::domain::document::{Document, DocumentKind, Party};

const INVOICE_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const CREDIT_NOTE_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

/// BT-24 of each UBL format.
fn customization(format: EinvoiceFormat) -> &'static str {
    match format {
        EinvoiceFormat::Xrechnung => {
            "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
        }
        EinvoiceFormat::Peppol | EinvoiceFormat::Facturx => {
            "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
        }
    }
}

/// BT-23: the Peppol billing process (XRechnung uses it too).
const PROFILE: &str = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0";

fn amount(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

fn number(d: Decimal) -> String {
    d.normalize().to_string()
}

struct Writer<'a> {
    x: Xml,
    currency: &'a str,
}

impl Writer<'_> {
    fn money(&mut self, tag: &str, d: Decimal) {
        let currency = self.currency.to_owned();
        self.x
            .leaf_with(tag, &[("currencyID", &currency)], &amount(d));
    }

    fn endpoint(&mut self, address: Option<&ElectronicAddress>) {
        if let Some(a) = address {
            self.x
                .leaf_with("cbc:EndpointID", &[("schemeID", &a.scheme)], &a.id); // BT-34 / BT-49
        }
    }

    fn address(&mut self, tag: &'static str, p: &Party) {
        let x = &mut self.x;
        x.open(tag, &[]);
        if let Some(line) = p.lines.first() {
            x.leaf("cbc:StreetName", line); // BT-35 / BT-50 / BT-75
        }
        if let Some(line) = p.lines.get(1) {
            x.leaf("cbc:AdditionalStreetName", line); // BT-36 / BT-51 / BT-76
        }
        let (postcode, city) = match (&p.postal_code, &p.city) {
            (pc, Some(city)) => (pc.clone(), city.clone()),
            (_, None) => (None, p.city_line.clone()),
        };
        x.leaf("cbc:CityName", &city); // BT-37 / BT-52 / BT-77
        if let Some(pc) = postcode {
            x.leaf("cbc:PostalZone", &pc); // BT-38 / BT-53 / BT-78
        }
        if let Some(line) = p.lines.get(2) {
            x.open("cac:AddressLine", &[]);
            x.leaf("cbc:Line", line); // BT-162 / BT-163 / BT-165
            x.close();
        }
        x.open("cac:Country", &[]);
        x.leaf("cbc:IdentificationCode", &p.country); // BT-40 / BT-55 / BT-80
        x.close();
        x.close();
    }

    fn tax_scheme(&mut self, company_id: &str, scheme: &str) {
        let x = &mut self.x;
        x.open("cac:PartyTaxScheme", &[]);
        x.leaf("cbc:CompanyID", company_id); // BT-31 / BT-32 / BT-48
        x.open("cac:TaxScheme", &[]);
        x.leaf("cbc:ID", scheme);
        x.close();
        x.close();
    }

    fn party(
        &mut self,
        tag: &'static str,
        p: &Party,
        endpoint: Option<&ElectronicAddress>,
        doc: &Document,
        seller: bool,
    ) {
        self.x.open(tag, &[]);
        self.x.open("cac:Party", &[]);
        self.endpoint(endpoint);
        self.address("cac:PostalAddress", p);
        if let Some(vat) = &p.vat_id {
            self.tax_scheme(vat, "VAT");
        }
        if seller && let Some(tax) = &p.tax_number {
            self.tax_scheme(tax, "FC");
        }
        self.x.open("cac:PartyLegalEntity", &[]);
        self.x.leaf("cbc:RegistrationName", &p.name); // BT-27 / BT-44
        self.x.close();
        let contact = if seller {
            doc.einvoice.seller_contact.as_ref().map(|c| {
                (
                    c.name.clone(),
                    Some(c.phone.clone()),
                    Some(c.email.as_str().to_owned()),
                )
            })
        } else {
            p.attention.clone().map(|name| (name, None, None))
        };
        if let Some((name, phone, email)) = contact {
            self.x.open("cac:Contact", &[]);
            self.x.leaf("cbc:Name", &name); // BT-41 / BT-56
            if let Some(phone) = phone {
                self.x.leaf("cbc:Telephone", &phone); // BT-42
            }
            if let Some(email) = email {
                self.x.leaf("cbc:ElectronicMail", &email); // BT-43
            }
            self.x.close();
        }
        self.x.close();
        self.x.close();
    }
}

/// The UBL invoice (or credit note) of `doc` in `format` (Peppol BIS 3.0 or XRechnung).
pub fn ubl(doc: &Document, format: EinvoiceFormat) -> String {
    let invoice = doc.kind == DocumentKind::Invoice;
    let mut w = Writer {
        x: Xml::new(),
        currency: &doc.currency,
    };
    let (root, ns) = if invoice {
        ("Invoice", INVOICE_NS)
    } else {
        ("CreditNote", CREDIT_NOTE_NS)
    };
    w.x.open(
        root,
        &[("xmlns", ns), ("xmlns:cac", CAC), ("xmlns:cbc", CBC)],
    );
    w.x.leaf("cbc:CustomizationID", customization(format)); // BT-24
    w.x.leaf("cbc:ProfileID", PROFILE); // BT-23
    w.x.leaf("cbc:ID", &doc.number); // BT-1
    w.x.leaf("cbc:IssueDate", &doc.issue_date.to_string()); // BT-2
    if invoice {
        if let Some(due) = due_date(doc) {
            w.x.leaf("cbc:DueDate", &due.to_string()); // BT-9
        }
        w.x.leaf("cbc:InvoiceTypeCode", "380"); // BT-3
    } else {
        w.x.leaf("cbc:CreditNoteTypeCode", "381"); // BT-3
    }
    for note in [&doc.legal_note, &doc.footer].into_iter().flatten() {
        w.x.leaf("cbc:Note", note); // BT-22
    }
    if let Some(credited) = &doc.credits {
        w.x.leaf("cbc:Note", &credited.reason);
    }
    w.x.leaf("cbc:DocumentCurrencyCode", &doc.currency); // BT-5
    if let Some(c) = &doc.vat_national {
        w.x.leaf("cbc:TaxCurrencyCode", &c.currency); // BT-6 (Art. 230)
    }
    if let Some(reference) = &doc.einvoice.buyer_reference {
        w.x.leaf("cbc:BuyerReference", reference); // BT-10
    }
    w.x.open("cac:OrderReference", &[]);
    w.x.leaf("cbc:ID", &doc.order_reference); // BT-13
    w.x.close();
    if let Some(credited) = &doc.credits {
        w.x.open("cac:BillingReference", &[]);
        w.x.open("cac:InvoiceDocumentReference", &[]);
        w.x.leaf("cbc:ID", &credited.number); // BT-25
        w.x.leaf("cbc:IssueDate", &credited.issue_date.to_string()); // BT-26
        w.x.close();
        w.x.close();
    }
    w.party(
        "cac:AccountingSupplierParty",
        &doc.seller,
        doc.einvoice.seller_address.as_ref(),
        doc,
        true,
    );
    w.party(
        "cac:AccountingCustomerParty",
        &doc.buyer,
        doc.einvoice.buyer_address.as_ref(),
        doc,
        false,
    );
    let cats = categories(doc);
    w.x.open("cac:Delivery", &[]);
    w.x.leaf("cbc:ActualDeliveryDate", &doc.supply_date.to_string()); // BT-72
    let ship_to = doc.ship_to.as_ref().or_else(|| {
        cats.iter()
            .any(|c| c.code == VatCode::K)
            .then_some(&doc.buyer)
    });
    if let Some(p) = ship_to {
        w.x.open("cac:DeliveryLocation", &[]);
        w.address("cac:Address", p); // BG-15
        w.x.close();
    }
    w.x.close();
    if let Some(payee) = &doc.einvoice.payee {
        w.x.open("cac:PaymentMeans", &[]);
        w.x.leaf("cbc:PaymentMeansCode", "58"); // BT-81: SEPA credit transfer
        w.x.leaf("cbc:PaymentID", &doc.number); // BT-83: the remittance information
        w.x.open("cac:PayeeFinancialAccount", &[]);
        w.x.leaf("cbc:ID", &payee.iban); // BT-84
        if let Some(holder) = &payee.holder {
            w.x.leaf("cbc:Name", holder); // BT-85
        }
        if let Some(bic) = &payee.bic {
            w.x.open("cac:FinancialInstitutionBranch", &[]);
            w.x.leaf("cbc:ID", bic); // BT-86
            w.x.close();
        }
        w.x.close();
        w.x.close();
    }
    if let (true, Some(days)) = (invoice, doc.payment_terms_days) {
        w.x.open("cac:PaymentTerms", &[]);
        w.x.leaf("cbc:Note", &doc.language.payment_terms(days)); // BT-20
        w.x.close();
    } else if !invoice {
        w.x.open("cac:PaymentTerms", &[]);
        w.x.leaf("cbc:Note", "The amount credited is paid back to the buyer.");
        w.x.close();
    }
    w.x.open("cac:TaxTotal", &[]);
    w.money("cbc:TaxAmount", doc.tax); // BT-110
    for c in &cats {
        w.x.open("cac:TaxSubtotal", &[]);
        w.money("cbc:TaxableAmount", c.basis); // BT-116
        w.money("cbc:TaxAmount", c.tax); // BT-117
        w.x.open("cac:TaxCategory", &[]);
        w.x.leaf("cbc:ID", c.code.as_str()); // BT-118
        w.x.leaf("cbc:Percent", &number(c.rate)); // BT-119
        if let Some(code) = c.code.exemption_code() {
            w.x.leaf("cbc:TaxExemptionReasonCode", code); // BT-121
        }
        if let Some(reason) = &c.exemption_reason {
            w.x.leaf("cbc:TaxExemptionReason", reason); // BT-120
        }
        w.x.open("cac:TaxScheme", &[]);
        w.x.leaf("cbc:ID", "VAT");
        w.x.close();
        w.x.close();
        w.x.close();
    }
    w.x.close();
    if let Some(c) = &doc.vat_national {
        // BT-111: the VAT in the tax currency, without a breakdown.
        w.x.open("cac:TaxTotal", &[]);
        w.x.leaf_with(
            "cbc:TaxAmount",
            &[("currencyID", &c.currency)],
            &amount(c.vat),
        );
        w.x.close();
    }
    w.x.open("cac:LegalMonetaryTotal", &[]);
    w.money("cbc:LineExtensionAmount", doc.net); // BT-106
    w.money("cbc:TaxExclusiveAmount", doc.net); // BT-109
    w.money("cbc:TaxInclusiveAmount", doc.gross); // BT-112
    w.money("cbc:PayableAmount", doc.gross); // BT-115
    w.x.close();
    let (line_tag, quantity_tag) = if invoice {
        ("cac:InvoiceLine", "cbc:InvoicedQuantity")
    } else {
        ("cac:CreditNoteLine", "cbc:CreditedQuantity")
    };
    for (i, line) in doc.lines.iter().enumerate() {
        let code = line_code(doc.rule, line.category, line.rate);
        w.x.open(line_tag, &[]);
        w.x.leaf("cbc:ID", &(i + 1).to_string()); // BT-126
        w.x.leaf_with(
            quantity_tag,
            &[("unitCode", "C62")],
            &line.quantity.to_string(),
        ); // BT-129/130
        w.money("cbc:LineExtensionAmount", line.net); // BT-131
        w.x.open("cac:Item", &[]);
        w.x.leaf("cbc:Name", &line.title); // BT-153
        if !line.sku.is_empty() {
            w.x.open("cac:SellersItemIdentification", &[]);
            w.x.leaf("cbc:ID", &line.sku); // BT-155
            w.x.close();
        }
        w.x.open("cac:ClassifiedTaxCategory", &[]);
        w.x.leaf("cbc:ID", code.as_str()); // BT-151
        w.x.leaf("cbc:Percent", &number(line.rate)); // BT-152
        w.x.open("cac:TaxScheme", &[]);
        w.x.leaf("cbc:ID", "VAT");
        w.x.close();
        w.x.close();
        w.x.close();
        w.x.open("cac:Price", &[]);
        let quantity = Decimal::from(line.quantity.max(1));
        let currency = doc.currency.clone();
        w.x.leaf_with(
            "cbc:PriceAmount",
            &[("currencyID", &currency)],
            &number((line.net / quantity).round_dp(4)),
        ); // BT-146
        w.x.close();
        w.x.close();
    }
    w.x.finish()
}
