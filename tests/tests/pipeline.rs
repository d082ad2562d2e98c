//! The order pipeline end to end: orders, inventory and fulfillment really running on the
//! real broker and database, driven by the simulated storefront, marketplace connector,
//! operator and carrier speaking the public contracts.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use orderly::sim::{self, Observed, Publisher, envelope};
use orderly_contracts::RawEnvelope;
use orderly_runtime::{
    Batch, Handler, HandlerContext, HandlerError, Host, Incoming, LockKey,
    testing::{World, wait_until},
};
use rand::{SeedableRng, rngs::StdRng};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(90);

struct Pipeline {
    world: World,
    host: Host,
    publisher: Publisher,
    events: UnboundedReceiver<RawEnvelope>,
    seen: Observed,
    rng: StdRng,
    /// The orders and inventory schemas, for the test's own reads.
    orders_db: sqlx::PgPool,
    inventory_db: sqlx::PgPool,
    /// What the chaos harness did, when the workers run under it.
    chaos: Option<Arc<Mutex<ChaosRecord>>>,
}

impl Pipeline {
    async fn start(carrier: bool, chaos: Option<u64>) -> anyhow::Result<Self> {
        Self::start_on(World::new().await?, carrier, chaos).await
    }

    async fn start_on(world: World, carrier: bool, chaos: Option<u64>) -> anyhow::Result<Self> {
        let mut host = world.host();
        let record = match chaos {
            None => {
                orderly::workers::start_all(&mut host).await?;
                None
            }
            Some(seed) => {
                let dup = world.connection.create_channel().await?;
                dup.confirm_select(ConfirmSelectOptions::default()).await?;
                let record = Arc::new(Mutex::new(ChaosRecord::default()));
                let shared = (&world, &dup, &record);
                host.start_worker(
                    "orders",
                    chaos_of(shared, "orders", seed, orderly_orders::OrdersHandler::new()),
                )
                .await?;
                host.start_worker(
                    "inventory",
                    chaos_of(
                        shared,
                        "inventory",
                        seed + 1,
                        orderly_inventory::InventoryHandler::new(),
                    ),
                )
                .await?;
                host.start_worker(
                    "fulfillment",
                    chaos_of(
                        shared,
                        "fulfillment",
                        seed + 2,
                        orderly_fulfillment::FulfillmentHandler,
                    ),
                )
                .await?;
                Some(record)
            }
        };
        let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
        let events = sim::tap(&world.connection, &world.names, sim::OBSERVED).await?;
        if carrier {
            sim::carrier(
                &world.connection,
                &world.names,
                publisher.clone(),
                Duration::from_millis(30),
                true,
                true,
            )
            .await?;
        }
        let orders_db = world.pool("orders").await?;
        let inventory_db = world.pool("inventory").await?;
        let mut p = Self {
            world,
            host,
            publisher,
            events,
            seen: Observed::default(),
            rng: StdRng::seed_from_u64(7),
            orders_db,
            inventory_db,
            chaos: record,
        };
        sim::seed(&p.publisher, 1).await?;
        sim::wait_for_catalog(&p.world.settings.database_url, DEADLINE).await?;
        let skus = sim::catalog().len();
        p.until("stock levels for every product", |s| s.stock.len() == skus)
            .await?;
        // A product's first level arrives with its first warehouse's count: wait until
        // inventory holds every seeded count, so a test's "before" figures are complete
        // (under load the second warehouse's count could land after them).
        let mut seeded: BTreeMap<String, i64> = BTreeMap::new();
        for (_, sku, qty) in sim::starting_stock(1) {
            *seeded.entry(sku.to_owned()).or_default() += i64::from(qty);
        }
        let pipeline = &p;
        wait_until("every seeded stock count applied", DEADLINE, || async {
            let now = pipeline.stock().await?;
            Ok(seeded
                .iter()
                .all(|(sku, on_hand)| now.get(sku).map(|s| s.0) == Some(*on_hand)))
        })
        .await?;
        Ok(p)
    }

    /// Applies observed events until `cond` holds.
    async fn until(&mut self, what: &str, cond: impl Fn(&Observed) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            while let Ok(m) = self.events.try_recv() {
                self.seen.apply(&m);
            }
            if cond(&self.seen) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn status(&self, external_id: &str) -> Option<String> {
        let id = self.seen.by_external.get(external_id)?;
        self.seen.orders.get(id).map(|o| o.status.clone())
    }

    async fn place(&mut self, external_id: &str, lines: &[(&str, u32)]) -> anyhow::Result<()> {
        let catalog = sim::catalog();
        let lines: Vec<(sim::Product, u32)> = lines
            .iter()
            .filter_map(|(sku, q)| {
                catalog
                    .iter()
                    .find(|p| p.sku == *sku)
                    .map(|p| (p.clone(), *q))
            })
            .collect();
        self.publisher
            .send(&sim::order_placed(
                &mut self.rng,
                external_id,
                false,
                &lines,
                1,
            ))
            .await
    }

    /// The carrier's first scan of `shipment` (a `shipment.requested` payload): it left.
    async fn in_transit(&self, shipment: &serde_json::Value, tracking: &str) -> anyhow::Result<()> {
        self.publisher
            .send(&envelope(
                "shipment.updated",
                "carrier:dhl",
                shipment["order_id"].as_str().unwrap_or_default(),
                json!({"shipment_id": shipment["shipment_id"], "carrier": "dhl", "tracking_number": tracking,
                       "vocabulary": "orderly", "raw_status": "in_transit", "event_at": chrono::Utc::now()}),
            ))
            .await
    }

    async fn cancel(&self, external_id: &str) -> anyhow::Result<()> {
        self.publisher
            .send(&envelope(
                "order.cancel_requested",
                "storefront",
                external_id,
                json!({"request_id": Uuid::now_v7(), "store_id": "shop-de",
                       "order": {"channel": "storefront", "external_order_id": external_id},
                       "requested_by": {"kind": "customer"}, "reason": "changed my mind"}),
            ))
            .await
    }

    async fn timeline_kinds(&self, external_id: &str) -> anyhow::Result<Vec<String>> {
        let id = *self
            .seen
            .by_external
            .get(external_id)
            .ok_or_else(|| anyhow::anyhow!("unknown order {external_id}"))?;
        let mut conn = self.orders_db.acquire().await?;
        Ok(orderly_orders::store::timeline(&mut conn, id)
            .await?
            .into_iter()
            .map(|e| e.kind)
            .collect())
    }

    async fn stock(&self) -> anyhow::Result<BTreeMap<String, (i64, i64)>> {
        let mut conn = self.inventory_db.acquire().await?;
        let mut out = BTreeMap::new();
        for row in orderly_inventory::store::list_stock(&mut conn, None).await? {
            let e = out.entry(row.sku.to_string()).or_insert((0, 0));
            e.0 += row.on_hand;
            e.1 += row.reserved;
        }
        Ok(out)
    }

    async fn inventory_consistent(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = self.inventory_db.acquire().await?;
        Ok(orderly_inventory::consistency_check(&mut conn).await?)
    }

    /// What the chaos harness did, counting only handlings that were committed (the
    /// message is in its worker's inbox); none when the workers run without it.
    async fn chaos_figures(&self) -> anyhow::Result<Option<ChaosFigures>> {
        let Some(record) = &self.chaos else {
            return Ok(None);
        };
        let mut committed = HashSet::new();
        for worker in ["orders", "inventory", "fulfillment"] {
            let pool = self.world.pool(worker).await?;
            let ids: Vec<Uuid> = sqlx::query_scalar("select message_id from inbox")
                .fetch_all(&pool)
                .await?;
            pool.close().await;
            committed.extend(ids.into_iter().map(|id| (worker, id)));
        }
        let record = record
            .lock()
            .map_err(|_| anyhow::anyhow!("chaos record poisoned"))?;
        Ok(Some(record.figures(&committed)))
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.host.stop(Duration::from_secs(10)).await;
        self.orders_db.close().await;
        self.inventory_db.close().await;
        self.world.cleanup().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storefront_order_flows_to_completed_with_every_step_on_its_timeline()
-> anyhow::Result<()> {
    let mut p = Pipeline::start(true, None).await?;
    let before = p.stock().await?;
    p.place("SF-1", &[("MUG-BLU-350", 2), ("BOOK-RUST-EN", 1)])
        .await?;
    p.until("SF-1 completed", |s| s.status_is("SF-1", &["completed"]))
        .await?;
    let kinds = p.timeline_kinds("SF-1").await?;
    for step in [
        "placed",
        "accepted",
        "stock_reserved",
        "shipment_requested",
        "shipment_dispatched",
        "shipment_delivered",
        "completed",
    ] {
        assert!(
            kinds.iter().any(|k| k == step),
            "timeline lacks `{step}`: {kinds:?}"
        );
    }
    // The dispatch reaches inventory and orders independently: the order may be completed
    // before inventory has booked the units out.
    let mugs = before["MUG-BLU-350"].0 - 2;
    let books = before["BOOK-RUST-EN"].0 - 1;
    wait_until(
        "two mugs and a book left the warehouses",
        DEADLINE,
        || async {
            let now = p.stock().await?;
            Ok(now.get("MUG-BLU-350").map(|s| s.0) == Some(mugs)
                && now.get("BOOK-RUST-EN").map(|s| s.0) == Some(books))
        },
    )
    .await?;
    let after = p.stock().await?;
    assert_eq!(after["MUG-BLU-350"].1, 0, "nothing stays reserved");
    assert!(p.inventory_consistent().await?.is_empty());
    p.finish().await
}

/// Each worker can keep its schema in a database of its own (`databases.<worker>`): here
/// inventory's, while the others share the world's. The order completes; inventory's rows
/// are in its database only, and it never needed the others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_its_own_database_takes_part_in_the_pipeline() -> anyhow::Result<()> {
    let mut world = World::new().await?;
    let own = format!("{}_inventory", world.settings.database_url);
    orderly_runtime::db::ensure_database(&own).await?;
    orderly_runtime::db::migrate(&own).await?;
    world
        .settings
        .databases
        .insert("inventory".to_owned(), own.clone());
    let mut p = Pipeline::start_on(world, true, None).await?;
    p.place("OWN-1", &[("MUG-BLU-350", 1)]).await?;
    p.until("OWN-1 completed", |s| s.status_is("OWN-1", &["completed"]))
        .await?;
    let count = |url: String, table: &'static str| async move {
        let pool = orderly_runtime::db::connect(&url, "inventory", 1).await?;
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from inventory.{table}"
        )))
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        anyhow::Ok(n)
    };
    let shared = p.world.settings.database_url.clone();
    assert!(count(own.clone(), "reservations").await? >= 1);
    assert!(count(own.clone(), "stock").await? > 0);
    assert_eq!(count(shared.clone(), "reservations").await?, 0);
    assert_eq!(count(shared.clone(), "stock").await?, 0);
    // And the orders worker's schema is in the shared database only.
    let orders = |url: String| async move {
        let pool = orderly_runtime::db::connect(&url, "orders", 1).await?;
        let n: i64 = sqlx::query_scalar("select count(*) from orders.orders")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        anyhow::Ok(n)
    };
    assert_eq!(orders(shared).await?, 1);
    assert_eq!(orders(own.clone()).await?, 0);
    p.finish().await?;
    orderly_runtime::db::drop_database(&own).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_gtin_is_held_resolved_remembered_and_then_matched() -> anyhow::Result<()> {
    let mut p = Pipeline::start(true, None).await?;
    let catalog = sim::catalog();
    let unknown = sim::gtin("871000000001");
    let mut first = sim::order_placed(&mut p.rng, "BOL-1", true, &[(catalog[4].clone(), 1)], 1);
    first["payload"]["lines"][0]["gtin"] = json!(unknown);
    p.publisher.send(&first).await?;
    p.until("BOL-1 on hold", |s| {
        !s.on_hold.is_empty() && s.status_is("BOL-1", &["on_hold"])
    })
    .await?;
    let (order_id, exceptions, store) = p.seen.on_hold[0].clone();
    let exception_id = exceptions[0]["exception_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    p.publisher
        .send(&envelope(
            "order.exception_resolved",
            "admin-api",
            &order_id.to_string(),
            json!({"order_id": order_id, "store_id": store, "exception_id": exception_id, "resolution": "map_to_sku",
                   "sku": "SOCK-WOOL-42", "remember_mapping": true, "resolved_by": {"kind": "operator", "id": "test"}}),
        ))
        .await?;
    p.until("BOL-1 completed", |s| s.status_is("BOL-1", &["completed"]))
        .await?;

    let mut second = sim::order_placed(&mut p.rng, "BOL-2", true, &[(catalog[4].clone(), 1)], 1);
    second["payload"]["lines"][0]["gtin"] = json!(unknown);
    p.publisher.send(&second).await?;
    p.until("BOL-2 completed", |s| s.status_is("BOL-2", &["completed"]))
        .await?;
    assert_eq!(
        p.seen.on_hold.len(),
        1,
        "the second import was matched through the remembered mapping"
    );
    p.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_releases_stock_before_dispatch_and_is_refused_after() -> anyhow::Result<()> {
    // No automatic carrier: the test decides when a parcel moves.
    let mut p = Pipeline::start(false, None).await?;
    let mut requested = p.world.tap(&["shipment.requested"]).await?;
    let before = p.stock().await?;
    p.place("SF-EARLY", &[("TEA-EARL-100", 3)]).await?;
    p.until("SF-EARLY processing", |s| {
        s.status_is("SF-EARLY", &["processing"])
    })
    .await?;
    p.cancel("SF-EARLY").await?;
    p.until("SF-EARLY cancelled", |s| {
        s.status_is("SF-EARLY", &["cancelled"])
    })
    .await?;
    let w = &p;
    wait_until("the reservation is released", DEADLINE, || async {
        Ok(w.stock().await?["TEA-EARL-100"] == before["TEA-EARL-100"])
    })
    .await?;

    p.place("SF-LATE", &[("PEN-FOUNT-M", 1)]).await?;
    let shipment = requested_for(&mut requested, "SF-LATE").await?;
    p.in_transit(&shipment, "00340434000000999999").await?;
    p.until("SF-LATE shipped", |s| s.status_is("SF-LATE", &["shipped"]))
        .await?;
    p.cancel("SF-LATE").await?;
    let w = &p;
    wait_until("the refusal is on the timeline", DEADLINE, || async {
        Ok(w.timeline_kinds("SF-LATE")
            .await?
            .iter()
            .any(|k| k.contains("cancel")))
    })
    .await?;
    while let Ok(m) = p.events.try_recv() {
        p.seen.apply(&m);
    }
    assert_eq!(
        p.status("SF-LATE").as_deref(),
        Some("shipped"),
        "a dispatched order is not cancelled"
    );
    p.finish().await
}

/// The shipment the warehouse is asked for, of the order with `external_id`.
async fn requested_for(
    requested: &mut orderly_runtime::testing::Tap,
    external_id: &str,
) -> anyhow::Result<serde_json::Value> {
    loop {
        let m = requested.next_raw(DEADLINE).await?;
        if m.payload["external_order_id"] == external_id {
            return Ok(m.payload);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_changed_by_a_repush_reaches_the_warehouse() -> anyhow::Result<()> {
    let mut p = Pipeline::start(false, None).await?;
    let mut requested = p.world.tap(&["shipment.requested"]).await?;
    let mut changed = p.world.tap(&["order.address_changed"]).await?;
    // More of the scarce product than there is: the order waits, backordered.
    let scarce = sim::catalog()[3].clone();
    let placed = sim::order_placed(&mut p.rng, "SF-MOVED", false, &[(scarce.clone(), 8)], 1);
    p.publisher.send(&placed).await?;
    p.until("SF-MOVED backordered", |s| {
        s.status_is("SF-MOVED", &["backordered"])
    })
    .await?;

    // The marketplace re-pushes it with the buyer's new delivery address.
    let new_address = json!({"name": "Jörg Schäfer", "lines": ["Paketshop am Leopoldplatz", "Müllerstraße 24"],
                             "postal_code": "13353", "city": "Berlin", "country": "DE"});
    let mut repush = placed.clone();
    repush["message_id"] = json!(Uuid::now_v7());
    repush["payload"]["revision"] = json!(2);
    repush["payload"]["shipping_address"] = new_address.clone();
    p.publisher.send(&repush).await?;
    let announced = changed.next_raw(DEADLINE).await?;
    assert_eq!(announced.payload["shipping_address"], new_address);
    assert_eq!(announced.payload["revision"], 2);

    // Stock arrives: the parcel the warehouse is asked for goes to the new address.
    p.publisher
        .send(&envelope(
            "inventory.adjusted",
            "wms",
            &format!("berlin-1/{}", scarce.sku),
            json!({"warehouse_id": "berlin-1", "sku": scarce.sku, "delta": 20, "reason": "goods_received",
                   "source": "wms", "reference": "GR-MOVED", "as_of": chrono::Utc::now()}),
        ))
        .await?;
    let shipment = requested_for(&mut requested, "SF-MOVED").await?;
    assert_eq!(shipment["ship_to"], new_address, "{shipment}");

    // Once it has left, another address change is refused, with the reason on the timeline.
    p.in_transit(&shipment, "00340434000000777777").await?;
    p.until("SF-MOVED shipped", |s| {
        s.status_is("SF-MOVED", &["shipped"])
    })
    .await?;
    let mut again = placed.clone();
    again["message_id"] = json!(Uuid::now_v7());
    again["payload"]["revision"] = json!(3);
    again["payload"]["shipping_address"]["city"] = json!("Hamburg");
    p.publisher.send(&again).await?;
    let id = *p
        .seen
        .by_external
        .get("SF-MOVED")
        .ok_or_else(|| anyhow::anyhow!("SF-MOVED not seen"))?;
    let w = &p;
    wait_until("the refusal is on the timeline", DEADLINE, || async {
        let mut conn = w.orders_db.acquire().await?;
        Ok(orderly_orders::store::timeline(&mut conn, id)
            .await?
            .iter()
            .any(|e| {
                e.detail
                    .contains("address change refused: a shipment has already left")
            }))
    })
    .await?;
    // Written in the refusal's transaction if at all: the outbox says it was not.
    let announced: i64 = sqlx::query_scalar(
        "select count(*) from outbox where message_type = 'order.address_changed'",
    )
    .fetch_one(&p.orders_db)
    .await?;
    assert_eq!(announced, 1, "no address change announced after dispatch");
    p.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_do_not_stop_other_orders() -> anyhow::Result<()> {
    let mut p = Pipeline::start(true, None).await?;
    p.world.publish_raw("order.placed", b"{ not json").await?;
    p.world
        .publish_raw("inventory.adjusted", br#"{"message_id":"nope"}"#)
        .await?;
    p.world.publish_raw("shipment.updated", b"\x00\x01").await?;
    p.place("SF-AFTER-POISON", &[("MUG-BLU-350", 1)]).await?;
    p.until("the good order completes", |s| {
        s.status_is("SF-AFTER-POISON", &["completed"])
    })
    .await?;
    let w = &p.world;
    wait_until(
        "each poison message in its worker's dead letters",
        DEADLINE,
        || async {
            Ok(w.queue_depth("orders.dlq").await? == 1
                && w.queue_depth("inventory.dlq").await? == 1
                && w.queue_depth("fulfillment.dlq").await? == 1)
        },
    )
    .await?;
    p.finish().await
}

/// The inventory must-show, through the whole pipeline: 300 storefront orders for a product
/// with 100 units, placed as fast as the storefront publishes, with a second copy of the
/// inventory worker competing for its queue. Exactly 100 are reserved and 200 backordered;
/// 50 units arriving go to the 50 oldest backorders; the ledger adds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_orders_for_a_hundred_units_with_two_inventory_copies() -> anyhow::Result<()>
{
    const PEN: &str = "PEN-FOUNT-M";
    // No carrier: nothing leaves a warehouse, so what is reserved stays reserved.
    // Two numbered inventory copies, so that each takes its share of the partitions at once.
    let mut world = World::new().await?;
    let mut inventory = world.settings.consumer_for("inventory");
    inventory.copy = Some("1/2".into());
    world.settings.workers.insert("inventory".into(), inventory);
    // The second first: a numbered copy takes over a partition its copy leaves alone for 5 s.
    let mut second = world.copy_host(2, 2);
    second
        .start_worker("inventory", orderly_inventory::InventoryHandler::new())
        .await?;
    let mut p = Pipeline::start_on(world, false, None).await?;
    for (warehouse, units) in [("berlin-1", 60), ("amsterdam-1", 40)] {
        p.publisher
            .send(&envelope(
                "inventory.adjusted",
                "wms",
                &format!("{warehouse}/{PEN}"),
                json!({"warehouse_id": warehouse, "sku": PEN, "set_on_hand": units,
                       "reason": "stock_count", "source": "wms",
                       "reference": format!("count-{warehouse}"), "as_of": chrono::Utc::now()}),
            ))
            .await?;
    }
    let w = &p;
    wait_until("100 pens in stock", DEADLINE, || async {
        Ok(w.stock().await?.get(PEN) == Some(&(100, 0)))
    })
    .await?;

    let ids: Vec<String> = (0..300).map(|i| format!("HOT-{i:03}")).collect();
    for id in &ids {
        p.place(id, &[(PEN, 1)]).await?;
    }
    let all = ids.clone();
    p.until("every order reserved or backordered", move |s| {
        all.iter()
            .all(|e| s.has_stage(e, &["reserved", "backordered"]))
    })
    .await?;
    let reserved: Vec<&String> = ids
        .iter()
        .filter(|e| p.seen.has_stage(e, &["reserved"]))
        .collect();
    let backordered: Vec<&String> = ids
        .iter()
        .filter(|e| p.seen.has_stage(e, &["backordered"]))
        .collect();
    assert_eq!(reserved.len(), 100, "exactly the stock is reserved");
    assert_eq!(backordered.len(), 200, "the rest is backordered");
    assert_eq!(p.stock().await?[PEN], (100, 100));
    for (name, host) in [("first", &p.host), ("second", &second)] {
        assert!(
            host.metrics()
                .count("inventory", orderly_runtime::metrics::Outcome::Handled)
                > 0,
            "the {name} inventory copy handled nothing"
        );
    }

    // Placed in this order, so the oldest backorders are the first 50 of them.
    let oldest: Vec<String> = backordered.iter().take(50).map(|e| (*e).clone()).collect();
    p.publisher
        .send(&envelope(
            "inventory.adjusted",
            "wms",
            &format!("berlin-1/{PEN}"),
            json!({"warehouse_id": "berlin-1", "sku": PEN, "delta": 50,
                   "reason": "goods_received", "source": "wms", "reference": "GR-50",
                   "as_of": chrono::Utc::now()}),
        ))
        .await?;
    let served = oldest.clone();
    p.until("the 50 oldest backorders reserved", move |s| {
        served.iter().all(|e| s.has_stage(e, &["reserved"]))
    })
    .await?;
    let now_reserved = ids
        .iter()
        .filter(|e| p.seen.has_stage(e, &["reserved"]))
        .count();
    assert_eq!(now_reserved, 150, "no younger backorder took a unit");
    assert_eq!(p.stock().await?[PEN], (150, 150));
    let violations = p.inventory_consistent().await?;
    assert!(violations.is_empty(), "{violations:?}");
    second.stop(Duration::from_secs(10)).await;
    p.finish().await
}

/// Wraps a worker's handler to misbehave like a real network: a first delivery is sometimes
/// deferred (so messages arrive out of order) and a message is sometimes delivered again
/// (the same message id, published straight back to the worker's queue).
///
/// What happens to a message is decided from the seed and its id alone, so the batch path
/// (`handle_batch`) and the consumer's careful path after a failed batch (`handle`, one
/// message at a time) agree about each message. Everything the production handlers override
/// is forwarded, so duplicated, deferred and reordered deliveries go through the batch
/// paths production runs. What the harness did is written to a [`ChaosRecord`] the test
/// owns.
struct Chaos<H> {
    inner: H,
    worker: &'static str,
    /// Where a duplicate goes: the worker's partition exchange (to the original's partition).
    queue: String,
    channel: lapin::Channel,
    seed: u64,
    record: Arc<Mutex<ChaosRecord>>,
}

/// The chance that a message is chosen to be deferred on its first delivery, and to be
/// delivered a second time.
const DEFER: f64 = 0.2;
const DUPLICATE: f64 = 0.25;

/// What the chaos harness did, shared by the wrappers of every worker of a run.
#[derive(Debug, Default)]
struct ChaosRecord {
    /// (worker, message id) of every message published a second time.
    duplicated: BTreeSet<(&'static str, Uuid)>,
    /// (worker, message id) of every message whose first delivery was deferred.
    deferred: BTreeSet<(&'static str, Uuid)>,
    /// The last handling of each (worker, message id): a failed attempt is overwritten by
    /// the attempt that follows it, so once the inbox says a message was handled this is
    /// the handling that was committed.
    handled: HashMap<(&'static str, Uuid), Handling>,
    /// The next handling's place in time.
    next: u64,
}

#[derive(Debug, Clone)]
struct Handling {
    correlation: String,
    /// How many messages the `handle_batch` call held; 0 when handled alone by `handle`.
    batch: usize,
    /// When, relative to the other handlings of the run.
    at: u64,
}

/// How many messages the harness duplicated and deferred, and how many committed handlings
/// came after a later-created message of the same order (message ids are UUIDv7, ordered by
/// creation), by path.
#[derive(Debug, Default, PartialEq, Eq)]
struct ChaosFigures {
    duplicated: usize,
    deferred: usize,
    /// Out of order inside `handle_batch` with more than one message.
    reordered_in_batches: usize,
    /// Out of order inside `handle_batch` with one message.
    reordered_in_batches_of_one: usize,
    /// Out of order through `handle` (the careful path).
    reordered_alone: usize,
}

impl ChaosRecord {
    /// The figures of the handlings whose message is in its worker's inbox (committed).
    fn figures(&self, committed: &HashSet<(&'static str, Uuid)>) -> ChaosFigures {
        let mut by_flow: HashMap<(&'static str, &str), Vec<(Uuid, &Handling)>> = HashMap::new();
        for ((worker, id), h) in &self.handled {
            if committed.contains(&(*worker, *id)) {
                by_flow
                    .entry((*worker, h.correlation.as_str()))
                    .or_default()
                    .push((*id, h));
            }
        }
        let mut figures = ChaosFigures {
            duplicated: self.duplicated.len(),
            deferred: self.deferred.len(),
            ..ChaosFigures::default()
        };
        for flow in by_flow.values() {
            for (id, h) in flow {
                let late = flow.iter().any(|(other, o)| other > id && o.at < h.at);
                if late {
                    match h.batch {
                        0 => figures.reordered_alone += 1,
                        1 => figures.reordered_in_batches_of_one += 1,
                        _ => figures.reordered_in_batches += 1,
                    }
                }
            }
        }
        figures
    }
}

/// A uniform number in [0, 1) from the seed, a message id and what is being decided.
fn draw(seed: u64, id: Uuid, what: u64) -> f64 {
    let bits = id.as_u128();
    let mut x = seed ^ (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17) ^ what;
    // splitmix64's finaliser, twice: every input bit reaches every output bit.
    for _ in 0..2 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A worker's handler under chaos, sharing the run's broker channel and record.
fn chaos_of<H: Handler>(
    (world, channel, record): (&World, &lapin::Channel, &Arc<Mutex<ChaosRecord>>),
    worker: &'static str,
    seed: u64,
    inner: H,
) -> Chaos<H> {
    Chaos::new(worker, world, channel.clone(), seed, record.clone(), inner)
}

impl<H: Handler> Chaos<H> {
    fn new(
        worker: &'static str,
        world: &World,
        channel: lapin::Channel,
        seed: u64,
        record: Arc<Mutex<ChaosRecord>>,
        inner: H,
    ) -> Self {
        Self {
            inner,
            worker,
            queue: world.names.partition_exchange(worker),
            channel,
            seed,
            record,
        }
    }

    fn record(&self) -> Result<std::sync::MutexGuard<'_, ChaosRecord>, HandlerError> {
        self.record
            .lock()
            .map_err(|_| HandlerError::permanent("chaos record poisoned"))
    }

    /// Whether this delivery of `msg` is deferred (only ever a first delivery).
    fn defers(&self, msg: &Incoming) -> bool {
        msg.attempt == 1 && draw(self.seed, msg.envelope.message_id, 1) < DEFER
    }

    fn duplicates(&self, msg: &Incoming) -> bool {
        draw(self.seed, msg.envelope.message_id, 2) < DUPLICATE
    }

    /// Publishes a second copy of each of `msgs` chosen to be duplicated (once per message,
    /// however often it is handled).
    async fn publish_duplicates(&self, msgs: &[&Incoming]) -> Result<(), HandlerError> {
        let fresh: Vec<&Incoming> = {
            let mut record = self.record()?;
            msgs.iter()
                .copied()
                .filter(|m| {
                    self.duplicates(m)
                        && record
                            .duplicated
                            .insert((self.worker, m.envelope.message_id))
                })
                .collect()
        };
        for msg in fresh {
            let body = serde_json::to_vec(&msg.envelope).map_err(HandlerError::transient)?;
            let confirm = self
                .channel
                .basic_publish(
                    self.queue.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default()
                        .with_correlation_id(msg.envelope.correlation_id.as_str().into()),
                )
                .await
                .map_err(HandlerError::transient)?;
            confirm.await.map_err(HandlerError::transient)?;
        }
        Ok(())
    }

    /// Notes that `msgs` are being handled now, in this order, `batch` of them together (0:
    /// alone, through `handle`).
    fn note(&self, msgs: &[&Incoming], batch: usize) -> Result<(), HandlerError> {
        let mut record = self.record()?;
        for msg in msgs {
            let at = record.next;
            record.next += 1;
            record.handled.insert(
                (self.worker, msg.envelope.message_id),
                Handling {
                    correlation: msg.envelope.correlation_id.clone(),
                    batch,
                    at,
                },
            );
        }
        Ok(())
    }
}

impl<H: Handler> Handler for Chaos<H> {
    type Input = H::Input;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        self.publish_duplicates(&[msg]).await?;
        if self.defers(msg) {
            self.record()?
                .deferred
                .insert((self.worker, msg.envelope.message_id));
            return Err(HandlerError::transient(anyhow::anyhow!(
                "chaos: deliver this one later"
            )));
        }
        self.note(&[msg], 0)?;
        self.inner.handle(msg, cx).await
    }

    /// The batch goes to the worker's own `handle_batch` unless one of its messages is to
    /// be deferred: then the batch fails, and the consumer's careful path hands each
    /// message to `handle`, which defers exactly those and handles the rest alone.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        self.publish_duplicates(msgs).await?;
        if msgs.iter().any(|m| self.defers(m)) {
            return Err(HandlerError::transient(anyhow::anyhow!(
                "chaos: a message of this batch is to be delivered later"
            )));
        }
        self.note(msgs, msgs.len())?;
        self.inner.handle_batch(msgs, batch).await
    }

    async fn lock_keys(
        &self,
        msg: &Incoming,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        self.inner.lock_keys(msg, conn).await
    }

    async fn batch_lock_keys(
        &self,
        msgs: &[&Incoming],
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        self.inner.batch_lock_keys(msgs, conn).await
    }
}

/// Where a story ends: every order's status and timeline, and every SKU's stock (on hand,
/// reserved). A timeline is compared as its entries' kinds, sorted, without its status
/// changes: an order that learns of its delivery before its dispatch goes to `delivered`
/// without passing `shipped` (statuses never go back), which is right, but every fact
/// must be on it exactly once.
type EndState = (
    BTreeMap<String, String>,
    BTreeMap<String, Vec<String>>,
    BTreeMap<String, (i64, i64)>,
);

/// Runs the same story on a pipeline and returns its end state, and under chaos what the
/// harness did.
async fn story(chaos: Option<u64>) -> anyhow::Result<(EndState, Option<ChaosFigures>)> {
    let mut p = Pipeline::start(true, chaos).await?;
    let skus = [
        "MUG-BLU-350",
        "TEA-EARL-100",
        "BOOK-RUST-EN",
        "SOCK-WOOL-42",
        "PEN-FOUNT-M",
    ];
    let mut ids: Vec<String> = Vec::new();
    // Twenty orders placed at once: enough traffic that a deferred message comes back into
    // a batch of several, which is where the batch paths meet a reordering.
    for i in 0..20 {
        let ext = format!("SF-{i}");
        p.place(
            &ext,
            &[
                (skus[i % skus.len()], 1 + (i as u32 % 2)),
                (skus[(i + 2) % skus.len()], 1),
            ],
        )
        .await?;
        ids.push(ext);
    }
    let ids2 = ids.clone();
    p.until("every order completed", move |s| {
        ids2.iter().all(|e| s.status_is(e, &["completed"]))
    })
    .await?;

    // The other messages of an order's life, each where its outcome does not depend on
    // timing: a marketplace import held for an unknown GTIN and resolved by an operator
    // (remembering the mapping, which matches a second import); an order backordered, then
    // cancelled; a re-push of a completed order; a stock delta sent twice; a cancellation
    // after completion, refused.
    let catalog = sim::catalog();
    let unknown = sim::gtin("871000000002");
    let mut import = sim::order_placed(&mut p.rng, "MP-1", true, &[(catalog[4].clone(), 1)], 1);
    import["payload"]["lines"][0]["gtin"] = json!(unknown);
    p.publisher.send(&import).await?;
    p.until("MP-1 on hold", |s| s.status_is("MP-1", &["on_hold"]))
        .await?;
    let (order_id, exceptions, store) = p.seen.on_hold[0].clone();
    p.publisher
        .send(&envelope(
            "order.exception_resolved",
            "admin-api",
            &order_id.to_string(),
            json!({"order_id": order_id, "store_id": store,
                   "exception_id": exceptions[0]["exception_id"], "resolution": "map_to_sku",
                   "sku": "SOCK-WOOL-42", "remember_mapping": true,
                   "resolved_by": {"kind": "operator", "id": "test"}}),
        ))
        .await?;
    p.until("MP-1 completed", |s| s.status_is("MP-1", &["completed"]))
        .await?;
    let mut again = sim::order_placed(&mut p.rng, "MP-2", true, &[(catalog[4].clone(), 1)], 1);
    again["payload"]["lines"][0]["gtin"] = json!(unknown);
    p.publisher.send(&again).await?;

    p.place("SF-BACK", &[("LAMP-DESK-01", 9)]).await?;
    p.until("SF-BACK backordered", |s| {
        s.status_is("SF-BACK", &["backordered"])
    })
    .await?;
    p.cancel("SF-BACK").await?;

    p.place("SF-0", &[(skus[0], 1), (skus[2], 1)]).await?;
    for _ in 0..2 {
        p.publisher
            .send(&envelope(
                "inventory.adjusted",
                "wms",
                "berlin-1/SOCK-WOOL-42",
                json!({"warehouse_id": "berlin-1", "sku": "SOCK-WOOL-42", "delta": 5,
                       "reason": "goods_received", "source": "wms", "reference": "restock-1",
                       "as_of": chrono::Utc::now()}),
            ))
            .await?;
    }
    p.cancel("SF-1").await?;
    p.until("MP-2 completed and SF-BACK cancelled", |s| {
        s.status_is("MP-2", &["completed"]) && s.status_is("SF-BACK", &["cancelled"])
    })
    .await?;
    ids.extend(["MP-1", "MP-2", "SF-BACK"].map(String::from));
    let w = &p;
    wait_until(
        "the re-push and the late cancellation are on the timelines",
        DEADLINE,
        || async {
            let repush = w.timeline_kinds("SF-0").await?;
            let late = w.timeline_kinds("SF-1").await?;
            Ok(repush.iter().any(|k| k.contains("repush"))
                && late.iter().any(|k| k.contains("cancel")))
        },
    )
    .await?;
    wait_until("the restock is counted", DEADLINE, || async {
        let adjusted: i64 = sqlx::query_scalar(
            "select count(*) from movements where kind = 'adjustment' and source_key like '%restock-1'",
        )
        .fetch_one(&w.inventory_db)
        .await?;
        Ok(adjusted == 1)
    })
    .await?;
    while let Ok(m) = p.events.try_recv() {
        p.seen.apply(&m);
    }
    let statuses = ids
        .iter()
        .map(|e| (e.clone(), p.status(e).unwrap_or_default()))
        .collect();
    // Completion does not wait for inventory to book the dispatches (they reach inventory
    // and orders independently): the end state is when nothing is reserved any more.
    wait_until("inventory booked every dispatch", DEADLINE, || async {
        Ok(p.stock().await?.values().all(|s| s.1 == 0))
    })
    .await?;
    let stock = p.stock().await?;
    let violations = p.inventory_consistent().await?;
    assert!(violations.is_empty(), "{violations:?}");
    let mut timelines = BTreeMap::new();
    for e in &ids {
        let mut kinds = p.timeline_kinds(e).await?;
        kinds.retain(|k| k != "status_changed");
        kinds.sort();
        timelines.insert(e.clone(), kinds);
    }
    let figures = p.chaos_figures().await?;
    p.finish().await?;
    Ok(((statuses, timelines, stock), figures))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_deliveries_leave_the_same_end_state() -> anyhow::Result<()> {
    let (clean, _) = story(None).await?;
    let (shaken, figures) = story(Some(2026)).await?;
    let figures = figures.ok_or_else(|| anyhow::anyhow!("the shaken run kept no record"))?;
    eprintln!("chaos: {figures:?}");
    // The harness really acted, and reordered deliveries reached the batch paths.
    assert!(
        figures.duplicated > 0,
        "nothing was duplicated: {figures:?}"
    );
    assert!(figures.deferred > 0, "nothing was deferred: {figures:?}");
    // Reordered deliveries reached the handlers' batch path. Whether they land in batches
    // of several or of one depends on how fast deliveries arrive (on a loaded machine the
    // batches are small), so only their sum is certain; that batches of several decide as
    // one message at a time would is proven deterministically by each worker's
    // batch-versus-one-at-a-time tests.
    assert!(
        figures.reordered_in_batches + figures.reordered_in_batches_of_one > 0,
        "no reordered delivery reached a batch: {figures:?}"
    );
    assert_eq!(
        clean, shaken,
        "the end state does not depend on duplicates or delivery order"
    );
    Ok(())
}
