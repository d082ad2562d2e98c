//! `orderly bench setups`: stage transitions per second with many setups in progress at
//! once, in a namespace and database of its own (created, then removed).
//!
//! A service product with a four-stage template (intake, work, client approval, QA) is
//! published; `orders` accepted orders of two service lines each start `2 × orders` setups
//! (10,000 by default). Then every setup is moved one step at a time, all setups in the same
//! round at once (intake submitted, intake review done, work done, approved, QA passed): a
//! request for a setup follows the answer to its previous one, as a client's or an operator's
//! does. The clock runs from the first request published until every request is answered
//! (applied, with its history row, `setup.status_changed`, `setup.request_answered` and, at
//! the end, `setup.completed` in the outbox); then until the relay has published them all
//! (a simulated merchant reads the merchant-events feed they go to).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use orderly_runtime::broker::{self, Names};
use orderly_runtime::config::ConsumerSettings;
use orderly_runtime::{Host, Settings, db, topology};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// What the benchmark measured.
#[derive(Debug, Clone)]
struct Figures {
    setups: usize,
    started_s: f64,
    transitions: usize,
    transitions_per_s: f64,
    published_s: f64,
    completed: i64,
    history_rows: i64,
}

const SKU: &str = "SVC-BENCH";

/// Runs the benchmark with `orders` orders of two service lines each.
pub(crate) async fn run(settings: Settings, orders: usize, write: bool) -> anyhow::Result<()> {
    let orders = orders.max(10);
    let scratch = orderly_runtime::Scratch::new(&settings, "setups").await?;
    let mut settings = scratch.settings.clone();
    settings.consumer = ConsumerSettings {
        prefetch: 512,
        concurrency: 4,
        batch_size: 128,
        delivery_limit: 10,
        ..ConsumerSettings::default()
    };
    settings.relay.batch_size = 512;
    let result = measure(&settings, orders).await;
    if let Err(e) = scratch.remove().await {
        tracing::warn!(error = %format!("{e:#}"), "benchmark clean-up failed");
    }
    let f = result?;
    crate::bench::report(
        "setups",
        "Setups: stage transitions with many setups in progress",
        &format!(
            "cargo run --release -p orderly --features bench -- bench setups --orders {orders}"
        ),
        &render(&f),
        write,
    )
}

fn render(f: &Figures) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| measure | figure | target |");
    let _ = writeln!(s, "|---|---|---|");
    let _ = writeln!(
        s,
        "| setups in progress at once (two service lines per order) | {} | 10,000 |",
        f.setups
    );
    let _ = writeln!(
        s,
        "| setups started from `order.accepted` | {:.1} s ({:.0} setups/s) | |",
        f.started_s,
        f.setups as f64 / f.started_s
    );
    let _ = writeln!(
        s,
        "| **stage transitions per second** (requests decided and answered, each with its history row and messages) | **{:.0}** ({} transitions) | ≥ 1,000{} |",
        f.transitions_per_s,
        f.transitions,
        if f.transitions_per_s >= 1000.0 {
            ""
        } else {
            ": **not met**"
        }
    );
    let _ = writeln!(
        s,
        "| every message published by the relay after | {:.1} s | |",
        f.published_s
    );
    let _ = writeln!(
        s,
        "| setups completed; history rows | {} of {}; {} ({} per setup) | |",
        f.completed,
        f.setups,
        f.history_rows,
        f.history_rows / i64::try_from(f.setups.max(1)).unwrap_or(1)
    );
    s
}

fn template() -> Value {
    json!({
        "version": 1,
        "stages": [
            {"key": "intake", "title": "Onboarding", "kind": "intake", "role": "client",
             "sla_business_hours": 16,
             "fields": [{"key": "shop_url", "label": "Shop", "kind": "url", "required": true},
                        {"key": "listings", "label": "Listings", "kind": "number", "required": true}]},
            {"key": "work", "title": "Work", "kind": "work", "role": "setup_manager",
             "sla_business_hours": 24},
            {"key": "approval", "title": "Approval", "kind": "client_approval", "role": "client",
             "sla_business_hours": 40, "loop_back_to": "work"},
            {"key": "qa", "title": "QA", "kind": "qa", "role": "setup_manager",
             "sla_business_hours": 8, "loop_back_to": "work", "checklist": ["links work"]}
        ]
    })
}

/// A full envelope of `message_type` with `payload`, checked against its contract.
fn envelope(message_type: &str, correlation: &str, payload: Value) -> anyhow::Result<Vec<u8>> {
    let envelope = json!({
        "message_id": Uuid::now_v7(),
        "message_type": message_type,
        "schema_version": 1,
        "correlation_id": correlation,
        "occurred_at": chrono::Utc::now(),
        "producer": "bench",
        "payload": payload,
    });
    let body = serde_json::to_vec(&envelope)?;
    let spec = orderly_contracts::catalog::spec(message_type, 1)
        .ok_or_else(|| anyhow::anyhow!("no contract for {message_type}"))?;
    (spec.validate)(orderly_contracts::decode_raw(&body)?)?;
    Ok(body)
}

async fn measure(settings: &Settings, orders: usize) -> anyhow::Result<Figures> {
    let names = Names::new(settings.namespace.clone());
    let mut host = Host::new(settings.clone());
    host.declare(&topology::standard_specs(settings)).await?;
    let pool = db::connect(&settings.database_url, orderly_setups::NAME, 4).await?;
    let connection = broker::connect(&settings.broker_url, "orderly-bench-setups").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let publish = |bodies: Vec<(&'static str, Vec<u8>)>| {
        let channel = channel.clone();
        let exchange = names.events_exchange();
        async move {
            let mut confirms = Vec::with_capacity(bodies.len());
            for (key, body) in bodies {
                confirms.push(
                    channel
                        .basic_publish(
                            exchange.as_str().into(),
                            key.into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..BasicPublishOptions::default()
                            },
                            &body,
                            BasicProperties::default()
                                .with_delivery_mode(2)
                                .with_type(key.into()),
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
    host.start_worker(orderly_setups::NAME, orderly_setups::SetupsHandler)
        .await?;
    // The merchant's systems read their feed (`out.merchant-events`, where every setup event
    // also goes): a full feed would hold the relay back (the outbound queues are
    // length-limited and refuse more), which is not what is measured here.
    let feed = connection.create_channel().await?;
    let mut merchant = feed
        .basic_consume(
            names
                .queue(orderly_contracts::routing::queues::OUT_MERCHANT_EVENTS)
                .as_str()
                .into(),
            "bench-merchant".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = merchant.next().await {}
    });

    let product = envelope(
        "catalog.product_upserted",
        SKU,
        json!({"sku": SKU, "gtins": [], "title": "Bench setup", "tax_category": "standard",
               "active": true, "stock_tracked": false, "setup": template(),
               "updated_at": chrono::Utc::now()}),
    )?;
    publish(vec![("catalog.product_upserted", product)]).await?;
    wait_for(&pool, "select count(*) from templates", 1).await?;

    // The orders: the contracts' own example of an accepted order, its two lines made the
    // service.
    let example = (orderly_contracts::catalog::spec("order.accepted", 1)
        .ok_or_else(|| anyhow::anyhow!("no order.accepted v1"))?
        .example)();
    let mut bodies = Vec::with_capacity(orders);
    for i in 0..orders {
        let id = Uuid::now_v7();
        let mut payload = example["payload"].clone();
        payload["order_id"] = json!(id);
        payload["external_order_id"] = json!(format!("B-{i:06}"));
        if let Some(lines) = payload["lines"].as_array_mut() {
            for line in lines {
                line["sku"] = json!(SKU);
                line["setup_template_version"] = json!(1);
            }
        }
        bodies.push((
            "order.accepted",
            envelope("order.accepted", &id.to_string(), payload)?,
        ));
    }
    let setups = orders * 2;
    let started = Instant::now();
    publish(bodies).await?;
    wait_for(&pool, "select count(*) from setups", setups as i64).await?;
    let started_s = started.elapsed().as_secs_f64();
    let ids: Vec<(Uuid, Uuid)> = sqlx::query_as("select setup_id, order_id from setups")
        .fetch_all(&pool)
        .await?;

    let rounds: [(&str, &str, Value); 5] = [
        (
            "submit_intake",
            "client",
            json!({"values": {"shop_url": "https://bench.example", "listings": "12"}}),
        ),
        ("advance", "setup_manager", json!({})),
        ("advance", "setup_manager", json!({})),
        ("approve", "client", json!({"approved": "preview 1"})),
        (
            "record_qa",
            "setup_manager",
            json!({"results": [{"item": "links work", "passed": true}]}),
        ),
    ];
    let clock = Instant::now();
    let mut asked = 0usize;
    for (action, role, extra) in &rounds {
        let mut bodies = Vec::with_capacity(ids.len());
        for (setup_id, order_id) in &ids {
            let mut payload = json!({
                "request_id": Uuid::now_v7(), "setup_id": setup_id, "order_id": order_id,
                "action": action, "requested_by": {"role": role, "id": "bench"},
            });
            if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
                p.extend(e.clone());
            }
            bodies.push((
                "setup.action_requested",
                envelope("setup.action_requested", &order_id.to_string(), payload)?,
            ));
        }
        asked += bodies.len();
        publish(bodies).await?;
        wait_for(&pool, "select count(*) from requests", asked as i64).await?;
    }
    let transitions_s = clock.elapsed().as_secs_f64();
    let outbox: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&pool)
        .await?;
    wait_for(
        &pool,
        "select count(*) from outbox where published_at is not null",
        outbox,
    )
    .await?;
    let published_s = clock.elapsed().as_secs_f64();
    let refused: i64 =
        sqlx::query_scalar("select count(*) from requests where outcome <> 'applied'")
            .fetch_one(&pool)
            .await?;
    anyhow::ensure!(refused == 0, "{refused} requests were refused");
    let completed: i64 =
        sqlx::query_scalar("select count(*) from setups where status = 'completed'")
            .fetch_one(&pool)
            .await?;
    let history_rows: i64 = sqlx::query_scalar("select count(*) from history")
        .fetch_one(&pool)
        .await?;
    host.stop(Duration::from_secs(10)).await;
    reader.abort();
    pool.close().await;
    Ok(Figures {
        setups,
        started_s,
        transitions: asked,
        transitions_per_s: asked as f64 / transitions_s,
        published_s,
        completed,
        history_rows,
    })
}

async fn wait_for(pool: &PgPool, sql: &'static str, n: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
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
