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
//!
//! Parts: [`mix`] (what is asked), [`load`] (asking it over HTTP, and what a phase
//! measured), [`lag`] (the pipeline phase), [`render`] (the section).

mod lag;
mod load;
mod mix;
mod render;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orderly_api::bench::{Sampled, Seeded, TableSize};
use orderly_runtime::{Host, Settings, config::ConsumerSettings, topology};
use sqlx::PgPool;

use lag::{Lag, projection_lag};
use load::{Reads, Target, flat_out, paced};
use mix::{Kind, Material};
use render::render;

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
        crate::bench::command_line("api", &options)
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
        "  written in {:.0} s, vacuumed, analysed and checkpointed in {:.0} s",
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
                ..ConsumerSettings::default()
            });
    }
    let api_consumer = settings.consumer_for(orderly_api::NAME);
    let api_pool = format!(
        "{} connections, shared by its consumer ({} lanes), relay and HTTP server",
        api_consumer.concurrency + 2,
        api_consumer.concurrency
    );
    // The benchmark's clients are a few tokens asking thousands of times a second: the
    // per-token and per-address rate limits (a protection, 20/s by default) would measure
    // the limiter, not the read path. They have their own test (`tests/rate_limits.rs`).
    let api_settings = orderly_api::ApiSettings {
        rate_per_second: 0.0,
        address_rate_per_second: 0.0,
        ..settings.section("api")?
    };
    let settings = settings.with_section("api", api_settings);
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

#[cfg(test)]
mod tests {
    use super::*;

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
