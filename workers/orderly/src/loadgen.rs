//! `orderly loadgen`: the simulator at volume against running workers, measuring orders per
//! second end to end and the latency from `order.placed` to each stage, plus the messages an
//! order costs (counted in the workers' outboxes plus what the simulator sent) and the
//! workers' memory.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::bench::percentile;
use crate::sim::{self, Observed, Publisher};
use orderly_runtime::{Settings, broker::Names};

/// What a run measured.
struct Run {
    orders: usize,
    rate: f64,
    /// Orders per second the load generator actually sent.
    offered: f64,
    /// How the machine's cores were used from the first order to the last completion.
    load: orderly_runtime::machine::MachineLoad,
    elapsed: f64,
    completed: usize,
    messages: usize,
    stages: Vec<(&'static str, f64, f64, f64)>,
    memory: Vec<(u32, String, u64)>,
    /// The workers' consumer settings (the load generator runs with the same environment).
    consumer: String,
    /// The whole life (invoices and notifications) was measured, not only the pipeline.
    whole_life: bool,
    /// CPU milliseconds per order: (who, ms), the workers by pid, PostgreSQL and RabbitMQ
    /// (every process of theirs), the load generator.
    cpu: Vec<(String, f64)>,
    /// Customer notifications asked for, per order, on average.
    notifications: f64,
}

/// Customer notifications the simulator's stores ask for in an order's life under their
/// default rules: the confirmation, the dispatch, the delivery and the invoice.
const NOTIFICATIONS_PER_ORDER: usize = 4;

/// Whether `o` has lived its whole life: completed and, when `whole_life`, invoiced with
/// every notification asked for.
fn done(o: &sim::OrderView, whole_life: bool) -> bool {
    o.stages.contains_key("completed")
        && (!whole_life
            || (o.stages.contains_key("invoiced") && o.notifications >= NOTIFICATIONS_PER_ORDER))
}

/// Resident memory (VmHWM: the peak) of a process, in KiB, with its command line.
fn memory(pid: u32) -> Option<(String, u64)> {
    Some((command_line(pid)?, status_kib(pid, "VmHWM")?))
}

/// A field of `/proc/<pid>/status` given in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A process's command line, its arguments separated by spaces.
pub(crate) fn command_line(pid: u32) -> Option<String> {
    let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
    Some(cmd.replace('\0', " ").trim().to_owned())
}

/// The simulated outside world a load run drives the workers with, ready for the first
/// order: the storefront's publisher, the carrier, a tap on the events the figures need,
/// the catalog seeded and its stock in place.
pub(crate) struct Rig {
    pub(crate) connection: lapin::Connection,
    pub(crate) publisher: Publisher,
    pub(crate) events: tokio::sync::mpsc::UnboundedReceiver<orderly_contracts::RawEnvelope>,
    pub(crate) seen: Observed,
    _carrier: tokio::task::JoinHandle<()>,
}

impl Rig {
    /// Connects, sends the stores' settings when `whole_life`, starts the carrier and seeds
    /// a catalog with stock for `orders` orders.
    pub(crate) async fn prepare(
        settings: &Settings,
        names: &Names,
        orders: usize,
        whole_life: bool,
    ) -> anyhow::Result<Self> {
        let connection = sim::connect(&settings.broker_url, names).await?;
        // The storefront and the carrier outlive a broker restart: the publisher re-sends
        // until confirmed and the carrier acknowledges a shipment request only once its
        // scans are confirmed (docs/chaos.md). The figures' tap below is a private queue and
        // does not: a broker restart mid-run loses the events it would have counted (the
        // fault suite counts from the databases instead).
        let publisher = Publisher::resilient(&settings.broker_url, names.clone()).await?;
        let observed = if whole_life {
            sim::TIMED_WHOLE_LIFE
        } else {
            sim::TIMED
        };
        let mut events = sim::tap(&connection, names, observed).await?;
        if whole_life {
            // The stores' invoice and notification settings first, as a merchant's setup
            // does.
            sim::store_settings(&publisher).await?;
        }
        let carrier =
            sim::carrier_resilient(&settings.broker_url, names, publisher.clone()).await?;
        let mut seen = Observed::default();
        let scale = u32::try_from(orders / 10 + 10).unwrap_or(u32::MAX);
        eprintln!("seeding catalog and stock (scale {scale})...");
        sim::seed(&publisher, scale).await?;
        sim::wait_for_catalog(&settings.database_url, Duration::from_secs(60)).await?;
        // Stock must be in place before the first order: wait for its level events.
        let wait = Instant::now();
        while seen.stock.len() < sim::catalog().len() && wait.elapsed() < Duration::from_secs(30) {
            if let Some(m) = tokio::time::timeout(Duration::from_millis(200), events.recv())
                .await
                .ok()
                .flatten()
            {
                seen.apply(&m);
            }
        }
        Ok(Self {
            connection,
            publisher,
            events,
            seen,
            _carrier: carrier,
        })
    }
}

/// Messages the workers have written to their outboxes so far (each is published once),
/// counted in the database rather than on a tap bound to every routing key, which would make
/// the broker route a copy of every message to the load generator.
async fn published(database_url: &str) -> anyhow::Result<usize> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    let schemas: Vec<String> = sqlx::query_scalar(
        "select table_schema::text from information_schema.tables where table_name = 'outbox'",
    )
    .fetch_all(&pool)
    .await?;
    let mut total = 0i64;
    for schema in schemas {
        // The schema name comes from the catalog and is quoted.
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from \"{}\".outbox",
            schema.replace('"', "\"\"")
        )))
        .fetch_one(&pool)
        .await?;
        total += n;
    }
    pool.close().await;
    Ok(usize::try_from(total).unwrap_or(0))
}

/// Runs the load and prints (and optionally records) the figures.
pub(crate) async fn run(
    settings: Settings,
    orders: usize,
    rate: f64,
    worker_pids: Vec<u32>,
    section: Option<&str>,
    whole_life: bool,
) -> anyhow::Result<()> {
    let names = Names::new(settings.namespace.clone());
    let Rig {
        connection,
        publisher,
        mut events,
        mut seen,
        _carrier,
    } = Rig::prepare(&settings, &names, orders, whole_life).await?;
    let published_before = published(&settings.database_url).await?;
    let sent_before = publisher.sent();

    eprintln!("placing {orders} orders at {rate} orders/s...");
    let mut placed: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    let cpu = orderly_runtime::machine::CpuSample::now();
    let processes = orderly_runtime::machine::ProcessSample::now();
    let producer = sim::place_orders(publisher.clone(), orders, rate, "LG", started);

    let deadline = Duration::from_secs_f64(orders as f64 / rate + 120.0);
    let mut completed_at = None;
    while started.elapsed() < deadline {
        tokio::select! {
            Some(m) = events.recv() => seen.apply(&m),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let completed = seen.orders.values().filter(|o| done(o, whole_life)).count();
        if completed >= orders {
            completed_at = Some(started.elapsed());
            break;
        }
    }
    let (sent, offered_for) = producer.await??;
    for (ext, at) in sent {
        placed.insert(ext, at);
    }
    let load = orderly_runtime::machine::CpuSample::now().since(&cpu);
    let used = orderly_runtime::machine::ProcessSample::now().seconds_since(&processes);
    // What the workers published (their outboxes), and what the outside world sent (the
    // orders and the carrier's updates).
    let messages = published(&settings.database_url).await? - published_before
        + (publisher.sent() - sent_before);
    let elapsed = completed_at
        .unwrap_or_else(|| started.elapsed())
        .as_secs_f64();
    let completed = seen.orders.values().filter(|o| done(o, whole_life)).count();
    let cpu = cpu_per_order(&used, &worker_pids, orders);
    let notifications =
        seen.orders.values().map(|o| o.notifications).sum::<usize>() as f64 / orders.max(1) as f64;

    let mut stages = Vec::new();
    let timed: &[&'static str] = if whole_life {
        &[
            "accepted",
            "reserved",
            "dispatched",
            "delivered",
            "completed",
            "invoiced",
            "notified",
        ]
    } else {
        &[
            "accepted",
            "reserved",
            "dispatched",
            "delivered",
            "completed",
        ]
    };
    for &stage in timed {
        let mut lat: Vec<f64> = seen
            .orders
            .values()
            .filter_map(|o| {
                Some(
                    o.stages
                        .get(stage)?
                        .duration_since(*placed.get(&o.external_id)?)
                        .as_secs_f64()
                        * 1000.0,
                )
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        stages.push((
            stage,
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            lat.len() as f64,
        ));
    }
    let memory = worker_pids
        .iter()
        .filter_map(|pid| memory(*pid).map(|(cmd, kib)| (*pid, cmd, kib)))
        .collect();
    let run = Run {
        orders,
        rate,
        offered: orders as f64 / offered_for.as_secs_f64().max(f64::EPSILON),
        load,
        elapsed,
        completed,
        messages,
        stages,
        memory,
        consumer: format!(
            "prefetch {}, lanes {}, batch {}",
            settings.consumer.prefetch, settings.consumer.concurrency, settings.consumer.batch_size
        ),
        whole_life,
        cpu,
        notifications,
    };
    let name = section.unwrap_or("pipeline");
    let mut command = if name == "pipeline" {
        format!("scripts/bench-pipeline {orders} {rate}")
    } else {
        format!("SECTION={name} scripts/bench-pipeline {orders} {rate}")
    };
    if whole_life {
        command = format!("WHOLE_LIFE=1 {command}");
    }
    let title = if whole_life {
        "Whole order life: orders, inventory, fulfillment, invoicing and notifications as five processes, driven by `orderly loadgen` (+ simulated carrier)"
    } else {
        "Order pipeline: orders → inventory → fulfillment as three processes, driven by `orderly loadgen` (+ simulated carrier)"
    };
    crate::bench::report(name, title, &command, &render(&run), section.is_some())?;
    let _ = connection.close(200, "done".into()).await;
    anyhow::ensure!(
        completed == orders,
        "only {completed} of {orders} orders completed within the deadline"
    );
    Ok(())
}

/// CPU milliseconds per order of each worker process (by pid, named by its command line),
/// of PostgreSQL and of RabbitMQ (all their processes), and of this load generator.
fn cpu_per_order(
    used: &[(u32, String, f64)],
    workers: &[u32],
    orders: usize,
) -> Vec<(String, f64)> {
    let per = |seconds: f64| 1000.0 * seconds / orders.max(1) as f64;
    let mut out = Vec::new();
    for pid in workers {
        let seconds: f64 = used
            .iter()
            .filter(|(p, _, _)| p == pid)
            .map(|(_, _, s)| s)
            .sum();
        let name = memory(*pid).map_or_else(|| format!("pid {pid}"), |(cmd, _)| cmd);
        out.push((format!("`{name}`"), per(seconds)));
    }
    for (label, command) in [("PostgreSQL", "postgres"), ("RabbitMQ", "beam.smp")] {
        let seconds: f64 = used
            .iter()
            .filter(|(_, c, _)| c == command)
            .map(|(_, _, s)| s)
            .sum();
        out.push((label.to_owned(), per(seconds)));
    }
    let me = std::process::id();
    let seconds: f64 = used
        .iter()
        .filter(|(p, _, _)| *p == me)
        .map(|(_, _, s)| s)
        .sum();
    out.push(("the load generator".to_owned(), per(seconds)));
    out
}

fn render(r: &Run) -> String {
    let mut s = format!(
        "| measure | figure |\n|---|---|\n\
         | orders asked for, orders/s | {:.0} |\n\
         | orders sent by the load generator, orders/s | {:.1} |\n\
         | orders completed | {} of {} |\n\
         | **end-to-end throughput, placed → {}, orders/s** | **{:.1}** |\n\
         | messages published per order (the workers' outboxes, the orders and the carrier's updates) | {:.1} |\n\
         | machine from the first order to the last completion | {} |\n\
         | consumer settings of each worker process | {} |\n",
        r.rate,
        r.offered,
        r.completed,
        r.orders,
        if r.whole_life {
            "completed, invoiced and every notification asked"
        } else {
            "completed"
        },
        r.completed as f64 / r.elapsed,
        r.messages as f64 / r.orders.max(1) as f64,
        r.load,
        r.consumer,
    );
    if r.whole_life {
        s.push_str(&format!(
            "| customer notifications asked per order | {:.2} |\n",
            r.notifications
        ));
    }
    let cpu: Vec<String> = r
        .cpu
        .iter()
        .map(|(who, ms)| format!("{who} {ms:.2}"))
        .collect();
    let total: f64 = r.cpu.iter().map(|(_, ms)| ms).sum();
    s.push_str(&format!(
        "| CPU per order, ms (all of these {total:.1}) | {} |\n",
        cpu.join("; ")
    ));
    for (stage, p50, p99, n) in &r.stages {
        s.push_str(&format!(
            "| placed → {stage}: p50 / p99 ms ({n:.0} orders) | {p50:.0} / {p99:.0} |\n"
        ));
    }
    for (pid, cmd, kib) in &r.memory {
        s.push_str(&format!(
            "| peak resident memory of `{cmd}` (pid {pid}), MiB | {:.1} |\n",
            *kib as f64 / 1024.0
        ));
    }
    s
}
