//! Order analytics end to end: orders placed days ago (their `placed_at` chosen here),
//! shipped and delivered by a carrier played here with event times chosen here, some
//! cancelled and one held for an item exception and resolved, every worker running. The
//! figures the API serves must equal figures computed here from what was placed and
//! shipped (counts, revenue, average order value, nearest-rank lead-time percentiles, late
//! shipments), and must not move when the api worker receives the same events again, with
//! new ids, in reverse order.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::Duration,
};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use futures_util::StreamExt;
use lapin::{
    BasicProperties,
    options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions},
    types::FieldTable,
};
use orderly::sim::{self, Publisher};
use orderly_contracts::RawEnvelope;
use orderly_runtime::{
    Host,
    testing::{World, wait_until},
};
use orderly_tests::http::Client;
use rand::{SeedableRng, rngs::StdRng};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(120);

/// Storefront orders `AN-0` … `AN-29` (shop-de), marketplace orders `AN-30` … `AN-35`
/// (bol-nl).
const STOREFRONT: usize = 30;
const ORDERS: usize = 36;
/// Cancelled before they ship (the carrier leaves them alone).
const CANCELLED: [usize; 3] = [4, 13, 22];
/// Imported with a GTIN the catalog does not know: held until resolved.
const EXCEPTION: usize = 35;

/// When order `i` was placed: from three days ago at midnight (UTC), every 97 minutes.
fn placed(base: DateTime<Utc>, i: usize) -> DateTime<Utc> {
    base + chrono::Duration::minutes(97 * i as i64)
}

/// How long order `i` took to leave the warehouse.
fn to_ship(i: usize) -> chrono::Duration {
    chrono::Duration::hours(1 + (i % 7) as i64) + chrono::Duration::minutes(i as i64)
}

/// How long order `i` took from dispatch to delivery.
fn to_deliver(i: usize) -> chrono::Duration {
    chrono::Duration::hours(5 + ((i * 3) % 11) as i64) + chrono::Duration::minutes(7)
}

fn index_of(external_id: &str) -> Option<usize> {
    external_id.strip_prefix("AN-")?.parse().ok()
}

/// The warehouse and carrier: every shipment asked for leaves and arrives at the times
/// chosen for its order (in the past), except the orders to be cancelled.
async fn carrier(
    world: &World,
    publisher: Publisher,
    base: DateTime<Utc>,
) -> anyhow::Result<lapin::Channel> {
    let channel = world.connection.create_channel().await?;
    let mut deliveries = channel
        .basic_consume(
            world.names.queue("out.warehouse").into(),
            "analytics-carrier".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(d)) = deliveries.next().await {
            let _ = d.acker.ack(BasicAckOptions::default()).await;
            let Ok(message) = serde_json::from_slice::<Value>(&d.data) else {
                continue;
            };
            if message["message_type"] != "shipment.requested" {
                continue;
            }
            let p = &message["payload"];
            let Some(i) = p["external_order_id"].as_str().and_then(index_of) else {
                continue;
            };
            if CANCELLED.contains(&i) {
                continue;
            }
            n += 1;
            let shipped = placed(base, i) + to_ship(i);
            let delivered = shipped + to_deliver(i);
            for (raw, at) in [("in_transit", shipped), ("delivered", delivered)] {
                let event = sim::envelope(
                    "shipment.updated",
                    "carrier:orderly",
                    p["order_id"].as_str().unwrap_or_default(),
                    json!({"shipment_id": p["shipment_id"], "carrier": "dhl",
                           "tracking_number": format!("00340434{n:012}"),
                           "vocabulary": "orderly", "raw_status": raw, "event_at": at}),
                );
                if publisher.send(&event).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(channel)
}

/// A duration as the analytics report it (docs/api.md): its first six binary digits, the
/// rest zero (exact below 64 s).
fn rounded(seconds: i64) -> i64 {
    if seconds < 64 {
        return seconds.max(0);
    }
    let dropped = 58 - seconds.leading_zeros();
    (seconds >> dropped) << dropped
}

/// Nearest-rank percentile (as PostgreSQL's `percentile_disc` computes it), as reported.
fn percentile(values: &[i64], p: f64) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p * n as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().map(rounded)
}

/// What this test knows of one order.
#[derive(Debug, Clone)]
struct Placed {
    i: usize,
    store: &'static str,
    placed_at: DateTime<Utc>,
    total: Decimal,
    tax: Option<Decimal>,
}

/// The figures expected of one (day, store) group.
#[derive(Debug, Default)]
struct Expected {
    orders: i64,
    cancelled: i64,
    gross: Decimal,
    tax: Decimal,
    exceptions: i64,
    shipped: Vec<i64>,
    delivered_after: Vec<i64>,
    delivered: Vec<i64>,
    late_after_3h: i64,
}

/// The period of a day: itself, or its week's Monday.
type Period = fn(NaiveDate) -> NaiveDate;

fn day(d: NaiveDate) -> NaiveDate {
    d
}

fn week(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

fn expected(orders: &[Placed], period: Period) -> BTreeMap<(NaiveDate, &'static str), Expected> {
    let mut out: BTreeMap<(NaiveDate, &'static str), Expected> = BTreeMap::new();
    for o in orders {
        let e = out
            .entry((period(o.placed_at.date_naive()), o.store))
            .or_default();
        e.orders += 1;
        if o.i == EXCEPTION {
            e.exceptions += 1;
        }
        if CANCELLED.contains(&o.i) {
            e.cancelled += 1;
            continue;
        }
        e.gross += o.total;
        e.tax += o.tax.unwrap_or_default();
        let ship = to_ship(o.i).num_seconds();
        let deliver = to_deliver(o.i).num_seconds();
        e.shipped.push(ship);
        e.delivered_after.push(deliver);
        e.delivered.push(ship + deliver);
        if to_ship(o.i) > chrono::Duration::hours(3) {
            e.late_after_3h += 1;
        }
    }
    out
}

/// Compares the API's rows with the figures computed here.
fn check(rows: &[Value], orders: &[Placed], period: Period, late_after_3h: bool) {
    let expected = expected(orders, period);
    assert_eq!(
        rows.len(),
        expected.len(),
        "one row per day and store: {rows:#?}"
    );
    for ((day, store), e) in &expected {
        let row = rows
            .iter()
            .find(|r| r["period"] == day.to_string() && r["store_id"] == *store)
            .unwrap_or_else(|| panic!("no row for {day} {store}: {rows:#?}"));
        let what = format!("{day} {store}: {row}");
        assert_eq!(row["currency"], "EUR", "{what}");
        assert_eq!(row["orders"], e.orders, "{what}");
        assert_eq!(row["cancelled"], e.cancelled, "{what}");
        let money = |v: &Value| v.as_str().and_then(|s| s.parse::<Decimal>().ok());
        assert_eq!(money(&row["revenue"]["gross"]), Some(e.gross), "{what}");
        assert_eq!(money(&row["revenue"]["tax"]), Some(e.tax), "{what}");
        assert_eq!(
            money(&row["revenue"]["net"]),
            Some(e.gross - e.tax),
            "{what}"
        );
        let kept = e.orders - e.cancelled;
        let aov = (kept > 0).then(|| {
            (e.gross / Decimal::from(kept))
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        });
        assert_eq!(money(&row["average_order_value"]), aov, "{what}");
        #[allow(clippy::cast_precision_loss)]
        let rate = ((e.cancelled as f64 / e.orders as f64) * 10_000.0).round() / 10_000.0;
        assert_eq!(row["cancellation_rate"].as_f64(), Some(rate), "{what}");
        assert_eq!(row["exceptions"], e.exceptions, "{what}");
        assert_eq!(row["backordered"], 0, "{what}");
        let lead = &row["lead_time_seconds"];
        for (name, values) in [
            ("placed_to_shipped", &e.shipped),
            ("shipped_to_delivered", &e.delivered_after),
            ("placed_to_delivered", &e.delivered),
        ] {
            assert_eq!(
                lead[name]["p50"].as_i64(),
                percentile(values, 0.5),
                "{name} p50, {what}"
            );
            assert_eq!(
                lead[name]["p90"].as_i64(),
                percentile(values, 0.9),
                "{name} p90, {what}"
            );
        }
        let late = if late_after_3h { e.late_after_3h } else { 0 };
        assert_eq!(row["late_shipments"], late, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_equal_the_figures_of_the_orders_placed_and_survive_replayed_events()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = Host::new(world.settings.clone().with_section(
        "api",
        orderly_api::ApiSettings {
            rate_per_second: 0.0,
            address_rate_per_second: 0.0,
            ..orderly_api::ApiSettings::default()
        },
    ));
    let running = orderly::workers::start_all(&mut host).await?;
    let api: SocketAddr = running
        .iter()
        .find_map(|w| w.listening.filter(|_| w.name == orderly_api::NAME))
        .ok_or_else(|| anyhow::anyhow!("the api worker did not say where it listens"))?;
    let client = Client::new(api);
    let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
    sim::seed(&publisher, 2).await?;
    sim::wait_for_catalog(&world.settings.database_url, DEADLINE).await?;
    // No order before inventory holds every count: the test expects no backorder.
    let inventory = world.pool("inventory").await?;
    sim::wait_for_stock(&inventory, 2, DEADLINE).await?;
    inventory.close().await;
    let db = world.pool(orderly_api::NAME).await?;
    orderly_api::staff::add(&db, "admin@example.com", "order_admin", &[]).await?;
    let admin = orderly_api::staff::issue_token(&db, "admin@example.com", 1)
        .await?
        .token;
    let mut tap = world
        .tap(&[
            "order.accepted",
            "shipment.dispatched",
            "shipment.delivered",
        ])
        .await?;

    let today = Utc::now().date_naive();
    let base = (today - Days::new(3))
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| anyhow::anyhow!("midnight"))?
        .and_utc();
    let _carrier = carrier(&world, publisher.clone(), base).await?;
    let products: Vec<_> = sim::catalog()
        .into_iter()
        .enumerate()
        .filter(|(n, _)| *n != 3)
        .map(|(_, p)| p)
        .collect();
    let mut rng = StdRng::seed_from_u64(4);
    let mut placed_orders = Vec::new();
    for i in 0..ORDERS {
        let marketplace = i >= STOREFRONT;
        let product = products[i % products.len()].clone();
        let quantity = 1 + (i % 3) as u32;
        let mut order = sim::order_placed(
            &mut rng,
            &format!("AN-{i}"),
            marketplace,
            &[(product, quantity)],
            1,
        );
        order["payload"]["placed_at"] = json!(placed(base, i));
        if i == EXCEPTION {
            order["payload"]["lines"][0]["gtin"] = json!(sim::gtin("400638177777"));
        }
        let total: Decimal = order["payload"]["total"]
            .as_str()
            .unwrap_or_default()
            .parse()?;
        placed_orders.push(Placed {
            i,
            store: if marketplace { "bol-nl" } else { "shop-de" },
            placed_at: placed(base, i),
            total,
            tax: None,
        });
        publisher.send(&order).await?;
    }

    // The held one: resolved by mapping its line to the product it is.
    let queue = "/api/v1/admin/order-exceptions";
    wait_until("the exception listed", DEADLINE, || async {
        let answer = client.get(Some(&admin), queue).await?;
        Ok(answer.json["exceptions"]
            .as_array()
            .is_some_and(|e| !e.is_empty()))
    })
    .await?;
    let listed = client.get(Some(&admin), queue).await?;
    let exception_id = listed.json["exceptions"][0]["exception_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sku = products[EXCEPTION % products.len()].sku;
    let before_resolve = Utc::now();
    let resolved = client
        .post(
            Some(&admin),
            &format!("{queue}/{exception_id}/resolve"),
            &[],
            &json!({"resolution": "map_to_sku", "sku": sku}).to_string(),
        )
        .await?;
    assert_eq!(resolved.status, 202, "{resolved:?}");

    // Every order but the three to cancel is delivered; those three wait in processing.
    let count = |query: &'static str| {
        let client = client.clone();
        let admin = admin.clone();
        async move {
            let answer = client
                .get(
                    Some(&admin),
                    &format!("/api/v1/admin/orders?q=AN-&count=true&limit=1&{query}"),
                )
                .await?;
            anyhow::Ok(answer.json["total"].as_i64().unwrap_or_default())
        }
    };
    wait_until("every order delivered or waiting", DEADLINE, || async {
        Ok(
            count("status=delivered,completed").await? == (ORDERS - CANCELLED.len()) as i64
                && count("status=processing").await? == CANCELLED.len() as i64,
        )
    })
    .await?;
    let after_resolve = Utc::now();
    let ids: Vec<(String, String)> = {
        let answer = client
            .get(Some(&admin), "/api/v1/admin/orders?q=AN-&limit=200")
            .await?;
        answer.json["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                (
                    o["external_order_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    o["order_id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    for i in CANCELLED {
        let (_, order_id) = ids
            .iter()
            .find(|(e, _)| *e == format!("AN-{i}"))
            .ok_or_else(|| anyhow::anyhow!("AN-{i} not listed"))?;
        let answer = client
            .post(
                Some(&admin),
                &format!("/api/v1/admin/orders/{order_id}/cancel"),
                &[],
                r#"{"reason": "customer asked"}"#,
            )
            .await?;
        assert_eq!(answer.status, 202, "{answer:?}");
    }
    wait_until("the three cancelled", DEADLINE, || async {
        Ok(count("status=cancelled").await? == CANCELLED.len() as i64)
    })
    .await?;

    // The tax orders computed, and the events to replay, as the bus carried them.
    let mut replay: Vec<RawEnvelope> = Vec::new();
    let (mut accepted, mut dispatched, mut delivered) = (0, 0, 0);
    let shipped = ORDERS - CANCELLED.len();
    while accepted < ORDERS || dispatched < shipped || delivered < shipped {
        let raw = tap.next_raw(DEADLINE).await?;
        match raw.message_type.as_str() {
            "order.accepted" => {
                accepted += 1;
                let i = raw.payload["external_order_id"]
                    .as_str()
                    .and_then(index_of)
                    .ok_or_else(|| anyhow::anyhow!("not ours: {raw:?}"))?;
                placed_orders[i].tax = raw.payload["tax"].as_str().map(str::parse).transpose()?;
            }
            "shipment.dispatched" => dispatched += 1,
            "shipment.delivered" => delivered += 1,
            _ => continue,
        }
        replay.push(raw);
    }

    let from = base.date_naive();
    let path = format!("/api/v1/admin/analytics/orders?from={from}&to={today}&group=store");
    let answer = client.get(Some(&admin), &path).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    let rows = answer.json["rows"].as_array().cloned().unwrap_or_default();
    check(&rows, &placed_orders, day, false);
    let late = client
        .get(Some(&admin), &format!("{path}&late_after_hours=3"))
        .await?;
    check(
        late.json["rows"].as_array().map_or(&[][..], Vec::as_slice),
        &placed_orders,
        day,
        true,
    );
    // By week: the whole weeks from the week rollups, the days of the weeks the range cuts
    // from the day rollups, merged.
    let weekly = client
        .get(
            Some(&admin),
            &format!("{path}&interval=week&late_after_hours=3"),
        )
        .await?;
    assert_eq!(weekly.status, 200, "{weekly:?}");
    check(
        weekly.json["rows"]
            .as_array()
            .map_or(&[][..], Vec::as_slice),
        &placed_orders,
        week,
        true,
    );
    // The held order's time to resolve: from placed to the resolution, as it happened.
    let held_day = placed(base, EXCEPTION).date_naive().to_string();
    let held_row = rows
        .iter()
        .find(|r| r["period"] == held_day.as_str() && r["store_id"] == "bol-nl")
        .cloned()
        .unwrap_or_default();
    let resolve = held_row["time_to_resolve_seconds"]["p50"]
        .as_i64()
        .unwrap_or_default();
    let placed_held = placed(base, EXCEPTION);
    assert!(
        rounded((before_resolve - placed_held).num_seconds() - 1) <= resolve
            && resolve <= rounded((after_resolve - placed_held).num_seconds()),
        "{held_row}"
    );

    // The top products: units of the orders not cancelled, per product.
    let mut units: BTreeMap<String, i64> = BTreeMap::new();
    for o in placed_orders.iter().filter(|o| !CANCELLED.contains(&o.i)) {
        *units
            .entry(products[o.i % products.len()].sku.to_owned())
            .or_default() += 1 + (o.i % 3) as i64;
    }
    let top = client
        .get(
            Some(&admin),
            &format!("/api/v1/admin/analytics/top-skus?from={from}&to={today}&limit=100"),
        )
        .await?;
    let served: BTreeMap<String, i64> = top.json["skus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["sku"].as_str().unwrap_or_default().to_owned(),
                s["units"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(served, units, "{:?}", top.json);

    // The same events again, to the api worker alone: new ids, newest first, one of them
    // twice (the same copy, its id and all). Nothing may move.
    let mut replayed = BTreeSet::new();
    let target = world.names.partition_exchange(orderly_api::NAME);
    let mut copies: Vec<RawEnvelope> = replay
        .iter()
        .rev()
        .map(|raw| {
            let mut copy = raw.clone();
            copy.message_id = Uuid::now_v7();
            copy
        })
        .collect();
    if let Some(first) = copies.first().cloned() {
        copies.push(first);
    }
    for copy in &copies {
        replayed.insert(copy.message_id);
        world
            .channel
            .basic_publish(
                target.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(copy)?,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_correlation_id(copy.correlation_id.as_str().into())
                    .with_message_id(copy.message_id.to_string().into())
                    .with_type(copy.message_type.clone().into()),
            )
            .await?
            .await?;
    }
    let replayed: Vec<Uuid> = replayed.into_iter().collect();
    wait_until("the api worker handled every copy", DEADLINE, || async {
        let handled: i64 =
            sqlx::query_scalar("select count(*) from api.inbox where message_id = any($1)")
                .bind(&replayed)
                .fetch_one(&db)
                .await?;
        Ok(handled == replayed.len() as i64)
    })
    .await?;
    let again = client.get(Some(&admin), &path).await?;
    check(
        again.json["rows"].as_array().map_or(&[][..], Vec::as_slice),
        &placed_orders,
        day,
        false,
    );
    assert_eq!(again.json["rows"], answer.json["rows"], "nothing moved");

    // The sums the projection kept, change by change, are the sums of the facts.
    let mut tx = db.begin().await?;
    for statement in [
        "create temp table kept_orders as select * from api.order_rollups",
        "create temp table kept_skus as select * from api.sku_rollups",
        "select api.rebuild_order_rollups()",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    let (rows, differ): (i64, i64) = sqlx::query_as(
        "select (select count(*) from api.order_rollups) + (select count(*) from api.sku_rollups), \
           (select count(*) from ((table kept_orders except table api.order_rollups) \
              union all (table api.order_rollups except table kept_orders)) d) \
           + (select count(*) from ((table kept_skus except table api.sku_rollups) \
              union all (table api.sku_rollups except table kept_skus)) d)",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    assert!(rows > 0, "rollups were kept");
    assert_eq!(differ, 0, "the rollups kept equal a rebuild from the facts");

    host.stop(Duration::from_secs(5)).await;
    db.close().await;
    world.cleanup().await
}
