//! The pluggable VAT id check.
//!
//! Contracts check a VAT id's *format* when a message is decoded; whether the number is
//! registered is for VIES (the EU's VAT Information Exchange System) to say. Orderly ships
//! [`FormatOnly`], which asks no registry: a reverse charge is then applied on the format
//! check alone and the invoice records `format_checked`. A VIES client implements
//! [`VatIdRegistry`] and is passed to [`crate::InvoicingHandler::with_registry`]; invoices
//! then record `verified` (or treat the buyer as a consumer when VIES says the number is
//! not valid). A registry that cannot be reached should answer
//! [`RegistryAnswer::NotChecked`] (the invoice says so) or fail the handling transiently,
//! as the operator prefers.

use std::future::Future;
use std::pin::Pin;

use orderly_contracts::types::VatId;

pub use crate::domain::vat::RegistryAnswer;

/// The future a registry check returns.
pub type Check<'a> = Pin<Box<dyn Future<Output = RegistryAnswer> + Send + 'a>>;

/// Something that can tell whether a VAT id is registered.
pub trait VatIdRegistry: Send + Sync + std::fmt::Debug + 'static {
    /// Asks about `id`.
    fn check<'a>(&'a self, id: &'a VatId) -> Check<'a>;
}

/// Asks nobody: format checks only.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatOnly;

impl VatIdRegistry for FormatOnly {
    fn check<'a>(&'a self, _id: &'a VatId) -> Check<'a> {
        Box::pin(async { RegistryAnswer::NotChecked })
    }
}
