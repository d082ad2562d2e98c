//! The stores Orderly takes orders for, and the store settings workers need a copy of.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Address, EinvoiceFormat, ElectronicAddress, counts_from_one};
use super::invoices::InvoiceTiming;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{CountryCode, CurrencyCode, EmailAddress, Locale, StoreId, VatId};
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
    /// The EU's cross-border small-enterprise scheme (Art. 284(2) of Directive 2006/112/EC,
    /// since 2025-01-01): the other Member States where the small business is exempt too,
    /// and the identification number with the suffix `EX` its own state gave it for that.
    /// Only beside `small_business`. Without it, a small business's sale that takes place
    /// in another state (a warehouse there, or distance sales over the EUR 10,000
    /// threshold) is refused, not invoiced without VAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sme_cross_border: Option<SmeCrossBorder>,
    /// The structured e-invoice written beside every PDF unless the buyer asks for another
    /// (every PDF is Factur-X whatever this says).
    #[serde(default = "default_einvoice_format")]
    pub e_invoice_format: EinvoiceFormat,
    /// Where the seller receives e-invoices (BT-34); XRechnung and Peppol require it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electronic_address: Option<ElectronicAddress>,
    /// Who answers questions about an invoice (BG-6); XRechnung requires all three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<SellerContact>,
    /// The account buyers pay into (BG-17, credit transfer); XRechnung requires payment
    /// instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee_account: Option<PayeeAccount>,
}

fn default_einvoice_format() -> EinvoiceFormat {
    EinvoiceFormat::Facturx
}

/// A small business's registration for the EU cross-border small-enterprise scheme
/// (Art. 284(2)–(3) of Directive 2006/112/EC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmeCrossBorder {
    /// The individual identification number with the suffix `EX` (Art. 284(3)), printed
    /// on the invoices the scheme exempts.
    #[schemars(length(min = 5, max = 20))]
    pub ex_number: String,
    /// The Member States (other than the seller's own) where the exemption was notified.
    #[schemars(length(min = 1))]
    pub member_states: Vec<CountryCode>,
}

/// The seller's contact for invoices (BG-6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerContact {
    /// A person or department.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// A telephone number.
    #[schemars(length(min = 3, max = 50))]
    pub phone: String,
    /// An email address.
    pub email: EmailAddress,
}

/// The account a credit transfer goes to (BG-17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayeeAccount {
    /// The IBAN, without spaces.
    #[schemars(length(min = 15, max = 34))]
    pub iban: String,
    /// The BIC, where one is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 11))]
    pub bic: Option<String>,
    /// The account holder, if not the seller's legal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub holder: Option<String>,
}

/// Whether `iban` has an IBAN's shape and check digits (ISO 13616, mod 97).
fn iban_ok(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    if !(15..=34).contains(&bytes.len())
        || !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..4].iter().all(u8::is_ascii_digit)
        || !bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let rearranged = bytes[4..].iter().chain(&bytes[..4]);
    let mut rest: u32 = 0;
    for b in rearranged {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
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
        if let Some(address) = &self.electronic_address {
            address.check("payload.electronic_address")?;
        }
        if let Some(contact) = &self.contact {
            text(&contact.name, 200).at("payload.contact.name")?;
            ensure(
                (3..=50).contains(&contact.phone.len())
                    && contact
                        .phone
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b" +-/()".contains(&b)),
                || format!("`{}` is not a telephone number", contact.phone),
            )
            .at("payload.contact.phone")?;
        }
        if let Some(account) = &self.payee_account {
            ensure(iban_ok(&account.iban), || {
                format!(
                    "`{}` is not an IBAN (country, check digits, account; no spaces) or its check digits are wrong",
                    account.iban
                )
            })
            .at("payload.payee_account.iban")?;
            if let Some(bic) = &account.bic {
                ensure(
                    matches!(bic.len(), 8 | 11) && bic.bytes().all(|b| b.is_ascii_alphanumeric()),
                    || format!("`{bic}` is not a BIC (8 or 11 letters and digits)"),
                )
                .at("payload.payee_account.bic")?;
            }
            opt_text(account.holder.as_ref(), 200).at("payload.payee_account.holder")?;
        }
        if let Some(sme) = &self.sme_cross_border {
            ensure(self.small_business.is_some(), || {
                "the cross-border small-enterprise scheme extends a small business's own exemption: set `small_business` too".to_owned()
            })
            .at("payload.sme_cross_border")?;
            let ex = &sme.ex_number;
            ensure(
                (5..=20).contains(&ex.len())
                    && ex.ends_with("EX")
                    && ex.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                || format!("`{ex}` is not an identification number of the scheme (5 to 20 of A-Z and 0-9, ending in `EX`, Art. 284(3))"),
            )
            .at("payload.sme_cross_border.ex_number")?;
            ensure(!sme.member_states.is_empty(), || {
                "name at least one Member State where the exemption was notified".to_owned()
            })
            .at("payload.sme_cross_border.member_states")?;
            for (i, state) in sme.member_states.iter().enumerate() {
                let at = format!("payload.sme_cross_border.member_states[{i}]");
                ensure(state.is_eu(), || {
                    format!("{state} is not an EU Member State")
                })
                .at(&at)?;
                ensure(*state != self.address.country, || {
                    format!("{state} is the seller's own state, where `small_business` applies")
                })
                .at(&at)?;
                ensure(!sme.member_states[..i].contains(state), || {
                    format!("{state} is named twice")
                })
                .at(&at)?;
            }
        }
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
                "rounding": "per_line",
                "e_invoice_format": "facturx",
                "electronic_address": {"scheme": "9930", "id": "DE123456789"},
                "contact": {"name": "Buchhaltung", "phone": "+49 30 1234567",
                            "email": "rechnung@beispiel.example"},
                "payee_account": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}
            }),
        )
    }
}

#[cfg(test)]
mod iban_tests {
    #[test]
    fn ibans_are_checked_by_their_digits() {
        assert!(super::iban_ok("DE89370400440532013000"));
        assert!(super::iban_ok("GB82WEST12345698765432"));
        assert!(!super::iban_ok("DE89370400440532013001"));
        assert!(!super::iban_ok("DE89 3704 0044 0532 0130 00"));
        assert!(!super::iban_ok("DE8"));
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

#[cfg(test)]
mod sme_tests {
    use super::*;
    use serde_json::json;

    fn with(extra: serde_json::Value) -> Result<StoreInvoiceSettingsUpdated, String> {
        let mut payload = golden::store_invoice_settings_updated()["payload"].clone();
        let fields = payload.as_object_mut().expect("an object");
        fields.remove("vat_id");
        fields.insert("oss_registered".into(), json!(false));
        fields.insert("small_business".into(), json!("§ 19 UStG"));
        for (key, value) in extra.as_object().expect("an object") {
            fields.insert(key.clone(), value.clone());
        }
        let settings: StoreInvoiceSettingsUpdated =
            serde_json::from_value(payload).map_err(|e| e.to_string())?;
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    /// The cross-border scheme is checked field by field, and only extends a declared
    /// small business to other Member States.
    #[test]
    fn the_cross_border_small_enterprise_scheme_is_checked_field_by_field() {
        let ok = with(json!({"sme_cross_border":
            {"ex_number": "DE123456789EX", "member_states": ["AT", "FR"]}}))
        .expect("valid");
        assert_eq!(
            ok.sme_cross_border.expect("kept").member_states,
            [
                CountryCode::parse("AT").expect("AT"),
                CountryCode::parse("FR").expect("FR")
            ]
        );
        for (extra, field, why) in [
            (
                json!({"sme_cross_border": {"ex_number": "DE123456789", "member_states": ["AT"]}}),
                "payload.sme_cross_border.ex_number",
                "ending in `EX`",
            ),
            (
                json!({"sme_cross_border": {"ex_number": "DE123456789EX", "member_states": []}}),
                "payload.sme_cross_border.member_states",
                "at least one",
            ),
            (
                json!({"sme_cross_border": {"ex_number": "DE123456789EX", "member_states": ["CH"]}}),
                "member_states[0]",
                "not an EU Member State",
            ),
            (
                json!({"sme_cross_border": {"ex_number": "DE123456789EX", "member_states": ["AT", "DE"]}}),
                "member_states[1]",
                "the seller's own state",
            ),
            (
                json!({"sme_cross_border": {"ex_number": "DE123456789EX", "member_states": ["AT", "AT"]}}),
                "member_states[1]",
                "named twice",
            ),
            (
                json!({"small_business": null, "vat_id": "DE123456789",
                       "sme_cross_border": {"ex_number": "DE123456789EX", "member_states": ["AT"]}}),
                "payload.sme_cross_border",
                "set `small_business` too",
            ),
        ] {
            let err = with(extra).expect_err(why);
            assert!(err.contains(field) && err.contains(why), "{err}");
        }
    }
}
