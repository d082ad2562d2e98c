//! `orderly bench api`: the admin API's reads on a read model of a platform's size, and how
//! far the read model trails the events while the order pipeline runs.
//!
//! In a database and namespace of its own (created, then removed):
//! 1. **A year of a platform**: `--orders` orders across `--stores` stores written straight
//!    into the api worker's read model with SQL (`orderly_api::bench`, which says why), then
//!    vacuumed and analysed; the api schema's size on disk.
//! 2. **Reads over HTTP**: the real api worker (its consumer and its HTTP server, started as
//!    `orderly run api` starts it) and real tokens (an order admin, and an account manager
//!    limited to two stores). A mix of requests ([`MIX`]: filtered lists, with and without
//!    `count=true`, a cursor followed to page 2, order details) is sent at `--rate` per second
//!    with at most `--connections` in flight, for `--seconds` after a warm-up; each
//!    request's latency runs from the moment it was due, so a server that falls behind shows
//!    it in the latency instead of in a lower rate (no coordinated omission). Then the same
//!    mix flat out, `--connections` at a time, for the ceiling.
//! 3. **Projection lag**: the order pipeline (orders, inventory, fulfillment in this
//!    process, a simulated carrier) at `--pipeline-rate` orders per second for `--seconds`.
//!    Lag is the time from an event's `occurred_at` to the commit of the api transaction that
//!    projected it: a constraint trigger installed in the scratch database only, deferred to
//!    commit, notes `clock_timestamp()` for each row the api's consumer writes to its inbox;
//!    the event's `occurred_at` is read from its producer's outbox afterwards. The worker's
//!    code is not changed for the measurement.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use orderly_api::bench::{Sampled, Seeded, TableSize};
use orderly_runtime::{
    Host, Settings,
    broker::Names,
    config::ConsumerSettings,
    machine::{CpuSample, MachineLoad, ProcessSample},
    topology,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::bench::percentile;
use crate::sim::{self, Observed, Publisher};

/// What `orderly bench api` is asked to do (its command-line options).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub(crate) struct Options {
    /// Orders in the read model (written with SQL).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) orders: u64,
    /// Stores they are spread over (at most 20).
    #[arg(long, default_value_t = 20)]
    pub(crate) stores: usize,
    /// Seconds of each measured phase (paced reads, flat-out reads, pipeline).
    #[arg(long, default_value_t = 30)]
    pub(crate) seconds: u64,
    /// Read requests per second asked for in the paced phase.
    #[arg(long, default_value_t = 2_000.0)]
    pub(crate) rate: f64,
    /// Requests in flight at most (HTTP connections).
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// Orders per second through the pipeline while the lag is measured.
    #[arg(long, default_value_t = 200.0)]
    pub(crate) pipeline_rate: f64,
}

impl Options {
    /// The command line that asks for these options (only what differs from the defaults).
    fn command(&self) -> String {
        let defaults = Self::default();
        let options = [
            (
                "--orders",
                self.orders.to_string(),
                defaults.orders.to_string(),
            ),
            (
                "--stores",
                self.stores.to_string(),
                defaults.stores.to_string(),
            ),
            (
                "--seconds",
                self.seconds.to_string(),
                defaults.seconds.to_string(),
            ),
            ("--rate", self.rate.to_string(), defaults.rate.to_string()),
            (
                "--connections",
                self.connections.to_string(),
                defaults.connections.to_string(),
            ),
            (
                "--pipeline-rate",
                self.pipeline_rate.to_string(),
                defaults.pipeline_rate.to_string(),
            ),
        ];
        let mut command = "cargo run --release -p orderly --features bench -- bench api".to_owned();
        for (flag, value, default) in options {
            if value != default {
                let _ = write!(command, " {flag} {value}");
            }
        }
        command
    }
}

impl Default for Options {
    /// The command line's defaults (a test holds the two together).
    fn default() -> Self {
        Self {
            orders: 1_000_000,
            stores: 20,
            seconds: 30,
            rate: 2_000.0,
            connections: 64,
            pipeline_rate: 200.0,
        }
    }
}

/// Seconds of requests before each measured phase, not counted: the server's connections,
/// prepared statements and the database's cache settle.
const WARM_UP: Duration = Duration::from_secs(5);
/// Orders sampled from the read model to ask for.
const SAMPLED: u32 = 20_000;
/// Connections writing the read model (the machine has two cores).
const LOADERS: usize = 2;

/// The kinds of request the mix sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// One store's orders, sometimes of some statuses.
    ListStore,
    /// Orders of some statuses, every store.
    ListStatus,
    /// Orders placed in a window (a day, or a week of one store).
    ListPlaced,
    /// Free text: a customer's surname or e-mail, or an order number.
    ListText,
    /// One channel's orders.
    ListChannel,
    /// One of the filters above with `count=true`.
    ListCounted,
    /// The second page of a store's orders, by the first page's cursor.
    ListPage2,
    /// The orders an account manager sees (two stores), sometimes of one status.
    ListScoped,
    /// An order's detail, as an order admin.
    Detail,
    /// An order's detail, as an account manager (an order of their stores).
    DetailScoped,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::ListStore => "list: one store (some with statuses)",
            Self::ListStatus => "list: statuses, all stores",
            Self::ListPlaced => "list: placed_from/placed_to",
            Self::ListText => "list: q (surname, e-mail, order number)",
            Self::ListChannel => "list: channel",
            Self::ListCounted => "list: a filter above with count=true",
            Self::ListPage2 => "list: page 2 by cursor",
            Self::ListScoped => "list: account manager (2 stores)",
            Self::Detail => "detail: order admin",
            Self::DetailScoped => "detail: account manager",
        }
    }

    fn is_list(self) -> bool {
        !matches!(self, Self::Detail | Self::DetailScoped)
    }
}

/// The mix: each kind's share in percent. An operator's day is mostly lists (a queue to work
/// through, searches) with a detail opened for some rows.
pub(crate) const MIX: &[(Kind, u32)] = &[
    (Kind::ListStore, 14),
    (Kind::ListStatus, 8),
    (Kind::ListPlaced, 8),
    (Kind::ListText, 8),
    (Kind::ListChannel, 4),
    (Kind::ListCounted, 8),
    (Kind::ListPage2, 6),
    (Kind::ListScoped, 6),
    (Kind::Detail, 30),
    (Kind::DetailScoped, 8),
];

/// The kind for `roll`, a number from 0 to the sum of the weights (exclusive).
pub(crate) fn pick(mix: &[(Kind, u32)], roll: u32) -> Kind {
    let mut left = roll;
    for (kind, weight) in mix {
        if left < *weight {
            return *kind;
        }
        left -= weight;
    }
    mix.last().map_or(Kind::Detail, |(kind, _)| *kind)
}

fn total_weight(mix: &[(Kind, u32)]) -> u32 {
    mix.iter().map(|(_, w)| w).sum()
}

/// Which token a request is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Manager,
}

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    kind: Kind,
    who: Who,
    path: String,
    query: Vec<(&'static str, String)>,
}

/// What the requests are made of: the stores, the orders sampled from the read model, the
/// account manager's orders among them.
struct Material {
    stores: Vec<&'static str>,
    orders: Vec<Sampled>,
    manager_orders: Vec<Sampled>,
    now: DateTime<Utc>,
}

const STATUS_FILTERS: &[&str] = &[
    "processing",
    "shipped",
    "backordered",
    "on_hold",
    "cancelled",
    "processing,partially_shipped",
    "shipped,delivered",
    "completed",
];

const CHANNELS: &[&str] = &["marketplace", "pos", "storefront", "manual"];

fn one<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Material {
    /// A request of `kind`, its values drawn with `rng`.
    fn plan(&self, kind: Kind, rng: &mut StdRng) -> Planned {
        let list = |who, query| Planned {
            kind,
            who,
            path: "/api/v1/admin/orders".to_owned(),
            query,
        };
        match kind {
            Kind::ListStore | Kind::ListPage2 => {
                let mut query = vec![("store", (*one(rng, &self.stores)).to_owned())];
                if kind == Kind::ListStore && rng.random_bool(0.4) {
                    query.push(("status", (*one(rng, STATUS_FILTERS)).to_owned()));
                }
                list(Who::Admin, query)
            }
            Kind::ListStatus => list(
                Who::Admin,
                vec![("status", (*one(rng, STATUS_FILTERS)).to_owned())],
            ),
            Kind::ListPlaced => {
                let days_ago = rng.random_range(1..365);
                let from = self.now - chrono::Duration::days(days_ago);
                let mut query = Vec::with_capacity(3);
                let days = if rng.random_bool(0.5) {
                    query.push(("store", (*one(rng, &self.stores)).to_owned()));
                    7
                } else {
                    1
                };
                query.push(("placed_from", rfc3339(from)));
                query.push(("placed_to", rfc3339(from + chrono::Duration::days(days))));
                list(Who::Admin, query)
            }
            Kind::ListText => list(Who::Admin, vec![("q", self.text(rng))]),
            Kind::ListChannel => list(
                Who::Admin,
                vec![("channel", (*one(rng, CHANNELS)).to_owned())],
            ),
            Kind::ListCounted => {
                let filter = *one(
                    rng,
                    &[
                        Kind::ListStore,
                        Kind::ListStatus,
                        Kind::ListPlaced,
                        Kind::ListText,
                        Kind::ListChannel,
                    ],
                );
                let mut planned = self.plan(filter, rng);
                planned.kind = kind;
                planned.query.push(("count", "true".to_owned()));
                planned
            }
            Kind::ListScoped => {
                let mut query = Vec::new();
                if rng.random_bool(0.5) {
                    query.push(("status", (*one(rng, STATUS_FILTERS)).to_owned()));
                }
                list(Who::Manager, query)
            }
            Kind::Detail => Planned {
                kind,
                who: Who::Admin,
                path: format!("/api/v1/admin/orders/{}", one(rng, &self.orders).order_id),
                query: Vec::new(),
            },
            Kind::DetailScoped => Planned {
                kind,
                who: Who::Manager,
                path: format!(
                    "/api/v1/admin/orders/{}",
                    one(rng, &self.manager_orders).order_id
                ),
                query: Vec::new(),
            },
        }
    }

    /// What an operator types into the search box: a customer's surname, a whole e-mail, or
    /// an order number, of an order that exists.
    fn text(&self, rng: &mut StdRng) -> String {
        let order = one(rng, &self.orders);
        let surname = order
            .customer_name
            .as_deref()
            .and_then(|name| name.split_once(' '))
            .map(|(_, surname)| surname.to_owned());
        match (rng.random_range(0..3), surname, &order.customer_email) {
            (0, Some(surname), _) => surname,
            (1, _, Some(email)) => email.clone(),
            _ => order.external_order_id.clone(),
        }
    }
}

/// The api under load: its address, the tokens, what to ask.
struct Target {
    http: reqwest::Client,
    base: String,
    admin: String,
    manager: String,
    material: Material,
}

/// One answered request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    kind: Kind,
    millis: f64,
    ok: bool,
}

impl Target {
    /// Sends `planned` (and for a page-2 request, then the page its cursor names), calling
    /// `record` with each answer; `due` is when the first was meant to be sent.
    async fn send(&self, planned: &Planned, due: Instant, record: &(dyn Fn(Sample) + Sync)) {
        let token = match planned.who {
            Who::Admin => &self.admin,
            Who::Manager => &self.manager,
        };
        let url = format!("{}{}", self.base, planned.path);
        let first_kind = if planned.kind == Kind::ListPage2 {
            Kind::ListStore
        } else {
            planned.kind
        };
        let answer = self
            .http
            .get(&url)
            .bearer_auth(token)
            .query(&planned.query)
            .send()
            .await;
        let body = match answer {
            Ok(response) if response.status().is_success() => response.bytes().await.ok(),
            _ => None,
        };
        record(Sample {
            kind: first_kind,
            millis: due.elapsed().as_secs_f64() * 1000.0,
            ok: body.is_some(),
        });
        if planned.kind != Kind::ListPage2 {
            return;
        }
        let cursor = body
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["next_cursor"].as_str().map(str::to_owned));
        let Some(cursor) = cursor else {
            record(Sample {
                kind: Kind::ListPage2,
                millis: 0.0,
                ok: false,
            });
            return;
        };
        let mut query = planned.query.clone();
        query.push(("cursor", cursor));
        let sent = Instant::now();
        let ok = match self
            .http
            .get(&url)
            .bearer_auth(token)
            .query(&query)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
            _ => false,
        };
        record(Sample {
            kind: Kind::ListPage2,
            millis: sent.elapsed().as_secs_f64() * 1000.0,
            ok,
        });
    }
}

/// What one phase of reads measured.
#[derive(Debug, Clone)]
struct Reads {
    seconds: f64,
    samples: Vec<Sample>,
    load: MachineLoad,
    busiest: Vec<(String, f64)>,
}

impl Reads {
    fn per_second(&self) -> f64 {
        self.samples.len() as f64 / self.seconds.max(f64::EPSILON)
    }

    fn errors(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// p50, p95, p99 (ms) and the count of the answered requests that `keep` selects.
    fn latency(&self, keep: impl Fn(Kind) -> bool) -> Latency {
        let mut millis: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.ok && keep(s.kind))
            .map(|s| s.millis)
            .collect();
        millis.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&millis, 50.0),
            p95: percentile(&millis, 95.0),
            p99: percentile(&millis, 99.0),
            count: millis.len(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    count: usize,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} / {:.1} / {:.1} ({})",
            self.p50, self.p95, self.p99, self.count
        )
    }
}

/// Sends the mix at `rate` per second for `duration`, at most `in_flight` at a time.
async fn paced(
    target: &Arc<Target>,
    rate: f64,
    duration: Duration,
    in_flight: usize,
    seed: u64,
) -> Reads {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut rng = StdRng::seed_from_u64(seed);
    let weights = total_weight(MIX);
    let cpu = CpuSample::now();
    let processes = ProcessSample::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        // The phase lasts `duration` by the clock, whether or not the server kept up.
        if due.duration_since(started) >= duration || started.elapsed() >= duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let planned = target
            .material
            .plan(pick(MIX, rng.random_range(0..weights)), &mut rng);
        let (target, samples) = (target.clone(), samples.clone());
        tasks.spawn(async move {
            let record = |s: Sample| {
                if let Ok(mut all) = samples.lock() {
                    all.push(s);
                }
            };
            target.send(&planned, due, &record).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    finish(samples, started, &cpu, &processes)
}

/// Sends the mix as fast as it is answered, `connections` requests at a time, for `duration`.
async fn flat_out(
    target: &Arc<Target>,
    duration: Duration,
    connections: usize,
    seed: u64,
) -> Reads {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let weights = total_weight(MIX);
    let cpu = CpuSample::now();
    let processes = ProcessSample::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..connections {
        let (target, samples) = (target.clone(), samples.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed + client as u64);
            let record = |s: Sample| {
                if let Ok(mut all) = samples.lock() {
                    all.push(s);
                }
            };
            while started.elapsed() < duration {
                let planned = target
                    .material
                    .plan(pick(MIX, rng.random_range(0..weights)), &mut rng);
                target.send(&planned, Instant::now(), &record).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    finish(samples, started, &cpu, &processes)
}

fn finish(
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
    cpu: &CpuSample,
    processes: &ProcessSample,
) -> Reads {
    let seconds = started.elapsed().as_secs_f64();
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Reads {
        seconds,
        samples,
        load: CpuSample::now().since(cpu),
        busiest: ProcessSample::now().busiest_since(processes, 6),
    }
}

/// What the pipeline phase measured.
#[derive(Debug, Clone)]
struct Lag {
    placed: usize,
    offered: f64,
    projected_completed: usize,
    completed_after: f64,
    /// (message type, lag to commit ms, lag to the transaction's start ms), one per event.
    events: Vec<(String, f64, f64)>,
    load: MachineLoad,
    busiest: Vec<(String, f64)>,
}

/// Everything the benchmark measured.
struct Figures {
    options: Options,
    loadavg_before: String,
    seeded: Seeded,
    sizes: Vec<TableSize>,
    sampled: usize,
    manager_stores: Vec<&'static str>,
    api_pool: String,
    paced: Reads,
    flat_out: Reads,
    lag: Lag,
}

/// Runs the benchmark, prints the figures and (if `write`) records them in
/// docs/benchmarks.md.
pub(crate) async fn run(settings: Settings, options: Options, write: bool) -> anyhow::Result<()> {
    let loadavg_before = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let parts: Vec<&str> = l.split_whitespace().take(3).collect();
            (parts.len() == 3).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let scratch = orderly_runtime::Scratch::new(&settings, "api").await?;
    let result = measure(&scratch.settings, &options, loadavg_before).await;
    if let Err(e) = scratch.remove().await {
        tracing::warn!(error = %format!("{e:#}"), "benchmark clean-up failed");
    }
    let figures = result?;
    crate::bench::report(
        "api",
        "Admin API: reads on a year of a platform's orders, and the projection's lag",
        &options.command(),
        &render(&figures),
        write,
    )
}

async fn measure(
    settings: &Settings,
    options: &Options,
    loadavg_before: String,
) -> anyhow::Result<Figures> {
    let stores = orderly_api::bench::stores(options.stores);
    let pool = orderly_api::bench::connect(&settings.database_url, LOADERS as u32 + 1).await?;
    eprintln!(
        "seeding the read model: {} orders in {} stores...",
        options.orders,
        stores.len()
    );
    let orders = options.orders;
    let seeded = orderly_api::bench::seed(&pool, orders, stores, LOADERS, move |n| {
        if n % 100_000 < 20_000 || n == orders {
            eprintln!("  {n} orders");
        }
    })
    .await?;
    eprintln!(
        "  written in {:.0} s, vacuumed and analysed in {:.0} s",
        seeded.load.as_secs_f64(),
        seeded.vacuum.as_secs_f64()
    );
    let sizes = orderly_api::bench::sizes(&pool).await?;
    let orders_sampled = orderly_api::bench::sample(&pool, SAMPLED).await?;

    // The pipeline's workers as `scripts/bench-pipeline` runs them (one lane, large
    // batches); the api worker with the settings it is given.
    let mut settings = settings.clone();
    for worker in [
        orderly_orders::NAME,
        orderly_inventory::NAME,
        orderly_fulfillment::NAME,
    ] {
        settings
            .workers
            .entry(worker.to_owned())
            .or_insert(ConsumerSettings {
                prefetch: 512,
                concurrency: 1,
                batch_size: 256,
                delivery_limit: 10,
            });
    }
    let api_consumer = settings.consumer_for(orderly_api::NAME);
    let api_pool = format!(
        "{} connections, shared by its consumer ({} lanes), relay and HTTP server",
        api_consumer.concurrency + 2,
        api_consumer.concurrency
    );
    let mut host = Host::new(settings.clone());
    host.declare(&topology::standard_specs(&settings)).await?;
    let addr = crate::workers::start_listening(&mut host, orderly_api::NAME)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the api worker did not say where it listens"))?;

    let manager_stores: Vec<&'static str> = stores
        .iter()
        .skip(3)
        .step_by(2)
        .take(2)
        .map(|s| s.id)
        .collect();
    let admin = token(&pool, "bench-admin@example.com", "order_admin", &[]).await?;
    let manager = token(
        &pool,
        "bench-manager@example.com",
        "account_manager",
        &manager_stores,
    )
    .await?;
    let manager_orders: Vec<Sampled> = orders_sampled
        .iter()
        .filter(|o| manager_stores.contains(&o.store_id.as_str()))
        .cloned()
        .collect();
    anyhow::ensure!(
        !manager_orders.is_empty(),
        "no sampled order in the account manager's stores {manager_stores:?}: seed more orders"
    );
    let target = Arc::new(Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(options.connections)
            .tcp_nodelay(true)
            .build()?,
        base: format!("http://{addr}"),
        admin,
        manager,
        material: Material {
            stores: stores.iter().map(|s| s.id).collect(),
            orders: orders_sampled,
            manager_orders,
            now: Utc::now(),
        },
    });
    let sampled = target.material.orders.len();
    let seconds = Duration::from_secs(options.seconds);

    eprintln!(
        "reads at {}/s, at most {} in flight: {} s warm-up, then {} s...",
        options.rate,
        options.connections,
        WARM_UP.as_secs(),
        options.seconds
    );
    paced(&target, options.rate, WARM_UP, options.connections, 1).await;
    let paced_reads = paced(&target, options.rate, seconds, options.connections, 2).await;
    eprintln!(
        "  {:.0} requests/s, lists p99 {:.1} ms, details p99 {:.1} ms",
        paced_reads.per_second(),
        paced_reads.latency(Kind::is_list).p99,
        paced_reads.latency(|k| !k.is_list()).p99
    );
    eprintln!(
        "reads flat out, {} at a time, for {} s...",
        options.connections, options.seconds
    );
    let flat = flat_out(&target, seconds, options.connections, 3).await;
    eprintln!("  {:.0} requests/s", flat.per_second());

    eprintln!(
        "projection lag: the pipeline at {} orders/s for {} s...",
        options.pipeline_rate, options.seconds
    );
    let lag = projection_lag(&mut host, &settings, &pool, options).await;
    host.stop(Duration::from_secs(10)).await;
    pool.close().await;
    let lag = lag?;
    Ok(Figures {
        options: options.clone(),
        loadavg_before,
        seeded,
        sizes,
        sampled,
        manager_stores,
        api_pool,
        paced: paced_reads,
        flat_out: flat,
        lag,
    })
}

/// A staff member with `role` (limited to `stores`) and a token of theirs, issued as
/// `orderly staff add` and `orderly staff token` issue them.
async fn token(pool: &PgPool, email: &str, role: &str, stores: &[&str]) -> anyhow::Result<String> {
    let stores: Vec<String> = stores.iter().map(|s| (*s).to_owned()).collect();
    orderly_api::staff::add(pool, email, role, &stores).await?;
    Ok(orderly_api::staff::issue_token(pool, email, 1).await?.token)
}

/// Notes when each api transaction that wrote an inbox row committed: a constraint trigger
/// deferred to commit, in the scratch database only.
const COMMIT_PROBE: &str = "
create schema bench_probe;
create table bench_probe.api_commits (
  message_id   uuid primary key,
  message_type text not null,
  committed_at timestamptz not null
);
create function bench_probe.note_commit() returns trigger language plpgsql as $$
begin
  insert into bench_probe.api_commits values (new.message_id, new.message_type, clock_timestamp())
  on conflict do nothing;
  return null;
end $$;
create constraint trigger note_commit after insert on api.inbox
  deferrable initially deferred for each row execute function bench_probe.note_commit();
";

async fn projection_lag(
    host: &mut Host,
    settings: &Settings,
    pool: &PgPool,
    options: &Options,
) -> anyhow::Result<Lag> {
    sqlx::raw_sql(COMMIT_PROBE).execute(pool).await?;
    for worker in [
        orderly_orders::NAME,
        orderly_inventory::NAME,
        orderly_fulfillment::NAME,
    ] {
        crate::workers::start(host, worker).await?;
    }
    let names = Names::new(settings.namespace.clone());
    let connection = sim::connect(&settings.broker_url, &names).await?;
    let publisher = Publisher::new(&connection, names.clone()).await?;
    sim::carrier(
        &connection,
        &names,
        publisher.clone(),
        Duration::ZERO,
        false,
        false,
    )
    .await?;
    let orders = (options.pipeline_rate * options.seconds as f64).ceil() as usize;
    let mut stock = sim::tap(&connection, &names, &["stock.level_changed"]).await?;
    sim::seed(
        &publisher,
        u32::try_from(orders / 10 + 10).unwrap_or(u32::MAX),
    )
    .await?;
    sim::wait_for_catalog(&settings.database_url, Duration::from_secs(60)).await?;
    let mut seen = Observed::default();
    let wait = Instant::now();
    while seen.stock.len() < sim::catalog().len() {
        anyhow::ensure!(
            wait.elapsed() < Duration::from_secs(60),
            "the stock was not counted within a minute"
        );
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), stock.recv()).await {
            seen.apply(&m);
        }
    }
    drop(stock);

    let started_at = Utc::now();
    let started = Instant::now();
    let cpu = CpuSample::now();
    let processes = ProcessSample::now();
    let producer =
        crate::loadgen::place_orders(publisher, orders, options.pipeline_rate, "BA", started);
    // Done when the read model shows every order completed.
    let deadline = Duration::from_secs(options.seconds + 120);
    let mut completed = 0;
    let mut completed_after = f64::NAN;
    while started.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        completed = usize::try_from(
            sqlx::query_scalar::<_, i64>(
                "select count(*) from orders where placed_at >= $1 and completed_at is not null",
            )
            .bind(started_at - chrono::Duration::seconds(5))
            .fetch_one(pool)
            .await?,
        )
        .unwrap_or(0);
        if completed >= orders {
            completed_after = started.elapsed().as_secs_f64();
            break;
        }
    }
    let (sent, offered_for) = producer.await??;
    let load = CpuSample::now().since(&cpu);
    let busiest = ProcessSample::now().busiest_since(&processes, 6);
    let _ = connection.close(200, "done".into()).await;
    Ok(Lag {
        placed: sent.len(),
        offered: sent.len() as f64 / offered_for.as_secs_f64().max(f64::EPSILON),
        projected_completed: completed,
        completed_after,
        events: lag_of_events(pool).await?,
        load,
        busiest,
    })
}

/// Every event the api projected that a worker of this database sent: (type, ms from its
/// `occurred_at` to the commit of the api's transaction, ms to that transaction's start).
/// Reads every outbox of the database (a benchmark's view, not a worker's).
async fn lag_of_events(pool: &PgPool) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "select table_schema::text from information_schema.tables \
         where table_name = 'outbox' and table_schema <> $1",
    )
    .bind(orderly_api::NAME)
    .fetch_all(pool)
    .await?;
    let sent = schemas
        .iter()
        .map(|schema| {
            format!(
                "select message_id, (body ->> 'occurred_at')::timestamptz as occurred_at \
                 from \"{}\".outbox",
                schema.replace('"', "\"\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" union all ");
    let sql = format!(
        "select c.message_type, \
           1000 * extract(epoch from c.committed_at - s.occurred_at)::float8, \
           1000 * extract(epoch from i.handled_at - s.occurred_at)::float8 \
         from bench_probe.api_commits c \
         join ({sent}) s using (message_id) \
         join api.inbox i using (message_id)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?)
}

fn busiest(list: &[(String, f64)]) -> String {
    list.iter()
        .map(|(command, percent)| format!("{command} {percent:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn render(f: &Figures) -> String {
    let o = &f.options;
    let mut s = String::new();
    let _ = writeln!(s, "| measure | figure | target |");
    let _ = writeln!(s, "|---|---|---|");
    let _ = writeln!(
        s,
        "| machine before the run (load average 1 / 5 / 15 min) | {} | |",
        f.loadavg_before
    );
    let seeded = &f.seeded;
    let _ = writeln!(
        s,
        "| read model, written with SQL (`orderly_api::bench`) | {} orders in {} stores; {} status changes, {} shipments, {} invoices and credit notes, {} cancellations; {:.0} s, then vacuum and analyse {:.0} s | |",
        seeded.orders,
        o.stores.clamp(1, orderly_api::bench::STORES.len()),
        seeded.history,
        seeded.shipments,
        seeded.documents,
        seeded.cancellations,
        seeded.load.as_secs_f64(),
        seeded.vacuum.as_secs_f64()
    );
    let total: i64 = f.sizes.iter().map(|t| t.table_bytes + t.index_bytes).sum();
    let per_million = mib(total) * 1_000_000.0 / (seeded.orders.max(1) as f64);
    let tables = f
        .sizes
        .iter()
        .filter(|t| t.table_bytes + t.index_bytes > 1024 * 1024)
        .map(|t| {
            format!(
                "{} {:.0} + {:.0} indexes",
                t.table,
                mib(t.table_bytes),
                mib(t.index_bytes)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = writeln!(
        s,
        "| **api schema on disk, per million orders** (tables, TOAST and indexes) | **{:.0} MiB** ({:.0} MiB in all; MiB: {tables}) | |",
        per_million,
        mib(total)
    );
    let _ = writeln!(s, "| the api's database pool | {} | |", f.api_pool);
    let _ = writeln!(
        s,
        "| requests | the mix below, {} sampled orders, account manager of {}; latency from when each request was due | |",
        f.sampled,
        f.manager_stores.join(" and ")
    );
    let p = &f.paced;
    let lists = p.latency(Kind::is_list);
    let details = p.latency(|k| !k.is_list());
    let _ = writeln!(
        s,
        "| **mixed reads per second**, asked {:.0}/s, at most {} in flight, {} s | **{:.0}** ({} failed) | ≥ 2,000: {} |",
        o.rate,
        o.connections,
        o.seconds,
        p.per_second(),
        p.errors(),
        met(p.per_second() >= 2_000.0 * 0.99)
    );
    let _ = writeln!(
        s,
        "| **filtered list, p50 / p95 / p99 ms** (requests) | **{lists}** | p99 < 50: {} |",
        met(lists.p99 < 50.0)
    );
    let _ = writeln!(
        s,
        "| **order detail, p50 / p95 / p99 ms** (requests) | **{details}** | p99 < 20: {} |",
        met(details.p99 < 20.0)
    );
    let weights = total_weight(MIX);
    for (kind, weight) in MIX {
        let _ = writeln!(
            s,
            "| {} ({:.0} % of the mix), p50 / p95 / p99 ms | {} | |",
            kind.label(),
            100.0 * f64::from(*weight) / f64::from(weights),
            p.latency(|k| k == *kind)
        );
    }
    let _ = writeln!(
        s,
        "| machine during the paced reads | {}; busiest: {} | |",
        p.load,
        busiest(&p.busiest)
    );
    let flat = &f.flat_out;
    let _ = writeln!(
        s,
        "| same mix flat out, {} at a time: requests/s; list / detail p99 ms | {:.0} ({} failed); {:.1} / {:.1} | |",
        o.connections,
        flat.per_second(),
        flat.errors(),
        flat.latency(Kind::is_list).p99,
        flat.latency(|k| !k.is_list()).p99
    );
    let _ = writeln!(
        s,
        "| machine during the flat-out reads | {}; busiest: {} | |",
        flat.load,
        busiest(&flat.busiest)
    );
    let lag = &f.lag;
    let mut commit: Vec<f64> = lag.events.iter().map(|e| e.1).collect();
    commit.sort_by(f64::total_cmp);
    let mut start: Vec<f64> = lag.events.iter().map(|e| e.2).collect();
    start.sort_by(f64::total_cmp);
    let _ = writeln!(
        s,
        "| pipeline (orders, inventory, fulfillment, api, carrier) for the lag | {} orders sent at {:.1}/s (asked {:.0}/s); {} completed in the read model{} | |",
        lag.placed,
        lag.offered,
        o.pipeline_rate,
        lag.projected_completed,
        if lag.completed_after.is_finite() {
            format!(
                ", the last {:.1} s after the first was sent",
                lag.completed_after
            )
        } else {
            " (not all within the deadline)".to_owned()
        }
    );
    let p99 = percentile(&commit, 99.0);
    let _ = writeln!(
        s,
        "| **projection lag, event `occurred_at` → api commit: p50 / p99 ms** ({} events) | **{:.0} / {:.0}** | p99 < 1,000: {} |",
        commit.len(),
        percentile(&commit, 50.0),
        p99,
        met(p99 < 1_000.0)
    );
    let _ = writeln!(
        s,
        "| of which until the api's transaction began (`inbox.handled_at`): p50 / p99 ms | {:.0} / {:.0} | |",
        percentile(&start, 50.0),
        percentile(&start, 99.0)
    );
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (message_type, millis, _) in &lag.events {
        by_type.entry(message_type).or_default().push(*millis);
    }
    let per_type = by_type
        .iter_mut()
        .map(|(message_type, millis)| {
            millis.sort_by(f64::total_cmp);
            format!("{message_type} {:.0}", percentile(millis, 99.0))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "| lag p99 by event type, ms | {per_type} | |");
    let _ = writeln!(
        s,
        "| machine during the pipeline | {}; busiest: {} | |",
        lag.load,
        busiest(&lag.busiest)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_roll_picks_a_kind_in_proportion_to_its_weight() {
        let total = total_weight(MIX);
        assert_eq!(total, 100, "the mix is in percent");
        let mut counts: BTreeMap<Kind, u32> = BTreeMap::new();
        for roll in 0..total {
            *counts.entry(pick(MIX, roll)).or_default() += 1;
        }
        for (kind, weight) in MIX {
            assert_eq!(counts.get(kind), Some(weight), "{kind:?}");
        }
        let lists: u32 = MIX
            .iter()
            .filter(|(k, _)| k.is_list())
            .map(|(_, w)| w)
            .sum();
        assert_eq!(lists, 62, "lists and details as documented");
        assert_eq!(
            pick(MIX, total + 5),
            Kind::DetailScoped,
            "past the end: the last"
        );
    }

    fn material() -> Material {
        let order = |store: &str, name: Option<&str>| Sampled {
            order_id: uuid::Uuid::now_v7(),
            store_id: store.to_owned(),
            external_order_id: "1000042".to_owned(),
            customer_name: name.map(str::to_owned),
            customer_email: name.map(|_| "anna.de.jong@example.nl".to_owned()),
            placed_at: Utc::now(),
        };
        Material {
            stores: vec!["shop-de", "bol-nl"],
            orders: vec![
                order("shop-de", Some("Anna de Jong")),
                order("bol-nl", None),
            ],
            manager_orders: vec![order("bol-nl", None)],
            now: Utc::now(),
        }
    }

    #[test]
    fn each_kind_asks_what_its_name_says() {
        let material = material();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            for (kind, _) in MIX {
                let planned = material.plan(*kind, &mut rng);
                let names: Vec<&str> = planned.query.iter().map(|(n, _)| *n).collect();
                assert_eq!(planned.kind, *kind);
                assert_eq!(
                    planned.who == Who::Manager,
                    matches!(kind, Kind::ListScoped | Kind::DetailScoped),
                    "{kind:?}"
                );
                assert_eq!(
                    planned.path.starts_with("/api/v1/admin/orders/"),
                    !kind.is_list(),
                    "{kind:?}"
                );
                let expected: &[&str] = match kind {
                    Kind::ListStore | Kind::ListPage2 => &["store"],
                    Kind::ListStatus => &["status"],
                    Kind::ListPlaced => &["placed_from", "placed_to"],
                    Kind::ListText => &["q"],
                    Kind::ListChannel => &["channel"],
                    Kind::ListCounted => &["count"],
                    Kind::ListScoped | Kind::Detail | Kind::DetailScoped => &[],
                };
                for name in expected {
                    assert!(names.contains(name), "{kind:?}: {names:?}");
                }
                assert_eq!(
                    names.contains(&"count"),
                    *kind == Kind::ListCounted,
                    "{kind:?}: {names:?}"
                );
                if *kind == Kind::DetailScoped {
                    let id = &material.manager_orders[0].order_id;
                    assert!(planned.path.ends_with(&id.to_string()), "only their orders");
                }
            }
        }
    }

    #[test]
    fn a_search_is_a_surname_an_e_mail_or_an_order_number_of_a_real_order() {
        let material = material();
        let mut rng = StdRng::seed_from_u64(2);
        let asked: std::collections::BTreeSet<String> =
            (0..300).map(|_| material.text(&mut rng)).collect();
        let expected: std::collections::BTreeSet<String> =
            ["de Jong", "anna.de.jong@example.nl", "1000042"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        assert_eq!(asked, expected);
    }

    #[test]
    fn the_defaults_are_the_command_lines() {
        #[derive(clap::Parser)]
        struct Line {
            #[command(flatten)]
            options: Options,
        }
        let parsed = <Line as clap::Parser>::parse_from(["bench-api"]).options;
        assert_eq!(parsed, Options::default());
    }

    #[test]
    fn the_command_names_only_what_differs_from_the_defaults() {
        assert_eq!(
            Options::default().command(),
            "cargo run --release -p orderly --features bench -- bench api"
        );
        let options = Options {
            orders: 20_000,
            seconds: 5,
            ..Options::default()
        };
        assert_eq!(
            options.command(),
            "cargo run --release -p orderly --features bench -- bench api --orders 20000 --seconds 5"
        );
    }
}
