//! `orderly soak`: the load generator at a steady rate for a long time, sampling what must not
//! grow without bound (issue 19, item 7): each worker's resident memory, the broker's, the
//! database's tables and indexes (business data apart from the inboxes and outboxes, which
//! grow with the messages until their retention windows prune them), and the latency of the
//! orders placed in each window, so that a leak, a bloating table or a drifting p99 shows as
//! a trend across the rows of one table.

use std::time::{Duration, Instant};

use crate::bench::percentile;
use crate::loadgen::{Rig, command_line, status_kib};
use crate::sim;
use orderly_runtime::{Settings, broker::Names};

/// What was sampled at the end of one window.
struct Sample {
    /// Seconds since the first order.
    at: f64,
    /// Resident memory (VmRSS) of each worker process, KiB, in `--worker-pid` order.
    workers: Vec<Option<u64>>,
    /// Resident memory of the broker's processes (`beam.smp`), KiB.
    broker: u64,
    /// Messages in the namespace's queues (the outside systems' queues nobody drains in a
    /// benchmark included), if `rabbitmqctl` answered.
    queued: Option<u64>,
    /// Bytes of the database's relations, tables with their indexes and TOAST.
    sizes: Sizes,
    /// Orders completed so far.
    completed: usize,
}

/// Bytes on disk by kind of table, every worker schema together.
#[derive(Default, Clone, Copy)]
struct Sizes {
    business: i64,
    inbox: i64,
    outbox: i64,
}

/// The orders placed in one window and how long they took to complete.
#[derive(Default)]
struct Window {
    placed: usize,
    completed: usize,
    p50: f64,
    p99: f64,
}

async fn sizes(pool: &sqlx::PgPool) -> anyhow::Result<Sizes> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select case when c.relname in ('inbox', 'outbox') then c.relname else 'business' end,
                sum(pg_total_relation_size(c.oid))::bigint
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'p', 'm')
           and n.nspname not in ('pg_catalog', 'information_schema')
           and n.nspname not like 'pg_toast%'
         group by 1",
    )
    .fetch_all(pool)
    .await?;
    let mut sizes = Sizes::default();
    for (kind, bytes) in rows {
        match kind.as_str() {
            "inbox" => sizes.inbox = bytes,
            "outbox" => sizes.outbox = bytes,
            _ => sizes.business = bytes,
        }
    }
    Ok(sizes)
}

/// Resident memory of every `beam.smp` process (the broker node), KiB.
fn broker_kib() -> u64 {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(())?;
            status_kib(pid, "VmRSS")
        })
        .sum()
}

/// Messages in the queues of `namespace`, as `rabbitmqctl` lists them.
fn queued(namespace: &str) -> Option<u64> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "messages"])
        .output()
        .ok()?;
    out.status.success().then_some(())?;
    let prefix = format!("{namespace}.");
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (name, n) = line.split_once('\t')?;
                name.starts_with(&prefix)
                    .then(|| n.trim().parse::<u64>().ok())?
            })
            .sum(),
    )
}

/// Plays what the rest of a platform does in production and a benchmark's machine does not:
/// the outside systems drain their queues (each `out.*` queue nobody consumes; the simulated
/// carrier consumes `out.warehouse`), and so do the workers not running here (none consumes
/// any of their partitions): their queues would otherwise fill the broker for half an hour
/// and then refuse the events they share with the running workers. Drains without
/// acknowledgements. Returns the outside queues and the workers it drains, for the report.
async fn outside_world(
    connection: &lapin::Connection,
    settings: &Settings,
    names: &Names,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    use orderly_runtime::topology::{self, QueueKind};
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let (mut outside, mut workers) = (Vec::new(), Vec::new());
    for spec in topology::standard_specs(settings) {
        let queues = match spec.kind {
            QueueKind::Outbound { .. } => vec![names.queue(&spec.name)],
            QueueKind::Worker { partitions, .. } => names.partition_queues(&spec.name, partitions),
        };
        let mut consumers = 0;
        for queue in &queues {
            consumers += channel
                .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                .await?
                .consumer_count();
        }
        if consumers > 0 {
            continue;
        }
        for queue in &queues {
            drain(&channel, queue).await?;
        }
        match spec.kind {
            QueueKind::Outbound { .. } => outside.push(format!("`{}`", spec.name)),
            QueueKind::Worker { .. } => workers.push(format!("`{}`", spec.name)),
        }
    }
    Ok((outside, workers))
}

/// Consumes `queue` without acknowledgements until the connection closes.
async fn drain(channel: &lapin::Channel, queue: &str) -> anyhow::Result<()> {
    use lapin::options::BasicConsumeOptions;
    let consumer = channel
        .basic_consume(
            queue.into(),
            format!("soak-drain-{queue}").as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await?;
    tokio::spawn(futures_util::StreamExt::for_each(consumer, |_| async {}));
    Ok(())
}

/// Places `rate` orders a second for `minutes`, samples every `window`, prints the table and
/// records it as the `soak` section of docs/benchmarks.md (unless `write` is false).
pub(crate) async fn run(
    settings: Settings,
    minutes: f64,
    rate: f64,
    window: Duration,
    worker_pids: Vec<u32>,
    write: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        minutes > 0.0 && rate > 0.0,
        "--minutes and --rate must be positive"
    );
    anyhow::ensure!(!window.is_zero(), "--window-seconds must be positive");
    let names = Names::new(settings.namespace.clone());
    let orders = (minutes * 60.0 * rate).round() as usize;
    let Rig {
        connection,
        publisher,
        mut events,
        mut seen,
        ..
    } = Rig::prepare(&settings, &names, orders, false).await?;
    let (outside, absent) = outside_world(&connection, &settings, &names).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&settings.database_url)
        .await?;
    let sample = |at: f64, completed: usize| {
        let pool = pool.clone();
        let pids = worker_pids.clone();
        let namespace = settings.namespace.clone();
        async move {
            anyhow::Ok(Sample {
                at,
                workers: pids.iter().map(|pid| status_kib(*pid, "VmRSS")).collect(),
                broker: broker_kib(),
                queued: tokio::task::spawn_blocking(move || queued(&namespace)).await?,
                sizes: sizes(&pool).await?,
                completed,
            })
        }
    };
    let done = |seen: &sim::Observed| {
        seen.orders
            .values()
            .filter(|o| o.stages.contains_key("completed"))
            .count()
    };

    eprintln!(
        "soak: {orders} orders at {rate} orders/s for {minutes} min, a sample every {} s...",
        window.as_secs()
    );
    let mut samples = vec![sample(0.0, 0).await?];
    let started = Instant::now();
    let producer = sim::place_orders(publisher.clone(), orders, rate, "SK", started);
    let deadline = Duration::from_secs_f64(minutes * 60.0 + 120.0);
    let mut next_sample = window;
    let (mut completed, mut counted) = (0, Instant::now());
    while started.elapsed() < deadline && completed < orders {
        tokio::select! {
            Some(m) = events.recv() => seen.apply(&m),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        // Counting walks every order seen: once a second is enough.
        if counted.elapsed() >= Duration::from_secs(1) {
            completed = done(&seen);
            counted = Instant::now();
        }
        if started.elapsed() >= next_sample {
            let s = sample(started.elapsed().as_secs_f64(), completed).await?;
            eprintln!(
                "  {:>5.0} s: {completed} of {orders} completed, broker {:.0} MiB, tables {:.1} MiB",
                s.at,
                s.broker as f64 / 1024.0,
                (s.sizes.business + s.sizes.inbox + s.sizes.outbox) as f64 / 1048576.0
            );
            samples.push(s);
            next_sample += window;
        }
    }
    completed = done(&seen);
    samples.push(sample(started.elapsed().as_secs_f64(), completed).await?);
    let (sent, _) = producer.await??;

    // The orders placed in each window, and how long each took to complete.
    let windows_n = samples.len().max(2) - 1;
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); windows_n];
    let mut windows: Vec<Window> = (0..windows_n).map(|_| Window::default()).collect();
    for (ext, at) in &sent {
        let index = ((at.duration_since(started).as_secs_f64() / window.as_secs_f64()) as usize)
            .min(windows_n - 1);
        windows[index].placed += 1;
        let finished = seen
            .by_external
            .get(ext)
            .and_then(|id| seen.orders.get(id))
            .and_then(|o| o.stages.get("completed"));
        if let Some(finished) = finished {
            windows[index].completed += 1;
            latencies[index].push(finished.duration_since(*at).as_secs_f64() * 1000.0);
        }
    }
    for (w, mut lat) in windows.iter_mut().zip(latencies) {
        lat.sort_by(f64::total_cmp);
        w.p50 = percentile(&lat, 50.0);
        w.p99 = percentile(&lat, 99.0);
    }
    let workers: Vec<String> = worker_pids
        .iter()
        .map(|pid| {
            command_line(*pid)
                .and_then(|cmd| cmd.rsplit(' ').next().map(str::to_owned))
                .unwrap_or_else(|| format!("pid {pid}"))
        })
        .collect();
    let table = render(&samples, &windows, &workers);
    let command = format!("scripts/soak {minutes} {rate}");
    let title = format!(
        "Soak: the order pipeline at {rate} orders/s for {minutes} minutes, sampled every {} s",
        window.as_secs()
    );
    let table = format!(
        "Drained without acknowledgement, as the outside systems and the workers not running \
         here would consume them: {}; the partitions of {}.\n\n{table}",
        outside.join(", "),
        absent.join(", ")
    );
    crate::bench::report("soak", &title, &command, &table, write)?;
    let _ = connection.close(200, "done".into()).await;
    anyhow::ensure!(
        completed == orders,
        "only {completed} of {orders} orders completed within the deadline"
    );
    Ok(())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn render(samples: &[Sample], windows: &[Window], workers: &[String]) -> String {
    let mut s = String::from("| until | orders placed in the window | completed | p50 / p99 ms |");
    for w in workers {
        s.push_str(&format!(" `{w}` RSS MiB |"));
    }
    s.push_str(
        " broker RSS MiB | messages in the broker's queues | business tables MiB | inboxes MiB | outboxes MiB | business / inbox / outbox bytes per completed order |\n|---|---|---|---|",
    );
    s.push_str(&"---|".repeat(workers.len() + 6));
    s.push('\n');
    for (i, sample) in samples.iter().enumerate() {
        let until = if i == 0 {
            "start".to_owned()
        } else {
            format!("{:.0} s", sample.at)
        };
        let (placed, completed, latency) = match i.checked_sub(1).and_then(|w| windows.get(w)) {
            Some(w) if w.placed > 0 => (
                w.placed.to_string(),
                w.completed.to_string(),
                format!("{:.0} / {:.0}", w.p50, w.p99),
            ),
            _ => ("".into(), "".into(), "".into()),
        };
        s.push_str(&format!("| {until} | {placed} | {completed} | {latency} |"));
        for kib in &sample.workers {
            s.push_str(&format!(" {} |", kib.map_or("gone".to_owned(), mib)));
        }
        let per = |bytes: i64| {
            if sample.completed == 0 {
                "".to_owned()
            } else {
                format!("{:.0}", bytes as f64 / sample.completed as f64)
            }
        };
        s.push_str(&format!(
            " {} | {} | {:.1} | {:.1} | {:.1} | {} / {} / {} |\n",
            mib(sample.broker),
            sample.queued.map_or("?".to_owned(), |n| n.to_string()),
            sample.sizes.business as f64 / 1048576.0,
            sample.sizes.inbox as f64 / 1048576.0,
            sample.sizes.outbox as f64 / 1048576.0,
            per(sample.sizes.business),
            per(sample.sizes.inbox),
            per(sample.sizes.outbox),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, completed: usize) -> Sample {
        Sample {
            at,
            workers: vec![Some(51_200), None],
            broker: 204_800,
            queued: Some(12),
            sizes: Sizes {
                business: 10_000_000,
                inbox: 2_000_000,
                outbox: 30_000_000,
            },
            completed,
        }
    }

    #[test]
    fn every_row_of_the_table_has_the_headers_columns() {
        let windows = [Window {
            placed: 1000,
            completed: 1000,
            p50: 120.0,
            p99: 480.0,
        }];
        let table = render(
            &[sample(0.0, 0), sample(180.0, 1000)],
            &windows,
            &["orders".to_owned(), "inventory".to_owned()],
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let columns = |line: &str| line.matches('|').count();
        for line in &lines {
            assert_eq!(columns(line), columns(lines[0]), "{line}");
        }
        // The window's orders, a worker that went away, sizes per completed order.
        assert!(
            lines[3].starts_with("| 180 s | 1000 | 1000 | 120 / 480 | 50.0 | gone | 200.0 | 12 |"),
            "{}",
            lines[3]
        );
        assert!(
            lines[3].ends_with("| 10000 / 2000 / 30000 |"),
            "{}",
            lines[3]
        );
    }
}
