//! Parts shared by several payloads: addresses, customers, actors, order references,
//! document references and totals, and the price arithmetic every order-shaped payload
//! checks the same way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ContractError;
use crate::types::{
    Amount, Channel, CountryCode, CurrencyCode, EmailAddress, Locale, Quantity, TaxRate, VatId,
};
use crate::validate::{
    At, count, ensure, first_duplicate, matches_total, minor_units, opt_text, sum, text, times,
};

/// A postal address as it goes on a parcel label or an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Person the address is for ("Jörg Schäfer").
    #[schemars(length(max = 200))]
    pub name: String,
    /// Company, for business addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub company: Option<String>,
    /// Street lines, 1 to 3 ("Hauptstraße 12", "Hinterhaus, 3. OG").
    #[schemars(inner(length(max = 200)))]
    pub lines: Vec<String>,
    /// Postal code as written locally ("10115", "SW1A 1AA"). Absent only where the country
    /// has none (Hong Kong, parts of Ireland before Eircode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub postal_code: Option<String>,
    /// City or town.
    #[schemars(length(max = 100))]
    pub city: String,
    /// State, province or county where the country uses one on addresses ("CA", "Bayern").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub region: Option<String>,
    /// Country.
    pub country: CountryCode,
    /// Phone number for the carrier, in any common notation ("+49 30 1234567").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl Address {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        text(&self.name, 200).at_with(|| format!("{at}.name"))?;
        opt_text(self.company.as_ref(), 200).at_with(|| format!("{at}.company"))?;
        count(&self.lines, 1, 3).at_with(|| format!("{at}.lines"))?;
        for (i, line) in self.lines.iter().enumerate() {
            text(line, 200).at_with(|| format!("{at}.lines[{i}]"))?;
        }
        opt_text(self.postal_code.as_ref(), 16).at_with(|| format!("{at}.postal_code"))?;
        text(&self.city, 100).at_with(|| format!("{at}.city"))?;
        opt_text(self.region.as_ref(), 100).at_with(|| format!("{at}.region"))?;
        if let Some(phone) = &self.phone {
            phone_number(phone).at_with(|| format!("{at}.phone"))?;
        }
        Ok(())
    }
}

/// Digits with the usual separators, optionally a leading `+`; 3 to 32 characters.
fn phone_number(s: &str) -> Result<(), String> {
    let shape_ok = (3..=32).contains(&s.len())
        && s.trim_start_matches('+')
            .chars()
            .all(|c| c.is_ascii_digit() || " ()./-".contains(c))
        && s.chars().any(|c| c.is_ascii_digit());
    ensure(shape_ok, || {
        format!("`{s}` is not a phone number (digits, spaces, + ( ) . / -)")
    })
}

/// A phone number in E.164 form (`+491701234567`), as SMS gateways want it.
pub(crate) fn e164(s: &str) -> Result<(), String> {
    let digits = s.strip_prefix('+').unwrap_or("");
    ensure(
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0'),
        || format!("`{s}` is not an E.164 phone number like +491701234567"),
    )
}

/// The buyer, as the producer knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The producer's customer id (shop account, marketplace buyer id). Absent for guest
    /// checkouts and anonymous till sales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub id: Option<String>,
    /// Email address. Required for storefront orders; marketplaces and tills often have none
    /// (or only a relay address), and then the marketplace talks to the buyer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    /// Full name as the buyer gave it.
    #[schemars(length(max = 200))]
    pub name: String,
    /// Language for everything the customer reads (emails, invoice).
    pub locale: Locale,
    /// Whether the buyer buys as a business (B2B): decides reverse charge with a valid VAT id.
    pub is_business: bool,
    /// The buyer's VAT id; only for businesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<VatId>,
    /// A business buyer's reference for its invoices (BT-10: a German public buyer's
    /// Leitweg-ID, a cost centre); XRechnung requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub buyer_reference: Option<String>,
    /// Where a business buyer receives e-invoices (BT-49: a Peppol participant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electronic_address: Option<ElectronicAddress>,
    /// The structured e-invoice this buyer asks for, over the store's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_invoice_format: Option<EinvoiceFormat>,
}

/// An electronic address (EN 16931 BT-34/BT-49): an identifier and its scheme from the
/// EAS code list (`0088` GLN, `0204` Leitweg-ID, `9930` German VAT id, `EM` email, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElectronicAddress {
    /// The EAS scheme code.
    #[schemars(length(min = 2, max = 4))]
    pub scheme: String,
    /// The identifier within the scheme.
    #[schemars(length(min = 1, max = 200))]
    pub id: String,
}

impl ElectronicAddress {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        ensure(
            (2..=4).contains(&self.scheme.len())
                && self.scheme.bytes().all(|b| b.is_ascii_alphanumeric()),
            || format!("`{}` is not an EAS scheme code (2 to 4 letters or digits, e.g. 0088, 9930, EM)", self.scheme),
        )
        .at_with(|| format!("{at}.scheme"))?;
        text(&self.id, 200).at_with(|| format!("{at}.id"))
    }
}

string_enum! {
    /// A structured e-invoice format (EN 16931 syntaxes and their national or network
    /// rules). Every invoice PDF is Factur-X; the others are written beside it on request.
    pub enum EinvoiceFormat {
        /// Factur-X / ZUGFeRD, the EN 16931 profile: CII XML inside the PDF/A-3.
        Facturx = "facturx",
        /// XRechnung 3.0 (Germany's CIUS), UBL syntax.
        Xrechnung = "xrechnung",
        /// Peppol BIS Billing 3.0, UBL syntax.
        Peppol = "peppol",
    }
}

impl Customer {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        opt_text(self.id.as_ref(), 128).at_with(|| format!("{at}.id"))?;
        text(&self.name, 200).at_with(|| format!("{at}.name"))?;
        opt_text(self.buyer_reference.as_ref(), 200).at_with(|| format!("{at}.buyer_reference"))?;
        if let Some(address) = &self.electronic_address {
            address.check(&format!("{at}.electronic_address"))?;
        }
        ensure(self.vat_id.is_none() || self.is_business, || {
            "a VAT id is only accepted for business customers (is_business = true)".to_owned()
        })
        .at_with(|| format!("{at}.vat_id"))
    }
}

/// How to reach the customer: what notifications need, without the rest of the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerContact {
    /// Full name, for salutations.
    #[schemars(length(max = 200))]
    pub name: String,
    /// Email address, if the customer gave us one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    /// Language for messages to the customer.
    pub locale: Locale,
}

impl CustomerContact {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        text(&self.name, 200).at_with(|| format!("{at}.name"))
    }
}

string_enum! {
    /// Who asked for something.
    pub enum ActorKind {
        /// The buyer (via the storefront).
        Customer = "customer",
        /// A person on our side, through the admin API or CLI.
        Operator = "operator",
        /// A marketplace, via its connector.
        Marketplace = "marketplace",
        /// An automated rule (fraud check, timeout).
        System = "system",
    }
}

/// Who asked for an action, for the order timeline and the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// Their id (operator login, customer id, rule name). Required for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub id: Option<String>,
}

impl Actor {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        opt_text(self.id.as_ref(), 128).at_with(|| format!("{at}.id"))?;
        ensure(
            self.kind != ActorKind::Operator || self.id.is_some(),
            || "operators must be named: every operator action is audited".to_owned(),
        )
        .at_with(|| format!("{at}.id"))
    }
}

/// Names an order either by Orderly's id or by the producer's own reference.
///
/// Exactly one of: `order_id`, or `channel` with `external_order_id`. A storefront only
/// knows its own order number; operators know ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRef {
    /// Orderly's order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The channel the order came through (with `external_order_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The producer's order number (with `channel`); unique per store and channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub external_order_id: Option<String>,
}

impl OrderRef {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        let by_id = self.order_id.is_some();
        let by_external = self.channel.is_some() && self.external_order_id.is_some();
        let partial_external = self.channel.is_some() != self.external_order_id.is_some();
        ensure(by_id != by_external && !partial_external, || {
            "name the order by exactly one of: order_id, or channel with external_order_id"
                .to_owned()
        })
        .at(at)?;
        opt_text(self.external_order_id.as_ref(), 128).at_with(|| format!("{at}.external_order_id"))
    }
}

/// A quantity of one order line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineQuantity {
    /// The order line (`line_id` from the order).
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// How many units of it.
    pub quantity: Quantity,
}

/// Checks a list of line quantities: each line id present and named once.
pub(crate) fn check_line_quantities(lines: &[LineQuantity], at: &str) -> Result<(), ContractError> {
    for (i, line) in lines.iter().enumerate() {
        text(&line.line_id, 64).at_with(|| format!("{at}[{i}].line_id"))?;
    }
    unique_lines(lines, |l| l.line_id.as_str(), at)
}

/// Each line id at most once in `items`.
pub(crate) fn unique_lines<'a, T>(
    items: &'a [T],
    line_id: impl Fn(&'a T) -> &'a str,
    at: &str,
) -> Result<(), ContractError> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    match items.iter().position(|item| !seen.insert(line_id(item))) {
        None => Ok(()),
        Some(i) => Err(ContractError::new(
            format!("{at}[{i}].line_id"),
            format!("line `{}` appears more than once", line_id(&items[i])),
        )),
    }
}

/// A stored document (invoice PDF, credit note PDF) that consumers fetch themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRef {
    /// The document's name: an absolute URI (`orderly://invoicing/invoices/{number}.pdf`
    /// for Orderly's own documents, which are fetched by `key`; `https://…` for a document
    /// kept elsewhere).
    #[schemars(length(max = 2048))]
    pub uri: String,
    /// Media type, `application/pdf` for invoices.
    pub media_type: String,
    /// SHA-256 of the content, 64 lowercase hex digits: proves the file is the one issued.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The document's key in Orderly's document store (`[documents]`: a directory or an S3
    /// bucket), e.g. `invoices/shop-de/RE-2026-000123.pdf`: any worker configured with the
    /// same store fetches it by this key and checks it against `sha256`. Absent in messages
    /// sent before documents were kept there; such a document's key is
    /// `invoices/{store_id}/{number}.pdf` (`credit-notes/…` for a credit note), where
    /// `orderly documents migrate` copied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub key: Option<String>,
}

impl DocumentRef {
    pub(crate) fn check(&self, at: &str) -> Result<(), ContractError> {
        text(&self.uri, 2048).at_with(|| format!("{at}.uri"))?;
        ensure(
            self.uri
                .split_once("://")
                .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty()),
            || format!("`{}` is not an absolute URI (scheme://...)", self.uri),
        )
        .at_with(|| format!("{at}.uri"))?;
        ensure(
            self.media_type
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
            || {
                format!(
                    "`{}` is not a media type like application/pdf",
                    self.media_type
                )
            },
        )
        .at_with(|| format!("{at}.media_type"))?;
        ensure(
            self.sha256.len() == 64
                && self
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            || "must be 64 lowercase hex digits".to_owned(),
        )
        .at_with(|| format!("{at}.sha256"))?;
        if let Some(key) = &self.key {
            text(key, 1024).at_with(|| format!("{at}.key"))?;
            ensure(
                !key.starts_with('/')
                    && !key.ends_with('/')
                    && key.split('/').all(|part| {
                        !part.is_empty()
                            && part != "."
                            && part != ".."
                            && !part.chars().any(char::is_control)
                    }),
                || format!("`{key}` is not an object key (segments separated by `/`, none empty, `.` or `..`)"),
            )
            .at_with(|| format!("{at}.key"))?;
        }
        Ok(())
    }
}

string_enum! {
    /// A VAT category, as EN 16931 codes it (UNTDID 5305): what keeps a zero-rated line
    /// apart from an exempt one though both are 0 %.
    pub enum VatCategoryCode {
        /// Standard or reduced rate (any positive rate).
        Standard = "S",
        /// Zero-rated.
        ZeroRated = "Z",
        /// Exempt from VAT (the document says under which provision).
        Exempt = "E",
        /// Intra-Community supply, exempt (Art. 138).
        IntraCommunity = "K",
        /// Export outside the EU, exempt (Art. 146).
        Export = "G",
    }
}

/// One VAT category and rate's share of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxBreakdown {
    /// The rate applied.
    pub rate: TaxRate,
    /// The VAT category (absent from producers before it was added: then rows are per rate
    /// only). A zero-rated and an exempt share are two rows at 0 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<VatCategoryCode>,
    /// Net amount taxed at this rate.
    pub net: Amount,
    /// Tax at this rate.
    pub tax: Amount,
}

/// The totals of an invoice or credit note. Credit notes carry positive amounts: the amount
/// credited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentTotals {
    /// Sum of net amounts.
    pub net: Amount,
    /// Sum of tax.
    pub tax: Amount,
    /// `net + tax`.
    pub gross: Amount,
    /// Net and tax per category and rate; each (category, rate) appears once.
    pub breakdown: Vec<TaxBreakdown>,
}

impl DocumentTotals {
    pub(crate) fn check(&self, at: &str, currency: CurrencyCode) -> Result<(), ContractError> {
        count(&self.breakdown, 1, 20).at_with(|| format!("{at}.breakdown"))?;
        if let Some(i) = first_duplicate(&self.breakdown, |b| (b.category, b.rate)) {
            let b = &self.breakdown[i];
            return Err(ContractError::new(
                format!("{at}.breakdown[{i}].rate"),
                match b.category {
                    Some(c) => format!("category {c} at rate {} appears more than once", b.rate),
                    None => format!("rate {} appears more than once", b.rate),
                },
            ));
        }
        for (name, amount) in [("net", self.net), ("tax", self.tax), ("gross", self.gross)] {
            minor_units(amount, currency).at_with(|| format!("{at}.{name}"))?;
        }
        let net =
            sum(self.breakdown.iter().map(|b| b.net.value())).at_with(|| format!("{at}.net"))?;
        matches_total(self.net, net, "the breakdown's net amounts")
            .at_with(|| format!("{at}.net"))?;
        let tax =
            sum(self.breakdown.iter().map(|b| b.tax.value())).at_with(|| format!("{at}.tax"))?;
        matches_total(self.tax, tax, "the breakdown's tax amounts")
            .at_with(|| format!("{at}.tax"))?;
        matches_total(self.gross, self.net.value() + self.tax.value(), "net + tax")
            .at_with(|| format!("{at}.gross"))
    }
}

/// A priced order line, for the arithmetic shared by orders and invoice requests.
pub(crate) trait PricedLine {
    fn quantity(&self) -> Quantity;
    fn unit_price(&self) -> Amount;
    fn discount(&self) -> Amount;
}

/// The amounts of an order-shaped payload, checked together.
pub(crate) struct Pricing<'a, L> {
    pub(crate) currency: CurrencyCode,
    pub(crate) prices_include_tax: bool,
    pub(crate) lines: &'a [L],
    pub(crate) shipping: Amount,
    pub(crate) discount: Amount,
    /// Tax the producer charged; `None` where the payload does not state it.
    pub(crate) tax: Option<Amount>,
    /// The stated total; `None` where the payload does not state one.
    pub(crate) total: Option<Amount>,
}

impl<L: PricedLine> Pricing<'_, L> {
    /// Line discounts within their lines, the order discount within the order, totals in the
    /// currency's minor units, and `total = Σ(quantity × unit_price − discount) + shipping −
    /// discount (+ tax when prices exclude it)` within one cent.
    pub(crate) fn check(&self) -> Result<(), ContractError> {
        let mut line_amounts = Vec::with_capacity(self.lines.len());
        for (i, line) in self.lines.iter().enumerate() {
            let gross = times(line.unit_price(), line.quantity().get())
                .at_with(|| format!("payload.lines[{i}]"))?;
            ensure(line.discount().value() <= gross, || {
                format!(
                    "discount {} is more than the line's {} × {} = {gross}",
                    line.discount(),
                    line.quantity(),
                    line.unit_price()
                )
            })
            .at_with(|| format!("payload.lines[{i}].discount"))?;
            line_amounts.push(gross - line.discount().value());
        }
        let subtotal = sum(line_amounts).at("payload.lines")?;
        let before_discount = subtotal + self.shipping.value();
        ensure(self.discount.value() <= before_discount, || {
            format!(
                "discount {} is more than lines + shipping = {before_discount}",
                self.discount
            )
        })
        .at("payload.discount")?;
        minor_units(self.shipping, self.currency).at("payload.shipping")?;
        minor_units(self.discount, self.currency).at("payload.discount")?;
        if let Some(tax) = self.tax {
            minor_units(tax, self.currency).at("payload.tax")?;
        }
        let Some(total) = self.total else {
            return Ok(());
        };
        minor_units(total, self.currency).at("payload.total")?;
        let (expected, how) = if self.prices_include_tax {
            (
                before_discount - self.discount.value(),
                "lines + shipping − discount",
            )
        } else {
            let tax = self.tax.ok_or_else(|| {
                ContractError::new(
                    "payload.tax",
                    "required when prices exclude tax: it is part of the total",
                )
            })?;
            (
                before_discount - self.discount.value() + tax.value(),
                "lines + shipping − discount + tax",
            )
        };
        matches_total(total, expected, how).at("payload.total")
    }
}

/// Sequence numbers and revisions count from 1, so 0 can never look newer than "nothing yet".
pub(crate) fn counts_from_one(value: u64, at: &str) -> Result<(), ContractError> {
    ensure(value >= 1, || "counts from 1".to_owned()).at(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf(key: Option<&str>) -> DocumentRef {
        DocumentRef {
            uri: "orderly://invoicing/invoices/RE-1.pdf".to_owned(),
            media_type: "application/pdf".to_owned(),
            sha256: "a".repeat(64),
            size_bytes: 10,
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn a_document_key_is_optional_and_must_be_an_object_key() {
        assert!(pdf(None).check("payload.pdf").is_ok(), "older messages");
        assert!(
            pdf(Some("invoices/shop-de/RE%2F1.pdf"))
                .check("payload.pdf")
                .is_ok()
        );
        for bad in [
            "",
            "/invoices/a.pdf",
            "invoices//a.pdf",
            "invoices/../a.pdf",
            "a/",
        ] {
            let err = pdf(Some(bad))
                .check("payload.pdf")
                .expect_err(&format!("`{bad}` refused"));
            assert_eq!(err.field, "payload.pdf.key", "{bad}: {err}");
        }
        // Without the field, the JSON is what older producers send, and it still decodes.
        let json = serde_json::to_value(pdf(None)).expect("json");
        assert!(json.get("key").is_none());
        let back: DocumentRef = serde_json::from_value(json).expect("decodes");
        assert_eq!(back.key, None);
    }
}
