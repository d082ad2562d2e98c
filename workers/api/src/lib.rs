//! The api worker: the operators' admin API and the storefronts' customers' endpoint over
//! HTTP, answered from its own read model of the orders, which it builds from the events the
//! other workers publish, and invoice PDFs served from the shared document store.
//!
//! What it owns, in its own schema (`api`):
//! - the **read model**: orders (header, customer, addresses, lines, money, status), their
//!   status history, shipments, invoices, credit notes and cancellations, written by its
//!   consumer from `order.*`, `shipment.requested|dispatched|delivered|exception`,
//!   `invoice.issued` and `credit_note.issued`;
//! - **commands and the audit log**: every request message it sent and what became of it,
//!   and every action request with who (a staff member and token, or a storefront's
//!   customer), address and answer;
//! - **staff**: accounts with a role (Order Admin, Fulfillment Team, Account Manager, Setup
//!   Manager), the stores each is limited to, and API tokens (their SHA-256, never the
//!   text), with expiry and revocation;
//! - **store secrets**: each store's keys for its customers' tokens (one current, the one it
//!   replaced valid for a grace period).
//!
//! Why it is built this way:
//! - **its own projection, from events only**: it never reads another worker's schema, so
//!   the other workers can change their tables freely and an expensive list query never
//!   slows down an order's saga. The price is lag (the list shows what the events have said
//!   so far) and a read model that knows only what events carry (see `docs/api.md`);
//! - **order-independent**: events about an order arrive in any order and some twice; the
//!   status follows the per-order sequence, the header the order's revision, and every
//!   write is idempotent (`domain::projection`), under the order's lock key;
//! - **nothing leaks**: a token sees only its stores, and an order of another store is a
//!   404 like a missing one; every refused token gets the same 401;
//! - **bad input is the caller's**: every parameter is parsed into a typed value or
//!   refused with a problem+json naming it, never a 500;
//! - **documents from the document store, proven**: an invoice's PDF is read by the key its
//!   event named from the store every worker shares (`orderly_runtime::documents`), never
//!   from the invoicing worker's tables, and served only if its SHA-256 is the one issued;
//! - **customers without accounts here**: a storefront signs a short-lived token for its
//!   customer with its store's secret (`domain::customer_token`), so Orderly keeps nothing
//!   per customer and a token can only show its own store's orders of its own customer.
//! - **rate-limited where it is known whose request it is**: after authentication per
//!   token, and per client address for requests that do not authenticate, so one client
//!   cannot starve the others and tokens cannot be guessed quickly (`domain::rate`, with
//!   `governor` counting).
//!
//! - **actions are commands**: cancel, refund, hold, release, notes, exception resolutions
//!   and resending a notification, and a storefront customer's cancellation request, are
//!   request messages to the worker that owns them (orders, notifications), sent through the
//!   api schema's outbox with a command row and an audit entry in one transaction, by one
//!   code path for staff and customers; `order.request_answered` (caused by the request)
//!   tells the command's outcome. The api never changes an order itself.
//!
//! - **one declaration per endpoint**: the router and the OpenAPI 3.1 document
//!   (`GET /api/v1/openapi.json`, committed as `docs/api/openapi.json`) are built from the
//!   same list, with bodies and answers described by the types the handlers parse and
//!   serialise (decision 0011).
//!
//! - **bulk actions are jobs**: `POST /api/v1/admin/orders/bulk` fixes a job's orders (by
//!   the list's own filters, or ids) and what becomes of each; its commands are sent by a
//!   task of the worker (`jobs`), a batch per transaction, so a crash resumes the job and
//!   no order gets a command twice.
//!
//! - **large exports are jobs**: the streamed export's writer (`export_file`) writes the
//!   file to the document store as a multipart upload (`exports`), under a lease, so a
//!   writer that dies is replaced and a file is shown only once complete.
//!
//! - **analytics from facts**: one narrow row per order (`store::analytics`), recomputed
//!   from the read model in the projection's transaction, so the figures are range reads
//!   of an index, as order-independent as the read model; the last 24 hours' headline on
//!   `/metrics` (`figures`).
//!
//! Not built yet: address changes (see `docs/api.md`).
//!
//! Layers: `domain` (pure: permissions and scopes, filters, cursors, staff and customer
//! tokens, projection rules, action bodies and their messages), [`store`] (its SQL),
//! `handlers` (the projection), `http` (the endpoints), `jobs` (the bulk jobs' sender), and behind the feature `bench` its
//! side of `orderly bench api` (`bench`: a read model of a million orders written with SQL,
//! its size on disk).

#[cfg(feature = "bench")]
pub mod bench;
mod domain;
mod export_file;
mod exports;
mod figures;
mod handlers;
mod http;
mod input;
mod invite;
mod jobs;
mod operations;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use domain::rate::{Rate, Throttle};

pub use handlers::ApiHandler;
pub use input::ApiInput;
pub use store::{secrets, staff};

/// The worker's name: its queue, its schema, and `orderly run api`.
pub const NAME: &str = "api";

/// The OpenAPI 3.1 document of the API, as `GET /api/v1/openapi.json` serves it and
/// `docs/api/openapi.json` holds it (pretty JSON with a final newline).
pub fn openapi_json() -> String {
    http::openapi::pretty()
}

/// The api settings: `[api]` in the configuration file, or `ORDERLY__API__<FIELD>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Where the API listens. The default is loopback on a free port (logged at start), so
    /// nothing is exposed unless a deployment says where (`0.0.0.0:8080`).
    pub listen: String,
    /// The address clients reach this API at (`https://orders.example.com`), for the links
    /// sent to setups' clients by e-mail. Without it, `http://` and the address it listens
    /// on: right for the demo and tests on one machine, not for a deployment.
    pub public_url: Option<String>,
    /// The largest request body accepted, in bytes (64 KiB).
    pub max_body_bytes: usize,
    /// Requests one token (a staff token; for a storefront's customer, all of their tokens
    /// together) may make per second, sustained (20; fractions allowed, 0: no limit). Over
    /// it the answer is 429 with `Retry-After`.
    pub rate_per_second: f64,
    /// Requests one token may make at once, before the sustained rate applies (40).
    pub rate_burst: u32,
    /// Requests that do not authenticate (no token, a wrong one, the OpenAPI document) one
    /// client address may make per second (50; 0: no limit). Looser than a token's, since
    /// many clients can share an address; an address over it is refused whatever it sends
    /// until it is back under, so token guessing runs at this rate at most.
    pub address_rate_per_second: f64,
    /// Such requests one address may make at once (100).
    pub address_rate_burst: u32,
    /// Orders a bulk job sends commands to per transaction (200).
    pub bulk_batch: u32,
    /// Commands bulk jobs send per second at most, so a large job does not crowd the
    /// storefronts' orders out of the orders worker's queue (1,000; 0: no limit).
    pub bulk_rate_per_second: f64,
    /// Whether the admin console (`/admin`) is served over plain HTTP, so its cookies
    /// cannot be `Secure` (a browser would not send them back). Only for development,
    /// the demo and tests on loopback; a deployment serves it over HTTPS (false).
    pub console_insecure_http: bool,
    /// Minutes without a request after which a console session ends (30).
    pub console_idle_minutes: u32,
    /// Hours after sign-in at which a console session ends however busy (12).
    pub console_session_hours: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            public_url: None,
            max_body_bytes: 64 * 1024,
            rate_per_second: 20.0,
            rate_burst: 40,
            address_rate_per_second: 50.0,
            address_rate_burst: 100,
            bulk_batch: 200,
            bulk_rate_per_second: 1_000.0,
            console_insecure_http: false,
            console_idle_minutes: 30,
            console_session_hours: 12,
        }
    }
}

impl ApiSettings {
    /// Refuses settings that cannot work, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_body_bytes > 0,
            "[api] max_body_bytes must be positive"
        );
        if let Some(url) = &self.public_url {
            anyhow::ensure!(
                (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() <= 1024
                    && !url.contains(['?', '#', ' ']),
                "[api] public_url must be an http(s) address without query or fragment, \
                 like https://orders.example.com (got {url:?})"
            );
        }
        self.limits()?;
        anyhow::ensure!(
            (1..=10_000).contains(&self.bulk_batch),
            "[api] bulk_batch must be 1 to 10000"
        );
        anyhow::ensure!(
            self.bulk_rate_per_second.is_finite() && self.bulk_rate_per_second >= 0.0,
            "[api] bulk_rate_per_second must be 0 (no limit) or more"
        );
        anyhow::ensure!(
            (1..=1440).contains(&self.console_idle_minutes),
            "[api] console_idle_minutes must be 1 to 1440"
        );
        anyhow::ensure!(
            (1..=168).contains(&self.console_session_hours),
            "[api] console_session_hours must be 1 to 168"
        );
        Ok(())
    }

    /// The per-token and per-address limits (`None`: off).
    fn limits(&self) -> anyhow::Result<(Option<governor::Quota>, Option<governor::Quota>)> {
        let token = Rate {
            per_second: self.rate_per_second,
            burst: self.rate_burst,
        }
        .quota()
        .map_err(|why| anyhow::anyhow!("[api] rate_per_second, rate_burst: {why}"))?;
        let address = Rate {
            per_second: self.address_rate_per_second,
            burst: self.address_rate_burst,
        }
        .quota()
        .map_err(|why| {
            anyhow::anyhow!("[api] address_rate_per_second, address_rate_burst: {why}")
        })?;
        Ok((token, address))
    }
}

/// Starts the worker on `host`: its consumer (the projection) and its HTTP endpoint on
/// `settings.listen`. Returns the address it listens on.
pub async fn start(
    host: &mut orderly_runtime::Host,
    settings: ApiSettings,
) -> anyhow::Result<SocketAddr> {
    settings.check()?;
    let documents = orderly_runtime::documents::open(&host.settings().section("documents")?)?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("[api] cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    host.start_worker(NAME, ApiHandler::new(&public_url))
        .await?;
    let pool = host.pool_for(NAME).await?;
    let handoff = host.handoff(NAME);
    let (token_limit, address_limit) = settings.limits()?;
    let api = Arc::new(http::Api {
        pool,
        handoff,
        documents,
        throttle: Throttle::new(token_limit, address_limit),
        jobs: tokio::sync::Notify::new(),
        exports: tokio::sync::Notify::new(),
        operations: operations::BrokerAccess {
            url: host.settings().broker_url_for(NAME).to_owned(),
            names: host.names().clone(),
            partitions: orderly_contracts::routing::routes()
                .iter()
                .map(|r| (r.queue, host.settings().consumer_for(r.queue).partitions))
                .collect(),
        },
        health: host.health(),
        console: http::console::ConsoleConfig {
            lifetimes: domain::session::Lifetimes {
                idle: chrono::Duration::minutes(i64::from(settings.console_idle_minutes)),
                absolute: chrono::Duration::hours(i64::from(settings.console_session_hours)),
            },
            secure_cookies: !settings.console_insecure_http,
        },
    });
    let pace = jobs::Pace {
        batch: settings.bulk_batch,
        per_second: settings.bulk_rate_per_second,
    };
    let sender = api.clone();
    host.spawn_task("bulk-jobs", move |shutdown| {
        jobs::run(sender, pace, shutdown)
    });
    let writer = api.clone();
    host.spawn_task("export-jobs", move |shutdown| {
        exports::run(writer, shutdown)
    });
    let (metrics, figures) = (host.metrics(), api.pool.clone());
    host.spawn_task("order-figures", move |shutdown| {
        figures::run(figures, metrics, shutdown)
    });
    let app = http::router(api.clone(), settings.max_body_bytes)
        .into_make_service_with_connect_info::<SocketAddr>();
    // The limits keep one entry per token and address seen lately; forgetting the idle ones
    // now and then keeps that to the clients of the last moments.
    host.spawn_task("admin-api-rate-limits", move |shutdown| async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = every.tick() => api.throttle.forget_idle(),
            }
        }
    });
    let health = host.health();
    host.spawn_task("admin-api", move |shutdown| async move {
        health.set("api.http", true);
        // Graceful: on shutdown, requests in hand finish.
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            warn!(error = %e, "admin API stopped with an error");
        }
        health.set("api.http", false);
    });
    info!(%addr, "admin API listening on /api/v1/admin/orders and /api/v1/store/customer-orders; the console on /admin");
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_section_is_read_from_the_configuration_file() {
        let dir = std::env::temp_dir().join(format!("orderly-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("orderly.toml");
        std::fs::write(
            &file,
            "[api]\nlisten = \"0.0.0.0:8080\"\nrate_per_second = 5\naddress_rate_per_second = 0.5\n",
        )
        .expect("write");
        let settings = orderly_runtime::Settings::load(Some(&file)).expect("loads");
        let api: ApiSettings = settings.section("api").expect("section");
        assert_eq!(api.listen, "0.0.0.0:8080");
        assert_eq!(api.rate_per_second, 5.0, "a whole number is a rate too");
        assert_eq!(api.address_rate_per_second, 0.5);
        assert_eq!(api.max_body_bytes, 64 * 1024, "a default for the rest");
        assert_eq!(api.rate_burst, 40);
        assert!(api.check().is_ok());

        std::fs::write(&file, "[api]\nlisten_on = \"0.0.0.0:8080\"\n").expect("write");
        let err = orderly_runtime::Settings::load(Some(&file))
            .expect("loads")
            .section::<ApiSettings>("api")
            .expect_err("a misspelt key is refused");
        assert!(err.to_string().contains("listen_on"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rate_limits_that_cannot_work_are_refused_naming_the_setting() {
        assert!(ApiSettings::default().check().is_ok());
        let off = ApiSettings {
            rate_per_second: 0.0,
            rate_burst: 0,
            address_rate_per_second: 0.0,
            ..ApiSettings::default()
        };
        assert!(off.check().is_ok(), "0 turns a limit off");
        let no_burst = ApiSettings {
            rate_burst: 0,
            ..ApiSettings::default()
        };
        let err = no_burst.check().expect_err("refused").to_string();
        assert!(err.contains("rate_burst"), "{err}");
        let negative = ApiSettings {
            address_rate_per_second: -1.0,
            ..ApiSettings::default()
        };
        let err = negative.check().expect_err("refused").to_string();
        assert!(err.contains("address_rate_per_second"), "{err}");
    }
}
