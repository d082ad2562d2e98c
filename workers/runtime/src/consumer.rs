//! The consumer: deliveries in, exactly-once effects, acknowledgements out.
//!
//! # The cycle
//! 1. Take deliveries as the broker pushes them from the worker's partitions this copy is the
//!    active consumer of (up to `prefetch` unacknowledged; see [`crate::topology`]), decode
//!    each envelope and put it in one of `concurrency` lanes by its correlation id, so that
//!    the messages of one flow (everything about one order) share a lane and stay in arrival
//!    order. Each lane runs one batch (up to `batch_size` of its deliveries) at a time; lanes
//!    run side by side. Undecodable bodies go to the dead-letter queue at once.
//! 2. In **one** transaction: record every message id in the inbox (`on conflict do
//!    nothing`: the ones already there are duplicates), take the lock keys the handler
//!    declares for the new ones (see *Locks and deadlocks*), run the handler on them
//!    (together, [`Handler::handle_batch`]: a worker may do many messages' work in one
//!    statement), write the outgoing messages to the outbox, commit.
//! 3. Then, for each message: ack (handled or duplicate); or publish it to its retry queue
//!    with the next attempt number and ack (transient failure within budget); or publish it
//!    to the dead-letter queue with the reason and ack (permanent failure, spent budget).
//!
//! A crash between 2 and 3 redelivers the batch; the inbox rows make the second run a no-op.
//!
//! # A failure inside a batch
//! The first run of a batch uses no savepoints (two round trips per message saved). If it
//! fails, that transaction is rolled back and the batch is run again with a savepoint per
//! message and [`Handler::handle`] for each, so the failing message is set aside and the
//! others commit: one message cannot take its neighbours down, and each keeps its
//! exactly-once guarantee.
//!
//! # Locks and deadlocks
//! A batch's transaction holds every lock its handlers took until it commits. Were those
//! taken in arrival order, two batches about the same two orders could lock them in opposite
//! orders and deadlock (PostgreSQL aborts one after `deadlock_timeout`, a second of nothing).
//! Handlers therefore declare their keys up front ([`Handler::lock_keys`], from the decoded
//! input) and the consumer takes them sorted: contention becomes a queue, never a cycle.
//! Batches of different lanes rarely touch the same entity; when they do, they take turns.
//!
//! # When the database is down
//! A connection error is nobody's fault: the batch is kept (unacknowledged, so the prefetch
//! limit stops the flow) and tried again with backoff until the database answers. Messages
//! are not retried or dead-lettered for it. Readiness reports `db` down meanwhile.
//!
//! # Taking over from a crashed copy
//! A copy killed after committing a batch but before its relay published the rows leaves
//! them pending in the outbox; the copy that takes the partition over must not publish an
//! order's next message before them (downstream, the older one would then look stale). So a
//! batch's rows go to the relay behind the pending rows about the same correlation ids that
//! another process wrote ([`outbox::insert_after_others`]): the predecessor's leftovers
//! leave first, in the order they were written, at the latest with the successor's first
//! answer about that order.
//!
//! # Broker loss and shutdown
//! A broker error ends the session; the consumer reconnects with backoff and resumes. Unacked
//! deliveries are redelivered by the broker to whoever consumes next, and deduplicated by the
//! inbox. On shutdown the consumer cancels its subscription, finishes every delivery it holds
//! (including ones buffered but not started), acknowledges them and closes the channel.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

use futures_util::{FutureExt, StreamExt};
use lapin::{
    BasicProperties, Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions,
        BasicQosOptions, ConfirmSelectOptions,
    },
    types::FieldTable,
};
use orderly_contracts::{RawEnvelope, decode_raw};
use sqlx::{Acquire, PgConnection, PgPool};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::{
    broker::{self, HEADER_ATTEMPT, Names},
    config::ConsumerSettings,
    handler::{Batch, Handler, HandlerError, Incoming},
    health::Health,
    metrics::{Metrics, Outcome},
    outbox::{self, OutboxMessage},
    retry::RetryPolicy,
};

/// Fault injection for tests: simulate a process crash at a chosen point.
#[derive(Debug, Clone, Default)]
pub struct ConsumerFaults {
    /// After the first batch commits, drop the connection without acknowledging (as a
    /// crashed process would), then reconnect like a restarted one.
    pub crash_after_commit: Arc<std::sync::atomic::AtomicBool>,
}

/// Everything a consumer needs, shared by its batch tasks.
#[derive(Debug)]
struct Inner<H> {
    /// The worker's name: its queue, its schema, and the producer of what it emits.
    name: String,
    /// The consumer name recorded in the inbox (the queue name).
    queue: String,
    handler: H,
    pool: PgPool,
    names: Names,
    broker_url: String,
    settings: ConsumerSettings,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
    health: Health,
    faults: ConsumerFaults,
    /// Where committed outbox rows go: the relay of this worker in this process.
    handoff: Option<outbox::Handoff>,
    /// The worker's background task in this process, woken after a batch whose handlers
    /// queued work for it ([`crate::HandlerContext::wake_after_commit`]).
    wake: Option<crate::drain::Wake>,
    /// Where the spans of handled messages go, when exported.
    traces: Option<Arc<crate::traces::Traces>>,
}

/// One worker's consumer of one queue.
#[derive(Debug)]
pub struct Consumer<H> {
    inner: Arc<Inner<H>>,
}

impl<H> Clone for Consumer<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// What the transaction decided for one delivery.
#[derive(Debug)]
enum Verdict {
    Handled,
    Duplicate,
    Retry(String),
    Dead(String),
}

/// A delivery with its decoded envelope (or why it could not be decoded).
struct Item {
    delivery: Delivery,
    decoded: Result<Incoming, String>,
}

/// Why a batch could not be finished.
enum BatchError {
    /// The database is unreachable; try the same batch again later.
    Unavailable(sqlx::Error),
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
    Crashed,
}

impl<H: Handler> Consumer<H> {
    /// A consumer for worker `name` on its queue `name`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        handler: H,
        pool: PgPool,
        names: Names,
        broker_url: impl Into<String>,
        settings: ConsumerSettings,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
        health: Health,
    ) -> Self {
        let name = name.into();
        Self {
            inner: Arc::new(Inner {
                queue: name.clone(),
                name,
                handler,
                pool,
                names,
                broker_url: broker_url.into(),
                settings,
                retry,
                metrics,
                health,
                faults: ConsumerFaults::default(),
                handoff: None,
                wake: None,
                traces: None,
            }),
        }
    }

    /// Hands what every batch commits to the outbox to a relay (see [`outbox::Handoff`]).
    /// Call before the consumer is cloned or run.
    #[must_use]
    pub fn with_handoff(mut self, handoff: outbox::Handoff) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.handoff = Some(handoff);
        }
        self
    }

    /// Wakes `task` after every batch whose handlers asked for it
    /// ([`crate::HandlerContext::wake_after_commit`]). Call before the consumer is cloned or
    /// run.
    #[must_use]
    pub fn with_traces(mut self, traces: Option<Arc<crate::traces::Traces>>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.traces = traces;
        }
        self
    }

    /// Wakes the worker's background task after a batch whose handlers asked for it. Call
    /// before the consumer is cloned or run.
    #[must_use]
    pub fn with_wake(mut self, task: crate::drain::Wake) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.wake = Some(task);
        }
        self
    }

    /// Injects faults (tests, through [`crate::Host::start_worker_with`]). Call before the
    /// consumer is cloned or run.
    #[must_use]
    pub(crate) fn with_faults(mut self, faults: ConsumerFaults) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.faults = faults;
        }
        self
    }

    /// Consumes until `shutdown`, reconnecting after broker loss.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = self.inner;
        let mut backoff = crate::retry::reconnect_backoff();
        let check = format!("{}.broker", inner.name);
        loop {
            match Inner::session(&inner, &shutdown).await {
                Ok(SessionEnd::Shutdown) => {
                    info!(worker = %inner.name, "consumer stopped");
                    return;
                }
                Ok(SessionEnd::Crashed) => {
                    warn!(worker = %inner.name, "simulated crash; restarting the session");
                    backoff = crate::retry::reconnect_backoff();
                }
                Err(err) => {
                    inner.health.set(&check, false);
                    let delay = backoff.next().unwrap_or(std::time::Duration::from_secs(5));
                    warn!(worker = %inner.name, error = %format!("{err:#}"), ?delay, "broker session ended; reconnecting");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// How long batches in flight may go on after the broker connection was lost before the
/// session abandons them (their deliveries come back from the broker).
const LOST_CONNECTION_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a numbered copy leaves a partition that is not its own to the copy it belongs
/// to before taking it itself.
const TAKEOVER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often a session looks again at the partitions it left for later.
const LATER_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A session's subscriptions to its worker's partitions.
struct Subscriptions {
    session: Uuid,
    /// Consumer tags, to cancel on shutdown.
    tags: Vec<String>,
    /// Every subscription's deliveries, as one stream.
    streams: futures_util::stream::SelectAll<lapin::Consumer>,
    /// Partitions not subscribed yet (another numbered copy's), since when nobody took them.
    later: Vec<(String, Instant)>,
}

/// Active consumers of `queue` as the broker's declare reports them (a single-active-consumer
/// queue counts its active one only, not its stand-bys).
async fn active_consumers(channel: &Channel, queue: &str) -> lapin::Result<u32> {
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..lapin::options::QueueDeclareOptions::default()
    };
    Ok(channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?
        .consumer_count())
}

impl<H: Handler> Inner<H> {
    async fn session(self: &Arc<Self>, shutdown: &CancellationToken) -> anyhow::Result<SessionEnd> {
        let connection = broker::connect(
            &self.broker_url,
            &format!("orderly-{}@{}", self.name, self.names.namespace()),
        )
        .await?;
        let channel = connection.create_channel().await?;
        // Quorum queues take no channel-wide prefetch: each partition's subscription gets its
        // share of the worker's.
        let partitions = self.settings.partitions.max(1);
        let per_partition = self.settings.prefetch.div_ceil(partitions).max(1);
        channel
            .basic_qos(per_partition, BasicQosOptions::default())
            .await?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut subscriptions = self.subscribe(&channel, partitions).await?;
        let mut later = tokio::time::interval(LATER_EVERY);
        self.health.set(&format!("{}.broker", self.name), true);
        info!(worker = %self.name, partitions, "consuming");

        // Lanes: each delivery goes to one of `concurrency` lanes by its correlation id (the
        // messages of one flow, e.g. everything about one order, share it), and each lane runs
        // one batch at a time. Batches running side by side therefore rarely want the same
        // entity's lock keys, and a flow's messages are handled in arrival order.
        let lanes = self.settings.concurrency.max(1);
        let mut buffered: Vec<VecDeque<Item>> = (0..lanes).map(|_| VecDeque::new()).collect();
        let mut busy = vec![false; lanes];
        let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut tasks: JoinSet<anyhow::Result<bool>> = JoinSet::new();
        let mut pending_error: Option<anyhow::Error> = None;
        let mut crashed = false;
        let start_idle_lanes = |tasks: &mut JoinSet<anyhow::Result<bool>>,
                                buffered: &mut [VecDeque<Item>],
                                busy: &mut [bool],
                                running: &mut HashMap<tokio::task::Id, usize>,
                                stop: &CancellationToken| {
            for lane in 0..lanes {
                if busy[lane] || buffered[lane].is_empty() {
                    continue;
                }
                let n = buffered[lane].len().min(self.settings.batch_size);
                let batch: Vec<Item> = buffered[lane].drain(..n).collect();
                let this = self.clone();
                let publisher = publisher.clone();
                let stop = stop.clone();
                let handle =
                    tasks.spawn(async move { this.process(batch, &publisher, &stop).await });
                running.insert(handle.id(), lane);
                busy[lane] = true;
            }
        };
        let events_exchange = self.names.events_exchange();
        let lane_of = |item: &Item| match &item.decoded {
            Ok(incoming) => {
                (crate::handler::LockKey::exclusive("lane", &incoming.envelope.correlation_id)
                    .advisory_key(&self.name)
                    .unsigned_abs()
                    % lanes as u64) as usize
            }
            Err(_) => 0,
        };
        loop {
            if crashed || pending_error.is_some() {
                break;
            }
            start_idle_lanes(&mut tasks, &mut buffered, &mut busy, &mut running, shutdown);
            let first = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(result) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    crashed |= settle(result, &mut running, &mut busy, &mut pending_error);
                    continue;
                }
                _ = later.tick(), if !subscriptions.later.is_empty() => {
                    if let Err(err) = self.subscribe_later(&channel, &mut subscriptions).await {
                        pending_error = Some(err.into());
                    }
                    continue;
                }
                next = subscriptions.streams.next(), if !subscriptions.streams.is_empty() => next,
            };
            let mut next = first;
            loop {
                match next {
                    Some(Ok(d)) => {
                        let item = decode(d, &events_exchange);
                        let lane = lane_of(&item);
                        buffered[lane].push_back(item);
                    }
                    Some(Err(err)) => {
                        pending_error = Some(err.into());
                        break;
                    }
                    None => {
                        pending_error = Some(anyhow::anyhow!("the broker cancelled the consumer"));
                        break;
                    }
                }
                // Take whatever else the broker has already pushed, without waiting.
                match subscriptions.streams.next().now_or_never() {
                    Some(more) => next = more,
                    None => break,
                }
            }
        }

        if !crashed && pending_error.is_none() {
            // Graceful: stop the flow, then finish what we hold, buffered deliveries included.
            for tag in &subscriptions.tags {
                let _ = channel
                    .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                    .await;
            }
            while let Some(Some(Ok(d))) = subscriptions.streams.next().now_or_never() {
                let item = decode(d, &events_exchange);
                let lane = lane_of(&item);
                buffered[lane].push_back(item);
            }
            // Batches started now finish even though shutdown was requested.
            let finish = CancellationToken::new();
            loop {
                start_idle_lanes(&mut tasks, &mut buffered, &mut busy, &mut running, &finish);
                let Some(result) = tasks.join_next_with_id().await else {
                    break;
                };
                crashed |= settle(result, &mut running, &mut busy, &mut pending_error);
            }
        }
        if pending_error.is_some() {
            // The connection is gone. A batch still running can finish its database work, but
            // its acknowledgements cannot reach the broker, and lapin may never answer them
            // (an ack queued for a dead connection's I/O loop waited forever: the fault
            // suite's `broker-stop` found a consumer that never reconnected, reporting ready).
            // So the batches get a grace period, then are aborted: an uncommitted transaction
            // rolls back, a committed one is found in the inbox when the broker redelivers.
            let grace = tokio::time::sleep(LOST_CONNECTION_GRACE);
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    result = tasks.join_next_with_id() => match result {
                        Some(result) => {
                            crashed |= settle(result, &mut running, &mut busy, &mut pending_error);
                        }
                        None => break,
                    },
                    () = &mut grace => {
                        warn!(worker = %self.name, batches = tasks.len(), "batches still running {} s after the broker connection was lost; abandoning them to redelivery", LOST_CONNECTION_GRACE.as_secs());
                        tasks.abort_all();
                        while tasks.join_next().await.is_some() {}
                        break;
                    }
                }
            }
        }
        while let Some(result) = tasks.join_next_with_id().await {
            crashed |= settle(result, &mut running, &mut busy, &mut pending_error);
        }
        if crashed {
            let _ = connection.close(320, "simulated crash".into()).await;
            return Ok(SessionEnd::Crashed);
        }
        let _ = connection.close(200, "shutdown".into()).await;
        match pending_error {
            Some(err) if !shutdown.is_cancelled() => Err(err),
            _ => Ok(SessionEnd::Shutdown),
        }
    }

    /// Subscribes to the partitions of the worker's queue. Each partition has a single
    /// active consumer, the first subscribed. Unnumbered copies first take the partitions
    /// nobody consumes yet, starting at a random one, then queue up behind the others as
    /// their stand-by: copies started together share the partitions, a copy started later
    /// stands by until another goes away (RabbitMQ 3.10 never moves an active consumer to a
    /// newcomer). A numbered copy (`consumer.copy`, `i/n`) takes its own share at once and
    /// leaves the rest to the copies they belong to: it subscribes to one of those once
    /// somebody consumes it (as a stand-by) or after [`TAKEOVER_GRACE`] with nobody (its copy
    /// is not running); [`Inner::subscribe_later`] does that while the session runs.
    async fn subscribe(&self, channel: &Channel, partitions: u16) -> lapin::Result<Subscriptions> {
        let copy = self.settings.copy_of().ok().flatten();
        let queues = self.names.partition_queues(&self.queue, partitions);
        let start = rand::random_range(0..queues.len());
        let (mut free, mut taken, mut later) = (Vec::new(), Vec::new(), Vec::new());
        for (index, queue) in queues
            .iter()
            .enumerate()
            .cycle()
            .skip(start)
            .take(queues.len())
        {
            let consumers = active_consumers(channel, queue).await?;
            let own = copy.is_none_or(|(i, n)| index as u16 % n == i);
            if consumers > 0 {
                taken.push(queue.clone());
            } else if own {
                free.push(queue.clone());
            } else {
                later.push((queue.clone(), Instant::now()));
            }
        }
        let mut subscriptions = Subscriptions {
            session: Uuid::now_v7(),
            tags: Vec::new(),
            streams: futures_util::stream::SelectAll::new(),
            later,
        };
        for queue in free.into_iter().chain(taken) {
            self.subscribe_to(channel, &mut subscriptions, &queue)
                .await?;
        }
        Ok(subscriptions)
    }

    /// Subscribes to the partitions left for later that somebody now consumes (as their
    /// stand-by) or that nobody took within [`TAKEOVER_GRACE`].
    async fn subscribe_later(
        &self,
        channel: &Channel,
        subscriptions: &mut Subscriptions,
    ) -> lapin::Result<()> {
        let mut waiting = Vec::new();
        for (queue, since) in std::mem::take(&mut subscriptions.later) {
            let consumers = active_consumers(channel, &queue).await?;
            if consumers > 0 || since.elapsed() >= TAKEOVER_GRACE {
                if consumers == 0 {
                    info!(worker = %self.name, %queue, "nobody took the partition; taking it");
                }
                self.subscribe_to(channel, subscriptions, &queue).await?;
            } else {
                waiting.push((queue, since));
            }
        }
        subscriptions.later = waiting;
        Ok(())
    }

    async fn subscribe_to(
        &self,
        channel: &Channel,
        subscriptions: &mut Subscriptions,
        queue: &str,
    ) -> lapin::Result<()> {
        let tag = format!(
            "{}-{}-{}",
            self.name,
            subscriptions.session,
            subscriptions.tags.len()
        );
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        debug!(worker = %self.name, %queue, "subscribed");
        subscriptions.tags.push(tag);
        subscriptions.streams.push(consumer);
        Ok(())
    }

    /// Handles one batch end to end. Returns `Ok(true)` when a crash was simulated.
    async fn process(
        self: Arc<Self>,
        items: Vec<Item>,
        publisher: &Channel,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let started = Instant::now();
        let started_at = std::time::SystemTime::now();

        let mut backoff = crate::retry::reconnect_backoff();
        let db_check = format!("{}.db", self.name);
        let verdicts = loop {
            match self.transact(&items, false).await {
                Ok(v) => break v,
                Err(BatchError::Unavailable(err)) => {
                    self.health.set(&db_check, false);
                    let delay = backoff.next().unwrap_or(std::time::Duration::from_secs(5));
                    warn!(worker = %self.name, error = %err, ?delay, "database unavailable; holding the batch");
                    tokio::select! {
                        // Leave the deliveries unacknowledged: the broker gives them back.
                        () = shutdown.cancelled() => return Ok(false),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        self.health.set(&db_check, true);
        if let Some(traces) = &self.traces {
            self.record_spans(traces, &items, &verdicts, started_at);
        }
        let committed = items
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| matches!(v, Verdict::Handled))
            .count();
        self.metrics
            .batch(&self.name, items.len(), started.elapsed().as_secs_f64());
        if committed > 0
            && self
                .faults
                .crash_after_commit
                .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(true);
        }

        for (item, verdict) in items.iter().zip(verdicts) {
            self.settle_delivery(item, verdict, publisher).await?;
        }
        Ok(false)
    }

    /// Runs the batch in one transaction. `careful` puts each message in its own savepoint.
    async fn transact(&self, items: &[Item], careful: bool) -> Result<Vec<Verdict>, BatchError> {
        let unavailable = |e: sqlx::Error| BatchError::Unavailable(e);
        let mut verdicts: Vec<Option<Verdict>> = items
            .iter()
            .map(|i| {
                i.decoded
                    .as_ref()
                    .err()
                    .map(|reason| Verdict::Dead(reason.clone()))
            })
            .collect();
        let handle: Vec<(usize, &Incoming)> = items
            .iter()
            .enumerate()
            .filter_map(|(n, i)| i.decoded.as_ref().ok().map(|inc| (n, inc)))
            .collect();
        if handle.is_empty() {
            return Ok(verdicts
                .into_iter()
                .map(|v| v.unwrap_or(Verdict::Duplicate))
                .collect());
        }

        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Ids claimed by this batch; each is taken out when its first copy is handled, so a
        // second copy of the same message in the same batch is a duplicate too.
        let mut fresh: std::collections::HashSet<Uuid> = match self.claim(&mut tx, &handle).await {
            Ok(fresh) => fresh.into_iter().collect(),
            Err(err) if crate::db::is_connection_error(&err) => return Err(unavailable(err)),
            Err(err) => {
                // A conflict with a concurrent batch over the same ids: try them later.
                drop(tx);
                for (n, _) in &handle {
                    verdicts[*n] = Some(Verdict::Retry(format!("inbox: {err}")));
                }
                return Ok(verdicts
                    .into_iter()
                    .map(|v| v.unwrap_or(Verdict::Duplicate))
                    .collect());
            }
        };

        if let Err(err) = self.lock_batch(&mut tx, &handle, &fresh).await {
            if let HandlerError::Unavailable(err) = err {
                return Err(unavailable(err));
            }
            // The locks could not be taken (a lock timeout, a cancelled statement): nothing
            // has run yet, so the whole batch is simply tried again later.
            drop(tx);
            for (n, _) in &handle {
                verdicts[*n] = Some(Verdict::Retry(format!("lock keys: {err}")));
            }
            return Ok(verdicts
                .into_iter()
                .map(|v| v.unwrap_or(Verdict::Duplicate))
                .collect());
        }

        let mut outgoing: Vec<OutboxMessage> = Vec::new();
        let mut wake = false;
        let mut failed_ids: Vec<Uuid> = Vec::new();
        if !careful {
            // The fast path: every fresh message through `handle_batch`, no savepoints. Any
            // failure sends the batch down the careful path, where `handle` decides each.
            let mut fresh_msgs: Vec<&Incoming> = Vec::with_capacity(handle.len());
            for (n, incoming) in &handle {
                if fresh.remove(&incoming.envelope.message_id) {
                    fresh_msgs.push(incoming);
                    verdicts[*n] = Some(Verdict::Handled);
                } else {
                    verdicts[*n] = Some(Verdict::Duplicate);
                }
            }
            let mut batch = Batch {
                conn: &mut tx,
                outgoing: &mut outgoing,
                wake: &mut wake,
                producer: &self.name,
            };
            match self.handler.handle_batch(&fresh_msgs, &mut batch).await {
                Ok(()) => {}
                Err(HandlerError::Unavailable(err)) => return Err(unavailable(err)),
                Err(err) => {
                    debug!(worker = %self.name, error = %err, "a handler failed; rerunning the batch with savepoints");
                    drop(tx);
                    return Box::pin(self.transact(items, true)).await;
                }
            }
        } else {
            for (n, incoming) in &handle {
                let id = incoming.envelope.message_id;
                if !fresh.remove(&id) {
                    verdicts[*n] = Some(Verdict::Duplicate);
                    continue;
                }
                let mut sp = tx.begin().await.map_err(unavailable)?;
                let mark = outgoing.len();
                let result = Batch {
                    conn: &mut sp,
                    outgoing: &mut outgoing,
                    wake: &mut wake,
                    producer: &self.name,
                }
                .handle_one(&self.handler, incoming)
                .await;
                if result.is_err() {
                    // A failed (or rejected) message sends nothing.
                    outgoing.truncate(mark);
                }
                match &result {
                    Ok(()) | Err(HandlerError::Rejected(_)) => {
                        sp.commit().await.map_err(unavailable)?
                    }
                    Err(_) => sp.rollback().await.map_err(unavailable)?,
                }
                match result {
                    Ok(()) => verdicts[*n] = Some(Verdict::Handled),
                    Err(HandlerError::Unavailable(err)) => return Err(unavailable(err)),
                    Err(HandlerError::Transient(err)) => {
                        self.metrics.failure(&self.name, "transient");
                        failed_ids.push(id);
                        verdicts[*n] = Some(Verdict::Retry(format!("{err:#}")));
                    }
                    Err(HandlerError::Rejected(reason)) => {
                        self.metrics.failure(&self.name, "rejected");
                        failed_ids.push(id);
                        verdicts[*n] = Some(Verdict::Dead(reason));
                    }
                    Err(HandlerError::Permanent(reason)) => {
                        self.metrics.failure(&self.name, "permanent");
                        failed_ids.push(id);
                        verdicts[*n] = Some(Verdict::Dead(reason));
                    }
                }
            }
        }

        let finish = async {
            let written = if self.handoff.is_some() {
                outbox::insert_after_others(&mut tx, &outgoing).await?
            } else {
                outbox::insert(&mut tx, &outgoing).await?
            };
            if !failed_ids.is_empty() {
                // Their inbox rows were claimed up front; the handler's effects were rolled
                // back, so the claim must go too (a retry must run the handler again).
                sqlx::query("delete from inbox where consumer = $1 and message_id = any($2)")
                    .bind(&self.queue)
                    .bind(&failed_ids)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(written)
        };
        match finish.await {
            Ok(written) => {
                if let Some(handoff) = &self.handoff {
                    handoff.hand(written);
                }
                if wake && let Some(task) = &self.wake {
                    task.wake();
                }
            }
            Err(err) if crate::db::is_connection_error(&err) => return Err(unavailable(err)),
            Err(err) => {
                // The commit itself failed (e.g. a serialization conflict): nothing happened,
                // every message of the batch is tried again later.
                for (n, _) in &handle {
                    if matches!(verdicts[*n], Some(Verdict::Handled)) {
                        verdicts[*n] = Some(Verdict::Retry(format!("commit failed: {err}")));
                    }
                }
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.unwrap_or(Verdict::Duplicate))
            .collect())
    }

    /// Takes the advisory locks of every new message of the batch (see [`crate::LockKey`]): all of
    /// them, once each, exclusive winning over shared, in ascending key order, in one
    /// statement. Every batch of every copy of the worker takes its keys in the same global
    /// order, so batches wait for each other but never deadlock on declared keys.
    async fn lock_batch(
        &self,
        conn: &mut PgConnection,
        handle: &[(usize, &Incoming)],
        fresh: &std::collections::HashSet<Uuid>,
    ) -> Result<(), HandlerError> {
        let msgs: Vec<&Incoming> = handle
            .iter()
            .map(|(_, incoming)| *incoming)
            .filter(|incoming| fresh.contains(&incoming.envelope.message_id))
            .collect();
        let declared = self.handler.batch_lock_keys(&msgs, &mut *conn).await?;
        Ok(crate::handler::lock_entities(conn, &self.name, &declared).await?)
    }

    /// Records the batch's ids in the inbox; returns the ids that were not there before.
    async fn claim(
        &self,
        conn: &mut PgConnection,
        handle: &[(usize, &Incoming)],
    ) -> sqlx::Result<Vec<Uuid>> {
        let ids: Vec<Uuid> = handle.iter().map(|(_, i)| i.envelope.message_id).collect();
        let types: Vec<&str> = handle
            .iter()
            .map(|(_, i)| i.envelope.message_type.as_str())
            .collect();
        sqlx::query_scalar(
            "insert into inbox (consumer, message_id, message_type)
             select $1, id, t from unnest($2::uuid[], $3::text[]) as m(id, t)
             on conflict do nothing returning message_id",
        )
        .bind(&self.queue)
        .bind(&ids)
        .bind(&types)
        .fetch_all(conn)
        .await
    }

    /// The span of each decoded message of a batch, from the batch's start to now.
    fn record_spans(
        &self,
        traces: &crate::traces::Traces,
        items: &[Item],
        verdicts: &[Verdict],
        started: std::time::SystemTime,
    ) {
        let ended = std::time::SystemTime::now();
        for (item, verdict) in items.iter().zip(verdicts) {
            let Ok(incoming) = &item.decoded else {
                continue;
            };
            let e = &incoming.envelope;
            let hop = crate::hop::Hop::of(
                &self.name,
                e.message_id,
                e.trace.as_ref().map(|t| t.traceparent.as_str()),
            );
            traces.handled(&crate::traces::Handled {
                worker: &self.name,
                message_type: &e.message_type,
                message_id: e.message_id,
                correlation_id: &e.correlation_id,
                causation_id: e.causation_id,
                hop,
                started,
                ended,
                outcome: match verdict {
                    Verdict::Handled => "handled",
                    Verdict::Duplicate => "duplicate",
                    Verdict::Retry(_) => "retried",
                    Verdict::Dead(_) => "dead_lettered",
                },
            });
        }
    }

    /// Acks, retries or dead-letters one delivery after the transaction.
    async fn settle_delivery(
        &self,
        item: &Item,
        verdict: Verdict,
        publisher: &Channel,
    ) -> anyhow::Result<()> {
        let attempt = item.decoded.as_ref().map_or(1, |i| i.attempt);
        let outcome = match verdict {
            Verdict::Handled => Outcome::Handled,
            Verdict::Duplicate => Outcome::Duplicate,
            Verdict::Retry(reason) => match self.retry.next_delay(attempt) {
                Some(delay) => {
                    let headers = broker::with_int(
                        headers_of(&item.delivery.properties),
                        HEADER_ATTEMPT,
                        i64::from(attempt + 1),
                    );
                    let props = item
                        .delivery
                        .properties
                        .clone()
                        .with_headers(headers)
                        .with_expiration(delay.as_millis().to_string().into());
                    let queue = self
                        .names
                        .retry_queue(&self.queue, self.retry.delay_queue_for(attempt + 1));
                    publish_confirmed(
                        publisher,
                        &self.names.delay_exchange(&self.queue),
                        &queue,
                        &item.delivery.data,
                        props,
                    )
                    .await?;
                    info!(worker = %self.name, attempt, ?delay, %reason, "transient failure; retrying later");
                    Outcome::Retried
                }
                None => {
                    let reason = format!("gave up after {attempt} attempts; last error: {reason}");
                    self.dead_letter(item, &reason, publisher).await?;
                    Outcome::DeadLettered
                }
            },
            Verdict::Dead(reason) => {
                self.dead_letter(item, &reason, publisher).await?;
                Outcome::DeadLettered
            }
        };
        item.delivery.acker.ack(BasicAckOptions::default()).await?;
        self.metrics.message(&self.name, outcome);
        Ok(())
    }

    async fn dead_letter(
        &self,
        item: &Item,
        reason: &str,
        publisher: &Channel,
    ) -> anyhow::Result<()> {
        warn!(worker = %self.name, %reason, "dead-lettering a message");
        let attempt = item.decoded.as_ref().map_or(1, |i| i.attempt);
        let mut headers = headers_of(&item.delivery.properties);
        headers = broker::with_str(headers, broker::HEADER_DEAD_REASON, reason);
        headers = broker::with_str(headers, broker::HEADER_ORIGINAL_QUEUE, self.queue.clone());
        headers = broker::with_str(
            headers,
            broker::HEADER_DEAD_AT,
            chrono::Utc::now().to_rfc3339(),
        );
        headers = broker::with_int(headers, HEADER_ATTEMPT, i64::from(attempt));
        let props = item.delivery.properties.clone().with_headers(headers);
        publish_confirmed(
            publisher,
            &self.names.dead_letter_exchange(),
            &self.names.queue(&self.queue),
            &item.delivery.data,
            props,
        )
        .await
    }
}

/// Folds a finished batch task into the session state; true if it simulated a crash.
/// Records a finished batch task: frees its lane and keeps the first error. Returns whether
/// it simulated a crash.
fn settle(
    result: Result<(tokio::task::Id, anyhow::Result<bool>), tokio::task::JoinError>,
    running: &mut HashMap<tokio::task::Id, usize>,
    busy: &mut [bool],
    error: &mut Option<anyhow::Error>,
) -> bool {
    let id = match &result {
        Ok((id, _)) => *id,
        Err(join) => join.id(),
    };
    if let Some(lane) = running.remove(&id) {
        busy[lane] = false;
    }
    match result {
        Ok((_, Ok(crashed))) => crashed,
        Ok((_, Err(err))) => {
            error.get_or_insert(err);
            false
        }
        Err(join) => {
            error.get_or_insert(anyhow::anyhow!("batch task failed: {join}"));
            false
        }
    }
}

/// Decodes a delivery's envelope. A message published to the events exchange must carry its
/// type as the routing key: the routing key decides which queues receive it, so a message
/// sent under another type's key reaches consumers that never asked for it, where it would
/// be handled as what its body says. Such a message is bad input (dead-lettered with the
/// reason), like an undecodable body. Deliveries that come back through a retry queue or a
/// replay arrive from other exchanges under the queue's name and are not checked.
fn decode(delivery: Delivery, events_exchange: &str) -> Item {
    let attempt = broker::header_u32(&delivery.properties, HEADER_ATTEMPT)
        .unwrap_or(1)
        .max(1);
    let decoded = decode_raw(&delivery.data)
        .map_err(|e| format!("undecodable message: {e}"))
        .and_then(|envelope: RawEnvelope| {
            let routing_key = delivery.routing_key.as_str();
            if delivery.exchange.as_str() == events_exchange && routing_key != envelope.message_type
            {
                return Err(format!(
                    "routing key `{routing_key}` does not match message_type `{}`: publish \
                     every message with its type as the routing key",
                    envelope.message_type
                ));
            }
            Ok(Incoming::new(envelope, attempt))
        });
    Item { delivery, decoded }
}

fn headers_of(props: &BasicProperties) -> FieldTable {
    props.headers().clone().unwrap_or_default()
}

/// Publishes with `mandatory` and waits for the broker's confirm; a return or nack is an
/// error (the message must not be acked if its copy did not land).
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> anyhow::Result<()> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirmation = channel
        .basic_publish(exchange.into(), routing_key.into(), options, body, props)
        .await?
        .await?;
    match confirmation {
        lapin::Confirmation::Ack(None) | lapin::Confirmation::NotRequested => Ok(()),
        lapin::Confirmation::Ack(Some(_)) => {
            anyhow::bail!("unroutable: nothing bound for `{routing_key}` on exchange `{exchange}`")
        }
        lapin::Confirmation::Nack(_) => {
            anyhow::bail!("the broker refused the message for `{routing_key}`")
        }
    }
}
