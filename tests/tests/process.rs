//! Process-level behaviour: signals and broker connection loss.

use std::{process::Stdio, time::Duration};

use orderly_runtime::config::ConsumerSettings;
use orderly_tests::{PROBE, Probe, TestEnv, wait_until};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

fn spawn_worker(
    env: &TestEnv,
    consumer: &ConsumerSettings,
) -> anyhow::Result<tokio::process::Child> {
    Ok(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_probe-worker"))
            .env("ORDERLY__NAMESPACE", &env.settings.namespace)
            .env("ORDERLY__DATABASE_URL", &env.settings.database_url)
            .env("ORDERLY__BROKER_URL", &env.settings.broker_url)
            .env("ORDERLY__CONSUMER__PREFETCH", consumer.prefetch.to_string())
            .env(
                "ORDERLY__CONSUMER__CONCURRENCY",
                consumer.concurrency.to_string(),
            )
            .env(
                "ORDERLY__CONSUMER__BATCH_SIZE",
                consumer.batch_size.to_string(),
            )
            .env(
                "ORDERLY__CONSUMER__DELIVERY_LIMIT",
                consumer.delivery_limit.to_string(),
            )
            .env(
                "ORDERLY__RETRY__MAX_ATTEMPTS",
                env.settings.retry.max_attempts.to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()?,
    )
}

fn sigterm(child: &tokio::process::Child) -> anyhow::Result<()> {
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("child already exited"))?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
    Ok(())
}

async fn count(env: &TestEnv, table: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from probe.{table}"
    )))
    .fetch_one(&env.pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_messages_in_hand_redelivers_nothing_and_exits_zero() -> anyhow::Result<()>
{
    let consumer = ConsumerSettings {
        prefetch: 4,
        concurrency: 2,
        batch_size: 1,
        delivery_limit: 5,
        ..ConsumerSettings::default()
    };
    let env = TestEnv::new(TestEnv::fast_retry(3), consumer.clone()).await?;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            env.publish_probe(Probe {
                n,
                sleep_ms: 300,
                ..Probe::default()
            })
            .await?,
        );
    }
    let mut first = spawn_worker(&env, &consumer)?;
    wait_until("two handlers are running", DEADLINE, || async {
        Ok(count(&env, "attempts").await? >= 2)
    })
    .await?;
    sigterm(&first)?;
    let status = tokio::time::timeout(DEADLINE, first.wait()).await??;
    assert!(status.success(), "exit status {status:?}");

    // Everything the first process started, it finished; nothing it took is left half-done.
    let started = count(&env, "attempts").await?;
    let finished = count(&env, "effects").await?;
    assert_eq!(started, finished, "every message in hand was finished");
    assert!(
        finished < 12,
        "the shutdown happened mid-stream ({finished} of 12 done)"
    );
    let queue = env.names.queue(PROBE);
    assert_eq!(
        i64::from(env.queue_depth(&queue).await?),
        12 - finished,
        "the rest wait in the queue"
    );

    // A second process handles the rest; no message was started twice.
    let mut second = spawn_worker(&env, &consumer)?;
    wait_until("all twelve handled", DEADLINE, || async {
        Ok(count(&env, "effects").await? == 12)
    })
    .await?;
    sigterm(&second)?;
    assert!(
        tokio::time::timeout(DEADLINE, second.wait())
            .await??
            .success()
    );
    for id in ids {
        assert_eq!(
            env.starts(id).await?,
            1,
            "message {id} was handled more than once"
        );
        assert_eq!(env.effects(id).await?, 1);
    }
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_connections_closed_mid_stream_every_message_handled_exactly_once()
-> anyhow::Result<()> {
    let consumer = ConsumerSettings {
        prefetch: 32,
        concurrency: 2,
        batch_size: 8,
        delivery_limit: 10,
        ..ConsumerSettings::default()
    };
    let env = TestEnv::new(TestEnv::fast_retry(3), consumer.clone()).await?;
    let mut worker = spawn_worker(&env, &consumer)?;
    let total = 300;
    let mut ids: Vec<Uuid> = Vec::new();
    for n in 0..total {
        ids.push(
            env.publish_probe(Probe {
                n,
                sleep_ms: 2,
                emit: true,
                ..Probe::default()
            })
            .await?,
        );
        if n == 100 {
            wait_until("the worker is consuming", DEADLINE, || async {
                Ok(count(&env, "effects").await? > 0)
            })
            .await?;
            let closed = env.close_worker_connections()?;
            assert!(
                closed >= 2,
                "closed the consumer's and the relay's connections ({closed})"
            );
        }
    }
    wait_until("all handled", DEADLINE, || async {
        Ok(count(&env, "effects").await? >= i64::from(total))
    })
    .await?;
    // Every echo the handlers emitted reaches its queue once the relay is back.
    let echo = env.names.queue("out.echo");
    wait_until("every echo published", DEADLINE, || async {
        Ok(env.queue_depth(&echo).await? >= total)
    })
    .await?;
    assert_eq!(
        count(&env, "effects").await?,
        i64::from(total),
        "no effect twice"
    );
    for id in &ids {
        assert_eq!(env.effects(*id).await?, 1);
    }
    let pending: i64 =
        sqlx::query_scalar("select count(*) from probe.outbox where published_at is null")
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(pending, 0);
    sigterm(&worker)?;
    assert!(
        tokio::time::timeout(DEADLINE, worker.wait())
            .await??
            .success()
    );
    env.cleanup().await
}

/// Consumers on the probe worker's least-subscribed partition, stand-bys included (every
/// copy subscribes to all). The AMQP declare counts a single-active-consumer queue's
/// active consumer only, so this asks `rabbitmqctl`, as an operator would.
async fn copies_subscribed(env: &TestEnv, consumer: &ConsumerSettings) -> anyhow::Result<u32> {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "consumers"])
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "rabbitmqctl list_queues failed");
    let listed = String::from_utf8_lossy(&out.stdout);
    let mut fewest = u32::MAX;
    for queue in env.names.partition_queues(PROBE, consumer.partitions) {
        let consumers = listed
            .lines()
            .find_map(|line| {
                let (name, n) = line.split_once('\t')?;
                (name == queue).then(|| n.trim().parse::<u32>().ok())?
            })
            .unwrap_or(0);
        fewest = fewest.min(consumers);
    }
    Ok(fewest)
}

/// Two copies of a worker, the one handling everything killed mid-stream: each flow's
/// messages (one order's) are still handled once each and in the order they were published,
/// because a partition has one active consumer and the stand-by takes over in order
/// (decision 0016). On one shared queue the two copies would handle a flow's messages side
/// by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_handle_each_flow_in_publication_order_across_a_kill() -> anyhow::Result<()> {
    const FLOWS: u32 = 12;
    const STEPS: u32 = 10;
    let consumer = ConsumerSettings {
        prefetch: 32,
        concurrency: 4,
        batch_size: 4,
        delivery_limit: 10,
        ..ConsumerSettings::default()
    };
    let env = TestEnv::new(TestEnv::fast_retry(3), consumer.clone()).await?;
    let mut first = spawn_worker(&env, &consumer)?;
    wait_until(
        "the first copy consumes every partition",
        DEADLINE,
        || async { Ok(copies_subscribed(&env, &consumer).await? >= 1) },
    )
    .await?;
    let mut second = spawn_worker(&env, &consumer)?;
    wait_until(
        "the second copy stands by on every partition",
        DEADLINE,
        || async { Ok(copies_subscribed(&env, &consumer).await? >= 2) },
    )
    .await?;

    // Everything at once, so that a second consumer of a flow's queue would be handed the
    // flow's next message while the first still handles the one before.
    let probes = (0..STEPS)
        .flat_map(|step| {
            (0..FLOWS).map(move |flow| {
                let probe = Probe {
                    n: flow * 100 + step,
                    sleep_ms: 20,
                    ..Probe::default()
                };
                (format!("flow-{flow}"), probe)
            })
        })
        .collect();
    let ids = env.publish_probes_in(probes).await?;
    wait_until("a quarter handled", DEADLINE, || async {
        Ok(count(&env, "effects").await? >= i64::from(FLOWS * STEPS / 4))
    })
    .await?;
    first.start_kill()?;
    first.wait().await?;
    assert!(
        count(&env, "effects").await? < i64::from(FLOWS * STEPS),
        "the kill happened mid-stream"
    );
    let total = i64::from(FLOWS * STEPS);
    wait_until("every message handled", DEADLINE, || async {
        Ok(count(&env, "effects").await? >= total)
    })
    .await?;
    for id in &ids {
        assert_eq!(env.effects(*id).await?, 1, "message {id} took effect once");
    }
    let handled: Vec<i32> = sqlx::query_scalar("select n from probe.effects order by seq")
        .fetch_all(&env.pool)
        .await?;
    for flow in 0..FLOWS {
        let steps: Vec<i32> = handled
            .iter()
            .filter(|n| **n as u32 / 100 == flow)
            .map(|n| n % 100)
            .collect();
        let published: Vec<i32> = (0..STEPS as i32).collect();
        assert_eq!(
            steps, published,
            "flow-{flow} was handled in publication order"
        );
    }
    sigterm(&second)?;
    assert!(
        tokio::time::timeout(DEADLINE, second.wait())
            .await??
            .success()
    );
    env.cleanup().await
}
