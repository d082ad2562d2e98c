//! `orderly bench runtime`: how fast one exactly-once hop is, next to the raw ceilings of the
//! same broker and database measured in the same run.
//!
//! The hop: a `bench.ping` is published to the events exchange; the bench worker consumes
//! it (inbox row, handler, outbox row, commit, ack); the relay publishes a `bench.pong`
//! (confirmed) to an outbound queue, where the bench reads it. Latency is ping publish to
//! pong receipt, so it includes the relay.

pub(crate) mod api;
pub(crate) mod console;
pub(crate) mod operations;
pub(crate) mod setups;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use orderly_contracts::{Envelope, Message};
use orderly_runtime::{
    Handler, HandlerContext, HandlerError, Host, Incoming, Settings,
    broker::{self, Names},
    config::ConsumerSettings,
    db,
    topology::{self, QueueKind, QueueSpec},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Ping {
    sent_us: i64,
}
impl Message for Ping {
    const TYPE: &'static str = "bench.ping";
    const VERSION: u16 = 1;
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Pong {
    sent_us: i64,
}
impl Message for Pong {
    const TYPE: &'static str = "bench.pong";
    const VERSION: u16 = 1;
}

impl orderly_contracts::Validate for Ping {
    fn validate(&self) -> Result<(), orderly_contracts::ContractError> {
        Ok(())
    }
}

orderly_runtime::inputs! {
    /// The echo worker's one input.
    enum EchoInput {
        /// A ping to answer.
        Ping(Ping),
    }
}

/// Does nothing but answer: the cost measured is the runtime's.
#[derive(Debug)]
struct Echo;

impl Handler for Echo {
    type Input = EchoInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        let EchoInput::Ping(ping) = msg.input::<EchoInput>()?;
        cx.emit(Pong {
            sent_us: ping.payload.sent_us,
        });
        Ok(())
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The `p`th percentile (0 to 100) of `sorted` (ascending): the value at rank
/// `round(p / 100 × (n − 1))`; NaN for none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Figures {
    pg_commits: f64,
    broker_publish: f64,
    broker_consume: f64,
    hop_rate: f64,
    paced_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    latency_samples: usize,
}

/// Runs the benchmark and prints (and optionally records) the figures.
pub(crate) async fn runtime(
    settings: Settings,
    messages: usize,
    latency_seconds: u64,
    write: bool,
) -> anyhow::Result<()> {
    let scratch = orderly_runtime::Scratch::new(&settings, "runtime").await?;
    let mut settings = scratch.settings.clone();
    settings.consumer = ConsumerSettings {
        prefetch: 512,
        concurrency: 4,
        batch_size: 128,
        delivery_limit: 10,
        ..ConsumerSettings::default()
    };
    settings.relay.batch_size = 512;
    let pool = db::connect(&settings.database_url, "bench", 8).await?;
    sqlx::query("select orderly_messaging.install('bench')")
        .execute(&pool)
        .await?;
    sqlx::raw_sql("create table if not exists bench.raw (id bigint generated always as identity primary key, v int not null)")
        .execute(&pool)
        .await?;

    let names = Names::new(settings.namespace.clone());
    let connection = broker::connect(&settings.broker_url, "orderly-bench").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let specs = vec![
        QueueSpec {
            queue_type: orderly_runtime::config::QueueType::Quorum,
            name: "bench".into(),
            bindings: vec![Ping::TYPE.into()],
            kind: QueueKind::Worker {
                delivery_limit: 10,
                delay_queues: 2,
                partitions: settings.consumer.partitions,
            },
        },
        QueueSpec {
            queue_type: orderly_runtime::config::QueueType::Quorum,
            name: "out.bench".into(),
            bindings: vec![Pong::TYPE.into()],
            kind: QueueKind::Outbound {
                max_length: 1_000_000,
            },
        },
    ];
    topology::declare(&channel, &names, &specs).await?;

    eprintln!("measuring PostgreSQL commits (3 s, 8 connections)...");
    let pg_commits = pg_commit_rate(&pool, Duration::from_secs(3)).await?;
    eprintln!(
        "measuring broker publish-confirm and consume ({messages} messages, quorum queue)..."
    );
    let (broker_publish, broker_consume) = broker_rates(&connection, &names, messages).await?;

    let mut host = Host::new(settings.clone());
    host.start_worker("bench", Echo).await?;
    let out = connection.create_channel().await?;
    out.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut pongs = out
        .basic_consume(
            names.queue("out.bench").into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    eprintln!("measuring one exactly-once hop at full speed ({messages} messages)...");
    let started = Instant::now();
    let publisher = {
        let channel = channel.clone();
        let names = names.clone();
        tokio::spawn(async move { publish_pings(&channel, &names, messages, None).await })
    };
    receive(&mut pongs, messages, |_| {}).await?;
    publisher.await??;
    let hop_rate = messages as f64 / started.elapsed().as_secs_f64();

    let paced_rate = (hop_rate / 2.0).max(1.0);
    let count = (paced_rate * latency_seconds as f64) as usize;
    eprintln!("measuring hop latency at {paced_rate:.0} msg/s for {latency_seconds} s...");
    let publisher = {
        let channel = channel.clone();
        let names = names.clone();
        tokio::spawn(async move { publish_pings(&channel, &names, count, Some(paced_rate)).await })
    };
    let mut latencies = Vec::with_capacity(count);
    receive(&mut pongs, count, |sent| {
        latencies.push((now_us() - sent) as f64 / 1000.0)
    })
    .await?;
    publisher.await??;
    latencies.sort_by(f64::total_cmp);

    host.stop(Duration::from_secs(10)).await;
    let cleanup = connection.create_channel().await?;
    topology::delete(&cleanup, &names, &specs).await?;
    let _ = connection.close(200, "done".into()).await;
    pool.close().await;
    scratch.remove().await?;

    let f = Figures {
        pg_commits,
        broker_publish,
        broker_consume,
        hop_rate,
        paced_rate,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        latency_samples: latencies.len(),
    };
    let table = render(&f, messages, latency_seconds);
    println!("{table}");
    if write {
        record(&table)?;
        eprintln!("written to docs/benchmarks.md");
    }
    Ok(())
}

async fn publish_pings(
    channel: &Channel,
    names: &Names,
    count: usize,
    rate: Option<f64>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut window = Vec::with_capacity(256);
    for i in 0..count {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let env = Envelope::new("bench", "bench", Ping { sent_us: now_us() });
        let confirm = channel
            .basic_publish(
                names.events_exchange().into(),
                Ping::TYPE.into(),
                BasicPublishOptions::default(),
                &env.to_json(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        window.push(confirm);
        if window.len() >= 256 || rate.is_some() && window.len() >= 16 {
            for c in window.drain(..) {
                c.await?;
            }
        }
    }
    for c in window {
        c.await?;
    }
    Ok(())
}

async fn receive(
    consumer: &mut lapin::Consumer,
    count: usize,
    mut on_pong: impl FnMut(i64),
) -> anyhow::Result<()> {
    let mut seen = 0;
    while seen < count {
        let next = tokio::time::timeout(Duration::from_secs(60), consumer.next()).await;
        let delivery = match next {
            Ok(Some(d)) => d?,
            Ok(None) => anyhow::bail!("pong consumer ended"),
            Err(_) => anyhow::bail!("no pong for 60 s after {seen} of {count}"),
        };
        let env: Envelope<Pong> = orderly_contracts::decode_raw(&delivery.data)?.decode()?;
        on_pong(env.payload.sent_us);
        delivery.acker.ack(BasicAckOptions::default()).await?;
        seen += 1;
    }
    Ok(())
}

async fn pg_commit_rate(pool: &sqlx::PgPool, duration: Duration) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < duration {
                sqlx::query("insert into bench.raw (v) values (1)")
                    .execute(&pool)
                    .await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn broker_rates(
    connection: &lapin::Connection,
    names: &Names,
    count: usize,
) -> anyhow::Result<(f64, f64)> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = names.queue("raw");
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await?;
    let body = vec![b'x'; 400];
    let started = Instant::now();
    let mut window = Vec::with_capacity(256);
    for _ in 0..count {
        window.push(
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
        );
        if window.len() >= 256 {
            for c in window.drain(..) {
                c.await?;
            }
        }
    }
    for c in window {
        c.await?;
    }
    let publish = count as f64 / started.elapsed().as_secs_f64();

    let consume_channel = connection.create_channel().await?;
    consume_channel
        .basic_qos(1000, BasicQosOptions::default())
        .await?;
    let mut consumer = consume_channel
        .basic_consume(
            queue.as_str().into(),
            "raw".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    for _ in 0..count {
        let d = consumer
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("raw consumer ended"))??;
        d.acker.ack(BasicAckOptions::default()).await?;
    }
    let consume = count as f64 / started.elapsed().as_secs_f64();
    let _ = consume_channel.close(200, "done".into()).await;
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    Ok((publish, consume))
}

fn render(f: &Figures, messages: usize, latency_seconds: u64) -> String {
    let cpu = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "## Runtime: one exactly-once hop\n\n\
         Command: `cargo run --release -p orderly --features bench -- bench runtime --messages {messages} --latency-seconds {latency_seconds}`  \n\
         Machine: {cpu} cores; broker, database, worker and load generator on the same box. Run at {}.\n\n\
         | measure | figure |\n|---|---|\n\
         | PostgreSQL one-row commits/s (8 connections) | {:.0} |\n\
         | RabbitMQ publish-confirm to a quorum queue, msg/s | {:.0} |\n\
         | RabbitMQ consume + ack from a quorum queue, msg/s | {:.0} |\n\
         | **exactly-once hop, msg/s** (consume, inbox + outbox in one tx, ack, relay publish with confirm) | **{:.0}** |\n\
         | hop as a fraction of the broker publish ceiling | {:.0} % |\n\
         | hop latency p50 at {:.0} msg/s (half the measured rate), ms | {:.2} |\n\
         | hop latency p99 at {:.0} msg/s, ms | {:.2} |\n\
         | latency samples | {} |\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        f.pg_commits,
        f.broker_publish,
        f.broker_consume,
        f.hop_rate,
        100.0 * f.hop_rate / f.broker_publish,
        f.paced_rate,
        f.p50_ms,
        f.paced_rate,
        f.p99_ms,
        f.latency_samples,
    )
}

/// The command line of `orderly bench <bench>` with `options` (flag, value, default): only
/// the flags whose value is not the default, as the section records it.
pub(crate) fn command_line(bench: &str, options: &[(&str, String, String)]) -> String {
    let mut command = format!("cargo run --release -p orderly --features bench -- bench {bench}");
    for (flag, value, default) in options {
        if value != default {
            command.push_str(&format!(" {flag} {value}"));
        }
    }
    command
}

/// Replaces the runtime section of docs/benchmarks.md.
fn record(table: &str) -> anyhow::Result<()> {
    record_section("runtime", table)
}

/// Prints a worker benchmark's figures under a heading with the command and the time, and
/// (if `write`) records them as section `name` of docs/benchmarks.md.
pub(crate) fn report(
    name: &str,
    title: &str,
    command: &str,
    table: &str,
    write: bool,
) -> anyhow::Result<()> {
    // How fast one core of this machine is right now: figures from different runs are
    // comparable only beside it (see `orderly_runtime::machine`).
    let reference = orderly_runtime::machine::reference_loop();
    let section = format!(
        "## {title}\n\nCommand: `{command}`  \nMachine: 2 cores, reference loop {} ms (one core; lower is faster); broker, database, worker and load generator on the same box. Run at {} UTC.\n\n{table}",
        reference.as_millis(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M")
    );
    println!("{section}");
    if write {
        record_section(name, &section)?;
        println!("written to docs/benchmarks.md");
    }
    Ok(())
}

/// Replaces the section `name` of docs/benchmarks.md (between markers), keeping the rest.
pub(crate) fn record_section(name: &str, table: &str) -> anyhow::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\n".to_owned());
    let section = format!("{begin}\n{table}{end}");
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!("{}\n\n{section}\n", current.trim_end()),
    };
    std::fs::write(&path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn a_percentile_is_the_value_at_its_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&values, 50.0), 51.0, "rank round(49.5) = 50");
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
