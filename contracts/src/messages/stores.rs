//! The stores Orderly takes orders for, and the store settings workers need a copy of.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Address, counts_from_one};
use super::invoices::InvoiceTiming;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{CountryCode, CurrencyCode, Locale, StoreId, VatId};
use crate::validate::{At, Validate, ensure, opt_text, text};

/// `store.upserted`: a store (a web shop, a marketplace account) Orderly takes orders for,
/// declared or changed by a setup manager. Orders name their store: an order for a store
/// never declared is not taken (retried a while, in case the declaration is on its way, then
/// dead-lettered with the reason); a closed store (`active: false`) takes no new orders, but
/// its existing orders go on.
///
/// Carries the whole store, not a diff; `revision` increases with every change and the
/// highest wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreUpserted {
    /// The store.
    pub store_id: StoreId,
    /// Version of this store's record, from 1, increasing with every change.
    pub revision: u64,
    /// The store's name, as operators see it.
    #[schemars(length(max = 200))]
    pub name: String,
    /// Where the store's business is established.
    pub country: CountryCode,
    /// The currency it sells in.
    pub currency: CurrencyCode,
    /// Whether it takes new orders.
    pub active: bool,
}

impl Message for StoreUpserted {
    const TYPE: &'static str = "store.upserted";
    const VERSION: u16 = 1;
}

impl Validate for StoreUpserted {
    fn validate(&self) -> Result<(), ContractError> {
        counts_from_one(self.revision, "payload.revision")?;
        text(&self.name, 200).at("payload.name")
    }
}

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
    #[schemars(length(max = 200))]
    pub legal_name: String,
    /// The seller's address; its country is where the seller's domestic VAT applies.
    pub address: Address,
    /// The seller's VAT id. Absent for sellers not registered for VAT (small businesses),
    /// whose invoices then charge no VAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<VatId>,
    /// The seller's national tax number, where invoices must show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub tax_number: Option<String>,
    /// When to invoice: on order or per shipment. Fulfillment acts on it.
    pub invoice_timing: InvoiceTiming,
    /// Prefix of invoice numbers (`RE-`, or `RE-2026-` for a series that never resets);
    /// the number series itself is invoicing's.
    pub invoice_number_prefix: String,
    /// Prefix of credit note numbers (`GS-`); a series of its own.
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
    #[schemars(length(max = 2000))]
    pub footer: Option<String>,
    /// Digits of the running number, zero-padded (`6`: `000042`); 1 to 12, 6 when absent.
    #[serde(default = "default_number_digits")]
    #[schemars(range(min = 1, max = 12))]
    pub number_digits: u8,
    /// Whether the series restart at 1 every calendar year. When set, the year is printed
    /// after the prefix (`RE-` + `2026-` + `000042`); when absent, one series runs forever.
    #[serde(default)]
    pub number_yearly_reset: bool,
    /// How VAT is rounded to the currency's minor unit (half away from zero either way).
    /// `per_line` when absent.
    #[serde(default = "default_rounding")]
    pub rounding: RoundingPolicy,
    /// The small-business scheme the seller applies, as its legal reference printed on the
    /// invoice (`§ 19 UStG`, `Art. 293 B du CGI`): no VAT is charged. A seller without a
    /// VAT id must declare it; it is never inferred from a missing VAT id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub small_business: Option<String>,
}

string_enum! {
    /// Where VAT is rounded to the currency's minor unit. Both round half away from zero,
    /// and both make the totals the sum of the rounded parts.
    pub enum RoundingPolicy {
        /// Each line's net and VAT are rounded; the totals add up the rounded lines.
        PerLine = "per_line",
        /// Each rate's net and VAT are rounded once over the whole document; line amounts
        /// are shares of those (largest remainder), so they still add up.
        PerDocument = "per_document",
    }
}

fn default_rounding() -> RoundingPolicy {
    RoundingPolicy::PerLine
}

fn default_number_digits() -> u8 {
    6
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
        opt_text(self.footer.as_ref(), 2000).at("payload.footer")?;
        opt_text(self.small_business.as_ref(), 200).at("payload.small_business")?;
        ensure(!(self.oss_registered && self.small_business.is_some()), || {
            "a small business charges no VAT, so it has no distance sales to report through the OSS: set `oss_registered` false or remove `small_business`".to_owned()
        })
        .at("payload.small_business")?;
        ensure((1..=12).contains(&self.number_digits), || {
            format!(
                "{} digits: a running number has 1 to 12",
                self.number_digits
            )
        })
        .at("payload.number_digits")
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            StoreUpserted,
            example: golden::store_upserted,
            from: "admin API",
            says: "a store Orderly takes orders for: name, country, currency, open or closed",
            to: [ORDERS],
        ),
        entry!(
            StoreInvoiceSettingsUpdated,
            example: golden::store_invoice_settings_updated,
            from: "admin API",
            says: "a store's seller details, VAT id, number prefixes, invoice timing",
            to: [FULFILLMENT, INVOICING],
            only_from_outside,
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn store_upserted() -> Value {
        envelope::<StoreUpserted>(
            Meta {
                n: 0x25,
                correlation: STORE,
                causation: None,
                at: "2026-01-02T08:00:00Z",
                producer: "admin-api",
                span: None,
            },
            json!({
                "store_id": STORE,
                "revision": 1,
                "name": "Beispiel Shop Deutschland",
                "country": "DE",
                "currency": "EUR",
                "active": true
            }),
        )
    }

    pub(super) fn store_invoice_settings_updated() -> Value {
        envelope::<StoreInvoiceSettingsUpdated>(
            Meta {
                n: 0x20,
                correlation: STORE,
                causation: None,
                at: "2026-01-02T08:30:00Z",
                producer: "admin-api",
                span: None,
            },
            json!({
                "store_id": STORE,
                "revision": 3,
                "legal_name": "Beispiel Handels GmbH",
                "address": {
                    "name": "Beispiel Handels GmbH",
                    "lines": ["Torstraße 101"],
                    "postal_code": "10119",
                    "city": "Berlin",
                    "country": "DE"
                },
                "vat_id": "DE123456789",
                "tax_number": "37/123/45678",
                "invoice_timing": "on_shipment",
                "invoice_number_prefix": "RE-",
                "credit_note_number_prefix": "GS-",
                "oss_registered": true,
                "locale": "de-DE",
                "payment_terms_days": 14,
                "footer": "Beispiel Handels GmbH · Amtsgericht Berlin-Charlottenburg HRB 123456 · Geschäftsführerin: Zoë Krüger",
                "number_digits": 6,
                "number_yearly_reset": true,
                "rounding": "per_line"
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Producers that predate the numbering and rounding fields stay valid.
    #[test]
    fn numbering_and_rounding_fields_are_optional() {
        let mut payload = golden::store_invoice_settings_updated()["payload"].clone();
        let fields = payload.as_object_mut().expect("an object");
        for key in ["number_digits", "number_yearly_reset", "rounding"] {
            fields.remove(key);
        }
        let settings: StoreInvoiceSettingsUpdated =
            serde_json::from_value(payload).expect("decodes without them");
        assert_eq!(settings.number_digits, 6);
        assert!(!settings.number_yearly_reset);
        assert_eq!(settings.rounding, RoundingPolicy::PerLine);
        settings.validate().expect("valid");
        let too_many = StoreInvoiceSettingsUpdated {
            number_digits: 13,
            ..settings
        };
        let err = too_many.validate().expect_err("13 digits");
        assert!(err.to_string().contains("payload.number_digits"), "{err}");
    }
}
