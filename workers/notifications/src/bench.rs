//! `orderly bench notifications`: how many notification requests per second the worker makes
//! from status events, and how many webhook deliveries per second it sends to a local
//! receiver, with per-order order checked on both.
//!
//! Runs in a namespace and database of its own (created, then removed). First the ceiling:
//! `events` receipts for unknown requests (the worker's cheapest message: inbox and one
//! insert, no outbox), published at once, until all are handled. Then:
//! 1. **Requests**: `events` status changes (orders of three: accepted, backordered,
//!    cancelled, each notifying the customer) are published step by step (every order's
//!    first change, then, once those are handled, every order's second, ...: an order's next
//!    change follows the previous one, as in the real lifecycle); the clock runs from the first
//!    publish until every event is handled. Figure: requests committed (each with its outbox
//!    row) per second, publishing included; then until the relay has published them all.
//! 2. **Webhooks**: an endpoint on a local receiver (axum on 127.0.0.1) subscribes to
//!    status changes; `events` more status changes (orders of four) are handled (step by
//!    step, as above), which queues one delivery each; then the dispatcher is started and the
//!    clock runs until the
//!    receiver has accepted every delivery. The receiver verifies every signature and that
//!    each order's deliveries arrive with sequence 1, 2, 3, 4 in that order.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use orderly_contracts::Envelope;
use orderly_contracts::messages::{
    CustomerContact, NotificationChannel, NotificationSent, OrderStatusChanged,
    WebhookEndpointRegistered,
};
use orderly_contracts::types::{Channel, EmailAddress, Locale, OrderStatus, StoreId};
use orderly_runtime::broker::{self, Names};
use orderly_runtime::config::ConsumerSettings;
use orderly_runtime::{Host, Settings, db, topology};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, Backoff};
use crate::{NAME, NotificationsHandler, WebhookSettings};

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Status events published for the requests phase.
    pub request_events: usize,
    /// Notification requests made from them.
    pub requests: usize,
    /// Requests per second (events handled, requests and outbox rows committed).
    pub requests_per_s: f64,
    /// The worker's cheapest message (a receipt for an unknown request: inbox plus one
    /// insert, no outbox row) per second, measured the same way in the same run.
    pub ceiling_per_s: f64,
    /// Seconds until the relay had published every request.
    pub requests_published_s: f64,
    /// Whether every order's requests came out in status order (accepted, backordered,
    /// cancelled), each once.
    pub requests_in_order: bool,
    /// Webhook deliveries made.
    pub deliveries: usize,
    /// Deliveries per second, dispatcher start to the last one accepted.
    pub deliveries_per_s: f64,
    /// Deliveries that arrived out of their order's sequence, or twice.
    pub deliveries_out_of_order: usize,
    /// Deliveries whose signature did not verify.
    pub bad_signatures: usize,
}

impl Figures {
    /// The figures as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| measure | value |");
        let _ = writeln!(s, "|---|---|");
        let _ = writeln!(
            s,
            "| notification requests from status events | {} from {} events |",
            self.requests, self.request_events
        );
        let _ = writeln!(s, "| requests per second | {:.0} |", self.requests_per_s);
        let _ = writeln!(
            s,
            "| same worker, cheapest message (receipt, no outbox) per second | {:.0} |",
            self.ceiling_per_s
        );
        let _ = writeln!(
            s,
            "| all requests published by the relay after | {:.2} s |",
            self.requests_published_s
        );
        let _ = writeln!(
            s,
            "| requests in per-order order, once each | {} |",
            if self.requests_in_order { "yes" } else { "NO" }
        );
        let _ = writeln!(s, "| webhook deliveries | {} |", self.deliveries);
        let _ = writeln!(
            s,
            "| webhook deliveries per second | {:.0} |",
            self.deliveries_per_s
        );
        let _ = writeln!(
            s,
            "| deliveries out of per-order order or repeated | {} |",
            self.deliveries_out_of_order
        );
        let _ = writeln!(
            s,
            "| deliveries with a bad signature | {} |",
            self.bad_signatures
        );
        s
    }
}

const SECRET: &str = "whsec_bench_0123456789abcdef0123456789abcdef";

/// Runs the benchmark with `events` status events per phase.
pub async fn run(settings: &Settings, events: usize) -> anyhow::Result<Figures> {
    let events = events.max(12);
    let scratch = orderly_runtime::Scratch::new(settings, "notif").await?;
    let mut settings = scratch.settings.clone();
    settings.consumer = ConsumerSettings {
        prefetch: 512,
        concurrency: 4,
        batch_size: 128,
        delivery_limit: 10,
        ..ConsumerSettings::default()
    };
    settings.relay.batch_size = 512;
    let names = Names::new(settings.namespace.clone());
    let specs = topology::standard_specs(&settings);
    let result = measure(&settings, &names, &specs, events).await;
    // Clean up whatever happened.
    if let Err(e) = scratch.remove().await {
        tracing::warn!(error = %format!("{e:#}"), "benchmark clean-up failed");
    }
    result
}

async fn measure(
    settings: &Settings,
    names: &Names,
    specs: &[topology::QueueSpec],
    events: usize,
) -> anyhow::Result<Figures> {
    let mut host = Host::new(settings.clone());
    host.declare(specs).await?;
    let pool = db::connect(&settings.database_url, NAME, 4).await?;
    let connection = broker::connect(&settings.broker_url, "orderly-bench-notifications").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let publish = |bodies: Vec<(String, Vec<u8>)>| {
        let channel = channel.clone();
        let exchange = names.events_exchange();
        async move {
            let mut confirms = Vec::with_capacity(bodies.len());
            for (key, body) in bodies {
                confirms.push(
                    channel
                        .basic_publish(
                            exchange.as_str().into(),
                            key.as_str().into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..BasicPublishOptions::default()
                            },
                            &body,
                            BasicProperties::default()
                                .with_delivery_mode(2)
                                .with_type(key.as_str().into()),
                        )
                        .await?,
                );
            }
            for c in confirms {
                c.await?;
            }
            anyhow::Ok(())
        }
    };

    // --- phase 1: requests -------------------------------------------------------------------
    let store = StoreId::parse("bench-shop")?;
    let orders = events / 3;
    let steps = [
        (None, OrderStatus::Accepted),
        (Some(OrderStatus::Accepted), OrderStatus::Backordered),
        (Some(OrderStatus::Backordered), OrderStatus::Cancelled),
    ];
    let order_ids: Vec<Uuid> = (0..orders).map(|_| Uuid::now_v7()).collect();
    host.start_worker(NAME, NotificationsHandler::new()).await?;

    // --- phase 0: the worker's cheapest message, as the ceiling of this machine right now ---
    // Receipts for unknown requests: the runtime's inbox and batching plus one insert, no
    // outbox row. Measured the same way as phase 1, in the same run, so phase 1 reads as a
    // fraction of what the worker's plumbing allows on a (shared, busy) machine.
    let mut bodies = Vec::with_capacity(events);
    for _ in 0..events {
        let receipt = Envelope::new(
            "bench",
            "bench",
            NotificationSent {
                request_id: Uuid::now_v7(),
                order_id: None,
                channel: NotificationChannel::Email,
                template: "order.accepted".into(),
                delivered_at: chrono::Utc::now(),
                provider: None,
                provider_message_id: None,
            },
        );
        bodies.push((receipt.message_type.clone(), receipt.to_json()));
    }
    let ceiling_started = Instant::now();
    publish(bodies).await?;
    wait_for(
        &pool,
        "select count(*) from inbox",
        events as i64,
        Duration::from_secs(600),
    )
    .await?;
    let ceiling_per_s = events as f64 / ceiling_started.elapsed().as_secs_f64();
    let handled_before = events;

    // Step by step across all orders: an order's next status change is published once its
    // previous one was handled, as in the real lifecycle (where a status change follows from
    // the previous step's work). Within a step, every order's event is in flight at once.
    let started = Instant::now();
    let mut request_events = 0;
    for (i, (from, to)) in steps.iter().enumerate() {
        let mut bodies = Vec::with_capacity(orders);
        for id in &order_ids {
            let env = status(&store, *id, i as u64 + 1, *from, *to)?;
            bodies.push((env.message_type.clone(), env.to_json()));
        }
        request_events += bodies.len();
        publish(bodies).await?;
        wait_for(
            &pool,
            "select count(*) from inbox",
            (handled_before + request_events) as i64,
            Duration::from_secs(600),
        )
        .await?;
    }
    let handled_s = started.elapsed().as_secs_f64();
    let requests: i64 = sqlx::query_scalar("select count(*) from requests")
        .fetch_one(&pool)
        .await?;
    wait_for(
        &pool,
        "select count(*) from outbox where published_at is not null and message_type = 'notification.requested'",
        requests,
        Duration::from_secs(600),
    )
    .await?;
    let published_s = started.elapsed().as_secs_f64();
    let in_order: bool = sqlx::query_scalar(
        "select coalesce(bool_and(events = array['order.accepted','order.backordered','order.cancelled']), false)
         from (select order_id, array_agg(event order by position) as events
               from requests group by order_id) per_order",
    )
    .fetch_one(&pool)
    .await?;
    let requests_in_order = in_order && requests as usize == orders * 3;

    // --- phase 2: webhooks -------------------------------------------------------------------
    let receiver = Receiver::start().await?;
    let hook_store = StoreId::parse("bench-hooks")?;
    let endpoint = Envelope::new(
        "bench",
        hook_store.to_string(),
        WebhookEndpointRegistered {
            endpoint_id: Uuid::now_v7(),
            store_id: hook_store.clone(),
            revision: 1,
            url: format!("http://{}/hook", receiver.addr),
            event_types: vec!["order.status_changed".into()],
            secret: SECRET.into(),
            enabled: true,
            allow_private: true,
        },
    );
    publish(vec![(endpoint.message_type.clone(), endpoint.to_json())]).await?;
    wait_for(
        &pool,
        "select count(*) from webhook_endpoints",
        1,
        Duration::from_secs(60),
    )
    .await?;
    let hook_orders = events / 4;
    let hook_ids: Vec<Uuid> = (0..hook_orders).map(|_| Uuid::now_v7()).collect();
    let hook_steps = [
        (None, OrderStatus::Accepted),
        (Some(OrderStatus::Accepted), OrderStatus::Processing),
        (Some(OrderStatus::Processing), OrderStatus::Shipped),
        (Some(OrderStatus::Shipped), OrderStatus::Delivered),
    ];
    let mut deliveries = 0;
    for (i, (from, to)) in hook_steps.iter().enumerate() {
        let mut bodies = Vec::with_capacity(hook_orders);
        for id in &hook_ids {
            let env = status(&hook_store, *id, i as u64 + 1, *from, *to)?;
            bodies.push((env.message_type.clone(), env.to_json()));
        }
        deliveries += bodies.len();
        publish(bodies).await?;
        wait_for(
            &pool,
            "select count(*) from webhook_deliveries",
            deliveries as i64,
            Duration::from_secs(600),
        )
        .await?;
    }
    let started = Instant::now();
    crate::start_dispatcher(
        &mut host,
        WebhookSettings {
            backoff: Backoff {
                min_delay: Duration::from_millis(100),
                ..Backoff::default()
            },
            batch_size: 512,
            concurrency: 64,
            ..WebhookSettings::default()
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.accepted() < deliveries {
        anyhow::ensure!(
            Instant::now() < deadline,
            "webhook deliveries did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deliveries_s = started.elapsed().as_secs_f64();
    let (out_of_order, bad_signatures) = receiver.problems();

    host.stop(Duration::from_secs(30)).await;
    pool.close().await;
    let _ = connection.close(200, "done".into()).await;
    Ok(Figures {
        request_events,
        requests: requests as usize,
        requests_per_s: requests as f64 / handled_s,
        ceiling_per_s,
        requests_published_s: published_s,
        requests_in_order,
        deliveries,
        deliveries_per_s: deliveries as f64 / deliveries_s,
        deliveries_out_of_order: out_of_order,
        bad_signatures,
    })
}

fn status(
    store: &StoreId,
    order_id: Uuid,
    sequence: u64,
    from: Option<OrderStatus>,
    to: OrderStatus,
) -> anyhow::Result<Envelope<OrderStatusChanged>> {
    Ok(Envelope::new(
        "bench",
        order_id.to_string(),
        OrderStatusChanged {
            order_id,
            store_id: store.clone(),
            channel: Channel::Storefront,
            marketplace: None,
            external_order_id: order_id.simple().to_string(),
            from,
            to,
            sequence,
            reason: None,
            nothing_to_ship: false,
            customer: CustomerContact {
                name: "Bench Customer".into(),
                email: Some(EmailAddress::parse("bench@example.com")?),
                locale: Locale::parse("de-DE")?,
            },
        },
    ))
}

async fn wait_for(pool: &PgPool, sql: &'static str, n: i64, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        if count >= n {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for {n} from `{sql}` (at {count})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A local webhook receiver that checks signatures and per-order sequence.
#[derive(Debug, Default)]
struct Tally {
    last: HashMap<String, i64>,
    accepted: usize,
    out_of_order: usize,
    bad_signatures: usize,
}

#[derive(Debug, Clone)]
struct Receiver {
    addr: std::net::SocketAddr,
    tally: Arc<Mutex<Tally>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(tally.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, tally })
    }

    fn accepted(&self) -> usize {
        self.tally.lock().map(|t| t.accepted).unwrap_or_default()
    }

    fn problems(&self) -> (usize, usize) {
        self.tally
            .lock()
            .map(|t| (t.out_of_order, t.bad_signatures))
            .unwrap_or_default()
    }
}

async fn receive(
    axum::extract::State(tally): axum::extract::State<Arc<Mutex<Tally>>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let timestamp: i64 = header("orderly-timestamp").parse().unwrap_or_default();
    let signature_ok = domain::verify(SECRET, timestamp, &body, header("orderly-signature"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let order = json["order_id"].as_str().unwrap_or_default().to_owned();
    let sequence = json["sequence"].as_i64().unwrap_or_default();
    if let Ok(mut t) = tally.lock() {
        let last = t.last.entry(order).or_insert(0);
        let in_order = sequence == *last + 1;
        *last = (*last).max(sequence);
        if !in_order {
            t.out_of_order += 1;
        }
        if !signature_ok {
            t.bad_signatures += 1;
        }
        t.accepted += 1;
    }
    axum::http::StatusCode::OK
}
