//! The admin API end to end: every worker running on the real broker and database, orders
//! placed by the simulated storefront and marketplace connector, and the api worker's HTTP
//! endpoints really listening, called with real tokens issued the way `orderly staff token`
//! issues them. What an operator sees must be what the events said: the order listed, its
//! detail reaching `completed`, only the stores a token may see, stable paging while orders
//! arrive, and every bad request refused naming the parameter.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use chrono::Utc;
use orderly::sim::{self, Publisher};
use orderly_contracts::messages::{
    OrderAccepted, OrderAddressChanged, OrderStatusChanged, ShipmentException,
};
use orderly_contracts::types::{OrderStatus, ShipmentStatus};
use orderly_contracts::{Envelope, Message, RawEnvelope, Validate};
use orderly_runtime::{
    Host,
    testing::{World, wait_until},
};
use orderly_tests::http::{Answer, Client, assert_problem};
use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(90);

/// The api worker's settings without rate limits: these tests poll every 25 ms, faster than
/// a token may ask (the limits have their own test, `rate_limits.rs`).
fn unlimited() -> orderly_api::ApiSettings {
    orderly_api::ApiSettings {
        rate_per_second: 0.0,
        address_rate_per_second: 0.0,
        ..orderly_api::ApiSettings::default()
    }
}

/// One test's Orderly: its own database and namespace, every worker, the API's address.
struct Orderly {
    world: World,
    host: Host,
    publisher: Publisher,
    api: SocketAddr,
    /// The api worker's schema, for issuing tokens as the CLI does.
    staff_db: PgPool,
    rng: StdRng,
    http: reqwest::Client,
    client: Client,
}

impl Orderly {
    async fn start(carrier: bool) -> anyhow::Result<Self> {
        let world = World::new().await?;
        let mut host = Host::new(world.settings.clone().with_section("api", unlimited()));
        let running = orderly::workers::start_all(&mut host).await?;
        let api = running
            .iter()
            .find(|w| w.name == orderly_api::NAME)
            .and_then(|w| w.listening)
            .ok_or_else(|| anyhow::anyhow!("the api worker did not say where it listens"))?;
        let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
        if carrier {
            sim::carrier(
                &world.connection,
                &world.names,
                publisher.clone(),
                Duration::from_millis(30),
                false,
                true,
            )
            .await?;
        }
        sim::seed(&publisher, 1).await?;
        sim::wait_for_catalog(&world.settings.database_url, DEADLINE).await?;
        let staff_db = world.pool(orderly_api::NAME).await?;
        Ok(Self {
            world,
            host,
            publisher,
            api,
            staff_db,
            rng: StdRng::seed_from_u64(14),
            http: reqwest::Client::new(),
            client: Client::new(api),
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.host.stop(Duration::from_secs(5)).await;
        self.staff_db.close().await;
        self.world.cleanup().await
    }

    /// A staff member with `role` (limited to `stores`) and a token for them.
    async fn token(&self, email: &str, role: &str, stores: &[&str]) -> anyhow::Result<String> {
        let stores: Vec<String> = stores.iter().map(|s| (*s).to_owned()).collect();
        orderly_api::staff::add(&self.staff_db, email, role, &stores).await?;
        Ok(orderly_api::staff::issue_token(&self.staff_db, email, 1)
            .await?
            .token)
    }

    /// Places a storefront order (`shop-de`) or a marketplace one (`bol-nl`) of one product.
    async fn place(&mut self, external_id: &str, marketplace: bool) -> anyhow::Result<()> {
        let product = sim::catalog()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
        let order = sim::order_placed(&mut self.rng, external_id, marketplace, &[(product, 1)], 1);
        self.publisher.send(&order).await
    }

    async fn get(&self, token: Option<&str>, path_and_query: &str) -> anyhow::Result<Answer> {
        self.client.get(token, path_and_query).await
    }

    /// The order ids and external ids `token` lists with `query`, all pages of `limit`.
    async fn list(&self, token: &str, query: &str) -> anyhow::Result<Vec<(String, String)>> {
        let answer = self
            .get(Some(token), &format!("/api/v1/admin/orders?{query}"))
            .await?;
        anyhow::ensure!(answer.status == 200, "list: {answer:?}");
        Ok(rows(&answer.json))
    }

    /// Waits until `token` lists an order with `external_id`, with its own `placed_at` (from
    /// `order.accepted`, so its place in the list is final); returns its order id.
    async fn listed(&self, token: &str, external_id: &str) -> anyhow::Result<String> {
        let path = format!("/api/v1/admin/orders?q={external_id}");
        let find = |body: &Value| -> Option<String> {
            body["orders"].as_array()?.iter().find_map(|o| {
                (o["external_order_id"] == external_id && o["placed_at_known"] == true)
                    .then(|| o["order_id"].as_str().map(str::to_owned))
                    .flatten()
            })
        };
        wait_until(&format!("{external_id} listed"), DEADLINE, || async {
            Ok(find(&self.get(Some(token), &path).await?.json).is_some())
        })
        .await?;
        find(&self.get(Some(token), &path).await?.json)
            .ok_or_else(|| anyhow::anyhow!("{external_id} vanished"))
    }
}

/// `(order_id, external_order_id)` of a list answer's rows, in order.
fn rows(body: &Value) -> Vec<(String, String)> {
    body["orders"]
        .as_array()
        .map(|orders| {
            orders
                .iter()
                .map(|o| {
                    (
                        o["order_id"].as_str().unwrap_or_default().to_owned(),
                        o["external_order_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_order_placed_through_the_broker_is_listed_and_reaches_completed_in_its_detail()
-> anyhow::Result<()> {
    let mut orderly = Orderly::start(true).await?;
    sim::store_settings(&orderly.publisher).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    orderly.place("API-1001", false).await?;

    let order_id = orderly.listed(&admin, "API-1001").await?;
    let path = format!("/api/v1/admin/orders/{order_id}");
    let orderly_ref = &orderly;
    let admin_ref = admin.as_str();
    let path_ref = path.as_str();
    wait_until("the order completed, invoiced", DEADLINE, || async move {
        let answer = orderly_ref.get(Some(admin_ref), path_ref).await?;
        Ok(answer.json["status"] == "completed"
            && answer.json["invoices"]
                .as_array()
                .is_some_and(|i| !i.is_empty()))
    })
    .await?;
    let answer = orderly.get(Some(&admin), &path).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.content_type, "application/json");
    let order = answer.json.clone();
    assert_eq!(order["store_id"], "shop-de");
    assert_eq!(order["channel"], "storefront");
    assert_eq!(order["external_order_id"], "API-1001");
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["placed_at_known"], true);
    assert!(order["customer"]["name"].is_string(), "{order}");
    assert!(order["shipping_address"]["city"].is_string(), "{order}");
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(1), "{order}");
    assert!(order["total"].is_string(), "money is a string: {order}");
    // The ETag is the status sequence of the newest change, the last of the history.
    let history = order["status_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sequences: Vec<i64> = history
        .iter()
        .filter_map(|h| h["sequence"].as_i64())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert_eq!(
        history.last().map(|h| h["to"].clone()),
        Some("completed".into())
    );
    assert_eq!(
        answer.etag,
        Some(format!("\"{}\"", order["status_sequence"])),
        "{order}"
    );
    assert_eq!(sequences.last().copied(), order["status_sequence"].as_i64());
    // Where it stands in its saga: done, since it completed.
    assert_eq!(order["saga"]["waiting_for"], "nothing", "{order}");
    assert_eq!(
        order["saga"]["since"], order["status_changed_at"],
        "{order}"
    );
    let shipments = order["shipments"].as_array().cloned().unwrap_or_default();
    assert!(!shipments.is_empty(), "{order}");
    for shipment in &shipments {
        assert!(shipment["tracking_number"].is_string(), "{shipment}");
        assert!(shipment["dispatched_at"].is_string(), "{shipment}");
        assert!(shipment["delivered_at"].is_string(), "{shipment}");
        assert!(shipment["warehouse_id"].is_string(), "{shipment}");
        // The carrier's scans, as it said them (the simulated carrier speaks AfterShip or
        // EasyPost), oldest first, ending with the delivery.
        let scans: Vec<(chrono::DateTime<Utc>, &str)> = shipment["tracking"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t["event_at"].as_str()?.parse().ok()?,
                    t["raw_status"].as_str()?,
                ))
            })
            .collect();
        assert_eq!(scans.len(), 4, "{shipment}");
        assert!(scans.windows(2).all(|w| w[0].0 <= w[1].0), "{shipment}");
        assert!(
            scans
                .last()
                .is_some_and(|(_, s)| s.eq_ignore_ascii_case("delivered")),
            "{shipment}"
        );
    }
    let invoice = &order["invoices"][0];
    assert!(invoice["number"].is_string(), "{invoice}");
    assert!(invoice["gross"].is_string(), "{invoice}");
    assert!(
        invoice["pdf_sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        "{invoice}"
    );

    // The messages its customer was sent: asked of the notification system, then what that
    // system answered (one delivered, one failed), whatever order the answers come in.
    wait_until("two notifications asked for", DEADLINE, || async {
        let answer = orderly_ref.get(Some(admin_ref), path_ref).await?;
        Ok(answer.json["notifications"]
            .as_array()
            .is_some_and(|n| n.len() >= 2))
    })
    .await?;
    let asked: Vec<Value> = orderly.get(Some(&admin), &path).await?.json["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        asked
            .iter()
            .all(|n| n["status"] == "requested" && n["recipient"].is_string()),
        "{asked:?}"
    );
    let (first, second) = (&asked[0], &asked[1]);
    for (message_type, n, payload) in [
        (
            "notification.failed",
            second,
            json!({"error": "mailbox full", "failed_at": Utc::now(), "permanent": true}),
        ),
        (
            "notification.sent",
            first,
            json!({"delivered_at": Utc::now(), "provider": "ses"}),
        ),
    ] {
        let mut payload = payload;
        for field in ["request_id", "channel", "template"] {
            payload[field] = n[field].clone();
        }
        payload["order_id"] = json!(order_id);
        let event = sim::envelope(message_type, "notification-system", &order_id, payload);
        orderly.publisher.send(&event).await?;
    }
    let (first_id, second_id) = (first["request_id"].clone(), second["request_id"].clone());
    wait_until("the answers shown", DEADLINE, || async {
        let answer = orderly_ref.get(Some(admin_ref), path_ref).await?;
        let shown = answer.json["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let status = |id: &Value| {
            shown
                .iter()
                .find(|n| n["request_id"] == *id)
                .map(|n| n["status"].clone())
        };
        Ok(status(&first_id) == Some("sent".into()) && status(&second_id) == Some("failed".into()))
    })
    .await?;
    // A later delivery of the same request, and a later failure: the first delivery stays
    // what is shown, and a delivered message stays `sent`.
    let mut ids = Vec::new();
    for (message_type, payload) in [
        (
            "notification.sent",
            json!({"delivered_at": Utc::now(), "provider": "another"}),
        ),
        (
            "notification.failed",
            json!({"error": "bounced", "failed_at": Utc::now(), "permanent": false}),
        ),
    ] {
        let mut payload = payload;
        for field in ["request_id", "channel", "template"] {
            payload[field] = first[field].clone();
        }
        payload["order_id"] = json!(order_id);
        let event = sim::envelope(message_type, "notification-system", &order_id, payload);
        ids.push(
            event["message_id"]
                .as_str()
                .unwrap_or_default()
                .parse::<uuid::Uuid>()?,
        );
        orderly.publisher.send(&event).await?;
    }
    let staff_db = &orderly.staff_db;
    wait_until("both handled", DEADLINE, || async {
        let handled: i64 =
            sqlx::query_scalar("select count(*) from api.inbox where message_id = any($1)")
                .bind(&ids)
                .fetch_one(staff_db)
                .await?;
        Ok(handled == 2)
    })
    .await?;
    let shown = orderly.get(Some(&admin), &path).await?.json["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first_shown = shown
        .iter()
        .find(|n| n["request_id"] == first_id)
        .cloned()
        .unwrap_or_default();
    assert_eq!(first_shown["status"], "sent", "{first_shown}");
    assert_eq!(first_shown["provider"], "ses", "{first_shown}");
    assert_eq!(first_shown["error"], "bounced", "{first_shown}");

    // Listed with its status, and found by its status filter.
    let completed = orderly.list(&admin, "status=completed&count=true").await?;
    assert!(completed.iter().any(|(id, _)| *id == order_id));
    orderly.stop().await
}

#[tokio::test]
async fn tokens_see_only_their_stores_and_bad_requests_are_refused_naming_the_parameter()
-> anyhow::Result<()> {
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "Order Admin", &[])
        .await?;
    let manager = orderly
        .token("manager@example.com", "account_manager", &["shop-de"])
        .await?;
    orderly.place("SCOPE-DE-1", false).await?;
    orderly.place("SCOPE-NL-1", true).await?;
    let de = orderly.listed(&admin, "SCOPE-DE-1").await?;
    let nl = orderly.listed(&admin, "SCOPE-NL-1").await?;

    // Free text finds an order by its customer's e-mail, whatever the case.
    let detail = orderly
        .get(Some(&admin), &format!("/api/v1/admin/orders/{de}"))
        .await?;
    let email = detail.json["customer_email"]
        .as_str()
        .unwrap_or_default()
        .to_uppercase();
    assert!(!email.is_empty(), "{detail:?}");
    let found = orderly
        .list(&admin, &format!("q={}", email.replace('+', "%2B")))
        .await?;
    assert!(found.iter().any(|(id, _)| *id == de), "{email}: {found:?}");
    let by_channel = orderly.list(&admin, "channel=marketplace").await?;
    assert!(by_channel.iter().all(|(id, _)| *id != de), "{by_channel:?}");
    assert!(by_channel.iter().any(|(id, _)| *id == nl), "{by_channel:?}");

    // The account manager of shop-de sees shop-de's order and nothing of bol-nl's.
    let seen = orderly.list(&manager, "limit=200").await?;
    assert!(seen.iter().any(|(id, _)| *id == de), "{seen:?}");
    assert!(!seen.iter().any(|(id, _)| *id == nl), "{seen:?}");
    let asked_for_nl = orderly.list(&manager, "store=bol-nl").await?;
    assert!(asked_for_nl.is_empty(), "{asked_for_nl:?}");
    let counted = orderly
        .get(Some(&manager), "/api/v1/admin/orders?count=true")
        .await?;
    assert_eq!(counted.json["total"], 1, "{counted:?}");
    let own = orderly
        .get(Some(&manager), &format!("/api/v1/admin/orders/{de}"))
        .await?;
    assert_eq!(own.status, 200, "{own:?}");
    let other = orderly
        .get(Some(&manager), &format!("/api/v1/admin/orders/{nl}"))
        .await?;
    assert_problem(&other, 404, "another store's order");
    let missing = orderly
        .get(
            Some(&manager),
            &format!("/api/v1/admin/orders/{}", uuid::Uuid::now_v7()),
        )
        .await?;
    assert_problem(&missing, 404, "no such order");
    assert_eq!(
        other.json["title"], missing.json["title"],
        "another store's order looks exactly like a missing one"
    );
    // Granted the other store, the same token sees its order on the next request; an
    // account manager cannot be left without stores.
    let granted = orderly_api::staff::grant(
        &orderly.staff_db,
        "manager@example.com",
        None,
        &["bol-nl".to_owned()],
        &[],
    )
    .await?;
    assert_eq!(granted.stores, ["bol-nl", "shop-de"]);
    let now_theirs = orderly
        .get(Some(&manager), &format!("/api/v1/admin/orders/{nl}"))
        .await?;
    assert_eq!(now_theirs.status, 200, "{now_theirs:?}");
    let emptied = orderly_api::staff::grant(
        &orderly.staff_db,
        "manager@example.com",
        None,
        &[],
        &["bol-nl".to_owned(), "shop-de".to_owned()],
    )
    .await;
    assert!(
        emptied.is_err_and(|e| e.to_string().contains("keep at least one store")),
        "an account manager keeps a store"
    );
    orderly_api::staff::grant(
        &orderly.staff_db,
        "manager@example.com",
        None,
        &[],
        &["bol-nl".to_owned()],
    )
    .await?;

    // Tokens that do not authenticate: 401, all alike.
    let revoked = orderly_api::staff::issue_token(&orderly.staff_db, "admin@example.com", 1)
        .await?
        .token;
    assert_eq!(
        orderly
            .get(Some(&revoked), "/api/v1/admin/orders")
            .await?
            .status,
        200
    );
    orderly_api::staff::revoke(&orderly.staff_db, &revoked[..10]).await?;
    let expired = orderly_api::staff::issue_token_until(
        &orderly.staff_db,
        "admin@example.com",
        Utc::now() - chrono::Duration::seconds(1),
    )
    .await?
    .token;
    for (token, what) in [
        (Some(revoked.as_str()), "revoked"),
        (Some(expired.as_str()), "expired"),
        (Some("oly_not-a-token-anyone-issued"), "unknown"),
        (None, "missing"),
    ] {
        let answer = orderly.get(token, "/api/v1/admin/orders").await?;
        assert_problem(&answer, 401, what);
        let answer = orderly
            .get(token, &format!("/api/v1/admin/orders/{de}"))
            .await?;
        assert_problem(&answer, 401, what);
    }

    // Bad input: 400, naming the parameter; never a 500.
    let cases = [
        ("status=lost", "status"),
        ("status=shipped&status=nonsense", "status"),
        ("placed_from=yesterday", "placed_from"),
        ("placed_to=2026-02-30T00:00:00Z", "placed_to"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "cursor"),
        ("colour=red", "colour"),
        ("channel=web", "channel"),
        ("count=maybe", "count"),
    ];
    for (query, field) in cases {
        let answer = orderly
            .get(Some(&admin), &format!("/api/v1/admin/orders?{query}"))
            .await?;
        assert_problem(&answer, 400, query);
        assert_eq!(answer.json["field"], field, "{query}: {answer:?}");
    }
    let oversized = orderly
        .http
        .get(format!("http://{}/api/v1/admin/orders", orderly.api))
        .bearer_auth(&admin)
        .body(vec![b'x'; 100 * 1024])
        .send()
        .await?;
    assert_eq!(oversized.status().as_u16(), 413, "a body over the limit");
    let posted = orderly
        .http
        .post(format!("http://{}/api/v1/admin/orders", orderly.api))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(
        posted.status().as_u16(),
        405,
        "the order endpoints only read"
    );
    let nowhere = orderly.get(Some(&admin), "/api/v1/admin/nowhere").await?;
    assert_problem(&nowhere, 404, "an unknown path");
    let answer = orderly
        .get(Some(&admin), "/api/v1/admin/orders/not-an-id")
        .await?;
    assert_problem(&answer, 400, "a malformed id");
    assert_eq!(answer.json["field"], "id");
    orderly.stop().await
}

#[tokio::test]
async fn cursor_paging_returns_every_order_once_while_orders_arrive() -> anyhow::Result<()> {
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let mut before = BTreeSet::new();
    for i in 0..12 {
        orderly.place(&format!("PAGE-{i:03}"), i % 3 == 0).await?;
    }
    for i in 0..12 {
        before.insert(orderly.listed(&admin, &format!("PAGE-{i:03}")).await?);
    }

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("/api/v1/admin/orders?limit=5&cursor={c}"),
            None => "/api/v1/admin/orders?limit=5".to_owned(),
        };
        let answer = orderly.get(Some(&admin), &query).await?;
        assert_eq!(answer.status, 200, "{answer:?}");
        seen.extend(rows(&answer.json).into_iter().map(|(id, _)| id));
        pages += 1;
        // A new order arrives between pages, and is in the list before the next page.
        let external = format!("LATE-{pages:03}");
        orderly.place(&external, false).await?;
        orderly.listed(&admin, &external).await?;
        match answer.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an order was listed twice: {seen:?}"
    );
    assert!(
        before.is_subset(&unique),
        "missing: {:?}",
        before.difference(&unique).collect::<Vec<_>>()
    );
    assert_eq!(pages, 3, "12 orders, 5 a page");
    orderly.stop().await
}

/// A golden example's payload (the contracts' own, valid).
fn golden<P: Message + Validate>(message_type: &str) -> anyhow::Result<P> {
    let spec = orderly_contracts::catalog::spec(message_type, 1)
        .ok_or_else(|| anyhow::anyhow!("{message_type} is not in the catalog"))?;
    let raw: RawEnvelope = serde_json::from_value((spec.example)())?;
    Ok(raw.decode_valid::<P>()?.payload)
}

/// The projection alone (only the api worker runs), fed one order's events out of order and
/// twice: a newer status arrives first, an older one late, the same message again, the new
/// address before the older accepted order. The read model ends where the events' order
/// says, not where their arrival order would put it, and keeps every status change.
#[tokio::test]
async fn the_read_model_is_the_same_whatever_order_and_copies_its_events_arrive_in()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    let api = orderly_api::start(&mut host, unlimited()).await?;
    let staff_db = world.pool(orderly_api::NAME).await?;
    orderly_api::staff::add(&staff_db, "admin@example.com", "order_admin", &[]).await?;
    let token = orderly_api::staff::issue_token(&staff_db, "admin@example.com", 1)
        .await?
        .token;

    let mut accepted: OrderAccepted = golden("order.accepted")?;
    accepted.order_id = uuid::Uuid::now_v7();
    accepted.external_order_id = format!("OOO-{}", accepted.order_id.simple());
    let correlation = accepted.order_id.to_string();
    let status = |sequence: u64, from: Option<OrderStatus>, to: OrderStatus| {
        let mut change: OrderStatusChanged = golden("order.status_changed")?;
        change.order_id = accepted.order_id;
        change.store_id = accepted.store_id.clone();
        change.channel = accepted.channel;
        change.marketplace = accepted.marketplace.clone();
        change.external_order_id = accepted.external_order_id.clone();
        change.sequence = sequence;
        change.from = from;
        change.to = to;
        anyhow::Ok(Envelope::new("orders", correlation.clone(), change))
    };
    let first = status(1, None, OrderStatus::Accepted)?;
    let second = status(2, Some(OrderStatus::Accepted), OrderStatus::Processing)?;
    let third = status(3, Some(OrderStatus::Processing), OrderStatus::Shipped)?;
    let mut moved: OrderAddressChanged = golden("order.address_changed")?;
    moved.order_id = accepted.order_id;
    moved.store_id = accepted.store_id.clone();
    moved.external_order_id = accepted.external_order_id.clone();
    moved.revision = accepted.revision + 1;
    moved.shipping_address.city = "Köln".to_owned();
    let moved = Envelope::new("orders", correlation.clone(), moved);
    // Two exceptions of one shipment, the newer (returned) first.
    let exception = |status: ShipmentStatus, minutes_ago: i64| {
        let mut e: ShipmentException = golden("shipment.exception")?;
        e.order_id = accepted.order_id;
        e.store_id = accepted.store_id.clone();
        e.shipment_id = accepted.order_id;
        e.status = status;
        e.raw_status = status.as_str().to_owned();
        e.event_at = Utc::now() - chrono::Duration::minutes(minutes_ago);
        anyhow::Ok(Envelope::new("fulfillment", correlation.clone(), e))
    };
    let returned = exception(ShipmentStatus::Returned, 1)?;
    let failed = exception(ShipmentStatus::DeliveryFailed, 10)?;
    let accepted = Envelope::new("orders", correlation.clone(), accepted);

    world.publish(&third).await?;
    world.publish(&third).await?;
    world.publish(&moved).await?;
    world.publish(&first).await?;
    world.publish(&accepted).await?;
    world.publish(&returned).await?;
    world.publish(&failed).await?;
    // Last: one correlation id is one lane, handled in arrival order, so once this change is
    // in the history every event before it has been projected.
    world.publish(&second).await?;

    let client = Client::new(api);
    let path = format!("/api/v1/admin/orders/{}", accepted.payload.order_id);
    let (client_ref, path_ref, token_ref) = (&client, path.as_str(), token.as_str());
    wait_until("every event projected", DEADLINE, || async move {
        let answer = client_ref.get(Some(token_ref), path_ref).await?;
        Ok(answer.status == 200
            && answer.json["status_history"].as_array().map(Vec::len) == Some(3)
            && answer.json["placed_at_known"] == true
            && answer.json["shipments"][0]["exception_status"].is_string())
    })
    .await?;
    let answer = client.get(Some(&token), &path).await?;
    let order = &answer.json;
    assert_eq!(
        order["status"], "shipped",
        "the newest sequence wins: {order}"
    );
    assert_eq!(order["status_sequence"], 3);
    assert_eq!(answer.etag.as_deref(), Some("\"3\""));
    // Shipped with a carrier problem: it waits for the carrier, and says why.
    assert_eq!(order["saga"]["waiting_for"], "carrier", "{order}");
    assert!(
        order["saga"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("carrier reported")),
        "{order}"
    );
    let history: Vec<(i64, String)> = order["status_history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["sequence"].as_i64().unwrap_or_default(),
                h["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            (1, "accepted".to_owned()),
            (2, "processing".to_owned()),
            (3, "shipped".to_owned())
        ]
    );
    assert_eq!(
        order["shipping_address"]["city"], "Köln",
        "the newer revision's address stays: {order}"
    );
    assert_eq!(
        order["external_order_id"],
        accepted.payload.external_order_id
    );
    assert_eq!(order["revision"], accepted.payload.revision);
    assert_eq!(
        order["shipments"][0]["exception_status"], "returned",
        "the newer exception stays: {order}"
    );
    assert_eq!(
        order["lines"].as_array().map(Vec::len),
        Some(accepted.payload.lines.len())
    );

    host.stop(Duration::from_secs(5)).await;
    staff_db.close().await;
    world.cleanup().await
}

/// POSTs `body` to `path` with `token` and extra `headers`.
async fn post(
    orderly: &Orderly,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<Answer> {
    orderly.client.post(Some(token), path, headers, body).await
}

impl Orderly {
    /// Waits until the command `id` is answered; returns it.
    async fn answered(&self, token: &str, id: &str) -> anyhow::Result<Value> {
        let path = format!("/api/v1/admin/commands/{id}");
        wait_until(&format!("command {id} answered"), DEADLINE, || async {
            Ok(self.get(Some(token), &path).await?.json["status"] != "pending")
        })
        .await?;
        Ok(self.get(Some(token), &path).await?.json)
    }

    /// Waits until the order's detail satisfies `done`; returns the detail's answer.
    async fn order_when(
        &self,
        token: &str,
        order_id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Answer> {
        let path = format!("/api/v1/admin/orders/{order_id}");
        let done = &done;
        wait_until(what, DEADLINE, || async {
            Ok(done(&self.get(Some(token), &path).await?.json))
        })
        .await?;
        self.get(Some(token), &path).await
    }

    /// An order of more of the catalog's first product than there is, placed and shown
    /// `backordered`: nothing of it ships until [`Orderly::stock_arrives`]. Its id, the
    /// product and the `order.placed` sent.
    async fn backordered(
        &mut self,
        token: &str,
        external_id: &str,
    ) -> anyhow::Result<(String, sim::Product, Value)> {
        let product = sim::catalog()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
        let placed = sim::order_placed(
            &mut self.rng,
            external_id,
            false,
            &[(product.clone(), 500)],
            1,
        );
        self.publisher.send(&placed).await?;
        let order_id = self.listed(token, external_id).await?;
        self.order_when(
            token,
            &order_id,
            &format!("{external_id} backordered"),
            |o| o["status"] == "backordered",
        )
        .await?;
        Ok((order_id, product, placed))
    }

    /// A stock count of 1,000 of `product` in berlin-1: a backordered order is reserved.
    async fn stock_arrives(&self, product: &sim::Product, reference: &str) -> anyhow::Result<()> {
        self.publisher
            .send(&sim::envelope(
                "inventory.adjusted",
                "wms",
                &format!("berlin-1/{}", product.sku),
                json!({"warehouse_id": "berlin-1", "sku": product.sku, "set_on_hand": 1000,
                       "reason": "stock_count", "source": "wms",
                       "reference": reference, "as_of": Utc::now()}),
            ))
            .await
    }

    /// A count from any schema, for what only the owning worker knows.
    async fn count(&self, sql: &str, order_id: &str) -> anyhow::Result<i64> {
        let id: uuid::Uuid = order_id.parse()?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(id)
            .fetch_one(&self.staff_db)
            .await?)
    }
}

#[tokio::test]
async fn staff_actions_are_commands_answered_by_the_worker_checked_idempotent_and_audited()
-> anyhow::Result<()> {
    // No carrier: orders stop at `processing`, asked of the warehouse and not yet shipped.
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let fulfillment = orderly
        .token("lager@example.com", "fulfillment_team", &[])
        .await?;
    let other_store = orderly
        .token("am-nl@example.com", "account_manager", &["bol-nl"])
        .await?;
    let revoked = orderly
        .token("gone@example.com", "order_admin", &[])
        .await?;
    orderly_api::staff::revoke(&orderly.staff_db, &revoked).await?;

    // Invoiced when accepted, so the cancellation has an invoice to credit.
    sim::store_settings_invoicing(&orderly.publisher, "on_order").await?;
    orderly.place("ACT-1", false).await?;
    let order_id = orderly.listed(&admin, "ACT-1").await?;
    let processing = orderly
        .order_when(&admin, &order_id, "ACT-1 processing, invoiced", |o| {
            o["status"] == "processing" && o["invoices"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await?;
    let etag = processing.etag.clone().unwrap_or_default();
    let cancel = format!("/api/v1/admin/orders/{order_id}/cancel");
    let refund = format!("/api/v1/admin/orders/{order_id}/refund");
    let commands_sent = "select count(*) from api.commands where order_id = $1";

    // Who may not: another store's account manager (404, as for a missing order), the
    // fulfillment team (no refunds: 403), a revoked token (401).
    let body = r#"{"reason": "Kunde hat storniert"}"#;
    let answer = post(&orderly, &other_store, &cancel, &[], body).await?;
    assert_problem(&answer, 404, "another store's order");
    let answer = post(
        &orderly,
        &fulfillment,
        &refund,
        &[],
        r#"{"reason": "kaputt", "lines": [{"line_id": "1", "quantity": 1}]}"#,
    )
    .await?;
    assert_problem(&answer, 403, "the fulfillment team refunds");
    assert!(
        answer.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("orders.refund")
    );
    let answer = post(&orderly, &revoked, &cancel, &[], body).await?;
    assert_problem(&answer, 401, "a revoked token");

    // Bad bodies name the field; nothing is sent.
    for (bad, field) in [
        (
            r#"{"reason": "x", "lines": [{"line_id": "1", "quantity": 0}]}"#,
            "lines[0].quantity",
        ),
        (r#"{"reason": "x", "colour": "red"}"#, "colour"),
        (r#"{"reason": "   "}"#, "reason"),
        (r#"{"reason": "#, "body"),
        ("", "body"),
    ] {
        let answer = post(&orderly, &admin, &cancel, &[], bad).await?;
        assert_problem(&answer, 400, bad);
        assert_eq!(answer.json["field"], field, "{bad}: {answer:?}");
    }
    let answer = post(
        &orderly,
        &admin,
        &cancel,
        &[("Idempotency-Key", "a b")],
        body,
    )
    .await?;
    assert_eq!(answer.json["field"], "Idempotency-Key", "{answer:?}");

    // A stale If-Match: 412, nothing sent.
    let answer = post(&orderly, &admin, &cancel, &[("If-Match", "\"0\"")], body).await?;
    assert_problem(&answer, 412, "a stale If-Match");
    assert_eq!(orderly.count(commands_sent, &order_id).await?, 0);

    // A note, then the cancellation with the current ETag: both applied by orders. The
    // note's request names its trace (`traceparent`): the command's message continues it.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer = post(
        &orderly,
        &admin,
        &format!("/api/v1/admin/orders/{order_id}/notes"),
        &[("traceparent", traceparent)],
        r#"{"text": "Kundin rief an: bitte stornieren"}"#,
    )
    .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let sent_trace: Option<String> = sqlx::query_scalar(
        "select body->'trace'->>'traceparent' from api.outbox where message_id = $1::uuid",
    )
    .bind(answer.json["command_id"].as_str().unwrap_or_default())
    .fetch_one(&orderly.staff_db)
    .await?;
    assert_eq!(sent_trace.as_deref(), Some(traceparent));
    let note = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(note["status"], "applied", "{note}");
    assert_eq!(
        orderly
            .count(
                "select count(*) from orders.timeline where order_id = $1 and kind = 'note'",
                &order_id
            )
            .await?,
        1
    );
    // A customer notification sent again: the newest one, to the same recipient; one of an
    // event the order never had is refused with the reason.
    let customer_mails =
        "select count(*) from notifications.requests where order_id = $1 and audience = 'customer'";
    wait_until("the customer notified", DEADLINE, || async {
        Ok(orderly.count(customer_mails, &order_id).await? >= 1)
    })
    .await?;
    let resend = format!("/api/v1/admin/orders/{order_id}/notifications/resend");
    let answer = post(&orderly, &fulfillment, &resend, &[], "{}").await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let resent = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(resent["status"], "applied", "{resent}");
    let resends = "select count(*) from notifications.requests where order_id = $1 and dedup_key like 'resend:%'";
    assert_eq!(orderly.count(resends, &order_id).await?, 1);
    let answer = post(
        &orderly,
        &fulfillment,
        &resend,
        &[],
        r#"{"event": "shipment.delivered"}"#,
    )
    .await?;
    let never = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(never["status"], "refused", "{never}");
    let answer = post(&orderly, &fulfillment, &resend, &[], r#"{"event": "fax"}"#).await?;
    assert_eq!(answer.json["field"], "event", "{answer:?}");

    let key = [
        ("Idempotency-Key", "cancel-act-1"),
        ("If-Match", etag.as_str()),
    ];
    let first = post(&orderly, &admin, &cancel, &key, body).await?;
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(first.json["status"], "pending", "{first:?}");
    let command_id = first.json["command_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let command = orderly.answered(&admin, &command_id).await?;
    assert_eq!(command["status"], "applied", "{command}");
    assert_eq!(command["action"], "cancel");
    assert_eq!(command["requested_by"], "admin@example.com");
    orderly
        .order_when(&admin, &order_id, "ACT-1 cancelled", |o| {
            o["status"] == "cancelled"
        })
        .await?;
    // Its reservation went back to stock (inventory's `stock.released`, seen by orders).
    let released =
        "select count(*) from orders.timeline where order_id = $1 and kind = 'stock_released'";
    wait_until("stock released", DEADLINE, || async {
        Ok(orderly.count(released, &order_id).await? == 1)
    })
    .await?;
    // And its invoice is credited.
    let credited = orderly
        .order_when(&admin, &order_id, "ACT-1 credited", |o| {
            o["credit_notes"].as_array().is_some_and(|c| !c.is_empty())
        })
        .await?;
    assert_eq!(
        credited.json["credit_notes"][0]["gross"], credited.json["invoices"][0]["gross"],
        "the whole invoice is credited: {:?}",
        credited.json
    );

    // The same key and request: the same answer, no second command. The key for another
    // request: 422.
    let again = post(&orderly, &admin, &cancel, &key, body).await?;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(again.json["command_id"], command_id.as_str());
    assert_eq!(again.json["status"], "applied");
    assert_eq!(
        orderly.count(commands_sent, &order_id).await?,
        4,
        "the note, two resends and the cancel"
    );
    assert_eq!(
        orderly
            .count(
                "select count(*) from orders.cancellation_requests where order_id = $1",
                &order_id
            )
            .await?,
        1
    );
    let answer = post(&orderly, &admin, &cancel, &key, r#"{"reason": "anders"}"#).await?;
    assert_problem(&answer, 422, "a key reused for another request");

    // Every staff action is in the audit log: who, what, on which order, the answer.
    let log = orderly
        .get(
            Some(&admin),
            &format!("/api/v1/admin/audit-log?order_id={order_id}&limit=200"),
        )
        .await?;
    assert_eq!(log.status, 200, "{log:?}");
    let entries = log.json["entries"].as_array().cloned().unwrap_or_default();
    let seen = |who: &str, action: &str, status: i64| {
        entries
            .iter()
            .any(|e| e["staff_email"] == who && e["action"] == action && e["http_status"] == status)
    };
    assert!(
        seen("am-nl@example.com", "orders.cancel", 404),
        "{entries:#?}"
    );
    assert!(
        seen("lager@example.com", "orders.refund", 403),
        "{entries:#?}"
    );
    assert!(
        seen("admin@example.com", "orders.cancel", 412),
        "{entries:#?}"
    );
    assert!(
        seen("admin@example.com", "orders.cancel", 422),
        "{entries:#?}"
    );
    assert!(
        seen("admin@example.com", "orders.note", 202),
        "{entries:#?}"
    );
    let accepted: Vec<_> = entries
        .iter()
        .filter(|e| e["command_id"] == command_id.as_str() && e["http_status"] == 202)
        .collect();
    assert_eq!(accepted.len(), 2, "sent, then replayed: {accepted:#?}");
    assert!(accepted.iter().all(|e| e["command_status"] == "applied"));
    assert!(accepted.iter().any(|e| e["outcome"] == "replayed"));
    assert!(accepted.iter().all(|e| e["client_addr"] == "127.0.0.1"));
    // And on the order's own timeline of staff actions, with the commands' answers.
    let order = orderly
        .get(Some(&admin), &format!("/api/v1/admin/orders/{order_id}"))
        .await?;
    let actions = order.json["staff_actions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        actions.iter().any(|a| a["action"] == "orders.cancel"
            && a["command_status"] == "applied"
            && a["staff_email"] == "admin@example.com"),
        "{actions:#?}"
    );
    assert!(
        actions.iter().any(|a| a["http_status"] == 412),
        "{actions:#?}"
    );
    // The audit log is the order admins'.
    let answer = orderly
        .get(Some(&fulfillment), "/api/v1/admin/audit-log")
        .await?;
    assert_problem(&answer, 403, "the audit log without audit.view");
    orderly.stop().await
}

#[tokio::test]
async fn a_cancellation_after_dispatch_is_refused_with_the_reason() -> anyhow::Result<()> {
    let mut orderly = Orderly::start(true).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    orderly.place("ACT-2", false).await?;
    let order_id = orderly.listed(&admin, "ACT-2").await?;
    orderly
        .order_when(&admin, &order_id, "ACT-2 shipped", |o| {
            o["shipments"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["dispatched_at"].is_string()))
        })
        .await?;
    let answer = post(
        &orderly,
        &admin,
        &format!("/api/v1/admin/orders/{order_id}/cancel"),
        &[],
        r#"{"reason": "zu spät"}"#,
    )
    .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let command = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert!(orderly_tests::refused_after_dispatch(&command), "{command}");
    let order = orderly
        .get(Some(&admin), &format!("/api/v1/admin/orders/{order_id}"))
        .await?;
    assert_ne!(order.json["status"], "cancelled", "{order:?}");
    orderly.stop().await
}

#[tokio::test]
async fn an_exception_resolved_through_the_api_with_remember_matches_the_next_import()
-> anyhow::Result<()> {
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let shop_only = orderly
        .token("am-de@example.com", "account_manager", &["shop-de"])
        .await?;
    let product = sim::catalog()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
    // The marketplace sends a GTIN the catalog does not know (the maker's new EAN).
    let new_gtin = sim::gtin("400638177777");
    let mut import = |external_id: &str| {
        let mut order = sim::order_placed(
            &mut orderly.rng,
            external_id,
            true,
            &[(product.clone(), 1)],
            1,
        );
        order["payload"]["lines"][0]["gtin"] = Value::String(new_gtin.clone());
        order
    };
    let first = import("BOL-EX-1");
    let second = import("BOL-EX-2");
    orderly.publisher.send(&first).await?;

    // It waits in the exceptions queue, found by its GTIN; not for another store's manager.
    // Listed once its status change is projected too: before, the order's ETag is the
    // provisional "0" of `order.on_hold`, and a resolution sent with it races the change
    // (a correct 412, but not what this test is about).
    let queue = format!("/api/v1/admin/order-exceptions?gtin={new_gtin}");
    wait_until("the exception listed", DEADLINE, || async {
        let answer = orderly.get(Some(&admin), &queue).await?;
        Ok(answer.json["exceptions"]
            .as_array()
            .is_some_and(|e| !e.is_empty() && e[0]["order_etag"] != "\"0\""))
    })
    .await?;
    let listed = orderly.get(Some(&admin), &queue).await?;
    let exception = listed.json["exceptions"][0].clone();
    assert_eq!(exception["external_order_id"], "BOL-EX-1", "{exception}");
    assert_eq!(exception["problem"], "unknown_gtin", "{exception}");
    let exception_id = exception["exception_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The line as imported: its units and unit price too, to help find the product.
    assert_eq!(exception["quantity"], 1, "{exception}");
    assert_eq!(
        exception["unit_price"]
            .as_str()
            .map(str::parse::<rust_decimal::Decimal>),
        Some(Ok(product.price)),
        "{exception}"
    );
    let order_id = exception["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let theirs = orderly.get(Some(&shop_only), &queue).await?;
    assert_eq!(
        theirs.json["exceptions"],
        serde_json::json!([]),
        "{theirs:?}"
    );
    let detail = format!("/api/v1/admin/order-exceptions/{exception_id}");
    assert_problem(
        &orderly.get(Some(&shop_only), &detail).await?,
        404,
        "another store's",
    );
    assert_eq!(orderly.get(Some(&admin), &detail).await?.status, 200);
    let answer = orderly
        .get(
            Some(&admin),
            "/api/v1/admin/order-exceptions?older_than=soon",
        )
        .await?;
    assert_eq!(answer.json["field"], "older_than", "{answer:?}");

    // Resolved by mapping it to the SKU, remembered for the store.
    let etag = exception["order_etag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = post(
        &orderly,
        &admin,
        &format!("{detail}/resolve"),
        &[("If-Match", etag.as_str())],
        &serde_json::json!({"resolution": "map_to_sku", "sku": product.sku, "remember": true,
                            "note": "neue EAN des Herstellers"})
        .to_string(),
    )
    .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let command = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(command["status"], "applied", "{command}");
    assert_eq!(command["action"], "resolve_exception");
    orderly
        .order_when(&admin, &order_id, "BOL-EX-1 accepted", |o| {
            o["status"] == "processing"
        })
        .await?;
    let answer = orderly.get(Some(&admin), &queue).await?;
    assert_eq!(
        answer.json["exceptions"],
        serde_json::json!([]),
        "{answer:?}"
    );

    // The next import of that GTIN matches without a hold.
    orderly.publisher.send(&second).await?;
    let second_id = orderly.listed(&admin, "BOL-EX-2").await?;
    let second = orderly
        .order_when(&admin, &second_id, "BOL-EX-2 processing", |o| {
            o["status"] == "processing"
        })
        .await?;
    let held = second.json["status_history"]
        .as_array()
        .is_some_and(|h| h.iter().any(|s| s["to"] == "on_hold"));
    assert!(!held, "{:?}", second.json);
    assert_eq!(
        second.json["lines"][0]["sku"], product.sku,
        "{:?}",
        second.json
    );
    orderly.stop().await
}

#[tokio::test]
async fn a_held_order_is_not_shipped_until_it_is_released() -> anyhow::Result<()> {
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let lager = orderly
        .token("lager@example.com", "fulfillment_team", &[])
        .await?;
    // More than there is: the order waits for stock, and is held meanwhile.
    let (order_id, product, _) = orderly.backordered(&admin, "HOLD-1").await?;
    let hold = format!("/api/v1/admin/orders/{order_id}/hold");
    let release = format!("/api/v1/admin/orders/{order_id}/release");
    let answer = post(
        &orderly,
        &lager,
        &hold,
        &[],
        r#"{"reason": "Zahlung prüfen"}"#,
    )
    .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let held = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(held["status"], "applied", "{held}");
    let detail = orderly
        .order_when(&admin, &order_id, "HOLD-1 shown held", |o| {
            o["held"] == true
        })
        .await?;
    assert_eq!(
        detail.json["saga"]["waiting_for"], "operator",
        "{:?}",
        detail.json
    );
    assert_eq!(detail.json["hold_reason"], "Zahlung prüfen");

    // Stock arrives: inventory reserves, but fulfillment asks no warehouse while it is held.
    let parked = "select count(*) from fulfillment.parked_reservations where order_id = $1";
    let requested = "select count(*) from fulfillment.shipments where order_id = $1";
    orderly.stock_arrives(&product, "HOLD-1-delivery").await?;
    wait_until("the reservation parked", DEADLINE, || async {
        Ok(orderly.count(parked, &order_id).await? == 1)
    })
    .await?;
    assert_eq!(
        orderly.count(requested, &order_id).await?,
        0,
        "nothing asked of a warehouse"
    );

    // Held twice: refused with the reason.
    let answer = post(&orderly, &lager, &hold, &[], r#"{"reason": "nochmal"}"#).await?;
    let twice = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(twice["status"], "refused", "{twice}");
    assert!(
        twice["refused"].to_string().contains("already on hold"),
        "{twice}"
    );

    // Released: the parked reservation becomes shipment requests.
    let answer = post(
        &orderly,
        &lager,
        &release,
        &[],
        r#"{"reason": "Zahlung bestätigt"}"#,
    )
    .await?;
    let released = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(released["status"], "applied", "{released}");
    let shipped = orderly
        .order_when(&admin, &order_id, "HOLD-1 asked of a warehouse", |o| {
            o["held"] == false && o["shipments"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await?;
    assert_eq!(
        shipped.json["saga"]["waiting_for"], "warehouse",
        "{:?}",
        shipped.json
    );
    assert_eq!(orderly.count(parked, &order_id).await?, 0);
    let answer = post(&orderly, &lager, &release, &[], "{}").await?;
    let again = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(again["status"], "refused", "{again}");
    orderly.stop().await
}

#[tokio::test]
async fn an_address_changed_by_an_operator_before_dispatch_is_where_the_warehouse_ships()
-> anyhow::Result<()> {
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let lager = orderly
        .token("lager@example.com", "fulfillment_team", &[])
        .await?;
    let setup = orderly
        .token("setup@example.com", "setup_manager", &[])
        .await?;
    let mut requested = orderly.world.tap(&["shipment.requested"]).await?;
    // More than there is: the order waits for stock, so nothing has shipped.
    let (order_id, product, placed) = orderly.backordered(&admin, "ADDR-1").await?;
    let path = format!("/api/v1/admin/orders/{order_id}/address");
    let parcel_shop = json!({"name": "Jörg Schäfer",
                             "lines": ["Paketshop am Leopoldplatz", "Müllerstraße 24"],
                             "postal_code": "13353", "city": "Berlin", "country": "DE"});

    // Refused before anything is sent: no address, a bad country, a role without edit.
    let none = post(&orderly, &lager, &path, &[], r#"{"reason": "Tippfehler"}"#).await?;
    assert_problem(&none, 400, "no address");
    assert!(
        none.json.to_string().contains("shipping_address"),
        "{none:?}"
    );
    let mut bad = parcel_shop.clone();
    bad["country"] = json!("Germany");
    let body = json!({"reason": "Tippfehler", "shipping_address": bad}).to_string();
    let bad = post(&orderly, &lager, &path, &[], &body).await?;
    assert_problem(&bad, 400, "a country that is not a code");
    assert!(
        bad.json.to_string().contains("shipping_address.country"),
        "{bad:?}"
    );
    let body = json!({"reason": "Kunde rief an", "shipping_address": parcel_shop}).to_string();
    let forbidden = post(&orderly, &setup, &path, &[], &body).await?;
    assert_problem(&forbidden, 403, "the setup manager changes an address");
    let sent = "select count(*) from api.outbox where message_type = 'order.address_change_requested' \
                and correlation_id = $1::text";
    assert_eq!(orderly.count(sent, &order_id).await?, 0, "nothing sent yet");

    // The fulfilment team changes it: applied, shown, on the timeline.
    let answer = post(&orderly, &lager, &path, &[], &body).await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let command = orderly
        .answered(
            &admin,
            answer.json["command_id"].as_str().unwrap_or_default(),
        )
        .await?;
    assert_eq!(command["status"], "applied", "{command}");
    let shown = orderly
        .order_when(&admin, &order_id, "ADDR-1 at the parcel shop", |o| {
            o["shipping_address"] == parcel_shop
        })
        .await?;
    assert_ne!(shown.json["billing_address"], parcel_shop, "billing kept");
    assert_eq!(orderly.count(sent, &order_id).await?, 1);
    let noted =
        "select count(*) from orders.timeline where order_id = $1 and kind = 'address_changed'";
    assert_eq!(orderly.count(noted, &order_id).await?, 1);

    // The marketplace pushes the order again with the old address: the correction stands.
    let mut repush = placed.clone();
    repush["message_id"] = json!(uuid::Uuid::now_v7());
    repush["payload"]["revision"] = json!(2);
    orderly.publisher.send(&repush).await?;
    let kept = "select count(*) from orders.timeline where order_id = $1 and kind = 'revision_applied' \
                and detail like '%operator changed the order''s address%'";
    wait_until("the re-push noted", DEADLINE, || async {
        Ok(orderly.count(kept, &order_id).await? == 1)
    })
    .await?;

    // Stock arrives: the warehouse is asked to ship to the parcel shop.
    orderly.stock_arrives(&product, "ADDR-1-delivery").await?;
    let shipment = loop {
        let m = requested.next_raw(DEADLINE).await?;
        if m.payload["external_order_id"] == "ADDR-1" {
            break m.payload;
        }
    };
    assert_eq!(shipment["ship_to"], parcel_shop, "{shipment}");
    let shown = orderly
        .get(Some(&admin), &format!("/api/v1/admin/orders/{order_id}"))
        .await?;
    assert_eq!(shown.json["shipping_address"], parcel_shop, "{shown:?}");

    // Audited as the fulfilment team's action, the refused ones too.
    let audited = "select count(*) from api.audit_log where action = 'orders.change_address' \
                   and order_id = $1";
    assert!(orderly.count(audited, &order_id).await? >= 2);
    orderly.stop().await
}

#[tokio::test]
async fn an_export_holds_exactly_the_lists_orders_with_formulas_escaped() -> anyhow::Result<()> {
    let mut orderly = Orderly::start(false).await?;
    let admin = orderly
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let product = sim::catalog()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
    for (i, name) in [
        "Ada Lovelace",
        "=HYPERLINK(\"http://evil\")",
        "Grace, Hopper",
    ]
    .iter()
    .enumerate()
    {
        let mut order = sim::order_placed(
            &mut orderly.rng,
            &format!("EXP-{i}"),
            false,
            &[(product.clone(), 2)],
            1,
        );
        order["payload"]["customer"]["name"] = Value::String((*name).to_owned());
        order["payload"]["customer"]["id"] = Value::String("C-EXPORT".to_owned());
        orderly.publisher.send(&order).await?;
    }
    for i in 0..3 {
        orderly.listed(&admin, &format!("EXP-{i}")).await?;
    }
    let filter = "store=shop-de&q=EXP-";
    let listed = orderly.list(&admin, &format!("{filter}&limit=200")).await?;
    assert_eq!(listed.len(), 3, "{listed:?}");

    // CSV: a header and exactly the list's orders, in its order; the formula escaped.
    let csv = orderly
        .get(
            Some(&admin),
            &format!("/api/v1/admin/orders/export?{filter}"),
        )
        .await?;
    assert_eq!(csv.status, 200, "{csv:?}");
    assert!(csv.content_type.starts_with("text/csv"), "{csv:?}");
    let text = String::from_utf8_lossy(&csv.bytes).into_owned();
    let mut records = text.split("\r\n").filter(|l| !l.is_empty());
    let header = records.next().unwrap_or_default();
    assert!(header.starts_with("order_id,store_id,channel"), "{header}");
    let rows: Vec<&str> = records.collect();
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.split(',').next().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = listed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected, "the list's orders, in its order");
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "the formula is escaped: {text}"
    );
    assert!(text.contains("\"Grace, Hopper\""), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");

    // JSON lines, one per order line, chosen columns; money a string.
    let jsonl = orderly
        .get(
            Some(&admin),
            &format!(
                "/api/v1/admin/orders/export?{filter}&format=jsonl&rows=line&columns=order_id,sku,quantity,unit_price,currency"
            ),
        )
        .await?;
    assert_eq!(jsonl.status, 200, "{jsonl:?}");
    let text = String::from_utf8_lossy(&jsonl.bytes).into_owned();
    let lines: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 3, "one line each: {text}");
    // Every line is valid against the documented schema (and a line it does not describe
    // is not: the validator can fail).
    let dir = std::env::temp_dir().join(format!("orderly-export-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("orders.jsonl");
    std::fs::write(&file, &text)?;
    let (valid, report) =
        orderly_tests::node_lines_validator("docs/api/openapi.json", "ExportLine", &file);
    assert!(valid, "{report}");
    std::fs::write(&file, "{\"order_id\": \"x\", \"price\": 1}\n")?;
    let (valid, report) =
        orderly_tests::node_lines_validator("docs/api/openapi.json", "ExportLine", &file);
    assert!(!valid, "an unknown key and a number are refused: {report}");
    std::fs::remove_dir_all(&dir).ok();
    for line in &lines {
        let keys: BTreeSet<&str> = line
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            BTreeSet::from(["currency", "order_id", "quantity", "sku", "unit_price"])
        );
        assert_eq!(line["sku"], product.sku, "{line}");
        assert_eq!(line["quantity"], "2", "{line}");
        assert!(line["unit_price"].is_string(), "{line}");
    }

    // What an export does not take, named; and it is audited.
    let answer = orderly
        .get(Some(&admin), "/api/v1/admin/orders/export?limit=5")
        .await?;
    assert_problem(&answer, 400, "limit on an export");
    assert_eq!(answer.json["field"], "limit");
    let answer = orderly
        .get(Some(&admin), "/api/v1/admin/orders/export?columns=sku")
        .await?;
    assert_eq!(answer.json["field"], "columns", "{answer:?}");
    let log = orderly.get(Some(&admin), "/api/v1/admin/audit-log").await?;
    let exports = log.json["entries"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["action"] == "orders.export").count())
        .unwrap_or_default();
    assert_eq!(exports, 2, "{:?}", log.json);

    // The same export as a job: written to the document store, byte for byte the streamed
    // file, downloaded by its creator only (and by staff who see every store). Compared
    // once the orders stopped moving (no carrier: they wait at `processing`).
    wait_until("the three orders processing", DEADLINE, || async {
        Ok(orderly
            .list(&admin, &format!("{filter}&status=processing"))
            .await?
            .len()
            == 3)
    })
    .await?;
    let streamed = orderly
        .get(
            Some(&admin),
            &format!("/api/v1/admin/orders/export?{filter}"),
        )
        .await?;
    let asked = post(
        &orderly,
        &admin,
        &format!("/api/v1/admin/orders/exports?{filter}"),
        &[],
        "",
    )
    .await?;
    assert_eq!(asked.status, 202, "{asked:?}");
    let job_path = asked.json["links"]["self"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(asked.location.as_deref(), Some(job_path.as_str()));
    wait_until("the export job written", DEADLINE, || async {
        Ok(orderly.get(Some(&admin), &job_path).await?.json["state"] != "running")
    })
    .await?;
    let job = orderly.get(Some(&admin), &job_path).await?.json;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["rows"], 3, "{job}");
    let file = orderly
        .get(Some(&admin), &format!("{job_path}/download"))
        .await?;
    assert_eq!(file.status, 200, "{file:?}");
    assert_eq!(
        file.bytes, streamed.bytes,
        "the job's file is the streamed export"
    );
    assert_eq!(
        file.etag,
        Some(format!("\"{}\"", job["sha256"].as_str().unwrap_or("?")))
    );
    let other = orderly
        .token("other-am@example.com", "account_manager", &["shop-de"])
        .await?;
    let theirs = orderly
        .get(Some(&other), &format!("{job_path}/download"))
        .await?;
    assert_problem(&theirs, 404, "another staff member's export");
    let bad = post(
        &orderly,
        &admin,
        "/api/v1/admin/orders/exports?format=xlsx",
        &[],
        "",
    )
    .await?;
    assert_problem(&bad, 400, "an export job in an unknown format");
    assert_eq!(bad.json["field"], "format");

    // The customer's statistics: the three orders and what they came to.
    let mut total = rust_decimal::Decimal::ZERO;
    for (id, _) in &listed {
        let order = orderly
            .get(Some(&admin), &format!("/api/v1/admin/orders/{id}"))
            .await?;
        total += order.json["total"]
            .as_str()
            .unwrap_or_default()
            .parse::<rust_decimal::Decimal>()?;
    }
    let stats = orderly
        .get(
            Some(&admin),
            "/api/v1/admin/stores/shop-de/customers/C-EXPORT/stats",
        )
        .await?;
    assert_eq!(stats.status, 200, "{stats:?}");
    assert_eq!(stats.json["orders"], 3, "{stats:?}");
    assert_eq!(stats.json["cancelled"], 0, "{stats:?}");
    assert_eq!(stats.json["spent"][0]["currency"], "EUR", "{stats:?}");
    assert_eq!(stats.json["spent"][0]["orders"], 3, "{stats:?}");
    assert_eq!(
        stats.json["spent"][0]["total"]
            .as_str()
            .map(str::parse::<rust_decimal::Decimal>),
        Some(Ok(total)),
        "{stats:?}"
    );
    let nobody = orderly
        .get(
            Some(&admin),
            "/api/v1/admin/stores/shop-de/customers/C-NOBODY/stats",
        )
        .await?;
    assert_problem(&nobody, 404, "a customer without orders");
    orderly.stop().await
}
