//! Bulk actions end to end: the api worker as its own process (so it can be killed with
//! SIGKILL mid-job), every other worker running, orders placed through the broker, and the
//! job's commands answered by the orders worker for real.
//!
//! What must hold: a bulk job covers exactly the list's orders for its filter; the dry run
//! names exactly the orders the real run acts on; each order gets its command once, even
//! when the worker dies mid-job and starts again; each order's outcome is reported
//! (cancelled, refused after dispatch with the reason, skipped as not applicable); an
//! account manager's job skips what they do not see and says so; and permissions, the
//! audit log, `Idempotency-Key` and cancelling a job work as for single actions.

use std::{collections::BTreeSet, net::SocketAddr, process::Stdio, time::Duration};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use orderly::sim::{self, Publisher};
use orderly_runtime::{
    Host,
    testing::{World, wait_until},
};
use orderly_tests::http::{Answer, Client, assert_problem};
use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(180);

/// The api worker as a child process (`tests/src/bin/api-worker.rs`).
struct ApiProcess {
    child: tokio::process::Child,
    client: Client,
}

impl ApiProcess {
    /// Starts it on a free port, sending bulk commands `batch` at a time, at most `rate` a
    /// second; returns once it answers.
    async fn start(world: &World, batch: u32, rate: f64) -> anyhow::Result<Self> {
        let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let documents: Value = world.settings.section("documents")?;
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-worker"))
            .env("ORDERLY__NAMESPACE", &world.settings.namespace)
            .env("ORDERLY__DATABASE_URL", &world.settings.database_url)
            .env("ORDERLY__BROKER_URL", &world.settings.broker_url)
            .env("ORDERLY__HTTP_ADDR", "127.0.0.1:0")
            .env("ORDERLY__API__LISTEN", addr.to_string())
            .env("ORDERLY__API__RATE_PER_SECOND", "0")
            .env("ORDERLY__API__ADDRESS_RATE_PER_SECOND", "0")
            .env("ORDERLY__API__BULK_BATCH", batch.to_string())
            .env("ORDERLY__API__BULK_RATE_PER_SECOND", rate.to_string())
            .env(
                "ORDERLY__DOCUMENTS__PATH",
                documents["path"].as_str().unwrap_or_default(),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let client = Client::new(addr);
        let probe = client.clone();
        wait_until("the api worker answers", DEADLINE, || {
            let probe = probe.clone();
            async move {
                Ok(probe
                    .get(None, "/api/v1/openapi.json")
                    .await
                    .is_ok_and(|a| a.status == 200))
            }
        })
        .await?;
        Ok(Self { child, client })
    }

    /// SIGKILL: no shutdown, no flush, whatever it was doing.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// Every worker but the api, in this process.
async fn start_pipeline(world: &World) -> anyhow::Result<Host> {
    let mut host = world.host();
    for name in orderly::workers::names() {
        if name != orderly_api::NAME {
            orderly::workers::start(&mut host, &name).await?;
        }
    }
    Ok(host)
}

/// A warehouse and carrier that ship every shipment asked for and never deliver it (the
/// order stays `shipped`), until its connection is closed.
async fn shipper(world: &World, publisher: Publisher) -> anyhow::Result<lapin::Connection> {
    let connection = sim::connect(&world.settings.broker_url, &world.names).await?;
    let channel = connection.create_channel().await?;
    let mut deliveries = channel
        .basic_consume(
            world.names.queue("out.warehouse").into(),
            "shipper".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tokio::spawn(async move {
        let _keep = channel;
        let mut n = 0u64;
        while let Some(Ok(d)) = deliveries.next().await {
            let _ = d.acker.ack(BasicAckOptions::default()).await;
            let Ok(message) = serde_json::from_slice::<Value>(&d.data) else {
                continue;
            };
            if message["message_type"] != "shipment.requested" {
                continue;
            }
            n += 1;
            let p = &message["payload"];
            let order_id = p["order_id"].as_str().unwrap_or_default();
            let event = sim::envelope(
                "shipment.updated",
                "carrier:orderly",
                order_id,
                json!({"shipment_id": p["shipment_id"], "carrier": "dhl",
                       "tracking_number": format!("00340434{n:012}"), "vocabulary": "orderly",
                       "raw_status": "in_transit", "event_at": chrono::Utc::now()}),
            );
            if publisher.send(&event).await.is_err() {
                return;
            }
        }
    });
    Ok(connection)
}

/// One test's Orderly with the api worker in its own process.
struct System {
    world: World,
    pipeline: Host,
    api: ApiProcess,
    publisher: Publisher,
    db: PgPool,
    rng: StdRng,
}

impl System {
    async fn start(batch: u32, rate: f64) -> anyhow::Result<Self> {
        let world = World::new().await?;
        let pipeline = start_pipeline(&world).await?;
        let api = ApiProcess::start(&world, batch, rate).await?;
        let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
        sim::seed(&publisher, 5).await?;
        sim::wait_for_catalog(&world.settings.database_url, DEADLINE).await?;
        let db = world.pool(orderly_api::NAME).await?;
        Ok(Self {
            world,
            pipeline,
            api,
            publisher,
            db,
            rng: StdRng::seed_from_u64(15),
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.api.kill().await?;
        self.pipeline.stop(Duration::from_secs(5)).await;
        self.db.close().await;
        self.world.cleanup().await
    }

    async fn token(&self, email: &str, role: &str, stores: &[&str]) -> anyhow::Result<String> {
        let stores: Vec<String> = stores.iter().map(|s| (*s).to_owned()).collect();
        orderly_api::staff::add(&self.db, email, role, &stores).await?;
        Ok(orderly_api::staff::issue_token(&self.db, email, 1)
            .await?
            .token)
    }

    /// Places `n` orders `{prefix}-{i}` of one product each (the products in turn, never
    /// the scarce one), from the storefront (`shop-de`) or a marketplace (`bol-nl`).
    async fn place(&mut self, prefix: &str, n: usize, marketplace: bool) -> anyhow::Result<()> {
        let products: Vec<_> = sim::catalog()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, p)| p)
            .collect();
        for i in 0..n {
            let product = products[i % products.len()].clone();
            let order = sim::order_placed(
                &mut self.rng,
                &format!("{prefix}-{i}"),
                marketplace,
                &[(product, 1)],
                1,
            );
            self.publisher.send(&order).await?;
        }
        Ok(())
    }

    fn client(&self) -> &Client {
        &self.api.client
    }

    /// How many orders `token` lists for `query` (exactly: under 10,000).
    async fn total(&self, token: &str, query: &str) -> anyhow::Result<i64> {
        let answer = self
            .client()
            .get(
                Some(token),
                &format!("/api/v1/admin/orders?{query}&count=true&limit=1"),
            )
            .await?;
        anyhow::ensure!(answer.status == 200, "{answer:?}");
        Ok(answer.json["total"].as_i64().unwrap_or_default())
    }

    /// Waits until `token` lists `n` orders for `query`.
    async fn wait_listed(&self, token: &str, query: &str, n: i64) -> anyhow::Result<()> {
        wait_until(
            &format!("{n} orders listed for {query}"),
            DEADLINE,
            || async { Ok(self.total(token, query).await? == n) },
        )
        .await
    }

    /// Every `(order_id, status)` `token` lists for `query`, in the list's order.
    async fn listed(&self, token: &str, query: &str) -> anyhow::Result<Vec<(Uuid, String)>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("/api/v1/admin/orders?{query}&limit=200&cursor={c}"),
                None => format!("/api/v1/admin/orders?{query}&limit=200"),
            };
            let answer = self.client().get(Some(token), &page).await?;
            anyhow::ensure!(answer.status == 200, "{answer:?}");
            for o in answer.json["orders"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                out.push((
                    o["order_id"].as_str().unwrap_or_default().parse()?,
                    o["status"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            match answer.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(out),
            }
        }
    }

    /// POSTs a bulk request.
    async fn bulk(&self, token: &str, key: Option<&str>, body: &Value) -> anyhow::Result<Answer> {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.client()
            .post(
                Some(token),
                "/api/v1/admin/orders/bulk",
                &headers,
                &body.to_string(),
            )
            .await
    }

    async fn job(&self, token: &str, job_id: &str) -> anyhow::Result<Value> {
        let answer = self
            .client()
            .get(Some(token), &format!("/api/v1/admin/jobs/{job_id}"))
            .await?;
        anyhow::ensure!(answer.status == 200, "{answer:?}");
        Ok(answer.json)
    }

    /// Waits until the job has sent or skipped every order and every answer is in.
    async fn finished(&self, token: &str, job_id: &str) -> anyhow::Result<Value> {
        wait_until(&format!("job {job_id} finished"), DEADLINE, || async {
            let job = self.job(token, job_id).await?;
            Ok(job["state"] != "running" && job["progress"]["awaiting_answer"] == 0)
        })
        .await?;
        self.job(token, job_id).await
    }

    /// Every item of a job, in its order.
    async fn items(&self, token: &str, job_id: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let answer = self
                .client()
                .get(
                    Some(token),
                    &format!("/api/v1/admin/jobs/{job_id}/items?limit=500&after={after}"),
                )
                .await?;
            anyhow::ensure!(answer.status == 200, "{answer:?}");
            out.extend(answer.json["items"].as_array().cloned().unwrap_or_default());
            match answer.json["next_after"].as_i64() {
                Some(next) => after = next,
                None => return Ok(out),
            }
        }
    }

    async fn scalar(&self, sql: &str, job_id: &str) -> anyhow::Result<i64> {
        let id: Uuid = job_id.parse()?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(id)
            .fetch_one(&self.db)
            .await?)
    }
}

fn ids_of(items: &[Value], outcome: &str) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| i["outcome"] == outcome)
        .filter_map(|i| i["order_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_cancel_of_500_orders_reports_each_outcome_and_survives_a_kill_mid_job()
-> anyhow::Result<()> {
    // 10 commands a batch, at most 100 a second: the job takes seconds, long enough to kill
    // the worker in the middle of it.
    let mut system = System::start(10, 100.0).await?;
    let admin = system
        .token("admin@example.com", "order_admin", &[])
        .await?;

    // 60 orders shipped (and never delivered), then the shipper stops.
    let shipping = shipper(&system.world, system.publisher.clone()).await?;
    system.place("BLK-SHIP", 60, false).await?;
    system
        .wait_listed(&admin, "store=shop-de&status=shipped", 60)
        .await?;
    shipping.close(0, "shipped enough".into()).await?;

    // 20 orders cancelled by a bulk job by ids, so they are cancelled (terminal) below.
    system.place("BLK-DONE", 20, false).await?;
    system
        .wait_listed(&admin, "q=BLK-DONE&status=processing,backordered", 20)
        .await?;
    let done: Vec<String> = system
        .listed(&admin, "q=BLK-DONE")
        .await?
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let by_ids = system
        .bulk(
            &admin,
            None,
            &json!({"action": "cancel", "params": {"reason": "test orders"}, "order_ids": done}),
        )
        .await?;
    assert_eq!(by_ids.status, 202, "{by_ids:?}");
    let by_ids_job = by_ids.json["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let job = system.finished(&admin, &by_ids_job).await?;
    assert_eq!(job["progress"]["applied"], 20, "{job}");

    // 420 orders waiting for a warehouse that does not answer.
    system.place("BLK-OPEN", 420, false).await?;
    system
        .wait_listed(&admin, "store=shop-de&status=processing,backordered", 420)
        .await?;
    system
        .wait_listed(&admin, "store=shop-de&status=cancelled", 20)
        .await?;
    let listed = system.listed(&admin, "store=shop-de").await?;
    assert_eq!(listed.len(), 500);
    let processing: Vec<Uuid> = listed
        .iter()
        .filter(|(_, s)| s == "processing")
        .map(|(id, _)| *id)
        .collect();

    // The dry run: exactly the list's orders, in its order; the cancelled ones skipped.
    let body = json!({"action": "cancel", "params": {"reason": "fraud wave"},
                      "filter": {"store": ["shop-de"]}});
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let dry = system.bulk(&admin, None, &dry).await?;
    assert_eq!(dry.status, 202, "{dry:?}");
    assert_eq!(dry.json["state"], "completed", "{:?}", dry.json);
    assert_eq!(dry.json["dry_run"], true);
    let dry_id = dry.json["job_id"].as_str().unwrap_or_default().to_owned();
    let dry_items = system.items(&admin, &dry_id).await?;
    let in_order: Vec<String> = dry_items
        .iter()
        .filter_map(|i| i["order_id"].as_str().map(str::to_owned))
        .collect();
    let list_order: Vec<String> = listed.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(
        in_order, list_order,
        "the job's orders are the list's, in order"
    );
    let would_send = ids_of(&dry_items, "would_send");
    let skipped = ids_of(&dry_items, "skipped");
    assert_eq!(would_send.len(), 480);
    assert_eq!(skipped, done.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        dry_items
            .iter()
            .filter(|i| i["outcome"] == "skipped")
            .all(|i| i["reason"] == "not_applicable"
                && i["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("cancelled"))),
        "skipped as cancelled already"
    );
    assert_eq!(
        system
            .scalar(
                "select count(*) from api.commands where job_id = $1",
                &dry_id
            )
            .await?,
        0,
        "a dry run sends nothing"
    );

    // The real run, killed mid-job.
    let key = "bulk-cancel-fraud-wave";
    let real = system.bulk(&admin, Some(key), &body).await?;
    assert_eq!(real.status, 202, "{real:?}");
    let job_id = real.json["job_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        real.location.as_deref(),
        Some(format!("/api/v1/admin/jobs/{job_id}").as_str())
    );
    let sent_sql = "select count(*) from api.job_items where job_id = $1 and state = 'sent'";
    wait_until("some of the job sent", DEADLINE, || async {
        Ok(system.scalar(sent_sql, &job_id).await? >= 50)
    })
    .await?;
    let System {
        world,
        pipeline,
        api,
        publisher,
        db,
        rng,
    } = system;
    api.kill().await?;
    // Nothing sends while no api worker runs: this is where the kill left the job.
    let job_uuid: Uuid = job_id.parse()?;
    let sent_at_kill: i64 = sqlx::query_scalar(sent_sql)
        .bind(job_uuid)
        .fetch_one(&db)
        .await?;
    assert!(
        (50..480).contains(&sent_at_kill),
        "the kill came mid-job ({sent_at_kill} of 480 sent); otherwise this test proves nothing"
    );
    let system = System {
        api: ApiProcess::start(&world, 10, 100.0).await?,
        world,
        pipeline,
        publisher,
        db,
        rng,
    };

    // The same request with the same key, after the restart: the same job, nothing new.
    let again = system.bulk(&admin, Some(key), &body).await?;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(again.json["job_id"], job_id.as_str());
    let reused = system
        .bulk(
            &admin,
            Some(key),
            &json!({"action": "hold", "params": {"reason": "x"}, "filter": {}}),
        )
        .await?;
    assert_problem(&reused, 422, "the key reused for another request");

    let job = system.finished(&admin, &job_id).await?;
    assert_eq!(job["state"], "completed", "{job}");
    let progress = &job["progress"];
    assert_eq!(progress["total"], 500, "{job}");
    assert_eq!(progress["skipped"], 20, "{job}");
    assert_eq!(progress["applied"], 420, "{job}");
    assert_eq!(progress["refused"], 60, "{job}");
    assert_eq!(progress["pending"], 0, "{job}");

    // Each order of the dry run's set got exactly one command.
    let items = system.items(&admin, &job_id).await?;
    let sent: BTreeSet<String> = items
        .iter()
        .filter(|i| i["command_id"].is_string())
        .filter_map(|i| i["order_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        sent, would_send,
        "the real run acted on the dry run's orders"
    );
    assert_eq!(
        system
            .scalar(
                "select count(*) from api.commands where job_id = $1",
                &job_id
            )
            .await?,
        480,
        "one command per order, none twice across the kill"
    );
    assert_eq!(
        system
            .scalar(
                "select count(distinct order_id) from api.commands where job_id = $1",
                &job_id
            )
            .await?,
        480
    );
    assert_eq!(
        system
            .scalar(
                "select count(*) from api.audit_log where action = 'orders.cancel' \
                 and detail = 'bulk job ' || $1::text",
                &job_id
            )
            .await?,
        480,
        "each order's command is in the audit log like a single action's"
    );
    // Refused: the shipped ones, each with the reason.
    for item in items.iter().filter(|i| i["outcome"] == "refused") {
        let as_command = json!({"status": "refused", "refused": item["refused"]});
        assert!(orderly_tests::refused_after_dispatch(&as_command), "{item}");
    }
    // The orders worker cancelled each once, and each reservation went back once.
    let cancelled_ids: Vec<Uuid> = items
        .iter()
        .filter(|i| i["outcome"] == "applied")
        .filter_map(|i| i["order_id"].as_str()?.parse().ok())
        .collect();
    assert_eq!(cancelled_ids.len(), 420);
    let twice: i64 = sqlx::query_scalar(
        "select count(*) from (select order_id from orders.timeline \
         where order_id = any($1) and kind in ('cancellation', 'stock_released') \
         group by order_id, kind having count(*) > 1) x",
    )
    .bind(&cancelled_ids)
    .fetch_one(&system.db)
    .await?;
    assert_eq!(twice, 0, "no order cancelled or released twice");
    let db = &system.db;
    let processing = &processing;
    wait_until("every reservation released", DEADLINE, || async move {
        let released: i64 = sqlx::query_scalar(
            "select count(distinct order_id) from orders.timeline \
             where order_id = any($1) and kind = 'stock_released'",
        )
        .bind(processing)
        .fetch_one(db)
        .await?;
        Ok(released == i64::try_from(processing.len())?)
    })
    .await?;
    let refused_items = system
        .client()
        .get(
            Some(&admin),
            &format!("/api/v1/admin/jobs/{job_id}/items?outcome=refused&limit=100"),
        )
        .await?;
    assert_eq!(
        refused_items.json["items"].as_array().map(Vec::len),
        Some(60),
        "{:?}",
        refused_items.json
    );
    system.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_jobs_keep_to_the_tokens_stores_and_permissions_and_can_be_cancelled()
-> anyhow::Result<()> {
    // One command a batch, one every two seconds: a job of three orders is still running
    // when it is cancelled.
    let mut system = System::start(1, 0.5).await?;
    let admin = system
        .token("admin@example.com", "order_admin", &[])
        .await?;
    let manager = system
        .token("manager@example.com", "account_manager", &["shop-de"])
        .await?;
    let other_manager = system
        .token("nl@example.com", "account_manager", &["bol-nl"])
        .await?;
    let fulfilment = system
        .token("lager@example.com", "fulfillment_team", &[])
        .await?;
    system.place("SCOPE-DE", 3, false).await?;
    system.place("SCOPE-NL", 2, true).await?;
    system
        .wait_listed(&admin, "q=SCOPE-&status=processing,backordered", 5)
        .await?;
    let de = system.listed(&admin, "store=shop-de").await?;
    let nl = system.listed(&admin, "store=bol-nl").await?;

    // Who may not: no token, a role without the action's permission; a malformed body.
    let hold = json!({"action": "hold", "params": {"reason": "stock check"}, "filter": {}});
    let anonymous = system
        .client()
        .post(None, "/api/v1/admin/orders/bulk", &[], &hold.to_string())
        .await?;
    assert_problem(&anonymous, 401, "no token");
    let cancel = json!({"action": "cancel", "params": {"reason": "x"}, "filter": {}});
    let forbidden = system.bulk(&fulfilment, None, &cancel).await?;
    assert_problem(&forbidden, 403, "the fulfilment team may not cancel");
    for (body, field) in [
        (
            json!({"action": "hold", "params": {"reason": "x"}, "filter": {"status": ["lost"]}}),
            "filter.status",
        ),
        (
            json!({"action": "hold", "params": {}, "filter": {}}),
            "params.reason",
        ),
        (
            json!({"action": "hold", "params": {"reason": "x"}, "filter": {},
                   "order_ids": [de[0].0]}),
            "body",
        ),
    ] {
        let refused = system.bulk(&manager, None, &body).await?;
        assert_problem(&refused, 400, field);
        assert_eq!(refused.json["field"], field, "{refused:?}");
    }

    // An account manager's filter naming a store they do not see: that store's orders are
    // not in the job, and the job says so.
    let mut dry = json!({"action": "hold", "params": {"reason": "stock check"},
                         "filter": {"store": ["shop-de", "bol-nl"]}, "dry_run": true});
    let answer = system.bulk(&manager, None, &dry).await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(
        answer.json["progress"]["would_send"], 3,
        "{:?}",
        answer.json
    );
    assert_eq!(answer.json["progress"]["total"], 3);
    assert!(
        answer.json["notes"].to_string().contains("bol-nl"),
        "{:?}",
        answer.json
    );
    // By ids: another store's order is skipped exactly like one that does not exist.
    let missing = Uuid::now_v7();
    dry = json!({"action": "hold", "params": {"reason": "stock check"},
                 "order_ids": [de[0].0, nl[0].0, missing]});
    let answer = system.bulk(&manager, None, &dry).await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let job_id = answer.json["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let job = system.finished(&manager, &job_id).await?;
    assert_eq!(job["progress"]["applied"], 1, "{job}");
    let items = system.items(&manager, &job_id).await?;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["outcome"], "applied", "{items:?}");
    assert_eq!(items[1]["reason"], "not_visible", "{items:?}");
    assert_eq!(items[2]["reason"], "not_visible", "{items:?}");
    assert_eq!(items[1]["detail"], items[2]["detail"], "no leak: {items:?}");
    assert_eq!(items[1]["store_id"], Value::Null);
    // Seen by its creator and by staff who see every store; not by another manager.
    let theirs = system
        .client()
        .get(
            Some(&other_manager),
            &format!("/api/v1/admin/jobs/{job_id}"),
        )
        .await?;
    assert_problem(&theirs, 404, "another manager's job");
    assert_eq!(
        system.job(&admin, &job_id).await?["job_id"],
        job_id.as_str()
    );
    // Listed the same way: the manager's two jobs, newest first, paged; none of them for
    // the other manager; everyone's for the admin.
    let listed = |token: String, query: &'static str| {
        let client = system.client().clone();
        async move {
            let answer = client
                .get(Some(&token), &format!("/api/v1/admin/jobs{query}"))
                .await?;
            assert_eq!(answer.status, 200, "{answer:?}");
            anyhow::Ok(answer.json)
        }
    };
    let ids = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j["job_id"].as_str().map(str::to_owned))
            .collect()
    };
    let first = listed(manager.clone(), "?limit=1").await?;
    assert_eq!(ids(&first), std::slice::from_ref(&job_id), "{first}");
    assert_eq!(first["jobs"][0]["progress"]["applied"], 1, "{first}");
    let before = first["next_before"].as_str().unwrap_or_default().to_owned();
    let rest = system
        .client()
        .get(
            Some(&manager),
            &format!("/api/v1/admin/jobs?before={before}"),
        )
        .await?;
    assert_eq!(
        ids(&rest.json).len(),
        1,
        "the dry run before it: {:?}",
        rest.json
    );
    assert!(rest.json.get("next_before").is_none(), "{:?}", rest.json);
    assert!(ids(&listed(other_manager.clone(), "").await?).is_empty());
    assert_eq!(
        ids(&listed(admin.clone(), "?state=completed").await?).len(),
        2
    );
    let bad = system
        .client()
        .get(Some(&admin), "/api/v1/admin/jobs?state=done")
        .await?;
    assert_problem(&bad, 400, "state");

    // A running job cancelled: what was not sent yet is skipped; cancelling again is 409.
    let note = json!({"action": "note", "params": {"text": "called the customer"},
                      "filter": {"store": ["shop-de"]}});
    let answer = system.bulk(&manager, None, &note).await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let job_id = answer.json["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sent_sql = "select count(*) from api.job_items where job_id = $1 and state = 'sent'";
    wait_until("the first note sent", DEADLINE, || async {
        Ok(system.scalar(sent_sql, &job_id).await? >= 1)
    })
    .await?;
    let path = format!("/api/v1/admin/jobs/{job_id}/cancel");
    let cancelled = system.client().post(Some(&manager), &path, &[], "").await?;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!(cancelled.json["state"], "cancelled");
    assert_eq!(cancelled.json["cancelled_by"], "manager@example.com");
    let progress = &cancelled.json["progress"];
    assert!(progress["skipped"].as_i64() >= Some(1), "{progress}");
    assert_eq!(progress["pending"], 0, "{progress}");
    let again = system.client().post(Some(&manager), &path, &[], "").await?;
    assert_problem(&again, 409, "a cancelled job");
    let items = system.items(&manager, &job_id).await?;
    assert!(
        items
            .iter()
            .filter(|i| i["outcome"] == "skipped")
            .all(|i| i["reason"] == "job_cancelled"),
        "{items:?}"
    );
    // Nothing is sent after the cancellation.
    let sent_after = system.scalar(sent_sql, &job_id).await?;
    let commands = system
        .scalar(
            "select count(*) from api.commands where job_id = $1",
            &job_id,
        )
        .await?;
    assert_eq!(commands, sent_after);

    // The audit log has the refusals, the jobs and the cancellation.
    let audit = |action: &'static str, outcome: &'static str| {
        let db = system.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from api.audit_log where action = $1 and outcome = $2",
            )
            .bind(action)
            .bind(outcome)
            .fetch_one(&db)
            .await
        }
    };
    assert_eq!(audit("orders.bulk.cancel", "refused").await?, 1);
    assert_eq!(audit("orders.bulk.hold", "invalid").await?, 3);
    assert_eq!(audit("orders.bulk.hold", "accepted").await?, 2);
    assert_eq!(audit("orders.bulk.note", "accepted").await?, 1);
    assert_eq!(audit("jobs.cancel", "accepted").await?, 1);
    system.stop().await
}
