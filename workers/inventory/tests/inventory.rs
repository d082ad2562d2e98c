//! The inventory worker against the real RabbitMQ and PostgreSQL: messages in through the
//! events exchange, messages out observed with a tap, state checked in its schema.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::try_join_all;
use orderly_contracts::{
    Envelope, Message, Validate,
    messages::{
        AcceptedLine, AdjustmentReason, CancellationScope, CancelledLine, DispatchedItem,
        InventoryAdjusted, OrderAccepted, OrderCancelled, ProductUpserted, ReleaseReason,
        ShipmentDispatched, StockLevelChanged, StockReleased, StockReserved, StockUnavailable,
        WarehouseUpserted,
    },
    types::{Amount, Gtin, Quantity, Sku, WarehouseId},
};
use orderly_inventory::{InventoryHandler, NAME, consistency_check, store};
use orderly_runtime::{
    Host,
    metrics::Outcome,
    testing::{World, wait_until},
};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// (line, sku, units) of an allocation.
type Picked = (String, String, u32);

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

/// The golden example of `message_type`, decoded: realistic payloads to start from.
fn golden<P: Message>() -> P {
    let spec = orderly_contracts::catalog()
        .into_iter()
        .find(|s| s.message_type == P::TYPE)
        .unwrap();
    let body = serde_json::to_vec(&(spec.example)()).unwrap();
    orderly_contracts::decode_raw(&body)
        .unwrap()
        .decode::<P>()
        .unwrap()
        .payload
}

/// The golden `order.accepted` with another id, placement time and lines (10.00 each).
fn accepted(
    order_id: Uuid,
    placed_at: DateTime<Utc>,
    lines: &[(&str, &str, u32)],
) -> OrderAccepted {
    let mut order: OrderAccepted = golden();
    let template = order.lines[0].clone();
    order.order_id = order_id;
    order.external_order_id = format!("T-{}", order_id.simple());
    order.placed_at = placed_at;
    order.lines = lines
        .iter()
        .map(|(line_id, s, q)| AcceptedLine {
            line_id: (*line_id).to_owned(),
            sku: sku(s),
            quantity: Quantity::new(*q).unwrap(),
            unit_price: Amount::parse("10.00").unwrap(),
            discount: Amount::parse("0.00").unwrap(),
            gtin: None,
            ..template.clone()
        })
        .collect();
    let units: u32 = lines.iter().map(|(_, _, q)| q).sum();
    order.discount = Amount::parse("0.00").unwrap();
    order.tax = None;
    order.total =
        Amount::new(Decimal::from(units) * Decimal::TEN + order.shipping.value()).unwrap();
    order.validate().unwrap();
    order
}

fn count(
    warehouse: &str,
    s: &str,
    on_hand: u32,
    reference: &str,
    as_of: DateTime<Utc>,
) -> InventoryAdjusted {
    InventoryAdjusted {
        warehouse_id: wh(warehouse),
        sku: sku(s),
        set_on_hand: Some(on_hand),
        delta: None,
        reason: AdjustmentReason::StockCount,
        source: "wms".into(),
        reference: reference.into(),
        as_of,
    }
}

fn delta(warehouse: &str, s: &str, delta: i64, reference: &str) -> InventoryAdjusted {
    InventoryAdjusted {
        warehouse_id: wh(warehouse),
        sku: sku(s),
        set_on_hand: None,
        delta: Some(delta),
        reason: AdjustmentReason::GoodsReceived,
        source: "wms".into(),
        reference: reference.into(),
        as_of: Utc::now(),
    }
}

fn cancelled(
    order_id: Uuid,
    request_id: Uuid,
    lines: Option<&[(&str, &str, u32)]>,
) -> OrderCancelled {
    let mut cancel: OrderCancelled = golden();
    cancel.order_id = order_id;
    cancel.request_id = Some(request_id);
    cancel.external_order_id = format!("T-{}", order_id.simple());
    match lines {
        None => {
            cancel.scope = CancellationScope::Order;
        }
        Some(lines) => {
            cancel.scope = CancellationScope::Lines;
            cancel.lines = lines
                .iter()
                .map(|(line_id, s, q)| CancelledLine {
                    line_id: (*line_id).to_owned(),
                    sku: Some(sku(s)),
                    quantity: Quantity::new(*q).unwrap(),
                })
                .collect();
        }
    }
    cancel.validate().unwrap();
    cancel
}

fn dispatched(
    shipment_id: Uuid,
    order_id: Uuid,
    warehouse: &str,
    items: &[(&str, &str, u32)],
) -> ShipmentDispatched {
    let mut shipment: ShipmentDispatched = golden();
    shipment.shipment_id = shipment_id;
    shipment.order_id = order_id;
    shipment.external_order_id = format!("T-{}", order_id.simple());
    shipment.warehouse_id = wh(warehouse);
    shipment.items = items
        .iter()
        .map(|(line_id, s, q)| DispatchedItem {
            line_id: (*line_id).to_owned(),
            sku: sku(s),
            quantity: Quantity::new(*q).unwrap(),
        })
        .collect();
    shipment.validate().unwrap();
    shipment
}

/// An envelope as the producer of `P` would send it.
fn envelope<P: Message>(correlation: impl Into<String>, payload: P) -> Envelope<P> {
    Envelope::new("test", correlation, payload)
}

/// A running inventory worker on a fresh world, and its schema's pool.
async fn start() -> anyhow::Result<(World, Host, PgPool)> {
    let world = World::new().await?;
    let mut host = world.host();
    host.start_worker(NAME, InventoryHandler::new()).await?;
    let pool = world.pool(NAME).await?;
    Ok((world, host, pool))
}

/// Whether the worker has handled (committed) message `id`.
async fn handled(pool: &PgPool, id: Uuid) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("select exists(select 1 from inbox where message_id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

async fn publish_and_wait<P: Message>(
    world: &World,
    pool: &PgPool,
    env: &Envelope<P>,
) -> anyhow::Result<()> {
    world.publish(env).await?;
    let id = env.message_id;
    wait_until(&format!("{} {id} handled", P::TYPE), WAIT, || {
        handled(pool, id)
    })
    .await
}

/// (on_hand, reserved) of a stock row; (0, 0) if there is none.
async fn stock(pool: &PgPool, warehouse: &str, s: &str) -> anyhow::Result<(i64, i64)> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("select on_hand, reserved from stock where warehouse_id = $1 and sku = $2")
            .bind(warehouse)
            .bind(s)
            .fetch_optional(pool)
            .await?;
    Ok(row.unwrap_or((0, 0)))
}

async fn scalar(pool: &PgPool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

async fn assert_consistent(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let violations = consistency_check(&mut conn).await?;
    assert!(violations.is_empty(), "consistency check: {violations:#?}");
    Ok(())
}

async fn finish(world: World, host: Host) -> anyhow::Result<()> {
    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_warehouse_can_serve_alone_is_split_across_two() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut levels = world.tap(&[StockLevelChanged::TYPE]).await?;
    let mut tap = world
        .tap(&[StockReserved::TYPE, StockUnavailable::TYPE])
        .await?;

    let mut product: ProductUpserted = golden();
    product.sku = sku("MUG-BLU-350");
    publish_and_wait(&world, &pool, &envelope("MUG-BLU-350", product)).await?;

    let now = Utc::now();
    for adjustment in [
        count("berlin-1", "MUG-BLU-350", 5, "C-1", now),
        count("hamburg-2", "TEA-EARL-100", 5, "C-2", now),
    ] {
        publish_and_wait(&world, &pool, &envelope("wms", adjustment)).await?;
    }
    let first = levels.next::<StockLevelChanged>(WAIT).await?.payload;
    let second = levels.next::<StockLevelChanged>(WAIT).await?.payload;
    let mug = if first.sku.as_str() == "MUG-BLU-350" {
        &first
    } else {
        &second
    };
    assert_eq!((mug.on_hand, mug.available, mug.sequence), (5, 5, 1));
    assert_eq!(
        mug.gtins,
        vec![Gtin::parse("5901234123457").unwrap()],
        "GTINs from the catalog"
    );

    let order_id = Uuid::now_v7();
    let order = accepted(
        order_id,
        now,
        &[("1", "MUG-BLU-350", 2), ("2", "TEA-EARL-100", 1)],
    );
    world
        .publish(&envelope(order_id.to_string(), order))
        .await?;

    let reserved = tap.next::<StockReserved>(WAIT).await?;
    assert_eq!(reserved.correlation_id, order_id.to_string());
    let got: Vec<(String, Vec<Picked>)> = reserved
        .payload
        .allocations
        .iter()
        .map(|a| {
            (
                a.warehouse_id.to_string(),
                a.lines
                    .iter()
                    .map(|l| (l.line_id.clone(), l.sku.to_string(), l.quantity.get()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "berlin-1".to_owned(),
                vec![("1".to_owned(), "MUG-BLU-350".to_owned(), 2)]
            ),
            (
                "hamburg-2".to_owned(),
                vec![("2".to_owned(), "TEA-EARL-100".to_owned(), 1)]
            ),
        ]
    );
    assert_eq!(stock(&pool, "berlin-1", "MUG-BLU-350").await?, (5, 2));
    assert_eq!(stock(&pool, "hamburg-2", "TEA-EARL-100").await?, (5, 1));

    // One level message per SKU the order touched, each with the next sequence.
    let mut after: Vec<StockLevelChanged> = vec![
        levels.next::<StockLevelChanged>(WAIT).await?.payload,
        levels.next::<StockLevelChanged>(WAIT).await?.payload,
    ];
    after.sort_by(|a, b| a.sku.cmp(&b.sku));
    assert_eq!(after[0].sku.as_str(), "MUG-BLU-350");
    assert_eq!(
        (after[0].reserved, after[0].available, after[0].sequence),
        (2, 3, 2)
    );
    assert_eq!(
        (after[1].reserved, after[1].available, after[1].sequence),
        (1, 4, 2)
    );

    // The preferred warehouse serves when it can: hamburg-2 gets MUGs and a better priority.
    {
        let mut conn = pool.acquire().await?;
        store::set_warehouse_priority(&mut conn, &wh("hamburg-2"), 10).await?;
    }
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("hamburg-2", "MUG-BLU-350", 4, "C-3", now)),
    )
    .await?;
    let second_order = Uuid::now_v7();
    world
        .publish(&envelope(
            second_order.to_string(),
            accepted(second_order, now, &[("1", "MUG-BLU-350", 3)]),
        ))
        .await?;
    let reserved = tap.next::<StockReserved>(WAIT).await?.payload;
    assert_eq!(reserved.order_id, second_order);
    assert_eq!(reserved.allocations.len(), 1);
    assert_eq!(reserved.allocations[0].warehouse_id, wh("hamburg-2"));

    assert_consistent(&pool).await?;
    finish(world, host).await
}

/// 300 orders of one unit race for 100 units held by two warehouses, handled by two copies
/// of the worker at once (each with several concurrent batches). Exactly 100 are reserved;
/// the 200 others are backordered. 50 more units then serve exactly the 50 oldest
/// backorders, and the ledger agrees with the stock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_oversells_with_two_workers_and_serves_the_oldest_backorders_first()
-> anyhow::Result<()> {
    const SKU: &str = "HOT-ITEM-1";
    let world = World::new().await?;
    // Numbered copies, so that each takes its share of the partitions at once.
    let mut first = world.copy_host(1, 2);
    first.start_worker(NAME, InventoryHandler::new()).await?;
    let mut second = world.copy_host(2, 2);
    second.start_worker(NAME, InventoryHandler::new()).await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world
        .tap(&[StockReserved::TYPE, StockUnavailable::TYPE])
        .await?;

    let t0 = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", SKU, 60, "INIT-1", t0)),
    )
    .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("hamburg-2", SKU, 40, "INIT-2", t0)),
    )
    .await?;

    // Placed one millisecond apart, in publishing order.
    let orders: Vec<Envelope<OrderAccepted>> = (0..300)
        .map(|i| {
            let id = Uuid::now_v7();
            let placed_at = t0 + TimeDelta::milliseconds(i);
            envelope(id.to_string(), accepted(id, placed_at, &[("1", SKU, 1)]))
        })
        .collect();
    try_join_all(orders.iter().map(|o| world.publish(o))).await?;

    let mut reserved: BTreeSet<Uuid> = BTreeSet::new();
    let mut unavailable: BTreeSet<Uuid> = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while reserved.len() + unavailable.len() < 300 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let raw = tap.next_raw(left).await?;
        if raw.message_type == StockReserved::TYPE {
            let msg = raw.decode::<StockReserved>()?.payload;
            let units: u32 = msg
                .allocations
                .iter()
                .flat_map(|a| &a.lines)
                .map(|l| l.quantity.get())
                .sum();
            assert_eq!(units, 1);
            assert!(
                reserved.insert(msg.order_id),
                "reserved twice: {}",
                msg.order_id
            );
        } else {
            let msg = raw.decode::<StockUnavailable>()?.payload;
            assert!(msg.backordered);
            assert_eq!(msg.shortages[0].available, 0);
            assert!(
                unavailable.insert(msg.order_id),
                "refused twice: {}",
                msg.order_id
            );
        }
    }
    assert_eq!(reserved.len(), 100, "exactly the stock is reserved");
    assert_eq!(unavailable.len(), 200);
    assert!(reserved.is_disjoint(&unavailable));
    assert_eq!(stock(&pool, "berlin-1", SKU).await?, (60, 60));
    assert_eq!(stock(&pool, "hamburg-2", SKU).await?, (40, 40));
    assert_eq!(scalar(&pool, "select count(*) from backorders").await?, 200);
    // Both copies took part.
    for host in [&first, &second] {
        assert!(
            host.metrics().count(NAME, Outcome::Handled) > 0,
            "a worker copy handled nothing"
        );
    }
    assert_consistent(&pool).await?;

    // The 50 oldest backorders, by when the order was placed.
    let mut placed: Vec<(DateTime<Utc>, Uuid)> = orders
        .iter()
        .filter(|o| unavailable.contains(&o.payload.order_id))
        .map(|o| (o.payload.placed_at, o.payload.order_id))
        .collect();
    placed.sort();
    let oldest: BTreeSet<Uuid> = placed.iter().take(50).map(|(_, id)| *id).collect();

    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", delta("berlin-1", SKU, 50, "GR-4711")),
    )
    .await?;
    let mut served = BTreeSet::new();
    while served.len() < 50 {
        let msg = tap.next::<StockReserved>(WAIT).await?;
        assert_eq!(msg.correlation_id, msg.payload.order_id.to_string());
        assert!(served.insert(msg.payload.order_id));
    }
    assert_eq!(served, oldest, "the 50 oldest backorders, and only those");
    assert!(
        tap.drain(Duration::from_millis(500)).await.is_empty(),
        "nothing else was reserved"
    );
    assert_eq!(stock(&pool, "berlin-1", SKU).await?, (110, 110));
    assert_eq!(scalar(&pool, "select count(*) from backorders").await?, 150);
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from orders where state = 'reserved'"
        )
        .await?,
        150
    );
    assert_consistent(&pool).await?;

    first.stop(Duration::from_secs(10)).await;
    second.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_releases_once_and_takes_backorders_off_the_list() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut tap = world
        .tap(&[
            StockReserved::TYPE,
            StockUnavailable::TYPE,
            StockReleased::TYPE,
        ])
        .await?;
    let now = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 10, "C-1", now)),
    )
    .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "TEA", 10, "C-2", now)),
    )
    .await?;

    let order_id = Uuid::now_v7();
    let order = accepted(order_id, now, &[("1", "MUG", 3), ("2", "TEA", 2)]);
    world
        .publish(&envelope(order_id.to_string(), order))
        .await?;
    tap.next::<StockReserved>(WAIT).await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 3));

    // Part of line 1 is cancelled.
    let request = Uuid::now_v7();
    let partial = envelope(
        order_id.to_string(),
        cancelled(order_id, request, Some(&[("1", "MUG", 2)])),
    );
    world.publish(&partial).await?;
    let released = tap.next::<StockReleased>(WAIT).await?.payload;
    assert_eq!(released.reason, ReleaseReason::LinesCancelled);
    assert_eq!(released.lines.len(), 1);
    assert_eq!(
        (
            released.lines[0].line_id.as_str(),
            released.lines[0].quantity.get()
        ),
        ("1", 2)
    );
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 1));

    // The same cancellation again (new message id, same request): nothing more is released.
    let again = envelope(
        order_id.to_string(),
        cancelled(order_id, request, Some(&[("1", "MUG", 2)])),
    );
    publish_and_wait(&world, &pool, &again).await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 1));

    // The whole order: the rest of both lines.
    let whole = envelope(
        order_id.to_string(),
        cancelled(order_id, Uuid::now_v7(), None),
    );
    world.publish(&whole).await?;
    let released = tap.next::<StockReleased>(WAIT).await?.payload;
    assert_eq!(released.reason, ReleaseReason::OrderCancelled);
    let mut lines: Vec<(String, u32)> = released
        .lines
        .iter()
        .map(|l| (l.line_id.clone(), l.quantity.get()))
        .collect();
    lines.sort();
    assert_eq!(lines, [("1".to_owned(), 1), ("2".to_owned(), 2)]);
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 0));
    assert_eq!(stock(&pool, "berlin-1", "TEA").await?, (10, 0));

    // Cancelling it once more releases nothing and emits nothing.
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            order_id.to_string(),
            cancelled(order_id, Uuid::now_v7(), None),
        ),
    )
    .await?;

    // A backordered order cancelled: off the list, nothing released.
    let waiting = Uuid::now_v7();
    world
        .publish(&envelope(
            waiting.to_string(),
            accepted(waiting, now, &[("1", "MUG", 50)]),
        ))
        .await?;
    assert_eq!(
        tap.next::<StockUnavailable>(WAIT).await?.payload.order_id,
        waiting
    );
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            waiting.to_string(),
            cancelled(waiting, Uuid::now_v7(), None),
        ),
    )
    .await?;
    assert_eq!(scalar(&pool, "select count(*) from backorders").await?, 0);

    // An order cancelled before it was accepted (messages out of order) reserves nothing.
    let early = Uuid::now_v7();
    publish_and_wait(
        &world,
        &pool,
        &envelope(early.to_string(), cancelled(early, Uuid::now_v7(), None)),
    )
    .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope(early.to_string(), accepted(early, now, &[("1", "MUG", 1)])),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 0));

    assert!(
        tap.drain(Duration::from_millis(300)).await.is_empty(),
        "no other message"
    );
    assert_consistent(&pool).await?;
    finish(world, host).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_turns_the_reservation_into_a_deduction_once() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut tap = world.tap(&[StockReserved::TYPE]).await?;
    let mut levels = world.tap(&[StockLevelChanged::TYPE]).await?;
    let now = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 10, "C-1", now)),
    )
    .await?;

    let order_id = Uuid::now_v7();
    world
        .publish(&envelope(
            order_id.to_string(),
            accepted(order_id, now, &[("1", "MUG", 3)]),
        ))
        .await?;
    tap.next::<StockReserved>(WAIT).await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 3));
    // The relay puts the CloudEvents attributes beside the body, from the envelope.
    let (first, props) = levels.next_delivery(WAIT).await?;
    let header = |key: &str| orderly_runtime::broker::header_str(&props, key).map(str::to_owned);
    let id = first.message_id.to_string();
    for (key, value) in [
        ("cloudEvents_specversion", "1.0"),
        ("cloudEvents_id", id.as_str()),
        ("cloudEvents_type", "stock.level_changed"),
        ("cloudEvents_source", NAME),
        ("cloudEvents_subject", "MUG"),
        (
            "cloudEvents_dataschema",
            "urn:orderly:schema:stock.level_changed:v1",
        ),
    ] {
        assert_eq!(header(key).as_deref(), Some(value), "{key}");
    }
    let time = header("cloudEvents_time").unwrap_or_default();
    assert_eq!(DateTime::parse_from_rfc3339(&time)?, first.occurred_at);
    let level = first.decode::<StockLevelChanged>()?.payload;
    assert_eq!((level.on_hand, level.reserved), (10, 0));
    let level = levels.next_of::<StockLevelChanged>(WAIT).await?.payload;
    assert_eq!((level.on_hand, level.reserved), (10, 3));

    // Two parcels: 2 units, then the last one.
    let first = Uuid::now_v7();
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            order_id.to_string(),
            dispatched(first, order_id, "berlin-1", &[("1", "MUG", 2)]),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (8, 1));
    // Available is unchanged (7 before and after), but a connector syncing on-hand and
    // reserved is told they moved.
    let level = levels.next_of::<StockLevelChanged>(WAIT).await?.payload;
    assert_eq!(
        (level.on_hand, level.reserved, level.available),
        (8, 1, 7),
        "the level after the first parcel: {level:?}"
    );

    // The same dispatch reported again (new message id): no second deduction.
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            order_id.to_string(),
            dispatched(first, order_id, "berlin-1", &[("1", "MUG", 2)]),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (8, 1));

    publish_and_wait(
        &world,
        &pool,
        &envelope(
            order_id.to_string(),
            dispatched(Uuid::now_v7(), order_id, "berlin-1", &[("1", "MUG", 1)]),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (7, 0));
    assert_eq!(
        scalar(&pool, "select dispatched from reservations").await?,
        3
    );

    // Cancelling after everything shipped releases nothing.
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            order_id.to_string(),
            cancelled(order_id, Uuid::now_v7(), None),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (7, 0));
    assert_consistent(&pool).await?;
    finish(world, host).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_arriving_out_of_order_never_undo_newer_ones() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let t = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 50, "COUNT-2", t)),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (50, 0));

    // The count taken an hour earlier arrives late: ignored.
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            "wms",
            count("berlin-1", "MUG", 80, "COUNT-1", t - TimeDelta::hours(1)),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (50, 0));

    // Deltas apply once each, by source and reference.
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", delta("berlin-1", "MUG", 5, "GR-1")),
    )
    .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", delta("berlin-1", "MUG", 5, "GR-1")),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (55, 0));

    // A newer count applies.
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            "wms",
            count("berlin-1", "MUG", 40, "COUNT-3", t + TimeDelta::minutes(1)),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (40, 0));

    // Taking away units promised to an order is refused, with a reason naming the stock.
    let order_id = Uuid::now_v7();
    let mut tap = world.tap(&[StockReserved::TYPE]).await?;
    world
        .publish(&envelope(
            order_id.to_string(),
            accepted(order_id, t, &[("1", "MUG", 30)]),
        ))
        .await?;
    tap.next::<StockReserved>(WAIT).await?;
    world
        .publish(&envelope("wms", delta("berlin-1", "MUG", -20, "LOST-1")))
        .await?;
    wait_until("the refused adjustment is dead-lettered", WAIT, || async {
        Ok(!world.dead_letters(NAME).await?.is_empty())
    })
    .await?;
    let letters = world.dead_letters(NAME).await?;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("MUG")
            && letters[0].reason.contains("berlin-1")
            && letters[0].reason.contains("reserved"),
        "{}",
        letters[0].reason
    );
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (40, 30));
    assert_consistent(&pool).await?;
    finish(world, host).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_order_accepted_reserves_once() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let now = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 10, "C-1", now)),
    )
    .await?;

    let order_id = Uuid::now_v7();
    let order = accepted(order_id, now, &[("1", "MUG", 4)]);
    // The same payload twice, as a relay re-publishing after a crash or an upstream replay
    // would send it: different message ids, so the inbox cannot catch it.
    let a = envelope(order_id.to_string(), order.clone());
    let b = envelope(order_id.to_string(), order);
    try_join_all([world.publish(&a), world.publish(&b)]).await?;
    for id in [a.message_id, b.message_id] {
        wait_until("both copies handled", WAIT, || handled(&pool, id)).await?;
    }
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (10, 4));
    let emitted: i64 = sqlx::query_scalar(
        "select count(*) from outbox where message_type = 'stock.reserved' and correlation_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_one(&pool)
    .await?;
    assert_eq!(emitted, 1);
    assert_consistent(&pool).await?;
    finish(world, host).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_stock_goes_to_the_oldest_backorder() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut tap = world
        .tap(&[
            StockReserved::TYPE,
            StockUnavailable::TYPE,
            StockReleased::TYPE,
        ])
        .await?;
    let now = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 3, "C-1", now)),
    )
    .await?;

    let first = Uuid::now_v7();
    world
        .publish(&envelope(
            first.to_string(),
            accepted(first, now, &[("1", "MUG", 3)]),
        ))
        .await?;
    assert_eq!(
        tap.next::<StockReserved>(WAIT).await?.payload.order_id,
        first
    );
    let waiting = Uuid::now_v7();
    world
        .publish(&envelope(
            waiting.to_string(),
            accepted(waiting, now, &[("1", "MUG", 2)]),
        ))
        .await?;
    let refused = tap.next::<StockUnavailable>(WAIT).await?.payload;
    assert_eq!(
        (refused.order_id, refused.shortages[0].available),
        (waiting, 0)
    );

    world
        .publish(&envelope(
            first.to_string(),
            cancelled(first, Uuid::now_v7(), None),
        ))
        .await?;
    assert_eq!(
        tap.next::<StockReleased>(WAIT).await?.payload.order_id,
        first
    );
    let served = tap.next::<StockReserved>(WAIT).await?;
    assert_eq!(served.payload.order_id, waiting);
    assert_eq!(served.correlation_id, waiting.to_string());
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (3, 2));
    assert_eq!(scalar(&pool, "select count(*) from backorders").await?, 0);
    assert_consistent(&pool).await?;
    finish(world, host).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consistency_check_names_what_is_wrong() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut tap = world.tap(&[StockReserved::TYPE]).await?;
    let now = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 10, "C-1", now)),
    )
    .await?;
    let order_id = Uuid::now_v7();
    world
        .publish(&envelope(
            order_id.to_string(),
            accepted(order_id, now, &[("1", "MUG", 4)]),
        ))
        .await?;
    tap.next::<StockReserved>(WAIT).await?;
    host.stop(Duration::from_secs(10)).await;
    assert_consistent(&pool).await?;

    // Someone edits the tables by hand, past the ledger.
    sqlx::query("update stock set on_hand = on_hand + 7")
        .execute(&pool)
        .await?;
    sqlx::query("update reservations set released = 1")
        .execute(&pool)
        .await?;
    sqlx::query("update orders set state = 'cancelled'")
        .execute(&pool)
        .await?;

    let mut conn = pool.acquire().await?;
    let violations = consistency_check(&mut conn).await?;
    let expect = [
        "stock of MUG in berlin-1 is on_hand 17, reserved 4, but its movements add up to on_hand 10, reserved 4",
        "stock of MUG in berlin-1 has 4 reserved, but its open reservations add up to 3",
        &format!(
            "reservation of order {order_id} line 1 in berlin-1: reserved 4, released 1, dispatched 0; its movements say reserved 4, released 0, dispatched 0"
        ),
        &format!("order {order_id} is cancelled but still holds 3 reserved units"),
    ];
    for line in expect {
        assert!(
            violations.iter().any(|v| v == line),
            "missing `{line}` in {violations:#?}"
        );
    }
    assert_eq!(violations.len(), expect.len(), "{violations:#?}");
    drop(conn);
    world.cleanup().await
}

/// Orders for two of four SKUs each, racing in two copies of the worker. Each batch of
/// messages is one transaction, so without the stock turn lock batches would lock SKUs in
/// different orders and deadlock (about 200 times for these 240 orders, measured). Every
/// order gets exactly one answer, nothing is oversold, nothing is retried or dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_sku_orders_racing_in_two_workers_never_oversell() -> anyhow::Result<()> {
    const SKUS: [&str; 4] = ["A-1", "B-2", "C-3", "D-4"];
    let world = World::new().await?;
    // Numbered copies, so that each takes its share of the partitions at once.
    let mut first = world.copy_host(1, 2);
    first.start_worker(NAME, InventoryHandler::new()).await?;
    let mut second = world.copy_host(2, 2);
    second.start_worker(NAME, InventoryHandler::new()).await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world
        .tap(&[StockReserved::TYPE, StockUnavailable::TYPE])
        .await?;

    let t0 = Utc::now();
    for (i, s) in SKUS.iter().enumerate() {
        for (j, warehouse) in ["berlin-1", "hamburg-2"].iter().enumerate() {
            let reference = format!("INIT-{i}-{j}");
            publish_and_wait(
                &world,
                &pool,
                &envelope("wms", count(warehouse, s, 30, &reference, t0)),
            )
            .await?;
        }
    }

    // A fixed pseudo-random mix of SKU pairs, in both line orders.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let orders: Vec<Envelope<OrderAccepted>> = (0..240)
        .map(|i| {
            let a = usize::try_from(next() % 4).unwrap();
            let b = (a + 1 + usize::try_from(next() % 3).unwrap()) % 4;
            let id = Uuid::now_v7();
            let order = accepted(
                id,
                t0 + TimeDelta::milliseconds(i),
                &[("1", SKUS[a], 1), ("2", SKUS[b], 1)],
            );
            envelope(id.to_string(), order)
        })
        .collect();
    try_join_all(orders.iter().map(|o| world.publish(o))).await?;

    let mut answered = BTreeSet::new();
    let mut reserved = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while answered.len() < orders.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let raw = tap.next_raw(left).await?;
        let order_id = if raw.message_type == StockReserved::TYPE {
            reserved += 1;
            raw.decode::<StockReserved>()?.payload.order_id
        } else {
            raw.decode::<StockUnavailable>()?.payload.order_id
        };
        assert!(answered.insert(order_id), "answered twice: {order_id}");
    }
    // 8 × 30 units, 2 per order: at most 120 orders; demand per SKU exceeds 60 for some.
    // Stock transactions take turns, so batches never deadlock: not a single retry.
    for host in [&first, &second] {
        assert_eq!(
            host.metrics().count(NAME, Outcome::Retried),
            0,
            "a batch had to be retried"
        );
    }
    assert!(reserved <= 120, "{reserved}");
    for s in SKUS {
        let reserved_units: i64 = sqlx::query_scalar(
            "select coalesce(sum(reserved), 0)::bigint from stock where sku = $1",
        )
        .bind(s)
        .fetch_one(&pool)
        .await?;
        assert!(reserved_units <= 60, "{s}: {reserved_units} reserved of 60");
    }
    assert!(
        world.dead_letters(NAME).await?.is_empty(),
        "nothing dead-lettered"
    );
    assert_consistent(&pool).await?;
    first.stop(Duration::from_secs(10)).await;
    second.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}

/// What a schema ended up with, for comparing two runs: stock rows, order states,
/// backorders, reservations and the ledger (with each movement's source message).
async fn state_of(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let mut rows: Vec<String> = Vec::new();
    for sql in [
        "select format('stock %s %s %s/%s', warehouse_id, sku, on_hand, reserved) from stock",
        "select format('order %s %s', order_id, state) from orders",
        "select format('backorder %s %s', order_id, lines) from backorders",
        "select format('reservation %s %s %s %s %s released %s dispatched %s', order_id, line_id,
                       warehouse_id, sku, quantity, released, dispatched)
         from reservations",
        "select format('movement %s %s %s %s %s %s %s %s', kind, source_key, warehouse_id, sku,
                       on_hand_delta, reserved_delta, order_id, source_message_id) from movements",
    ] {
        let mut some: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
        some.sort();
        rows.extend(some);
    }
    Ok(rows)
}

/// Raw envelopes, as the consumer hands them to the handler.
fn raw<P: Message>(env: &Envelope<P>) -> orderly_contracts::RawEnvelope {
    orderly_contracts::decode_raw(&env.to_json()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_new_orders_is_reserved_as_one_at_a_time_would_be() -> anyhow::Result<()> {
    let now = Utc::now();
    let stock_counts: Vec<_> = [
        count("berlin-1", "MUG", 10, "C-1", now),
        count("hamburg-2", "MUG", 5, "C-2", now),
        count("berlin-1", "TEE", 3, "C-3", now),
    ]
    .into_iter()
    .map(|c| raw(&envelope("wms", c)))
    .collect();

    let order = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let (a, b, c, d, e, f, g) = (
        order(1),
        order(2),
        order(3),
        order(4),
        order(5),
        order(6),
        order(7),
    );
    let h = order(0xabc);
    let shouted = |mut m: orderly_contracts::RawEnvelope| {
        let id = m.payload["order_id"].as_str().unwrap().to_uppercase();
        m.payload["order_id"] = id.into();
        m
    };
    let at = |minutes: i64| now - TimeDelta::minutes(60 - minutes);
    let acc = |id: Uuid, minutes: i64, lines: &[(&str, &str, u32)]| {
        raw(&envelope(id.to_string(), accepted(id, at(minutes), lines)))
    };
    let batch = vec![
        acc(a, 1, &[("1", "MUG", 4)]),
        acc(b, 2, &[("1", "MUG", 20)]), // more than all warehouses hold: backordered
        acc(c, 3, &[("1", "MUG", 8), ("2", "TEE", 2)]), // MUG split across warehouses
        acc(a, 1, &[("1", "MUG", 4)]),  // a second copy of A: decides nothing
        acc(d, 4, &[("1", "TEE", 2)]),  // one TEE left: backordered
        acc(e, 5, &[("1", "MUG", 3)]),  // exactly what is left
        raw(&envelope("wms", delta("berlin-1", "CAP", 7, "R-1"))),
        raw(&envelope(f.to_string(), cancelled(f, Uuid::now_v7(), None))), // never accepted
        acc(g, 6, &[("1", "MUG", 1)]), // named by the cancellation below: not in the group
        raw(&envelope(g.to_string(), cancelled(g, Uuid::now_v7(), None))),
        // Cancelled before it was accepted, its id written in capitals: still the same order,
        // so its reservation must not move ahead of the cancellation.
        shouted(raw(&envelope(
            h.to_string(),
            cancelled(h, Uuid::now_v7(), None),
        ))),
        acc(h, 7, &[("1", "TEE", 1)]),
    ];

    let [one, all] = orderly_runtime::testing::run_both_ways(
        NAME,
        &InventoryHandler::new(),
        &stock_counts,
        &batch,
        |pool| async move {
            assert_consistent(&pool).await?;
            state_of(&pool).await
        },
    )
    .await?;
    let states = [one.state, all.state];
    let emitted = [one.emitted, all.emitted];

    assert_eq!(
        states[0], states[1],
        "same end state one at a time and together"
    );
    let orders: Vec<&String> = states[1]
        .iter()
        .filter(|r| r.starts_with("order "))
        .collect();
    for (id, state) in [
        (a, "reserved"),
        (b, "backordered"),
        (c, "reserved"),
        (d, "backordered"),
        (e, "reserved"),
        (f, "cancelled"),
        (g, "cancelled"),
        (h, "cancelled"),
    ] {
        assert!(
            orders.contains(&&format!("order {id} {state}")),
            "{id} {state}: {orders:#?}"
        );
    }
    assert!(
        states[1].contains(&"stock berlin-1 MUG 10/10".to_owned()),
        "{:#?}",
        states[1]
    );
    assert!(
        states[1].contains(&"stock hamburg-2 MUG 5/5".to_owned()),
        "{:#?}",
        states[1]
    );

    // The same decisions, sent as caused by the same messages; levels: one per SKU for the
    // group instead of one per order, ending at the same figures.
    let decisions = |out: &[orderly_runtime::outbox::OutboxMessage]| -> Vec<String> {
        out.iter()
            .filter(|m| m.message_type != StockLevelChanged::TYPE)
            .map(|m| {
                format!(
                    "{} {} {} {}",
                    m.message_type, m.correlation_id, m.body["causation_id"], m.body["payload"]
                )
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(decisions(&emitted[0]), decisions(&emitted[1]));
    assert_eq!(
        decisions(&emitted[1]).len(),
        6,
        "A, C, E reserved; B, D, G unavailable"
    );
    let last_levels = |out: &[orderly_runtime::outbox::OutboxMessage]| {
        let mut last = std::collections::BTreeMap::new();
        let mut count = 0;
        for m in out
            .iter()
            .filter(|m| m.message_type == StockLevelChanged::TYPE)
        {
            let p = &m.body["payload"];
            last.insert(
                p["sku"].to_string(),
                (
                    p["on_hand"].clone(),
                    p["reserved"].clone(),
                    p["warehouses"].clone(),
                ),
            );
            count += 1;
        }
        (last, count)
    };
    let (one_at_a_time, sent_one_at_a_time) = last_levels(&emitted[0]);
    let (together, sent_together) = last_levels(&emitted[1]);
    assert_eq!(one_at_a_time, together);
    assert!(
        sent_together < sent_one_at_a_time,
        "{sent_together} vs {sent_one_at_a_time}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_dispatches_is_booked_as_one_at_a_time_would_be() -> anyhow::Result<()> {
    let now = Utc::now();
    let at = |minutes: i64| now - TimeDelta::minutes(60 - minutes);
    let order = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_1000 + n);
    let shipment = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_2000 + n);
    let (p, q, r, x) = (order(1), order(2), order(3), order(4));
    let acc = |id: Uuid, minutes: i64, lines: &[(&str, &str, u32)]| {
        raw(&envelope(id.to_string(), accepted(id, at(minutes), lines)))
    };
    let mut setup: Vec<_> = [
        count("berlin-1", "MUG", 10, "C-1", now),
        count("hamburg-2", "MUG", 5, "C-2", now),
        count("berlin-1", "TEE", 3, "C-3", now),
    ]
    .into_iter()
    .map(|c| raw(&envelope("wms", c)))
    .collect();
    // P: 4 MUG from berlin; Q: 8 MUG split 6 berlin / 2 hamburg, 2 TEE berlin; R: 1 MUG from
    // hamburg (berlin has none left).
    setup.push(acc(p, 1, &[("1", "MUG", 4)]));
    setup.push(acc(q, 2, &[("1", "MUG", 8), ("2", "TEE", 2)]));
    setup.push(acc(r, 3, &[("1", "MUG", 1)]));
    let disp = |order_id: Uuid, ship: Uuid, warehouse: &str, items: &[(&str, &str, u32)]| {
        raw(&envelope(
            order_id.to_string(),
            dispatched(ship, order_id, warehouse, items),
        ))
    };
    let batch = vec![
        disp(p, shipment(1), "berlin-1", &[("1", "MUG", 4)]),
        disp(
            q,
            shipment(2),
            "berlin-1",
            &[("1", "MUG", 6), ("2", "TEE", 2)],
        ),
        raw(&envelope("wms", delta("berlin-1", "CAP", 7, "R-1"))),
        // One unit more than reserved: the extra one comes from free stock.
        disp(r, shipment(4), "hamburg-2", &[("1", "MUG", 2)]),
        // The same shipment again, as another message: booked once (and so handled alone).
        disp(p, shipment(1), "berlin-1", &[("1", "MUG", 4)]),
        disp(q, shipment(3), "hamburg-2", &[("1", "MUG", 2)]),
        raw(&envelope(x.to_string(), cancelled(x, Uuid::now_v7(), None))), // never accepted
    ];
    let (extra_unit, last_of_group) = (batch[3].message_id, batch[5].message_id);
    // P's shipment is reported twice, so both of its dispatches are handled alone.
    let (p_alone, p_again) = (batch[0].message_id, batch[4].message_id);
    let grouped_before_last = [batch[1].message_id, batch[3].message_id];

    let [one, all] = orderly_runtime::testing::run_both_ways(
        NAME,
        &InventoryHandler::new(),
        &setup,
        &batch,
        |pool| async move {
            assert_consistent(&pool).await?;
            state_of(&pool).await
        },
    )
    .await?;
    assert_eq!(
        one.state, all.state,
        "same end state one at a time and together"
    );
    for row in [
        "stock berlin-1 MUG 0/0",
        "stock hamburg-2 MUG 1/0",
        "stock berlin-1 TEE 1/0",
        "stock berlin-1 CAP 7/0",
    ] {
        assert!(
            all.state.contains(&row.to_owned()),
            "{row}: {:#?}",
            all.state
        );
    }
    let dispatch_movements = all
        .state
        .iter()
        .filter(|r| r.starts_with("movement dispatch"))
        .count();
    assert_eq!(
        dispatch_movements, 5,
        "P, Q twice plus TEE, R: {:#?}",
        all.state
    );
    // Every dispatched SKU's level is announced (on hand and reserved move even when
    // available does not), ending at the same figures both ways.
    let last_levels = |out: &[orderly_runtime::outbox::OutboxMessage]| {
        let mut last = std::collections::BTreeMap::new();
        for m in out
            .iter()
            .filter(|m| m.message_type == StockLevelChanged::TYPE)
        {
            let p = &m.body["payload"];
            last.insert(
                p["sku"].to_string(),
                (
                    p["on_hand"].clone(),
                    p["reserved"].clone(),
                    p["available"].clone(),
                ),
            );
        }
        last
    };
    assert_eq!(last_levels(&one.emitted), last_levels(&all.emitted));
    assert_eq!(
        last_levels(&all.emitted).len(),
        3,
        "MUG, TEE and CAP: {:#?}",
        all.emitted
    );
    assert!(
        one.emitted
            .iter()
            .chain(&all.emitted)
            .all(|m| m.message_type == StockLevelChanged::TYPE),
        "dispatches publish nothing else"
    );
    // The batch path really ran: booked together, the group's dispatches announce the lot's
    // MUG level once, caused by its last dispatch (P's first dispatch, alone, announces its
    // own; its repeat books nothing and announces nothing); one at a time, each dispatch of
    // MUG that books announces its own.
    let mug_cause = |out: &[orderly_runtime::outbox::OutboxMessage]| {
        out.iter()
            .filter(|m| m.message_type == StockLevelChanged::TYPE)
            .filter(|m| m.body["payload"]["sku"] == "MUG")
            .map(|m| m.body["causation_id"].clone())
            .collect::<Vec<_>>()
    };
    let one_at_a_time = mug_cause(&one.emitted);
    assert!(
        one_at_a_time.len() > 1 && one_at_a_time.contains(&serde_json::json!(extra_unit)),
        "{one_at_a_time:?}"
    );
    let mut together = mug_cause(&all.emitted);
    together.sort_by_key(ToString::to_string);
    let mut expected = vec![serde_json::json!(last_of_group), serde_json::json!(p_alone)];
    expected.sort_by_key(ToString::to_string);
    assert_eq!(
        together, expected,
        "the dispatches were booked together (dispatch_together), not one at a time"
    );
    for id in grouped_before_last.into_iter().chain([p_again]) {
        assert!(!one_at_a_time.is_empty() && !together.contains(&serde_json::json!(id)));
    }
    Ok(())
}

/// A product upserted with `stock_tracked: false` (a gift card, a download, a service).
fn untracked_product(s: &str) -> ProductUpserted {
    let mut product: ProductUpserted = golden();
    product.sku = sku(s);
    product.gtins = Vec::new();
    product.stock_tracked = false;
    product.updated_at = Utc::now();
    product.validate().unwrap();
    product
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untracked_products_are_always_available_and_never_counted() -> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut tap = world
        .tap(&[StockReserved::TYPE, StockUnavailable::TYPE])
        .await?;
    let now = Utc::now();
    publish_and_wait(
        &world,
        &pool,
        &envelope("catalog", untracked_product("GIFT-50")),
    )
    .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", count("berlin-1", "MUG", 5, "C-1", now)),
    )
    .await?;

    // Only the gift card: always available, shipped from the preferred warehouse, nothing
    // reserved.
    let only_gift = Uuid::now_v7();
    world
        .publish(&envelope(
            only_gift.to_string(),
            accepted(only_gift, now, &[("1", "GIFT-50", 1000)]),
        ))
        .await?;
    let raw = tap.next_raw(WAIT).await?;
    assert_eq!(
        raw.message_type,
        StockReserved::TYPE,
        "not backordered: {raw:?}"
    );
    let reserved = raw.decode::<StockReserved>()?.payload;
    assert_eq!(reserved.allocations.len(), 1);
    assert_eq!(reserved.allocations[0].warehouse_id, wh("berlin-1"));
    assert_eq!(reserved.allocations[0].lines[0].quantity.get(), 1000);

    // Stock added by hand to the gift card is not what it is sold from.
    publish_and_wait(
        &world,
        &pool,
        &envelope("wms", delta("berlin-1", "GIFT-50", 2, "D-1")),
    )
    .await?;

    // A gift card with a mug: the mug is reserved, the gift card rides along unreserved.
    let mixed = Uuid::now_v7();
    world
        .publish(&envelope(
            mixed.to_string(),
            accepted(mixed, now, &[("1", "MUG", 2), ("2", "GIFT-50", 3)]),
        ))
        .await?;
    let reserved = tap.next::<StockReserved>(WAIT).await?.payload;
    let lines: Vec<Picked> = reserved.allocations[0]
        .lines
        .iter()
        .map(|l| (l.line_id.clone(), l.sku.to_string(), l.quantity.get()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("1".to_owned(), "MUG".to_owned(), 2),
            ("2".to_owned(), "GIFT-50".to_owned(), 3)
        ]
    );
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (5, 2));
    assert_eq!(stock(&pool, "berlin-1", "GIFT-50").await?, (2, 0));

    // Shipping it deducts the mug, never the gift card.
    publish_and_wait(
        &world,
        &pool,
        &envelope(
            mixed.to_string(),
            dispatched(
                Uuid::now_v7(),
                mixed,
                "berlin-1",
                &[("1", "MUG", 2), ("2", "GIFT-50", 3)],
            ),
        ),
    )
    .await?;
    assert_eq!(stock(&pool, "berlin-1", "MUG").await?, (3, 0));
    assert_eq!(stock(&pool, "berlin-1", "GIFT-50").await?, (2, 0));
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from reservations where sku = 'GIFT-50'"
        )
        .await?,
        0
    );
    assert!(world.dead_letters(NAME).await?.is_empty());
    assert_consistent(&pool).await?;
    finish(world, host).await
}

/// A warehouse as a setup manager declares it.
fn warehouse(id: &str, revision: u64, priority: u16, active: bool) -> WarehouseUpserted {
    let mut w: WarehouseUpserted = golden();
    w.warehouse_id = wh(id);
    w.revision = revision;
    w.priority = priority;
    w.active = active;
    w.validate().unwrap();
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_warehouses_steer_allocation_and_a_closed_one_gets_no_orders() -> anyhow::Result<()>
{
    let (world, host, pool) = start().await?;
    let mut tap = world.tap(&[StockReserved::TYPE]).await?;
    let now = Utc::now();
    for (w, reference) in [("berlin-1", "C-1"), ("amsterdam-1", "C-2")] {
        publish_and_wait(
            &world,
            &pool,
            &envelope("wms", count(w, "MUG", 10, reference, now)),
        )
        .await?;
    }
    let allocated_to = |reserved: Envelope<StockReserved>| {
        reserved.payload.allocations[0].warehouse_id.to_string()
    };
    let mut place = async || -> anyhow::Result<String> {
        let order_id = Uuid::now_v7();
        world
            .publish(&envelope(
                order_id.to_string(),
                accepted(order_id, Utc::now(), &[("1", "MUG", 1)]),
            ))
            .await?;
        Ok(allocated_to(tap.next::<StockReserved>(WAIT).await?))
    };
    // Undeclared, both have the default priority: the id breaks the tie.
    assert_eq!(place().await?, "amsterdam-1");
    publish_and_wait(
        &world,
        &pool,
        &envelope("admin-api", warehouse("berlin-1", 1, 10, true)),
    )
    .await?;
    assert_eq!(place().await?, "berlin-1", "berlin is preferred now");
    publish_and_wait(
        &world,
        &pool,
        &envelope("admin-api", warehouse("berlin-1", 2, 10, false)),
    )
    .await?;
    assert_eq!(place().await?, "amsterdam-1", "berlin is closed");
    // A late older revision does not reopen it.
    publish_and_wait(
        &world,
        &pool,
        &envelope("admin-api", warehouse("berlin-1", 1, 10, true)),
    )
    .await?;
    assert_eq!(place().await?, "amsterdam-1");
    let (name, country, active): (Option<String>, Option<String>, bool) = sqlx::query_as(
        "select name, country, active from warehouses where warehouse_id = 'berlin-1'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!((country.as_deref(), active), (Some("DE"), false));
    assert!(name.is_some());
    assert_consistent(&pool).await?;
    finish(world, host).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_of_untracked_products_waits_for_a_warehouse_and_ships_from_the_first_declared()
-> anyhow::Result<()> {
    let (world, host, pool) = start().await?;
    let mut tap = world
        .tap(&[StockReserved::TYPE, StockUnavailable::TYPE])
        .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope("catalog", untracked_product("GIFT-50")),
    )
    .await?;
    // No warehouse is known at all: nowhere to ship from, so it waits.
    let order_id = Uuid::now_v7();
    world
        .publish(&envelope(
            order_id.to_string(),
            accepted(order_id, Utc::now(), &[("1", "GIFT-50", 1)]),
        ))
        .await?;
    let unavailable = tap.next::<StockUnavailable>(WAIT).await?.payload;
    assert_eq!(unavailable.order_id, order_id);
    // A closed warehouse does not help; the first open one serves it.
    publish_and_wait(
        &world,
        &pool,
        &envelope("admin-api", warehouse("hamburg-2", 1, 5, false)),
    )
    .await?;
    publish_and_wait(
        &world,
        &pool,
        &envelope("admin-api", warehouse("berlin-1", 1, 10, true)),
    )
    .await?;
    let reserved = tap.next::<StockReserved>(WAIT).await?.payload;
    assert_eq!(reserved.order_id, order_id);
    assert_eq!(reserved.allocations[0].warehouse_id, wh("berlin-1"));
    assert_eq!(
        scalar(&pool, "select count(*) from backorders").await?,
        0,
        "no longer backordered"
    );
    assert_consistent(&pool).await?;
    finish(world, host).await
}
