//! The messages sent to an order's customer (`notifications`): what was asked of the
//! notification system and what it answered, merged by request id in whatever order the
//! events arrive; read by the order's detail.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `notification.requested` about an order.
#[derive(Debug)]
pub(crate) struct Asked<'a> {
    pub(crate) request_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) channel: &'a str,
    pub(crate) template: &'a str,
    pub(crate) recipient: &'a str,
    pub(crate) subject: Option<&'a str>,
    pub(crate) locale: &'a str,
    pub(crate) at: DateTime<Utc>,
}

/// Records what was asked (a repeat changes nothing).
pub(crate) async fn record_asked(conn: &mut PgConnection, a: &Asked<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into notifications (request_id, order_id, channel, template, recipient, \
           subject, locale, requested_at) values ($1, $2, $3, $4, $5, $6, $7, $8) \
         on conflict (request_id) do update set recipient = excluded.recipient, \
           subject = excluded.subject, locale = excluded.locale, \
           requested_at = excluded.requested_at \
         where notifications.requested_at is null",
    )
    .bind(a.request_id)
    .bind(a.order_id)
    .bind(a.channel)
    .bind(a.template)
    .bind(a.recipient)
    .bind(a.subject)
    .bind(a.locale)
    .bind(a.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the notification system answered.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    Sent {
        at: DateTime<Utc>,
        provider: Option<&'a str>,
    },
    Failed {
        at: DateTime<Utc>,
        error: &'a str,
        permanent: bool,
    },
}

/// The request an answer is about: id, order, channel, template.
pub(crate) type Request<'a> = (Uuid, Uuid, &'a str, &'a str);

/// Records an answer: the first delivery, the newest failure.
pub(crate) async fn record_outcome(
    conn: &mut PgConnection,
    (request_id, order_id, channel, template): Request<'_>,
    outcome: &Outcome<'_>,
) -> sqlx::Result<()> {
    let q = match outcome {
        Outcome::Sent { at, provider } => sqlx::query(
            "insert into notifications (request_id, order_id, channel, template, sent_at, \
               provider) values ($1, $2, $3, $4, $5, $6) \
             on conflict (request_id) do update set sent_at = excluded.sent_at, \
               provider = excluded.provider \
             where notifications.sent_at is null or notifications.sent_at > excluded.sent_at",
        )
        .bind(request_id)
        .bind(order_id)
        .bind(channel)
        .bind(template)
        .bind(*at)
        .bind(*provider),
        Outcome::Failed {
            at,
            error,
            permanent,
        } => sqlx::query(
            "insert into notifications (request_id, order_id, channel, template, failed_at, \
               error, permanent) values ($1, $2, $3, $4, $5, $6, $7) \
             on conflict (request_id) do update set failed_at = excluded.failed_at, \
               error = excluded.error, permanent = excluded.permanent \
             where notifications.failed_at is null \
                or notifications.failed_at < excluded.failed_at",
        )
        .bind(request_id)
        .bind(order_id)
        .bind(channel)
        .bind(template)
        .bind(*at)
        .bind(*error)
        .bind(*permanent),
    };
    q.execute(conn).await?;
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
