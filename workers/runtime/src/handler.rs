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
use tracing::Instrument;
use uuid::Uuid;

pub use crate::inputs::Incoming;
use crate::inputs::{InputError, Inputs};
use crate::outbox::OutboxMessage;

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

impl From<InputError> for HandlerError {
    fn from(err: InputError) -> Self {
        HandlerError::Permanent(err.to_string())
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
    pub(crate) outgoing: &'a mut Vec<OutboxMessage>,
    /// Set by [`HandlerContext::wake_after_commit`].
    pub(crate) wake: &'a mut bool,
    pub(crate) cause: &'a RawEnvelope,
    pub(crate) producer: &'a str,
}

/// The transaction of a batch's fresh messages, handled together by
/// [`Handler::handle_batch`]. What a message emits is caused by that message: take its
/// [`HandlerContext`] with [`Batch::context`].
#[derive(Debug)]
pub struct Batch<'a> {
    /// The batch's transaction (its `search_path` is the worker's schema).
    pub conn: &'a mut PgConnection,
    pub(crate) outgoing: &'a mut Vec<OutboxMessage>,
    /// Set by [`HandlerContext::wake_after_commit`].
    pub(crate) wake: &'a mut bool,
    pub(crate) producer: &'a str,
}

impl Batch<'_> {
    /// The context of one message of the batch: its writes go to the batch's transaction,
    /// what it emits is caused by it.
    pub fn context<'b>(&'b mut self, msg: &'b Incoming) -> HandlerContext<'b> {
        HandlerContext {
            conn: &mut *self.conn,
            outgoing: &mut *self.outgoing,
            wake: &mut *self.wake,
            cause: &msg.envelope,
            producer: self.producer,
        }
    }

    /// The tracing span of handling `msg` (what [`Batch::handle_one`] runs it in), for a
    /// worker that decides a batch's messages itself.
    pub fn span(&self, msg: &Incoming) -> tracing::Span {
        span(self.producer, msg)
    }

    /// Handles `msg` alone with `handler`'s [`Handler::handle`] (in its tracing span).
    pub async fn handle_one<H: Handler + ?Sized>(
        &mut self,
        handler: &H,
        msg: &Incoming,
    ) -> Result<(), HandlerError> {
        let span = span(self.producer, msg);
        handler
            .handle(msg, &mut self.context(msg))
            .instrument(span)
            .await
    }
}

/// The tracing span of handling one message.
pub(crate) fn span(worker: &str, msg: &Incoming) -> tracing::Span {
    tracing::info_span!(
        "handle",
        worker = %worker,
        message_id = %msg.envelope.message_id,
        message_type = %msg.envelope.message_type,
        correlation_id = %msg.envelope.correlation_id,
        causation_id = ?msg.envelope.causation_id,
        attempt = msg.attempt,
    )
}

impl HandlerContext<'_> {
    /// This message's context as a batch of one, for a worker whose one-message path is its
    /// batch path (what the batch emits is caused by this message as usual: take the
    /// message's context from the batch with [`Batch::context`]).
    pub fn as_batch(&mut self) -> Batch<'_> {
        Batch {
            conn: &mut *self.conn,
            outgoing: &mut *self.outgoing,
            wake: &mut *self.wake,
            producer: self.producer,
        }
    }

    /// Wakes the worker's background task (its [`crate::drain`] loop, through the host's
    /// [`crate::drain::Wake`] for the worker) once this transaction has committed: for a
    /// handler that queued rows for it (a webhook delivery, a render job). In process and
    /// after the commit, so no `NOTIFY` serialises the worker's commits (decision 0006).
    pub fn wake_after_commit(&mut self) {
        *self.wake = true;
    }

    /// Publishes `payload` after commit, caused by the message being handled (its correlation
    /// id and trace are inherited). Returns the new message's id.
    pub fn emit<P: Message>(&mut self, payload: P) -> Uuid {
        let correlation = self.cause.correlation_id.clone();
        self.emit_correlated(correlation, payload)
    }

    /// Like [`HandlerContext::emit_correlated`], after checking `payload` against its
    /// contract's business rules: a worker that built a message its consumers would refuse
    /// has a bug, so the message being handled is dead-lettered with the reason instead of
    /// the bad one being published.
    pub fn emit_valid<P: Message + orderly_contracts::Validate>(
        &mut self,
        correlation_id: String,
        payload: P,
    ) -> Result<Uuid, HandlerError> {
        let envelope = self.defer_valid(correlation_id, payload)?;
        self.outgoing.push(OutboxMessage::from_envelope(&envelope));
        Ok(envelope.message_id)
    }

    /// Like [`HandlerContext::emit`], with another correlation id (a message about another
    /// entity, e.g. a backordered order released by a stock adjustment).
    pub fn emit_correlated<P: Message>(&mut self, correlation_id: String, payload: P) -> Uuid {
        let envelope = self.envelope(correlation_id, payload);
        let id = envelope.message_id;
        self.outgoing.push(OutboxMessage::from_envelope(&envelope));
        id
    }

    /// A message caused by the one being handled, checked like [`HandlerContext::emit_valid`]
    /// but *not* emitted: for a worker that finishes the work in a background task and sends
    /// it from there (through the outbox, with [`crate::outbox::insert`]), keeping its id,
    /// correlation and causation. The worker stores it in the handler's transaction.
    pub fn defer_valid<P: Message + orderly_contracts::Validate>(
        &self,
        correlation_id: String,
        payload: P,
    ) -> Result<Envelope<P>, HandlerError> {
        if let Err(e) = payload.validate() {
            return Err(HandlerError::Permanent(format!(
                "{} refused to send an invalid `{}` (correlation {correlation_id}): {e}",
                self.producer,
                P::TYPE
            )));
        }
        Ok(self.envelope(correlation_id, payload))
    }

    /// A message caused by the one being handled: its causation, and the trace context of
    /// this hop (this trace, this hop's span as its parent: [`crate::hop`]).
    fn envelope<P: Message>(&self, correlation_id: String, payload: P) -> Envelope<P> {
        let mut envelope =
            Envelope::new(self.producer, correlation_id, payload).caused_by(self.cause);
        let hop = crate::hop::Hop::of(
            self.producer,
            self.cause.message_id,
            self.cause.trace.as_ref().map(|t| t.traceparent.as_str()),
        );
        envelope.trace = Some(orderly_contracts::TraceContext {
            traceparent: hop.child_traceparent(),
        });
        envelope
    }
}

/// An entity a message is about to change, as the key of a transaction-scoped PostgreSQL
/// advisory lock that the consumer takes before the message's handler runs.
///
/// Why: the consumer handles a batch of messages in one transaction, so a handler's row
/// locks stay held while the batch's later messages take theirs. Two batches that lock the
/// same entities in different (arrival) orders deadlock, and PostgreSQL only notices after
/// `deadlock_timeout`. When handlers declare their keys, the consumer takes every key of a
/// batch at once, in ascending order, before any handler runs: batches that share an entity
/// queue behind each other and never deadlock (see [`crate::consumer`]).
///
/// A key is a kind (`order`, `sku`) and an id; the consumer mixes in the worker's name, so
/// two workers sharing a database never wait for each other. A *shared* key is compatible
/// with other shared holders of the same key and excludes its exclusive holders: the
/// pattern for "everything except one rare, wide operation" (inventory's stock adjustments,
/// which touch orders they cannot name in advance, take the `inventory` key exclusively;
/// reservations take it shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockKey {
    hash: u64,
    shared: bool,
}

impl LockKey {
    /// An exclusive lock on the entity `kind`/`id`.
    pub fn exclusive(kind: &str, id: impl std::fmt::Display) -> Self {
        Self {
            hash: key_hash(kind, &id.to_string()),
            shared: false,
        }
    }

    /// A shared lock on the entity `kind`/`id`.
    pub fn shared(kind: &str, id: impl std::fmt::Display) -> Self {
        Self {
            hash: key_hash(kind, &id.to_string()),
            shared: true,
        }
    }

    /// Whether other shared holders may hold it at the same time.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The advisory lock key for worker `worker`: stable across processes and releases
    /// (FNV-1a, not the standard library's hasher), so copies of a worker agree on it.
    pub fn advisory_key(&self, worker: &str) -> i64 {
        let mut h = fnv(FNV_OFFSET, worker.as_bytes());
        h = fnv(h, &[0]);
        h = fnv(h, &self.hash.to_le_bytes());
        i64::from_ne_bytes(h.to_ne_bytes())
    }
}

/// Takes `keys` of worker `worker` as transaction-scoped advisory locks on `conn`, in
/// ascending key order, in one statement: the same order every batch of the worker's
/// consumer uses, so anything else of the worker that changes the same entities in its own
/// transactions (a background task) can take its keys here first and never wait in a cycle
/// with a batch.
pub async fn lock_entities(
    conn: &mut PgConnection,
    worker: &str,
    keys: &[LockKey],
) -> Result<(), sqlx::Error> {
    let mut sorted: std::collections::BTreeMap<i64, bool> = std::collections::BTreeMap::new();
    for key in keys {
        let shared = sorted.entry(key.advisory_key(worker)).or_insert(true);
        *shared &= key.is_shared();
    }
    take_advisory_locks(conn, sorted).await
}

/// Takes advisory locks (key → shared?) in ascending key order. The statement relies on
/// PostgreSQL evaluating the select list row by row in the order a function scan of
/// `unnest` returns the (sorted) array: there is no `order by` for the planner to move around
/// the lock calls.
async fn take_advisory_locks(
    conn: &mut PgConnection,
    keys: std::collections::BTreeMap<i64, bool>,
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let (ids, shared): (Vec<i64>, Vec<bool>) = keys.into_iter().unzip();
    sqlx::query(
        "select case when s then pg_advisory_xact_lock_shared(k) else pg_advisory_xact_lock(k) end
         from unnest($1::bigint[], $2::boolean[]) as t(k, s)",
    )
    .bind(&ids)
    .bind(&shared)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn key_hash(kind: &str, id: &str) -> u64 {
    fnv(fnv(fnv(FNV_OFFSET, kind.as_bytes()), &[0]), id.as_bytes())
}

/// A piece of a batch (see [`runs`]).
#[derive(Debug, Clone, Copy)]
pub enum Piece<'m> {
    /// Consecutive messages the worker decides together.
    Together(&'m [&'m Incoming]),
    /// A message handled alone.
    Alone(&'m Incoming),
}

/// Splits a batch, in arrival order, into the longest runs of consecutive messages that
/// `together` takes (usually: its decoded input is one of the worker's common messages), and
/// every other message alone: how a worker that decides its common messages a run at a
/// time, and the rest one by one where they arrived, walks its batch without reordering
/// anything (so [`Handler::handle_batch`]'s promise holds as is).
pub fn runs<'m>(
    msgs: &'m [&'m Incoming],
    together: impl Fn(&Incoming) -> bool + 'm,
) -> impl Iterator<Item = Piece<'m>> {
    let mut rest = msgs;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let n = rest.iter().take_while(|m| together(m)).count();
        let piece = if n > 0 {
            Piece::Together(&rest[..n])
        } else {
            Piece::Alone(first)
        };
        rest = &rest[n.max(1)..];
        Some(piece)
    })
}

/// A worker's message handler.
pub trait Handler: Send + Sync + 'static {
    /// The messages the worker consumes, declared once with [`crate::inputs!`]: the host
    /// refuses to start a worker whose routing-table queue receives other types than these
    /// ([`crate::inputs::check_routes`]), and `handle` matches on it exhaustively.
    type Input: Inputs;

    /// Handles one message inside the transaction in `cx`.
    fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// The entities `msg` will change (see [`LockKey`]). Called inside the batch's
    /// transaction, before any handler of the batch runs; it may read (never lock or write)
    /// through `conn` to find an entity a message names only indirectly. Keys must cover
    /// every row the handler locks, or the batch can still deadlock on the ones left out.
    /// A message whose keys cannot be determined (it does not decode) returns none: its
    /// handler fails on its own. Default: no keys (the handler's own locks, in arrival order).
    fn lock_keys(
        &self,
        msg: &Incoming,
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<Vec<LockKey>, HandlerError>> + Send {
        let _ = (msg, conn);
        async { Ok(Vec::new()) }
    }

    /// The entities a batch's fresh messages will change: every message's
    /// [`Handler::lock_keys`], by default. A worker overrides it when some of its messages
    /// name their entities only indirectly, to look all of them up in one statement instead
    /// of one per message. The same rules apply as to `lock_keys`: read, never lock or
    /// write; a message whose keys cannot be determined contributes none.
    fn batch_lock_keys(
        &self,
        msgs: &[&Incoming],
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<Vec<LockKey>, HandlerError>> + Send {
        async move {
            let mut keys = Vec::new();
            for msg in msgs {
                match self.lock_keys(msg, &mut *conn).await {
                    Ok(declared) => keys.extend(declared),
                    Err(HandlerError::Unavailable(err)) => {
                        return Err(HandlerError::Unavailable(err));
                    }
                    // The handler will meet the same problem and fail on its own.
                    Err(err) => tracing::debug!(error = %err, "no lock keys for a message"),
                }
            }
            Ok(keys)
        }
    }

    /// Handles a batch's fresh messages (in arrival order, each message once) in the batch's
    /// transaction. Default: [`Handler::handle`] for each in turn.
    ///
    /// A worker overrides it when it can do the work of many messages in fewer statements
    /// (inventory reserves a batch's new orders together). The effect must be that of
    /// handling the messages one at a time in *some* order that keeps the messages of one
    /// correlation id in arrival order: the order lanes promise (messages of different flows
    /// have no order between them anyway).
    ///
    /// Any error rolls the whole batch back, and the runtime then handles each message alone
    /// with [`Handler::handle`], in its own savepoint: so what is decided about a single
    /// message (retried, dead-lettered, rejected) is always decided by `handle`, never here.
    fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        async move {
            for msg in msgs {
                batch.handle_one(self, msg).await?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Incoming, LockKey, Piece, runs};

    #[test]
    fn runs_keep_arrival_order_and_take_the_longest_runs() {
        let msgs: Vec<Incoming> = ["a", "a", "b", "a", "b", "b", "a"]
            .iter()
            .map(|t| {
                Incoming::new(
                    orderly_contracts::RawEnvelope {
                        message_id: uuid::Uuid::now_v7(),
                        message_type: (*t).to_owned(),
                        schema_version: 1,
                        correlation_id: "c".to_owned(),
                        causation_id: None,
                        occurred_at: chrono::Utc::now(),
                        producer: "test".to_owned(),
                        trace: None,
                        payload: serde_json::Value::Null,
                    },
                    1,
                )
            })
            .collect();
        let refs: Vec<&Incoming> = msgs.iter().collect();
        let shape: Vec<String> = runs(&refs, |m| m.envelope.message_type == "a")
            .map(|p| match p {
                Piece::Together(run) => format!("together {}", run.len()),
                Piece::Alone(m) => format!("alone {}", m.envelope.message_type),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "together 2",
                "alone b",
                "together 1",
                "alone b",
                "alone b",
                "together 1"
            ]
        );
        assert_eq!(runs(&[], |_| true).count(), 0);
    }

    #[test]
    fn keys_are_stable_and_distinguish_kind_id_and_worker() {
        let a = LockKey::exclusive("order", "42");
        assert_eq!(
            a.advisory_key("orders"),
            LockKey::shared("order", 42).advisory_key("orders")
        );
        assert_ne!(a.advisory_key("orders"), a.advisory_key("fulfillment"));
        assert_ne!(
            a.advisory_key("orders"),
            LockKey::exclusive("sku", "42").advisory_key("orders")
        );
        assert_ne!(LockKey::exclusive("ab", "c"), LockKey::exclusive("a", "bc"));
        // Pinned (computed independently: FNV-1a 64 of "order\0" "42", then of "orders\0"
        // and that hash's little-endian bytes): copies of a worker built from different
        // releases must agree on every key.
        assert_eq!(a.advisory_key("orders"), -5_353_324_125_904_874_573);
    }
}
