//! While PostgreSQL is unreachable, a worker holds its messages and resumes when the database
//! is back: nothing is retried, dead-lettered or lost for it.
//!
//! The worker reaches PostgreSQL through a TCP proxy the test controls, so "the database is
//! down" is a switch, not a stopped server shared with other tests.

use std::time::Duration;

use orderly_runtime::{Host, config::ConsumerSettings, health::Health};
use orderly_tests::{PROBE, Probe, ProbeHandler, TestEnv, proxy, wait_until};
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(60);

fn ready(health: &Health) -> bool {
    health.ready()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_pauses_the_worker_without_spending_retries() -> anyhow::Result<()> {
    let env = TestEnv::new(
        TestEnv::fast_retry(2),
        ConsumerSettings {
            prefetch: 8,
            concurrency: 2,
            batch_size: 4,
            delivery_limit: 5,
            ..ConsumerSettings::default()
        },
    )
    .await?;
    let (switch, up) = watch::channel(true);
    let port = proxy(5432, up).await?;
    let mut settings = env.settings.clone();
    let database = settings
        .database_url
        .rsplit_once('/')
        .map(|(_, db)| db.to_owned())
        .unwrap_or_default();
    settings.database_url = format!("postgres://postgres@127.0.0.1:{port}/{database}");

    let mut host = Host::new(settings);
    // The handler's side records go straight to the database, not through the proxy.
    host.start_worker(
        PROBE,
        ProbeHandler {
            side: env.side_pool().await?,
        },
    )
    .await?;
    let health = host.health();
    let first = env
        .publish_probe(Probe {
            n: 0,
            ..Probe::default()
        })
        .await?;
    wait_until("the first message is handled", DEADLINE, || async {
        Ok(env.effects(first).await? == 1)
    })
    .await?;
    assert!(ready(&health));

    switch.send_replace(false);
    let mut during = Vec::new();
    for n in 1..=6 {
        during.push(
            env.publish_probe(Probe {
                n,
                ..Probe::default()
            })
            .await?,
        );
    }
    let h = health.clone();
    wait_until("the worker reports the database down", DEADLINE, || {
        let h = h.clone();
        async move { Ok(!ready(&h)) }
    })
    .await?;
    assert_eq!(
        env.total_effects().await?,
        1,
        "nothing handled while the database is away"
    );
    assert_eq!(
        env.queue_depth(&env.names.dead_letter_queue(PROBE)).await?,
        0,
        "nothing dead-lettered"
    );

    switch.send_replace(true);
    wait_until(
        "everything handled once the database is back",
        DEADLINE,
        || async { Ok(env.total_effects().await? == 7) },
    )
    .await?;
    for id in &during {
        assert_eq!(env.effects(*id).await?, 1);
        // At most the first attempt was started (and perhaps started again after the
        // outage, from the same attempt): no retry was scheduled for an outage.
        assert_eq!(
            env.attempts(*id).await?,
            1,
            "the outage spent no retry attempt"
        );
    }
    assert_eq!(
        env.queue_depth(&env.names.dead_letter_queue(PROBE)).await?,
        0
    );
    let h = health.clone();
    wait_until("ready again", DEADLINE, || {
        let h = h.clone();
        async move { Ok(ready(&h)) }
    })
    .await?;
    host.stop(Duration::from_secs(10)).await;
    env.cleanup().await
}
