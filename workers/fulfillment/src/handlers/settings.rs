//! `store.invoice_settings_updated`: a store's invoice timing (on order or on shipment),
//! kept when its revision is higher than the one stored. Handled alone: it is rare, and
//! keyed by the store rather than by an order.

use orderly_contracts::Envelope;
use orderly_contracts::messages::StoreInvoiceSettingsUpdated;
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::info;

use crate::store;

#[tracing::instrument(skip_all, fields(store_id = %env.payload.store_id, revision = env.payload.revision))]
pub(super) async fn settings_updated(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<StoreInvoiceSettingsUpdated>,
) -> Result<(), HandlerError> {
    let s = &env.payload;
    let revision = i64::try_from(s.revision)
        .map_err(|_| HandlerError::permanent(format!("revision {} is out of range", s.revision)))?;
    let applied =
        store::upsert_store_settings(cx.conn, &s.store_id, revision, s.invoice_timing).await?;
    if applied {
        info!(timing = %s.invoice_timing, "store invoice timing updated");
    } else {
        info!("older or repeated store settings ignored");
    }
    Ok(())
}
