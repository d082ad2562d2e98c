//! The orders worker against the real RabbitMQ and PostgreSQL: each test gets its own
//! database and broker namespace, runs the worker, publishes what the storefront, the
//! marketplace connectors, inventory and fulfillment would, and checks what orders
//! publishes and records.
//!
//! "Not published" is checked in the worker's outbox, in the same database the effect was
//! committed to: once the timeline shows the message was handled, the outbox says for sure
//! what that handling emitted (no waiting for something not to arrive).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use orderly_contracts::RawEnvelope;
use orderly_contracts::messages::{
    CancellationScope, ItemProblem, OrderAccepted, OrderCancelled, OrderCompleted, OrderOnHold,
    OrderStatusChanged,
};
use orderly_contracts::types::OrderStatus;
use orderly_contracts::{Envelope, Message};
use orderly_orders::{NAME, OrdersHandler, store};
use orderly_runtime::Host;
use orderly_runtime::testing::{Tap, World, run_batch, wait_until, with_names};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// GTINs with valid check digits.
const GTIN_PEN: &str = "4006381333931";
const GTIN_UNKNOWN: &str = "4012345678901";
const GTIN_OTHER: &str = "8712345678906";

struct Env {
    world: World,
    host: Host,
    pool: PgPool,
}

impl Env {
    async fn start() -> anyhow::Result<Self> {
        let world = World::new().await?;
        let pool = world.pool("orders").await?;
        let mut host = world.host();
        host.start_worker(NAME, OrdersHandler::new()).await?;
        let env = Self { world, host, pool };
        env.stores(&[("shop-de", true), ("amazon-de", true)])
            .await?;
        Ok(env)
    }

    /// Declares `stores` (open or closed) and waits until orders has them.
    async fn stores(&self, stores: &[(&str, bool)]) -> anyhow::Result<()> {
        let mut sent = Vec::new();
        for (store, active) in stores {
            let env = self
                .send::<orderly_contracts::messages::StoreUpserted>(
                    "admin-api",
                    store,
                    json!({"store_id": store, "revision": 1, "name": format!("{store} shop"),
                           "country": "DE", "currency": "EUR", "active": active}),
                )
                .await;
            sent.push(env.message_id);
        }
        let pool = self.pool.clone();
        wait_until("stores declared", WAIT, || {
            let (pool, sent) = (pool.clone(), sent.clone());
            async move {
                let n: i64 =
                    sqlx::query_scalar("select count(*) from inbox where message_id = any($1)")
                        .bind(&sent)
                        .fetch_one(&pool)
                        .await?;
                Ok(n == i64::try_from(sent.len())?)
            }
        })
        .await
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.host.stop(Duration::from_secs(10)).await;
        // A connection a failed test still holds must not keep the cleanup waiting.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.pool.close()).await;
        self.world.cleanup().await
    }

    /// Publishes `payload` (decoded from JSON as `P`) as `producer` would.
    async fn send<P: Message>(
        &self,
        producer: &str,
        correlation: &str,
        payload: Value,
    ) -> Envelope<P> {
        let payload: P = serde_json::from_value(payload).expect("test payload");
        let env = Envelope::new(producer, correlation, payload);
        self.world.publish(&env).await.expect("publish");
        env
    }

    async fn tap(&self, types: &[&str]) -> Tap {
        self.world.tap(types).await.expect("tap")
    }

    /// Publishes the catalog the tests use and waits until orders has it.
    async fn catalog(&self) -> anyhow::Result<()> {
        for (sku, gtins, tax, active) in [
            ("MUG-BLU-350", json!([]), "standard", true),
            ("TEA-EARL-100", json!([]), "reduced", true),
            // Catalogs may carry the zero-padded GTIN-14; marketplaces send the EAN-13.
            (
                "PEN-BLUE",
                json!([format!("0{GTIN_PEN}")]),
                "standard",
                true,
            ),
            ("HL-STABILO-4", json!([]), "standard", true),
            ("OLD-THING", json!([GTIN_OTHER]), "standard", false),
        ] {
            self.send::<orderly_contracts::messages::ProductUpserted>(
                "pim",
                sku,
                json!({
                    "sku": sku, "gtins": gtins, "title": format!("{sku} title"),
                    "tax_category": tax, "active": active,
                    "updated_at": "2026-03-01T00:00:00Z"
                }),
            )
            .await;
        }
        let pool = self.pool.clone();
        wait_until("catalog projected", WAIT, || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar("select count(*) from products")
                    .fetch_one(&pool)
                    .await?;
                Ok(n == 5)
            }
        })
        .await
    }

    async fn order(&self, store: &str, channel: &str, ext: &str) -> Option<store::OrderSummary> {
        let mut conn = self.pool.acquire().await.unwrap();
        store::find_order(&mut conn, store, channel, ext)
            .await
            .unwrap()
    }

    async fn wait_status(
        &self,
        store: &str,
        channel: &str,
        ext: &str,
        status: &str,
    ) -> store::OrderSummary {
        let what = format!("{store}/{channel}/{ext} is {status}");
        let mut last = None;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(o) = self.order(store, channel, ext).await {
                if o.status == status {
                    return o;
                }
                last = Some(o.status.clone());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for: {what} (last status: {last:?})"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn timeline(&self, order_id: Uuid) -> Vec<store::TimelineEntry> {
        let mut conn = self.pool.acquire().await.unwrap();
        store::timeline(&mut conn, order_id).await.unwrap()
    }

    /// Waits until the timeline has an entry of `kind` caused by `message_id`.
    async fn wait_timeline(
        &self,
        order_id: Uuid,
        kind: &str,
        message_id: Uuid,
    ) -> store::TimelineEntry {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self
                .timeline(order_id)
                .await
                .into_iter()
                .find(|e| e.kind == kind && e.message_id == Some(message_id))
            {
                return e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for timeline entry {kind} from {message_id}: {:#?}",
                self.timeline(order_id).await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Messages of `message_type` about `order_id` in the worker's outbox.
    async fn emitted(&self, message_type: &str, order_id: Uuid) -> i64 {
        sqlx::query_scalar(
            "select count(*) from outbox where message_type = $1 and correlation_id = $2",
        )
        .bind(message_type)
        .bind(order_id.to_string())
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

/// Runs a test body with an overall deadline: a broker or database that stops answering
/// fails the test with a reason instead of hanging it.
async fn bounded(
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(180), body)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the test did not finish within 180 s: are RabbitMQ and PostgreSQL answering?"
            )
        })?
}

fn address(city: &str) -> Value {
    json!({"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"], "postal_code": "10115", "city": city, "country": "DE"})
}

/// A storefront order: MUG × 2 at 12.90, TEA × 1 at 7.50 − 0.75, shipping 4.95 = 37.50.
fn storefront_order(ext: &str) -> Value {
    json!({
        "store_id": "shop-de",
        "channel": "storefront",
        "external_order_id": ext,
        "revision": 1,
        "placed_at": "2026-03-14T09:26:51Z",
        "currency": "EUR",
        "prices_include_tax": true,
        "customer": {"id": "C-48213", "email": "joerg@example.de", "name": "Jörg Schäfer", "locale": "de-DE", "is_business": false},
        "billing_address": address("Berlin"),
        "shipping_address": address("Berlin"),
        "lines": [
            {"line_id": "1", "sku": "MUG-BLU-350", "title": "Kaffeebecher", "quantity": 2, "unit_price": "12.90", "tax_category": "standard"},
            {"line_id": "2", "sku": "TEA-EARL-100", "title": "Earl Grey", "quantity": 1, "unit_price": "7.50", "discount": "0.75"}
        ],
        "shipping": "4.95",
        "discount": "0.00",
        "total": "37.50",
        "payment": {"status": "authorized", "method": "card"}
    })
}

/// A marketplace order with lines by GTIN, 10.00 each, no shipping.
fn marketplace_order(ext: &str, gtins: &[&str]) -> Value {
    let lines: Vec<Value> = gtins
        .iter()
        .enumerate()
        .map(|(i, g)| json!({"line_id": format!("item-{i}"), "gtin": g, "title": format!("Marketplace item {i}"), "quantity": 1, "unit_price": "10.00"}))
        .collect();
    json!({
        "store_id": "amazon-de",
        "channel": "marketplace",
        "marketplace": "amazon.de",
        "external_order_id": ext,
        "revision": 1,
        "placed_at": "2026-03-14T10:00:00Z",
        "currency": "EUR",
        "prices_include_tax": true,
        "customer": {"name": "Erika Mustermann", "locale": "de-DE", "is_business": false},
        "billing_address": address("Köln"),
        "shipping_address": address("Köln"),
        "lines": lines,
        "shipping": "0.00",
        "total": format!("{}.00", 10 * gtins.len()),
        "payment": {"status": "paid", "method": "marketplace"}
    })
}

async fn place_storefront(env: &Env, ext: &str) -> Uuid {
    env.send::<orderly_contracts::messages::OrderPlaced>(
        "storefront",
        &format!("shop-de/storefront/{ext}"),
        storefront_order(ext),
    )
    .await;
    env.wait_status("shop-de", "storefront", ext, "accepted")
        .await
        .order_id
}

fn reserved_two(order_id: Uuid) -> Value {
    json!({
        "order_id": order_id, "store_id": "shop-de",
        "allocations": [
            {"warehouse_id": "berlin-1", "lines": [{"line_id": "1", "sku": "MUG-BLU-350", "quantity": 2}]},
            {"warehouse_id": "hamburg-2", "lines": [{"line_id": "2", "sku": "TEA-EARL-100", "quantity": 1}]}
        ]
    })
}

fn dispatched(
    order_id: Uuid,
    shipment: Uuid,
    warehouse: &str,
    line: &str,
    sku: &str,
    qty: u32,
) -> Value {
    json!({
        "shipment_id": shipment, "order_id": order_id, "store_id": "shop-de",
        "channel": "storefront", "external_order_id": "x",
        "warehouse_id": warehouse, "carrier": "dhl", "tracking_number": format!("00340434{}", &shipment.simple().to_string()[..8]),
        "dispatched_at": "2026-03-15T08:00:00Z",
        "items": [{"line_id": line, "sku": sku, "quantity": qty}]
    })
}

fn delivered(order_id: Uuid, shipment: Uuid) -> Value {
    json!({
        "shipment_id": shipment, "order_id": order_id, "store_id": "shop-de",
        "carrier": "dhl", "tracking_number": "003404341234",
        "delivered_at": "2026-03-16T12:00:00Z"
    })
}

fn cancel_request(request_id: Uuid, order: Value, lines: Option<Value>) -> Value {
    let mut v = json!({
        "request_id": request_id, "store_id": "shop-de", "order": order,
        "requested_by": {"kind": "customer", "id": "C-48213"},
        "reason": "Changed my mind"
    });
    if let Some(lines) = lines {
        v["lines"] = lines;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storefront_order_is_accepted_once_however_often_it_is_pushed() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        env.catalog().await?;
        let mut accepted_tap = env.tap(&[OrderAccepted::TYPE]).await;
        let mut status_tap = env.tap(&[OrderStatusChanged::TYPE]).await;

        let placed = env
            .send::<orderly_contracts::messages::OrderPlaced>(
                "storefront",
                "shop-de/storefront/100234",
                storefront_order("100234"),
            )
            .await;
        let accepted = accepted_tap.next::<OrderAccepted>(WAIT).await?;
        let order_id = accepted.payload.order_id;
        assert_eq!(
            accepted.correlation_id,
            order_id.to_string(),
            "correlated by order id from here on"
        );
        assert_eq!(accepted.causation_id, Some(placed.message_id));
        assert_eq!(order_id.get_version_num(), 7, "order ids are UUIDv7");
        let lines = &accepted.payload.lines;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].sku.as_str(), "MUG-BLU-350");
        assert_eq!(
            lines[1].tax_category.as_str(),
            "reduced",
            "the catalog's category when the line has none"
        );
        assert_eq!(accepted.payload.total.to_string(), "37.50");

        let changed = status_tap.next::<OrderStatusChanged>(WAIT).await?;
        assert_eq!(changed.payload.order_id, order_id);
        assert_eq!(
            changed.payload.from, None,
            "the first status has no predecessor"
        );
        assert_eq!(changed.payload.to, OrderStatus::Accepted);
        assert_eq!(changed.payload.sequence, 1);
        assert_eq!(
            changed.payload.customer.email.as_ref().unwrap().as_str(),
            "joerg@example.de"
        );

        // The same revision again, as a new message: nothing changes but the timeline.
        let again = env
            .send::<orderly_contracts::messages::OrderPlaced>(
                "storefront",
                "shop-de/storefront/100234",
                storefront_order("100234"),
            )
            .await;
        let entry = env
            .wait_timeline(order_id, "duplicate_repush", again.message_id)
            .await;
        assert!(
            entry.detail.contains("Duplicate re-push ignored"),
            "{}",
            entry.detail
        );
        let orders: i64 = sqlx::query_scalar("select count(*) from orders")
            .fetch_one(&env.pool)
            .await?;
        assert_eq!(orders, 1, "never a duplicate order");
        assert_eq!(env.emitted(OrderAccepted::TYPE, order_id).await, 1);
        assert_eq!(env.emitted(OrderStatusChanged::TYPE, order_id).await, 1);

        // Counted once for the customer.
        let mut conn = env.pool.acquire().await?;
        let stats = store::customer_stats(&mut conn, "shop-de", "C-48213")
            .await?
            .expect("stats");
        assert_eq!(stats.orders, 1);
        let spend = store::customer_spend(&mut conn, "shop-de", "C-48213").await?;
        assert_eq!(
            spend.get("EUR").map(ToString::to_string).as_deref(),
            Some("37.50")
        );
        let counts = store::status_counts(&mut conn).await?;
        assert_eq!(counts.get("accepted"), Some(&1));
        drop(conn);

        let kinds: Vec<String> = env
            .timeline(order_id)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            ["placed", "accepted", "status_changed", "duplicate_repush"]
        );
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_gtin_holds_the_order_until_an_operator_maps_it() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        env.catalog().await?;
        let mut hold_tap = env.tap(&[OrderOnHold::TYPE]).await;
        let mut accepted_tap = env.tap(&[OrderAccepted::TYPE]).await;
        let mut status_tap = env.tap(&[OrderStatusChanged::TYPE]).await;

        // item-0 matches PEN-BLUE through the catalog's GTIN-14; item-1 matches nothing.
        env.send::<orderly_contracts::messages::OrderPlaced>(
            "connector:amazon",
            "amazon-de/marketplace/302-1",
            marketplace_order("302-1", &[GTIN_PEN, GTIN_UNKNOWN]),
        )
        .await;
        let hold = hold_tap.next::<OrderOnHold>(WAIT).await?;
        let order_id = hold.payload.order_id;
        assert_eq!(hold.payload.exceptions.len(), 1);
        let exception = &hold.payload.exceptions[0];
        assert_eq!(exception.line_id, "item-1");
        assert_eq!(exception.problem, ItemProblem::UnknownGtin);
        assert_eq!(exception.gtin.as_ref().unwrap().as_str(), GTIN_UNKNOWN);
        let changed = status_tap.next::<OrderStatusChanged>(WAIT).await?;
        assert_eq!(
            (changed.payload.to, changed.payload.sequence),
            (OrderStatus::OnHold, 1)
        );
        assert_eq!(changed.payload.marketplace.as_deref(), Some("amazon.de"));

        let mut conn = env.pool.acquire().await?;
        let open = store::list_exceptions(&mut conn, true).await?;
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].exception_id, exception.exception_id);
        assert_eq!(open[0].external_order_id, "302-1");
        drop(conn);
        assert_eq!(
            env.emitted(OrderAccepted::TYPE, order_id).await,
            0,
            "nothing reserved while on hold"
        );

        // The operator maps the GTIN and asks to remember it.
        env.send::<orderly_contracts::messages::OrderExceptionResolved>(
        "admin-api",
        &order_id.to_string(),
        json!({
            "order_id": order_id, "store_id": "amazon-de", "exception_id": exception.exception_id,
            "resolution": "map_to_sku", "sku": "HL-STABILO-4", "remember_mapping": true,
            "resolved_by": {"kind": "operator", "id": "anna.becker"},
            "note": "Neue EAN des Herstellers"
        }),
    )
    .await;
        let accepted = accepted_tap.next::<OrderAccepted>(WAIT).await?;
        assert_eq!(accepted.payload.order_id, order_id);
        let skus: Vec<&str> = accepted
            .payload
            .lines
            .iter()
            .map(|l| l.sku.as_str())
            .collect();
        assert_eq!(skus, ["PEN-BLUE", "HL-STABILO-4"]);
        assert_eq!(
            accepted.payload.lines[1].gtin.as_ref().unwrap().as_str(),
            GTIN_UNKNOWN
        );
        let changed = status_tap.next::<OrderStatusChanged>(WAIT).await?;
        assert_eq!(changed.payload.from, Some(OrderStatus::OnHold));
        assert_eq!(
            (changed.payload.to, changed.payload.sequence),
            (OrderStatus::Accepted, 2)
        );
        let mut conn = env.pool.acquire().await?;
        assert!(store::list_exceptions(&mut conn, true).await?.is_empty());
        let all = store::list_exceptions(&mut conn, false).await?;
        assert_eq!(all[0].status, "resolved");
        assert_eq!(all[0].resolved_sku.as_deref(), Some("HL-STABILO-4"));
        drop(conn);

        // The next order with that GTIN is accepted directly, through the remembered mapping.
        env.send::<orderly_contracts::messages::OrderPlaced>(
            "connector:amazon",
            "amazon-de/marketplace/302-2",
            marketplace_order("302-2", &[GTIN_UNKNOWN]),
        )
        .await;
        let second = accepted_tap.next::<OrderAccepted>(WAIT).await?;
        assert_ne!(second.payload.order_id, order_id);
        assert_eq!(second.payload.external_order_id, "302-2");
        assert_eq!(second.payload.lines[0].sku.as_str(), "HL-STABILO-4");
        assert_eq!(
            env.emitted(OrderOnHold::TYPE, second.payload.order_id)
                .await,
            0
        );

        let kinds: Vec<String> = env
            .timeline(order_id)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "placed",
                "on_hold",
                "status_changed",
                "exception_resolved",
                "accepted",
                "status_changed"
            ]
        );
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_line_and_a_new_revision_clear_the_exceptions() -> anyhow::Result<()> {
    bounded(async {
    let env = Env::start().await?;
    env.catalog().await?;
    let mut cancelled_tap = env.tap(&[OrderCancelled::TYPE]).await;
    let mut accepted_tap = env.tap(&[OrderAccepted::TYPE]).await;

    // An inactive product and an unknown GTIN: two exceptions. Removing the inactive line
    // leaves the unknown one open.
    env.send::<orderly_contracts::messages::OrderPlaced>(
        "connector:amazon",
        "amazon-de/marketplace/303",
        marketplace_order("303", &[GTIN_PEN, GTIN_OTHER, GTIN_UNKNOWN]),
    )
    .await;
    let order = env
        .wait_status("amazon-de", "marketplace", "303", "on_hold")
        .await;
    let mut conn = env.pool.acquire().await?;
    let open = store::list_exceptions(&mut conn, true).await?;
    drop(conn);
    assert_eq!(open.len(), 2);
    let inactive = open
        .iter()
        .find(|e| e.problem == "inactive_product")
        .expect("inactive");
    let unknown = open
        .iter()
        .find(|e| e.problem == "unknown_gtin")
        .expect("unknown");
    env.send::<orderly_contracts::messages::OrderExceptionResolved>(
        "admin-api",
        &order.order_id.to_string(),
        json!({
            "order_id": order.order_id, "store_id": "amazon-de", "exception_id": inactive.exception_id,
            "resolution": "remove_line", "resolved_by": {"kind": "operator", "id": "anna.becker"}
        }),
    )
    .await;
    let cancelled = cancelled_tap.next::<OrderCancelled>(WAIT).await?;
    assert_eq!(cancelled.payload.scope, CancellationScope::Lines);
    assert_eq!(cancelled.payload.request_id, None);
    assert_eq!(cancelled.payload.lines[0].line_id, inactive.line_id);
    assert_eq!(
        env.order("amazon-de", "marketplace", "303")
            .await
            .unwrap()
            .status,
        "on_hold"
    );

    // Revision 2 replaces the unknown GTIN with the pen: the open exception is superseded and
    // the order accepted with what is left (the removed line stays removed).
    let mut rev2 = marketplace_order("303", &[GTIN_PEN, GTIN_OTHER, GTIN_PEN]);
    rev2["revision"] = json!(2);
    env.send::<orderly_contracts::messages::OrderPlaced>(
        "connector:amazon",
        "amazon-de/marketplace/303",
        rev2,
    )
    .await;
    let accepted = accepted_tap.next::<OrderAccepted>(WAIT).await?;
    assert_eq!(accepted.payload.order_id, order.order_id);
    assert_eq!(accepted.payload.revision, 2);
    let lines: Vec<(&str, &str)> = accepted
        .payload
        .lines
        .iter()
        .map(|l| (l.line_id.as_str(), l.sku.as_str()))
        .collect();
    assert_eq!(lines, [("item-0", "PEN-BLUE"), ("item-2", "PEN-BLUE")]);
    assert_eq!(
        accepted.payload.total.to_string(),
        "20.00",
        "amounts recomputed without the removed line"
    );
    let mut conn = env.pool.acquire().await?;
    let all = store::list_exceptions(&mut conn, false).await?;
        drop(conn);
    let status_of = |id: Uuid| {
        all.iter()
            .find(|e| e.exception_id == id)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(status_of(unknown.exception_id), "superseded");
    assert_eq!(status_of(inactive.exception_id), "resolved");
    env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_order_is_dead_lettered_and_listed_as_rejected() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        let mut bad = storefront_order("100999");
        bad["total"] = json!("99.99");
        let sent = env
            .send::<orderly_contracts::messages::OrderPlaced>(
                "storefront",
                "shop-de/storefront/100999",
                bad,
            )
            .await;
        let pool = env.pool.clone();
        wait_until("rejected order listed", WAIT, || {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await?;
                Ok(!store::list_rejected(&mut conn, 10).await?.is_empty())
            }
        })
        .await?;
        let mut conn = env.pool.acquire().await?;
        let rejected = store::list_rejected(&mut conn, 10).await?;
        drop(conn);
        assert_eq!(rejected.len(), 1);
        let r = &rejected[0];
        assert_eq!(r.message_id, sent.message_id);
        assert_eq!(r.field, "payload.total");
        assert!(r.reason.contains("does not match"), "{}", r.reason);
        assert_eq!(r.store_id.as_deref(), Some("shop-de"));
        assert_eq!(r.external_order_id.as_deref(), Some("100999"));
        assert_eq!(r.body["payload"]["total"], "99.99");

        let world = &env.world;
        wait_until("dead letter", WAIT, || async move {
            Ok(world.queue_depth("orders.dlq").await? == 1)
        })
        .await?;
        let letters = env.world.dead_letters("orders").await?;
        assert_eq!(letters.len(), 1);
        assert!(
            letters[0].reason.contains("payload.total"),
            "{}",
            letters[0].reason
        );
        assert!(
            env.order("shop-de", "storefront", "100999").await.is_none(),
            "no order was created"
        );
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_for_an_undeclared_or_closed_store_are_rejected_with_the_reason()
-> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        env.catalog().await?;
        env.stores(&[("shop-closed", false)]).await?;
        let mut unknown = storefront_order("100777");
        unknown["store_id"] = json!("shop-xx");
        let mut closed = storefront_order("100778");
        closed["store_id"] = json!("shop-closed");
        // Sent together, between two good orders of a declared store: only the two are
        // refused.
        env.send::<orderly_contracts::messages::OrderPlaced>(
            "storefront",
            "shop-de/storefront/100776",
            storefront_order("100776"),
        )
        .await;
        for (order, ext) in [(unknown, "100777"), (closed, "100778")] {
            env.send::<orderly_contracts::messages::OrderPlaced>(
                "storefront",
                &format!("x/storefront/{ext}"),
                order,
            )
            .await;
        }
        env.send::<orderly_contracts::messages::OrderPlaced>(
            "storefront",
            "shop-de/storefront/100779",
            storefront_order("100779"),
        )
        .await;
        for ext in ["100776", "100779"] {
            env.wait_status("shop-de", "storefront", ext, "accepted")
                .await;
        }
        let pool = env.pool.clone();
        wait_until("both refusals listed", WAIT, || {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await?;
                Ok(store::list_rejected(&mut conn, 10).await?.len() == 2)
            }
        })
        .await?;
        let mut conn = env.pool.acquire().await?;
        let mut rejected = store::list_rejected(&mut conn, 10).await?;
        drop(conn);
        rejected.sort_by(|a, b| a.external_order_id.cmp(&b.external_order_id));
        assert!(rejected.iter().all(|r| r.field == "payload.store_id"));
        assert!(
            rejected[0].reason.contains("`shop-xx` is not declared"),
            "{}",
            rejected[0].reason
        );
        assert!(
            rejected[1].reason.contains("`shop-closed` is closed"),
            "{}",
            rejected[1].reason
        );
        let world = &env.world;
        wait_until("two dead letters", WAIT, || async move {
            Ok(world.queue_depth("orders.dlq").await? == 2)
        })
        .await?;
        for (store, ext) in [("shop-xx", "100777"), ("shop-closed", "100778")] {
            assert!(env.order(store, "storefront", ext).await.is_none());
        }
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_before_dispatch_cancels_the_whole_order() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        env.catalog().await?;
        let mut cancelled_tap = env.tap(&[OrderCancelled::TYPE]).await;
        let order_id = place_storefront(&env, "100300").await;

        let request_id = Uuid::now_v7();
        let request = cancel_request(
            request_id,
            json!({"channel": "storefront", "external_order_id": "100300"}),
            None,
        );
        env.send::<orderly_contracts::messages::OrderCancelRequested>(
            "storefront",
            "shop-de/storefront/100300",
            request.clone(),
        )
        .await;
        let cancelled = cancelled_tap.next::<OrderCancelled>(WAIT).await?;
        assert_eq!(cancelled.payload.order_id, order_id);
        assert_eq!(cancelled.payload.scope, CancellationScope::Order);
        assert_eq!(cancelled.payload.request_id, Some(request_id));
        assert_eq!(cancelled.payload.lines.len(), 2);
        let order = env
            .wait_status("shop-de", "storefront", "100300", "cancelled")
            .await;
        assert_eq!(order.status_sequence, 2);

        // The same request again (a new message): handled once.
        let again = env
            .send::<orderly_contracts::messages::OrderCancelRequested>(
                "storefront",
                "shop-de/storefront/100300",
                request,
            )
            .await;
        env.wait_timeline(order_id, "cancel_duplicate", again.message_id)
            .await;
        assert_eq!(env.emitted(OrderCancelled::TYPE, order_id).await, 1);

        // A cancellation for an order that does not exist is rejected, on record.
        let ghost = Uuid::now_v7();
        env.send::<orderly_contracts::messages::OrderCancelRequested>(
            "storefront",
            "shop-de/storefront/nope",
            cancel_request(
                ghost,
                json!({"channel": "storefront", "external_order_id": "nope"}),
                None,
            ),
        )
        .await;
        let world = &env.world;
        wait_until("rejected cancellation dead-lettered", WAIT, || async move {
            Ok(world.queue_depth("orders.dlq").await? == 1)
        })
        .await?;
        let (outcome, reason): (String, String) = sqlx::query_as(
            "select outcome, outcome_reason from cancellation_requests where request_id = $1",
        )
        .bind(ghost)
        .fetch_one(&env.pool)
        .await?;
        assert_eq!(outcome, "rejected");
        assert!(reason.contains("no order nope"), "{reason}");
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_dispatch_only_undispatched_lines_can_be_cancelled() -> anyhow::Result<()> {
    bounded(async {
    let env = Env::start().await?;
    env.catalog().await?;
    let mut cancelled_tap = env.tap(&[OrderCancelled::TYPE]).await;
    let order_id = place_storefront(&env, "100400").await;
    let corr = order_id.to_string();
    env.send::<orderly_contracts::messages::StockReserved>(
        "inventory",
        &corr,
        reserved_two(order_id),
    )
    .await;
    env.wait_status("shop-de", "storefront", "100400", "processing")
        .await;
    let berlin = Uuid::now_v7();
    env.send::<orderly_contracts::messages::ShipmentDispatched>(
        "fulfillment",
        &corr,
        dispatched(order_id, berlin, "berlin-1", "1", "MUG-BLU-350", 2),
    )
    .await;
    env.wait_status("shop-de", "storefront", "100400", "partially_shipped")
        .await;

    // The whole order: refused with a reason, not an error.
    let whole = Uuid::now_v7();
    let sent = env
        .send::<orderly_contracts::messages::OrderCancelRequested>(
            "storefront",
            &corr,
            cancel_request(whole, json!({"order_id": order_id}), None),
        )
        .await;
    let entry = env
        .wait_timeline(order_id, "cancellation_refused", sent.message_id)
        .await;
    assert!(
        entry.detail.contains("already left the warehouse"),
        "{}",
        entry.detail
    );
    let mut conn = env.pool.acquire().await?;
    let requests = store::cancellation_requests(&mut conn, order_id).await?;
    drop(conn);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].outcome, "refused");
    assert!(
        requests[0]
            .outcome_reason
            .as_deref()
            .unwrap()
            .contains("1 shipment already left")
    );
    assert_eq!(
        env.emitted(OrderCancelled::TYPE, order_id).await,
        0,
        "no order.cancelled"
    );
    assert_eq!(
        env.world.queue_depth("orders.dlq").await?,
        0,
        "a refusal is not a failure"
    );

    // Naming lines: the undispatched one is cancelled, the dispatched one refused.
    let partial = Uuid::now_v7();
    env.send::<orderly_contracts::messages::OrderCancelRequested>(
        "storefront",
        &corr,
        cancel_request(
            partial,
            json!({"order_id": order_id}),
            Some(json!([{"line_id": "1", "quantity": 1}, {"line_id": "2", "quantity": 1}])),
        ),
    )
    .await;
    let cancelled = cancelled_tap.next::<OrderCancelled>(WAIT).await?;
    assert_eq!(cancelled.payload.scope, CancellationScope::Lines);
    assert_eq!(cancelled.payload.request_id, Some(partial));
    assert_eq!(cancelled.payload.lines.len(), 1);
    assert_eq!(cancelled.payload.lines[0].line_id, "2");
    assert_eq!(
        cancelled.payload.lines[0].sku.as_ref().unwrap().as_str(),
        "TEA-EARL-100"
    );
    let (outcome,): (String,) =
        sqlx::query_as("select outcome from cancellation_requests where request_id = $1")
            .bind(partial)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(outcome, "partially_refused");

    // Inventory releases hamburg's reservation: the one remaining shipment is all there is.
    env.send::<orderly_contracts::messages::StockReleased>(
        "inventory",
        &corr,
        json!({"order_id": order_id, "store_id": "shop-de", "reason": "lines_cancelled",
               "lines": [{"warehouse_id": "hamburg-2", "line_id": "2", "sku": "TEA-EARL-100", "quantity": 1}]}),
    )
    .await;
    env.wait_status("shop-de", "storefront", "100400", "shipped")
        .await;
    env.send::<orderly_contracts::messages::ShipmentDelivered>(
        "fulfillment",
        &corr,
        delivered(order_id, berlin),
    )
    .await;
    env.wait_status("shop-de", "storefront", "100400", "completed")
        .await;
    env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_to_completed_is_on_the_timeline() -> anyhow::Result<()> {
    bounded(async {
    let env = Env::start().await?;
    env.catalog().await?;
    let mut status_tap = env.tap(&[OrderStatusChanged::TYPE]).await;
    let mut completed_tap = env.tap(&[OrderCompleted::TYPE]).await;
    let order_id = place_storefront(&env, "100500").await;
    let corr = order_id.to_string();
    let (berlin, hamburg) = (Uuid::now_v7(), Uuid::now_v7());
    let ext = "100500";

    env.send::<orderly_contracts::messages::StockReserved>(
        "inventory",
        &corr,
        reserved_two(order_id),
    )
    .await;
    env.wait_status("shop-de", "storefront", ext, "processing")
        .await;
    for (shipment, warehouse, line, sku, qty) in [
        (berlin, "berlin-1", "1", "MUG-BLU-350", 2),
        (hamburg, "hamburg-2", "2", "TEA-EARL-100", 1),
    ] {
        env.send::<orderly_contracts::messages::ShipmentRequested>(
            "fulfillment",
            &corr,
            json!({
                "shipment_id": shipment, "order_id": order_id, "store_id": "shop-de",
                "external_order_id": ext, "warehouse_id": warehouse, "ship_to": address("Berlin"),
                "items": [{"line_id": line, "sku": sku, "title": sku, "quantity": qty}]
            }),
        )
        .await;
    }
    env.send::<orderly_contracts::messages::ShipmentDispatched>(
        "fulfillment",
        &corr,
        dispatched(order_id, berlin, "berlin-1", "1", "MUG-BLU-350", 2),
    )
    .await;
    env.wait_status("shop-de", "storefront", ext, "partially_shipped")
        .await;
    env.send::<orderly_contracts::messages::ShipmentDispatched>(
        "fulfillment",
        &corr,
        dispatched(order_id, hamburg, "hamburg-2", "2", "TEA-EARL-100", 1),
    )
    .await;
    env.wait_status("shop-de", "storefront", ext, "shipped")
        .await;
    let invoice = env
        .send::<orderly_contracts::messages::InvoiceIssued>(
            "invoicing",
            &corr,
            json!({
                "invoice_id": Uuid::now_v7(), "invoice_number": "RE-2026-000123", "request_id": Uuid::now_v7(),
                "order_id": order_id, "store_id": "shop-de", "issued_at": "2026-03-15T09:00:00Z",
                "currency": "EUR", "vat_treatment": "domestic",
                "buyer": {"name": "Jörg Schäfer", "country": "DE"},
                "totals": {"net": "31.51", "tax": "5.99", "gross": "37.50",
                           "breakdown": [{"rate": "19", "net": "31.51", "tax": "5.99"}]},
                "pdf": {"uri": "s3://invoices/RE-2026-000123.pdf", "media_type": "application/pdf",
                        "sha256": "a".repeat(64), "size_bytes": 1234}
            }),
        )
        .await;
    env.wait_timeline(order_id, "invoice_issued", invoice.message_id)
        .await;
    env.send::<orderly_contracts::messages::ShipmentDelivered>(
        "fulfillment",
        &corr,
        delivered(order_id, berlin),
    )
    .await;
    let hamburg_delivered = env
        .send::<orderly_contracts::messages::ShipmentDelivered>(
            "fulfillment",
            &corr,
            delivered(order_id, hamburg),
        )
        .await;
    env.wait_timeline(order_id, "shipment_delivered", hamburg_delivered.message_id)
        .await;
    env.wait_status("shop-de", "storefront", ext, "completed")
        .await;
    let note = env
        .send::<orderly_contracts::messages::NotificationSent>(
            "notification-system",
            &corr,
            json!({"request_id": Uuid::now_v7(), "order_id": order_id, "channel": "email",
                   "template": "order_delivered", "delivered_at": "2026-03-16T12:01:00Z", "provider": "ses"}),
        )
        .await;
    env.wait_timeline(order_id, "notification_sent", note.message_id)
        .await;

    let completed = completed_tap.next::<OrderCompleted>(WAIT).await?;
    assert_eq!(completed.payload.order_id, order_id);
    assert_eq!(completed.payload.invoice_numbers, ["RE-2026-000123"]);
    assert_eq!(completed.payload.total.to_string(), "37.50");

    let mut seen = Vec::new();
    while seen.last() != Some(&OrderStatus::Completed) {
        let m = status_tap.next::<OrderStatusChanged>(WAIT).await?;
        assert_eq!(
            m.payload.sequence,
            seen.len() as u64 + 1,
            "sequences count from 1 without gaps"
        );
        seen.push(m.payload.to);
    }
    use OrderStatus as S;
    assert_eq!(
        seen,
        [
            S::Accepted,
            S::Processing,
            S::PartiallyShipped,
            S::Shipped,
            S::Delivered,
            S::Completed
        ]
    );

    let timeline = env.timeline(order_id).await;
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "placed",
        "accepted",
        "stock_reserved",
        "shipment_requested",
        "shipment_dispatched",
        "invoice_issued",
        "shipment_delivered",
        "completed",
        "notification_sent",
    ] {
        assert!(kinds.contains(&kind), "timeline lacks {kind}: {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "status_changed").count(), 6);
    assert_eq!(
        kinds.iter().filter(|k| **k == "shipment_requested").count(),
        2
    );
    let seqs: Vec<i32> = timeline.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=timeline.len() as i32).collect::<Vec<_>>());
    let first_dispatch = timeline
        .iter()
        .find(|e| e.kind == "shipment_dispatched")
        .unwrap();
    assert!(
        first_dispatch
            .detail
            .starts_with("Shipment 1 of 2 dispatched via DHL from berlin-1 (tracking 00340434"),
        "{}",
        first_dispatch.detail
    );
    env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_any_order_still_complete_the_order_once() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        env.catalog().await?;
        let order_id = place_storefront(&env, "100600").await;
        let corr = order_id.to_string();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        // Deliveries and dispatches before the reservation, and a dispatch twice.
        let dispatched_b = dispatched(order_id, b, "hamburg-2", "2", "TEA-EARL-100", 1);
        let mut handled = Vec::new();
        let m = env
            .send::<orderly_contracts::messages::ShipmentDelivered>(
                "fulfillment",
                &corr,
                delivered(order_id, b),
            )
            .await;
        handled.push(("shipment_delivered", m.message_id));
        let m = env
            .send::<orderly_contracts::messages::ShipmentDispatched>(
                "fulfillment",
                &corr,
                dispatched(order_id, a, "berlin-1", "1", "MUG-BLU-350", 2),
            )
            .await;
        handled.push(("shipment_dispatched", m.message_id));
        let m = env
            .send::<orderly_contracts::messages::ShipmentDelivered>(
                "fulfillment",
                &corr,
                delivered(order_id, a),
            )
            .await;
        handled.push(("shipment_delivered", m.message_id));
        for _ in 0..2 {
            let m = env
                .send::<orderly_contracts::messages::ShipmentDispatched>(
                    "fulfillment",
                    &corr,
                    dispatched_b.clone(),
                )
                .await;
            handled.push(("shipment_dispatched", m.message_id));
        }
        for (kind, id) in handled {
            env.wait_timeline(order_id, kind, id).await;
        }
        // Every shipment delivered, but how many there are is not known yet.
        assert_eq!(
            env.order("shop-de", "storefront", "100600")
                .await
                .unwrap()
                .status,
            "partially_shipped"
        );
        env.send::<orderly_contracts::messages::StockReserved>(
            "inventory",
            &corr,
            reserved_two(order_id),
        )
        .await;
        let late = env
            .send::<orderly_contracts::messages::StockReserved>(
                "inventory",
                &corr,
                reserved_two(order_id),
            )
            .await;
        env.wait_status("shop-de", "storefront", "100600", "completed")
            .await;
        env.wait_timeline(order_id, "stock_reserved", late.message_id)
            .await;
        assert_eq!(env.emitted(OrderCompleted::TYPE, order_id).await, 1);
        let sequence: i64 =
            sqlx::query_scalar("select status_sequence from orders where order_id = $1")
                .bind(order_id)
                .fetch_one(&env.pool)
                .await?;
        assert_eq!(
            sequence,
            env.emitted(OrderStatusChanged::TYPE, order_id).await
        );
        let statuses: Vec<String> = sqlx::query_scalar(
            "select body->'payload'->>'to' from outbox where message_type = 'order.status_changed'
         and correlation_id = $1 order by id",
        )
        .bind(&corr)
        .fetch_all(&env.pool)
        .await?;
        assert_eq!(
            statuses,
            ["accepted", "partially_shipped", "delivered", "completed"]
        );
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_an_unknown_order_are_retried_then_dead_lettered() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        let ghost = Uuid::now_v7();
        env.send::<orderly_contracts::messages::ShipmentDelivered>(
            "fulfillment",
            &ghost.to_string(),
            delivered(ghost, Uuid::now_v7()),
        )
        .await;
        let world = &env.world;
        wait_until("dead letter after retries", WAIT, || async move {
            Ok(world.queue_depth("orders.dlq").await? == 1)
        })
        .await?;
        let letters = env.world.dead_letters("orders").await?;
        assert_eq!(letters.len(), 1);
        assert!(
            letters[0].reason.contains("not known"),
            "{}",
            letters[0].reason
        );
        assert_eq!(
            letters[0].attempts,
            Some(5),
            "the whole retry budget was spent"
        );
        env.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_revision_after_acceptance_is_applied_as_commands() -> anyhow::Result<()> {
    bounded(async {
    let env = Env::start().await?;
    env.catalog().await?;
    let mut cancelled_tap = env.tap(&[OrderCancelled::TYPE]).await;
    let order_id = place_storefront(&env, "100700").await;

    // Revision 2: line 2 gone, a new line 3, another delivery address.
    let mut rev2 = storefront_order("100700");
    rev2["revision"] = json!(2);
    rev2["shipping_address"] = address("Potsdam");
    rev2["lines"] = json!([
        {"line_id": "1", "sku": "MUG-BLU-350", "title": "Kaffeebecher", "quantity": 2, "unit_price": "12.90"},
        {"line_id": "3", "sku": "TEA-EARL-100", "title": "Earl Grey", "quantity": 1, "unit_price": "6.75"}
    ]);
    let sent = env
        .send::<orderly_contracts::messages::OrderPlaced>(
            "storefront",
            "shop-de/storefront/100700",
            rev2,
        )
        .await;
    let cancelled = cancelled_tap.next::<OrderCancelled>(WAIT).await?;
    assert_eq!(cancelled.payload.scope, CancellationScope::Lines);
    assert_eq!(cancelled.payload.request_id, None);
    assert_eq!(cancelled.payload.lines[0].line_id, "2");
    assert!(
        cancelled.payload.reason.contains("revision 2"),
        "{}",
        cancelled.payload.reason
    );
    let entry = env
        .wait_timeline(order_id, "revision_applied", sent.message_id)
        .await;
    assert!(
        entry.detail.contains("addresses updated"),
        "{}",
        entry.detail
    );
    assert!(entry.detail.contains("line 3"), "{}", entry.detail);
    let (city, revision): (String, i64) = sqlx::query_as(
        "select shipping_address->>'city', revision from orders where order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!((city.as_str(), revision), ("Potsdam", 2));
    assert_eq!(
        env.emitted(OrderAccepted::TYPE, order_id).await,
        1,
        "no second acceptance"
    );
    assert_eq!(
        env.order("shop-de", "storefront", "100700")
            .await
            .unwrap()
            .status,
        "accepted"
    );

    // A refund beyond what is left is refused, on record.
    let refund = env
        .send::<orderly_contracts::messages::OrderRefundRequested>(
            "admin-api",
            &order_id.to_string(),
            json!({"request_id": Uuid::now_v7(), "order_id": order_id, "store_id": "shop-de",
                   "requested_by": {"kind": "operator", "id": "ops"}, "reason": "Damaged",
                   "lines": [{"line_id": "1", "quantity": 3}], "refund_shipping": false}),
        )
        .await;
    let entry = env
        .wait_timeline(order_id, "refund_refused", refund.message_id)
        .await;
    assert!(
        entry.detail.contains("only 2 can be refunded"),
        "{}",
        entry.detail
    );
    let outcome: String =
        sqlx::query_scalar("select outcome from refund_requests where order_id = $1")
            .bind(order_id)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(outcome, "refused");
    env.stop().await
    })
    .await
}

/// A product the catalog publishes after orders for it came in releases them: an unknown SKU
/// (storefront) and an unknown GTIN (marketplace, matched on its GTIN-14 form) are matched by
/// the catalog, the exceptions are resolved by the catalog (a system actor), and the orders proceed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_published_later_releases_the_orders_held_for_it() -> anyhow::Result<()> {
    bounded(async {
        let env = Env::start().await?;
        env.catalog().await?;
        let mut hold_tap = env.tap(&[OrderOnHold::TYPE]).await;
        let mut accepted_tap = env.tap(&[OrderAccepted::TYPE]).await;

        // A storefront order naming a SKU the catalog has not published yet.
        let mut order = storefront_order("SF-LATE-SKU");
        order["lines"][0]["sku"] = json!("MUG-NEW-400");
        env.send::<orderly_contracts::messages::OrderPlaced>(
            "storefront",
            "shop-de/storefront/SF-LATE-SKU",
            order,
        )
        .await;
        let held_sku = hold_tap.next::<OrderOnHold>(WAIT).await?.payload;
        assert_eq!(held_sku.exceptions[0].problem, ItemProblem::UnknownSku);

        // A marketplace order whose EAN-13 no product carries yet.
        env.send::<orderly_contracts::messages::OrderPlaced>(
            "connector:amazon",
            "amazon-de/marketplace/302-9",
            marketplace_order("302-9", &[GTIN_UNKNOWN]),
        )
        .await;
        let held_gtin = hold_tap.next::<OrderOnHold>(WAIT).await?.payload;
        assert_eq!(held_gtin.exceptions[0].problem, ItemProblem::UnknownGtin);

        // The catalog publishes both products (the GTIN as GTIN-14).
        for (sku, gtins) in [
            ("MUG-NEW-400", json!([])),
            ("WIDGET-9", json!([format!("0{GTIN_UNKNOWN}")])),
        ] {
            env.send::<orderly_contracts::messages::ProductUpserted>(
                "pim",
                sku,
                json!({"sku": sku, "gtins": gtins, "title": format!("{sku} title"),
                       "tax_category": "standard", "active": true,
                       "updated_at": "2026-03-15T00:00:00Z"}),
            )
            .await;
        }
        let mut released = Vec::new();
        for _ in 0..2 {
            let accepted = accepted_tap.next::<OrderAccepted>(WAIT).await?.payload;
            let skus: Vec<String> = accepted.lines.iter().map(|l| l.sku.to_string()).collect();
            released.push((accepted.order_id, skus));
        }
        released.sort();
        let mut expected = vec![
            (
                held_sku.order_id,
                vec!["MUG-NEW-400".to_owned(), "TEA-EARL-100".to_owned()],
            ),
            (held_gtin.order_id, vec!["WIDGET-9".to_owned()]),
        ];
        expected.sort();
        assert_eq!(released, expected);

        let mut conn = env.pool.acquire().await?;
        let open = store::list_exceptions(&mut conn, true).await?;
        assert!(open.is_empty(), "nothing left open: {open:?}");
        let all = store::list_exceptions(&mut conn, false).await?;
        assert!(
            all.iter()
                .all(|e| e.resolved_by.as_deref() == Some("catalog")),
            "{all:?}"
        );
        drop(conn);
        env.stop().await
    })
    .await
}

/// Envelopes of `payload` as `producer` would send them, for running batches directly.
fn raw<P: Message>(producer: &str, correlation: &str, payload: Value) -> RawEnvelope {
    let payload: P = serde_json::from_value(payload).expect("test payload");
    let env = Envelope::new(producer, correlation, payload);
    orderly_contracts::decode_raw(&env.to_json()).expect("own envelope")
}

/// The products the batch comparison matches against.
/// The stores the orders are for, and the catalog's products.
fn catalog_envelopes() -> Vec<RawEnvelope> {
    let stores = ["shop-de", "amazon-de"].map(|store| {
        raw::<orderly_contracts::messages::StoreUpserted>(
            "admin-api",
            store,
            json!({"store_id": store, "revision": 1, "name": "Shop", "country": "DE",
                   "currency": "EUR", "active": true}),
        )
    });
    let products = [
        ("MUG-BLU-350", json!([]), "standard"),
        ("TEA-EARL-100", json!([]), "reduced"),
        ("PEN-BLUE", json!([format!("0{GTIN_PEN}")]), "standard"),
    ]
    .into_iter()
    .map(|(sku, gtins, tax)| {
        raw::<orderly_contracts::messages::ProductUpserted>(
            "pim",
            sku,
            json!({
                "sku": sku, "gtins": gtins, "title": format!("{sku} title"),
                "tax_category": tax, "active": true, "updated_at": "2026-03-01T00:00:00Z"
            }),
        )
    });
    stores.into_iter().chain(products).collect()
}

fn placed(ext: &str) -> RawEnvelope {
    raw::<orderly_contracts::messages::OrderPlaced>(
        "storefront",
        &format!("shop-de/storefront/{ext}"),
        storefront_order(ext),
    )
}

fn event<P: Message>(producer: &str, order_id: Uuid, payload: Value) -> RawEnvelope {
    raw::<P>(producer, &order_id.to_string(), payload)
}

fn requested(order_id: Uuid, shipment: Uuid, warehouse: &str, line: &str, sku: &str) -> Value {
    json!({
        "shipment_id": shipment, "order_id": order_id, "store_id": "shop-de",
        "external_order_id": "x", "warehouse_id": warehouse,
        "ship_to": address("Berlin"),
        "items": [{"line_id": line, "sku": sku, "title": "t", "quantity": 1}]
    })
}

/// Everything the orders schema holds that a batch can change, with generated ids (orders,
/// exceptions) written as the order's external id so that two runs compare.
async fn orders_state(pool: PgPool) -> anyhow::Result<Vec<String>> {
    let ids: Vec<(Uuid, String)> = sqlx::query_as("select order_id, external_order_id from orders")
        .fetch_all(&pool)
        .await?;
    let named = |text: String| with_names(&text, &ids);
    let mut state = Vec::new();
    for sql in [
        "select concat_ws(' ', 'order', order_id, store_id, channel, status, status_sequence,
                revision, total, customer_key, accepted_at is not null, backordered_at is not null,
                cancelled_at is not null, completed_at is not null)
         from orders",
        "select concat_ws(' ', 'line', order_id, line_id, position, requested_sku, gtin, sku,
                tax_category, catalog_title, quantity, unit_price, discount, cancelled_quantity)
         from order_lines",
        "select concat_ws(' ', 'exception', order_id, line_id, sku, gtin, problem, status)
         from item_exceptions",
        "select concat_ws(' ', 'timeline', order_id, seq, kind, message_type, producer, detail)
         from timeline",
        "select concat_ws(' ', 'allocation', order_id, warehouse_id, line_id, sku, quantity)
         from order_allocations",
        "select concat_ws(' ', 'shipment', shipment_id, order_id, warehouse_id, carrier,
                tracking_number, requested_at is not null, dispatched_at, delivered_at)
         from order_shipments",
        "select concat_ws(' ', 'item', shipment_id, order_id, line_id, sku, quantity)
         from order_shipment_items",
        "select concat_ws(' ', 'customer', store_id, customer_key, orders, first_order_at,
                last_order_at)
         from customer_stats",
        "select concat_ws(' ', 'spend', store_id, customer_key, currency, amount)
         from customer_spend",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await?;
        state.extend(rows.into_iter().map(&named));
    }
    state.sort();
    Ok(state)
}

/// A batch of new orders and of events carrying known orders along, with duplicates, a
/// re-push in the middle and an order placed twice, handled together by the flow and one
/// message at a time: the same orders, lines, exceptions, facts, timelines (numbered alike),
/// customer statistics, and the same messages sent for the same causes in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_handled_as_one_message_at_a_time_would_be() -> anyhow::Result<()> {
    use orderly_contracts::messages::{
        OrderPlaced, ShipmentDelivered, ShipmentDispatched, ShipmentRequested, StockReserved,
    };
    bounded(async {
        let handler = OrdersHandler::new();
        let mut runs = Vec::new();
        for together in [false, true] {
            let world = World::new().await?;
            let pool = world.pool(NAME).await?;
            let mut setup = catalog_envelopes();
            setup.push(placed("E1"));
            setup.push(placed("E2"));
            run_batch(&pool, NAME, &handler, &setup, false).await?;
            let id = |ext: &'static str| {
                let pool = pool.clone();
                async move {
                    sqlx::query_scalar::<_, Uuid>(
                        "select order_id from orders where external_order_id = $1",
                    )
                    .bind(ext)
                    .fetch_one(&pool)
                    .await
                }
            };
            let (e1, e2) = (id("E1").await?, id("E2").await?);
            // Fixed shipment ids, so that both runs name the same shipments.
            let s1 = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0001);
            let s2 = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0002);
            let s3 = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0003);
            // E2 from one warehouse: one shipment, dispatched below.
            let e2_reserved = json!({
                "order_id": e2, "store_id": "shop-de",
                "allocations": [{"warehouse_id": "berlin-1", "lines": [
                    {"line_id": "1", "sku": "MUG-BLU-350", "quantity": 2},
                    {"line_id": "2", "sku": "TEA-EARL-100", "quantity": 1}
                ]}]
            });
            let batch = vec![
                placed("N1"),
                event::<StockReserved>("inventory", e1, reserved_two(e1)),
                raw::<OrderPlaced>(
                    "amazon-connector",
                    "amazon-de/N2",
                    marketplace_order("N2", &[GTIN_PEN, GTIN_UNKNOWN]),
                ),
                event::<ShipmentRequested>(
                    "fulfillment",
                    e1,
                    requested(e1, s1, "berlin-1", "1", "MUG-BLU-350"),
                ),
                // A re-push of E1 between its events: handled alone, after what came before.
                placed("E1"),
                event::<ShipmentRequested>(
                    "fulfillment",
                    e1,
                    requested(e1, s2, "hamburg-2", "2", "TEA-EARL-100"),
                ),
                event::<StockReserved>("inventory", e2, e2_reserved),
                event::<ShipmentDispatched>(
                    "fulfillment",
                    e1,
                    dispatched(e1, s1, "berlin-1", "1", "MUG-BLU-350", 2),
                ),
                event::<ShipmentDelivered>("fulfillment", e1, delivered(e1, s1)),
                // The same dispatch again, as another message: reported again, no change.
                event::<ShipmentDispatched>(
                    "fulfillment",
                    e1,
                    dispatched(e1, s1, "berlin-1", "1", "MUG-BLU-350", 2),
                ),
                placed("N3"),
                event::<ShipmentDispatched>(
                    "fulfillment",
                    e1,
                    dispatched(e1, s2, "hamburg-2", "2", "TEA-EARL-100", 1),
                ),
                event::<ShipmentDispatched>(
                    "fulfillment",
                    e2,
                    dispatched(e2, s3, "berlin-1", "1", "MUG-BLU-350", 2),
                ),
                // N3 again in the same batch: a re-push of an order this batch created.
                placed("N3"),
                event::<ShipmentDelivered>("fulfillment", e1, delivered(e1, s2)),
            ];
            let emitted = run_batch(&pool, NAME, &handler, &batch, together).await?;
            let ids: Vec<(Uuid, String)> =
                sqlx::query_as("select order_id, external_order_id from orders")
                    .fetch_all(&pool)
                    .await?;
            let causes: Vec<Uuid> = batch.iter().map(|m| m.message_id).collect();
            let emitted: Vec<String> = emitted
                .iter()
                .map(|m| {
                    let cause = m.body["causation_id"]
                        .as_str()
                        .and_then(|c| Uuid::parse_str(c).ok())
                        .and_then(|c| causes.iter().position(|x| *x == c));
                    let mut payload = m.body["payload"].clone();
                    if let Some(exceptions) = payload["exceptions"].as_array_mut() {
                        for e in exceptions {
                            e["exception_id"] = json!("<exception>");
                        }
                    }
                    let text = format!("{} caused by #{cause:?}: {payload}", m.message_type);
                    with_names(&text, &ids)
                })
                .collect();
            let state = orders_state(pool.clone()).await?;
            pool.close().await;
            world.cleanup().await?;
            runs.push((state, emitted));
        }
        let (together_state, together_emitted) = runs.pop().expect("two runs");
        let (alone_state, alone_emitted) = runs.pop().expect("two runs");
        assert_eq!(alone_state, together_state, "same end state");
        assert_eq!(
            alone_emitted, together_emitted,
            "same messages, same causes, same order"
        );

        // And the end state is the one the messages call for.
        let has = |needle: &str| {
            assert!(
                together_state.iter().any(|r| r.contains(needle)),
                "expected `{needle}` in {together_state:#?}"
            );
        };
        has("order <E1> shop-de storefront completed 6 1");
        has("order <E2> shop-de storefront shipped 3 1");
        has("order <N1> shop-de storefront accepted 1 1");
        has("order <N3> shop-de storefront accepted 1 1");
        has("order <N2> amazon-de marketplace on_hold 1 1");
        has("exception <N2> item-1 4012345678901 unknown_gtin open");
        has("timeline <E1> 7 duplicate_repush order.placed");
        has("timeline <N3> 4 duplicate_repush order.placed");
        has("Dispatch of shipment 01950000-0000-7000-8000-000000000001 reported again");
        has("customer shop-de C-48213 4");
        assert_eq!(
            together_emitted
                .iter()
                .filter(|m| m.starts_with("order.completed"))
                .count(),
            1
        );
        Ok(())
    })
    .await
}
