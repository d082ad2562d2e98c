//! The store registry (`store.upserted`): the newest revision of a store wins. New orders
//! are taken only for declared, open stores (the flow checks; see `domain::store_refusal`).

use orderly_contracts::messages::StoreUpserted;
use orderly_runtime::{HandlerContext, HandlerError};

use crate::store;

pub(super) async fn store_upserted(
    s: &StoreUpserted,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let applied = store::upsert_store(cx.conn, s).await?;
    tracing::info!(store_id = %s.store_id, revision = s.revision, active = s.active, applied, "store upserted");
    Ok(())
}
