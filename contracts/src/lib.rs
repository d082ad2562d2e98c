//! Orderly's message contracts: pure data, no I/O.
//!
//! Everything that crosses a process boundary is defined here and only here: the
//! [`Envelope`], one payload type per message (with its [`Message::TYPE`] and
//! [`Message::VERSION`]), the validated value types they are built from, and the routing
//! table that says which queue receives which message type. Workers and outside producers
//! agree on these types; the JSON Schemas under `docs/contracts/` are generated from them.
//!
//! Code map:
//!
//! - [`envelope`]: the [`Envelope`] and decoding. A consumer calls [`decode_raw`] on the
//!   body, then [`RawEnvelope::decode_valid`] for its payload type.
//! - [`types`]: validated values (`Sku`, `Gtin`, `VatId`, `Amount`, ...). Parse, don't
//!   validate: a value that decoded is well-formed.
//! - [`messages`]: one payload struct per message type, by area.
//! - [`validate`]: [`Validate`], the cross-field business rules of each payload.
//! - [`error`]: [`ContractError`], the field path and reason of any refusal.
//! - [`json`](mod@json): strict JSON decoding (a key named twice is refused).
//! - [`routing`]: the exchange, the queues and which message types each receives.
//! - [`catalog`](mod@catalog): every message type with its schema, golden example and validator.
//!
//! Architecture invariant: this crate does no I/O and depends on no worker.

#[macro_use]
mod macros;

pub mod asyncapi;
pub mod catalog;
pub mod cloudevents;
pub mod envelope;
pub mod error;
mod examples;
pub mod json;
pub mod messages;
pub mod routing;
pub mod types;
pub mod validate;

pub use catalog::{MessageSpec, catalog};
pub use envelope::{Envelope, Message, RawEnvelope, TraceContext, decode_raw};
pub use error::ContractError;
pub use json::decode_json;
pub use validate::Validate;
