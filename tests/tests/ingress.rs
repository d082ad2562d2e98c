//! Carriers' webhooks end to end: the ingress worker's HTTP endpoint really listening, the
//! vendors' documented sample payloads posted to it with their signatures (computed here,
//! the vendor's way, not with the worker's code; EasyPost's is EasyPost's own test vector),
//! the `shipment.updated` that reaches the broker, and fulfillment applying it to a
//! shipment. Then everything that must be refused, and a replayed delivery.

use std::{net::SocketAddr, time::Duration};

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use orderly_contracts::messages::{
    AllocatedLine, Allocation, OrderAccepted, ShipmentDispatched, ShipmentRequested,
    ShipmentUpdated, StatusVocabulary, StockReserved,
};
use orderly_contracts::types::WarehouseId;
use orderly_contracts::{Envelope, Message, RawEnvelope, Validate};
use orderly_ingress::{IngressSettings, Secret, VendorSettings};
use orderly_runtime::{
    Host,
    testing::{Tap, World, wait_until},
};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

const EASYPOST: &[u8] =
    include_bytes!("../../workers/ingress/tests/fixtures/easypost/tracker_updated.json");
const AFTERSHIP: &[u8] =
    include_bytes!("../../workers/ingress/tests/fixtures/aftership/tracking_update.json");
const SHIPPO: &[u8] =
    include_bytes!("../../workers/ingress/tests/fixtures/shippo/track_updated.json");

/// EasyPost's published test vector for its fixture: the secret and the header it yields.
const EASYPOST_SECRET: &str = "s\u{e9}cret";
const EASYPOST_SIGNATURE: &str =
    "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db";
const AFTERSHIP_SECRET: &str = "aftership-test-secret";
const SHIPPO_SECRET: &str = "shippo-test-secret";

// --- playing the vendors ---------------------------------------------------------------------

fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("any key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// AfterShip: base64 HMAC-SHA256 of the body.
fn aftership_signature(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, &[body]))
}

/// Shippo: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
fn shippo_signature(secret: &str, t: i64, body: &[u8]) -> String {
    let digest = hmac_sha256(secret, &[t.to_string().as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(digest))
}

/// The answer to a delivery: status, content type, JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

/// POSTs `body` to `/webhooks/carriers/{vendor}` with `headers`, as the vendor would.
async fn post(addr: SocketAddr, vendor: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("http://{addr}/webhooks/carriers/{vendor}"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the endpoint answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        content_type,
        body,
    }
}

fn settings(accept_test_events: bool) -> IngressSettings {
    let secret = |s: &str| VendorSettings {
        secret: Some(Secret::new(s)),
    };
    IngressSettings {
        listen: "127.0.0.1:0".into(),
        accept_test_events,
        easypost: secret(EASYPOST_SECRET),
        aftership: secret(AFTERSHIP_SECRET),
        shippo: secret(SHIPPO_SECRET),
        ..IngressSettings::default()
    }
}

// --- the rest of Orderly, played from the contracts --------------------------------------------

fn golden<P: Message + Validate>(message_type: &str) -> P {
    let spec = orderly_contracts::catalog::spec(message_type, 1).expect("in the catalog");
    serde_json::from_value::<RawEnvelope>((spec.example)())
        .expect("envelope")
        .decode_valid::<P>()
        .expect("valid golden example")
        .payload
}

/// An accepted order (the golden one, new id) reserved whole in one warehouse.
fn order_reserved() -> (Envelope<OrderAccepted>, Envelope<StockReserved>) {
    let mut order: OrderAccepted = golden("order.accepted");
    order.order_id = Uuid::now_v7();
    order.external_order_id = format!("T-{}", order.order_id.simple());
    let lines = order
        .lines
        .iter()
        .map(|l| AllocatedLine {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let reserved = StockReserved {
        order_id: order.order_id,
        store_id: order.store_id.clone(),
        allocations: vec![Allocation {
            warehouse_id: WarehouseId::parse("berlin-1").expect("warehouse"),
            lines,
        }],
    };
    (
        Envelope::new("orders", order.order_id.to_string(), order.clone()),
        Envelope::new("inventory", order.order_id.to_string(), reserved),
    )
}

/// The warehouse's label event, which binds the carrier's tracking number to our shipment.
fn label(
    shipment_id: Uuid,
    carrier: &str,
    number: &str,
    at: DateTime<Utc>,
) -> Envelope<ShipmentUpdated> {
    Envelope::new(
        "wms",
        format!("{carrier}/{number}"),
        ShipmentUpdated {
            shipment_id: Some(shipment_id),
            carrier: carrier.into(),
            tracking_number: number.into(),
            vocabulary: StatusVocabulary::Orderly,
            raw_status: "label_created".into(),
            raw_substatus: None,
            description: None,
            event_at: at,
            location: None,
            estimated_delivery_at: None,
        },
    )
}

async fn count(pool: &PgPool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

async fn next_update(tap: &mut Tap) -> anyhow::Result<Envelope<ShipmentUpdated>> {
    let raw = tap.next_raw(WAIT).await?;
    Ok(raw.decode_valid::<ShipmentUpdated>()?)
}

/// What a vendor's sample must become: vocabulary, carrier, tracking number, status,
/// sub-status, event time.
type Expected<'a> = (
    StatusVocabulary,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
);

/// Posts `body` as `vendor` signed with `header`, expects it accepted, and returns the
/// `shipment.updated` that reached the broker (the one the answer names), checked.
async fn deliver(
    addr: SocketAddr,
    vendor: &str,
    header: (&str, &str),
    body: &[u8],
    updates: &mut Tap,
    expected: Expected<'_>,
) -> anyhow::Result<Envelope<ShipmentUpdated>> {
    let answer = post(addr, vendor, &[header], body).await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("accepted")),
        "{vendor}: {answer:?}"
    );
    let update = next_update(updates).await?;
    assert_eq!(
        answer.body["message_id"].as_str(),
        Some(update.message_id.to_string().as_str())
    );
    assert_eq!(update.producer, format!("ingress:{vendor}"));
    let p = &update.payload;
    let (vocabulary, carrier, number, status, substatus, at) = expected;
    assert_eq!(p.vocabulary, vocabulary);
    assert_eq!(
        (p.carrier.as_str(), p.tracking_number.as_str()),
        (carrier, number)
    );
    assert_eq!(update.correlation_id, format!("{carrier}/{number}"));
    assert_eq!(
        (p.raw_status.as_str(), p.raw_substatus.as_deref()),
        (status, substatus)
    );
    assert_eq!(p.event_at, time(at));
    assert_eq!(p.shipment_id, None, "vendors do not know our shipment ids");
    Ok(update)
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

// --- tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_vendors_sample_is_published_once_and_fulfillment_applies_it() -> anyhow::Result<()> {
    let world = World::new().await?;
    let ingress_db = world.pool(orderly_ingress::NAME).await?;
    let fulfillment_db = world.pool(orderly_fulfillment::NAME).await?;
    let mut updates = world.tap(&["shipment.updated"]).await?;
    let mut requested = world.tap(&["shipment.requested"]).await?;
    let mut dispatched = world.tap(&["shipment.dispatched"]).await?;
    let mut host: Host = world.host();
    host.start_worker(
        orderly_fulfillment::NAME,
        orderly_fulfillment::FulfillmentHandler,
    )
    .await?;
    let addr = orderly_ingress::start(&mut host, settings(true)).await?;

    // A shipment whose label the warehouse reported with FedEx's number `1` (the tracking
    // code in EasyPost's sample), the day before the carrier's first scan.
    let (accepted, reserved) = order_reserved();
    world.publish(&accepted).await?;
    world.publish(&reserved).await?;
    let shipment = requested.next::<ShipmentRequested>(WAIT).await?.payload;
    let bind = label(
        shipment.shipment_id,
        "fedex",
        "1",
        time("2024-07-31T12:00:00Z"),
    );
    world.publish(&bind).await?;
    let wms = next_update(&mut updates).await?;
    assert_eq!(wms.message_id, bind.message_id);

    // EasyPost: its own sample, its own signature of it.
    deliver(
        addr,
        "easypost",
        ("X-Hmac-Signature", EASYPOST_SIGNATURE),
        EASYPOST,
        &mut updates,
        (
            StatusVocabulary::Easypost,
            "fedex",
            "1",
            "in_transit",
            Some("arrived_at_facility"),
            "2024-08-02T18:50:00Z",
        ),
    )
    .await?;

    // Fulfillment takes it as the shipment's first carrier scan: dispatched, and the
    // sub-status is in the shipment's history.
    let d = dispatched.next::<ShipmentDispatched>(WAIT).await?.payload;
    assert_eq!(d.shipment_id, shipment.shipment_id);
    assert_eq!(d.dispatched_at, time("2024-08-02T18:50:00Z"));
    let mut conn = fulfillment_db.acquire().await?;
    let history = orderly_fulfillment::store::history(&mut conn, shipment.shipment_id).await?;
    drop(conn);
    let scan = history
        .iter()
        .find(|e| e.vocabulary == "easypost")
        .expect("EasyPost's event is in the shipment's history");
    assert_eq!(scan.raw_status, "in_transit");
    assert_eq!(scan.raw_substatus.as_deref(), Some("arrived_at_facility"));
    assert_eq!(scan.mapped_status.as_deref(), Some("in_transit"));

    // AfterShip: its documented sample, signed with our secret the AfterShip way.
    let signature = aftership_signature(AFTERSHIP_SECRET, AFTERSHIP);
    deliver(
        addr,
        "aftership",
        ("aftership-hmac-sha256", &signature),
        AFTERSHIP,
        &mut updates,
        (
            StatusVocabulary::Aftership,
            "usps",
            "0000000000000000",
            "InTransit",
            Some("InTransit_001"),
            "2021-01-14T00:52:00Z",
        ),
    )
    .await?;
    // No shipment has that number yet: fulfillment keeps the event, sub-status included,
    // until a label binds it.
    let f = &fulfillment_db;
    wait_until("AfterShip's event kept as unmatched", WAIT, || async move {
        let mut conn = f.acquire().await?;
        let open = orderly_fulfillment::store::list_unmatched(&mut conn, false, 10).await?;
        Ok(open.iter().any(|u| {
            u.tracking_number == "0000000000000000"
                && u.raw_substatus.as_deref() == Some("InTransit_001")
        }))
    })
    .await?;

    // Shippo: its documented sample (a test delivery, accepted in this test), signed now.
    let signature = shippo_signature(SHIPPO_SECRET, Utc::now().timestamp(), SHIPPO);
    let update = deliver(
        addr,
        "shippo",
        ("Shippo-Auth-Signature", &signature),
        SHIPPO,
        &mut updates,
        (
            StatusVocabulary::Shippo,
            "usps",
            "9205590164917312751089",
            "DELIVERED",
            Some("information_received"),
            "2016-07-23T00:00:00Z",
        ),
    )
    .await?;
    let p = &update.payload;
    let location = p.location.as_ref().expect("a location");
    assert_eq!(location.country.map(|c| c.as_str()), Some("US"));

    // One delivery row and one published outbox row per vendor.
    assert_eq!(
        count(&ingress_db, "select count(*) from carrier_deliveries").await?,
        3
    );
    let db = &ingress_db;
    wait_until("the three updates published", WAIT, || async move {
        Ok(count(
            db,
            "select count(*) from outbox where published_at is not null",
        )
        .await?
            == 3)
    })
    .await?;
    assert_eq!(count(&ingress_db, "select count(*) from outbox").await?, 3);
    let metrics = host.metrics();
    for vendor in ["easypost", "aftership", "shippo"] {
        assert_eq!(metrics.webhook_count(vendor, "accepted"), 1, "{vendor}");
    }

    host.stop(Duration::from_secs(10)).await;
    ingress_db.close().await;
    fulfillment_db.close().await;
    world.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deliveries_write_nothing_and_a_replay_has_one_effect() -> anyhow::Result<()> {
    let world = World::new().await?;
    let db = world.pool(orderly_ingress::NAME).await?;
    let mut updates = world.tap(&["shipment.updated"]).await?;
    let mut host = world.host();
    let mut config = settings(false);
    config.easypost = VendorSettings::default(); // EasyPost left unconfigured here
    config.max_body_bytes = 64 * 1024;
    let addr = orderly_ingress::start(&mut host, config).await?;
    let now = Utc::now().timestamp();

    // Signatures: wrong secret, none, a changed body, stale, from the future; and a vendor
    // without a secret. All refused with problem+json; nothing is written anywhere.
    let wrong = aftership_signature("not-the-secret", AFTERSHIP);
    let mut changed = AFTERSHIP.to_vec();
    changed[20] ^= 1;
    let right = aftership_signature(AFTERSHIP_SECRET, AFTERSHIP);
    let stale = shippo_signature(SHIPPO_SECRET, now - 600, SHIPPO);
    let future = shippo_signature(SHIPPO_SECRET, now + 600, SHIPPO);
    let signed = |name: &'static str, value: &str| Some((name, value.to_owned()));
    let cases = [
        (
            "aftership",
            signed("aftership-hmac-sha256", &wrong),
            AFTERSHIP,
            401,
            "bad-signature",
        ),
        ("aftership", None, AFTERSHIP, 401, "unsigned"),
        (
            "aftership",
            signed("aftership-hmac-sha256", &right),
            &changed[..],
            401,
            "bad-signature",
        ),
        (
            "shippo",
            signed("Shippo-Auth-Signature", &stale),
            SHIPPO,
            401,
            "stale",
        ),
        (
            "shippo",
            signed("Shippo-Auth-Signature", &future),
            SHIPPO,
            401,
            "stale",
        ),
        (
            "easypost",
            signed("X-Hmac-Signature", EASYPOST_SIGNATURE),
            EASYPOST,
            503,
            "vendor-not-configured",
        ),
    ];
    for (vendor, header, body, status, kind) in cases {
        let headers: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = post(addr, vendor, &headers, body).await;
        assert_eq!(answer.status, status, "{vendor} {kind}: {answer:?}");
        assert_eq!(
            answer.content_type, "application/problem+json",
            "{answer:?}"
        );
        assert_eq!(
            answer.body["type"].as_str(),
            Some(format!("urn:orderly:ingress:{kind}").as_str()),
            "{answer:?}"
        );
        assert_eq!(answer.body["status"].as_u64(), Some(u64::from(status)));
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    let answer = post(addr, "dhl", &[], b"{}").await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (404, "application/problem+json")
    );
    let big = vec![b' '; 64 * 1024 + 1];
    let answer = post(
        addr,
        "shippo",
        &[("Shippo-Auth-Signature", "t=1,v1=00")],
        &big,
    )
    .await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (413, "application/problem+json")
    );
    for sql in [
        "select count(*) from carrier_deliveries",
        "select count(*) from refused_deliveries",
        "select count(*) from outbox",
    ] {
        assert_eq!(
            count(&db, sql).await?,
            0,
            "{sql}, after unauthenticated deliveries"
        );
    }
    let metrics = host.metrics();
    assert_eq!(metrics.webhook_count("aftership", "bad_signature"), 2);
    assert_eq!(metrics.webhook_count("aftership", "unsigned"), 1);
    assert_eq!(metrics.webhook_count("shippo", "stale"), 2);
    assert_eq!(metrics.webhook_count("easypost", "not_configured"), 1);

    // Signed, but not what we can take: 422 naming the field, 400 for not JSON; recorded for
    // operators, nothing published.
    let mut json: Value = serde_json::from_slice(AFTERSHIP)?;
    json["msg"]["tag"] = 7.into();
    let unmappable = serde_json::to_vec(&json)?;
    let signature = aftership_signature(AFTERSHIP_SECRET, &unmappable);
    let answer = post(
        addr,
        "aftership",
        &[("aftership-hmac-sha256", &signature)],
        &unmappable,
    )
    .await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.body["field"].as_str(), Some("msg.tag"));
    let not_json = b"{\"event\": \"tracking_update\", ";
    let signature = aftership_signature(AFTERSHIP_SECRET, not_json);
    let answer = post(
        addr,
        "aftership",
        &[("aftership-hmac-sha256", &signature)],
        not_json,
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let refused = orderly_ingress::store::refused_deliveries(&db, 10).await?;
    let fields: Vec<(i32, Option<&str>)> = refused
        .iter()
        .map(|r| (r.status, r.field.as_deref()))
        .collect();
    assert_eq!(fields, [(400, None), (422, Some("msg.tag"))]);
    assert!(refused[1].body_excerpt.contains("tracking_update"));
    assert_eq!(count(&db, "select count(*) from outbox").await?, 0);

    // A replay: the same AfterShip delivery five times, three of them at once. One
    // `shipment.updated`; every copy is answered 200 with that message's id.
    let signature = aftership_signature(AFTERSHIP_SECRET, AFTERSHIP);
    let headers = [("aftership-hmac-sha256", signature.as_str())];
    let first = post(addr, "aftership", &headers, AFTERSHIP).await;
    assert_eq!(
        (first.status, first.body["status"].as_str()),
        (200, Some("accepted")),
        "{first:?}"
    );
    let message_id = first.body["message_id"]
        .as_str()
        .expect("message id")
        .to_owned();
    let (a, b, c) = tokio::join!(
        post(addr, "aftership", &headers, AFTERSHIP),
        post(addr, "aftership", &headers, AFTERSHIP),
        post(addr, "aftership", &headers, AFTERSHIP),
    );
    let last = post(addr, "aftership", &headers, AFTERSHIP).await;
    for again in [a, b, c, last] {
        assert_eq!(
            (again.status, again.body["status"].as_str()),
            (200, Some("duplicate")),
            "{again:?}"
        );
        assert_eq!(again.body["message_id"].as_str(), Some(message_id.as_str()));
    }
    assert_eq!(
        count(&db, "select count(*) from carrier_deliveries").await?,
        1
    );
    assert_eq!(count(&db, "select count(*) from outbox").await?, 1);
    let update = next_update(&mut updates).await?;
    assert_eq!(update.message_id.to_string(), message_id);
    let d = &db;
    wait_until("the one update published", WAIT, || async move {
        Ok(count(
            d,
            "select count(*) from outbox where published_at is not null",
        )
        .await?
            == 1)
    })
    .await?;
    // With its one row published, nothing else is on its way.
    assert!(updates.drain(Duration::from_millis(300)).await.is_empty());
    assert_eq!(metrics.webhook_count("aftership", "accepted"), 1);
    assert_eq!(metrics.webhook_count("aftership", "duplicate"), 4);

    // Shippo's sample is a test delivery: with test events off it is acknowledged, dropped.
    let signature = shippo_signature(SHIPPO_SECRET, now, SHIPPO);
    let answer = post(
        addr,
        "shippo",
        &[("Shippo-Auth-Signature", &signature)],
        SHIPPO,
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("ignored")),
        "{answer:?}"
    );
    assert_eq!(count(&db, "select count(*) from outbox").await?, 1);

    host.stop(Duration::from_secs(10)).await;
    db.close().await;
    world.cleanup().await?;
    Ok(())
}
