//! The headline order figures of the last 24 hours on `/metrics`
//! (`orderly_order_figures_last_24h`): read from the analytics facts every 30 seconds, so a
//! dashboard or an alert rule sees orders, cancellations, exceptions, backorders and gross
//! revenue per store and currency without calling the API.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orderly_runtime::metrics::Metrics;
use rust_decimal::prelude::ToPrimitive;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::store::analytics;

/// How often the figures are read.
const EVERY: Duration = Duration::from_secs(30);

/// The figures of one store and currency.
const FIGURES: [&str; 5] = ["orders", "cancelled", "exceptions", "backordered", "gross"];

/// Sets the figures every [`EVERY`] until shutdown; a store and currency without orders in
/// the last 24 hours any more goes back to 0.
pub(crate) async fn run(pool: PgPool, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(EVERY);
    let mut shown: BTreeSet<(String, String)> = BTreeSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        let since = Utc::now() - chrono::Duration::hours(24);
        let rows = match analytics::headline(&pool, since).await {
            Ok(rows) => rows,
            Err(e) => {
                warn!(error = %e, "order figures for /metrics not read");
                continue;
            }
        };
        let mut now_shown = BTreeSet::new();
        for row in rows {
            #[allow(clippy::cast_precision_loss)]
            let values = [
                row.orders as f64,
                row.cancelled as f64,
                row.exceptions as f64,
                row.backordered as f64,
                row.gross.to_f64().unwrap_or(f64::NAN),
            ];
            for (figure, value) in FIGURES.into_iter().zip(values) {
                metrics.order_figure(figure, &row.store_id, &row.currency, value);
            }
            now_shown.insert((row.store_id, row.currency));
        }
        for (store, currency) in shown.difference(&now_shown) {
            for figure in FIGURES {
                metrics.order_figure(figure, store, currency, 0.0);
            }
        }
        shown = now_shown;
    }
}
