//! Validated value types: parse, don't validate.
//!
//! Every identifier, code and amount that crosses a process boundary has a type whose only
//! constructor checks it. Deserialising goes through that constructor, so a payload that
//! decodes is already well-formed, and a payload that does not decode says exactly why
//! (`GTIN 4006381333932 has check digit 2, expected 1`) at exactly which field
//! (`payload.lines[0].gtin`). Code behind the boundary never re-checks a `Gtin` or a `VatId`.
//!
//! Each type also describes itself as JSON Schema (pattern, enum or bounds), so the committed
//! schemas under `docs/contracts/schemas/` tell outside producers the same rules.
//!
//! What these types do not check is anything that needs the outside world: that a VAT id is
//! registered (VIES), that a SKU exists in the catalog, that a GTIN is ours. Formats only.

mod country;
mod currency;
mod enums;
mod gtin;
mod ids;
mod money;
mod quantity;
mod text;
mod vat;

pub use country::{COUNTRY_CODES, CountryCode, EU_MEMBER_STATES};
pub use currency::{ACTIVE_CURRENCIES, CurrencyCode};
pub use enums::{Channel, OrderStatus, ShipmentStatus, TaxCategory, TaxClass};
pub use gtin::Gtin;
pub use ids::{Sku, StoreId, WarehouseId};
pub use money::{Amount, TaxRate};
pub use quantity::Quantity;
pub use text::{EmailAddress, Locale};
pub use vat::VatId;

/// Why a value was refused by its type's constructor. The message names the value and the
/// rule it broke, in words an operator understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

impl InvalidValue {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// The reason, as text.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

/// Shortens a refused input for an error message: a 2 MB "SKU" should not end up in a log line.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}
