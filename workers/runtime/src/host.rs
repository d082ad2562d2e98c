//! A process hosting one or more workers: their consumers, their outbox relays, the HTTP
//! endpoints, and the shutdown story.
//!
//! # Shutdown
//! One [`CancellationToken`] is the whole story. SIGTERM or Ctrl-C cancels it; each consumer
//! then stops taking deliveries, finishes and acknowledges the ones it holds, and closes its
//! channel; each relay flushes what was committed; the process exits 0. A second signal, or
//! the grace period running out, ends the process at once: anything unacknowledged is
//! redelivered and deduplicated, so this is safe, only slower.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    broker::{self, Names},
    config::Settings,
    consumer::{Consumer, ConsumerFaults},
    db,
    drain::Wake,
    handler::Handler,
    health::{self, Health},
    metrics::Metrics,
    outbox::{Handoff, Relay},
    retry::RetryPolicy,
    topology::{self, QueueSpec},
};

/// A process's workers and the infrastructure they share.
#[derive(Debug)]
pub struct Host {
    settings: Settings,
    names: Names,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    pools: Vec<(String, PgPool)>,
    handoffs: Vec<(String, Handoff)>,
    wakes: Vec<(String, Wake)>,
    /// The queues whose depth this process samples (one sampler, one connection, for all
    /// its workers; started with the first).
    sampled: Option<Arc<std::sync::Mutex<Vec<String>>>>,
    /// The span exporter (`[telemetry] otlp_endpoint`), shared by the process's consumers.
    traces: Option<Arc<crate::traces::Traces>>,
    /// This host's id on the outbox rows its workers write (`written_by`): other processes'
    /// relays leave them to this host's handoffs.
    writer: uuid::Uuid,
}

impl Host {
    /// A host with nothing running yet.
    pub fn new(settings: Settings) -> Self {
        // Spans are an aid: a telemetry setting that cannot work is said, not fatal.
        let traces = settings
            .section::<crate::traces::TraceSettings>("telemetry")
            .map_err(anyhow::Error::from)
            .and_then(|t| crate::traces::Traces::start(&t))
            .unwrap_or_else(|e| {
                warn!(error = %format!("{e:#}"), "spans will not be exported");
                None
            })
            .map(Arc::new);
        Self {
            traces,
            names: Names::new(settings.namespace.clone()),
            settings,
            metrics: Arc::new(Metrics::default()),
            health: Health::default(),
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
            pools: Vec::new(),
            handoffs: Vec::new(),
            wakes: Vec::new(),
            sampled: None,
            writer: uuid::Uuid::now_v7(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The broker names of this namespace.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The process's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The process's readiness checks.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The token whose cancellation stops everything.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Declares `specs` (and the exchanges) on the broker.
    pub async fn declare(&self, specs: &[QueueSpec]) -> anyhow::Result<()> {
        let connection = broker::connect(&self.settings.broker_url, "orderly-topology").await?;
        let channel = connection.create_channel().await?;
        topology::declare(&channel, &self.names, specs).await?;
        let _ = connection.close(200, "done".into()).await;
        Ok(())
    }

    /// Declares worker `name`'s own queues and exchanges (`spec`), connecting as the worker
    /// (`brokers.<name>`): what a worker whose broker user may configure nothing else does
    /// at start when the deployment provisions the rest (`provision = false`). The shared
    /// exchanges are only checked (passively): a worker must not be able to change them.
    pub async fn declare_own(&self, name: &str, spec: &QueueSpec) -> anyhow::Result<()> {
        let connection = broker::connect(
            self.settings.broker_url_for(name),
            &format!("orderly-topology-{name}"),
        )
        .await?;
        let channel = connection.create_channel().await?;
        topology::check_exchanges(&channel, &self.names)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "worker `{name}`: the exchanges {} and {} are not there ({e}); run \
                     `orderly topology` with the administrator's credentials first",
                    self.names.events_exchange(),
                    self.names.dead_letter_exchange()
                )
            })?;
        topology::declare_queue(&channel, &self.names, spec).await?;
        let _ = connection.close(200, "done".into()).await;
        Ok(())
    }

    /// The pool of worker `name` (its schema): opened on first use, then shared by all of
    /// that worker's parts in this host (consumer, relay, background tasks).
    pub async fn pool_for(&mut self, name: &str) -> anyhow::Result<PgPool> {
        if let Some((_, pool)) = self.pools.iter().find(|(n, _)| n == name) {
            return Ok(pool.clone());
        }
        let consumer = self.settings.consumer_for(name);
        let size = u32::try_from(consumer.concurrency + 2).unwrap_or(16);
        let pool = db::connect_as(
            self.settings.database_url_for(name),
            name,
            size,
            Some(self.writer),
        )
        .await?;
        self.pools.push((name.to_owned(), pool.clone()));
        Ok(pool)
    }

    /// Starts worker `name`: its consumer (on queue `name`) and its outbox relay.
    pub async fn start_worker<H: Handler>(&mut self, name: &str, handler: H) -> anyhow::Result<()> {
        self.start_consumer(name, handler, ConsumerFaults::default())
            .await
    }

    /// Like [`Host::start_worker`], with faults injected (tests).
    #[cfg(feature = "testing")]
    pub async fn start_worker_with<H: Handler>(
        &mut self,
        name: &str,
        handler: H,
        faults: ConsumerFaults,
    ) -> anyhow::Result<()> {
        self.start_consumer(name, handler, faults).await
    }

    async fn start_consumer<H: Handler>(
        &mut self,
        name: &str,
        handler: H,
        faults: ConsumerFaults,
    ) -> anyhow::Result<()> {
        // A worker that would receive a type it does not handle (or miss one it does) must
        // not start: the alternative is dead letters in production.
        crate::inputs::check_routes(name, <H::Input as crate::inputs::Inputs>::TYPES)
            .map_err(|problem| anyhow::anyhow!("worker `{name}`: {problem}"))?;
        let pool = self.pool_for(name).await?;
        self.metrics.consumer_started(name);
        let consumer = Consumer::new(
            name,
            handler,
            pool.clone(),
            self.names.clone(),
            self.settings.broker_url_for(name).to_owned(),
            self.settings.consumer_for(name),
            RetryPolicy::from(&self.settings.retry),
            self.metrics.clone(),
            self.health.clone(),
        )
        .with_faults(faults)
        .with_wake(self.wake(name))
        .with_traces(self.traces.clone());
        let handoff = self.start_relay(name, pool);
        self.tasks
            .spawn(consumer.with_handoff(handoff).run(self.shutdown.clone()));
        self.sample_depth_of(name);
        Ok(())
    }

    /// Adds worker `name`'s partitions and dead-letter queue to what this process samples
    /// (`orderly_queue_messages`), starting the sampler with the first worker.
    fn sample_depth_of(&mut self, name: &str) {
        let partitions = self.settings.consumer_for(name).partitions;
        let mut queues = self.names.partition_queues(name, partitions);
        queues.push(self.names.dead_letter_queue(name));
        if let Some(sampled) = &self.sampled {
            if let Ok(mut list) = sampled.lock() {
                list.extend(queues);
            }
            return;
        }
        let sampled = Arc::new(std::sync::Mutex::new(queues));
        self.sampled = Some(sampled.clone());
        // As the first worker's user: a worker's user may look at its own queues, and a
        // process of several workers (`run all`) runs with one set of credentials anyway.
        let (url, metrics) = (
            self.settings.broker_url_for(name).to_owned(),
            self.metrics.clone(),
        );
        self.spawn_task("queue-depth", move |shutdown| {
            crate::depth::run(sampled, url, metrics, shutdown)
        });
    }

    /// Starts an outbox relay for `schema`; returns the handoff its writers in this process
    /// give their committed rows to (also [`Host::handoff`]).
    pub fn start_relay(&mut self, schema: &str, pool: PgPool) -> Handoff {
        self.metrics.relay_started(schema);
        let (handoff, handed) = Handoff::new();
        self.handoffs.push((schema.to_owned(), handoff.clone()));
        let relay = Relay::new(
            schema,
            pool,
            self.settings.broker_url_for(schema).to_owned(),
            self.names.clone(),
            &self.settings.relay,
            self.metrics.clone(),
        )
        .with_handoff(handed)
        .with_writer(self.writer)
        .with_health(self.health.clone());
        let token = self.shutdown.clone();
        self.tasks.spawn(async move {
            relay.run(token).await;
        });
        handoff
    }

    /// The handoff to the relay of `schema` in this process, for a worker's background task
    /// that writes the outbox (see [`crate::outbox::Handoff`]); none when no relay for it was
    /// started here (its rows are then found by a relay's sweep).
    pub fn handoff(&self, schema: &str) -> Option<Handoff> {
        self.handoffs
            .iter()
            .find(|(s, _)| s == schema)
            .map(|(_, h)| h.clone())
    }

    /// The wake of worker `name`'s background task in this process: the worker's consumer
    /// wakes it after a batch that queued work for it
    /// ([`crate::HandlerContext::wake_after_commit`]); the task waits on it in
    /// [`crate::drain::run`]. One per worker, made on first use.
    pub fn wake(&mut self, name: &str) -> Wake {
        if let Some((_, wake)) = self.wakes.iter().find(|(n, _)| n == name) {
            return wake.clone();
        }
        let wake = Wake::default();
        self.wakes.push((name.to_owned(), wake.clone()));
        wake
    }

    /// Runs a worker's own background task (e.g. a dispatcher draining a table) as part of
    /// the process: `task` gets the shutdown token and must return soon after it is
    /// cancelled; [`Host::stop`] waits for it like for the consumers and relays. `name` is
    /// for the logs.
    pub fn spawn_task<F, Fut>(&mut self, name: &str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.shutdown.clone());
        let name = name.to_owned();
        self.tasks.spawn(async move {
            fut.await;
            info!(task = %name, "background task finished");
        });
    }

    /// Serves `/healthz`, `/readyz` and `/metrics` on the configured address.
    pub async fn serve_http(&self) -> anyhow::Result<SocketAddr> {
        let addr = health::serve(
            &self.settings.http_addr,
            self.health.clone(),
            self.metrics.clone(),
            self.shutdown.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.settings.http_addr))?;
        info!(%addr, "health and metrics endpoint listening");
        Ok(addr)
    }

    /// Waits for SIGTERM or Ctrl-C, then shuts down gracefully; a second signal during the
    /// shutdown ends it at once.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        info!("shutdown requested; finishing messages in hand");
        tokio::select! {
            () = self.stop(Duration::from_secs(30)) => {}
            () = wait_for_signal() => warn!("second signal; stopping at once"),
        }
    }

    /// Cancels everything and waits up to `grace` for it to finish.
    pub async fn stop(mut self, grace: Duration) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        // No signal handling here: `stop` is also what tests and embedders call, and a
        // signal handler installed here would outlive it and swallow SIGTERM.
        tokio::select! {
            () = drain => info!("all workers stopped"),
            () = tokio::time::sleep(grace) => warn!(?grace, "grace period over; stopping anyway"),
        }
        for (_, pool) in self.pools {
            pool.close().await;
        }
        if let Some(traces) = self.traces {
            // Sending the last spans blocks (the exporter's client is a blocking one).
            let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
