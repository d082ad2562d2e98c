//! Setups of service products end to end: orders, inventory, fulfillment and setups really
//! running on the real broker and database, the simulated carrier shipping the goods, and
//! the client's and staff's requests sent as `setup.action_requested` messages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderly_tests::chaos::{ChaosFigures, ChaosRecord, chaos_of};

use orderly::sim::{self, Publisher, envelope};
use orderly_runtime::{
    Host,
    testing::{World, wait_for, wait_until},
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

/// An ad campaign: intake → campaign → QA (and, from version 2, a launch stage).
fn ads_template(version: u32) -> Value {
    let mut stages = vec![
        json!({"key": "brief", "title": "Campaign brief", "kind": "intake", "role": "client",
               "sla_business_hours": 16,
               "fields": [{"key": "budget", "label": "Monthly budget", "kind": "number", "required": true}]}),
        json!({"key": "campaign", "title": "Set up the campaign", "kind": "work",
               "role": "setup_manager", "sla_business_hours": 24}),
        json!({"key": "qa", "title": "Check", "kind": "qa", "role": "setup_manager",
               "sla_business_hours": 8, "loop_back_to": "campaign", "checklist": ["tracking fires"]}),
    ];
    if version >= 2 {
        stages.push(json!({"key": "launch", "title": "Launch", "kind": "work",
                           "role": "setup_manager", "sla_business_hours": 4}));
    }
    json!({"version": version, "stages": stages})
}

/// A valid intake of the listings setup for the shop at `https://{shop}.example`.
fn listings_intake(shop: &str, listings: u32) -> Value {
    json!({"values": {
        "shop_url": format!("https://{shop}.example"),
        "contact_email": format!("{shop}@{shop}.example"),
        "listings": listings.to_string(),
    }})
}

/// The listings setup's QA checklist, every item passed.
fn listings_qa_passed() -> Value {
    json!({"results": [
        {"item": "links work", "passed": true},
        {"item": "texts proofread", "passed": true},
    ]})
}

fn service(sku: &'static str, title: &'static str, cents: i64) -> sim::Product {
    sim::Product {
        sku,
        title,
        price: Decimal::new(cents, 2),
        gtin: sim::gtin("400000000001"),
        tax: "standard",
    }
}

struct Run {
    /// Where the api worker listens, when it runs.
    api: Option<std::net::SocketAddr>,
    world: World,
    host: Host,
    publisher: Publisher,
    orders: PgPool,
    setups: PgPool,
    /// What the chaos harness did, when the workers run under it.
    chaos: Option<Arc<Mutex<ChaosRecord>>>,
}

impl Run {
    async fn start(carrier: bool) -> anyhow::Result<Self> {
        Self::start_with(carrier, &[]).await
    }

    /// Orders, inventory, fulfillment and setups, and `more` workers.
    async fn start_with(carrier: bool, more: &[&str]) -> anyhow::Result<Self> {
        let world = World::new().await?;
        let mut host = Host::new(world.settings.clone().with_section(
            "api",
            orderly_api::ApiSettings {
                rate_per_second: 0.0,
                address_rate_per_second: 0.0,
                ..orderly_api::ApiSettings::default()
            },
        ));
        let mut api = None;
        for worker in ["orders", "inventory", "fulfillment", "setups"]
            .iter()
            .chain(more)
        {
            api = api.or(orderly::workers::start_listening(&mut host, worker).await?);
        }
        let mut run = Self::started(world, host, carrier, None).await?;
        run.api = api;
        Ok(run)
    }

    /// Orders, inventory, fulfillment and setups under the chaos harness (deliveries
    /// deferred and duplicated, from `seed`), with the carrier.
    async fn start_shaken(seed: u64) -> anyhow::Result<Self> {
        let world = World::new().await?;
        let mut host = world.host();
        let (dup, record) = orderly_tests::chaos::start_pipeline(&mut host, &world, seed).await?;
        let shared = (&world, &dup, &record);
        host.start_worker(
            "setups",
            chaos_of(shared, "setups", seed + 3, orderly_setups::SetupsHandler),
        )
        .await?;
        Self::started(world, host, true, Some(record)).await
    }

    async fn started(
        world: World,
        host: Host,
        carrier: bool,
        chaos: Option<Arc<Mutex<ChaosRecord>>>,
    ) -> anyhow::Result<Self> {
        let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
        if carrier {
            sim::carrier(
                &world.connection,
                &world.names,
                publisher.clone(),
                Duration::from_millis(20),
                false,
                false,
            )
            .await?;
        }
        sim::seed(&publisher, 1).await?;
        let run = Self {
            api: None,
            orders: world.pool("orders").await?,
            setups: world.pool("setups").await?,
            world,
            host,
            publisher,
            chaos,
        };
        run.product(
            "SVC-LISTINGS-40",
            "Listings setup, 40 products",
            sim::listings_template(1),
        )
        .await?;
        run.product("SVC-ADS", "Ad campaign setup", ads_template(1))
            .await?;
        sim::wait_for_catalog(&run.world.settings.database_url, DEADLINE).await?;
        let (orders, setups) = (&run.orders, &run.setups);
        wait_until(
            "both templates known to orders and setups",
            DEADLINE,
            || async {
                let in_orders: i64 = sqlx::query_scalar(
                    "select count(*) from products where setup_template_version is not null",
                )
                .fetch_one(orders)
                .await?;
                let in_setups: i64 = sqlx::query_scalar("select count(*) from templates")
                    .fetch_one(setups)
                    .await?;
                Ok(in_orders == 2 && in_setups == 2)
            },
        )
        .await?;
        Ok(run)
    }

    async fn product(&self, sku: &str, title: &str, template: Value) -> anyhow::Result<()> {
        self.publisher
            .send(&sim::service_upserted(sku, title, template))
            .await
    }

    /// Places a storefront order of a mug and the given services; returns its order id
    /// once the orders worker has it.
    async fn place(&self, external_id: &str, services: &[sim::Product]) -> anyhow::Result<Uuid> {
        let mug = sim::catalog()
            .into_iter()
            .find(|p| p.sku == "MUG-BLU-350")
            .expect("the mug");
        self.place_lines(external_id, Some(mug), services).await
    }

    /// Places a storefront order of `goods` (if any) and the given services.
    async fn place_lines(
        &self,
        external_id: &str,
        goods: Option<sim::Product>,
        services: &[sim::Product],
    ) -> anyhow::Result<Uuid> {
        let mut lines: Vec<(sim::Product, u32)> = goods.into_iter().map(|g| (g, 1)).collect();
        lines.extend(services.iter().cloned().map(|s| (s, 1)));
        let mut rng = sim::rng(17);
        self.publisher
            .send(&sim::order_placed(&mut rng, external_id, false, &lines, 1))
            .await?;
        let orders = &self.orders;
        wait_for("the order is known", DEADLINE, || async {
            Ok(
                sqlx::query_scalar("select order_id from orders where external_order_id = $1")
                    .bind(external_id)
                    .fetch_optional(orders)
                    .await?,
            )
        })
        .await
    }

    async fn status(&self, order_id: Uuid) -> anyhow::Result<String> {
        Ok(
            sqlx::query_scalar("select status from orders where order_id = $1")
                .bind(order_id)
                .fetch_one(&self.orders)
                .await?,
        )
    }

    async fn wait_status(&self, order_id: Uuid, status: &str) -> anyhow::Result<()> {
        wait_until(&format!("order {order_id} {status}"), DEADLINE, || async {
            Ok(self.status(order_id).await? == status)
        })
        .await
    }

    /// The order's setups by SKU: (setup id, status, stage index, loops).
    async fn setups_of(
        &self,
        order_id: Uuid,
    ) -> anyhow::Result<Vec<(String, Uuid, String, i32, i32)>> {
        Ok(sqlx::query_as(
            "select sku, setup_id, status, stage_index, loops from setups
             where order_id = $1 order by sku",
        )
        .bind(order_id)
        .fetch_all(&self.setups)
        .await?)
    }

    async fn setup_id(&self, order_id: Uuid, sku: &str) -> anyhow::Result<Uuid> {
        wait_for(&format!("the setup of {sku}"), DEADLINE, || async {
            Ok(self
                .setups_of(order_id)
                .await?
                .into_iter()
                .find(|s| s.0 == sku)
                .map(|s| s.1))
        })
        .await
    }

    /// Sends a request (twice, as a client retrying would: the same request id acts once)
    /// and waits for its answer: (outcome, detail, field errors).
    async fn ask(
        &self,
        order_id: Uuid,
        setup_id: Uuid,
        action: &str,
        role: &str,
        extra: Value,
    ) -> anyhow::Result<(String, String, Value)> {
        let request = sim::setup_request(
            &setup_id.to_string(),
            &order_id.to_string(),
            action,
            role,
            &extra,
        );
        let request_id: Uuid = serde_json::from_value(request["payload"]["request_id"].clone())?;
        for _ in 0..2 {
            // The same request again, as a new message (a client retrying).
            let mut again = request.clone();
            again["message_id"] = json!(Uuid::now_v7());
            self.publisher.send(&again).await?;
        }
        wait_for(&format!("the answer to {action}"), DEADLINE, || async {
            Ok(sqlx::query_as::<_, (String, String, Value)>(
                "select outcome, detail, field_errors from requests where request_id = $1",
            )
            .bind(request_id)
            .fetch_optional(&self.setups)
            .await?)
        })
        .await
    }

    async fn applied(
        &self,
        order_id: Uuid,
        setup_id: Uuid,
        action: &str,
        role: &str,
        extra: Value,
    ) -> anyhow::Result<String> {
        let (outcome, detail, _) = self.ask(order_id, setup_id, action, role, extra).await?;
        anyhow::ensure!(
            outcome == "applied",
            "{action} by {role} was {outcome}: {detail}"
        );
        Ok(detail)
    }

    /// Submits a good intake form through the client's link `url` and waits until the
    /// setups worker took it.
    async fn submit_through(
        &self,
        http: &reqwest::Client,
        url: &str,
        setup: Uuid,
    ) -> anyhow::Result<()> {
        let sent = http
            .post(url)
            .form(&[
                ("shop_url", "https://keramik.example"),
                ("contact_email", "anna@keramik.example"),
                ("listings", "40"),
            ])
            .send()
            .await?;
        assert_eq!(sent.status(), 202);
        wait_until("the intake taken", DEADLINE, || async {
            let status: String =
                sqlx::query_scalar("select status from setups where setup_id = $1")
                    .bind(setup)
                    .fetch_one(&self.setups)
                    .await?;
            Ok(status == "intake_review")
        })
        .await
    }

    async fn timeline_kinds(&self, order_id: Uuid) -> anyhow::Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("select kind from timeline where order_id = $1 order by seq")
                .bind(order_id)
                .fetch_all(&self.orders)
                .await?,
        )
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.host.stop(Duration::from_secs(10)).await;
        self.orders.close().await;
        self.setups.close().await;
        self.world.cleanup().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_completes_only_when_its_goods_are_delivered_and_both_setups_completed()
-> anyhow::Result<()> {
    let run = Run::start(true).await?;
    let listings = sim::service_product();
    let ads = service("SVC-ADS", "Ad campaign setup", 29000);
    let order = run.place("S-1001", &[listings, ads]).await?;
    let (l, a) = (
        run.setup_id(order, "SVC-LISTINGS-40").await?,
        run.setup_id(order, "SVC-ADS").await?,
    );
    // The goods are delivered, but the order waits for its setups.
    run.wait_status(order, "delivered").await?;
    let setups = run.setups_of(order).await?;
    assert!(
        setups.iter().all(|s| s.2 == "pending_intake" && s.3 == 0),
        "{setups:?}"
    );
    // A new template version does not change a setup already running.
    run.product("SVC-ADS", "Ad campaign setup", ads_template(2))
        .await?;

    // The listings setup, with one round of changes.
    let (outcome, _, errors) = run
        .ask(
            order,
            l,
            "submit_intake",
            "client",
            json!({"values": {"shop_url": "keramik.example", "contact_email": "anna@keramik.example"}}),
        )
        .await?;
    assert_eq!(outcome, "refused");
    let fields: Vec<&str> = errors
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["shop_url", "listings"], "{errors}");
    let stored: i64 =
        sqlx::query_scalar("select count(*) from intake_submissions where setup_id = $1")
            .bind(l)
            .fetch_one(&run.setups)
            .await?;
    assert_eq!(stored, 0, "a refused intake stores nothing");
    run.applied(
        order,
        l,
        "submit_intake",
        "client",
        listings_intake("keramik", 40),
    )
    .await?;
    let (outcome, detail, _) = run
        .ask(order, l, "advance", "fulfillment_team", json!({}))
        .await?;
    assert_eq!(outcome, "refused", "{detail}");
    assert!(detail.contains("may not complete a stage"), "{detail}");
    run.applied(order, l, "advance", "setup_manager", json!({}))
        .await?;
    run.applied(order, l, "advance", "setup_manager", json!({}))
        .await?;
    run.applied(
        order,
        l,
        "request_changes",
        "client",
        json!({"note": "Please use our product photos"}),
    )
    .await?;
    run.applied(order, l, "advance", "order_admin", json!({}))
        .await?;
    run.applied(
        order,
        l,
        "approve",
        "client",
        json!({"approved": "preview 2, sha256:5d41402a"}),
    )
    .await?;
    run.applied(order, l, "record_qa", "setup_manager", listings_qa_passed())
        .await?;
    let setups = run.setups_of(order).await?;
    assert_eq!(
        (setups[1].2.as_str(), setups[1].4),
        ("completed", 1),
        "{setups:?}"
    );
    let orders = &run.orders;
    wait_until(
        "the first setup's completion on the timeline",
        DEADLINE,
        || async {
            Ok(run
                .timeline_kinds(order)
                .await?
                .contains(&"setup_completed".to_owned()))
        },
    )
    .await?;
    assert_eq!(
        run.status(order).await?,
        "delivered",
        "one setup is still open"
    );

    // The ad campaign, on template version 1 (three stages) though version 2 arrived.
    run.applied(
        order,
        a,
        "submit_intake",
        "client",
        json!({"values": {"budget": "1500"}}),
    )
    .await?;
    run.applied(order, a, "advance", "setup_manager", json!({}))
        .await?;
    run.applied(order, a, "advance", "setup_manager", json!({}))
        .await?;
    let done = run
        .applied(
            order,
            a,
            "record_qa",
            "setup_manager",
            json!({"results": [{"item": "tracking fires", "passed": true}]}),
        )
        .await?;
    assert!(done.contains("setup completed"), "{done}");
    run.wait_status(order, "completed").await?;
    let kinds = run.timeline_kinds(order).await?;
    assert_eq!(
        kinds.iter().filter(|k| *k == "setup_completed").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "completed").count(),
        1,
        "{kinds:?}"
    );
    let completed: i64 =
        sqlx::query_scalar("select count(*) from order_setups_completed where order_id = $1")
            .bind(order)
            .fetch_one(orders)
            .await?;
    assert_eq!(completed, 2);

    // Every change is in the history, numbered without gaps; every request once in the
    // audit though each was sent twice.
    let history: Vec<(Uuid, i32)> =
        sqlx::query_as("select setup_id, sequence from history order by setup_id, sequence")
            .fetch_all(&run.setups)
            .await?;
    for id in [l, a] {
        let seqs: Vec<i32> = history.iter().filter(|h| h.0 == id).map(|h| h.1).collect();
        assert_eq!(seqs, (1..=seqs.len() as i32).collect::<Vec<_>>());
    }
    assert_eq!(
        history.iter().filter(|h| h.0 == l).count(),
        8,
        "start + 7 moves"
    );
    assert_eq!(
        history.iter().filter(|h| h.0 == a).count(),
        5,
        "start + 4 moves"
    );
    let requests: i64 = sqlx::query_scalar("select count(*) from requests")
        .fetch_one(&run.setups)
        .await?;
    assert_eq!(
        requests, 13,
        "9 for listings (2 of them refused) and 4 for ads, each once"
    );
    run.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_order_cancels_its_open_setups_and_says_why() -> anyhow::Result<()> {
    // No carrier: nothing leaves the warehouse, so the order can be cancelled.
    let run = Run::start(false).await?;
    let listings = sim::service_product();
    let order = run.place("S-2001", &[listings]).await?;
    let setup = run.setup_id(order, "SVC-LISTINGS-40").await?;
    run.applied(
        order,
        setup,
        "submit_intake",
        "client",
        listings_intake("a", 3),
    )
    .await?;
    run.publisher
        .send(&envelope(
            "order.cancel_requested",
            "storefront",
            "S-2001",
            json!({"request_id": Uuid::now_v7(), "store_id": "shop-de",
                   "order": {"channel": "storefront", "external_order_id": "S-2001"},
                   "requested_by": {"kind": "customer"}, "reason": "We found another agency"}),
        ))
        .await?;
    run.wait_status(order, "cancelled").await?;
    let setups = &run.setups;
    wait_until("the setup cancelled", DEADLINE, || async {
        let status: String = sqlx::query_scalar("select status from setups where setup_id = $1")
            .bind(setup)
            .fetch_one(setups)
            .await?;
        Ok(status == "cancelled")
    })
    .await?;
    let (from, detail): (String, String) = sqlx::query_as(
        "select from_status, detail from history where setup_id = $1
         order by sequence desc limit 1",
    )
    .bind(setup)
    .fetch_one(setups)
    .await?;
    assert_eq!(from, "intake_review");
    assert!(detail.contains("We found another agency"), "{detail}");
    let (outcome, detail, _) = run
        .ask(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("cancelled"), "{detail}");
    run.stop().await
}

/// The SLA: a stage is due after its business hours of the agency's own time; waiting for
/// the client does not count, and an overdue stage tells the store's staff exactly once.
/// The sweep is run with a clock set weeks ahead instead of waiting for business hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_setup_tells_the_staff_once_and_waiting_for_the_client_is_not_counted()
-> anyhow::Result<()> {
    let run = Run::start_with(false, &["notifications"]).await?;
    sim::store_settings(&run.publisher).await?;
    let notifications = run.world.pool("notifications").await?;
    let listings = sim::service_product();
    let order = run.place("S-3001", &[listings]).await?;
    let setup = run.setup_id(order, "SVC-LISTINGS-40").await?;
    let in_weeks = chrono::Utc::now() + chrono::Duration::days(30);

    // Waiting for the client's intake: the clock is stopped, nothing is ever due.
    let (due, spent): (Option<chrono::DateTime<chrono::Utc>>, i64) =
        sqlx::query_as("select due_at, sla_spent_seconds from setups where setup_id = $1")
            .bind(setup)
            .fetch_one(&run.setups)
            .await?;
    assert_eq!((due, spent), (None, 0));
    assert_eq!(
        orderly_setups::sweep_overdue(&run.setups, None, in_weeks).await?,
        0
    );

    // The intake is in: staff review it within 16 business hours.
    run.applied(
        order,
        setup,
        "submit_intake",
        "client",
        listings_intake("a", 3),
    )
    .await?;
    let due: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select due_at from setups where setup_id = $1")
            .bind(setup)
            .fetch_one(&run.setups)
            .await?;
    let due = due.ok_or_else(|| anyhow::anyhow!("the clock runs in intake review"))?;
    assert!(
        due > chrono::Utc::now() + chrono::Duration::hours(16),
        "{due}"
    );
    assert_eq!(
        orderly_setups::sweep_overdue(&run.setups, None, due - chrono::Duration::seconds(1))
            .await?,
        0,
        "not due a second early"
    );
    // Weeks later: overdue, reported once however often the sweep runs.
    assert_eq!(
        orderly_setups::sweep_overdue(&run.setups, None, in_weeks).await?,
        1
    );
    assert_eq!(
        orderly_setups::sweep_overdue(&run.setups, None, in_weeks).await?,
        0
    );
    let staff_requests = || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from requests where order_id = $1 and event = 'setup.overdue'
               and audience = 'staff'",
        )
        .bind(order)
        .fetch_one(&notifications)
        .await?;
        anyhow::Ok(n)
    };
    wait_until("the staff told", DEADLINE, || async {
        Ok(staff_requests().await? >= 1)
    })
    .await?;
    // The next stage starts its own clock; being overdue there is another visit.
    run.applied(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    let overdue: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select overdue_at from setups where setup_id = $1")
            .bind(setup)
            .fetch_one(&run.setups)
            .await?;
    assert_eq!(overdue, None, "a new stage visit is not overdue yet");
    // Everything the sweep wrote was published (the relay's sweep takes rows written
    // without a handoff) and handled: still exactly one staff notification.
    let setups = &run.setups;
    wait_until("the setups outbox published", DEADLINE, || async {
        let pending: i64 =
            sqlx::query_scalar("select count(*) from outbox where published_at is null")
                .fetch_one(setups)
                .await?;
        Ok(pending == 0)
    })
    .await?;
    assert_eq!(staff_requests().await?, 1);
    notifications.close().await;
    run.stop().await
}

/// Where a setups story ends: per order its status and its timeline's kinds (sorted,
/// without status changes: the order of facts may differ, every fact must be there once);
/// per (order, product) the setup's status, loops and the statuses of its history in order.
type SetupsEnd = (
    BTreeMap<String, (String, Vec<String>)>,
    BTreeMap<(String, String), (String, i32, Vec<String>)>,
);

/// Three orders of a mug and both services, every setup driven to completion: the ads with
/// a failed QA, the listings with a round of changes.
async fn setups_story(seed: Option<u64>) -> anyhow::Result<(SetupsEnd, Option<ChaosFigures>)> {
    let run = match seed {
        Some(seed) => Run::start_shaken(seed).await?,
        None => Run::start(true).await?,
    };
    let services = [
        sim::service_product(),
        service("SVC-ADS", "Ad campaign setup", 29000),
    ];
    let mut orders = Vec::new();
    for i in 0..3 {
        let ext = format!("SC-{i}");
        orders.push((ext.clone(), run.place(&ext, &services).await?));
    }
    for (_, order) in &orders {
        let order = *order;
        let l = run.setup_id(order, "SVC-LISTINGS-40").await?;
        let a = run.setup_id(order, "SVC-ADS").await?;
        run.applied(
            order,
            a,
            "submit_intake",
            "client",
            json!({"values": {"budget": "900"}}),
        )
        .await?;
        run.applied(
            order,
            l,
            "submit_intake",
            "client",
            listings_intake("s", 12),
        )
        .await?;
        for (setup, role) in [
            (a, "setup_manager"),
            (a, "setup_manager"),
            (l, "order_admin"),
        ] {
            run.applied(order, setup, "advance", role, json!({}))
                .await?;
        }
        run.applied(
            order,
            a,
            "record_qa",
            "setup_manager",
            json!({"results": [{"item": "tracking fires", "passed": false, "note": "no pixel"}]}),
        )
        .await?;
        run.applied(order, l, "advance", "setup_manager", json!({}))
            .await?;
        run.applied(
            order,
            l,
            "request_changes",
            "client",
            json!({"note": "bigger photos"}),
        )
        .await?;
        for setup in [a, l] {
            run.applied(order, setup, "advance", "setup_manager", json!({}))
                .await?;
        }
        run.applied(
            order,
            l,
            "approve",
            "client",
            json!({"approved": "preview 2"}),
        )
        .await?;
        run.applied(
            order,
            a,
            "record_qa",
            "setup_manager",
            json!({"results": [{"item": "tracking fires", "passed": true}]}),
        )
        .await?;
        run.applied(order, l, "record_qa", "setup_manager", listings_qa_passed())
            .await?;
    }
    let mut order_end = BTreeMap::new();
    let mut setup_end = BTreeMap::new();
    for (ext, order) in &orders {
        run.wait_status(*order, "completed").await?;
        let mut kinds: Vec<String> = run
            .timeline_kinds(*order)
            .await?
            .into_iter()
            .filter(|k| k != "status_changed")
            .collect();
        kinds.sort();
        order_end.insert(ext.clone(), (run.status(*order).await?, kinds));
        for (sku, setup_id, status, _, loops) in run.setups_of(*order).await? {
            let history: Vec<String> = sqlx::query_scalar(
                "select to_status from history where setup_id = $1 order by sequence",
            )
            .bind(setup_id)
            .fetch_all(&run.setups)
            .await?;
            setup_end.insert((ext.clone(), sku), (status, loops, history));
        }
    }
    let figures = match &run.chaos {
        Some(record) => Some(
            orderly_tests::chaos::figures(
                &run.world,
                record,
                &["orders", "inventory", "fulfillment", "setups"],
            )
            .await?,
        ),
        None => None,
    };
    run.stop().await?;
    Ok(((order_end, setup_end), figures))
}

/// Duplicated and deferred deliveries (the pipeline's chaos harness on every worker of the
/// run) leave the same orders, setups and histories as a calm run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_messages_leave_the_same_setups_and_history() -> anyhow::Result<()>
{
    let (calm, _) = setups_story(None).await?;
    let (shaken, figures) = setups_story(Some(17)).await?;
    let figures = figures.ok_or_else(|| anyhow::anyhow!("the shaken run kept no record"))?;
    eprintln!("chaos: {figures:?}");
    assert!(
        figures.duplicated > 0,
        "nothing was duplicated: {figures:?}"
    );
    assert!(figures.deferred > 0, "nothing was deferred: {figures:?}");
    assert_eq!(calm, shaken);
    assert!(
        calm.1
            .values()
            .all(|(status, loops, _)| status == "completed" && *loops == 1),
        "{:?}",
        calm.1
    );
    Ok(())
}

/// The admin API's view of setups: a setup manager lists them (filtered, overdue first
/// flagged) and reads one with its history; an account manager sees only their stores'; the
/// fulfillment team may not; bad filters are refused naming the parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_setups_and_their_history_through_the_api() -> anyhow::Result<()> {
    let run = Run::start_with(false, &["notifications", "api"]).await?;
    let addr = run
        .api
        .ok_or_else(|| anyhow::anyhow!("the api does not listen"))?;
    let client = orderly_tests::http::Client::new(addr);
    let staff = run.world.pool(orderly_api::NAME).await?;
    let token = |email: &'static str, role: &'static str, stores: &'static [&'static str]| {
        let staff = staff.clone();
        async move {
            let stores: Vec<String> = stores.iter().map(|s| (*s).to_owned()).collect();
            orderly_api::staff::add(&staff, email, role, &stores).await?;
            anyhow::Ok(
                orderly_api::staff::issue_token(&staff, email, 1)
                    .await?
                    .token,
            )
        }
    };
    let manager = token("sm@example.com", "setup_manager", &[]).await?;
    let other_store = token("am@example.com", "account_manager", &["bol-nl"]).await?;
    let fulfillment = token("ft@example.com", "fulfillment_team", &[]).await?;

    let order = run.place("S-4001", &[sim::service_product()]).await?;
    let setup = run.setup_id(order, sim::SERVICE_SKU).await?;
    run.applied(
        order,
        setup,
        "submit_intake",
        "client",
        listings_intake("api", 5),
    )
    .await?;
    orderly_setups::sweep_overdue(
        &run.setups,
        None,
        chrono::Utc::now() + chrono::Duration::days(30),
    )
    .await?;
    let path = format!("/api/v1/admin/setups/{setup}");
    let detail = wait_for(
        "the api shows the overdue intake review",
        DEADLINE,
        || async {
            let answer = client.get(Some(&manager), &path).await?;
            Ok((answer.status == 200
                && answer.json["status"] == "intake_review"
                && !answer.json["overdue_since"].is_null())
            .then_some(answer.json))
        },
    )
    .await?;
    assert_eq!(detail["order_id"], order.to_string());
    assert_eq!(detail["stage"], "onboarding");
    let history: Vec<&str> = detail["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert_eq!(history, ["pending_intake", "intake_review"]);
    assert_eq!(detail["history"][1]["actor"]["role"], "client");

    let listed = client
        .get(
            Some(&manager),
            "/api/v1/admin/setups?overdue=true&status=intake_review",
        )
        .await?;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.json["setups"][0]["setup_id"], setup.to_string());
    let none = client
        .get(Some(&manager), "/api/v1/admin/setups?status=completed")
        .await?;
    assert_eq!(none.json["setups"].as_array().map(Vec::len), Some(0));

    // Moving it along through the API: a command the setups worker answers.
    let steps = format!("{path}/steps");
    let etag = client.get(Some(&manager), &path).await?.etag;
    assert_eq!(
        etag.as_deref(),
        Some("\"2\""),
        "the setup's ETag is its sequence"
    );
    let stale = client
        .post(
            Some(&manager),
            &steps,
            &[("if-match", "\"1\"")],
            r#"{"action":"advance"}"#,
        )
        .await?;
    orderly_tests::http::assert_problem(&stale, 412, "a stale If-Match");
    let refused_role = client
        .post(Some(&fulfillment), &steps, &[], r#"{"action":"advance"}"#)
        .await?;
    orderly_tests::http::assert_problem(&refused_role, 403, "the fulfillment team's step");
    let clients_step = client
        .post(Some(&manager), &steps, &[], r#"{"action":"approve"}"#)
        .await?;
    assert_eq!(clients_step.json["field"], "action", "{clients_step:?}");
    let (reader, reader_token) = (&client, manager.as_str());
    let command = |answer: orderly_tests::http::Answer| async move {
        anyhow::ensure!(answer.status == 202, "{answer:?}");
        let at = answer
            .location
            .ok_or_else(|| anyhow::anyhow!("a command without its Location"))?;
        wait_for("the command answered", DEADLINE, || async {
            let c = reader.get(Some(reader_token), &at).await?;
            Ok((c.json["status"] != "pending").then_some(c.json))
        })
        .await
    };
    let advanced = command(
        client
            .post(
                Some(&manager),
                &steps,
                &[("if-match", "\"2\""), ("idempotency-key", "step-1")],
                r#"{"action":"advance"}"#,
            )
            .await?,
    )
    .await?;
    assert_eq!(advanced["status"], "applied", "{advanced}");
    let qa_too_early = command(
        client
            .post(
                Some(&manager),
                &steps,
                &[],
                r#"{"action":"record_qa","results":[{"item":"links work","passed":true}]}"#,
            )
            .await?,
    )
    .await?;
    assert_eq!(qa_too_early["status"], "refused", "{qa_too_early}");
    assert!(
        qa_too_early["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not in QA"),
        "{qa_too_early}"
    );
    let moved = wait_for("the api shows the step", DEADLINE, || async {
        let d = client.get(Some(&manager), &path).await?;
        Ok((d.json["status"] == "in_progress").then_some(d.json))
    })
    .await?;
    assert_eq!(
        moved["history"][2]["actor"]["role"], "setup_manager",
        "{moved}"
    );
    assert_eq!(
        moved["overdue_since"],
        Value::Null,
        "a new stage is not overdue"
    );

    // Analytics: one setup of the listings, found overdue once, its onboarding stage done
    // (the build it is in now does not count yet).
    let figures = client
        .get(
            Some(&manager),
            "/api/v1/admin/analytics/setups?product=SVC-LISTINGS-40",
        )
        .await?;
    assert_eq!(figures.status, 200, "{figures:?}");
    let listing = &figures.json["products"][0];
    assert_eq!(listing["product"], sim::SERVICE_SKU, "{figures:?}");
    assert_eq!(
        (
            &listing["setups"],
            &listing["completed"],
            &listing["overdue_share"]
        ),
        (&json!(1), &json!(0), &json!(1.0)),
        "{figures:?}"
    );
    let stages: Vec<&str> = listing["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(stages, ["onboarding"], "{figures:?}");
    assert!(listing["stages"][0]["p90_hours"].as_f64() >= Some(0.0));
    // Over a period: today's setups are the same one; a period before them has none.
    let today = chrono::Utc::now().date_naive();
    let period = |from: chrono::NaiveDate, to: chrono::NaiveDate| {
        format!("/api/v1/admin/analytics/setups?product=SVC-LISTINGS-40&from={from}&to={to}")
    };
    let same = client.get(Some(&manager), &period(today, today)).await?;
    assert_eq!(same.json["products"], figures.json["products"], "{same:?}");
    let before = today - chrono::Days::new(30);
    let earlier = client.get(Some(&manager), &period(before, before)).await?;
    assert_eq!(earlier.json["products"], json!([]), "{earlier:?}");
    let bad = client
        .get(Some(&manager), "/api/v1/admin/analytics/setups?status=qa")
        .await?;
    orderly_tests::http::assert_problem(&bad, 400, "a list filter on the analytics");
    assert_eq!(bad.json["field"], "status", "{bad:?}");

    // Another store's account manager: nothing listed, the setup is 404.
    let theirs = client
        .get(Some(&other_store), "/api/v1/admin/setups")
        .await?;
    assert_eq!(theirs.json["setups"].as_array().map(Vec::len), Some(0));
    assert_eq!(client.get(Some(&other_store), &path).await?.status, 404);
    let theirs = client
        .post(
            Some(&other_store),
            &steps,
            &[],
            r#"{"action":"hold","note":"x"}"#,
        )
        .await?;
    assert_eq!(
        theirs.status, 403,
        "an account manager may not move setups: {theirs:?}"
    );
    // The fulfillment team may not read setups; no token is 401.
    assert_eq!(client.get(Some(&fulfillment), &path).await?.status, 403);
    assert_eq!(client.get(None, "/api/v1/admin/setups").await?.status, 401);
    // A bad filter is a problem naming it.
    let bad = client
        .get(Some(&manager), "/api/v1/admin/setups?status=late")
        .await?;
    orderly_tests::http::assert_problem(&bad, 400, "an unknown status");
    assert_eq!(bad.json["field"], "status", "{bad:?}");
    let bad = client
        .get(Some(&manager), "/api/v1/admin/setups/not-a-uuid")
        .await?;
    orderly_tests::http::assert_problem(&bad, 400, "a setup id that is no UUID");
    assert_eq!(bad.json["field"], "id", "{bad:?}");
    staff.close().await;
    run.stop().await
}

/// The client's onboarding form and approval through their signed link: made by staff (not
/// without a store secret), rendered from the template, refused field by field with nothing
/// sent, then sent and taken by the setups worker; later the same link asks for changes and
/// approves; a changed link is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fills_in_the_form_and_approves_through_a_signed_link() -> anyhow::Result<()> {
    let run = Run::start_with(false, &["api"]).await?;
    let addr = run
        .api
        .ok_or_else(|| anyhow::anyhow!("the api does not listen"))?;
    let client = orderly_tests::http::Client::new(addr);
    let staff = run.world.pool(orderly_api::NAME).await?;
    orderly_api::staff::add(&staff, "sm@example.com", "setup_manager", &[]).await?;
    let manager = orderly_api::staff::issue_token(&staff, "sm@example.com", 1)
        .await?
        .token;
    let order = run.place("S-5001", &[sim::service_product()]).await?;
    let setup = run.setup_id(order, sim::SERVICE_SKU).await?;
    let detail = format!("/api/v1/admin/setups/{setup}");
    wait_until("the api knows the setup", DEADLINE, || async {
        Ok(client.get(Some(&manager), &detail).await?.status == 200)
    })
    .await?;
    let mint = format!("{detail}/intake-link");
    let no_secret = client.post(Some(&manager), &mint, &[], "").await?;
    orderly_tests::http::assert_problem(&no_secret, 409, "a store without a secret");
    // The client could not be asked either, and the setup says why.
    let shown = client.get(Some(&manager), &detail).await?;
    let problem = shown.json["client_invitations"][0]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(problem.contains("no secret"), "{}", shown.json);
    orderly_api::secrets::rotate(&staff, "shop-de", chrono::Duration::zero()).await?;
    let made = client.post(Some(&manager), &mint, &[], "").await?;
    assert_eq!(made.status, 200, "{made:?}");
    let path = made.json["path"].as_str().unwrap_or_default().to_owned();
    assert!(path.starts_with("/setup-intake/osi_"), "{path}");

    let http = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let page = http.get(&url).send().await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    for label in ["Your shop", "Contact", "Listings"] {
        assert!(html.contains(label), "the form lacks {label}: {html}");
    }
    // Errors come back by field; nothing is sent.
    let bad = http
        .post(&url)
        .form(&[("shop_url", "keramik"), ("contact_email", "a@a.example")])
        .send()
        .await?;
    assert_eq!(bad.status(), 422);
    let html = bad.text().await?;
    assert!(html.contains(r#"data-field="shop_url""#), "{html}");
    assert!(html.contains(r#"data-field="listings""#), "{html}");
    assert!(
        html.contains("keramik"),
        "the values given are kept: {html}"
    );
    let sent: i64 = sqlx::query_scalar("select count(*) from outbox where message_type = $1")
        .bind("setup.action_requested")
        .fetch_one(&staff)
        .await?;
    assert_eq!(sent, 0, "an intake with errors sends nothing");
    // A good one goes to the setups worker, which takes it.
    run.submit_through(&http, &url, setup).await?;
    let setups = &run.setups;
    let (values, by): (Value, String) = sqlx::query_as(
        "select field_values, submitted_by from intake_submissions where setup_id = $1",
    )
    .bind(setup)
    .fetch_one(setups)
    .await?;
    assert_eq!(values["listings"], "40");
    assert!(
        by.starts_with("C-"),
        "submitted as the order's customer: {by}"
    );
    // Once in review, the form asks why for a correction.
    wait_for("the correction form", DEADLINE, || async {
        let html = http.get(&url).send().await?.text().await?;
        Ok(html.contains("correction-reason").then_some(()))
    })
    .await?;
    // The same link takes the client's approval when the work is done.
    run.applied(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    let status_is = |want: &'static str| async move {
        wait_until(&format!("the setup {want}"), DEADLINE, || async {
            let status: String =
                sqlx::query_scalar("select status from setups where setup_id = $1")
                    .bind(setup)
                    .fetch_one(setups)
                    .await?;
            Ok(status == want)
        })
        .await
    };
    run.applied(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    let page = wait_for("the approval page", DEADLINE, || async {
        let html = http.get(&url).send().await?.text().await?;
        Ok(html.contains("Client review").then_some(html))
    })
    .await?;
    assert!(page.contains(r#"value="approve""#), "{page}");
    let empty = http
        .post(&url)
        .form(&[("decision", "changes"), ("changes", " ")])
        .send()
        .await?;
    assert_eq!(empty.status(), 422, "changes say what");
    let changes = http
        .post(&url)
        .form(&[
            ("decision", "changes"),
            ("changes", "Bigger photos, please"),
        ])
        .send()
        .await?;
    assert_eq!(changes.status(), 202);
    status_is("in_progress").await?;
    run.applied(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    wait_for("the approval page again", DEADLINE, || async {
        let html = http.get(&url).send().await?.text().await?;
        Ok(html.contains(r#"value="approve""#).then_some(()))
    })
    .await?;
    let approve = http
        .post(&url)
        .form(&[("decision", "approve")])
        .send()
        .await?;
    assert_eq!(approve.status(), 202);
    status_is("qa").await?;
    let decisions: Vec<(String, Option<String>)> =
        sqlx::query_as("select decision, approved from approvals where setup_id = $1 order by at")
            .bind(setup)
            .fetch_all(setups)
            .await?;
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert_eq!(decisions[0].0, "changes_requested");
    assert!(
        decisions[1]
            .1
            .as_deref()
            .is_some_and(|a| a.contains("stage `review`")),
        "the approval is bound to what was approved: {decisions:?}"
    );
    // Nothing for the client to do in QA.
    wait_for("nothing to do", DEADLINE, || async {
        Ok((http.get(&url).send().await?.status() == 409).then_some(()))
    })
    .await?;

    // A changed link is refused, a made-up one is not ours. The character changed is
    // inside the signature, not its last one: the last character of unpadded base64 also
    // carries bits that must be zero, and changing only those makes a token that does not
    // decode at all (404), not one with a wrong signature (403).
    let mut changed: Vec<char> = url.chars().collect();
    let at = changed.len() - 3;
    changed[at] = if changed[at] == 'A' { 'B' } else { 'A' };
    let changed: String = changed.into_iter().collect();
    assert_eq!(http.get(&changed).send().await?.status(), 403);
    assert_eq!(
        http.get(format!("http://{addr}/setup-intake/osi_nothing.here"))
            .send()
            .await?
            .status(),
        404
    );
    staff.close().await;
    run.stop().await
}

/// The customer requests (event, payload) about `order` in the notifications worker.
async fn customer_requests(
    notifications: &PgPool,
    order: Uuid,
    event: &str,
) -> anyhow::Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "select payload from requests where order_id = $1 and event = $2
           and audience = 'customer' order by requested_at, request_id",
    )
    .bind(order)
    .bind(event)
    .fetch_all(notifications)
    .await?)
}

/// The link in a notification's body.
fn link_in(request: &Value) -> anyhow::Result<String> {
    let body = request["body"].as_str().unwrap_or_default();
    body.split_whitespace()
        .find(|w| w.contains("/setup-intake/osi_"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no link in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_is_asked_reminded_and_told_by_email_with_a_link_that_works()
-> anyhow::Result<()> {
    let run = Run::start_with(false, &["api", "notifications"]).await?;
    let addr = run
        .api
        .ok_or_else(|| anyhow::anyhow!("the api does not listen"))?;
    sim::store_settings(&run.publisher).await?;
    let api = run.world.pool(orderly_api::NAME).await?;
    orderly_api::secrets::rotate(&api, "shop-de", chrono::Duration::zero()).await?;
    let notifications = run.world.pool("notifications").await?;
    let order = run.place("S-6001", &[sim::service_product()]).await?;
    let setup = run.setup_id(order, sim::SERVICE_SKU).await?;

    // The setup starts waiting for the intake: the client gets the form's link, once.
    let asked = wait_for("the intake asked of the client", DEADLINE, || async {
        Ok(
            customer_requests(&notifications, order, "setup.intake_requested")
                .await?
                .into_iter()
                .next(),
        )
    })
    .await?;
    let link = link_in(&asked)?;
    assert!(
        link.starts_with(&format!("http://{addr}/setup-intake/")),
        "{link}"
    );
    let http = reqwest::Client::new();
    let page = http.get(&link).send().await?;
    assert_eq!(page.status(), 200, "the e-mailed link opens the form");
    assert!(page.text().await?.contains("Your shop"));

    // Two days without an answer: a reminder with a fresh link; two more days, another;
    // then no more. Each reminder once, however often the sweep runs.
    let started = chrono::Utc::now();
    let settings = orderly_setups::SetupSettings::default();
    let sweep = |hours: i64| {
        let at = started + chrono::Duration::hours(hours);
        orderly_setups::sweep_reminders(&run.setups, None, &settings, at)
    };
    assert_eq!(sweep(47).await?, 0, "not before two days");
    assert_eq!(sweep(49).await?, 1);
    assert_eq!(sweep(49).await?, 0);
    assert_eq!(sweep(97).await?, 1);
    assert_eq!(sweep(2000).await?, 0, "two reminders per wait at most");
    let reminders = wait_for("both reminders sent", DEADLINE, || async {
        let r = customer_requests(&notifications, order, "setup.client_reminder").await?;
        Ok((r.len() >= 2).then_some(r))
    })
    .await?;
    let fresh = link_in(&reminders[1])?;
    assert_ne!(fresh, link, "a reminder carries a fresh link");
    assert_eq!(http.get(&fresh).send().await?.status(), 200);

    // The client answers through the link; once the work is done they are asked to approve.
    run.submit_through(&http, &fresh, setup).await?;
    assert_eq!(
        sweep(2000).await?,
        0,
        "no reminder once the client answered"
    );
    run.applied(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    run.applied(order, setup, "advance", "setup_manager", json!({}))
        .await?;
    let approval = wait_for("the approval asked of the client", DEADLINE, || async {
        Ok(
            customer_requests(&notifications, order, "setup.approval_requested")
                .await?
                .into_iter()
                .next(),
        )
    })
    .await?;
    let page = http.get(link_in(&approval)?).send().await?;
    assert_eq!(page.status(), 200);
    assert!(
        page.text().await?.contains("Client review"),
        "the link shows the stage to approve"
    );
    run.applied(
        order,
        setup,
        "approve",
        "client",
        json!({"approved": "preview 1"}),
    )
    .await?;
    run.applied(
        order,
        setup,
        "record_qa",
        "setup_manager",
        listings_qa_passed(),
    )
    .await?;
    wait_for("the client told it is done", DEADLINE, || async {
        Ok(customer_requests(&notifications, order, "setup.completed")
            .await?
            .into_iter()
            .next())
    })
    .await?;

    // Everything published and handled: each message to the client exactly once, and
    // every invitation on the setup's record in the api.
    for (event, n) in [
        ("setup.intake_requested", 1),
        ("setup.client_reminder", 2),
        ("setup.approval_requested", 1),
        ("setup.completed", 1),
    ] {
        assert_eq!(
            customer_requests(&notifications, order, event).await?.len(),
            n,
            "{event}"
        );
    }
    let invitations: Vec<(String, i32)> = sqlx::query_as(
        "select task, reminder from setup_invitations where setup_id = $1
         order by at, sequence, reminder",
    )
    .bind(setup)
    .fetch_all(&api)
    .await?;
    assert_eq!(
        invitations,
        [
            ("intake".to_owned(), 0),
            ("intake".to_owned(), 1),
            ("intake".to_owned(), 2),
            ("approval".to_owned(), 0)
        ]
    );
    notifications.close().await;
    api.close().await;
    run.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_never_shipped_and_an_order_of_services_completes_with_its_setup()
-> anyhow::Result<()> {
    let run = Run::start_with(true, &["notifications"]).await?;
    sim::store_settings(&run.publisher).await?;
    let notifications = run.world.pool("notifications").await?;
    let fulfillment = run.world.pool("fulfillment").await?;
    let shipped_skus = |order: Uuid| {
        let fulfillment = &fulfillment;
        async move {
            let skus: Vec<String> = sqlx::query_scalar(
                "select i.sku from shipment_items i join shipments s using (shipment_id)
                 where s.order_id = $1 order by i.sku",
            )
            .bind(order)
            .fetch_all(fulfillment)
            .await?;
            anyhow::Ok(skus)
        }
    };

    // A mug and a service: the parcel holds the mug only.
    let mixed = run.place("S-7001", &[sim::service_product()]).await?;
    run.wait_status(mixed, "delivered").await?;
    assert_eq!(shipped_skus(mixed).await?, ["MUG-BLU-350"]);

    // The service alone: nothing reserved, nothing shipped; its goods are done at once
    // (`delivered` without a parcel, and no "delivered" message to the customer).
    let alone = run
        .place_lines("S-7002", None, &[sim::service_product()])
        .await?;
    run.wait_status(alone, "delivered").await?;
    assert!(shipped_skus(alone).await?.is_empty());
    let setup = run.setup_id(alone, sim::SERVICE_SKU).await?;
    let mut status = "pending_intake".to_owned();
    let mut loops = 0;
    while let Some((action, role, extra, _)) = sim::listings_next_step(&status, loops) {
        run.applied(alone, setup, action, role, extra).await?;
        (status, loops) = run
            .setups_of(alone)
            .await?
            .into_iter()
            .next()
            .map(|s| (s.2, u64::try_from(s.4).unwrap_or(0)))
            .ok_or_else(|| anyhow::anyhow!("the setup vanished"))?;
    }
    assert_eq!(status, "completed");
    run.wait_status(alone, "completed").await?;
    let timeline: Vec<String> =
        sqlx::query_scalar("select detail from timeline where order_id = $1 order by seq")
            .bind(alone)
            .fetch_all(&run.orders)
            .await?;
    assert!(
        timeline
            .iter()
            .any(|d| d.starts_with("Nothing to reserve or ship")),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|d| d.contains("Completed: every setup completed (nothing to ship)")),
        "{timeline:?}"
    );
    // The customer heard of the setup's completion, never of a delivery.
    wait_until("the client told the setup is done", DEADLINE, || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from requests where order_id = $1 and event = 'setup.completed'",
        )
        .bind(alone)
        .fetch_one(&notifications)
        .await?;
        Ok(n == 1)
    })
    .await?;
    let delivered: i64 = sqlx::query_scalar(
        "select count(*) from requests where order_id = $1 and event = 'order.delivered'",
    )
    .bind(alone)
    .fetch_one(&notifications)
    .await?;
    assert_eq!(delivered, 0, "nothing was delivered to tell of");
    // The store invoices per shipment: the services on a request of their own (order-wide,
    // no shipping), the mug with its parcel (with the shipping); the order of services
    // alone, one request for its service.
    let invoiced = |order: Uuid| {
        let fulfillment = &fulfillment;
        async move {
            let rows: Vec<(Option<Uuid>, Value)> = sqlx::query_as(
                "select (body->'payload'->>'shipment_id')::uuid, body->'payload'->'lines'
                 from outbox where message_type = 'invoice.requested'
                   and body->'payload'->>'order_id' = $1::text
                 order by (body->'payload'->>'shipment_id') nulls first",
            )
            .bind(order)
            .fetch_all(fulfillment)
            .await?;
            anyhow::Ok(
                rows.into_iter()
                    .map(|(shipment, lines)| {
                        let skus: Vec<String> = lines
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|l| l["sku"].as_str().map(str::to_owned))
                            .collect();
                        (shipment.is_some(), skus)
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    wait_until("the mixed order's parcel invoiced", DEADLINE, || async {
        Ok(invoiced(mixed).await?.len() == 2)
    })
    .await?;
    assert_eq!(
        invoiced(mixed).await?,
        [
            (false, vec![sim::SERVICE_SKU.to_owned()]),
            (true, vec!["MUG-BLU-350".to_owned()])
        ]
    );
    assert_eq!(
        invoiced(alone).await?,
        [(false, vec![sim::SERVICE_SKU.to_owned()])]
    );
    fulfillment.close().await;
    notifications.close().await;
    run.stop().await
}
