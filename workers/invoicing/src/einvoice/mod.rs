//! Structured e-invoices (EN 16931) from the same immutable snapshot the PDF is printed
//! from ([`Document`]): the UN/CEFACT Cross Industry Invoice of the Factur-X / ZUGFeRD
//! `EN 16931` profile ([`cii`], embedded in every PDF), the UBL 2.1 invoice of Peppol BIS
//! Billing 3.0 and XRechnung ([`ubl`], stored beside the PDF when the store or the buyer
//! asks for it, [`structured`]), and the business rules of EN 16931 that can be checked
//! without the network on a CII ([`check`]; UBL: `scripts/einvoice-check`, the official
//! schema and schematron).
//!
//! The snapshot holds what Art. 226 asks an invoice to print; EN 16931 needs a few things
//! more, derived here and nowhere else:
//! - a VAT category code per line and per breakdown row ([`VatCode`]): from the document's
//!   rule (intra-Community supply `K`, export `G`, small business `E`) or the line's
//!   category and rate (`S`, `Z`, `E`), with the exemption reason and its VATEX code where
//!   the code needs one;
//! - the breakdown per category *and* rate (the printed one is per rate: a zero-rated line
//!   and an exempt one share 0 % on paper but not here);
//! - the due date, from the payment terms.
//!
//! Amounts are the document's own: the lines' nets (their discounts folded into the net
//! price, as the printed net column does), the per-rate VAT as it was rounded (per line or
//! per document, the store's policy), the totals. Nothing is recomputed, so the XML and the
//! PDF can never disagree.

pub mod check;
mod cii;
mod ubl;
mod xml;

pub use cii::cii;
pub use ubl::ubl;
pub(crate) use xml::escape as xml_escape;

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use orderly_contracts::messages::EinvoiceFormat;
use orderly_contracts::types::TaxCategory;
use rust_decimal::Decimal;

use crate::domain::document::Document;
use crate::domain::vat::Rule;

/// The structured e-invoice stored beside the PDF: the format the document asks for
/// (Peppol BIS or XRechnung, UBL), else the CII the PDF embeds.
pub fn structured(doc: &Document) -> String {
    match ubl_format(doc) {
        Some(format) => ubl(doc, format),
        None => cii(doc),
    }
}

/// [`structured`] for a caller that made the document's CII already.
pub fn structured_or(doc: &Document, cii: String) -> String {
    match ubl_format(doc) {
        Some(format) => ubl(doc, format),
        None => cii,
    }
}

fn ubl_format(doc: &Document) -> Option<EinvoiceFormat> {
    doc.einvoice
        .format
        .filter(|f| matches!(f, EinvoiceFormat::Peppol | EinvoiceFormat::Xrechnung))
}

/// The name of the XML inside a Factur-X PDF.
pub const FACTURX_FILE_NAME: &str = "factur-x.xml";

/// The guideline id of the EN 16931 profile of Factur-X / ZUGFeRD (BT-24).
pub const EN16931_GUIDELINE: &str = "urn:cen.eu:en16931:2017";

/// A VAT category code (UNTDID 5305, the subset EN 16931 allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VatCode {
    /// Standard rated (any positive rate).
    S,
    /// Zero rated.
    Z,
    /// Exempt from VAT.
    E,
    /// Intra-Community supply (VAT exempt for EEA intra-community supply of goods).
    K,
    /// Free export item, VAT not charged.
    G,
}

impl VatCode {
    /// The code as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::Z => "Z",
            Self::E => "E",
            Self::K => "K",
            Self::G => "G",
        }
    }

    /// The VATEX code of the exemption (EN 16931 code list), where one applies.
    pub fn exemption_code(self) -> Option<&'static str> {
        match self {
            Self::K => Some("VATEX-EU-IC"),
            Self::G => Some("VATEX-EU-G"),
            Self::S | Self::Z | Self::E => None,
        }
    }
}

/// The category of one line under a document's rule.
pub fn line_code(rule: Rule, category: TaxCategory, rate: Decimal) -> VatCode {
    match rule {
        Rule::IntraEuReverseCharge => VatCode::K,
        Rule::Export => VatCode::G,
        Rule::SmallBusiness => VatCode::E,
        Rule::Domestic | Rule::DistanceSaleBelowThreshold | Rule::DistanceSaleOss => match category
        {
            TaxCategory::Exempt => VatCode::E,
            _ if rate.is_zero() => VatCode::Z,
            _ => VatCode::S,
        },
    }
}

/// One row of the VAT breakdown (BG-23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// BT-118.
    pub code: VatCode,
    /// BT-119, percent.
    pub rate: Decimal,
    /// BT-116: the nets of the lines in it.
    pub basis: Decimal,
    /// BT-117: their VAT as the document charged it.
    pub tax: Decimal,
    /// BT-120: why no VAT (the document's legal wording), for `E`, `K` and `G`.
    pub exemption_reason: Option<String>,
}

/// The breakdown per category and rate, from the document's lines, highest rate first.
pub fn categories(doc: &Document) -> Vec<Category> {
    let mut by: BTreeMap<(VatCode, Decimal), (Decimal, Decimal)> = BTreeMap::new();
    // The provisions the category's lines are exempt under, each once, in line order.
    let mut references: BTreeMap<(VatCode, Decimal), Vec<&str>> = BTreeMap::new();
    for l in &doc.lines {
        let code = line_code(doc.rule, l.category, l.rate);
        let key = (code, l.rate.normalize());
        let e = by.entry(key).or_default();
        e.0 += l.net;
        e.1 += l.tax;
        if let Some(reference) = l.exemption_reference.as_deref() {
            let seen = references.entry(key).or_default();
            if !seen.contains(&reference) {
                seen.push(reference);
            }
        }
    }
    let mut out: Vec<Category> = by
        .into_iter()
        .map(|((code, rate), (basis, tax))| Category {
            code,
            rate,
            basis,
            tax,
            exemption_reason: matches!(code, VatCode::E | VatCode::K | VatCode::G).then(|| {
                match references.get(&(code, rate)) {
                    // An exempt line says under which provision (Art. 226(11)).
                    Some(refs)
                        if code == VatCode::E
                            && doc.rule != Rule::SmallBusiness
                            && !refs.is_empty() =>
                    {
                        format!("Exempt from VAT under {}", refs.join("; "))
                    }
                    _ => doc.legal_note.clone().unwrap_or_else(|| {
                        "Exempt from VAT (Art. 132 ff. of Directive 2006/112/EC)".to_owned()
                    }),
                }
            }),
        })
        .collect();
    out.sort_by(|a, b| b.rate.cmp(&a.rate).then(a.code.cmp(&b.code)));
    out
}

/// The due date (BT-9): the issue date plus the payment terms, for invoices.
pub fn due_date(doc: &Document) -> Option<NaiveDate> {
    let days = doc.payment_terms_days?;
    doc.issue_date.checked_add_days(Days::new(u64::from(days)))
}

#[cfg(test)]
mod tests;

/// The XML a Factur-X PDF embeds (`factur-x.xml`, or the only embedded file), decoded.
pub fn embedded_xml(pdf: &[u8]) -> Result<String, String> {
    use lopdf::Object;
    let doc = lopdf::Document::load_mem(pdf).map_err(|e| format!("not a readable PDF: {e}"))?;
    let deref = |o: &Object| -> Option<Object> {
        match o {
            Object::Reference(id) => doc.get_object(*id).ok().cloned(),
            other => Some(other.clone()),
        }
    };
    let catalog = doc.catalog().map_err(|e| format!("no catalog: {e}"))?;
    let names = catalog
        .get(b"Names")
        .ok()
        .and_then(deref)
        .and_then(|n| n.as_dict().ok().cloned())
        .and_then(|n| n.get(b"EmbeddedFiles").ok().and_then(deref))
        .and_then(|e| e.as_dict().ok().cloned())
        .and_then(|e| e.get(b"Names").ok().and_then(deref))
        .and_then(|n| n.as_array().ok().cloned())
        .ok_or("the PDF embeds no file")?;
    let mut specs = Vec::new();
    for pair in names.chunks(2) {
        if let [Object::String(file, _), spec] = pair {
            specs.push((String::from_utf8_lossy(file).into_owned(), spec.clone()));
        }
    }
    let (_, spec) = specs
        .iter()
        .find(|(name, _)| name == FACTURX_FILE_NAME)
        .or_else(|| (specs.len() == 1).then(|| &specs[0]))
        .ok_or("the PDF embeds no factur-x.xml")?;
    let stream = deref(spec)
        .and_then(|s| s.as_dict().ok().cloned())
        .and_then(|s| s.get(b"EF").ok().and_then(deref))
        .and_then(|ef| ef.as_dict().ok().cloned())
        .and_then(|ef| ef.get(b"F").ok().and_then(deref))
        .and_then(|f| f.as_stream().ok().cloned())
        .ok_or("the embedded file has no stream")?;
    let bytes = stream
        .decompressed_content()
        .unwrap_or_else(|_| stream.content.clone());
    String::from_utf8(bytes).map_err(|e| format!("the embedded XML is not UTF-8: {e}"))
}
