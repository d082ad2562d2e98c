//! What the invoicing test binaries share. Each binary uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use orderly_invoicing::domain::document::{Document, EinvoiceData};

/// Runs the project's e-invoice checker (scripts/einvoice-check) on a file.
pub(crate) fn einvoice_check(path: &Path) -> Output {
    Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/einvoice-check"
    ))
    .arg(path)
    .output()
    .expect("scripts/einvoice-check runs")
}

/// `doc` with what XRechnung needs beyond EN 16931's core.
pub(crate) fn with_xrechnung_terms(mut doc: Document) -> Document {
    doc.einvoice = serde_json::from_value::<EinvoiceData>(serde_json::json!({
        "format": "xrechnung",
        "seller_address": {"scheme": "9930", "id": "DE123456789"},
        "seller_contact": {"name": "Buchhaltung", "phone": "+49 30 1234567",
                           "email": "rechnung@beispiel.de"},
        "payee": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
        "buyer_reference": "04011000-12345-34",
        "buyer_address": {"scheme": "0204", "id": "04011000-12345-34"}
    }))
    .expect("XRechnung terms");
    doc
}
