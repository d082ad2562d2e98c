//! The chaos harness shared by the end-to-end tests (the pipeline's and the setups' stories): a worker's handler wrapped to defer
//! and duplicate deliveries like a real network, deterministically from a seed.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use orderly_runtime::{
    Batch, Handler, HandlerContext, HandlerError, Host, Incoming, LockKey, testing::World,
};
use uuid::Uuid;

/// Wraps a worker's handler to misbehave like a real network: a first delivery is sometimes
/// deferred (so messages arrive out of order) and a message is sometimes delivered again
/// (the same message id, published straight back to the worker's queue).
///
/// What happens to a message is decided from the seed and its id alone, so the batch path
/// (`handle_batch`) and the consumer's careful path after a failed batch (`handle`, one
/// message at a time) agree about each message. Everything the production handlers override
/// is forwarded, so duplicated, deferred and reordered deliveries go through the batch
/// paths production runs. What the harness did is written to a [`ChaosRecord`] the test
/// owns.
#[derive(Debug)]
pub struct Chaos<H> {
    inner: H,
    worker: &'static str,
    /// Where a duplicate goes: the worker's partition exchange (to the original's partition).
    queue: String,
    channel: lapin::Channel,
    seed: u64,
    record: Arc<Mutex<ChaosRecord>>,
}

/// The chance that a message is chosen to be deferred on its first delivery, and to be
/// delivered a second time.
const DEFER: f64 = 0.2;
const DUPLICATE: f64 = 0.25;

/// What the chaos harness did, shared by the wrappers of every worker of a run.
#[derive(Debug, Default)]
pub struct ChaosRecord {
    /// (worker, message id) of every message published a second time.
    duplicated: BTreeSet<(&'static str, Uuid)>,
    /// (worker, message id) of every message whose first delivery was deferred.
    deferred: BTreeSet<(&'static str, Uuid)>,
    /// The last handling of each (worker, message id): a failed attempt is overwritten by
    /// the attempt that follows it, so once the inbox says a message was handled this is
    /// the handling that was committed.
    handled: HashMap<(&'static str, Uuid), Handling>,
    /// The next handling's place in time.
    next: u64,
}

#[derive(Debug, Clone)]
struct Handling {
    correlation: String,
    /// How many messages the `handle_batch` call held; 0 when handled alone by `handle`.
    batch: usize,
    /// When, relative to the other handlings of the run.
    at: u64,
}

/// How many messages the harness duplicated and deferred, and how many committed handlings
/// came after a later-created message of the same order (message ids are UUIDv7, ordered by
/// creation), by path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChaosFigures {
    pub duplicated: usize,
    pub deferred: usize,
    /// Out of order inside `handle_batch` with more than one message.
    pub reordered_in_batches: usize,
    /// Out of order inside `handle_batch` with one message.
    pub reordered_in_batches_of_one: usize,
    /// Out of order through `handle` (the careful path).
    pub reordered_alone: usize,
}

impl ChaosRecord {
    /// The figures of the handlings whose message is in its worker's inbox (committed).
    fn figures(&self, committed: &HashSet<(&'static str, Uuid)>) -> ChaosFigures {
        let mut by_flow: HashMap<(&'static str, &str), Vec<(Uuid, &Handling)>> = HashMap::new();
        for ((worker, id), h) in &self.handled {
            if committed.contains(&(*worker, *id)) {
                by_flow
                    .entry((*worker, h.correlation.as_str()))
                    .or_default()
                    .push((*id, h));
            }
        }
        let mut figures = ChaosFigures {
            duplicated: self.duplicated.len(),
            deferred: self.deferred.len(),
            ..ChaosFigures::default()
        };
        for flow in by_flow.values() {
            for (id, h) in flow {
                let late = flow.iter().any(|(other, o)| other > id && o.at < h.at);
                if late {
                    match h.batch {
                        0 => figures.reordered_alone += 1,
                        1 => figures.reordered_in_batches_of_one += 1,
                        _ => figures.reordered_in_batches += 1,
                    }
                }
            }
        }
        figures
    }
}

/// A uniform number in [0, 1) from the seed, a message id and what is being decided.
fn draw(seed: u64, id: Uuid, what: u64) -> f64 {
    let bits = id.as_u128();
    let mut x = seed ^ (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17) ^ what;
    // splitmix64's finaliser, twice: every input bit reaches every output bit.
    for _ in 0..2 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A worker's handler under chaos, sharing the run's broker channel and record.
pub fn chaos_of<H: Handler>(
    (world, channel, record): (&World, &lapin::Channel, &Arc<Mutex<ChaosRecord>>),
    worker: &'static str,
    seed: u64,
    inner: H,
) -> Chaos<H> {
    Chaos::new(worker, world, channel.clone(), seed, record.clone(), inner)
}

impl<H: Handler> Chaos<H> {
    fn new(
        worker: &'static str,
        world: &World,
        channel: lapin::Channel,
        seed: u64,
        record: Arc<Mutex<ChaosRecord>>,
        inner: H,
    ) -> Self {
        Self {
            inner,
            worker,
            queue: world.names.partition_exchange(worker),
            channel,
            seed,
            record,
        }
    }

    fn record(&self) -> Result<std::sync::MutexGuard<'_, ChaosRecord>, HandlerError> {
        self.record
            .lock()
            .map_err(|_| HandlerError::permanent("chaos record poisoned"))
    }

    /// Whether this delivery of `msg` is deferred (only ever a first delivery).
    fn defers(&self, msg: &Incoming) -> bool {
        msg.attempt == 1 && draw(self.seed, msg.envelope.message_id, 1) < DEFER
    }

    fn duplicates(&self, msg: &Incoming) -> bool {
        draw(self.seed, msg.envelope.message_id, 2) < DUPLICATE
    }

    /// Publishes a second copy of each of `msgs` chosen to be duplicated (once per message,
    /// however often it is handled).
    async fn publish_duplicates(&self, msgs: &[&Incoming]) -> Result<(), HandlerError> {
        let fresh: Vec<&Incoming> = {
            let mut record = self.record()?;
            msgs.iter()
                .copied()
                .filter(|m| {
                    self.duplicates(m)
                        && record
                            .duplicated
                            .insert((self.worker, m.envelope.message_id))
                })
                .collect()
        };
        for msg in fresh {
            let body = serde_json::to_vec(&msg.envelope).map_err(HandlerError::transient)?;
            let confirm = self
                .channel
                .basic_publish(
                    self.queue.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default()
                        .with_correlation_id(msg.envelope.correlation_id.as_str().into()),
                )
                .await
                .map_err(HandlerError::transient)?;
            confirm.await.map_err(HandlerError::transient)?;
        }
        Ok(())
    }

    /// Notes that `msgs` are being handled now, in this order, `batch` of them together (0:
    /// alone, through `handle`).
    fn note(&self, msgs: &[&Incoming], batch: usize) -> Result<(), HandlerError> {
        let mut record = self.record()?;
        for msg in msgs {
            let at = record.next;
            record.next += 1;
            record.handled.insert(
                (self.worker, msg.envelope.message_id),
                Handling {
                    correlation: msg.envelope.correlation_id.clone(),
                    batch,
                    at,
                },
            );
        }
        Ok(())
    }
}

impl<H: Handler> Handler for Chaos<H> {
    type Input = H::Input;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        self.publish_duplicates(&[msg]).await?;
        if self.defers(msg) {
            self.record()?
                .deferred
                .insert((self.worker, msg.envelope.message_id));
            return Err(HandlerError::transient(anyhow::anyhow!(
                "chaos: deliver this one later"
            )));
        }
        self.note(&[msg], 0)?;
        self.inner.handle(msg, cx).await
    }

    /// The batch goes to the worker's own `handle_batch` unless one of its messages is to
    /// be deferred: then the batch fails, and the consumer's careful path hands each
    /// message to `handle`, which defers exactly those and handles the rest alone.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        self.publish_duplicates(msgs).await?;
        if msgs.iter().any(|m| self.defers(m)) {
            return Err(HandlerError::transient(anyhow::anyhow!(
                "chaos: a message of this batch is to be delivered later"
            )));
        }
        self.note(msgs, msgs.len())?;
        self.inner.handle_batch(msgs, batch).await
    }

    async fn lock_keys(
        &self,
        msg: &Incoming,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        self.inner.lock_keys(msg, conn).await
    }

    async fn batch_lock_keys(
        &self,
        msgs: &[&Incoming],
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        self.inner.batch_lock_keys(msgs, conn).await
    }
}

/// What the harness did in a run of `workers`, counting only the handlings their inboxes
/// say were committed.
pub async fn figures(
    world: &World,
    record: &Mutex<ChaosRecord>,
    workers: &[&'static str],
) -> anyhow::Result<ChaosFigures> {
    let mut committed = HashSet::new();
    for worker in workers {
        let pool = world.pool(worker).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar("select message_id from inbox")
            .fetch_all(&pool)
            .await?;
        pool.close().await;
        committed.extend(ids.into_iter().map(|id| (*worker, id)));
    }
    let record = record
        .lock()
        .map_err(|_| anyhow::anyhow!("chaos record poisoned"))?;
    Ok(record.figures(&committed))
}

/// Starts orders, inventory and fulfillment on `host`, each under the harness (seeds
/// `seed`, `seed + 1`, `seed + 2`), sharing one record and one channel for the duplicates;
/// returns both, to wrap more workers with [`chaos_of`].
pub async fn start_pipeline(
    host: &mut Host,
    world: &World,
    seed: u64,
) -> anyhow::Result<(lapin::Channel, Arc<Mutex<ChaosRecord>>)> {
    let dup = world.connection.create_channel().await?;
    dup.confirm_select(ConfirmSelectOptions::default()).await?;
    let record = Arc::new(Mutex::new(ChaosRecord::default()));
    let shared = (world, &dup, &record);
    host.start_worker(
        "orders",
        chaos_of(shared, "orders", seed, orderly_orders::OrdersHandler::new()),
    )
    .await?;
    host.start_worker(
        "inventory",
        chaos_of(
            shared,
            "inventory",
            seed + 1,
            orderly_inventory::InventoryHandler::new(),
        ),
    )
    .await?;
    host.start_worker(
        "fulfillment",
        chaos_of(
            shared,
            "fulfillment",
            seed + 2,
            orderly_fulfillment::FulfillmentHandler,
        ),
    )
    .await?;
    Ok((dup, record))
}
