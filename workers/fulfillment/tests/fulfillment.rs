//! The fulfillment worker against the real RabbitMQ and PostgreSQL: each test gets its own
//! database and broker namespace (`orderly_runtime::testing::World`), starts the worker on a
//! host, publishes messages as the other workers and carriers would, and checks what the
//! worker publishes (tap and outbox) and stores.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use orderly_contracts::messages::{
    AllocatedLine, Allocation, CancellationScope, CancelledLine, InvoiceRequested, InvoiceTiming,
    OrderAccepted, OrderCancelled, ShipmentDelivered, ShipmentDispatched, ShipmentRequested,
    ShipmentUpdated, StatusVocabulary, StockReserved, StoreInvoiceSettingsUpdated,
};
use orderly_contracts::types::{Quantity, Sku, WarehouseId};
use orderly_contracts::{Envelope, Message, RawEnvelope, Validate};
use orderly_fulfillment::{FulfillmentHandler, NAME, store};
use orderly_runtime::metrics::Outcome;
use orderly_runtime::testing::{Tap, World, wait_until, with_names};
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

// --- message builders ------------------------------------------------------------------------

fn golden<P: Message + Validate>(message_type: &str) -> P {
    let spec = orderly_contracts::catalog::spec(message_type, 1).expect("in the catalog");
    serde_json::from_value::<RawEnvelope>((spec.example)())
        .expect("envelope")
        .decode_valid::<P>()
        .expect("valid golden example")
        .payload
}

/// The golden accepted order (lines 1: 2 × MUG-BLU-350, 2: 1 × TEA-EARL-100) with a new id.
fn new_order() -> OrderAccepted {
    let mut order: OrderAccepted = golden("order.accepted");
    order.order_id = Uuid::now_v7();
    order.external_order_id = format!("T-{}", order.order_id.simple());
    order
}

fn accepted(order: &OrderAccepted) -> Envelope<OrderAccepted> {
    Envelope::new("orders", order.order_id.to_string(), order.clone())
}

fn allocation(warehouse: &str, lines: &[(&str, &str, u32)]) -> Allocation {
    Allocation {
        warehouse_id: WarehouseId::parse(warehouse).expect("warehouse"),
        lines: lines
            .iter()
            .map(|(line_id, sku, q)| AllocatedLine {
                line_id: (*line_id).to_owned(),
                sku: Sku::parse(sku).expect("sku"),
                quantity: Quantity::new(*q).expect("quantity"),
            })
            .collect(),
    }
}

/// Line 1 from berlin-1, line 2 from hamburg-2.
fn split_allocations() -> Vec<Allocation> {
    vec![
        allocation("berlin-1", &[("1", "MUG-BLU-350", 2)]),
        allocation("hamburg-2", &[("2", "TEA-EARL-100", 1)]),
    ]
}

fn reserved(order: &OrderAccepted, allocations: Vec<Allocation>) -> Envelope<StockReserved> {
    Envelope::new(
        "inventory",
        order.order_id.to_string(),
        StockReserved {
            order_id: order.order_id,
            store_id: order.store_id.clone(),
            allocations,
        },
    )
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 8, minute, 0)
        .single()
        .expect("time")
}

fn tracking(
    shipment_id: Option<Uuid>,
    tracking_number: &str,
    vocabulary: StatusVocabulary,
    raw_status: &str,
    minute: u32,
) -> Envelope<ShipmentUpdated> {
    Envelope::new(
        "carrier:dhl",
        tracking_number.to_owned(),
        ShipmentUpdated {
            shipment_id,
            carrier: "dhl".into(),
            tracking_number: tracking_number.into(),
            vocabulary,
            raw_status: raw_status.into(),
            raw_substatus: None,
            description: Some(format!("{raw_status} at minute {minute}")),
            event_at: at(minute),
            location: None,
            estimated_delivery_at: None,
        },
    )
}

fn cancelled(
    order: &OrderAccepted,
    request_id: Uuid,
    scope: CancellationScope,
    lines: &[(&str, &str, u32)],
) -> Envelope<OrderCancelled> {
    Envelope::new(
        "orders",
        order.order_id.to_string(),
        OrderCancelled {
            order_id: order.order_id,
            store_id: order.store_id.clone(),
            channel: order.channel,
            marketplace: order.marketplace.clone(),
            external_order_id: order.external_order_id.clone(),
            request_id: Some(request_id),
            scope,
            lines: lines
                .iter()
                .map(|(line_id, sku, q)| CancelledLine {
                    line_id: (*line_id).to_owned(),
                    sku: Some(Sku::parse(sku).expect("sku")),
                    quantity: Quantity::new(*q).expect("quantity"),
                })
                .collect(),
            reason: "Customer changed their mind".into(),
        },
    )
}

fn invoice_settings(revision: u64, timing: InvoiceTiming) -> Envelope<StoreInvoiceSettingsUpdated> {
    let mut settings: StoreInvoiceSettingsUpdated = golden("store.invoice_settings_updated");
    settings.store_id = new_order().store_id;
    settings.revision = revision;
    settings.invoice_timing = timing;
    Envelope::new("admin-api", settings.store_id.to_string(), settings)
}

// --- observation helpers ---------------------------------------------------------------------

/// Messages of `message_type` the worker has written to its outbox (published or not).
async fn outbox_count(pool: &PgPool, message_type: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from outbox where message_type = $1")
            .bind(message_type)
            .fetch_one(pool)
            .await?,
    )
}

/// Waits until the worker has handled (committed) message `id`.
async fn handled(pool: &PgPool, id: Uuid) -> anyhow::Result<()> {
    wait_until(&format!("message {id} handled"), WAIT, || async move {
        Ok(
            sqlx::query_scalar("select exists(select 1 from inbox where message_id = $1)")
                .bind(id)
                .fetch_one(pool)
                .await?,
        )
    })
    .await
}

async fn states(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Vec<(Uuid, String)>> {
    Ok(sqlx::query_as(
        "select shipment_id, status from shipments where order_id = $1 order by position",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await?)
}

async fn status_of(pool: &PgPool, shipment_id: Uuid) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("select status from shipments where shipment_id = $1")
            .bind(shipment_id)
            .fetch_one(pool)
            .await?,
    )
}

async fn history_len(pool: &PgPool, shipment_id: Uuid) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from tracking_events where shipment_id = $1")
            .bind(shipment_id)
            .fetch_one(pool)
            .await?,
    )
}

/// The two `shipment.requested` of a split order, in warehouse order.
async fn two_requests(tap: &mut Tap) -> anyhow::Result<(ShipmentRequested, ShipmentRequested)> {
    let a = tap.next::<ShipmentRequested>(WAIT).await?.payload;
    let b = tap.next::<ShipmentRequested>(WAIT).await?.payload;
    Ok(if a.warehouse_id.as_str() == "berlin-1" {
        (a, b)
    } else {
        (b, a)
    })
}

// --- tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_shipments_then_carrier_updates_out_of_order() -> anyhow::Result<()> {
    let world = World::new().await?;
    let pool = world.pool(NAME).await?;
    let mut requested = world.tap(&["shipment.requested"]).await?;
    let mut dispatched = world.tap(&["shipment.dispatched"]).await?;
    let mut delivered = world.tap(&["shipment.delivered"]).await?;
    let mut invoices = world.tap(&["invoice.requested"]).await?;
    let mut host = world.host();
    host.start_worker(NAME, FulfillmentHandler::new()).await?;

    let order = new_order();
    world.publish(&accepted(&order)).await?;
    world
        .publish(&reserved(&order, split_allocations()))
        .await?;

    // Two allocations, two shipments, with titles from the order.
    let (berlin, hamburg) = two_requests(&mut requested).await?;
    assert_eq!(berlin.order_id, order.order_id);
    assert_eq!(berlin.items.len(), 1);
    assert_eq!(berlin.items[0].line_id, "1");
    assert_eq!(berlin.items[0].quantity.get(), 2);
    assert_eq!(berlin.items[0].title, order.lines[0].title);
    assert_eq!(berlin.ship_to, order.shipping_address);
    assert_eq!(hamburg.items[0].sku.as_str(), "TEA-EARL-100");
    assert_ne!(berlin.shipment_id, hamburg.shipment_id);

    // A second stock.reserved for the same order creates nothing.
    let again = reserved(&order, split_allocations());
    world.publish(&again).await?;
    handled(&pool, again.message_id).await?;
    assert_eq!(states(&pool, order.order_id).await?.len(), 2);
    assert_eq!(outbox_count(&pool, "shipment.requested").await?, 2);

    // The warehouse binds the tracking number (EasyPost words from here on).
    let tn = "00340434161094042557";
    let bind = tracking(
        Some(berlin.shipment_id),
        tn,
        StatusVocabulary::Easypost,
        "pre_transit",
        1,
    );
    world.publish(&bind).await?;
    handled(&pool, bind.message_id).await?;
    assert_eq!(status_of(&pool, berlin.shipment_id).await?, "label_created");
    assert_eq!(outbox_count(&pool, "shipment.dispatched").await?, 0);

    // The aggregator then knows only the tracking number. Delivered at minute 4 arrives before
    // the in-transit scans; a stray in_transit stamped after delivery and a repeat of an older
    // scan come last.
    for (raw, minute) in [
        ("DELIVERED", 4),
        ("in_transit", 2),
        ("out_for_delivery", 3),
        ("in_transit", 5),
        ("In_Transit", 2),
    ] {
        world
            .publish(&tracking(None, tn, StatusVocabulary::Easypost, raw, minute))
            .await?;
    }
    let (p, sid) = (&pool, berlin.shipment_id);
    wait_until("all six tracking events recorded", WAIT, || async move {
        Ok(history_len(p, sid).await? == 6)
    })
    .await?;
    let d = dispatched.next::<ShipmentDispatched>(WAIT).await?;
    assert_eq!(d.correlation_id, order.order_id.to_string());
    assert_eq!(d.payload.shipment_id, berlin.shipment_id);
    assert_eq!(d.payload.carrier, "dhl");
    assert_eq!(d.payload.tracking_number, tn);
    assert!(
        d.payload
            .tracking_url
            .as_deref()
            .is_some_and(|u| u.contains(tn)),
        "{:?}",
        d.payload.tracking_url
    );
    assert_eq!(d.payload.items.len(), 1);
    assert_eq!(d.payload.items[0].quantity.get(), 2);
    assert_eq!(d.payload.external_order_id, order.external_order_id);
    let del = delivered.next::<ShipmentDelivered>(WAIT).await?;
    assert_eq!(del.payload.shipment_id, berlin.shipment_id);
    assert_eq!(del.payload.delivered_at, at(4));

    // Invoiced on dispatch (no store settings received: the default), for this shipment only.
    let inv = invoices.next::<InvoiceRequested>(WAIT).await?.payload;
    inv.validate()?;
    assert_eq!(inv.timing, InvoiceTiming::OnShipment);
    assert_eq!(inv.shipment_id, Some(berlin.shipment_id));
    assert_eq!(inv.lines.len(), 1);
    assert_eq!(inv.lines[0].line_id, "1");
    assert_eq!(inv.lines[0].unit_price, order.lines[0].unit_price);
    assert_eq!(
        inv.shipping, order.shipping,
        "shipping on the first invoice"
    );

    // Final state delivered; everything published once; the whole history kept.
    assert_eq!(status_of(&pool, berlin.shipment_id).await?, "delivered");
    assert_eq!(status_of(&pool, hamburg.shipment_id).await?, "requested");
    assert_eq!(outbox_count(&pool, "shipment.dispatched").await?, 1);
    assert_eq!(outbox_count(&pool, "shipment.delivered").await?, 1);
    assert_eq!(outbox_count(&pool, "shipment.exception").await?, 0);
    assert_eq!(outbox_count(&pool, "invoice.requested").await?, 1);
    let mut conn = pool.acquire().await?;
    let history = store::history(&mut conn, berlin.shipment_id).await?;
    let mapped: Vec<Option<&str>> = history.iter().map(|e| e.mapped_status.as_deref()).collect();
    assert_eq!(
        mapped,
        [
            Some("label_created"),
            Some("in_transit"),
            Some("in_transit"),
            Some("out_for_delivery"),
            Some("delivered"),
            Some("in_transit")
        ]
    );
    assert!(history.iter().all(|e| e.vocabulary == "easypost"));
    assert!(
        store::consistency_report(&mut conn).await?.is_empty(),
        "invariants hold"
    );
    drop(conn);

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_invoices_on_order_is_invoiced_at_acceptance() -> anyhow::Result<()> {
    let world = World::new().await?;
    let pool = world.pool(NAME).await?;
    let mut invoices = world.tap(&["invoice.requested"]).await?;
    let mut requested = world.tap(&["shipment.requested"]).await?;
    let mut host = world.host();
    host.start_worker(NAME, FulfillmentHandler::new()).await?;

    // Revision 2 says on order; a late revision 1 (on shipment) must not undo it.
    let newer = invoice_settings(2, InvoiceTiming::OnOrder);
    let older = invoice_settings(1, InvoiceTiming::OnShipment);
    world.publish(&newer).await?;
    handled(&pool, newer.message_id).await?;
    world.publish(&older).await?;
    handled(&pool, older.message_id).await?;

    let order = new_order();
    let first = accepted(&order);
    world.publish(&first).await?;
    let inv = invoices.next::<InvoiceRequested>(WAIT).await?;
    assert_eq!(inv.correlation_id, order.order_id.to_string());
    let inv = inv.payload;
    inv.validate()?;
    assert_eq!(inv.timing, InvoiceTiming::OnOrder);
    assert_eq!(inv.shipment_id, None);
    assert_eq!(inv.order_id, order.order_id);
    assert_eq!(inv.lines.len(), order.lines.len());
    assert_eq!(inv.shipping, order.shipping);
    assert_eq!(inv.discount, order.discount);
    assert_eq!(inv.buyer, order.customer);

    // The same order again (a redelivery under a new message id): no second invoice.
    let repeat = accepted(&order);
    world.publish(&repeat).await?;
    handled(&pool, repeat.message_id).await?;

    // Dispatch does not invoice again.
    world
        .publish(&reserved(&order, split_allocations()))
        .await?;
    let (berlin, _) = two_requests(&mut requested).await?;
    let dispatch = tracking(
        Some(berlin.shipment_id),
        "1Z999AA10123456784",
        StatusVocabulary::Orderly,
        "in_transit",
        2,
    );
    world.publish(&dispatch).await?;
    handled(&pool, dispatch.message_id).await?;
    assert_eq!(outbox_count(&pool, "shipment.dispatched").await?, 1);
    assert_eq!(outbox_count(&pool, "invoice.requested").await?, 1);

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_before_the_label_waits_without_a_dead_letter_and_a_phantom_shipment_is_refused()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let pool = world.pool(NAME).await?;
    let mut requested = world.tap(&["shipment.requested"]).await?;
    let mut dispatched = world.tap(&["shipment.dispatched"]).await?;
    let mut host = world.host();
    host.start_worker(NAME, FulfillmentHandler::new()).await?;

    // A tracking number nobody bound yet (a carrier's first scan beats the warehouse's
    // label: a normal race, issue 13), and a shipment id we never made (bad input). The
    // scan carries the aggregator's sub-status, which must survive the wait.
    let mut stray = tracking(
        None,
        "JJD000390007748",
        StatusVocabulary::Aftership,
        "InTransit",
        2,
    );
    stray.payload.raw_substatus = Some("InTransit_003".into());
    let phantom = Uuid::now_v7();
    let unknown_id = tracking(
        Some(phantom),
        "JJD000390007749",
        StatusVocabulary::Shippo,
        "TRANSIT",
        2,
    );
    world.publish(&stray).await?;
    world.publish(&unknown_id).await?;
    let w = &world;
    wait_until(
        "the phantom shipment's update dead-lettered",
        WAIT,
        || async move { Ok(!w.dead_letters(NAME).await?.is_empty()) },
    )
    .await?;
    let p = &pool;
    wait_until("both updates recorded as unmatched", WAIT, || async move {
        let mut conn = p.acquire().await?;
        Ok(store::list_unmatched(&mut conn, false, 100).await?.len() == 2)
    })
    .await?;
    let letters = world.dead_letters(NAME).await?;
    assert_eq!(
        letters.len(),
        1,
        "only the phantom is a dead letter: {letters:?}"
    );
    assert!(
        letters[0].reason.contains(&phantom.to_string()),
        "{letters:?}"
    );
    assert!(
        !letters.iter().any(|l| l.reason.contains("JJD000390007748")),
        "the early scan is no false alarm: {letters:?}"
    );
    let mut conn = pool.acquire().await?;
    let open = store::list_unmatched(&mut conn, false, 100).await?;
    assert_eq!(open.len(), 2);
    let listed = open
        .iter()
        .find(|u| u.message_id == stray.message_id)
        .expect("the stray update is listed");
    assert_eq!(listed.tracking_number, "JJD000390007748");
    assert_eq!(listed.raw_status, "InTransit");
    assert_eq!(listed.raw_substatus.as_deref(), Some("InTransit_003"));
    assert_eq!(listed.vocabulary, "aftership");
    drop(conn);

    // The warehouse then binds that tracking number to a real shipment: the waiting event
    // joins the shipment's history and counts (it says in transit: dispatched).
    let order = new_order();
    world.publish(&accepted(&order)).await?;
    world
        .publish(&reserved(&order, split_allocations()))
        .await?;
    let (berlin, _) = two_requests(&mut requested).await?;
    let bind = tracking(
        Some(berlin.shipment_id),
        "JJD000390007748",
        StatusVocabulary::Orderly,
        "label_created",
        1,
    );
    world.publish(&bind).await?;
    let d = dispatched.next::<ShipmentDispatched>(WAIT).await?.payload;
    assert_eq!(d.shipment_id, berlin.shipment_id);
    assert_eq!(d.dispatched_at, at(2));
    assert_eq!(status_of(&pool, berlin.shipment_id).await?, "in_transit");
    assert_eq!(history_len(&pool, berlin.shipment_id).await?, 2);
    let mut conn = pool.acquire().await?;
    let open = store::list_unmatched(&mut conn, false, 100).await?;
    assert_eq!(
        open.len(),
        1,
        "only the phantom shipment's update is still open"
    );
    assert_eq!(open[0].message_id, unknown_id.message_id);
    let all = store::list_unmatched(&mut conn, true, 100).await?;
    assert!(
        all.iter().any(|u| u.message_id == stray.message_id
            && u.resolved_shipment_id == Some(berlin.shipment_id))
    );
    // The adopted scan keeps its sub-status in the shipment's history; the label had none.
    let history = store::history(&mut conn, berlin.shipment_id).await?;
    let substatuses: Vec<(&str, Option<&str>)> = history
        .iter()
        .map(|e| (e.raw_status.as_str(), e.raw_substatus.as_deref()))
        .collect();
    assert_eq!(
        substatuses,
        [
            ("label_created", None),
            ("InTransit", Some("InTransit_003"))
        ]
    );
    drop(conn);

    // Long after both were handled, still one dead letter: the early scan never became one.
    assert_eq!(world.dead_letters(NAME).await?.len(), 1);

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_before_dispatch_cancels_open_shipments() -> anyhow::Result<()> {
    let world = World::new().await?;
    let pool = world.pool(NAME).await?;
    let mut requested = world.tap(&["shipment.requested"]).await?;
    let mut host = world.host();
    host.start_worker(NAME, FulfillmentHandler::new()).await?;

    // Whole order: the dispatched shipment stays, the open one is cancelled.
    let order = new_order();
    world.publish(&accepted(&order)).await?;
    world
        .publish(&reserved(&order, split_allocations()))
        .await?;
    let (berlin, hamburg) = two_requests(&mut requested).await?;
    let dispatch = tracking(
        Some(berlin.shipment_id),
        "BERLIN0001",
        StatusVocabulary::Orderly,
        "in_transit",
        2,
    );
    world.publish(&dispatch).await?;
    handled(&pool, dispatch.message_id).await?;

    let request_id = Uuid::now_v7();
    let cancel = cancelled(
        &order,
        request_id,
        CancellationScope::Order,
        &[("2", "TEA-EARL-100", 1)],
    );
    world.publish(&cancel).await?;
    handled(&pool, cancel.message_id).await?;
    assert_eq!(
        states(&pool, order.order_id).await?,
        [
            (berlin.shipment_id, "in_transit".to_owned()),
            (hamburg.shipment_id, "cancelled".to_owned())
        ]
    );
    // The same cancellation again: nothing changes.
    let again = cancelled(
        &order,
        request_id,
        CancellationScope::Order,
        &[("2", "TEA-EARL-100", 1)],
    );
    world.publish(&again).await?;
    handled(&pool, again.message_id).await?;
    assert_eq!(status_of(&pool, hamburg.shipment_id).await?, "cancelled");
    assert_eq!(status_of(&pool, berlin.shipment_id).await?, "in_transit");

    // A carrier scan of the cancelled shipment is kept, but moves nothing and dispatches
    // nothing; the consistency report points it out.
    let late = tracking(
        Some(hamburg.shipment_id),
        "HAMBURG0001",
        StatusVocabulary::Orderly,
        "in_transit",
        3,
    );
    world.publish(&late).await?;
    handled(&pool, late.message_id).await?;
    assert_eq!(status_of(&pool, hamburg.shipment_id).await?, "cancelled");
    assert_eq!(history_len(&pool, hamburg.shipment_id).await?, 1);
    assert_eq!(outbox_count(&pool, "shipment.dispatched").await?, 1);
    let mut conn = pool.acquire().await?;
    let findings = store::consistency_report(&mut conn).await?;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].check, "cancelled_shipment_not_moving");
    assert_eq!(findings[0].shipment_id, Some(hamburg.shipment_id));
    drop(conn);

    // Lines: a one-warehouse order loses line 2, then line 1, then it is cancelled.
    let order = new_order();
    world.publish(&accepted(&order)).await?;
    world
        .publish(&reserved(
            &order,
            vec![allocation(
                "berlin-1",
                &[("1", "MUG-BLU-350", 2), ("2", "TEA-EARL-100", 1)],
            )],
        ))
        .await?;
    let only = requested.next::<ShipmentRequested>(WAIT).await?.payload;
    assert_eq!(only.items.len(), 2);
    let quantities = |pool: PgPool, shipment_id: Uuid| async move {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select line_id, quantity from shipment_items where shipment_id = $1 order by position",
        )
        .bind(shipment_id)
        .fetch_all(&pool)
        .await?;
        anyhow::Ok(rows)
    };
    let first = cancelled(
        &order,
        Uuid::now_v7(),
        CancellationScope::Lines,
        &[("2", "TEA-EARL-100", 1)],
    );
    world.publish(&first).await?;
    handled(&pool, first.message_id).await?;
    assert_eq!(
        quantities(pool.clone(), only.shipment_id).await?,
        [("1".to_owned(), 2), ("2".to_owned(), 0)]
    );
    assert_eq!(status_of(&pool, only.shipment_id).await?, "requested");
    let second = cancelled(
        &order,
        Uuid::now_v7(),
        CancellationScope::Lines,
        &[("1", "MUG-BLU-350", 2)],
    );
    world.publish(&second).await?;
    handled(&pool, second.message_id).await?;
    assert_eq!(status_of(&pool, only.shipment_id).await?, "cancelled");

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_before_its_order_waits_for_it() -> anyhow::Result<()> {
    // Slower retries than the default test world, so the order surely arrives within budget.
    let world = World::with(
        orderly_runtime::config::RetrySettings {
            max_attempts: 30,
            initial_delay_ms: 100,
            max_delay_ms: 500,
        },
        orderly_runtime::config::ConsumerSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    let mut requested = world.tap(&["shipment.requested"]).await?;
    let mut host = world.host();
    let metrics = host.metrics();
    host.start_worker(NAME, FulfillmentHandler::new()).await?;

    let order = new_order();
    let early = reserved(&order, split_allocations());
    world.publish(&early).await?;
    wait_until("the early reservation retried", WAIT, || {
        let metrics = metrics.clone();
        async move { Ok(metrics.count(NAME, Outcome::Retried) >= 1) }
    })
    .await?;
    assert_eq!(outbox_count(&pool, "shipment.requested").await?, 0);

    world.publish(&accepted(&order)).await?;
    let (berlin, hamburg) = two_requests(&mut requested).await?;
    assert_eq!(berlin.order_id, order.order_id);
    assert_eq!(hamburg.order_id, order.order_id);
    handled(&pool, early.message_id).await?;
    assert_eq!(outbox_count(&pool, "shipment.requested").await?, 2);
    assert!(world.dead_letters(NAME).await?.is_empty());

    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await?;
    Ok(())
}

fn raw<P: Message>(env: &Envelope<P>) -> RawEnvelope {
    orderly_contracts::decode_raw(&env.to_json()).expect("own envelope")
}

/// Everything fulfillment's schema holds that a batch changes, as text, with the ids a run
/// generates (shipments, invoice requests) and the batch's message ids written by name so
/// that two runs compare.
async fn fulfillment_state(pool: &PgPool, names: &[(Uuid, String)]) -> anyhow::Result<Vec<String>> {
    let mut state = Vec::new();
    for sql in [
        "select concat_ws(' ', 'order', order_id, revision, invoice_timing, shipping_invoiced,
                discount_invoiced, shipments_created_at is not null) from orders",
        "select concat_ws(' ', 'line', order_id, line_id, quantity, invoiced_quantity,
                invoiced_discount) from order_lines",
        "select concat_ws(' ', 'shipment', shipment_id, order_id, warehouse_id, position, status,
                status_at, status_cause, dispatched_at, carrier, tracking_number,
                cancelled_at is not null) from shipments",
        "select concat_ws(' ', 'item', shipment_id, line_id, sku, quantity, allocated_quantity)
         from shipment_items",
        "select concat_ws(' ', 'number', carrier, tracking_number, shipment_id, bound_by_message)
         from tracking_numbers",
        "select concat_ws(' ', 'event', shipment_id, source_message_id, raw_status, mapped_status,
                event_at, changed_state) from tracking_events",
        "select concat_ws(' ', 'unmatched', message_id, tracking_number, resolved_shipment_id,
                resolved_at is not null) from unmatched_tracking_events",
        "select concat_ws(' ', 'notice', shipment_id, kind) from shipment_notices",
        "select concat_ws(' ', 'request', order_id, shipment_id, timing) from invoice_requests",
        "select concat_ws(' ', 'cancellation', order_id, scope) from order_cancellations",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
        state.extend(rows.into_iter().map(|r| with_names(&r, names)));
    }
    state.sort();
    Ok(state)
}

/// A batch of accepted orders, reservations, a cancellation between them, a re-accept in
/// the middle, and carrier updates that bind numbers, adopt an event that waited, arrive
/// late, name only a number bound earlier in the batch and report an exception, handled
/// together by the flow and one message at a time: the same rows, and the same messages sent
/// for the same causes in the same order. (A reservation that overtakes its order fails on
/// its own first, as it would be retried.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_handled_as_one_message_at_a_time_would_be() -> anyhow::Result<()> {
    use orderly_runtime::testing::run_batch;
    let handler = FulfillmentHandler::new();
    let (a, b, c) = (new_order(), new_order(), new_order());
    let mut runs = Vec::new();
    for together in [false, true] {
        let world = World::new().await?;
        let pool = world.pool(NAME).await?;
        let setup = [raw(&accepted(&b)), raw(&reserved(&b, split_allocations()))];
        run_batch(&pool, NAME, &handler, &setup, false).await?;
        let ships: Vec<(Uuid, String)> = sqlx::query_as(
            "select shipment_id, warehouse_id from shipments where order_id = $1 order by position",
        )
        .bind(b.order_id)
        .fetch_all(&pool)
        .await?;
        let (s1, s2) = (ships[0].0, ships[1].0);
        // An update that came before its number was bound, waiting for it.
        let waiting = Uuid::now_v7();
        sqlx::query(
            "insert into unmatched_tracking_events (message_id, carrier, tracking_number,
                vocabulary, raw_status, event_at, reason)
             values ($1, 'dhl', 'N-2', 'orderly', 'in_transit', $2, 'not bound yet')",
        )
        .bind(waiting)
        .bind(at(5))
        .execute(&pool)
        .await?;
        let batch = vec![
            raw(&accepted(&a)),
            raw(&reserved(
                &c,
                vec![allocation(
                    "berlin-1",
                    &[("1", "MUG-BLU-350", 2), ("2", "TEA-EARL-100", 1)],
                )],
            )),
            raw(&tracking(
                Some(s1),
                "N-1",
                StatusVocabulary::Orderly,
                "in_transit",
                10,
            )),
            raw(&accepted(&c)),
            raw(&reserved(&a, split_allocations())),
            raw(&tracking(
                Some(s2),
                "N-2",
                StatusVocabulary::Orderly,
                "out_for_delivery",
                12,
            )),
            raw(&tracking(
                Some(s1),
                "N-1",
                StatusVocabulary::Orderly,
                "delivered",
                20,
            )),
            raw(&tracking(
                None,
                "N-1",
                StatusVocabulary::Orderly,
                "in_transit",
                15,
            )),
            // The same order accepted again: handled alone, between the others.
            raw(&accepted(&b)),
            raw(&cancelled(
                &a,
                Uuid::now_v7(),
                CancellationScope::Order,
                &[("1", "MUG-BLU-350", 2), ("2", "TEA-EARL-100", 1)],
            )),
            raw(&reserved(
                &c,
                vec![allocation(
                    "berlin-1",
                    &[("1", "MUG-BLU-350", 2), ("2", "TEA-EARL-100", 1)],
                )],
            )),
            raw(&tracking(
                Some(s2),
                "N-2",
                StatusVocabulary::Orderly,
                "exception",
                30,
            )),
        ];
        // The first reservation of C overtakes C: alone it fails (transient, retried later),
        // so it is tried alone first and left out of the batch.
        let (early, batch) = batch.split_at(2);
        let early_failed = run_batch(&pool, NAME, &handler, &early[1..], true)
            .await
            .is_err();
        let mut batch = batch.to_vec();
        batch.insert(0, early[0].clone());
        let emitted = run_batch(&pool, NAME, &handler, &batch, together).await?;
        let mut names: Vec<(Uuid, String)> = vec![
            (a.order_id, "A".into()),
            (b.order_id, "B".into()),
            (c.order_id, "C".into()),
            (waiting, "waiting".into()),
        ];
        for (i, m) in batch.iter().enumerate() {
            names.push((m.message_id, format!("#{i}")));
        }
        let generated: Vec<(Uuid, Uuid, String)> =
            sqlx::query_as("select shipment_id, order_id, warehouse_id from shipments")
                .fetch_all(&pool)
                .await?;
        for (id, order, warehouse) in generated {
            names.push((
                id,
                format!("{}/{warehouse}", with_names(&order.to_string(), &names)),
            ));
        }
        let requests: Vec<(Uuid, Option<Uuid>)> =
            sqlx::query_as("select request_id, shipment_id from invoice_requests")
                .fetch_all(&pool)
                .await?;
        for (id, shipment) in requests {
            names.push((
                id,
                format!(
                    "request for {}",
                    with_names(&format!("{shipment:?}"), &names)
                ),
            ));
        }
        let emitted: Vec<String> = emitted
            .iter()
            .map(|m| {
                with_names(
                    &format!(
                        "{} caused by {} {}",
                        m.message_type, m.body["causation_id"], m.body["payload"]
                    ),
                    &names,
                )
            })
            .collect();
        let state = fulfillment_state(&pool, &names).await?;
        pool.close().await;
        world.cleanup().await?;
        runs.push((early_failed, state, emitted));
    }
    let (early_together, together_state, together_emitted) = runs.pop().expect("two runs");
    let (early_alone, alone_state, alone_emitted) = runs.pop().expect("two runs");
    assert!(
        early_alone && early_together,
        "a reservation before its order waits"
    );
    assert_eq!(alone_state, together_state, "same end state");
    assert_eq!(
        alone_emitted, together_emitted,
        "same messages, same causes, same order"
    );

    let has = |needle: &str| {
        assert!(
            together_state.iter().any(|r| r.contains(needle)),
            "expected `{needle}` in {together_state:#?}"
        );
    };
    has("shipment <<B>/berlin-1> <B> berlin-1 0 delivered");
    has("shipment <<B>/hamburg-2> <B> hamburg-2 1 exception");
    has("unmatched <waiting> N-2 <<B>/hamburg-2> t");
    has("event <<B>/hamburg-2> <waiting> in_transit in_transit");
    has("notice <<B>/hamburg-2> exception:exception");
    has("shipment <<A>/berlin-1> <A> berlin-1 0 cancelled");
    has("shipment <<C>/berlin-1> <C> berlin-1 0 requested");
    let sent = |t: &str| together_emitted.iter().filter(|m| m.starts_with(t)).count();
    assert_eq!(sent("shipment.dispatched"), 2, "{together_emitted:#?}");
    assert_eq!(sent("shipment.delivered"), 1);
    assert_eq!(sent("shipment.exception"), 1);
    assert_eq!(sent("invoice.requested"), 2);
    assert_eq!(
        sent("shipment.requested"),
        3,
        "A twice, C once: {together_emitted:#?}"
    );
    Ok(())
}
