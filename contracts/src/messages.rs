//! Every message payload, one module per area, one struct per message type.
//!
//! Each payload is a plain serde struct with `deny_unknown_fields` (a field a consumer does
//! not know is a contract violation, not something to ignore silently), doc comments that
//! become the JSON Schema descriptions, a [`crate::Message`] impl with its type and version,
//! and a [`crate::Validate`] impl with the rules that span fields.
//!
//! Optional fields are left out of the JSON when absent, never written as `null` (both are
//! accepted on input).

mod common;

pub mod catalog;
pub mod inventory;
pub mod invoices;
pub mod notifications;
pub mod orders;
pub mod requests;
pub mod setups;
pub mod shipments;
pub mod stores;
pub mod webhooks;

// Every payload and its parts, by area: a new message type needs no line here.
pub use catalog::*;
pub use common::*;
pub use inventory::*;
pub use invoices::*;
pub use notifications::*;
pub use orders::*;
pub use requests::*;
pub use setups::*;
pub use shipments::*;
pub use stores::*;
pub use webhooks::*;
