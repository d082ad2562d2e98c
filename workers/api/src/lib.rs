//! The api worker: the operators' admin API over HTTP, answered from its own read model of
//! the orders, which it builds from the events the other workers publish.
//!
//! What it owns, in its own schema (`api`):
//! - the **read model**: orders (header, customer, addresses, lines, money, status), their
//!   status history, shipments, invoices, credit notes and cancellations, written by its
//!   consumer from `order.*`, `shipment.requested|dispatched|delivered|exception`,
//!   `invoice.issued` and `credit_note.issued`;
//! - **commands and the audit log**: every request message it sent and what became of it,
//!   and every staff action with who, token, address and answer;
//! - **staff**: accounts with a role (Order Admin, Fulfillment Team, Account Manager, Setup
//!   Manager), the stores each is limited to, and API tokens (their SHA-256, never the
//!   text), with expiry and revocation.
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
//!   refused with a problem+json naming it, never a 500.
//!
//! - **actions are commands**: cancel, refund, notes and exception resolutions are request
//!   messages to the orders worker, sent through the api schema's outbox with a command row
//!   and an audit entry in one transaction; `order.request_answered` (caused by the
//!   request) tells the command's outcome. The api never changes an order itself.
//!
//! Not built yet: the customers' endpoint, documents (PDF downloads), hold/release, address
//! changes and resending notifications (see `docs/api.md`).
//!
//! Layers: `domain` (pure: permissions and scopes, filters, cursors, tokens, projection
//! rules, action bodies and their messages), [`store`] (its SQL), `handlers` (the projection), `http` (the endpoints),
//! and behind the feature `bench` its side of `orderly bench api` (`bench`: a read model of a
//! million orders written with SQL, its size on disk).

#[cfg(feature = "bench")]
pub mod bench;
mod domain;
mod handlers;
mod http;
mod input;
pub mod store;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use handlers::ApiHandler;
pub use input::ApiInput;
pub use store::staff;

/// The worker's name: its queue, its schema, and `orderly run api`.
pub const NAME: &str = "api";

/// The api settings: `[api]` in the configuration file, or `ORDERLY__API__<FIELD>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Where the API listens. The default is loopback on a free port (logged at start), so
    /// nothing is exposed unless a deployment says where (`0.0.0.0:8080`).
    pub listen: String,
    /// The largest request body accepted, in bytes (64 KiB).
    pub max_body_bytes: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            max_body_bytes: 64 * 1024,
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
        Ok(())
    }
}

/// Starts the worker on `host`: its consumer (the projection) and its HTTP endpoint on
/// `settings.listen`. Returns the address it listens on.
pub async fn start(
    host: &mut orderly_runtime::Host,
    settings: ApiSettings,
) -> anyhow::Result<SocketAddr> {
    settings.check()?;
    host.start_worker(NAME, ApiHandler).await?;
    let pool = host.pool_for(NAME).await?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("[api] cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let handoff = host.handoff(NAME);
    let app = http::router(
        Arc::new(http::Api { pool, handoff }),
        settings.max_body_bytes,
    )
    .into_make_service_with_connect_info::<SocketAddr>();
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
    info!(%addr, "admin API listening on /api/v1/admin/orders");
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
        std::fs::write(&file, "[api]\nlisten = \"0.0.0.0:8080\"\n").expect("write");
        let settings = orderly_runtime::Settings::load(Some(&file)).expect("loads");
        let api: ApiSettings = settings.section("api").expect("section");
        assert_eq!(api.listen, "0.0.0.0:8080");
        assert_eq!(api.max_body_bytes, 64 * 1024, "a default for the rest");
        assert!(api.check().is_ok());

        std::fs::write(&file, "[api]\nlisten_on = \"0.0.0.0:8080\"\n").expect("write");
        let err = orderly_runtime::Settings::load(Some(&file))
            .expect("loads")
            .section::<ApiSettings>("api")
            .expect_err("a misspelt key is refused");
        assert!(err.to_string().contains("listen_on"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
