//! An operator's resend (`notification.resend_requested`): the newest customer notification
//! of the order (of the event asked for) is requested again exactly as it was rendered, to
//! the same recipient, under a dedup key of its own, so the same request id resends once.
//! Answered with `order.request_answered` (applied, duplicate, or refused when the order
//! has no such notification), for the command that asked.

use orderly_contracts::messages::{
    NotificationAudience, NotificationRequested, NotificationResendRequested, OrderRequestAnswered,
    RequestOutcome,
};
use orderly_contracts::{Envelope, Message, Validate};
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::info;
use uuid::Uuid;

use crate::request::{RequestFor, request_once};
use crate::store;

#[tracing::instrument(skip_all, fields(message_id = %env.message_id))]
pub(crate) async fn resend(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<NotificationResendRequested>,
) -> Result<(), HandlerError> {
    let p = &env.payload;
    let event = p.event.map(|e| e.as_str());
    let what = event.map_or_else(
        || "notification".to_owned(),
        |e| format!("`{e}` notification"),
    );
    let earlier = store::newest_customer_request(cx.conn, p.order_id, event)
        .await?
        .filter(|r| r.store_id == p.store_id.as_str());
    let (outcome, detail, refused) = match earlier {
        None => (
            RequestOutcome::Refused,
            format!("No {what} was sent to the customer of this order; nothing resent"),
            vec![format!("the order has no customer {what} to resend")],
        ),
        Some(earlier) => {
            let mut again: NotificationRequested = serde_json::from_value(earlier.payload.clone())
                .map_err(|e| {
                    HandlerError::permanent(format!("stored request does not decode: {e}"))
                })?;
            again.request_id = Uuid::now_v7();
            again.retry_of = None;
            let audience: NotificationAudience = earlier
                .audience
                .parse()
                .map_err(|e| HandlerError::permanent(format!("stored audience: {e}")))?;
            let about = RequestFor {
                store_id: &earlier.store_id,
                order_id: earlier.order_id,
                event: &earlier.event,
            };
            let key = format!("resend:{}", p.request_id);
            let first = earlier.first_request_id.unwrap_or(earlier.request_id);
            let new = request_once(
                cx,
                env.message_id,
                &about,
                audience,
                &key,
                again,
                1,
                Some(first),
                None,
            )
            .await?;
            if new {
                info!(order_id = %p.order_id, event = %earlier.event, "notification resent");
                (
                    RequestOutcome::Applied,
                    format!(
                        "The `{}` notification of {} was requested again to {}",
                        earlier.event,
                        earlier.requested_at.format("%Y-%m-%d %H:%M UTC"),
                        earlier.recipient
                    ),
                    Vec::new(),
                )
            } else {
                (
                    RequestOutcome::Duplicate,
                    format!(
                        "Resend request {} received again; already resent",
                        p.request_id
                    ),
                    Vec::new(),
                )
            }
        }
    };
    let answer = OrderRequestAnswered {
        request_type: NotificationResendRequested::TYPE.to_owned(),
        request_id: Some(p.request_id),
        order_id: p.order_id,
        store_id: p.store_id.clone(),
        outcome,
        detail,
        refused,
    };
    answer
        .validate()
        .map_err(|e| HandlerError::permanent(format!("the answer breaks its contract: {e}")))?;
    cx.emit_correlated(p.order_id.to_string(), answer);
    Ok(())
}
