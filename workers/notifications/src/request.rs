//! Recording a notification request once and emitting it: the one way every path that
//! asks for a notification (a status event, a document, an operator's resend) does it, so
//! the dedup key, the stored request and the emitted message always agree.

use orderly_contracts::messages::{NotificationAudience, NotificationRequested};
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::{debug, info};
use uuid::Uuid;

use crate::domain;
use crate::store::{self, NewRequest};

/// What a request is about.
pub(crate) struct RequestFor<'a> {
    pub(crate) store_id: &'a str,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) event: &'a str,
}

/// Records the request under `key` and emits it, unless the key exists. Returns whether it
/// was requested.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn request_once(
    cx: &mut HandlerContext<'_>,
    cause: Uuid,
    event: &RequestFor<'_>,
    audience: NotificationAudience,
    key: &str,
    request: NotificationRequested,
    attempt: i32,
    first_request_id: Option<Uuid>,
    mark: Option<domain::Watermark>,
) -> Result<bool, HandlerError> {
    let payload = serde_json::to_value(&request)
        .map_err(|e| HandlerError::permanent(format!("cannot encode the request: {e}")))?;
    let new = store::insert_request(
        cx.conn,
        &NewRequest {
            request_id: request.request_id,
            dedup_key: key,
            store_id: event.store_id,
            order_id: event.order_id,
            event: event.event,
            audience: audience.as_str(),
            template: &request.template,
            channel: request.channel.as_str(),
            recipient: &request.recipient,
            locale: request.locale.as_str(),
            attempt,
            first_request_id,
            cause_message_id: cause,
            payload: &payload,
            mark,
        },
    )
    .await?;
    if new {
        info!(request_id = %request.request_id, template = %request.template, "notification requested");
        let correlation = event
            .order_id
            .map_or_else(|| event.store_id.to_owned(), |id| id.to_string());
        cx.emit_correlated(correlation, request);
    } else {
        debug!(key, "already requested");
    }
    Ok(new)
}
