//! Test support for worker crates and end-to-end tests: an isolated world per test.
//!
//! A [`World`] is a fresh PostgreSQL database with every migration applied and a fresh
//! broker namespace with the standard topology declared, so tests run in parallel against
//! the real RabbitMQ and PostgreSQL without seeing each other. [`Tap`] observes what the
//! workers publish; [`wait_until`] waits for a condition with a deadline (tests never sleep
//! to synchronise).
//!
//! This module is compiled into the runtime (it is small and has no extra dependencies) so
//! that every worker crate's tests use the same harness.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::FieldTable,
};
use orderly_contracts::{Envelope, Message, RawEnvelope, decode_raw};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    Host, Settings,
    broker::{self, Names},
    config::{ConsumerSettings, QueueType, RetrySettings},
    db,
    dlq::{DeadLetter, DeadLetters},
    documents::{self, DocumentSettings},
    handler::{Batch, Handler, HandlerError, Incoming},
    outbox::{self, OutboxMessage},
    topology::{self, QueueSpec},
};

/// The machine's broker, as the test scripts start it.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The machine's PostgreSQL server (without a database name).
pub const POSTGRES_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// Runs `handler` on `msgs` as one batch of worker `worker` would, without a broker: in one
/// transaction on `pool`, through [`Handler::handle_batch`] if `together`, else through
/// [`Handler::handle`] one message at a time; commits and returns what was emitted (also
/// written to the outbox). For tests that compare the two paths deterministically; the
/// inbox is not involved.
pub async fn run_batch<H: Handler>(
    pool: &PgPool,
    worker: &str,
    handler: &H,
    msgs: &[RawEnvelope],
    together: bool,
) -> Result<Vec<OutboxMessage>, HandlerError> {
    let incoming: Vec<Incoming> = msgs
        .iter()
        .map(|envelope| Incoming::new(envelope.clone(), 1))
        .collect();
    let refs: Vec<&Incoming> = incoming.iter().collect();
    let mut tx = pool.begin().await?;
    let mut outgoing = Vec::new();
    let mut wake = false;
    let mut batch = Batch {
        conn: &mut tx,
        outgoing: &mut outgoing,
        wake: &mut wake,
        producer: worker,
    };
    if together {
        handler.handle_batch(&refs, &mut batch).await?;
    } else {
        for msg in &refs {
            batch.handle_one(handler, msg).await?;
        }
    }
    outbox::insert(&mut tx, &outgoing).await?;
    tx.commit().await?;
    Ok(outgoing)
}

/// What one way of running a batch left behind (see [`run_both_ways`]).
#[derive(Debug)]
pub struct BatchRun {
    /// What the test's `read` made of the worker's schema afterwards.
    pub state: Vec<String>,
    /// What the batch emitted, in order.
    pub emitted: Vec<OutboxMessage>,
}

/// Runs `batch` on a fresh world of its own twice, after `setup` (one at a time): first
/// one message at a time, then together ([`run_batch`]); `read` describes the worker's
/// schema after each. For tests that hold a worker's `handle_batch` to its promise.
pub async fn run_both_ways<H, F, Fut>(
    worker: &str,
    handler: &H,
    setup: &[RawEnvelope],
    batch: &[RawEnvelope],
    read: F,
) -> anyhow::Result<[BatchRun; 2]>
where
    H: Handler,
    F: Fn(PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<String>>>,
{
    let mut runs = Vec::with_capacity(2);
    for together in [false, true] {
        let world = World::new().await?;
        let pool = world.pool(worker).await?;
        run_batch(&pool, worker, handler, setup, false).await?;
        let emitted = run_batch(&pool, worker, handler, batch, together).await?;
        let state = read(pool.clone()).await?;
        pool.close().await;
        world.cleanup().await?;
        runs.push(BatchRun { state, emitted });
    }
    let [one_at_a_time, together]: [BatchRun; 2] = runs
        .try_into()
        .map_err(|_| anyhow::anyhow!("two runs expected"))?;
    Ok([one_at_a_time, together])
}

/// `text` with each id of `names` written as `<name>`: for comparing what two runs wrote when
/// each generated its own ids.
pub fn with_names(text: &str, names: &[(uuid::Uuid, String)]) -> String {
    names.iter().fold(text.to_owned(), |t, (id, name)| {
        t.replace(&id.to_string(), &format!("<{name}>"))
    })
}

/// One test's private database and broker namespace.
#[derive(Debug)]
pub struct World {
    /// Settings pointing at the private database and namespace, with fast retries.
    pub settings: Settings,
    /// Broker names of the namespace.
    pub names: Names,
    /// A connection for the test's own publishing and inspection.
    pub connection: Connection,
    /// A channel with publisher confirms.
    pub channel: Channel,
    /// The declared queues.
    pub specs: Vec<QueueSpec>,
    database: String,
    /// The world's own document directory (`[documents] path`), removed by `cleanup`.
    documents: PathBuf,
}

impl World {
    /// A world with the standard topology and fast retries (5 attempts, 50–400 ms), on
    /// classic queues: quorum queues are not built for being created and deleted per test
    /// (RabbitMQ stalls under that churn), so throwaway worlds use classic ones.
    pub async fn new() -> anyhow::Result<Self> {
        Self::with(Self::fast_retry(), ConsumerSettings::default()).await
    }

    /// Fast retries for tests: 5 attempts, 50–400 ms.
    pub fn fast_retry() -> RetrySettings {
        RetrySettings {
            max_attempts: 5,
            initial_delay_ms: 50,
            max_delay_ms: 400,
        }
    }

    /// A world with the given retry and consumer settings, on classic queues.
    pub async fn with(retry: RetrySettings, consumer: ConsumerSettings) -> anyhow::Result<Self> {
        Self::build(retry, consumer, QueueType::Classic).await
    }

    /// A world on quorum queues, exactly as production declares them. Use sparingly: each
    /// world creates and deletes some thirty quorum queues.
    pub async fn quorum() -> anyhow::Result<Self> {
        Self::build(
            Self::fast_retry(),
            ConsumerSettings::default(),
            QueueType::Quorum,
        )
        .await
    }

    async fn build(
        retry: RetrySettings,
        consumer: ConsumerSettings,
        queue_type: QueueType,
    ) -> anyhow::Result<Self> {
        ensure_services()?;
        crate::telemetry::init("warn");
        let id = Uuid::now_v7().simple().to_string();
        let suffix = &id[id.len() - 12..];
        let namespace = format!("t-{suffix}");
        let database = format!("orderly_t_{suffix}");
        let database_url = format!("{POSTGRES_SERVER}/{database}");
        db::ensure_database(&database_url).await?;
        db::migrate(&database_url).await?;
        // Every world keeps its documents in a directory of its own: tests issue the same
        // invoice numbers in the same stores, each in its own database.
        let documents = std::env::temp_dir().join(format!("orderly-documents-{suffix}"));
        let settings = Settings {
            broker_url: BROKER_URL.into(),
            database_url,
            namespace: namespace.clone(),
            http_addr: "127.0.0.1:0".into(),
            queue_type,
            consumer,
            retry,
            ..Settings::default()
        }
        .with_section(
            "documents",
            DocumentSettings {
                path: documents.clone(),
                ..DocumentSettings::default()
            },
        );
        let names = Names::new(namespace.clone());
        let connection = broker::connect(BROKER_URL, &format!("test-{namespace}")).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let specs = topology::standard_specs(&settings);
        topology::declare(&channel, &names, &specs).await?;
        Ok(Self {
            settings,
            names,
            connection,
            channel,
            specs,
            database,
            documents,
        })
    }

    /// The world's document store (the directory its workers write PDFs to).
    pub fn documents(&self) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
        let settings: DocumentSettings = self.settings.section("documents")?;
        Ok(documents::open(&settings)?)
    }

    /// A pool on the database of `schema` (the world's, or the one `databases` names for it)
    /// whose search path is `schema`.
    pub async fn pool(&self, schema: &str) -> anyhow::Result<PgPool> {
        Ok(db::connect(self.settings.database_url_for(schema), schema, 4).await?)
    }

    /// A host on this world (start workers on it, then `stop` it).
    pub fn host(&self) -> Host {
        Host::new(self.settings.clone())
    }

    /// A host running its workers as copy `i` of `n` (`consumer.copy`): numbered copies
    /// take their own share of the partitions at once, so `n` such hosts split the work.
    pub fn copy_host(&self, i: u16, n: u16) -> Host {
        let mut settings = self.settings.clone();
        let copy = Some(format!("{i}/{n}"));
        settings.consumer.copy.clone_from(&copy);
        for consumer in settings.workers.values_mut() {
            consumer.copy.clone_from(&copy);
        }
        Host::new(settings)
    }

    /// Publishes an envelope to the events exchange as an outside producer would, its
    /// correlation id also as the AMQP property (the workers' partitions hash it).
    pub async fn publish<P: Message>(&self, envelope: &Envelope<P>) -> anyhow::Result<()> {
        self.publish_with(
            &envelope.message_type,
            &envelope.to_json(),
            Some(&envelope.correlation_id),
        )
        .await
    }

    /// Publishes raw bytes under `routing_key`, confirmed and mandatory.
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) -> anyhow::Result<()> {
        self.publish_with(routing_key, body, None).await
    }

    async fn publish_with(
        &self,
        routing_key: &str,
        body: &[u8],
        correlation_id: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_type(routing_key.into());
        if let Some(correlation_id) = correlation_id {
            properties = properties.with_correlation_id(correlation_id.into());
        }
        let confirm = self
            .channel
            .basic_publish(
                self.names.events_exchange().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(
            matches!(confirm, lapin::Confirmation::Ack(None)),
            "publish of `{routing_key}` not confirmed: {confirm:?}"
        );
        Ok(())
    }

    /// Starts observing messages of `types` published from now on.
    pub async fn tap(&self, types: &[&str]) -> anyhow::Result<Tap> {
        let (channel, consumer) = broker::observe(&self.connection, &self.names, types).await?;
        Ok(Tap {
            _channel: channel,
            consumer,
        })
    }

    /// Messages ready in a queue, by its name without namespace (`orders.dlq`,
    /// `out.warehouse`); for a worker's queue (`orders`), in all its partitions.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let queues = match self.specs.iter().find(|s| s.name == queue).map(|s| &s.kind) {
            Some(crate::topology::QueueKind::Worker { partitions, .. }) => {
                self.names.partition_queues(queue, *partitions)
            }
            _ => vec![self.names.queue(queue)],
        };
        messages_in(&self.connection, queues).await
    }

    /// The dead letters of a consumer queue (left in place).
    pub async fn dead_letters(&self, queue: &str) -> anyhow::Result<Vec<DeadLetter>> {
        let ch = self.connection.create_channel().await?;
        let letters = DeadLetters::new(&ch, &self.names, queue).list(1000).await?;
        let _ = ch.close(200, "ok".into()).await;
        Ok(letters)
    }

    /// Deletes the namespace's queues and drops the database.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        let ch = self.connection.create_channel().await?;
        topology::delete(&ch, &self.names, &self.specs).await?;
        let _ = self.connection.close(200, "done".into()).await;
        // Gone already if nothing was stored.
        let _ = std::fs::remove_dir_all(&self.documents);
        drop_database(&self.database).await
    }
}

/// Drops a test database, disconnecting whoever is still on it.
pub async fn drop_database(name: &str) -> anyhow::Result<()> {
    Ok(db::drop_database(&format!("{POSTGRES_SERVER}/{name}")).await?)
}

/// Observes published messages.
#[derive(Debug)]
pub struct Tap {
    _channel: Channel,
    consumer: lapin::Consumer,
}

impl Tap {
    /// The next message, undecoded, or an error after `timeout`.
    pub async fn next_raw(&mut self, timeout: Duration) -> anyhow::Result<RawEnvelope> {
        Ok(self.next_delivery(timeout).await?.0)
    }

    /// The next message, undecoded, with its AMQP properties (headers and all).
    pub async fn next_delivery(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(RawEnvelope, lapin::BasicProperties)> {
        match tokio::time::timeout(timeout, self.consumer.next()).await {
            Ok(Some(delivery)) => {
                let delivery = delivery?;
                Ok((decode_raw(&delivery.data)?, delivery.properties))
            }
            Ok(None) => anyhow::bail!("tap closed"),
            Err(_) => anyhow::bail!("no message within {timeout:?}"),
        }
    }

    /// The next message, decoded as `P` (an error if it is another type).
    pub async fn next<P: Message>(&mut self, timeout: Duration) -> anyhow::Result<Envelope<P>> {
        Ok(self.next_raw(timeout).await?.decode::<P>()?)
    }

    /// The next message of type `P`, skipping others.
    pub async fn next_of<P: Message>(&mut self, timeout: Duration) -> anyhow::Result<Envelope<P>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let raw = self.next_raw(left).await?;
            if raw.message_type == P::TYPE {
                return Ok(raw.decode::<P>()?);
            }
        }
    }

    /// Everything that arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<RawEnvelope> {
        let mut out = Vec::new();
        while let Ok(m) = self.next_raw(window).await {
            out.push(m);
        }
        out
    }
}

/// Waits until `check` returns true, polling every 25 ms; an error naming `what` after
/// `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    wait_for(what, deadline, || {
        let checked = check();
        async move { Ok(checked.await?.then_some(())) }
    })
    .await
}

/// Waits until `find` finds something, polling every 25 ms, and returns it; an error
/// naming `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut find: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = find().await? {
            return Ok(found);
        }
        if start.elapsed() > deadline {
            anyhow::bail!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An error naming the service when PostgreSQL or RabbitMQ is not reachable (the test
/// scripts start them: `scripts/services`).
pub fn ensure_services() -> anyhow::Result<()> {
    for (name, addr) in [
        ("PostgreSQL", "127.0.0.1:5432"),
        ("RabbitMQ", "127.0.0.1:5672"),
    ] {
        let sock: std::net::SocketAddr = addr.parse()?;
        if std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).is_err() {
            anyhow::bail!("{name} is not reachable at {addr}: run `scripts/services` first");
        }
    }
    Ok(())
}

/// Messages ready in `queues` (full names), together.
pub async fn messages_in(connection: &Connection, queues: Vec<String>) -> anyhow::Result<u32> {
    let ch = connection.create_channel().await?;
    let mut total = 0;
    for name in queues {
        let q = ch
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        total += q.message_count();
    }
    let _ = ch.close(200, "ok".into()).await;
    Ok(total)
}
