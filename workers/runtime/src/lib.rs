//! The messaging runtime every Orderly worker runs on, written once.
//!
//! A worker supplies a [`Handler`]; the runtime supplies everything that makes it reliable:
//! - [`topology`]: quorum queues with delivery limits, dead-letter and retry queues, declared
//!   idempotently under a namespace;
//! - [`consumer`]: batched deliveries, the inbox (exactly-once effects), retries with backoff
//!   and jitter through delay queues, dead letters with reasons, pausing while the database
//!   is down, reconnecting after broker loss, graceful shutdown;
//! - [`outbox`]: the transactional outbox and its relay (publisher confirms, `mandatory`,
//!   committed rows handed to it in process, a sweep for the rest, safe with several
//!   relays);
//! - [`dlq`]: operator access to dead letters;
//! - [`documents`]: the object store that keeps invoice and credit-note PDFs, shared by the
//!   worker that writes them and the ones that serve them;
//! - [`drain`]: the loop of a worker's background task that drains one of its tables;
//! - [`health`] and [`metrics`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`hop`] and [`traces`]: one trace per order, a span per handled message, parented on
//!   the hop that sent it, exported over OTLP when configured;
//! - [`host`]: one process hosting workers, with its shutdown story.
//!
//! Architecture invariant: handlers never publish. The only code that talks to the broker on
//! a handler's behalf is the outbox relay; the consumer itself only moves the message it was
//! given (to its retry or dead-letter queue).

pub mod access;
pub mod broker;
pub mod config;
pub mod consumer;
pub mod db;
mod depth;
pub mod dlq;
pub mod documents;
pub mod drain;
pub mod handler;
pub mod health;
pub mod hop;
pub mod host;
pub mod inputs;
#[cfg(feature = "bench")]
pub mod machine;
pub mod metrics;
pub mod outbox;
pub mod retry;
#[cfg(feature = "bench")]
pub mod scratch;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;
pub mod traces;

pub use config::Settings;
pub use handler::{
    Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey, Piece, lock_entities, runs,
};
pub use host::Host;
pub use inputs::{InputError, Inputs};

/// The contracts, for what [`inputs!`] expands to in a worker crate.
#[doc(hidden)]
pub use orderly_contracts as __contracts;
#[cfg(feature = "bench")]
pub use scratch::Scratch;
