//! Orderly's message contracts: pure data, no I/O.
//!
//! Everything that crosses a process boundary is defined here and only here: the
//! [`Envelope`], one payload type per message (with its [`Message::TYPE`] and
//! [`Message::VERSION`]), the validated value types they are built from, and the routing
//! table that says which queue receives which message type. Workers and outside producers
//! agree on these types; the JSON Schemas under `docs/contracts/` are generated from them.
//!
//! Architecture invariant: this crate does no I/O and depends on no worker.

pub mod envelope;
pub mod error;

pub use envelope::{Envelope, Message, RawEnvelope, TraceContext, decode_raw};
pub use error::ContractError;
