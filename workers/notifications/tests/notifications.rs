//! The notifications worker against the real RabbitMQ and PostgreSQL (an isolated world per
//! test) and, for webhooks, a real HTTP receiver on loopback.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use orderly_contracts::messages::{
    NotificationChannel, NotificationFailed, NotificationRequested, NotificationSent,
    WebhookEndpointDisabled,
};
use orderly_contracts::types::OrderStatus as S;
use orderly_contracts::{Envelope, Message};
use orderly_notifications::{NAME, NotificationsHandler, ops};
use orderly_runtime::config::ConsumerSettings;
use orderly_runtime::testing::{Tap, World, wait_until};
use sqlx::PgPool;
use uuid::Uuid;

/// A world whose worker handles one batch at a time: messages are handled in publish order,
/// so a test can state exactly what must come out.
async fn sequential_world() -> anyhow::Result<World> {
    World::with(
        World::fast_retry(),
        ConsumerSettings {
            concurrency: 1,
            ..ConsumerSettings::default()
        },
    )
    .await
}

/// Publishes `env` and waits until the worker has committed it.
async fn send<P: Message>(world: &World, pool: &PgPool, env: &Envelope<P>) -> anyhow::Result<()> {
    world.publish(env).await?;
    handled(pool, env.message_id).await
}

/// Publishes an envelope of any type.
async fn publish_any(world: &World, env: &orderly_contracts::RawEnvelope) -> anyhow::Result<()> {
    world
        .publish_raw(&env.message_type, &serde_json::to_vec(env)?)
        .await
}

async fn send_any(
    world: &World,
    pool: &PgPool,
    env: &orderly_contracts::RawEnvelope,
) -> anyhow::Result<()> {
    publish_any(world, env).await?;
    handled(pool, env.message_id).await
}

async fn requests(tap: &mut Tap, n: usize) -> anyhow::Result<Vec<NotificationRequested>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(tap.next_of::<NotificationRequested>(WAIT).await?.payload);
    }
    Ok(out)
}

async fn outbox_count(pool: &PgPool, message_type: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from outbox where message_type = $1")
            .bind(message_type)
            .fetch_one(pool)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_lifecycle_notifies_once_each_in_order_in_the_customers_language()
-> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world.tap(&[NotificationRequested::TYPE]).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(50)).await?;

    let store = store();
    // The store speaks German; this customer French: French wins.
    send(&world, &pool, &settings(&store, 1)).await?;
    let order = Order::new(&store, "fr-BE");
    let shipment = Uuid::now_v7();
    let lifecycle: Vec<orderly_contracts::RawEnvelope> = vec![
        raw(&order.status(1, None, S::Accepted)),
        raw(&order.status(2, Some(S::Accepted), S::Processing)),
        raw(&order.dispatched(shipment)),
        raw(&order.status(3, Some(S::Processing), S::Shipped)),
        raw(&order.invoice()),
        raw(&order.delivered(shipment)),
        raw(&order.status(4, Some(S::Shipped), S::Delivered)),
        raw(&order.status(5, Some(S::Delivered), S::Completed)),
    ];
    for env in &lifecycle {
        send_any(&world, &pool, env).await?;
    }
    let got = requests(&mut tap, 4).await?;
    let templates: Vec<&str> = got.iter().map(|r| r.template.as_str()).collect();
    assert_eq!(
        templates,
        [
            "order.accepted",
            "shipment.dispatched",
            "invoice.issued",
            "order.delivered"
        ]
    );
    for r in &got {
        assert_eq!(r.locale.as_str(), "fr-BE", "{}", r.template);
        assert_eq!(r.channel, NotificationChannel::Email);
        assert_eq!(r.recipient, "joerg.schaefer@example.de");
        assert_eq!(r.order_id, Some(order.id));
    }
    assert_eq!(
        got[0].subject.as_deref(),
        Some(format!("Votre commande {} est confirmée", order.number).as_str())
    );
    assert!(
        got[1].body.contains("00340434161094042557"),
        "tracking: {}",
        got[1].body
    );
    assert!(
        got[1].body.contains("https://www.dhl.de/"),
        "tracking link: {}",
        got[1].body
    );
    assert_eq!(got[2].attachments.len(), 1, "the invoice PDF is attached");
    assert!(got[2].attachments[0].uri.ends_with(".pdf"));

    // The whole lifecycle again, as redeliveries with new message ids: nothing new.
    for env in &lifecycle {
        let mut again = env.clone();
        again.message_id = Uuid::now_v7();
        send_any(&world, &pool, &again).await?;
    }
    assert_eq!(outbox_count(&pool, NotificationRequested::TYPE).await?, 4);
    let stored = ops::order_requests(&pool, order.id).await?;
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(|r| r.status == "requested"));

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

fn raw<P: Message>(env: &Envelope<P>) -> orderly_contracts::RawEnvelope {
    serde_json::from_value(serde_json::to_value(env).expect("encode")).expect("raw")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_shuffled_status_events_give_no_duplicate_and_no_stale_notification()
-> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(50)).await?;
    let order = Order::new(&store(), "de-DE");
    let accepted = order.status(1, None, S::Accepted);
    let backordered = order.status(2, Some(S::Accepted), S::Backordered);
    let processing = order.status(3, Some(S::Backordered), S::Processing);
    let shipped = order.status(4, Some(S::Processing), S::Shipped);
    let delivered = order.status(5, Some(S::Shipped), S::Delivered);
    let completed = order.status(6, Some(S::Delivered), S::Completed);
    let dup = |e: &Envelope<orderly_contracts::messages::OrderStatusChanged>| {
        let mut e = e.clone();
        e.message_id = Uuid::now_v7();
        e
    };
    // Shuffled, with duplicates (same message and new message ids).
    let arrivals = [
        backordered.clone(),
        accepted.clone(),
        dup(&backordered),
        delivered.clone(),
        processing,
        dup(&accepted),
        shipped,
        delivered.clone(),
        dup(&delivered),
        completed,
    ];
    for env in &arrivals {
        world.publish(env).await?;
        handled(&pool, env.message_id).await?;
    }

    let made = ops::order_requests(&pool, order.id).await?;
    let events: Vec<&str> = made.iter().map(|r| r.event.as_str()).collect();
    // Backordered (2) came first and was news; accepted (1) was then stale; delivered (5)
    // was news; everything after it older or a duplicate; completed notifies nobody.
    assert_eq!(events, ["order.backordered", "order.delivered"]);
    assert_eq!(outbox_count(&pool, NotificationRequested::TYPE).await?, 2);
    let suppressed = ops::order_suppressions(&pool, order.id).await?;
    let stale: Vec<(&str, &str)> = suppressed
        .iter()
        .map(|s| (s.event.as_str(), s.reference.as_str()))
        .collect();
    assert_eq!(
        stale,
        [
            ("order.accepted", "1"),
            ("order.processing", "3"),
            ("order.accepted", "1"),
            ("order.shipped", "4"),
        ]
    );
    assert!(suppressed.iter().all(|s| s.reason.contains("older than")));

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_event_before_the_order_is_parked_then_notified_after_the_confirmation()
-> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world.tap(&[NotificationRequested::TYPE]).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(50)).await?;
    let order = Order::new(&store(), "nl-NL");
    send(&world, &pool, &order.dispatched(Uuid::now_v7())).await?;
    assert_eq!(outbox_count(&pool, NotificationRequested::TYPE).await?, 0);
    send(&world, &pool, &order.status(1, None, S::Accepted)).await?;
    let got = requests(&mut tap, 2).await?;
    assert_eq!(got[0].template, "order.accepted");
    assert_eq!(got[1].template, "shipment.dispatched");
    assert_eq!(got[1].locale.as_str(), "nl-NL");
    assert!(
        got[1]
            .subject
            .as_deref()
            .is_some_and(|s| s.contains("onderweg"))
    );
    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_recorded_failures_retried_then_surfaced_and_unknown_ones_kept()
-> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world.tap(&[NotificationRequested::TYPE]).await?;
    let mut host = world.host();
    orderly_notifications::start(
        &mut host,
        NotificationsHandler::new()
            .with_max_attempts(3)
            .naming_retries(true),
        fast_webhooks(50),
    )
    .await?;

    // A receipt for a request nobody made: kept, nothing crashes, work goes on.
    let mut stray: NotificationSent = golden("notification.sent");
    stray.request_id = Uuid::now_v7();
    let stray = Envelope::new("notification-system", "x", stray);
    send(&world, &pool, &stray).await?;
    let mut stray_failed: NotificationFailed = golden("notification.failed");
    stray_failed.request_id = Uuid::now_v7();
    let stray_failed = Envelope::new("notification-system", "x", stray_failed);
    send(&world, &pool, &stray_failed).await?;
    let unknown = ops::unknown_receipts(&pool, 10).await?;
    assert_eq!(unknown.len(), 2);
    assert!(
        unknown
            .iter()
            .any(|u| u.request_id == stray.payload.request_id && u.kind == "sent")
    );
    assert!(
        unknown
            .iter()
            .any(|u| u.request_id == stray_failed.payload.request_id && u.kind == "failed")
    );
    assert!(world.dead_letters(NAME).await?.is_empty());

    // Sent: recorded against the request.
    let order = Order::new(&store(), "de-DE");
    send(&world, &pool, &order.status(1, None, S::Accepted)).await?;
    let confirmation = requests(&mut tap, 1).await?.remove(0);
    let mut receipt: NotificationSent = golden("notification.sent");
    receipt.request_id = confirmation.request_id;
    receipt.order_id = Some(order.id);
    receipt.template = confirmation.template.clone();
    send(
        &world,
        &pool,
        &Envelope::new("notification-system", order.id.to_string(), receipt),
    )
    .await?;

    // Failed (not permanent): requested again, twice, then given up and listed.
    send(
        &world,
        &pool,
        &order.status(2, Some(S::Accepted), S::Cancelled),
    )
    .await?;
    let mut current = requests(&mut tap, 1).await?.remove(0);
    let first_id = current.request_id;
    assert_eq!(current.retry_of, None, "a first request retries nothing");
    for attempt in 1..=3 {
        let mut failed: NotificationFailed = golden("notification.failed");
        failed.request_id = current.request_id;
        failed.order_id = Some(order.id);
        failed.channel = NotificationChannel::Email;
        failed.template = current.template.clone();
        failed.permanent = false;
        failed.error = format!("421 try again later (attempt {attempt})");
        send(
            &world,
            &pool,
            &Envelope::new("notification-system", order.id.to_string(), failed),
        )
        .await?;
        if attempt < 3 {
            let again = requests(&mut tap, 1).await?.remove(0);
            assert_ne!(again.request_id, current.request_id);
            assert_eq!(again.body, current.body, "the same notification again");
            assert_eq!(
                again.retry_of,
                Some(current.request_id),
                "names the request that failed"
            );
            current = again;
        }
    }
    let stored = ops::order_requests(&pool, order.id).await?;
    let statuses: Vec<(&str, i32, &str)> = stored
        .iter()
        .map(|r| (r.event.as_str(), r.attempt, r.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("order.accepted", 1, "sent"),
            ("order.cancelled", 1, "retried"),
            ("order.cancelled", 2, "retried"),
            ("order.cancelled", 3, "failed"),
        ]
    );
    assert!(
        stored[2..]
            .iter()
            .all(|r| r.first_request_id == Some(first_id))
    );
    let failed = ops::failed_notifications(&pool, 10).await?;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].request_id, current.request_id);
    assert!(
        failed[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("attempt 3"))
    );
    assert_eq!(outbox_count(&pool, NotificationRequested::TYPE).await?, 4);

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_gets_every_event_once_in_per_order_order_signed() -> anyhow::Result<()>
{
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let receiver = Receiver::start(Mode::Ok).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(50)).await?;
    let store = store();
    send(
        &world,
        &pool,
        &endpoint(&store, Uuid::now_v7(), 1, &receiver.url()),
    )
    .await?;

    // Three orders, their events interleaved.
    let orders: Vec<Order> = (0..3).map(|_| Order::new(&store, "de-DE")).collect();
    let mut expected: HashMap<String, Vec<Uuid>> = HashMap::new();
    let mut all = Vec::new();
    for step in 0..5u64 {
        for order in &orders {
            let env = match step {
                0 => raw(&order.status(1, None, S::Accepted)),
                1 => raw(&order.status(2, Some(S::Accepted), S::Processing)),
                2 => raw(&order.dispatched(Uuid::now_v7())),
                3 => raw(&order.status(3, Some(S::Processing), S::Shipped)),
                _ => raw(&order.invoice()),
            };
            expected
                .entry(order.id.to_string())
                .or_default()
                .push(env.message_id);
            all.push(env);
        }
    }
    for env in &all {
        publish_any(&world, env).await?;
    }
    let total = all.len();
    wait_until("every event delivered", WAIT, || {
        let n = receiver.accepted().len();
        async move { Ok(n >= total) }
    })
    .await?;
    let hits = receiver.accepted();
    assert_eq!(hits.len(), all.len(), "each event once");
    assert!(
        hits.iter().all(|h| h.signature_ok),
        "every signature verifies"
    );
    // The CloudEvents attributes beside the body, as HTTP headers.
    for h in &hits {
        let ce = |name: &str| h.cloudevents.get(name).map(String::as_str);
        assert_eq!(ce("ce-specversion"), Some("1.0"));
        assert_eq!(ce("ce-id"), Some(h.event_id.as_str()));
        assert_eq!(ce("ce-type"), Some(h.event_type.as_str()));
        assert_eq!(ce("ce-subject"), Some(h.order_id.as_str()));
        let source = format!("orderly/stores/{}", store.as_str());
        assert_eq!(ce("ce-source"), Some(source.as_str()));
        let schema = format!("urn:orderly:schema:{}:v1", h.event_type);
        assert_eq!(ce("ce-dataschema"), Some(schema.as_str()));
        assert!(ce("ce-time").is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
    }
    let mut seen: HashMap<String, Vec<(Uuid, i64)>> = HashMap::new();
    for h in &hits {
        seen.entry(h.order_id.clone())
            .or_default()
            .push((h.event_id.parse()?, h.sequence));
    }
    for (order, events) in &expected {
        let got = &seen[order];
        let ids: Vec<Uuid> = got.iter().map(|(id, _)| *id).collect();
        assert_eq!(&ids, events, "order {order}: events in order");
        let sequences: Vec<i64> = got.iter().map(|(_, s)| *s).collect();
        assert_eq!(sequences, (1..=5).collect::<Vec<_>>());
    }
    // The receiver answers before the dispatcher records the round's outcomes: wait for the
    // records, then check them.
    wait_until("every delivery recorded", WAIT, || async {
        let log = ops::deliveries(&pool, store.as_str(), 100).await?;
        Ok(log.iter().filter(|d| d.status == "delivered").count() >= total)
    })
    .await?;
    let log = ops::deliveries(&pool, store.as_str(), 100).await?;
    assert_eq!(log.len(), all.len());
    assert!(
        log.iter()
            .all(|d| d.status == "delivered" && d.attempts == 1),
        "each delivered at the first attempt: {log:?}"
    );

    // A delivery replayed from the log arrives again, same event id.
    let replayed = &log[0];
    ops::replay_delivery(&pool, replayed.delivery_id).await?;
    wait_until("replay delivered", WAIT, || {
        let n = receiver.accepted().len();
        async move { Ok(n > total) }
    })
    .await?;
    let last = receiver.accepted().pop().expect("a hit");
    assert_eq!(last.event_id, replayed.event_id.to_string());
    assert!(ops::replay_delivery(&pool, Uuid::now_v7()).await.is_err());

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_three_times_gets_the_event_with_growing_delays() -> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let receiver = Receiver::start(Mode::FailFirst(3)).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(150))
        .await?;
    let store = store();
    send(
        &world,
        &pool,
        &endpoint(&store, Uuid::now_v7(), 1, &receiver.url()),
    )
    .await?;
    let order = Order::new(&store, "de-DE");
    let first = order.status(1, None, S::Accepted);
    let second = order.status(2, Some(S::Accepted), S::Processing);
    world.publish(&first).await?;
    world.publish(&second).await?;
    wait_until("both delivered", WAIT, || {
        let n = receiver.accepted().len();
        async move { Ok(n >= 2) }
    })
    .await?;
    let hits = receiver.hits();
    let of_first: Vec<_> = hits
        .iter()
        .filter(|h| h.event_id == first.message_id.to_string())
        .collect();
    assert_eq!(of_first.len(), 4, "three failures, then success");
    assert!(of_first[3].accepted);
    let gaps: Vec<Duration> = of_first.windows(2).map(|w| w[1].at - w[0].at).collect();
    // 150, 300, 600 ms scheduled: each wait longer than the one before.
    assert!(gaps[0] >= Duration::from_millis(140), "{gaps:?}");
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "growing delays: {gaps:?}"
    );
    // The second event of the order waited for the first: it was never sent before it.
    let first_ok = of_first[3].at;
    assert!(
        hits.iter()
            .filter(|h| h.event_id == second.message_id.to_string())
            .all(|h| h.at >= first_ok),
        "per-order order"
    );
    let log = ops::deliveries(&pool, store.as_str(), 10).await?;
    let row = log
        .iter()
        .find(|d| d.event_id == first.message_id)
        .expect("logged");
    assert_eq!((row.status.as_str(), row.attempts), ("delivered", 4));
    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_endpoint_is_disabled_the_merchant_told_and_resumed_on_reregistration()
-> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world
        .tap(&[WebhookEndpointDisabled::TYPE, NotificationRequested::TYPE])
        .await?;
    let receiver = Receiver::start(Mode::AlwaysFail).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(20)).await?;
    let store = store();
    // Staff recipients (from the golden settings: an email address and an SMS number).
    send(&world, &pool, &settings(&store, 1)).await?;
    let endpoint_id = Uuid::now_v7();
    send(
        &world,
        &pool,
        &endpoint(&store, endpoint_id, 1, &receiver.url()),
    )
    .await?;
    let order = Order::new(&store, "de-DE");
    let shipment = Uuid::now_v7();
    // Dispatch and delivery only: no customer notification precedes the staff one.
    world.publish(&order.dispatched(shipment)).await?;

    let disabled = tap.next_of::<WebhookEndpointDisabled>(WAIT).await?.payload;
    assert_eq!(disabled.endpoint_id, endpoint_id);
    assert_eq!(disabled.consecutive_failures, 6);
    assert!(
        disabled.last_error.contains("503"),
        "{}",
        disabled.last_error
    );
    let staff = tap.next_of::<NotificationRequested>(WAIT).await?.payload;
    assert_eq!(staff.template, "webhook.endpoint_disabled");
    assert_eq!(staff.recipient, "bestellungen@beispiel-shop.de");
    assert_eq!(staff.locale.as_str(), "de", "the store's language");
    assert!(staff.body.contains(&receiver.url()));
    let endpoints = ops::endpoints(&pool, store.as_str()).await?;
    assert!(endpoints[0].disabled_at.is_some());
    let attempts = receiver.hits().len();
    assert_eq!(attempts, 6, "one delivery, six failed attempts");

    // Nothing is sent while disabled; a new registration resumes, and the waiting event
    // arrives.
    receiver.set_mode(Mode::Ok);
    send(&world, &pool, &order.delivered(shipment)).await?;
    send(
        &world,
        &pool,
        &endpoint(&store, endpoint_id, 2, &receiver.url()),
    )
    .await?;
    wait_until("both delivered after re-registration", WAIT, || {
        let n = receiver.accepted().len();
        async move { Ok(n >= 2) }
    })
    .await?;
    let types: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|h| h.event_type.clone())
        .collect();
    assert_eq!(types, ["shipment.dispatched", "shipment.delivered"]);

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_on_private_addresses_are_refused_unless_allowed() -> anyhow::Result<()> {
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let receiver = Receiver::start(Mode::Ok).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(5_000))
        .await?;
    let store = store();
    let port = receiver.addr.port();
    // At registration: an endpoint the policy will always refuse is refused with the reason
    // (issue 13), in any spelling of a loopback host, and never stored.
    for url in [
        format!("https://localhost:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://2130706433:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
    ] {
        let mut e = endpoint(&store, Uuid::now_v7(), 1, &url);
        e.payload.allow_private = false;
        world.publish(&e).await?;
    }
    let w = &world;
    wait_until("four registrations refused", WAIT, || async move {
        Ok(w.dead_letters(NAME).await?.len() == 4)
    })
    .await?;
    for letter in world.dead_letters(NAME).await? {
        assert!(
            letter.reason.contains("payload.url") && letter.reason.contains("loopback"),
            "{}",
            letter.reason
        );
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from webhook_endpoints")
        .fetch_one(&pool)
        .await?;
    assert_eq!(stored, 0, "a refused registration stores nothing");
    // At every attempt too: an endpoint stored before registrations were checked (or a name
    // that resolves to a private address) is refused when it would be called.
    for (url, what) in [
        (format!("https://localhost:{port}/hook"), "resolves to"),
        (format!("https://127.0.0.1:{port}/hook"), "loopback"),
    ] {
        let e = endpoint(&store, Uuid::now_v7(), 1, &url).payload;
        sqlx::query(
            "insert into webhook_endpoints (endpoint_id, store_id, revision, url, event_types,
                                            secret, enabled, allow_private)
             values ($1, $2, 1, $3, $4, $5, true, false)",
        )
        .bind(e.endpoint_id)
        .bind(e.store_id.as_str())
        .bind(&e.url)
        .bind(&e.event_types)
        .bind(&e.secret)
        .execute(&pool)
        .await?;
        let order = Order::new(&store, "de-DE");
        send(&world, &pool, &order.status(1, None, S::Accepted)).await?;
        wait_until("the attempt is refused", WAIT, || {
            let pool = pool.clone();
            let order = order.id.to_string();
            let store = store.to_string();
            async move {
                let log = ops::deliveries(&pool, &store, 100).await?;
                Ok(log
                    .iter()
                    .any(|d| d.order_key == order && d.last_error.is_some()))
            }
        })
        .await?;
        let log = ops::deliveries(&pool, store.as_str(), 100).await?;
        let row = log
            .iter()
            .find(|d| d.order_key == order.id.to_string())
            .expect("logged");
        let error = row.last_error.clone().unwrap_or_default();
        assert!(
            error.contains("refused") && error.contains(what),
            "{url}: {error}"
        );
    }
    assert!(
        receiver.hits().is_empty(),
        "nothing reached the private address"
    );
    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_and_checks_order() -> anyhow::Result<()> {
    orderly_runtime::testing::ensure_services()?;
    let settings = orderly_runtime::Settings {
        broker_url: orderly_runtime::testing::BROKER_URL.into(),
        database_url: format!("{}/orderly", orderly_runtime::testing::POSTGRES_SERVER),
        queue_type: orderly_runtime::config::QueueType::Classic,
        ..orderly_runtime::Settings::default()
    };
    let figures = orderly_notifications::bench::run(&settings, 120).await?;
    assert_eq!(figures.requests, 120);
    assert!(figures.requests_in_order);
    assert_eq!(figures.deliveries, 120);
    assert_eq!(figures.deliveries_out_of_order, 0);
    assert_eq!(figures.bad_signatures, 0);
    assert!(
        figures
            .markdown()
            .contains("| webhook deliveries per second |")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rules_templates_and_staff_replace_the_defaults() -> anyhow::Result<()> {
    use orderly_contracts::messages::{
        NotificationAudience, NotificationEvent, NotificationRule, NotificationTemplate,
    };
    use orderly_contracts::types::Locale;
    let world = sequential_world().await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world.tap(&[NotificationRequested::TYPE]).await?;
    let mut host = world.host();
    orderly_notifications::start(&mut host, NotificationsHandler::new(), fast_webhooks(50)).await?;
    let store = store();

    // A broken template is refused with the field and the reason; nothing is stored.
    let mut broken = settings(&store, 5);
    broken.payload.templates[0].body = "Bestellung {order_nummer}".into();
    world.publish(&broken).await?;
    wait_until("the broken settings are dead-lettered", WAIT, || async {
        Ok(!world.dead_letters(NAME).await?.is_empty())
    })
    .await?;
    let dead = world.dead_letters(NAME).await?;
    assert!(
        dead[0].reason.contains("payload.templates[0].body")
            && dead[0].reason.contains("order_nummer"),
        "{}",
        dead[0].reason
    );
    assert_eq!(ops::rules(&pool, store.as_str()).await?.0, None);

    // No confirmation; a custom text for the backorder; staff told about orders on hold.
    let mut custom = settings(&store, 2);
    custom.payload.rules = vec![NotificationRule {
        event: NotificationEvent::OrderAccepted,
        audience: NotificationAudience::Customer,
        enabled: false,
        channel: NotificationChannel::Email,
        template: None,
    }];
    custom.payload.templates = vec![NotificationTemplate {
        key: "order.backordered".into(),
        locale: Locale::parse("de")?,
        subject: "{store_name}: {order_number} kommt später".into(),
        body: "Hallo {customer_name}, es dauert noch ({status}).".into(),
    }];
    send(&world, &pool, &custom).await?;
    // An older revision changes nothing.
    send(&world, &pool, &settings(&store, 1)).await?;
    let (revision, rules) = ops::rules(&pool, store.as_str()).await?;
    assert_eq!(revision, Some(2));
    assert!(
        rules
            .iter()
            .any(|r| r.event == NotificationEvent::OrderAccepted && !r.enabled && !r.default)
    );

    let order = Order::new(&store, "de-CH");
    send(&world, &pool, &order.status(1, None, S::OnHold)).await?;
    send(
        &world,
        &pool,
        &order.status(2, Some(S::OnHold), S::Accepted),
    )
    .await?;
    send(
        &world,
        &pool,
        &order.status(3, Some(S::Accepted), S::Backordered),
    )
    .await?;
    let got = requests(&mut tap, 2).await?;
    assert_eq!(got[0].template, "order.on_hold");
    assert_eq!(got[0].recipient, "bestellungen@beispiel-shop.de");
    assert_eq!(got[1].template, "order.backordered");
    assert_eq!(
        got[1].subject.as_deref(),
        Some(format!("Beispiel Shop: {} kommt später", order.number).as_str())
    );
    assert_eq!(
        got[1].body,
        "Hallo Jörg Schäfer, es dauert noch (im Rückstand)."
    );
    assert_eq!(got[1].locale.as_str(), "de-CH");
    assert_eq!(outbox_count(&pool, NotificationRequested::TYPE).await?, 2);
    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}
