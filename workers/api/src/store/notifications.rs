//! The messages sent to an order's customer (`notifications`): what was asked of the
//! notification system and what it answered, merged by request id in whatever order the
//! events arrive (`domain::notice`), written a batch at a time; read by the order's detail.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::notice::Notice;

/// Writes `notices` (one per request: [`crate::domain::notice::merged`]) in one
/// statement, each merged with what is written by the same rule: what was asked once, the
/// first delivery, the newest failure.
pub(crate) async fn write(conn: &mut PgConnection, notices: &[Notice]) -> sqlx::Result<()> {
    if notices.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Notice) -> Option<String>| notices.iter().map(f).collect::<Vec<_>>();
    let time = |f: fn(&Notice) -> Option<DateTime<Utc>>| notices.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into notifications as n (request_id, order_id, channel, template, recipient, \
           subject, locale, requested_at, sent_at, provider, failed_at, error, permanent) \
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
           $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[], \
           $11::timestamptz[], $12::text[], $13::boolean[]) \
         on conflict (request_id) do update set \
           recipient = case when n.requested_at is null then excluded.recipient \
                            else n.recipient end, \
           subject = case when n.requested_at is null then excluded.subject else n.subject end, \
           locale = case when n.requested_at is null then excluded.locale else n.locale end, \
           requested_at = coalesce(n.requested_at, excluded.requested_at), \
           provider = case when excluded.sent_at < coalesce(n.sent_at, 'infinity') \
                           then excluded.provider else n.provider end, \
           sent_at = least(n.sent_at, excluded.sent_at), \
           error = case when excluded.failed_at > coalesce(n.failed_at, '-infinity') \
                        then excluded.error else n.error end, \
           permanent = case when excluded.failed_at > coalesce(n.failed_at, '-infinity') \
                            then excluded.permanent else n.permanent end, \
           failed_at = greatest(n.failed_at, excluded.failed_at)",
    )
    .bind(notices.iter().map(|n| n.request_id).collect::<Vec<Uuid>>())
    .bind(notices.iter().map(|n| n.order_id).collect::<Vec<Uuid>>())
    .bind(column(|n| Some(n.channel.clone())))
    .bind(column(|n| Some(n.template.clone())))
    .bind(column(|n| n.asked.as_ref().map(|a| a.recipient.clone())))
    .bind(column(|n| n.asked.as_ref().and_then(|a| a.subject.clone())))
    .bind(column(|n| n.asked.as_ref().map(|a| a.locale.clone())))
    .bind(time(|n| n.asked.as_ref().map(|a| a.at)))
    .bind(time(|n| n.sent.as_ref().map(|s| s.at)))
    .bind(column(|n| n.sent.as_ref().and_then(|s| s.provider.clone())))
    .bind(time(|n| n.failed.as_ref().map(|f| f.at)))
    .bind(column(|n| n.failed.as_ref().map(|f| f.error.clone())))
    .bind(
        notices
            .iter()
            .map(|n| n.failed.as_ref().map(|f| f.permanent))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A message to the customer, as an order's detail shows it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Notification {
    pub(crate) request_id: Uuid,
    /// `email`, `sms`, ...
    pub(crate) channel: String,
    /// What it was about (`order.shipped`, ...).
    pub(crate) template: String,
    /// `sent` (the notification system delivered it), `failed` (it gave up, or failed and
    /// has not delivered since), or `requested` (no answer yet).
    pub(crate) status: String,
    pub(crate) recipient: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) requested_at: Option<DateTime<Utc>>,
    pub(crate) sent_at: Option<DateTime<Utc>>,
    pub(crate) provider: Option<String>,
    pub(crate) failed_at: Option<DateTime<Utc>>,
    pub(crate) error: Option<String>,
    pub(crate) permanent: Option<bool>,
}

/// The messages about `order_id`, in the order they were asked for.
pub(crate) async fn of(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as(
        "select request_id, channel, template, \
           case when sent_at is not null then 'sent' when failed_at is not null then 'failed' \
                else 'requested' end as status, \
           recipient, subject, locale, requested_at, sent_at, provider, failed_at, error, \
           permanent \
         from notifications where order_id = $1 \
         order by coalesce(requested_at, sent_at, failed_at), request_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}
