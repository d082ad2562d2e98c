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
