//! `orderly demo`: every worker in this process, a simulated outside world around them, a
//! live progress line, and a summary of what happened. Runs in its own namespace (`demo`) and
//! database (`orderly_demo`), recreated each run so the summary is about this run only.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use crate::sim::{self, Observed, Publisher, envelope};
use orderly_runtime::{Host, Settings, broker::Names, db, topology};

/// Prints the next numbered step of the story.
fn step(counter: &mut u32, line: &str) {
    *counter += 1;
    println!("{counter}. {line}");
}

fn say(line: &str) {
    println!("  {line}");
}

fn progress(started: Instant, seen: &Observed) {
    let counts = seen.status_counts();
    let line: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "[{:>5.1}s] {} orders | {}",
        started.elapsed().as_secs_f64(),
        seen.orders.len(),
        line.join(" | ")
    );
}

/// Runs the demo.
pub(crate) async fn run(mut settings: Settings, orders: usize, seed: u64) -> anyhow::Result<()> {
    settings.namespace = "demo".into();
    let base = settings
        .database_url
        .rsplit_once('/')
        .map_or(settings.database_url.clone(), |(b, _)| b.to_owned());
    settings.database_url = format!("{base}/orderly_demo");
    settings.retry.initial_delay_ms = 200;
    settings.retry.max_delay_ms = 2_000;
    settings.http_addr = "127.0.0.1:0".into();
    // The demo serves the admin console over plain HTTP (on loopback unless the
    // configuration says otherwise), where its cookies cannot be `Secure`.
    let mut api: orderly_api::ApiSettings = settings.section("api")?;
    api.console_insecure_http = true;
    settings = settings.with_section("api", api);

    println!(
        "Orderly demo: storefront, marketplace connector, operator and carrier around the workers.\n"
    );
    println!("Setting up: fresh database orderly_demo, broker namespace `demo`.");
    db::drop_database(&settings.database_url).await?;
    db::ensure_database(&settings.database_url).await?;
    db::migrate(&settings.database_url).await?;
    let names = Names::new("demo");
    let connection = sim::connect(&settings.broker_url, &names).await?;
    {
        // Start from empty queues: a previous run may have left messages behind.
        let ch = connection.create_channel().await?;
        let specs = topology::standard_specs(&settings);
        let _ = topology::delete(&ch, &names, &specs).await;
    }
    let mut host = Host::new(settings.clone());
    host.declare(&topology::standard_specs(&settings)).await?;
    let workers = crate::workers::start_all(&mut host).await?;
    let addr = host.serve_http().await?;
    let names_running: Vec<&str> = workers.iter().map(|w| w.name).collect();
    println!(
        "Workers running in this process: {} (metrics on http://{addr}/metrics).\n",
        names_running.join(", ")
    );
    if let Some(api) = workers
        .iter()
        .find(|w| w.name == orderly_api::NAME)
        .and_then(|w| w.listening)
    {
        let token = demo_token(&settings).await?;
        println!("Admin API on http://{api} (an Order Admin's token for this demo: {token}). Try:");
        println!(
            "  curl -H 'Authorization: Bearer {token}' 'http://{api}/api/v1/admin/orders?limit=5&count=true'"
        );
        println!(
            "Admin console on http://{api}/admin (sign in as {DEMO_EMAIL}, password {DEMO_PASSWORD}).\n"
        );
    }

    let publisher = Publisher::new(&connection, names.clone()).await?;
    let mut events = sim::tap(&connection, &names, sim::OBSERVED).await?;
    sim::carrier(
        &connection,
        &names,
        publisher.clone(),
        Duration::from_millis(400),
        true,
        true,
    )
    .await?;
    let mut seen = Observed::default();
    let mut rng = sim::rng(seed);
    let catalog = sim::catalog();
    let started = Instant::now();
    let mut steps = 0;

    step(
        &mut steps,
        &format!(
            "The product catalog ({} products) and stock in two warehouses arrive.",
            catalog.len()
        ),
    );
    sim::seed(&publisher, 1).await?;
    sim::wait_for_catalog(&settings.database_url, Duration::from_secs(30)).await?;
    step(
        &mut steps,
        "Both stores' setup managers send their settings: seller and VAT id for invoices, name, language and staff contact for notifications.",
    );
    sim::store_settings(&publisher).await?;
    step(
        &mut steps,
        "The catalog adds a service: a listings setup (onboarding form, build, client review, QA), set up after the order.",
    );
    publisher
        .send(&sim::service_upserted(
            sim::SERVICE_SKU,
            "Listings setup, 40 products",
            sim::listings_template(1),
        ))
        .await?;
    sim::wait_for_service(
        &settings.database_url,
        sim::SERVICE_SKU,
        Duration::from_secs(30),
    )
    .await?;
    let mut setup_events = sim::tap(
        &connection,
        &names,
        &["setup.status_changed", "setup.client_invited"],
    )
    .await?;

    step(
        &mut steps,
        &format!("The storefront takes {orders} checkouts."),
    );
    let mut storefront_ids = Vec::new();
    for i in 0..orders {
        let n_lines = rng.random_range(1..=3);
        let mut lines = Vec::new();
        for _ in 0..n_lines {
            let p = catalog[rng.random_range(0..catalog.len())].clone();
            if p.sku == "LAMP-DESK-01"
                || lines
                    .iter()
                    .any(|(l, _): &(sim::Product, u32)| l.sku == p.sku)
            {
                continue;
            }
            lines.push((p, rng.random_range(1..=2)));
        }
        if lines.is_empty() {
            lines.push((catalog[0].clone(), 1));
        }
        let ext = format!("SF-{}", 100_000 + i);
        publisher
            .send(&sim::order_placed(&mut rng, &ext, false, &lines, 1))
            .await?;
        storefront_ids.push(ext);
    }
    let lamp = catalog
        .iter()
        .find(|p| p.sku == "LAMP-DESK-01")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("catalog"))?;
    say(
        "SF-LAMP-BIG: 4 desk lamps; Berlin has 3, Amsterdam 2: no warehouse can serve it alone, so it ships from both (split shipment).",
    );
    publisher
        .send(&sim::order_placed(
            &mut rng,
            "SF-LAMP-BIG",
            false,
            &[(lamp.clone(), 4)],
            1,
        ))
        .await?;
    // A later customer: the workers promise nothing about the order in which independent
    // orders placed in the same instant are served, so the story waits for the first one's
    // reservation, as a real second checkout a little later would.
    let wait = Instant::now() + Duration::from_secs(30);
    while !seen.has_stage("SF-LAMP-BIG", &["reserved", "backordered"]) && Instant::now() < wait {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            seen.apply(&m);
        }
    }
    say("SF-LAMP-LATE: 3 more lamps; only 1 left: backordered until goods arrive.");
    publisher
        .send(&sim::order_placed(
            &mut rng,
            "SF-LAMP-LATE",
            false,
            &[(lamp.clone(), 3)],
            1,
        ))
        .await?;
    let mut bad = sim::order_placed(&mut rng, "SF-BROKEN", false, &[(catalog[0].clone(), 1)], 1);
    bad["payload"]["total"] = json!("999.99");
    say(
        "SF-BROKEN: a checkout whose total does not add up: rejected with the reason, dead-lettered.",
    );
    if let Err(e) = publisher.send(&bad).await {
        // The simulator validates before sending; publish the broken order raw on purpose.
        say(&format!(
            "    (the contract check says: {e}) — sending it anyway to show the worker's rejection"
        ));
        crate::ops::publish_unchecked(
            &settings,
            &names,
            "order.placed",
            &serde_json::to_vec(&bad)?,
        )
        .await?;
    }

    say(
        "SF-SETUP-1: a mug and a listings setup. The mug ships; the order completes only when the setup does.",
    );
    publisher
        .send(&sim::order_placed(
            &mut rng,
            "SF-SETUP-1",
            false,
            &[(catalog[0].clone(), 1), (sim::service_product(), 1)],
            1,
        ))
        .await?;

    step(
        &mut steps,
        "The marketplace connector imports orders by GTIN, one with an unknown GTIN.",
    );
    let unknown_gtin = sim::gtin("871000000001");
    let mut mp = sim::order_placed(
        &mut rng,
        "BOL-7001",
        true,
        &[(catalog[1].clone(), 1), (catalog[4].clone(), 2)],
        1,
    );
    mp["payload"]["lines"][1]["gtin"] = json!(unknown_gtin);
    publisher.send(&mp).await?;
    say(&format!(
        "BOL-7001: GTIN {unknown_gtin} matches no product: the order goes on hold."
    ));
    let mut again = mp.clone();
    again["message_id"] = json!(Uuid::now_v7());
    publisher.send(&again).await?;
    say("BOL-7001 is pushed again unchanged (connectors do that): no duplicate order.");
    publisher
        .send(&sim::order_placed(
            &mut rng,
            "BOL-7002",
            true,
            &[(catalog[2].clone(), 1)],
            1,
        ))
        .await?;

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_progress = Instant::now();
    let mut resolved_hold = false;
    let mut second_import = false;
    let mut restocked = false;
    let mut cancel_sent = false;
    let mut late_cancel_sent = false;
    loop {
        while let Ok(m) = events.try_recv() {
            seen.apply(&m);
        }
        // The client and the setup manager answer each step of the listings setup.
        while let Ok(m) = setup_events.try_recv() {
            let p = &m.payload;
            if m.message_type == "setup.client_invited" {
                say(&format!(
                    "SF-SETUP-1 client e-mailed ({}): {}",
                    p["task"].as_str().unwrap_or_default(),
                    p["url"].as_str().unwrap_or_default()
                ));
                continue;
            }
            let (status, loops) = (
                p["to"].as_str().unwrap_or_default(),
                p["loops"].as_u64().unwrap_or_default(),
            );
            say(&format!(
                "SF-SETUP-1 setup: {} ({status}).",
                p["detail"].as_str().unwrap_or_default()
            ));
            if let Some((action, role, extra, what)) = sim::listings_next_step(status, loops) {
                say(&format!("    next: {what}."));
                publisher
                    .send(&sim::setup_request(
                        p["setup_id"].as_str().unwrap_or_default(),
                        p["order_id"].as_str().unwrap_or_default(),
                        action,
                        role,
                        &extra,
                    ))
                    .await?;
            }
        }
        if !resolved_hold && let Some((order_id, exceptions, store)) = seen.on_hold.first().cloned()
        {
            {
                let exception_id = exceptions
                    .first()
                    .and_then(|e| e["exception_id"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                step(
                    &mut steps,
                    "An operator resolves the exception: the GTIN is SOCK-WOOL-42, and Orderly should remember that.",
                );
                publisher
                    .send(&envelope(
                        "order.exception_resolved",
                        "admin-api",
                        &order_id.to_string(),
                        json!({"order_id": order_id, "store_id": store, "exception_id": exception_id,
                               "resolution": "map_to_sku", "sku": "SOCK-WOOL-42", "remember_mapping": true,
                               "resolved_by": {"kind": "operator", "id": "anna.becker"}}),
                    ))
                    .await?;
                resolved_hold = true;
            }
        }
        if resolved_hold
            && !second_import
            && seen.status_is(
                "BOL-7001",
                &[
                    "accepted",
                    "processing",
                    "partially_shipped",
                    "shipped",
                    "delivered",
                    "completed",
                ],
            )
        {
            let mut mp2 =
                sim::order_placed(&mut rng, "BOL-7003", true, &[(catalog[4].clone(), 1)], 1);
            mp2["payload"]["lines"][0]["gtin"] = json!(unknown_gtin);
            publisher.send(&mp2).await?;
            say(
                "BOL-7003 arrives with the same new GTIN: matched through the remembered mapping, no hold.",
            );
            second_import = true;
        }
        if !cancel_sent
            && let Some(ext) = storefront_ids
                .iter()
                .find(|e| seen.status_is(e, &["accepted", "processing"]))
        {
            {
                step(
                    &mut steps,
                    &format!(
                        "A customer cancels {ext} before it ships: stock is released, the shipment cancelled."
                    ),
                );
                publisher.send(&cancel(ext, "Changed my mind")).await?;
                cancel_sent = true;
            }
        }
        if !late_cancel_sent
            && let Some(ext) = storefront_ids
                .iter()
                .find(|e| seen.status_is(e, &["completed"]))
        {
            {
                step(
                    &mut steps,
                    &format!(
                        "Another customer tries to cancel {ext} after delivery: refused, with the reason on its timeline."
                    ),
                );
                publisher.send(&cancel(ext, "Too late")).await?;
                late_cancel_sent = true;
            }
        }
        let others_settled = seen
            .orders
            .values()
            .filter(|o| o.external_id != "SF-LAMP-LATE")
            .all(|o| o.status == "completed" || o.status == "cancelled");
        let backordered = seen.status_is("SF-LAMP-LATE", &["backordered"]);
        if !restocked
            && backordered
            && (others_settled || started.elapsed() > Duration::from_secs(6))
        {
            step(
                &mut steps,
                "Goods received in Berlin: 10 desk lamps. The backordered order is served.",
            );
            publisher
                .send(&envelope(
                    "inventory.adjusted",
                    "wms",
                    "berlin-1/LAMP-DESK-01",
                    json!({"warehouse_id": "berlin-1", "sku": "LAMP-DESK-01", "delta": 10, "reason": "goods_received",
                           "source": "wms", "reference": "GR-2026-0042", "as_of": chrono::Utc::now()}),
                ))
                .await?;
            restocked = true;
        }
        if last_progress.elapsed() > Duration::from_secs(1) {
            progress(started, &seen);
            last_progress = Instant::now();
        }
        let total_expected = orders + 2 + 3 + 1;
        let settled = seen.orders.len() >= total_expected
            && seen
                .orders
                .values()
                .all(|o| o.status == "completed" || o.status == "cancelled")
            && late_cancel_sent
            && restocked;
        if settled {
            break;
        }
        if Instant::now() > deadline {
            println!(
                "\nThe demo's time is up (120 s) with orders still moving; the summary shows where they are."
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last stock levels and statuses arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(m) = events.try_recv() {
        seen.apply(&m);
    }
    progress(started, &seen);
    crate::report::summary(&seen, &host, &settings, &names).await?;
    host.stop(Duration::from_secs(10)).await;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

fn cancel(external_id: &str, reason: &str) -> serde_json::Value {
    envelope(
        "order.cancel_requested",
        "storefront",
        &format!("shop-de/storefront/{external_id}"),
        json!({"request_id": Uuid::now_v7(), "store_id": "shop-de",
               "order": {"channel": "storefront", "external_order_id": external_id},
               "requested_by": {"kind": "customer"}, "reason": reason}),
    )
}

/// The demo's staff member (an Order Admin) and their console password: a demo database
/// only, recreated each run.
const DEMO_EMAIL: &str = "demo@orderly.example";
const DEMO_PASSWORD: &str = "orderly-demo-2026";

/// A staff member for the demo (`demo@orderly.example`, Order Admin) with a console
/// password and a token valid for a day, through the api worker's own functions (what
/// `orderly staff add|password|token` call).
async fn demo_token(settings: &Settings) -> anyhow::Result<String> {
    let pool = db::connect(&settings.database_url, orderly_api::NAME, 1).await?;
    orderly_api::staff::add(&pool, DEMO_EMAIL, "order_admin", &[]).await?;
    orderly_api::staff::set_password(&pool, DEMO_EMAIL, DEMO_PASSWORD).await?;
    let issued = orderly_api::staff::issue_token(&pool, DEMO_EMAIL, 1).await?;
    // The storefront's secret: it signs its customers' tokens and setups' clients' links.
    orderly_api::secrets::rotate(&pool, "shop-de", chrono::Duration::zero()).await?;
    pool.close().await;
    Ok(issued.token)
}
