//! Store settings that workers need a copy of.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Address, counts_from_one};
use super::invoices::InvoiceTiming;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{Locale, StoreId, VatId};
use crate::validate::{At, Validate, ensure, opt_text, text};

/// `store.invoice_settings_updated`: a store's invoicing settings changed (set up by a setup
/// manager through the admin API).
///
/// Carries the complete settings, not a diff. `revision` increases with every change:
/// consumers keep the highest and ignore older ones, so late or repeated messages are safe.
/// Invoicing snapshots the settings onto each invoice it issues; a change never rewrites
/// issued invoices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreInvoiceSettingsUpdated {
    /// The store.
    pub store_id: StoreId,
    /// Settings version, from 1, increasing with every change.
    pub revision: u64,
    /// The seller's legal name, as printed on invoices.
    pub legal_name: String,
    /// The seller's address; its country is where the seller's domestic VAT applies.
    pub address: Address,
    /// The seller's VAT id. Absent for sellers not registered for VAT (small businesses),
    /// whose invoices then charge no VAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<VatId>,
    /// The seller's national tax number, where invoices must show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_number: Option<String>,
    /// When to invoice: on order or per shipment. Fulfillment acts on it.
    pub invoice_timing: InvoiceTiming,
    /// Prefix of invoice numbers (`RE-2026-`); the number series itself is invoicing's.
    pub invoice_number_prefix: String,
    /// Prefix of credit note numbers (`GS-2026-`); a series of its own.
    pub credit_note_number_prefix: String,
    /// Whether the seller is registered for the One-Stop-Shop (needed to invoice EU consumer
    /// sales at destination rates).
    pub oss_registered: bool,
    /// Language of the invoice document.
    pub locale: Locale,
    /// Payment term printed on invoices, in days (0 = due on receipt).
    pub payment_terms_days: u16,
    /// Free text printed at the foot of every invoice (bank details, court of registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
}

impl Message for StoreInvoiceSettingsUpdated {
    const TYPE: &'static str = "store.invoice_settings_updated";
    const VERSION: u16 = 1;
}

/// A number prefix: 1 to 20 of `A-Z a-z 0-9 - / _ .`, so that prefix + number stays a
/// valid document number.
fn number_prefix(s: &str) -> Result<(), String> {
    ensure(
        (1..=20).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_.".contains(&b)),
        || format!("`{s}` is not a number prefix (1 to 20 of A-Z, a-z, 0-9, - / _ .)"),
    )
}

impl Validate for StoreInvoiceSettingsUpdated {
    fn validate(&self) -> Result<(), ContractError> {
        counts_from_one(self.revision, "payload.revision")?;
        text(&self.legal_name, 200).at("payload.legal_name")?;
        self.address.check("payload.address")?;
        opt_text(self.tax_number.as_ref(), 64).at("payload.tax_number")?;
        number_prefix(&self.invoice_number_prefix).at("payload.invoice_number_prefix")?;
        number_prefix(&self.credit_note_number_prefix).at("payload.credit_note_number_prefix")?;
        ensure(self.invoice_number_prefix != self.credit_note_number_prefix, || {
            "invoices and credit notes need different prefixes: they are separate gap-free series".to_owned()
        })
        .at("payload.credit_note_number_prefix")?;
        ensure(!self.oss_registered || self.vat_id.is_some(), || {
            "an OSS-registered seller has a VAT id".to_owned()
        })
        .at("payload.vat_id")?;
        opt_text(self.footer.as_ref(), 2000).at("payload.footer")
    }
}
