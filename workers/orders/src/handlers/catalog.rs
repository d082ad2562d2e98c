//! The catalog projection (`catalog.product_upserted`): the newest version of a product
//! wins, and a product that arrives (or becomes active) matches the lines held for it,
//! through the same path as an operator's resolution ([`super::exceptions`]).

use anyhow::anyhow;
use orderly_contracts::messages::{
    Actor, ExceptionResolution, OrderExceptionResolved, ProductUpserted, RequestOutcome,
};
use orderly_contracts::types::{Gtin, StoreId};
use orderly_runtime::{HandlerContext, HandlerError};

use super::exceptions::resolve_exception;
use crate::store::{self, Cause};

pub(super) async fn product_upserted(
    p: &ProductUpserted,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let applied = store::upsert_product(cx.conn, p).await?;
    tracing::debug!(sku = %p.sku, applied, "catalog product upserted");
    if !applied || !p.active {
        return Ok(());
    }
    // Orders held because this product was unknown (or inactive) when they came in: the
    // catalog now answers what an operator would have, so their lines are matched now, each
    // through the same path as an operator's resolution (checks, timeline, and the order
    // proceeding once nothing is open). A line the checks refuse stays held, with the reason
    // on its timeline.
    let gtins: Vec<String> = p.gtins.iter().map(Gtin::to_gtin14).collect();
    for (exception_id, order_id, store_id) in
        store::open_exceptions_for_product(cx.conn, p.sku.as_str(), &gtins).await?
    {
        let resolution = OrderExceptionResolved {
            order_id,
            store_id: StoreId::parse(&store_id)
                .map_err(|e| HandlerError::transient(anyhow!("stored store id {store_id}: {e}")))?,
            exception_id,
            resolution: ExceptionResolution::MapToSku,
            sku: Some(p.sku.clone()),
            remember_mapping: false,
            resolved_by: Actor {
                kind: orderly_contracts::messages::ActorKind::System,
                id: Some("catalog".to_owned()),
            },
            note: Some(format!("the catalog published {}", p.sku)),
        };
        let answer = resolve_exception(&resolution, cx, cause).await?;
        if answer.outcome == RequestOutcome::Refused {
            tracing::info!(%order_id, why = ?answer.refused, "held line still held");
        } else {
            tracing::info!(%order_id, sku = %p.sku, "held line matched by the catalog");
        }
    }
    Ok(())
}
