//! The transactional outbox and its relay.
//!
//! A handler's outgoing messages are rows in its schema's `outbox` table, inserted in the
//! handler's transaction, so a message exists exactly when the state change that caused it
//! does. The [`Relay`] publishes pending rows with publisher confirms and `mandatory`, and
//! marks a row published only after the broker acknowledged it. A crash at any point leaves
//! the row pending and it is published again; consumers drop the duplicate by message id.
//!
//! # How rows reach the relay
//! Whoever writes the outbox in this process (the consumer, a worker's background task)
//! hands the rows it committed to the relay of that schema ([`Handoff`]), which publishes
//! them at once, in commit order, and marks them with one statement: no query to find them,
//! and no notification at commit (PostgreSQL serialises every committing transaction that
//! sent a NOTIFY, fsync included, behind one lock). Rows nobody handed over (a crash before
//! the relay got to them, another process's rows, a full handoff, a retry that is due) are
//! found by the relay's *sweep*. Each relay session (one broker connection) starts with a
//! catch-up, before it publishes anything handed: rows that failed before and are due (a
//! confirm failed with the connection is due at once) and the rows written before the relay
//! existed, then the handed rows the last session's lost connection could not publish; so one order's messages keep the order their worker wrote them in across a
//! broker outage. Then the sweep runs every poll interval, taking rows that failed before
//! and are due, and rows written more than a poll interval ago (younger ones are on their
//! way through a handoff); rows another live process wrote (`written_by`, the process's
//! id, set on its sessions) only after [`OTHER_WRITERS_GRACE`], since that process's
//! handoff is publishing them. The sweep runs beside the
//! handoff, on its own broker channel, so its scan never holds handed rows back.
//!
//! Why rows stay pending, and stay visible (`orderly outbox status`):
//! - *unroutable*: the broker returned the message because no queue is bound for its type;
//! - *nacked*: the broker refused it (a full outbound queue with `reject-publish`);
//! - *broker down*: the publish or confirm failed.
//!
//! Unroutable and nacked rows are retried by the sweep with growing delays (`available_at`)
//! so they never block the rows behind them; a row that failed with the connection is due
//! at once, for the next session's catch-up. Several relays can run at once: the sweep takes rows with
//! `FOR UPDATE SKIP LOCKED`; a row handed over in one process and swept by another relay in
//! the same moment (its writer busier than the grace) can be published twice, which
//! consumers deduplicate.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lapin::{Channel, Connection, options::BasicPublishOptions, options::ConfirmSelectOptions};
use orderly_contracts::{Envelope, Message};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::{
    broker::{self, Names},
    metrics::Metrics,
};

/// One message waiting to be written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// The envelope's message id.
    pub message_id: Uuid,
    /// The message type, also the routing key.
    pub message_type: String,
    /// Correlation id, kept as a column for operators' queries.
    pub correlation_id: String,
    /// The whole envelope as JSON.
    pub body: serde_json::Value,
}

impl OutboxMessage {
    /// Wraps an envelope.
    pub fn from_envelope<P: Message + Serialize>(envelope: &Envelope<P>) -> Self {
        Self {
            message_id: envelope.message_id,
            message_type: envelope.message_type.clone(),
            correlation_id: envelope.correlation_id.clone(),
            body: serde_json::to_value(envelope).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A row written to the outbox, with what its publication needs.
#[derive(Debug, Clone)]
pub struct Written {
    /// Outbox row id.
    id: i64,
    message_id: Uuid,
    message_type: String,
    routing_key: String,
    correlation_id: String,
    /// The envelope as JSON text, as it goes on the wire.
    body: String,
    producer: String,
    /// Seconds since the epoch.
    occurred: u64,
    /// `occurred_at` as the envelope writes it (RFC 3339).
    occurred_at: String,
    schema_version: u16,
    traceparent: Option<String>,
    /// Earlier attempts to publish it.
    attempts: i32,
}

impl Written {
    fn new(
        id: i64,
        message_type: &str,
        correlation_id: &str,
        envelope: &serde_json::Value,
        attempts: i32,
    ) -> Self {
        let text = |pointer: &str| envelope.pointer(pointer).and_then(|v| v.as_str());
        Self {
            id,
            message_id: text("/message_id")
                .and_then(|id| Uuid::parse_str(id).ok())
                .unwrap_or_default(),
            message_type: message_type.to_owned(),
            routing_key: message_type.to_owned(),
            correlation_id: correlation_id.to_owned(),
            body: envelope.to_string(),
            producer: text("/producer").unwrap_or("orderly").to_owned(),
            occurred: text("/occurred_at")
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(0, |t| t.timestamp().max(0) as u64),
            occurred_at: text("/occurred_at").unwrap_or_default().to_owned(),
            schema_version: envelope
                .pointer("/schema_version")
                .and_then(serde_json::Value::as_u64)
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(1),
            traceparent: text("/trace/traceparent").map(str::to_owned),
            attempts,
        }
    }
}

impl Written {
    /// Its CloudEvents attributes (the AMQP headers beside the body); `id` is its message id
    /// as text.
    fn cloudevent<'a>(&'a self, id: &'a str) -> orderly_contracts::cloudevents::Attributes<'a> {
        orderly_contracts::cloudevents::Attributes {
            id,
            message_type: &self.message_type,
            schema_version: self.schema_version,
            source: &self.producer,
            time: &self.occurred_at,
            subject: &self.correlation_id,
        }
    }
}

/// Inserts `messages` into the outbox of the connection's schema, in one statement, and
/// returns them as written (hand them to the relay with [`Handoff::hand`] once the
/// transaction committed).
pub async fn insert(
    conn: &mut PgConnection,
    messages: &[OutboxMessage],
) -> sqlx::Result<Vec<Written>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    let types: Vec<&str> = messages.iter().map(|m| m.message_type.as_str()).collect();
    let correlations: Vec<&str> = messages.iter().map(|m| m.correlation_id.as_str()).collect();
    let bodies: Vec<String> = messages.iter().map(|m| m.body.to_string()).collect();
    let rows: Vec<(i64, Uuid)> = sqlx::query_as(
        "insert into outbox (message_id, message_type, routing_key, correlation_id, body)
         select id, t, t, c, b::jsonb
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as m(id, t, c, b)
         returning id, message_id",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&correlations)
    .bind(&bodies)
    .fetch_all(conn)
    .await?;
    let row_of: std::collections::HashMap<Uuid, i64> = rows
        .into_iter()
        .map(|(id, message)| (message, id))
        .collect();
    Ok(messages
        .iter()
        .zip(bodies)
        .filter_map(|(m, body)| {
            let id = *row_of.get(&m.message_id)?;
            let mut written = Written::new(id, &m.message_type, &m.correlation_id, &m.body, 0);
            written.body = body;
            Some(written)
        })
        .collect())
}

/// Like [`insert`], and returns first the pending rows about the same correlation ids that
/// another process wrote: what a crashed copy left unpublished about the orders whose
/// partition this process took over. Handing the result over publishes those rows before
/// the new ones, so an order's messages leave in the order they were written across a
/// take-over, where the sweep would publish them only after its grace, behind the
/// successor's (the fault suite's `two-copies-killed-repeatedly`: a `shipment.dispatched`
/// published after the `shipment.delivered` the successor wrote, and suppressed as stale).
///
/// A row of a live process may be taken too (that process handles the same order from
/// another input at the same moment, or the predecessor is not quite dead): it is then
/// published twice, which consumers deduplicate by message id. Rows are not locked: a sweep
/// publishing one of them at the same moment only adds such a duplicate.
pub async fn insert_after_others(
    conn: &mut PgConnection,
    messages: &[OutboxMessage],
) -> sqlx::Result<Vec<Written>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut correlations: Vec<&str> = messages.iter().map(|m| m.correlation_id.as_str()).collect();
    correlations.sort_unstable();
    correlations.dedup();
    let left: Vec<PendingRow> = sqlx::query_as(
        "select id, message_type, routing_key, correlation_id, body, attempts from outbox
         where published_at is null and correlation_id = any($1)
           and written_by is distinct from nullif(current_setting('orderly.writer', true), '')::uuid
         order by id",
    )
    .bind(&correlations)
    .fetch_all(&mut *conn)
    .await?;
    let mut rows: Vec<Written> = left.into_iter().map(Written::from).collect();
    if !rows.is_empty() {
        debug!(
            rows = rows.len(),
            "publishing another process's pending rows about the same orders first"
        );
    }
    rows.extend(insert(conn, messages).await?);
    Ok(rows)
}

/// Hands rows a process committed to its outbox to the relay of that schema in the same
/// process, which publishes them at once (see the module documentation). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handoff(mpsc::Sender<Vec<Written>>);

impl Handoff {
    /// A handoff and the receiving end for the relay ([`Relay::with_handoff`]).
    pub fn new() -> (Self, mpsc::Receiver<Vec<Written>>) {
        let (tx, rx) = mpsc::channel(HANDOFF_CAPACITY);
        (Self(tx), rx)
    }

    /// Hands over rows written in a transaction that committed. Never waits: when the
    /// relay is far behind (or gone), the rows stay pending and its sweep publishes them.
    pub fn hand(&self, rows: Vec<Written>) {
        if !rows.is_empty() {
            let _ = self.0.try_send(rows);
        }
    }
}

/// Transactions' worth of rows a handoff holds before it leaves rows to the sweep.
const HANDOFF_CAPACITY: usize = 1024;

/// Backlog of one outbox, for `orderly outbox status` and the metrics.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OutboxStatus {
    /// Rows not yet confirmed by the broker.
    pub pending: i64,
    /// Pending rows whose last attempt failed.
    pub failing: i64,
    /// Creation time of the oldest pending row.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Rows published within the retention window.
    pub published: i64,
}

/// A pending row that failed at least once, with why.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StuckMessage {
    /// Outbox row id.
    pub id: i64,
    /// Message id.
    pub message_id: Uuid,
    /// Message type.
    pub message_type: String,
    /// Publication attempts so far.
    pub attempts: i32,
    /// Why the last one failed.
    pub last_error: Option<String>,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

/// Reads the backlog of the pool's schema.
pub async fn status(pool: &PgPool) -> sqlx::Result<OutboxStatus> {
    sqlx::query_as(
        "select count(*) filter (where published_at is null) as pending,
                count(*) filter (where published_at is null and attempts > 0) as failing,
                min(created_at) filter (where published_at is null) as oldest_pending,
                count(*) filter (where published_at is not null) as published
         from outbox",
    )
    .fetch_one(pool)
    .await
}

/// Lists up to `limit` pending rows that failed at least once.
pub async fn stuck(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<StuckMessage>> {
    sqlx::query_as(
        "select id, message_id, message_type, attempts, last_error, created_at from outbox
         where published_at is null and attempts > 0 order by id limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    message_type: String,
    routing_key: String,
    correlation_id: String,
    body: serde_json::Value,
    attempts: i32,
}

impl From<PendingRow> for Written {
    fn from(row: PendingRow) -> Self {
        let mut written = Self::new(
            row.id,
            &row.message_type,
            &row.correlation_id,
            &row.body,
            row.attempts,
        );
        written.routing_key = row.routing_key;
        written
    }
}

/// Fault injection for tests: simulate a relay crash at a chosen point.
#[derive(Debug, Clone, Default)]
pub struct RelayFaults {
    /// Publish one batch, then "crash" before marking it sent.
    pub crash_after_publish: bool,
}

/// Publishes one schema's outbox.
#[derive(Debug)]
pub struct Relay {
    /// The schema whose outbox this relay drains (for logs and metrics).
    pub schema: String,
    pool: PgPool,
    broker_url: String,
    names: Names,
    batch_size: i64,
    poll_interval: Duration,
    retention_hours: u32,
    inbox_retention_hours: u32,
    metrics: Arc<Metrics>,
    faults: RelayFaults,
    handed: Option<mpsc::Receiver<Vec<Written>>>,
    /// Handed rows whose publishing failed with the connection: the next session publishes
    /// them first, before anything newer, so they keep their place in line.
    leftover: std::sync::Mutex<Vec<Written>>,
    /// Where the relay reports the broker's flow control (`<schema>.broker_flow`).
    health: Option<crate::health::Health>,
    /// When the relay was made: rows written before are nobody's to hand over.
    made_at: DateTime<Utc>,
    /// The process whose handoffs feed this relay (the `written_by` of its rows), if any.
    writer: Option<Uuid>,
}

/// How long a sweep leaves rows another live process wrote to that process's handoff. Rows
/// of a process that died are taken after this (or at once by its own restart's catch-up).
pub const OTHER_WRITERS_GRACE: Duration = Duration::from_secs(30);

/// Which rows never tried a sweep takes (rows that failed before are taken when due).
#[derive(Debug, Clone, Copy)]
enum Unhanded {
    /// Written before this moment: before the relay existed, so no handoff has them.
    Before(DateTime<Utc>),
    /// Written longer ago than this: a handoff would have delivered them by now.
    OlderThan(Duration),
}

/// Why a relay stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayExit {
    /// Shutdown was requested and the backlog flushed (or the flush timed out).
    Shutdown,
    /// A fault was injected.
    Crashed,
}

impl Relay {
    /// A relay for `schema`'s outbox, publishing to `names`' events exchange.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        schema: impl Into<String>,
        pool: PgPool,
        broker_url: impl Into<String>,
        names: Names,
        settings: &crate::config::RelaySettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            schema: schema.into(),
            pool,
            broker_url: broker_url.into(),
            names,
            batch_size: settings.batch_size.max(1),
            poll_interval: Duration::from_millis(settings.poll_interval_ms.max(10)),
            retention_hours: settings.retention_hours,
            inbox_retention_hours: settings.inbox_retention_hours,
            metrics,
            faults: RelayFaults::default(),
            handed: None,
            leftover: std::sync::Mutex::default(),
            health: None,
            made_at: Utc::now(),
            writer: None,
        }
    }

    /// Says which process's handoffs feed this relay: its sweep takes that process's rows
    /// (and unmarked ones) after a poll interval, other processes' after
    /// [`OTHER_WRITERS_GRACE`].
    #[must_use]
    pub fn with_writer(mut self, writer: Uuid) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Injects faults (tests).
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn with_faults(mut self, faults: RelayFaults) -> Self {
        self.faults = faults;
        self
    }

    /// Takes the rows this process hands over (see [`Handoff`]).
    #[must_use]
    pub fn with_handoff(mut self, handed: mpsc::Receiver<Vec<Written>>) -> Self {
        self.handed = Some(handed);
        self
    }

    /// Reports the broker's flow control to `health` as the check `<schema>.broker_flow`.
    #[must_use]
    pub fn with_health(mut self, health: crate::health::Health) -> Self {
        self.health = Some(health);
        self
    }

    /// Watches whether the broker blocks this relay's connection (`connection.blocked`: a
    /// memory or disk alarm). Publishing simply waits meanwhile: rows stay pending until
    /// the broker confirms them, so nothing is lost or sent twice; readiness says why the
    /// outbox is not moving. Stops (and clears the check) when the guard is dropped.
    fn watch_flow(&self, status: lapin::ConnectionStatus) -> Option<FlowWatch> {
        let health = self.health.clone()?;
        let check = format!("{}.broker_flow", self.schema);
        let (schema, watched) = (self.schema.clone(), check.clone());
        let task_health = health.clone();
        let task = tokio::spawn(async move {
            let mut was_blocked = false;
            loop {
                let blocked = status.blocked();
                if blocked != was_blocked {
                    if blocked {
                        warn!(%schema, "the broker blocks publishing (memory or disk alarm); the outbox waits");
                    } else {
                        info!(%schema, "the broker accepts publishing again");
                    }
                    was_blocked = blocked;
                }
                task_health.set(&watched, !blocked);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Some(FlowWatch {
            task,
            health,
            check,
        })
    }

    /// Runs until `shutdown`, reconnecting to the broker and the database as needed. On
    /// shutdown it publishes what is pending (up to a few seconds) before returning.
    pub async fn run(mut self, shutdown: CancellationToken) -> RelayExit {
        let mut backoff = crate::retry::reconnect_backoff();
        loop {
            match self.session(&shutdown).await {
                Ok(exit) => return exit,
                Err(err) => {
                    warn!(schema = %self.schema, error = %format!("{err:#}"), "outbox relay interrupted; retrying");
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    tokio::select! {
                        () = shutdown.cancelled() => return RelayExit::Shutdown,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn session(&mut self, shutdown: &CancellationToken) -> anyhow::Result<RelayExit> {
        let connection = broker::connect(
            &self.broker_url,
            &format!("orderly-relay-{}@{}", self.schema, self.names.namespace()),
        )
        .await?;
        // One channel for handed rows, one for the sweep: they run side by side, so a sweep
        // that walks a long stretch of the pending index never holds handed rows back.
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let sweep_channel = connection.create_channel().await?;
        sweep_channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        info!(schema = %self.schema, "outbox relay running");
        let _flow = self.watch_flow(connection.status().clone());

        let mut handed = self.handed.take();
        let this = &*self;
        let ran = async {
            // Catch up before anything handed, oldest first: what was pending before the
            // relay existed (its handoff cannot have those rows; what this process's writers
            // committed since is on its way through the handoff, and a sweep taking it too
            // would publish it twice) with the rows whose confirm the lost connection failed
            // (due at once); then the handed rows the last session could not publish. Only
            // then the handoff: so one order's messages keep the order their worker wrote
            // them in across a broker outage. The fault suite's `broker-stop` found a
            // `shipment.dispatched` waiting for its retry while the `shipment.delivered`
            // written after it went out at once, and the customer never got the dispatch
            // notification (issue 19).
            this.drain_sweep(&sweep_channel, Unhanded::Before(this.made_at))
                .await?;
            let leftover = std::mem::take(
                &mut *this
                    .leftover
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if !leftover.is_empty() {
                this.publish_handed(&channel, leftover).await?;
            }
            let sweeps = async {
                let mut last_housekeeping = std::time::Instant::now();
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return anyhow::Ok(()),
                        () = tokio::time::sleep(this.poll_interval) => {}
                    }
                    this.drain_sweep(&sweep_channel, Unhanded::OlderThan(this.poll_interval))
                        .await?;
                    if last_housekeeping.elapsed() > Duration::from_secs(5) {
                        this.housekeeping().await?;
                        last_housekeeping = std::time::Instant::now();
                    }
                }
            };
            let handoffs = async {
                loop {
                    let next = async {
                        match handed.as_mut() {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    };
                    let mut rows = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return anyhow::Ok(()),
                        rows = next => match rows {
                            Some(rows) => rows,
                            // Every handoff is gone: only sweeps from now on.
                            None => {
                                handed = None;
                                continue;
                            }
                        },
                    };
                    // Take whatever else is waiting, up to a batch.
                    while (rows.len() as i64) < this.batch_size
                        && let Some(Ok(more)) = handed.as_mut().map(|rx| rx.try_recv())
                    {
                        rows.extend(more);
                    }
                    this.publish_handed(&channel, rows).await?;
                }
            };
            // Both end at shutdown, each after finishing the round in hand; either ends the
            // session early when it fails (or simulates a crash).
            tokio::try_join!(sweeps, handoffs).map(|_| ())
        }
        .await;
        self.handed = handed;
        match ran {
            Ok(()) => self.flush(connection, &channel).await,
            Err(err) if err.is::<SimulatedCrash>() => {
                crash(connection).await;
                Ok(RelayExit::Crashed)
            }
            Err(err) => Err(err),
        }
    }

    /// Sweeps until a round finds fewer rows than a batch.
    async fn drain_sweep(&self, channel: &Channel, unhanded: Unhanded) -> anyhow::Result<()> {
        while self.sweep(channel, unhanded).await? as i64 >= self.batch_size {}
        Ok(())
    }

    /// On shutdown: publishes what was handed over and what the sweep finds, for a bounded
    /// time, then closes the broker connection.
    async fn flush(
        &mut self,
        connection: Connection,
        channel: &Channel,
    ) -> anyhow::Result<RelayExit> {
        let flush = async {
            while let Some(rows) = self.handed.as_mut().and_then(|rx| rx.try_recv().ok()) {
                self.publish_handed(channel, rows).await?;
            }
            let everything = Unhanded::OlderThan(Duration::ZERO);
            while self.sweep(channel, everything).await? > 0 {}
            anyhow::Ok(())
        };
        if tokio::time::timeout(Duration::from_secs(5), flush)
            .await
            .is_err()
        {
            warn!(schema = %self.schema, "outbox flush timed out; pending rows stay for the next start");
        }
        let _ = connection.close(200, "shutdown".into()).await;
        Ok(RelayExit::Shutdown)
    }

    /// Publishes rows handed over after their commit and marks them, in one statement.
    async fn publish_handed(&self, channel: &Channel, rows: Vec<Written>) -> anyhow::Result<()> {
        let results = match self.publish(channel, &rows).await {
            Ok(results) => results,
            Err(err) => {
                // The connection failed under them: they stay first in line (above).
                self.leftover
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(rows);
                return Err(err);
            }
        };
        if self.faults.crash_after_publish {
            return Err(SimulatedCrash.into());
        }
        let mut conn = self.pool.acquire().await?;
        self.record(&mut conn, &rows, results).await
    }

    /// Publishes one batch of due rows nobody handed over (see the module documentation):
    /// rows that failed before and are due again, and the `unhanded` ones. Returns how many
    /// rows it looked at.
    ///
    /// Rows go out by `available_at`, then id: the order of the `outbox_pending` index, so
    /// the scan stops after `batch_size` rows however long the backlog.
    async fn sweep(&self, channel: &Channel, unhanded: Unhanded) -> anyhow::Result<usize> {
        let (before, older_than) = match unhanded {
            Unhanded::Before(at) => (Some(at), Duration::ZERO),
            Unhanded::OlderThan(age) => (None, age),
        };
        let mut tx = self.pool.begin().await?;
        let rows: Vec<PendingRow> = sqlx::query_as(
            "select id, message_type, routing_key, correlation_id, body, attempts
             from outbox where published_at is null and available_at <= now()
               and (attempts > 0 or created_at <= coalesce(
                      $2, clock_timestamp() - interval '1 millisecond' *
                        case when written_by is null or written_by = $4 then $3 else $5 end))
             order by available_at, id limit $1 for update skip locked",
        )
        .bind(self.batch_size)
        .bind(before)
        .bind(older_than.as_millis() as f64)
        .bind(self.writer)
        .bind(OTHER_WRITERS_GRACE.max(older_than).as_millis() as f64)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let rows: Vec<Written> = rows.into_iter().map(Written::from).collect();
        let results = self.publish(channel, &rows).await?;
        if self.faults.crash_after_publish {
            // The broker has the messages; the rows are not marked. Rolling back is what a
            // crash here amounts to.
            drop(tx);
            return Err(SimulatedCrash.into());
        }
        self.record(&mut tx, &rows, results).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Publishes `rows` in order, then waits for all confirms: the broker acknowledges in
    /// bulk.
    async fn publish(
        &self,
        channel: &Channel,
        rows: &[Written],
    ) -> anyhow::Result<Vec<Result<lapin::Confirmation, lapin::Error>>> {
        let exchange = self.names.events_exchange();
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let mut confirms = Vec::with_capacity(rows.len());
        for row in rows {
            let mut headers = lapin::types::FieldTable::default();
            if let Some(tp) = &row.traceparent {
                headers = broker::with_str(headers, broker::HEADER_TRACEPARENT, tp.as_str());
            }
            let message_id = row.message_id.to_string();
            headers = broker::with_cloudevents(headers, &row.cloudevent(&message_id));
            let props = broker::envelope_properties(
                &message_id,
                &row.message_type,
                &row.correlation_id,
                &row.producer,
                row.occurred,
                headers,
            );
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    row.routing_key.as_str().into(),
                    options,
                    row.body.as_bytes(),
                    props,
                )
                .await?;
            confirms.push(confirm);
        }
        Ok(join_all(confirms).await)
    }

    /// Marks the rows the broker confirmed as published, in one statement, and the others
    /// as failed with why, to be retried later by the sweep.
    async fn record(
        &self,
        conn: &mut PgConnection,
        rows: &[Written],
        results: Vec<Result<lapin::Confirmation, lapin::Error>>,
    ) -> anyhow::Result<()> {
        let exchange = self.names.events_exchange();
        let mut sent = Vec::new();
        // Each failed row with why, and when to try it again.
        let mut failed: Vec<(i64, String, Duration)> = Vec::new();
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(lapin::Confirmation::Ack(None)) | Ok(lapin::Confirmation::NotRequested) => {
                    sent.push(row.id)
                }
                Ok(lapin::Confirmation::Ack(Some(_))) => failed.push((
                    row.id,
                    format!(
                        "unroutable: no queue is bound to `{}` for routing key `{}`",
                        exchange, row.routing_key
                    ),
                    crate::retry::outbox_retry_delay(row.attempts),
                )),
                Ok(lapin::Confirmation::Nack(_)) => failed.push((
                    row.id,
                    "nacked by the broker (a destination queue is full or unavailable)".to_owned(),
                    crate::retry::outbox_retry_delay(row.attempts),
                )),
                // The connection failed, not the message: due at once, so the next session's
                // catch-up publishes it before anything newer.
                Err(err) => failed.push((row.id, format!("publish failed: {err}"), Duration::ZERO)),
            }
        }
        if !sent.is_empty() {
            // By id alone (the primary key): a row another relay's sweep published meanwhile
            // was published twice, and now says when the last time was.
            sqlx::query(
                "update outbox set published_at = clock_timestamp(), attempts = attempts + 1,
                        last_error = null
                 where id = any($1)",
            )
            .bind(&sent)
            .execute(&mut *conn)
            .await?;
        }
        for (id, error, delay) in &failed {
            sqlx::query(
                "update outbox set attempts = attempts + 1, last_error = $2,
                        available_at = clock_timestamp() + $3 * interval '1 millisecond'
                 where id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(delay.as_millis() as f64)
            .execute(&mut *conn)
            .await?;
            warn!(schema = %self.schema, outbox_id = id, %error, "outbox row not published; will retry");
        }
        self.metrics
            .outbox_published(&self.schema, sent.len() as u64, failed.len() as u64);
        debug!(schema = %self.schema, published = sent.len(), failed = failed.len(), "outbox batch");
        Ok(())
    }

    /// Prunes published rows and inbox rows past their retention, and refreshes the
    /// backlog gauges. It runs between publishing rounds, so it only touches what the
    /// indexes make cheap: never a scan of the published rows.
    async fn housekeeping(&self) -> anyhow::Result<()> {
        self.prune().await?;
        let (pending, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "select count(*), min(created_at) from outbox where published_at is null",
        )
        .fetch_one(&self.pool)
        .await?;
        let age = oldest.map_or(0.0, |t| {
            (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.metrics.outbox_backlog(&self.schema, pending, age);
        Ok(())
    }
}

/// Stops a relay session's flow-control watch when the session ends.
struct FlowWatch {
    task: tokio::task::JoinHandle<()>,
    health: crate::health::Health,
    check: String,
}

impl Drop for FlowWatch {
    fn drop(&mut self) {
        self.task.abort();
        // A new session reports again; the broker's reachability is the consumers' check.
        self.health.set(&self.check, true);
    }
}

/// What one round of pruning deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Published outbox rows older than `relay.retention_hours`.
    pub outbox: u64,
    /// Inbox rows older than the deduplication window, `relay.inbox_retention_hours`.
    pub inbox: u64,
}

/// Rows deleted per table per round: a bounded slice, so a backlog of old rows (a worker
/// that was down for days) is worked off in short statements, not one long one.
const PRUNE_SLICE: i64 = 5_000;

impl Relay {
    /// One round of pruning: at most [`PRUNE_SLICE`] published outbox rows past
    /// `relay.retention_hours` and as many inbox rows past `relay.inbox_retention_hours`
    /// (both found through their time index). The relay runs it every few seconds.
    ///
    /// The cut-off is computed from `now()`, not `clock_timestamp()`: a volatile function
    /// cannot bound an index scan, so with `clock_timestamp()` each round read the whole
    /// `outbox_published` index to find nothing to delete (1–2 s a round per relay after
    /// twenty minutes of the soak, growing with the retained rows: its latency drift).
    pub async fn prune(&self) -> anyhow::Result<Pruned> {
        let outbox = sqlx::query(
            "delete from outbox where id in (
                 select id from outbox
                 where published_at < now() - $1 * interval '1 hour'
                 limit $2)",
        )
        .bind(f64::from(self.retention_hours))
        .bind(PRUNE_SLICE)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let inbox = sqlx::query(
            "delete from inbox where (consumer, message_id) in (
                 select consumer, message_id from inbox
                 where handled_at < now() - $1 * interval '1 hour'
                 limit $2)",
        )
        .bind(f64::from(self.inbox_retention_hours))
        .bind(PRUNE_SLICE)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(Pruned { outbox, inbox })
    }
}

/// A crash injected by [`RelayFaults`], ending the session like a failure would.
#[derive(Debug, thiserror::Error)]
#[error("simulated relay crash")]
struct SimulatedCrash;

async fn crash(connection: Connection) {
    let _ = connection.close(320, "simulated crash".into()).await;
}
