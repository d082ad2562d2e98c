//! What operators (the CLI) can ask of the notifications worker. Reads take the worker's
//! pool (search path `notifications`); the only write is [`replay_delivery`], which puts a
//! webhook delivery back in the queue (it belongs to this worker's own dispatcher, so no
//! message is needed for it).

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, Rule};
use crate::store::{self, DeliveryRow, EndpointRow, RequestRow, SuppressionRow, UnknownReceipt};

/// The rules in force for a store (its own, and the defaults it did not replace), and its
/// settings' revision (`None`: the store sent none, only defaults apply).
pub async fn rules(pool: &PgPool, store_id: &str) -> anyhow::Result<(Option<u64>, Vec<Rule>)> {
    let mut conn = pool.acquire().await?;
    let settings = store::load_settings(&mut conn, store_id).await?;
    Ok((
        settings.as_ref().map(|s| s.revision),
        domain::effective_rules(settings.as_ref()),
    ))
}

/// The store's webhook endpoints (secrets left out).
pub async fn endpoints(pool: &PgPool, store_id: &str) -> anyhow::Result<Vec<EndpointRow>> {
    let mut conn = pool.acquire().await?;
    Ok(store::endpoints(&mut conn, store_id).await?)
}

/// The store's webhook delivery log, newest first.
pub async fn deliveries(
    pool: &PgPool,
    store_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<DeliveryRow>> {
    let mut conn = pool.acquire().await?;
    Ok(store::deliveries(&mut conn, store_id, limit).await?)
}

/// Sends a delivery again (pending, fresh attempt budget, due now). Errors if there is no
/// such delivery.
pub async fn replay_delivery(pool: &PgPool, delivery_id: Uuid) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    if store::replay_delivery(&mut conn, delivery_id).await? {
        Ok(())
    } else {
        anyhow::bail!("no webhook delivery {delivery_id}")
    }
}

/// Notifications that failed for good (permanently, or out of attempts), newest first.
pub async fn failed_notifications(pool: &PgPool, limit: i64) -> anyhow::Result<Vec<RequestRow>> {
    let mut conn = pool.acquire().await?;
    Ok(store::failed_requests(&mut conn, limit).await?)
}

/// Receipts that named a request this worker never made, newest first.
pub async fn unknown_receipts(pool: &PgPool, limit: i64) -> anyhow::Result<Vec<UnknownReceipt>> {
    let mut conn = pool.acquire().await?;
    Ok(store::unknown_receipts(&mut conn, limit).await?)
}

/// An order's notification requests, in the order they were made.
pub async fn order_requests(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Vec<RequestRow>> {
    let mut conn = pool.acquire().await?;
    Ok(store::requests_for_order(&mut conn, order_id).await?)
}

/// An order's suppressed notifications, with the reasons.
pub async fn order_suppressions(
    pool: &PgPool,
    order_id: Uuid,
) -> anyhow::Result<Vec<SuppressionRow>> {
    let mut conn = pool.acquire().await?;
    Ok(store::suppressions_for_order(&mut conn, order_id).await?)
}
