//! The reliability contract of the messaging runtime, against the real RabbitMQ and
//! PostgreSQL. Each test has its own namespace and database.

use std::{sync::Arc, sync::atomic::AtomicBool, time::Duration};

use orderly_contracts::Envelope;
use orderly_runtime::{
    Host,
    config::ConsumerSettings,
    consumer::ConsumerFaults,
    dlq::DeadLetters,
    outbox::{self, OutboxMessage, Relay, RelayExit, RelayFaults},
};
use orderly_tests::{PROBE, Probe, ProbeEcho, ProbeHandler, TestEnv, wait_until};
use rand::seq::SliceRandom;

const DEADLINE: Duration = Duration::from_secs(30);

fn consumer() -> ConsumerSettings {
    ConsumerSettings {
        prefetch: 16,
        concurrency: 2,
        batch_size: 8,
        delivery_limit: 5,
        ..ConsumerSettings::default()
    }
}

/// Takes every echo waiting in `queue`, in queue order: (message id, the probe's number).
async fn take_echoes(env: &TestEnv, queue: &str) -> anyhow::Result<Vec<(uuid::Uuid, u64)>> {
    let channel = env.connection.create_channel().await?;
    let mut echoes = Vec::new();
    while let Some(delivery) = channel
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await?
    {
        let raw = orderly_contracts::decode_raw(&delivery.delivery.data)?;
        echoes.push((
            raw.message_id,
            raw.payload["n"].as_u64().unwrap_or_default(),
        ));
    }
    Ok(echoes)
}

async fn host(env: &TestEnv) -> anyhow::Result<Host> {
    let mut host = Host::new(env.settings.clone());
    host.start_worker(
        PROBE,
        ProbeHandler {
            side: env.side_pool().await?,
        },
    )
    .await?;
    Ok(host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_commit_without_ack_has_no_second_effect() -> anyhow::Result<()> {
    let env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    let faults = ConsumerFaults {
        crash_after_commit: Arc::new(AtomicBool::new(true)),
    };
    let mut host = Host::new(env.settings.clone());
    host.start_worker_with(
        PROBE,
        ProbeHandler {
            side: env.side_pool().await?,
        },
        faults.clone(),
    )
    .await?;
    let metrics = host.metrics();

    let id = env
        .publish_probe(Probe {
            n: 1,
            ..Probe::default()
        })
        .await?;
    // The first session commits, "crashes" before acking, reconnects, and gets the
    // redelivery, which the inbox turns into a duplicate.
    wait_until(
        "the redelivery is recognised as a duplicate",
        DEADLINE,
        || async { Ok(metrics.count(PROBE, orderly_runtime::metrics::Outcome::Duplicate) >= 1) },
    )
    .await?;
    assert!(
        !faults
            .crash_after_commit
            .load(std::sync::atomic::Ordering::SeqCst),
        "the crash was simulated"
    );
    assert_eq!(env.effects(id).await?, 1, "exactly one effect");
    assert_eq!(env.queue_depth(&env.names.queue(PROBE)).await?, 0);
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_crash_after_publish_loses_nothing_and_the_duplicate_is_dropped() -> anyhow::Result<()>
{
    let env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    // A message sitting in the probe's outbox, addressed to the probe itself.
    let env_msg = Envelope::new(
        "probe",
        "probe-7",
        Probe {
            n: 7,
            ..Probe::default()
        },
    );
    let mut conn = env.pool.acquire().await?;
    outbox::insert(&mut conn, &[OutboxMessage::from_envelope(&env_msg)]).await?;
    drop(conn);

    let metrics = Arc::new(orderly_runtime::metrics::Metrics::default());
    let relay = |faults| {
        Relay::new(
            PROBE,
            env.pool.clone(),
            env.settings.broker_url.clone(),
            env.names.clone(),
            &env.settings.relay,
            metrics.clone(),
        )
        .with_faults(faults)
    };
    let token = tokio_util::sync::CancellationToken::new();
    let exit = relay(RelayFaults {
        crash_after_publish: true,
    })
    .run(token.clone())
    .await;
    assert_eq!(exit, RelayExit::Crashed);
    let status = outbox::status(&env.pool).await?;
    assert_eq!(
        status.pending, 1,
        "the row is still pending after the crash"
    );

    // A fresh relay publishes it again; the consumer sees two copies and applies one.
    let relay_task = tokio::spawn(relay(RelayFaults::default()).run(token.clone()));
    let mut host = Host::new(env.settings.clone());
    host.start_worker(
        PROBE,
        ProbeHandler {
            side: env.side_pool().await?,
        },
    )
    .await?;
    let m = host.metrics();
    wait_until("both copies consumed", DEADLINE, || async {
        Ok(m.count(PROBE, orderly_runtime::metrics::Outcome::Handled)
            + m.count(PROBE, orderly_runtime::metrics::Outcome::Duplicate)
            >= 2)
    })
    .await?;
    assert_eq!(
        m.count(PROBE, orderly_runtime::metrics::Outcome::Duplicate),
        1
    );
    assert_eq!(env.effects(env_msg.message_id).await?, 1);
    wait_until("the outbox row is marked published", DEADLINE, || async {
        Ok(outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    token.cancel();
    relay_task.await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_message_stays_pending_and_is_reported() -> anyhow::Result<()> {
    let env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    // `test.nobody` has no binding anywhere in this namespace.
    let mut stray = OutboxMessage::from_envelope(&Envelope::new("probe", "c", ProbeEcho { n: 1 }));
    stray.message_type = "test.nobody".into();
    let routed = OutboxMessage::from_envelope(&Envelope::new("probe", "c", ProbeEcho { n: 2 }));
    let mut conn = env.pool.acquire().await?;
    outbox::insert(&mut conn, &[stray, routed]).await?;
    drop(conn);

    let host = host(&env).await?;
    wait_until(
        "the routable row is published and the stray one has failed",
        DEADLINE,
        || async {
            let s = outbox::status(&env.pool).await?;
            Ok(s.published == 1 && s.failing == 1)
        },
    )
    .await?;
    let stuck = outbox::stuck(&env.pool, 10).await?;
    assert_eq!(stuck.len(), 1);
    let error = stuck[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("unroutable") && error.contains("test.nobody"),
        "{error}"
    );
    assert_eq!(
        env.queue_depth(&env.names.queue("out.echo")).await?,
        1,
        "the routable one arrived"
    );
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dead_lettered_at_once_with_the_field_and_the_queue_goes_on()
-> anyhow::Result<()> {
    let env = TestEnv::new(TestEnv::fast_retry(5), consumer()).await?;
    let host = host(&env).await?;

    env.publish_raw(orderly_tests::PROBE_TYPE, b"this is not json", None)
        .await?;
    let mut wrong = serde_json::to_value(Envelope::new(
        "test",
        "c",
        Probe {
            n: 2,
            ..Probe::default()
        },
    ))?;
    wrong["payload"]["n"] = serde_json::json!("two");
    env.publish_raw(
        orderly_tests::PROBE_TYPE,
        wrong.to_string().as_bytes(),
        None,
    )
    .await?;
    // A well-formed message of another type, sent under the probe's routing key: it reaches
    // a queue that never asked for its type (issue 13), and is refused for the mismatch.
    let mut misrouted = serde_json::to_value(Envelope::new(
        "test",
        "c",
        Probe {
            n: 4,
            ..Probe::default()
        },
    ))?;
    misrouted["message_type"] = serde_json::json!("test.probe.echo");
    env.publish_raw(
        orderly_tests::PROBE_TYPE,
        misrouted.to_string().as_bytes(),
        None,
    )
    .await?;
    let good = env
        .publish_probe(Probe {
            n: 3,
            ..Probe::default()
        })
        .await?;

    let dlq = env.names.dead_letter_queue(PROBE);
    wait_until(
        "three dead letters and the good message handled",
        DEADLINE,
        || async { Ok(env.queue_depth(&dlq).await? == 3 && env.effects(good).await? == 1) },
    )
    .await?;
    let ch = env.connection.create_channel().await?;
    let letters = DeadLetters::new(&ch, &env.names, PROBE).list(10).await?;
    let _ = ch.close(200, "ok".into()).await;
    assert_eq!(letters.len(), 3);
    // Two batches may run side by side, so the dead letters' order is not fixed.
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("undecodable")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("payload.n") && r.contains("contract violation")),
        "a reason names the field: {reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r
            .contains("routing key `test.probe` does not match message_type `test.probe.echo`")),
        "a misrouted message is refused for it: {reasons:?}"
    );
    assert!(
        letters.iter().all(|l| l.attempts == Some(1)),
        "no retries were spent"
    );
    // The channel's close hands them back to the queue (asynchronously on the broker).
    wait_until("listing leaves them in place", DEADLINE, || async {
        Ok(env.queue_depth(&dlq).await? == 3)
    })
    .await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_with_delay_then_succeed_once() -> anyhow::Result<()> {
    let env = TestEnv::new(TestEnv::fast_retry(5), consumer()).await?;
    let host = host(&env).await?;
    let started = std::time::Instant::now();
    let id = env
        .publish_probe(Probe {
            n: 1,
            fail_transient_until: 3,
            ..Probe::default()
        })
        .await?;
    let other = env
        .publish_probe(Probe {
            n: 2,
            ..Probe::default()
        })
        .await?;
    wait_until("handled after three failures", DEADLINE, || async {
        Ok(env.effects(id).await? == 1)
    })
    .await?;
    // Delays of at least 50 + 100 + 200 ms were waited (jitter only adds).
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.attempts(id).await?, 4);
    assert_eq!(
        env.effects(other).await?,
        1,
        "the neighbour was not held up"
    );
    assert_eq!(
        env.queue_depth(&env.names.dead_letter_queue(PROBE)).await?,
        0
    );
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_forever_is_dead_lettered_after_exactly_the_budget_with_two_copies()
-> anyhow::Result<()> {
    let env = TestEnv::new(TestEnv::fast_retry(4), consumer()).await?;
    let first = host(&env).await?;
    let second = host(&env).await?;
    let ids = [
        env.publish_probe(Probe {
            n: 1,
            fail_transient_until: u32::MAX,
            ..Probe::default()
        })
        .await?,
        env.publish_probe(Probe {
            n: 2,
            fail_transient_until: u32::MAX,
            ..Probe::default()
        })
        .await?,
    ];
    let dlq = env.names.dead_letter_queue(PROBE);
    wait_until("both dead-lettered", DEADLINE, || async {
        Ok(env.queue_depth(&dlq).await? == 2)
    })
    .await?;
    for id in ids {
        assert_eq!(env.attempts(id).await?, 4, "exactly the budget of attempts");
        assert_eq!(env.effects(id).await?, 0);
    }
    let ch = env.connection.create_channel().await?;
    let letters = DeadLetters::new(&ch, &env.names, PROBE).list(10).await?;
    let _ = ch.close(200, "ok".into()).await;
    assert!(
        letters
            .iter()
            .all(|l| l.reason.contains("gave up after 4 attempts") && l.attempts == Some(4)),
        "{letters:?}"
    );
    first.stop(Duration::from_secs(10)).await;
    second.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_letter_is_handled_once_and_a_second_replay_does_nothing()
-> anyhow::Result<()> {
    let env = TestEnv::new(TestEnv::fast_retry(2), consumer()).await?;
    let host = host(&env).await?;
    let m = host.metrics();
    // A dependency is down: the message spends its budget and is dead-lettered.
    env.switch("tax-service", true).await?;
    let id = env
        .publish_probe(Probe {
            n: 1,
            fail_while_switch: Some("tax-service".into()),
            ..Probe::default()
        })
        .await?;
    let dlq = env.names.dead_letter_queue(PROBE);
    wait_until("dead-lettered", DEADLINE, || async {
        Ok(env.queue_depth(&dlq).await? == 1)
    })
    .await?;
    assert_eq!(env.effects(id).await?, 0);

    // The dependency is back; the operator replays.
    env.switch("tax-service", false).await?;
    let ch = env.connection.create_channel().await?;
    assert_eq!(
        DeadLetters::new(&ch, &env.names, PROBE)
            .replay(&[id.to_string()])
            .await?,
        1
    );
    wait_until("handled after replay", DEADLINE, || async {
        Ok(env.effects(id).await? == 1)
    })
    .await?;
    assert_eq!(
        env.queue_depth(&dlq).await?,
        0,
        "the dead letter was removed"
    );

    // Replaying again finds nothing; and even a stray second copy of the same message in the
    // dead-letter queue, replayed, has no effect (the inbox knows it).
    assert_eq!(
        DeadLetters::new(&ch, &env.names, PROBE)
            .replay(&[id.to_string()])
            .await?,
        0
    );
    let body = Envelope::new(
        "test",
        "probe-1",
        Probe {
            n: 1,
            ..Probe::default()
        },
    );
    let copy = Envelope {
        message_id: id,
        ..body
    };
    let confirm = env
        .channel
        .basic_publish(
            env.names.dead_letter_exchange().into(),
            env.names.queue(PROBE).into(),
            lapin::options::BasicPublishOptions::default(),
            &copy.to_json(),
            lapin::BasicProperties::default().with_message_id(id.to_string().into()),
        )
        .await?
        .await?;
    assert!(confirm.is_ack());
    assert_eq!(
        DeadLetters::new(&ch, &env.names, PROBE)
            .replay(&[id.to_string()])
            .await?,
        1
    );
    wait_until(
        "the stray copy is recognised as a duplicate",
        DEADLINE,
        || async { Ok(m.count(PROBE, orderly_runtime::metrics::Outcome::Duplicate) == 1) },
    )
    .await?;
    assert_eq!(env.effects(id).await?, 1, "still exactly one effect");
    let _ = ch.close(200, "ok".into()).await;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_inside_a_batch_does_not_take_its_neighbours_down() -> anyhow::Result<()> {
    let env = TestEnv::new(
        TestEnv::fast_retry(3),
        ConsumerSettings {
            prefetch: 32,
            concurrency: 1,
            batch_size: 32,
            delivery_limit: 5,
            ..ConsumerSettings::default()
        },
    )
    .await?;
    // Queue everything before the worker starts, so it arrives as one batch.
    let mut good = Vec::new();
    for n in 0..10 {
        good.push(
            env.publish_probe(Probe {
                n,
                emit: true,
                ..Probe::default()
            })
            .await?,
        );
    }
    let refused = env
        .publish_probe(Probe {
            n: 98,
            fail_permanent: true,
            ..Probe::default()
        })
        .await?;
    let flaky = env
        .publish_probe(Probe {
            n: 99,
            fail_transient_until: 1,
            ..Probe::default()
        })
        .await?;
    let host = host(&env).await?;
    wait_until(
        "the neighbours and the flaky one are handled",
        DEADLINE,
        || async { Ok(env.total_effects().await? == 11) },
    )
    .await?;
    for id in &good {
        assert_eq!(env.effects(*id).await?, 1);
    }
    assert_eq!(
        env.effects(flaky).await?,
        1,
        "handled on its second attempt"
    );
    assert_eq!(env.attempts(flaky).await?, 2);
    assert_eq!(env.effects(refused).await?, 0);
    let dlq = env.names.dead_letter_queue(PROBE);
    wait_until("the refused one is dead-lettered", DEADLINE, || async {
        Ok(env.queue_depth(&dlq).await? == 1)
    })
    .await?;
    // The good ones' outgoing messages committed with them; the failed ones' did not.
    let echo = env.names.queue("out.echo");
    wait_until("ten echoes", DEADLINE, || async {
        Ok(env.queue_depth(&echo).await? == 10)
    })
    .await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

/// Batches that touch the same rows in opposite orders queue behind each other instead of
/// deadlocking, because the consumer takes the keys the handler declares, sorted, before any
/// handler of the batch runs. Every probe increments three of six counters in a random order,
/// pausing after each update; two copies of the worker run four batches each at a time. A
/// deadlock would abort a batch, and the consumer would start its handlers again: so each
/// handler starting exactly once proves there was none (without the keys, this load
/// deadlocks within the first few batches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_touching_the_same_rows_in_any_order_never_deadlock() -> anyhow::Result<()> {
    let env = TestEnv::new(
        TestEnv::fast_retry(5),
        ConsumerSettings {
            prefetch: 32,
            concurrency: 4,
            batch_size: 8,
            delivery_limit: 5,
            ..ConsumerSettings::default()
        },
    )
    .await?;
    let first = host(&env).await?;
    let second = host(&env).await?;
    const PROBES: u32 = 240;
    let mut rng = rand::rng();
    for n in 0..PROBES {
        let mut counters: Vec<u32> = (1..=6).collect();
        counters.shuffle(&mut rng);
        counters.truncate(3);
        env.publish_probe(Probe {
            n,
            touch: counters,
            touch_ms: 1,
            ..Probe::default()
        })
        .await?;
    }
    wait_until("every probe has its effect", DEADLINE * 2, || async {
        Ok(env.total_effects().await? == i64::from(PROBES))
    })
    .await?;
    let starts: i64 = sqlx::query_scalar("select count(*) from probe.attempts")
        .fetch_one(&env.pool)
        .await?;
    let increments: i64 = sqlx::query_scalar("select sum(n)::bigint from probe.counters")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(
        starts,
        i64::from(PROBES),
        "no handler ran twice: no batch was aborted"
    );
    assert_eq!(
        increments,
        i64::from(PROBES) * 3,
        "every increment counted once"
    );
    first.stop(Duration::from_secs(10)).await;
    second.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_outbox_rows_are_handed_to_the_relay_without_waiting_for_a_sweep()
-> anyhow::Result<()> {
    let mut env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    // The relay sweeps when it starts and then only once a minute: within this test, what
    // the consumer emits can reach the broker only through the handoff.
    env.settings.relay.poll_interval_ms = 60_000;
    let host = host(&env).await?;
    env.publish_probe(Probe {
        n: 1,
        emit: true,
        ..Probe::default()
    })
    .await?;
    wait_until("the echo is published", DEADLINE, || async {
        Ok(env.queue_depth(&env.names.queue("out.echo")).await? == 1
            && outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_nobody_handed_over_are_found_by_the_sweep_while_the_relay_runs() -> anyhow::Result<()>
{
    let mut env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    env.settings.relay.poll_interval_ms = 200;
    let host = host(&env).await?;
    // A first echo through the handoff: the relay has started and finished its first sweep.
    env.publish_probe(Probe {
        n: 1,
        emit: true,
        ..Probe::default()
    })
    .await?;
    wait_until("the relay runs", DEADLINE, || async {
        Ok(env.queue_depth(&env.names.queue("out.echo")).await? == 1)
    })
    .await?;
    // Written now by someone else (another process, or one that crashed before its relay got
    // to the row): nothing hands it over.
    let stray = OutboxMessage::from_envelope(&Envelope::new("probe", "c", ProbeEcho { n: 3 }));
    let mut conn = env.pool.acquire().await?;
    outbox::insert(&mut conn, &[stray]).await?;
    drop(conn);
    wait_until("the row is swept and published", DEADLINE, || async {
        Ok(env.queue_depth(&env.names.queue("out.echo")).await? == 2
            && outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

/// A row another live process wrote (its `written_by`) is that process's handoff's to
/// publish: a relay's sweep leaves it for `OTHER_WRITERS_GRACE` (sending it too was the
/// repeats of several copies), while a row nobody marked goes out at the next sweep; past the
/// grace (its writer died) the sweep takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_leaves_another_live_processs_rows_to_it_for_the_grace() -> anyhow::Result<()> {
    let mut env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    env.settings.relay.poll_interval_ms = 200;
    let host = host(&env).await?;
    let echo = env.names.queue("out.echo");
    let mut conn = env.pool.acquire().await?;
    let theirs = OutboxMessage::from_envelope(&Envelope::new("probe", "a", ProbeEcho { n: 1 }));
    outbox::insert(&mut conn, &[theirs]).await?;
    sqlx::query("update probe.outbox set written_by = $1 where published_at is null")
        .bind(uuid::Uuid::now_v7())
        .execute(&mut *conn)
        .await?;
    let unmarked = OutboxMessage::from_envelope(&Envelope::new("probe", "b", ProbeEcho { n: 2 }));
    outbox::insert(&mut conn, &[unmarked]).await?;
    // Published, then marked: wait for both (the mark follows the broker's confirm).
    wait_until("the unmarked row is swept", DEADLINE, || async {
        Ok(env.queue_depth(&echo).await? == 1 && outbox::status(&env.pool).await?.pending == 1)
    })
    .await?;
    assert_eq!(
        env.queue_depth(&echo).await?,
        1,
        "the other process's row is left to its handoff"
    );
    // Its writer is gone: once the row is older than the grace, the sweep takes it.
    let grace = i64::try_from(outbox::OTHER_WRITERS_GRACE.as_secs())? + 1;
    sqlx::query(
        "update probe.outbox set created_at = created_at - make_interval(secs => $1)
         where published_at is null",
    )
    .bind(grace as f64)
    .execute(&mut *conn)
    .await?;
    drop(conn);
    wait_until("the old row is swept", DEADLINE, || async {
        Ok(env.queue_depth(&echo).await? == 2 && outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

/// A copy killed after committing an order's message but before publishing it leaves the
/// row pending; the copy that takes over the partition publishes that row before its own
/// answer to the order's next message (issue 19: `two-copies-killed-repeatedly` lost
/// dispatch notifications when the answer went first). The predecessor here is a consumer
/// with no relay at all; the successor's sweeps are set to two minutes, so only the
/// take-over can put the predecessor's row out within the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_taking_over_a_partition_publishes_its_predecessors_rows_first() -> anyhow::Result<()>
{
    use orderly_runtime::{consumer::Consumer, health::Health, retry::RetryPolicy};
    let consumer = ConsumerSettings {
        partitions: 1,
        ..consumer()
    };
    let mut env = TestEnv::new(TestEnv::fast_retry(3), consumer.clone()).await?;
    env.settings.relay.poll_interval_ms = 120_000;
    let echoes = env.names.queue("out.echo");
    let probe = |n: u32| {
        (
            "order-1".to_owned(),
            Probe {
                n,
                emit: n > 0,
                ..Probe::default()
            },
        )
    };
    let stop_predecessor = tokio_util::sync::CancellationToken::new();
    let predecessor = tokio::spawn(
        Consumer::new(
            PROBE,
            ProbeHandler {
                side: env.side_pool().await?,
            },
            env.pool.clone(),
            env.names.clone(),
            env.settings.broker_url.clone(),
            consumer.clone(),
            RetryPolicy::from(&env.settings.retry),
            Arc::new(orderly_runtime::metrics::Metrics::default()),
            Health::default(),
        )
        .run(stop_predecessor.clone()),
    );
    env.publish_probes_in(vec![probe(0)]).await?;
    wait_until(
        "the predecessor consumes the partition",
        DEADLINE,
        || async { Ok(env.total_effects().await? == 1) },
    )
    .await?;
    // The successor stands by behind it. A row waiting before it started is its relay's
    // catch-up's: once that row is out, the catch-up is over.
    let mut conn = env.pool.acquire().await?;
    let sentinel = Envelope::new("probe", "sentinel", ProbeEcho { n: 100 });
    outbox::insert(&mut conn, &[OutboxMessage::from_envelope(&sentinel)]).await?;
    drop(conn);
    let successor = host(&env).await?;
    wait_until("the successor's relay caught up", DEADLINE, || async {
        Ok(env.queue_depth(&echoes).await? == 1 && outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    // The predecessor answers the order's first message and goes away unpublished.
    env.publish_probes_in(vec![probe(1)]).await?;
    wait_until("the predecessor committed its answer", DEADLINE, || async {
        Ok(env.total_effects().await? == 2 && outbox::status(&env.pool).await?.pending == 1)
    })
    .await?;
    stop_predecessor.cancel();
    predecessor.await?;
    // The successor takes the partition over with the order's next message.
    env.publish_probes_in(vec![probe(2)]).await?;
    wait_until("both answers are published", DEADLINE, || async {
        Ok(env.queue_depth(&echoes).await? >= 3 && outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    let published: Vec<u64> = take_echoes(&env, &echoes)
        .await?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        published,
        vec![100, 1, 2],
        "the predecessor's answer before the successor's"
    );
    successor.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}

/// The inbox remembers a handled message for the deduplication window
/// (`relay.inbox_retention_hours`) and the outbox keeps a published row for
/// `relay.retention_hours`; after that the relay prunes them, in slices, and nothing younger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_and_published_outbox_rows_are_pruned_after_their_windows_and_not_before()
-> anyhow::Result<()> {
    let mut env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    env.settings.relay.retention_hours = 1;
    env.settings.relay.inbox_retention_hours = 2;
    let mut conn = env.pool.acquire().await?;
    // Inbox: 3 rows handled 3 h ago (past the 2 h window), 2 rows 90 minutes ago (within it).
    for (age_minutes, n) in [(180, 3), (90, 2)] {
        for _ in 0..n {
            sqlx::query(
                "insert into inbox (consumer, message_id, message_type, handled_at)
                 values ('probe', $1, 'probe.ping', now() - $2 * interval '1 minute')",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(f64::from(age_minutes))
            .execute(&mut *conn)
            .await?;
        }
    }
    // Outbox: published 2 h ago (past the 1 h retention), published 30 minutes ago, and one
    // never published, however old: a pending row is work, never pruned.
    for (published_minutes_ago, created_minutes_ago) in
        [(Some(120), 130), (Some(30), 40), (None, 600)]
    {
        let env_msg = Envelope::new("probe", "probe-1", Probe::default());
        outbox::insert(&mut conn, &[OutboxMessage::from_envelope(&env_msg)]).await?;
        sqlx::query(
            "update outbox set created_at = now() - $2 * interval '1 minute',
                    published_at = now() - $1 * interval '1 minute'
              where message_id = $3",
        )
        .bind(published_minutes_ago.map(f64::from))
        .bind(f64::from(created_minutes_ago))
        .bind(env_msg.message_id)
        .execute(&mut *conn)
        .await?;
    }
    drop(conn);

    let relay = Relay::new(
        PROBE,
        env.pool.clone(),
        env.settings.broker_url.clone(),
        env.names.clone(),
        &env.settings.relay,
        Arc::new(orderly_runtime::metrics::Metrics::default()),
    );
    let pruned = relay.prune().await?;
    assert_eq!(
        pruned,
        outbox::Pruned {
            outbox: 1,
            inbox: 3
        }
    );
    let inbox: i64 = sqlx::query_scalar("select count(*) from inbox")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(inbox, 2, "the rows within the window stay");
    let outbox_rows: Vec<bool> =
        sqlx::query_scalar("select published_at is null from outbox order by created_at")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(
        outbox_rows,
        vec![true, false],
        "the pending row and the recently published one stay"
    );
    // A second round finds nothing more.
    assert_eq!(relay.prune().await?, outbox::Pruned::default());
    Ok(())
}

/// A broker connection lost mid-stream does not reorder what the relay publishes: the rows
/// it could not publish, and those whose confirm the connection took with it, go out before
/// anything written after them (one order's messages in the order its worker wrote them).
/// The relay reaches RabbitMQ through a proxy the test cuts; its periodic sweep is set to a
/// minute, so only the reconnecting session's catch-up can restore the order in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_broker_connection_does_not_reorder_the_outbox() -> anyhow::Result<()> {
    let mut env = TestEnv::new(TestEnv::fast_retry(3), consumer()).await?;
    env.settings.relay.poll_interval_ms = 60_000;
    let (switch, up) = tokio::sync::watch::channel(true);
    let port = orderly_tests::proxy(5672, up).await?;
    let (handoff, handed) = outbox::Handoff::new();
    let relay = Relay::new(
        PROBE,
        env.pool.clone(),
        format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        env.names.clone(),
        &env.settings.relay,
        Arc::new(orderly_runtime::metrics::Metrics::default()),
    )
    .with_handoff(handed);
    let token = tokio_util::sync::CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(token.clone()));
    let echoes = env.names.queue("out.echo");
    // One echo per transaction, handed over on commit as a worker's consumer does.
    let write = |n: u32| {
        let pool = env.pool.clone();
        let handoff = handoff.clone();
        async move {
            let msg = Envelope::new("probe", format!("flow-{n}"), ProbeEcho { n });
            let mut tx = pool.begin().await?;
            let written = outbox::insert(&mut tx, &[OutboxMessage::from_envelope(&msg)]).await?;
            tx.commit().await?;
            handoff.hand(written);
            anyhow::Ok(())
        }
    };
    for n in 1..=20 {
        write(n).await?;
    }
    wait_until("the first twenty are published", DEADLINE, || async {
        Ok(env.queue_depth(&echoes).await? >= 20)
    })
    .await?;
    // The broker goes away while rows keep coming.
    switch.send_replace(false);
    for n in 21..=40 {
        write(n).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    switch.send_replace(true);
    for n in 41..=60 {
        write(n).await?;
    }
    wait_until("every row is published", DEADLINE, || async {
        Ok(outbox::status(&env.pool).await?.pending == 0)
    })
    .await?;
    // In the order written; a row whose confirm was lost may come twice (consumers drop the
    // repeat by message id), but never after a younger one.
    let mut first_seen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (id, n) in take_echoes(&env, &echoes).await? {
        if seen.insert(id) {
            first_seen.push(n);
        }
    }
    assert_eq!(first_seen, (1..=60).collect::<Vec<u64>>());
    token.cancel();
    let _ = relay_task.await;
    env.cleanup().await
}

/// `broker_url` listing a cluster's nodes, three of them down: every connection still
/// reaches the one that answers (a connection starts at a random node, so without the
/// fail-over most of these eight would fail), and a list of dead nodes only is an error
/// naming a node.
#[tokio::test]
async fn a_broker_url_list_fails_over_to_the_node_that_answers() -> anyhow::Result<()> {
    orderly_runtime::testing::ensure_services()?;
    let mut dead = Vec::new();
    for _ in 0..3 {
        // A port nobody listens on once the listener is dropped: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        dead.push(format!("amqp://guest:guest@127.0.0.1:{port}/%2f"));
    }
    let list = format!("{},{}", dead.join(","), orderly_tests::BROKER_URL);
    for _ in 0..8 {
        let connection = orderly_runtime::broker::connect(&list, "orderly-failover-test").await?;
        connection.close(200, "ok".into()).await?;
    }
    let Err(err) = orderly_runtime::broker::connect(&dead.join(","), "orderly-failover-test").await
    else {
        anyhow::bail!("connected with every node down");
    };
    assert!(err.to_string().contains("127.0.0.1:"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_takes_only_the_letters_there_when_it_began() -> anyhow::Result<()> {
    use lapin::{
        BasicProperties, ExchangeKind,
        options::{
            BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
            ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
        },
        types::FieldTable,
    };
    let env = TestEnv::new(TestEnv::fast_retry(2), consumer()).await?;
    // A queue whose "worker input" is its own dead-letter queue: every replayed letter is
    // back in the queue at once, as a letter the worker refuses again can be while the
    // replay is still going. Without a bound the replay would never end.
    let queue = "replay-loop";
    let (dlq, input) = (
        env.names.dead_letter_queue(queue),
        env.names.partition_exchange(queue),
    );
    let ch = env.connection.create_channel().await?;
    ch.exchange_declare(
        input.clone().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        dlq.clone().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        dlq.clone().into(),
        input.clone().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    for n in 0..3 {
        ch.basic_publish(
            "".into(),
            dlq.clone().into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default().with_message_id(format!("letter-{n}").into()),
        )
        .await?
        .await?;
    }
    let letters = DeadLetters::new(&ch, &env.names, queue);
    let replayed = tokio::time::timeout(DEADLINE, letters.replay(&[]))
        .await
        .map_err(|_| anyhow::anyhow!("the replay kept replaying what came back"))??;
    assert_eq!(replayed, 3, "each letter once");
    assert_eq!(env.queue_depth(&dlq).await?, 3, "all three are back");
    ch.queue_delete(dlq.into(), QueueDeleteOptions::default())
        .await?;
    ch.exchange_delete(input.into(), ExchangeDeleteOptions::default())
        .await?;
    env.cleanup().await
}
