//! The transactional outbox and its relay.
//!
//! A handler's outgoing messages are rows in its schema's `outbox` table, inserted in the
//! handler's transaction, so a message exists exactly when the state change that caused it
//! does. The [`Relay`] publishes pending rows with publisher confirms and `mandatory`, and
//! marks a row published only after the broker acknowledged it. A crash at any point leaves
//! the row pending and it is published again; consumers drop the duplicate by message id.
//!
//! Why rows stay pending, and stay visible (`orderly outbox status`):
//! - *unroutable*: the broker returned the message because no queue is bound for its type;
//! - *nacked*: the broker refused it (a full outbound queue with `reject-publish`);
//! - *broker down*: the publish or confirm failed.
//!
//! Such rows are retried with growing delays (`available_at`) so they never block the rows
//! behind them. Several relays can run at once: each takes rows with `FOR UPDATE SKIP LOCKED`.
//! Commits wake the relay through `LISTEN/NOTIFY` (a trigger on the table), so latency does
//! not depend on the poll interval, which only covers lost notifications.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lapin::{Channel, Connection, options::BasicPublishOptions, options::ConfirmSelectOptions};
use orderly_contracts::{Envelope, Message};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, postgres::PgListener};
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

/// Inserts `messages` into the outbox of the connection's schema, in one statement.
pub async fn insert(conn: &mut PgConnection, messages: &[OutboxMessage]) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    let types: Vec<&str> = messages.iter().map(|m| m.message_type.as_str()).collect();
    let correlations: Vec<&str> = messages.iter().map(|m| m.correlation_id.as_str()).collect();
    let bodies: Vec<String> = messages.iter().map(|m| m.body.to_string()).collect();
    sqlx::query(
        "insert into outbox (message_id, message_type, routing_key, correlation_id, body)
         select id, t, t, c, b::jsonb
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as m(id, t, c, b)",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&correlations)
    .bind(&bodies)
    .execute(conn)
    .await?;
    Ok(())
}

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
    message_id: Uuid,
    message_type: String,
    routing_key: String,
    correlation_id: String,
    body: serde_json::Value,
    attempts: i32,
}

/// Fault injection for tests: simulate a relay crash at a chosen point.
#[derive(Debug, Clone, Default)]
pub struct RelayFaults {
    /// Publish one batch, then "crash" before marking it sent.
    pub crash_after_publish: bool,
}

/// Publishes one schema's outbox.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The schema whose outbox this relay drains (for logs, metrics and the notify channel).
    pub schema: String,
    pool: PgPool,
    broker_url: String,
    names: Names,
    batch_size: i64,
    poll_interval: Duration,
    retention_hours: u32,
    metrics: Arc<Metrics>,
    faults: RelayFaults,
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
            metrics,
            faults: RelayFaults::default(),
        }
    }

    /// Injects faults (tests).
    #[must_use]
    pub fn with_faults(mut self, faults: RelayFaults) -> Self {
        self.faults = faults;
        self
    }

    fn notify_channel(&self) -> String {
        format!("orderly_outbox_{}", self.schema)
    }

    /// Runs until `shutdown`, reconnecting to the broker and the database as needed. On
    /// shutdown it publishes what is pending (up to a few seconds) before returning.
    pub async fn run(self, shutdown: CancellationToken) -> RelayExit {
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

    async fn session(&self, shutdown: &CancellationToken) -> anyhow::Result<RelayExit> {
        let connection = broker::connect(
            &self.broker_url,
            &format!("orderly-relay-{}@{}", self.schema, self.names.namespace()),
        )
        .await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&self.notify_channel()).await?;
        info!(schema = %self.schema, "outbox relay running");
        let mut last_housekeeping = std::time::Instant::now() - Duration::from_secs(3600);

        loop {
            // Drain: keep publishing while full batches come back.
            loop {
                match self.publish_batch(&channel).await? {
                    BatchResult::Crashed => {
                        crash(connection).await;
                        return Ok(RelayExit::Crashed);
                    }
                    BatchResult::Published(n) if n as i64 >= self.batch_size => continue,
                    BatchResult::Published(_) => break,
                }
            }
            if last_housekeeping.elapsed() > Duration::from_secs(5) {
                self.housekeeping().await?;
                last_housekeeping = std::time::Instant::now();
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                note = listener.recv() => { note?; }
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }

        // Flush what handlers committed before shutdown, for a bounded time.
        let flush = async {
            while let BatchResult::Published(n) = self.publish_batch(&channel).await? {
                if n == 0 {
                    break;
                }
            }
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

    /// Publishes one batch of due rows and records the outcome of each. Returns how many
    /// rows it looked at.
    ///
    /// Rows go out by `available_at`, then id: the order of the `outbox_pending` index, so
    /// the scan stops after `batch_size` rows however long the backlog (ordering by id alone
    /// made PostgreSQL sort the whole backlog, bodies included, every round). For rows never
    /// retried that is commit order within a transaction and, for one order's transactions,
    /// which run one after another, across them too; a retried row waits its turn behind
    /// newer ones, as before.
    async fn publish_batch(&self, channel: &Channel) -> anyhow::Result<BatchResult> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<PendingRow> = sqlx::query_as(
            "select id, message_id, message_type, routing_key, correlation_id, body, attempts
             from outbox where published_at is null and available_at <= clock_timestamp()
             order by available_at, id limit $1 for update skip locked",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(BatchResult::Published(0));
        }

        // Publish them all, then wait for all confirms: the broker acknowledges in bulk.
        let exchange = self.names.events_exchange();
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let body = row.body.to_string();
            let envelope = &row.body;
            let producer = envelope
                .get("producer")
                .and_then(|v| v.as_str())
                .unwrap_or("orderly");
            let occurred = envelope
                .get("occurred_at")
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(0, |t| t.timestamp().max(0) as u64);
            let mut headers = lapin::types::FieldTable::default();
            if let Some(tp) = envelope
                .pointer("/trace/traceparent")
                .and_then(|v| v.as_str())
            {
                headers = broker::with_str(headers, broker::HEADER_TRACEPARENT, tp);
            }
            let props = broker::envelope_properties(
                &row.message_id.to_string(),
                &row.message_type,
                &row.correlation_id,
                producer,
                occurred,
                headers,
            );
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    row.routing_key.as_str().into(),
                    options,
                    body.as_bytes(),
                    props,
                )
                .await?;
            confirms.push(confirm);
        }
        let results = join_all(confirms).await;

        if self.faults.crash_after_publish {
            // The broker has the messages; the rows are not marked. Rolling back is what a
            // crash here amounts to.
            drop(tx);
            return Ok(BatchResult::Crashed);
        }

        let mut sent = Vec::new();
        let mut failed: Vec<(i64, String, i32)> = Vec::new();
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
                    row.attempts,
                )),
                Ok(lapin::Confirmation::Nack(_)) => failed.push((
                    row.id,
                    "nacked by the broker (a destination queue is full or unavailable)".to_owned(),
                    row.attempts,
                )),
                Err(err) => failed.push((row.id, format!("publish failed: {err}"), row.attempts)),
            }
        }
        if !sent.is_empty() {
            sqlx::query("update outbox set published_at = clock_timestamp(), attempts = attempts + 1, last_error = null where id = any($1)")
                .bind(&sent)
                .execute(&mut *tx)
                .await?;
        }
        for (id, error, attempts) in &failed {
            let delay = crate::retry::outbox_retry_delay(*attempts);
            sqlx::query(
                "update outbox set attempts = attempts + 1, last_error = $2,
                        available_at = clock_timestamp() + $3 * interval '1 millisecond'
                 where id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(delay.as_millis() as f64)
            .execute(&mut *tx)
            .await?;
            warn!(schema = %self.schema, outbox_id = id, %error, "outbox row not published; will retry");
        }
        tx.commit().await?;
        self.metrics
            .outbox_published(&self.schema, sent.len() as u64, failed.len() as u64);
        debug!(schema = %self.schema, published = sent.len(), failed = failed.len(), "outbox batch");
        Ok(BatchResult::Published(rows.len()))
    }

    /// Prunes published rows past retention (a bounded slice at a time) and refreshes the
    /// backlog gauges. It runs between publishing rounds, so it only touches what the
    /// partial indexes make cheap: never a scan of the published rows.
    async fn housekeeping(&self) -> anyhow::Result<()> {
        sqlx::query(
            "delete from outbox where id in (
                 select id from outbox
                 where published_at < clock_timestamp() - $1 * interval '1 hour'
                 limit 5000)",
        )
        .bind(f64::from(self.retention_hours))
        .execute(&self.pool)
        .await?;
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

enum BatchResult {
    Published(usize),
    Crashed,
}

async fn crash(connection: Connection) {
    let _ = connection.close(320, "simulated crash".into()).await;
}
