//! Business rules that span several fields of one payload.
//!
//! Types catch what one value can get wrong (a GTIN's check digit, a negative price). What is
//! left is what only the payload as a whole can get wrong: a line with neither SKU nor GTIN,
//! a total that is not the sum of its parts, a VAT id on a consumer. [`Validate`] checks
//! those; [`crate::RawEnvelope::decode_valid`] runs it after decoding, so a consumer sees
//! either a payload that makes sense or a [`ContractError`] naming the field
//! (`payload.lines[1]`, `payload.total`) — which the runtime dead-letters at once, because
//! retrying bad input cannot help.
//!
//! Rules stop at what the message itself can know. "This SKU exists", "this order is not
//! already shipped" need state and belong to the worker that owns it.

use std::collections::HashSet;
use std::hash::Hash;

use rust_decimal::Decimal;

use crate::error::ContractError;
use crate::types::{Amount, CurrencyCode};

/// Cross-field checks of a payload. Errors name the field by its path from the envelope root,
/// starting with `payload`.
pub trait Validate {
    /// Checks the payload's cross-field rules.
    fn validate(&self) -> Result<(), ContractError>;
}

/// Turns a rule's reason into a [`ContractError`] at a path, building the path only on failure.
pub(crate) trait At<T> {
    /// At a fixed path.
    fn at(self, field: &str) -> Result<T, ContractError>;
    /// At a path computed on failure (`|| format!("payload.lines[{i}]")`).
    fn at_with(self, field: impl FnOnce() -> String) -> Result<T, ContractError>;
}

impl<T> At<T> for Result<T, String> {
    fn at(self, field: &str) -> Result<T, ContractError> {
        self.map_err(|reason| ContractError::new(field, reason))
    }

    fn at_with(self, field: impl FnOnce() -> String) -> Result<T, ContractError> {
        self.map_err(|reason| ContractError::new(field(), reason))
    }
}

/// `Ok` if `ok`, otherwise the reason.
pub(crate) fn ensure(ok: bool, reason: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(reason()) }
}

/// Free text a human will read: not blank, at most `max` characters, no control characters
/// other than line breaks and tabs.
pub(crate) fn text(value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be blank".to_owned());
    }
    let len = value.chars().count();
    if len > max {
        return Err(format!(
            "is {len} characters long, at most {max} are allowed"
        ));
    }
    ensure(
        !value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')),
        || "contains control characters".to_owned(),
    )
}

/// Like [`text`] for an optional field.
pub(crate) fn opt_text(value: Option<&String>, max: usize) -> Result<(), String> {
    value.map_or(Ok(()), |v| text(v, max))
}

/// A non-empty list of at most `max` items.
pub(crate) fn count<T>(items: &[T], min: usize, max: usize) -> Result<(), String> {
    ensure(items.len() >= min, || {
        if min == 1 {
            "must not be empty".to_owned()
        } else {
            format!("needs at least {min} entries")
        }
    })?;
    ensure(items.len() <= max, || {
        format!("has {} entries, at most {max} are allowed", items.len())
    })
}

/// The index of the first item whose key was already seen.
pub(crate) fn first_duplicate<T, K: Eq + Hash>(
    items: &[T],
    key: impl Fn(&T) -> K,
) -> Option<usize> {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().position(|item| !seen.insert(key(item)))
}

/// An amount that is a whole number of `currency`'s minor units (totals, not unit prices).
pub(crate) fn minor_units(amount: Amount, currency: CurrencyCode) -> Result<(), String> {
    ensure(amount.fits_minor_units(currency), || {
        format!(
            "{amount} has more decimals than {currency} allows ({})",
            currency.minor_units().unwrap_or_default()
        )
    })
}

/// How far a stated total may be from the sum of its parts: one cent, for rounding per line.
pub(crate) const TOTAL_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// `stated` equals `expected` within [`TOTAL_TOLERANCE`].
pub(crate) fn matches_total(stated: Amount, expected: Decimal, how: &str) -> Result<(), String> {
    ensure((stated.value() - expected).abs() <= TOTAL_TOLERANCE, || {
        // Show the expected value at the stated one's scale (37.50, not 37.5), or finer.
        let mut shown = expected.round_dp(8).normalize();
        shown.rescale(shown.scale().max(stated.value().scale()));
        format!("{stated} does not match {how} = {shown}")
    })
}

/// Decimal sums that cannot overflow with in-range [`Amount`]s and quantities, checked anyway:
/// a message must never be able to panic a worker.
pub(crate) fn sum(values: impl IntoIterator<Item = Decimal>) -> Result<Decimal, String> {
    values
        .into_iter()
        .try_fold(Decimal::ZERO, |acc, v| acc.checked_add(v))
        .ok_or_else(|| "amounts too large to add up".to_owned())
}

/// `unit × quantity`, checked.
pub(crate) fn times(unit: Amount, quantity: u32) -> Result<Decimal, String> {
    unit.value()
        .checked_mul(Decimal::from(quantity))
        .ok_or_else(|| "amount times quantity is too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_one_cent() {
        assert_eq!(TOTAL_TOLERANCE.to_string(), "0.01");
        let a = |s: &str| Amount::parse(s).expect(s);
        assert!(matches_total(a("10.00"), Decimal::new(1001, 2), "x").is_ok());
        assert!(matches_total(a("10.00"), Decimal::new(999, 2), "x").is_ok());
        let err = matches_total(a("10.00"), Decimal::new(1002, 2), "lines").expect_err("2 cents");
        assert_eq!(err, "10.00 does not match lines = 10.02");
    }

    #[test]
    fn text_rules() {
        assert!(text("Jörg", 10).is_ok());
        assert_eq!(text("  ", 10).expect_err("blank"), "must not be blank");
        assert!(text("abc", 2).is_err());
        assert!(text("a\u{0}b", 10).is_err());
        assert!(text("line 1\nline 2", 20).is_ok());
    }

    #[test]
    fn duplicates() {
        assert_eq!(first_duplicate(&[1, 2, 3], |x| *x), None);
        assert_eq!(first_duplicate(&[1, 2, 1], |x| *x), Some(2));
    }
}
