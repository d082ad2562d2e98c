//! Liveness, readiness and metrics over HTTP: `/healthz`, `/readyz`, `/metrics`.
//!
//! Readiness is the conjunction of named checks that the consumers and relays flip as their
//! broker and database sessions come and go, so an orchestrator stops routing to (or scales
//! on) a process that is paused waiting for PostgreSQL.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Named readiness checks of one process.
#[derive(Debug, Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Health {
    /// Sets check `name`.
    pub fn set(&self, name: &str, ok: bool) {
        if let Ok(mut checks) = self.checks.lock() {
            checks.insert(name.to_owned(), ok);
        }
    }

    /// True when every check passes (and there is at least one).
    pub fn ready(&self) -> bool {
        self.checks
            .lock()
            .map(|c| !c.is_empty() && c.values().all(|ok| *ok))
            .unwrap_or(false)
    }

    /// Every check and whether it is up.
    pub fn checks(&self) -> Vec<(String, bool)> {
        self.checks
            .lock()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// `name: ok|down` lines.
    pub fn report(&self) -> String {
        self.checks
            .lock()
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}: {}\n", if *v { "ok" } else { "down" }))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Arc<Metrics>,
}

/// Serves the endpoints on `addr` until `shutdown`. Returns the bound address (port 0 picks one).
pub async fn serve(
    addr: &str,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move {
                let code = if s.health.ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, s.health.report())
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                // Readiness as of this scrape, so an alert can watch it.
                let checks = s.health.checks();
                s.metrics
                    .readiness(checks.iter().map(|(name, up)| (name.as_str(), *up)));
                s.metrics.render()
            }),
        )
        .with_state(AppState { health, metrics });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(local)
}
