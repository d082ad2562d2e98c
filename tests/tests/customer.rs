//! Documents and the storefront customers' endpoint end to end: every worker on the real
//! broker and database, orders placed by the simulated storefront and marketplace, invoiced
//! and delivered by the simulated carrier, PDFs written to the test world's document store
//! by the invoicing worker, and the api worker's HTTP endpoints called with customer tokens
//! minted as `orderly customer-token` (and a storefront) mints them.
//!
//! What must hold: a customer sees only their own orders of the token's store; their
//! invoice downloads with exactly the bytes of the document store, whose SHA-256 is the one
//! `invoice.issued` announced; anything else is 404 or, for a token that does not
//! authenticate, one and the same 401; the staff's download follows the staff's scope; a
//! damaged object is never served; a PDF only invoicing's table has is served once
//! `orderly documents migrate` copied it. A customer's cancellation request is a command
//! like a staff action: applied by orders before dispatch (the order cancelled), refused
//! with the reason after, sent once per `Idempotency-Key`, only for their own storefront
//! orders, and in the audit log with the customer as actor.

use std::{net::SocketAddr, time::Duration};

use chrono::Utc;
use object_store::{ObjectStore, ObjectStoreExt, path::Path};
use orderly::sim::{self, Publisher};
use orderly_contracts::Message;
use orderly_contracts::messages::InvoiceIssued;
use orderly_runtime::{
    Host,
    testing::{Tap, World, wait_until},
};
use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;

const DEADLINE: Duration = Duration::from_secs(90);

use orderly_tests::http::{Answer, Client, assert_problem as problem};

async fn get(api: SocketAddr, token: Option<&str>, path: &str) -> anyhow::Result<Answer> {
    Client::new(api).get(token, path).await
}

/// POSTs the JSON `body` to `path` with `token` and extra `headers`.
async fn post(
    api: SocketAddr,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<Answer> {
    Client::new(api).post(token, path, headers, body).await
}

/// Whether an order's detail lists an invoice.
fn invoiced(order: &Value) -> bool {
    order["invoices"].as_array().is_some_and(|i| !i.is_empty())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every worker, the simulated carrier, and what a test needs to look.
struct System {
    world: World,
    host: Host,
    publisher: Publisher,
    api: SocketAddr,
    api_db: PgPool,
    documents: Arc<dyn ObjectStore>,
    rng: StdRng,
}

/// The api worker's settings without rate limits: these tests poll every 25 ms, faster than
/// a customer may ask (the limits have their own test, `rate_limits.rs`).
fn unlimited() -> orderly_api::ApiSettings {
    orderly_api::ApiSettings {
        rate_per_second: 0.0,
        address_rate_per_second: 0.0,
        ..orderly_api::ApiSettings::default()
    }
}

impl System {
    /// Every worker; with the simulated carrier, orders are shipped and delivered, without
    /// it they stop at `processing`.
    async fn start(carrier: bool) -> anyhow::Result<Self> {
        let world = World::new().await?;
        let mut host = Host::new(world.settings.clone().with_section("api", unlimited()));
        let running = orderly::workers::start_all(&mut host).await?;
        let api = running
            .iter()
            .find_map(|w| {
                (w.name == orderly_api::NAME)
                    .then_some(w.listening)
                    .flatten()
            })
            .ok_or_else(|| anyhow::anyhow!("the api worker did not say where it listens"))?;
        let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
        if carrier {
            let tick = Duration::from_millis(30);
            sim::carrier(
                &world.connection,
                &world.names,
                publisher.clone(),
                tick,
                false,
                true,
            )
            .await?;
        }
        sim::seed(&publisher, 1).await?;
        sim::store_settings(&publisher).await?;
        sim::wait_for_catalog(&world.settings.database_url, DEADLINE).await?;
        let api_db = world.pool(orderly_api::NAME).await?;
        let documents = world.documents()?;
        Ok(Self {
            world,
            host,
            publisher,
            api,
            api_db,
            documents,
            rng: StdRng::seed_from_u64(1406),
        })
    }

    /// Places an order of one product for `customer`: at the storefront (`shop-de`) or the
    /// marketplace (`bol-nl`).
    async fn place(
        &mut self,
        external_id: &str,
        customer: &str,
        marketplace: bool,
    ) -> anyhow::Result<()> {
        let product = sim::catalog()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
        let mut order =
            sim::order_placed(&mut self.rng, external_id, marketplace, &[(product, 1)], 1);
        order["payload"]["customer"]["id"] = customer.into();
        self.publisher.send(&order).await
    }

    async fn token(&self, store: &str, customer: &str) -> anyhow::Result<String> {
        Ok(
            orderly_api::secrets::customer_token(&self.api_db, store, customer, None, 10)
                .await?
                .token,
        )
    }

    async fn staff_token(
        &self,
        email: &str,
        role: &str,
        stores: &[&str],
    ) -> anyhow::Result<String> {
        let stores: Vec<String> = stores.iter().map(|s| (*s).to_owned()).collect();
        orderly_api::staff::add(&self.api_db, email, role, &stores).await?;
        Ok(orderly_api::staff::issue_token(&self.api_db, email, 1)
            .await?
            .token)
    }

    async fn get(&self, token: Option<&str>, path: &str) -> anyhow::Result<Answer> {
        get(self.api, token, path).await
    }

    /// The `external_order_id`s of the customer's list, every page of `limit`.
    async fn listed(&self, token: &str, limit: u16) -> anyhow::Result<Vec<String>> {
        let mut seen = Vec::new();
        let mut path = format!("/api/v1/store/customer-orders?limit={limit}");
        loop {
            let answer = self.get(Some(token), &path).await?;
            anyhow::ensure!(answer.status == 200, "list: {answer:?}");
            for order in answer.json["orders"].as_array().into_iter().flatten() {
                seen.push(
                    order["external_order_id"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                );
            }
            match answer.json["next_cursor"].as_str() {
                Some(next) => {
                    path = format!("/api/v1/store/customer-orders?limit={limit}&cursor={next}")
                }
                None => return Ok(seen),
            }
            anyhow::ensure!(seen.len() < 100, "paging does not end");
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.host.stop(Duration::from_secs(5)).await;
        self.api_db.close().await;
        self.world.cleanup().await
    }
}

/// The `invoice.issued` of order `order_id`, from the tap (`seen` keeps the others).
async fn issued_for(
    tap: &mut Tap,
    order_id: &str,
    seen: &mut Vec<InvoiceIssued>,
) -> anyhow::Result<InvoiceIssued> {
    loop {
        if let Some(found) = seen.iter().find(|i| i.order_id.to_string() == order_id) {
            return Ok(found.clone());
        }
        seen.push(tap.next_of::<InvoiceIssued>(DEADLINE).await?.payload);
    }
}

#[tokio::test]
async fn a_customer_sees_only_their_own_orders_and_downloads_their_own_invoice()
-> anyhow::Result<()> {
    let mut system = System::start(true).await?;
    let mut tap = system.world.tap(&[InvoiceIssued::TYPE]).await?;
    for store in ["shop-de", "bol-nl"] {
        orderly_api::secrets::rotate(&system.api_db, store, chrono::Duration::hours(1)).await?;
    }
    // Anna has two storefront orders; Ben one; a marketplace buyer with Anna's id one.
    system.place("CUST-ANNA-1", "C-ANNA", false).await?;
    system.place("CUST-BEN-1", "C-BEN", false).await?;
    system.place("CUST-ANNA-2", "C-ANNA", false).await?;
    system.place("CUST-BOL-1", "C-ANNA", true).await?;
    let anna = system.token("shop-de", "C-ANNA").await?;
    let ben = system.token("shop-de", "C-BEN").await?;

    // Anna's first order reaches completed, with its invoice, in her own view.
    let anna_orders = {
        let system = &system;
        let anna = anna.as_str();
        wait_until("Anna's orders listed", DEADLINE, || async move {
            Ok(system.listed(anna, 50).await?.len() == 2)
        })
        .await?;
        system
            .get(Some(anna), "/api/v1/store/customer-orders")
            .await?
            .json
    };
    let ids: Vec<(String, String)> = anna_orders["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["external_order_id"].as_str().unwrap_or("?").to_owned(),
                o["order_id"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = ids.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["CUST-ANNA-2", "CUST-ANNA-1"],
        "newest first, only hers"
    );
    let first = ids[1].1.clone();
    let detail_path = format!("/api/v1/store/customer-orders/{first}");
    {
        let (system, anna, path) = (&system, anna.as_str(), detail_path.as_str());
        wait_until(
            "Anna's order completed and invoiced",
            DEADLINE,
            || async move {
                let order = system.get(Some(anna), path).await?.json;
                Ok(order["status"] == "completed" && invoiced(&order))
            },
        )
        .await?;
    }
    // Paging: one at a time, the same two, once each.
    assert_eq!(
        system.listed(&anna, 1).await?,
        ["CUST-ANNA-2", "CUST-ANNA-1"]
    );
    let listed = system
        .get(Some(&anna), "/api/v1/store/customer-orders")
        .await?;
    // Her own statistics: the two orders her list shows, what they came to.
    let stats = system
        .get(Some(&anna), "/api/v1/store/customer-stats")
        .await?;
    assert_eq!(stats.status, 200, "{stats:?}");
    assert_eq!(stats.json["orders"], 2, "{:?}", stats.json);
    assert_eq!(stats.json["customer_id"], "C-ANNA");
    let totals: rust_decimal::Decimal = listed.json["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["total"].as_str()?.parse::<rust_decimal::Decimal>().ok())
        .sum();
    let spent: rust_decimal::Decimal = stats.json["spent"][0]["total"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    assert_eq!(spent, totals, "{:?}", stats.json);
    let stranger = system.token("shop-de", "C-NOBODY").await?;
    let none = system
        .get(Some(&stranger), "/api/v1/store/customer-stats")
        .await?;
    assert_eq!(none.json["orders"], 0, "{none:?}");
    let row = listed.json["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["order_id"] == first.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["status"], "completed", "{row}");
    assert!(
        row["total"].is_string() && row["placed_at"].is_string(),
        "{row}"
    );
    let tracked = row["shipments"].as_array().cloned().unwrap_or_default();
    assert!(!tracked.is_empty(), "{row}");
    assert!(
        tracked
            .iter()
            .all(|s| s["tracking_number"].is_string() && s["tracking_url"].is_string()),
        "tracking links: {row}"
    );

    let detail = system.get(Some(&anna), &detail_path).await?;
    assert_eq!(detail.status, 200, "{detail:?}");
    assert_eq!(detail.json["external_order_id"], "CUST-ANNA-1");
    assert_eq!(detail.json["lines"].as_array().map(Vec::len), Some(1));
    assert!(detail.json["shipments"][0]["tracking_number"].is_string());
    assert!(detail.json.get("customer").is_none() && detail.json.get("payment").is_none());
    let invoice = detail.json["invoices"][0].clone();
    let download = invoice["download"].as_str().unwrap_or_default().to_owned();
    let document_id = invoice["document_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        download,
        format!("/api/v1/store/customer-orders/{first}/documents/{document_id}")
    );

    // The download: the bytes of the document store, as invoice.issued announced them.
    let mut seen = Vec::new();
    let issued = issued_for(&mut tap, &first, &mut seen).await?;
    let pdf = system.get(Some(&anna), &download).await?;
    assert_eq!(pdf.status, 200, "{pdf:?}");
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.content_length, Some(pdf.bytes.len().to_string()));
    assert_eq!(pdf.etag, Some(format!("\"{}\"", issued.pdf.sha256)));
    assert_eq!(sha256_hex(&pdf.bytes), issued.pdf.sha256);
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let key = Path::parse(issued.pdf.key.as_deref().unwrap_or_default())?;
    assert_eq!(
        key.as_ref(),
        format!("invoices/shop-de/{}.pdf", issued.invoice_number)
    );
    let stored = system.documents.get(&key).await?.bytes().await?;
    assert_eq!(
        pdf.bytes.as_slice(),
        stored.as_ref(),
        "identical to the store's"
    );

    // Ben's order and his invoice are not Anna's: 404, like orders that do not exist.
    let ben_order = {
        let (system, ben) = (&system, ben.as_str());
        wait_until("Ben's order invoiced", DEADLINE, || async move {
            let list = system
                .get(Some(ben), "/api/v1/store/customer-orders")
                .await?;
            let Some(id) = list.json["orders"][0]["order_id"].as_str() else {
                return Ok(false);
            };
            let order = system
                .get(Some(ben), &format!("/api/v1/store/customer-orders/{id}"))
                .await?;
            Ok(invoiced(&order.json))
        })
        .await?;
        let list = system
            .get(Some(ben), "/api/v1/store/customer-orders")
            .await?;
        let id = list.json["orders"][0]["order_id"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        system
            .get(Some(ben), &format!("/api/v1/store/customer-orders/{id}"))
            .await?
            .json
    };
    assert_eq!(ben_order["external_order_id"], "CUST-BEN-1");
    let ben_id = ben_order["order_id"].as_str().unwrap_or("?");
    let ben_download = ben_order["invoices"][0]["download"].as_str().unwrap_or("?");
    let ben_document = ben_order["invoices"][0]["document_id"]
        .as_str()
        .unwrap_or("?");
    for (path, what) in [
        (
            format!("/api/v1/store/customer-orders/{ben_id}"),
            "Ben's order",
        ),
        (ben_download.to_owned(), "Ben's invoice"),
        (
            format!("/api/v1/store/customer-orders/{first}/documents/{ben_document}"),
            "Ben's invoice under Anna's order",
        ),
        (
            format!("/api/v1/store/customer-orders/{}", uuid::Uuid::now_v7()),
            "an order nobody has",
        ),
    ] {
        problem(&system.get(Some(&anna), &path).await?, 404, what);
    }
    assert_eq!(system.get(Some(&ben), ben_download).await?.status, 200);

    // The marketplace buyer with Anna's id is not Anna, in either store.
    let bol_anna = system.token("bol-nl", "C-ANNA").await?;
    assert!(system.listed(&bol_anna, 50).await?.is_empty());
    problem(
        &system.get(Some(&bol_anna), &detail_path).await?,
        404,
        "another store's order",
    );
    problem(
        &system.get(Some(&bol_anna), &download).await?,
        404,
        "another store's invoice",
    );

    // Tokens that do not authenticate: one and the same 401.
    let secret_of_bol =
        orderly_api::secrets::rotate(&system.api_db, "bol-nl", chrono::Duration::hours(1))
            .await?
            .secret;
    let forged = mint_elsewhere("shop-de", "C-ANNA", &secret_of_bol);
    let expired = orderly_api::secrets::customer_token_at(
        &system.api_db,
        "shop-de",
        "C-ANNA",
        None,
        Utc::now() - chrono::Duration::hours(2),
        chrono::Duration::minutes(10),
    )
    .await?
    .token;
    let staff = system
        .staff_token("admin@example.com", "order_admin", &[])
        .await?;
    let mut tampered = anna.clone();
    let changed = if anna.as_bytes()[10] == b'A' {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(10..11, changed);
    let mut refusals = Vec::new();
    for (token, what) in [
        (None, "missing"),
        (Some(forged.as_str()), "signed with another store's secret"),
        (Some(expired.as_str()), "expired"),
        (Some(tampered.as_str()), "tampered"),
        (Some("ocu_not-a-token"), "malformed"),
        (Some(staff.as_str()), "a staff token"),
    ] {
        for path in [
            "/api/v1/store/customer-orders",
            detail_path.as_str(),
            download.as_str(),
        ] {
            let answer = system.get(token, path).await?;
            problem(&answer, 401, what);
            refusals.push(answer.json.to_string());
        }
    }
    refusals.dedup();
    assert_eq!(refusals.len(), 1, "every refusal alike: {refusals:?}");

    // Bad input: 400 naming the parameter.
    for (path, field) in [
        ("/api/v1/store/customer-orders?limit=0", "limit"),
        ("/api/v1/store/customer-orders?status=shipped", "status"),
        ("/api/v1/store/customer-orders?cursor=garbage", "cursor"),
        ("/api/v1/store/customer-orders/not-an-id", "id"),
    ] {
        let answer = system.get(Some(&anna), path).await?;
        problem(&answer, 400, path);
        assert_eq!(answer.json["field"], field, "{path}: {answer:?}");
    }
    let answer = system
        .get(
            Some(&anna),
            &format!("/api/v1/store/customer-orders/{first}/documents/nope"),
        )
        .await?;
    problem(&answer, 400, "a malformed document id");
    assert_eq!(answer.json["field"], "document_id");

    // The staff's download: the order admin's scope has shop-de, bol-nl's manager's not.
    let admin_path = format!("/api/v1/admin/orders/{first}/documents/{document_id}");
    let manager = system
        .staff_token("manager@example.com", "account_manager", &["bol-nl"])
        .await?;
    let by_admin = system.get(Some(&staff), &admin_path).await?;
    assert_eq!(by_admin.status, 200, "{by_admin:?}");
    assert_eq!(by_admin.bytes, pdf.bytes);
    assert_eq!(by_admin.etag, pdf.etag);
    problem(
        &system.get(Some(&manager), &admin_path).await?,
        404,
        "another store's manager",
    );
    problem(
        &system.get(Some(&anna), &admin_path).await?,
        401,
        "a customer on the staff's path",
    );
    let not_modified = reqwest::Client::new()
        .get(format!("http://{}{admin_path}", system.api))
        .bearer_auth(&staff)
        .header("if-none-match", pdf.etag.clone().unwrap_or_default())
        .send()
        .await?;
    assert_eq!(not_modified.status().as_u16(), 304);

    // A damaged object is never served; a missing one is a 404 that says so.
    let mut damaged = stored.to_vec();
    damaged[stored.len() / 2] ^= 0xff;
    system.documents.put(&key, damaged.into()).await?;
    let refused = system.get(Some(&anna), &download).await?;
    problem(&refused, 503, "a damaged object");
    assert!(!refused.bytes.starts_with(b"%PDF"), "{refused:?}");
    system.documents.delete(&key).await?;
    let missing = system.get(Some(&staff), &admin_path).await?;
    problem(&missing, 404, "a missing object");
    assert!(
        missing.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not in the document store")),
        "{missing:?}"
    );

    // A document announced before events carried keys (none projected), whose PDF only
    // invoicing's table has: served once `orderly documents migrate` copied it.
    sqlx::query("update documents set pdf_key = null")
        .execute(&system.api_db)
        .await?;
    problem(
        &system.get(Some(&anna), &download).await?,
        404,
        "not migrated yet",
    );
    let invoicing_db = system.world.pool(orderly_invoicing::NAME).await?;
    let report =
        orderly_invoicing::migrate_pdfs(&invoicing_db, system.documents.as_ref(), false).await?;
    assert_eq!(report.copied, 1, "{report}");
    let again =
        orderly_invoicing::migrate_pdfs(&invoicing_db, system.documents.as_ref(), false).await?;
    assert_eq!((again.copied, again.replaced), (0, 0), "{again}");
    assert_eq!(again.already_stored, again.examined, "{again}");
    invoicing_db.close().await;
    let migrated = system.get(Some(&anna), &download).await?;
    assert_eq!(migrated.status, 200, "{migrated:?}");
    assert_eq!(migrated.bytes, pdf.bytes);

    system.stop().await
}

/// A token for `store`'s customer signed with `secret`, minted independently of the api's
/// code, as a storefront in another language would by the documented algorithm.
fn mint_elsewhere(store: &str, customer: &str, secret: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{KeyInit, Mac};
    let now = Utc::now().timestamp();
    let claims =
        serde_json::json!({"store": store, "customer": customer, "iat": now, "exp": now + 600});
    let signed = format!("ocu_{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return signed;
    };
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Only the api worker: a storefront's token minted by the documented algorithm is taken;
/// a rotated secret stays valid for its grace period, the one before it ends at the next
/// rotation, and a rotation without grace ends it at once.
#[tokio::test]
async fn a_rotated_secret_keeps_working_for_its_grace_period_only() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    let api = orderly_api::start(&mut host, orderly_api::ApiSettings::default()).await?;
    let db = world.pool(orderly_api::NAME).await?;
    let list = "/api/v1/store/customer-orders";
    let status =
        |token: String| async move { anyhow::Ok(get(api, Some(&token), list).await?.status) };

    let none = orderly_api::secrets::customer_token(&db, "shop-de", "C-1", None, 10).await;
    assert!(
        none.is_err_and(|e| e.to_string().contains("store-secret rotate")),
        "a store without a secret mints nothing"
    );
    let hour = chrono::Duration::hours(1);
    let first = orderly_api::secrets::rotate(&db, "shop-de", hour).await?;
    assert_eq!(first.previous_valid_until, None);
    assert!(first.secret.starts_with("ocs_"));
    let by_storefront = mint_elsewhere("shop-de", "C-1", &first.secret);
    assert_eq!(
        status(by_storefront.clone()).await?,
        200,
        "the documented algorithm"
    );
    let minted =
        orderly_api::secrets::customer_token(&db, "shop-de", "C-1", Some("c1@example.com"), 10)
            .await?;
    assert_eq!(status(minted.token.clone()).await?, 200);
    let long = orderly_api::secrets::customer_token(&db, "shop-de", "C-1", None, 61).await;
    assert!(long.is_err(), "an hour at most");

    let second = orderly_api::secrets::rotate(&db, "shop-de", hour).await?;
    assert!(second.previous_valid_until.is_some_and(|t| t > Utc::now()));
    let with_second = mint_elsewhere("shop-de", "C-1", &second.secret);
    assert_eq!(
        status(by_storefront.clone()).await?,
        200,
        "the first, in its grace period"
    );
    assert_eq!(status(with_second.clone()).await?, 200);

    let third = orderly_api::secrets::rotate(&db, "shop-de", hour).await?;
    assert_eq!(
        status(by_storefront).await?,
        401,
        "the first ends at the next rotation"
    );
    assert_eq!(
        status(with_second.clone()).await?,
        200,
        "the second, in its grace period"
    );
    let with_third = mint_elsewhere("shop-de", "C-1", &third.secret);

    orderly_api::secrets::rotate(&db, "shop-de", chrono::Duration::zero()).await?;
    assert_eq!(status(with_second).await?, 401);
    assert_eq!(status(with_third).await?, 401, "no grace: ended at once");

    host.stop(Duration::from_secs(5)).await;
    db.close().await;
    world.cleanup().await
}

impl System {
    async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Answer> {
        post(self.api, token, path, headers, body).await
    }

    /// Waits until the order list at `path` (the customer's or the staff's) shows
    /// `external_id` with `status`; its order id.
    async fn order_listed(
        &self,
        token: &str,
        path: &str,
        external_id: &str,
        status: &str,
    ) -> anyhow::Result<String> {
        let found = || async {
            let list = self.get(Some(token), path).await?;
            Ok::<_, anyhow::Error>(
                list.json["orders"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|o| o["external_order_id"] == external_id && o["status"] == status)
                    .and_then(|o| o["order_id"].as_str())
                    .map(str::to_owned),
            )
        };
        wait_until(&format!("{external_id} {status}"), DEADLINE, || async {
            Ok(found().await?.is_some())
        })
        .await?;
        found()
            .await?
            .ok_or_else(|| anyhow::anyhow!("{external_id} gone from the list"))
    }

    /// Waits until the customer's command `path` is answered; returns it.
    async fn answered(&self, token: &str, path: &str) -> anyhow::Result<Value> {
        wait_until(&format!("{path} answered"), DEADLINE, || async {
            let command = self.get(Some(token), path).await?;
            anyhow::ensure!(command.status == 200, "{command:?}");
            Ok(command.json["status"] != "pending")
        })
        .await?;
        Ok(self.get(Some(token), path).await?.json)
    }

    /// A count from any schema, about one order.
    async fn count(&self, sql: &str, order_id: &str) -> anyhow::Result<i64> {
        let id: uuid::Uuid = order_id.parse()?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(id)
            .fetch_one(&self.api_db)
            .await?)
    }
}

/// How many commands the api sent about an order, and how many request messages.
const COMMANDS: &str = "select count(*) from api.commands where order_id = $1";
const CANCEL_MESSAGES: &str = "select count(*) from api.outbox \
     where message_type = 'order.cancel_requested' and correlation_id = $1::text";

#[tokio::test]
async fn a_customer_cancels_their_own_processing_order_once_and_nobody_elses() -> anyhow::Result<()>
{
    // No carrier: orders stop at `processing`, asked of the warehouse and not yet shipped.
    let mut system = System::start(false).await?;
    let mut secrets = Vec::new();
    for store in ["shop-de", "bol-nl"] {
        let rotated =
            orderly_api::secrets::rotate(&system.api_db, store, chrono::Duration::hours(1)).await?;
        secrets.push(rotated.secret);
    }
    system.place("CANCEL-ANNA-1", "C-ANNA", false).await?;
    system.place("CANCEL-BEN-1", "C-BEN", false).await?;
    system.place("CANCEL-BOL-1", "C-ANNA", true).await?;
    let anna = system.token("shop-de", "C-ANNA").await?;
    let ben = system.token("shop-de", "C-BEN").await?;
    let bol_anna = system.token("bol-nl", "C-ANNA").await?;
    let staff = system
        .staff_token("admin@example.com", "order_admin", &[])
        .await?;

    let mine = "/api/v1/store/customer-orders";
    let order_id = system
        .order_listed(&anna, mine, "CANCEL-ANNA-1", "processing")
        .await?;
    let ben_order = system
        .order_listed(&ben, mine, "CANCEL-BEN-1", "processing")
        .await?;
    let bol_order = system
        .order_listed(
            &staff,
            "/api/v1/admin/orders?store=bol-nl",
            "CANCEL-BOL-1",
            "processing",
        )
        .await?;
    let detail = system
        .get(
            Some(&anna),
            &format!("/api/v1/store/customer-orders/{order_id}"),
        )
        .await?;
    let etag = detail.etag.clone().unwrap_or_default();
    assert!(
        etag.starts_with('"'),
        "an ETag on the customer's order: {detail:?}"
    );
    let cancel = format!("/api/v1/store/customer-orders/{order_id}/cancel");
    let body = r#"{"reason": "Zu lange Lieferzeit"}"#;

    // Refused before anything is sent: tokens that do not authenticate (401), orders that are
    // not theirs (404: another customer's, a marketplace order with the same customer id,
    // one of nobody), bad bodies (400 naming the field), a stale If-Match (412).
    let forged = mint_elsewhere("shop-de", "C-ANNA", &secrets[1]);
    for (token, what) in [
        (None, "no token"),
        (Some(forged.as_str()), "signed with another store's secret"),
        (Some(staff.as_str()), "a staff token"),
    ] {
        problem(&system.post(token, &cancel, &[], body).await?, 401, what);
    }
    for (token, order, what) in [
        (&anna, ben_order.as_str(), "Ben's order"),
        (
            &anna,
            bol_order.as_str(),
            "a marketplace order, from the storefront's customer",
        ),
        (
            &bol_anna,
            bol_order.as_str(),
            "a marketplace order, from the marketplace's store",
        ),
        (&bol_anna, order_id.as_str(), "another store's order"),
    ] {
        let path = format!("/api/v1/store/customer-orders/{order}/cancel");
        problem(
            &system.post(Some(token), &path, &[], body).await?,
            404,
            what,
        );
    }
    let nobodys = format!(
        "/api/v1/store/customer-orders/{}/cancel",
        uuid::Uuid::now_v7()
    );
    problem(
        &system.post(Some(&anna), &nobodys, &[], body).await?,
        404,
        "nobody's order",
    );
    for (bad, field) in [
        (r#"{"reason": "   "}"#, "reason"),
        (r#"{"reason": "x", "colour": "red"}"#, "colour"),
        (
            r#"{"reason": "x", "lines": [{"line_id": "1", "quantity": 0}]}"#,
            "lines[0].quantity",
        ),
        ("", "body"),
    ] {
        let answer = system.post(Some(&anna), &cancel, &[], bad).await?;
        problem(&answer, 400, bad);
        assert_eq!(answer.json["field"], field, "{bad}: {answer:?}");
    }
    let answer = system
        .post(
            Some(&anna),
            "/api/v1/store/customer-orders/not-an-id/cancel",
            &[],
            body,
        )
        .await?;
    assert_eq!(answer.json["field"], "id", "{answer:?}");
    let stale = [("If-Match", "\"0\"")];
    problem(
        &system.post(Some(&anna), &cancel, &stale, body).await?,
        412,
        "a stale If-Match",
    );
    for order in [&order_id, &ben_order, &bol_order] {
        assert_eq!(system.count(COMMANDS, order).await?, 0, "nothing sent");
    }

    // The request: 202 with the customer's own command, applied by orders, the order
    // cancelled as staff see it.
    let key = [("Idempotency-Key", "cancel-1"), ("If-Match", etag.as_str())];
    let first = system.post(Some(&anna), &cancel, &key, body).await?;
    assert_eq!(first.status, 202, "{first:?}");
    let command_id = first.json["command_id"].as_str().unwrap_or("?").to_owned();
    let own = format!("/api/v1/store/customer-commands/{command_id}");
    assert_eq!(first.location.as_deref(), Some(own.as_str()), "{first:?}");
    assert_eq!(first.json["links"]["self"], own.as_str());
    assert_eq!(
        first.json["links"]["order"],
        format!("/api/v1/store/customer-orders/{order_id}")
    );
    assert_eq!(first.json["requested_by"], "C-ANNA");
    assert_eq!(first.json["requested_by_kind"], "customer");
    assert_eq!(first.json["action"], "cancel");
    let command = system.answered(&anna, &own).await?;
    assert_eq!(command["status"], "applied", "{command}");
    let admin_order = format!("/api/v1/admin/orders/{order_id}");
    {
        let (system, staff, path) = (&system, staff.as_str(), admin_order.as_str());
        wait_until("the order cancelled", DEADLINE, || async move {
            Ok(system.get(Some(staff), path).await?.json["status"] == "cancelled")
        })
        .await?;
    }
    let customers_view = system
        .get(
            Some(&anna),
            &format!("/api/v1/store/customer-orders/{order_id}"),
        )
        .await?;
    assert_eq!(
        customers_view.json["status"], "cancelled",
        "{customers_view:?}"
    );

    // The same request with the same key: the same command, nothing sent again. The key is
    // the customer's: Ben's own request under the same key is his own command. The key for
    // another request: 422.
    let again = system.post(Some(&anna), &cancel, &key, body).await?;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(again.json["command_id"], command_id.as_str());
    assert_eq!(again.json["status"], "applied");
    assert_eq!(system.count(COMMANDS, &order_id).await?, 1);
    assert_eq!(
        system.count(CANCEL_MESSAGES, &order_id).await?,
        1,
        "one message"
    );
    let requests = "select count(*) from orders.cancellation_requests \
         where order_id = $1 and requested_by = '{\"kind\": \"customer\", \"id\": \"C-ANNA\"}'";
    assert_eq!(
        system.count(requests, &order_id).await?,
        1,
        "orders received one request, from the customer"
    );
    let bens = system
        .post(
            Some(&ben),
            &format!("/api/v1/store/customer-orders/{ben_order}/cancel"),
            &[("Idempotency-Key", "cancel-1")],
            r#"{"reason": "doch nicht"}"#,
        )
        .await?;
    assert_eq!(bens.status, 202, "{bens:?}");
    assert_ne!(bens.json["command_id"], command_id.as_str());
    let answer = system
        .post(Some(&anna), &cancel, &key, r#"{"reason": "anders"}"#)
        .await?;
    problem(&answer, 422, "the key reused for another request");

    // The command is the customer's: Ben cannot see it; staff can, with their own links.
    problem(
        &system.get(Some(&ben), &own).await?,
        404,
        "Anna's command, for Ben",
    );
    let by_staff = system
        .get(
            Some(&staff),
            &format!("/api/v1/admin/commands/{command_id}"),
        )
        .await?;
    assert_eq!(by_staff.status, 200, "{by_staff:?}");
    assert_eq!(by_staff.json["requested_by_kind"], "customer");
    assert_eq!(
        by_staff.json["links"]["self"],
        format!("/api/v1/admin/commands/{command_id}")
    );

    // The audit log has the customer's requests, whatever their answer; the order's detail
    // shows them.
    let log = system
        .get(
            Some(&staff),
            &format!("/api/v1/admin/audit-log?order_id={order_id}&limit=200"),
        )
        .await?;
    assert_eq!(log.status, 200, "{log:?}");
    let entries = log.json["entries"].as_array().cloned().unwrap_or_default();
    let by_anna = |status: i64, outcome: &str| {
        entries.iter().any(|e| {
            e["actor"] == "customer"
                && e["customer_id"] == "C-ANNA"
                && e["staff_email"].is_null()
                && e["store_id"] == "shop-de"
                && e["action"] == "orders.cancel"
                && e["http_status"] == status
                && e["outcome"] == outcome
        })
    };
    assert!(by_anna(202, "accepted"), "{entries:#?}");
    assert!(by_anna(202, "replayed"), "{entries:#?}");
    assert!(by_anna(412, "refused"), "{entries:#?}");
    assert!(by_anna(400, "invalid"), "{entries:#?}");
    assert!(by_anna(422, "refused"), "{entries:#?}");
    let bens_log = system
        .get(
            Some(&staff),
            &format!("/api/v1/admin/audit-log?order_id={ben_order}&limit=200"),
        )
        .await?;
    assert!(
        bens_log.json["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["customer_id"] == "C-ANNA" && e["http_status"] == 404),
        "Anna's try on Ben's order: {bens_log:?}"
    );
    let detail = system.get(Some(&staff), &admin_order).await?;
    let requests = detail.json["customer_requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        requests
            .iter()
            .any(|r| r["command_id"] == command_id.as_str() && r["command_status"] == "applied"),
        "{requests:#?}"
    );
    assert!(
        detail.json["staff_actions"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "no staff action: {detail:?}"
    );
    system.stop().await
}

#[tokio::test]
async fn a_customers_cancellation_after_dispatch_is_refused_with_the_reason() -> anyhow::Result<()>
{
    let mut system = System::start(true).await?;
    orderly_api::secrets::rotate(&system.api_db, "shop-de", chrono::Duration::hours(1)).await?;
    system.place("CANCEL-LATE-1", "C-LATE", false).await?;
    let token = system.token("shop-de", "C-LATE").await?;
    let order_id = {
        let (system, token) = (&system, token.as_str());
        wait_until("the order shipped", DEADLINE, || async move {
            let list = system
                .get(Some(token), "/api/v1/store/customer-orders")
                .await?;
            Ok(list.json["orders"][0]["shipments"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["dispatched_at"].is_string())))
        })
        .await?;
        system
            .get(Some(token), "/api/v1/store/customer-orders")
            .await?
            .json["orders"][0]["order_id"]
            .as_str()
            .unwrap_or("?")
            .to_owned()
    };
    let answer = system
        .post(
            Some(&token),
            &format!("/api/v1/store/customer-orders/{order_id}/cancel"),
            &[],
            r#"{"reason": "zu spät"}"#,
        )
        .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    let own = answer.location.clone().unwrap_or_default();
    let command = system.answered(&token, &own).await?;
    assert!(orderly_tests::refused_after_dispatch(&command), "{command}");
    let order = system
        .get(
            Some(&token),
            &format!("/api/v1/store/customer-orders/{order_id}"),
        )
        .await?;
    assert_ne!(order.json["status"], "cancelled", "{order:?}");
    system.stop().await
}
