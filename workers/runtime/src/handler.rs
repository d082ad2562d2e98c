//! What a worker implements: a [`Handler`] that decides what a message means for its state.
//!
//! The handler gets the decoded envelope and a [`HandlerContext`] holding the database
//! transaction. It writes its state through `cx.conn` and declares outgoing messages with
//! [`HandlerContext::emit`]; the runtime writes those to the outbox in the same transaction,
//! records the message in the inbox, and commits. A handler has no other way to publish.
//!
//! The error type says what the runtime does next (see [`HandlerError`]).

use std::future::Future;

use orderly_contracts::{ContractError, Envelope, Message, RawEnvelope};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::outbox::OutboxMessage;

/// A delivery as the handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The envelope, payload still undecoded.
    pub envelope: RawEnvelope,
    /// Which handling attempt this is (1 for the first).
    pub attempt: u32,
}

impl Incoming {
    /// Decodes the payload, turning a contract violation into a permanent failure.
    pub fn decode<P: Message>(&self) -> Result<Envelope<P>, HandlerError> {
        Ok(self.envelope.clone().decode::<P>()?)
    }
}

/// What went wrong, and so what the runtime does with the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a lock timeout, a serialization conflict, a dependency not there yet):
    /// retried after a delay, within the attempt budget, then dead-lettered.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never work (bad input, an impossible business fact): dead-lettered now, with the
    /// reason, without spending retries.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Bad input the worker wants on record: the handler's writes so far (e.g. a row in its
    /// list of rejected orders) are committed, the message is dead-lettered with the reason,
    /// and its inbox claim is released so a replay is judged again.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The database is unreachable: nothing is wrong with the message. The runtime pauses
    /// and tries the same batch again when the database is back; no attempt is spent.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
}

impl HandlerError {
    /// A permanent failure with `reason`.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent(reason.into())
    }

    /// A rejection on record with `reason`.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected(reason.into())
    }

    /// A transient failure from anything displayable.
    pub fn transient(err: impl Into<anyhow::Error>) -> Self {
        Self::Transient(err.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_connection_error(&err) {
            Self::Unavailable(err)
        } else {
            Self::Transient(err.into())
        }
    }
}

impl From<ContractError> for HandlerError {
    fn from(err: ContractError) -> Self {
        Self::Permanent(format!("contract violation: {err}"))
    }
}

/// The transaction and the outgoing messages of one handled message.
#[derive(Debug)]
pub struct HandlerContext<'a> {
    /// The worker's transaction (its `search_path` is the worker's schema).
    pub conn: &'a mut PgConnection,
    pub(crate) outgoing: Vec<OutboxMessage>,
    pub(crate) cause: &'a RawEnvelope,
    pub(crate) producer: &'a str,
}

impl HandlerContext<'_> {
    /// Publishes `payload` after commit, caused by the message being handled (its correlation
    /// id and trace are inherited). Returns the new message's id.
    pub fn emit<P: Message>(&mut self, payload: P) -> Uuid {
        let correlation = self.cause.correlation_id.clone();
        self.emit_correlated(correlation, payload)
    }

    /// Like [`HandlerContext::emit`], with another correlation id (a message about another
    /// entity, e.g. a backordered order released by a stock adjustment).
    pub fn emit_correlated<P: Message>(&mut self, correlation_id: String, payload: P) -> Uuid {
        let envelope = Envelope::new(self.producer, correlation_id, payload).caused_by(self.cause);
        let id = envelope.message_id;
        self.outgoing.push(OutboxMessage::from_envelope(&envelope));
        id
    }
}

/// A worker's message handler.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message inside the transaction in `cx`.
    fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}
