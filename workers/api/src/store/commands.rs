//! Commands (the request messages the API sent, and their outcomes) and the audit log.
//!
//! A command is written with its message in the api schema's outbox and its audit entry in
//! one transaction: the message exists exactly when the command does, and the relay
//! publishes it. The order's row in the read model is read `for share` in that transaction,
//! so the `If-Match` check and the command see the same order.
//!
//! Every command and audit entry has one actor ([`By`]): a staff member with the token they
//! used, or a storefront's customer (their store and id). The tables' checks keep it one.

use chrono::{DateTime, Utc};
use orderly_runtime::outbox::{self, OutboxMessage, Written};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use super::customers::{Owner, owned_by};
use crate::domain::audit::AuditQuery;
use crate::domain::command::Outgoing;

/// Who sent a command or made an audited request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum By<'a> {
    /// A staff member, with the token they used.
    Staff {
        staff_id: Uuid,
        token_id: Uuid,
        email: &'a str,
    },
    /// A storefront's customer: their store (whose secret signed their token) and their id
    /// there.
    Customer(Owner<'a>),
}

impl By<'_> {
    fn staff(&self) -> (Option<Uuid>, Option<Uuid>, Option<&str>) {
        match *self {
            Self::Staff {
                staff_id,
                token_id,
                email,
            } => (Some(staff_id), Some(token_id), Some(email)),
            Self::Customer(_) => (None, None, None),
        }
    }

    fn customer(&self) -> Option<Owner<'_>> {
        match *self {
            Self::Staff { .. } => None,
            Self::Customer(owner) => Some(owner),
        }
    }
}

/// Who sent a command or made an audited request: a staff member or a storefront's
/// customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RequesterKind {
    /// A staff member, with an API token.
    Staff,
    /// A storefront's customer, with a customer token.
    Customer,
}

impl TryFrom<String> for RequesterKind {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "staff" => Ok(Self::Staff),
            "customer" => Ok(Self::Customer),
            other => Err(format!("`{other}` is not an actor kind")),
        }
    }
}

/// A command as the API shows it (`/api/v1/admin/commands/{id}`, and a customer's own at
/// `/api/v1/store/customer-commands/{id}`).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Command {
    /// Its id, which is also the id of the request message it sent.
    pub(crate) command_id: Uuid,
    /// `cancel`, `refund`, `note`, `resolve_exception`, `resend_notification`, `hold` or
    /// `release`.
    pub(crate) action: String,
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    /// The request message it sent (`order.cancel_requested`, ...).
    pub(crate) message_type: String,
    /// `pending` until the owning worker answers, then `applied`, `partially_applied`,
    /// `refused` or `duplicate`.
    pub(crate) status: String,
    /// The answer, in words.
    pub(crate) detail: Option<String>,
    /// What was not done, and why (a refusal, or a partial one).
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) refused: Option<serde_json::Value>,
    /// Who asked: the staff member's e-mail, or the customer's id in the store.
    pub(crate) requested_by: String,
    /// Whether a staff member or the order's customer asked.
    #[sqlx(try_from = "String")]
    pub(crate) requested_by_kind: RequesterKind,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) answered_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub(crate) request_sha256: String,
    /// The customer who asked, for a customer's command (who may see it).
    #[serde(skip)]
    pub(crate) customer_id: Option<String>,
}

/// The columns of [`Command`] (a constant: safe to format into a statement).
const COMMAND_COLUMNS: &str = "c.command_id, c.action, c.order_id, c.store_id, c.message_type, \
     c.status, c.detail, c.refused, coalesce(s.email, c.customer_id) as requested_by, \
     case when c.customer_id is null then 'staff' else 'customer' end as requested_by_kind, \
     c.created_at, c.answered_at, c.request_sha256, c.customer_id";

/// One command.
pub(crate) async fn command(pool: &PgPool, command_id: Uuid) -> sqlx::Result<Option<Command>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "select {COMMAND_COLUMNS} from commands c left join staff s using (staff_id) \
         where c.command_id = $1"
    )))
    .bind(command_id)
    .fetch_optional(pool)
    .await
}

/// The command `by` sent under `key`, if any: a staff member's keys are theirs, a
/// customer's are theirs in their store.
pub(crate) async fn by_key(
    conn: &mut PgConnection,
    by: By<'_>,
    key: &str,
) -> sqlx::Result<Option<Command>> {
    match by {
        By::Staff { staff_id, .. } => {
            sqlx::query_as(AssertSqlSafe(format!(
                "select {COMMAND_COLUMNS} from commands c left join staff s using (staff_id) \
                 where c.staff_id = $1 and c.idempotency_key = $2"
            )))
            .bind(staff_id)
            .bind(key)
            .fetch_optional(conn)
            .await
        }
        By::Customer(owner) => {
            sqlx::query_as(AssertSqlSafe(format!(
                "select {COMMAND_COLUMNS} from commands c left join staff s using (staff_id) \
                 where c.store_id = $1 and c.customer_id = $2 and c.idempotency_key = $3"
            )))
            .bind(owner.store_id)
            .bind(owner.customer_id)
            .bind(key)
            .fetch_optional(conn)
            .await
        }
    }
}

/// An order as a command needs it: its store and status sequence, read `for share` (the
/// projection cannot move it until the command is written).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct OrderAt {
    pub(crate) store_id: String,
    pub(crate) status_sequence: i64,
}

/// With `owner`, only if the order is that customer's ([`owned_by!`], as every customer's
/// read).
pub(crate) async fn order_for_command(
    conn: &mut PgConnection,
    order_id: Uuid,
    owner: Option<Owner<'_>>,
) -> sqlx::Result<Option<OrderAt>> {
    sqlx::query_as(concat!(
        "select o.store_id, o.status_sequence from orders o \
         where o.order_id = $3 and ($1::text is null or (",
        owned_by!(),
        ")) for share of o"
    ))
    .bind(owner.map(|o| o.store_id))
    .bind(owner.map(|o| o.customer_id))
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// The order holding the order item exception `exception_id` (as `order.on_hold` listed it).
pub(crate) async fn order_of_exception(
    conn: &mut PgConnection,
    exception_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select order_id from orders \
         where exceptions @> jsonb_build_array(jsonb_build_object('exception_id', $1::text))",
    )
    .bind(exception_id.to_string())
    .fetch_optional(conn)
    .await
}

/// The order of setup `setup_id` and the setup's sequence (its `ETag`), from the read model.
pub(crate) async fn order_of_setup(
    conn: &mut PgConnection,
    setup_id: Uuid,
) -> sqlx::Result<Option<(Uuid, i32)>> {
    sqlx::query_as("select order_id, sequence from setups where setup_id = $1")
        .bind(setup_id)
        .fetch_optional(conn)
        .await
}

/// What a new command is.
#[derive(Debug)]
pub(crate) struct NewCommand<'a> {
    pub(crate) command_id: Uuid,
    pub(crate) by: By<'a>,
    pub(crate) idempotency_key: Option<&'a str>,
    pub(crate) request_sha256: &'a str,
    pub(crate) action: &'static str,
    pub(crate) order_id: Uuid,
    pub(crate) store_id: &'a str,
    pub(crate) message: &'a Outgoing,
}

/// Writes the command and its message to the outbox. `None` when the actor's
/// `Idempotency-Key` was taken meanwhile (by a concurrent request with the same key: the
/// caller answers with that one).
pub(crate) async fn insert(
    conn: &mut PgConnection,
    c: &NewCommand<'_>,
) -> sqlx::Result<Option<Vec<Written>>> {
    let (staff_id, token_id, _) = c.by.staff();
    // No conflict target: the table's only unique keys besides the (new, time-ordered)
    // command id are the two idempotency keys, one per kind of actor, and a conflict on
    // either is the same key taken meanwhile.
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into commands (command_id, staff_id, token_id, customer_id, idempotency_key, \
           request_sha256, action, order_id, store_id, message_type, payload) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         on conflict do nothing \
         returning command_id",
    )
    .bind(c.command_id)
    .bind(staff_id)
    .bind(token_id)
    .bind(c.by.customer().map(|o| o.customer_id))
    .bind(c.idempotency_key)
    .bind(c.request_sha256)
    .bind(c.action)
    .bind(c.order_id)
    .bind(c.store_id)
    .bind(c.message.message_type)
    .bind(Json(&c.message.payload))
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() {
        return Ok(None);
    }
    let message = OutboxMessage {
        message_id: c.command_id,
        message_type: c.message.message_type.to_owned(),
        correlation_id: c.message.correlation_id.clone(),
        body: c.message.envelope.clone(),
    };
    outbox::insert(conn, &[message]).await.map(Some)
}

/// The answer to a command (`order.request_answered`, caused by its message). The first
/// answer stands; an answer to a message that is not one of the API's commands (a
/// storefront's cancellation, say) changes nothing.
pub(crate) async fn record_answer(
    conn: &mut PgConnection,
    command_id: Uuid,
    status: &str,
    detail: &str,
    refused: &[String],
    answered_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update commands set status = $2, detail = $3, refused = $4, answered_at = $5 \
         where command_id = $1 and status = 'pending'",
    )
    .bind(command_id)
    .bind(status)
    .bind(detail)
    .bind(Json(refused))
    .bind(answered_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// After the answer to an exception resolution the API sent: the exception is no longer
/// open in the read model (the order stays on hold until `order.accepted`, when orders has
/// closed every exception).
pub(crate) async fn close_resolved_exception(
    conn: &mut PgConnection,
    command_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "update orders o set exceptions = coalesce( \
           (select jsonb_agg(e) from jsonb_array_elements(o.exceptions) e \
            where e->>'exception_id' <> c.payload->>'exception_id'), '[]'::jsonb) \
         from commands c \
         where c.command_id = $1 and c.action = 'resolve_exception' \
           and c.status in ('applied', 'duplicate') \
           and o.order_id = c.order_id and jsonb_typeof(o.exceptions) = 'array'",
    )
    .bind(command_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One action request for the audit log.
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry<'a> {
    pub(crate) by: By<'a>,
    pub(crate) action: &'a str,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) store_id: Option<&'a str>,
    /// What else the action was on (an exception id).
    pub(crate) target: Option<String>,
    pub(crate) command_id: Option<Uuid>,
    pub(crate) client_addr: Option<String>,
    pub(crate) forwarded_for: Option<String>,
    pub(crate) http_status: u16,
    /// `accepted`, `replayed`, `refused`, `invalid`.
    pub(crate) outcome: &'static str,
    pub(crate) detail: Option<String>,
}

/// Appends an entry to the audit log.
pub(crate) async fn audit(conn: &mut PgConnection, e: &AuditEntry<'_>) -> sqlx::Result<()> {
    let (staff_id, token_id, email) = e.by.staff();
    sqlx::query(
        "insert into audit_log (staff_id, staff_email, token_id, customer_id, action, order_id, \
           store_id, target, command_id, client_addr, forwarded_for, http_status, outcome, \
           detail) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(staff_id)
    .bind(email)
    .bind(token_id)
    .bind(e.by.customer().map(|o| o.customer_id))
    .bind(e.action)
    .bind(e.order_id)
    .bind(e.store_id)
    .bind(e.target.as_deref())
    .bind(e.command_id)
    .bind(e.client_addr.as_deref())
    .bind(e.forwarded_for.as_deref())
    .bind(i16::try_from(e.http_status).unwrap_or(i16::MAX))
    .bind(e.outcome)
    .bind(e.detail.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// An audit log entry as the API shows it, with its command's outcome.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "AuditEntry")]
pub(crate) struct AuditRow {
    pub(crate) entry_id: i64,
    pub(crate) at: DateTime<Utc>,
    /// A staff member (`staff_email`, `token_id`) or a storefront's customer
    /// (`customer_id`, of `store_id`).
    #[sqlx(try_from = "String")]
    pub(crate) actor: RequesterKind,
    pub(crate) staff_email: Option<String>,
    pub(crate) token_id: Option<Uuid>,
    pub(crate) customer_id: Option<String>,
    pub(crate) action: String,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) store_id: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) command_id: Option<Uuid>,
    pub(crate) command_status: Option<String>,
    pub(crate) client_addr: Option<String>,
    pub(crate) forwarded_for: Option<String>,
    pub(crate) http_status: i16,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
}

/// The audit log, newest first; only entries of `stores` when given (an entry without a
/// store, such as an action on an order nobody could see, is shown to unrestricted callers
/// only).
pub(crate) async fn audit_log(
    conn: &mut PgConnection,
    stores: Option<&[String]>,
    q: &AuditQuery,
) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "select a.entry_id, a.at, \
           case when a.customer_id is null then 'staff' else 'customer' end as actor, \
           a.staff_email, a.token_id, a.customer_id, a.action, a.order_id, a.store_id, \
           a.target, a.command_id, c.status as command_status, a.client_addr, a.forwarded_for, \
           a.http_status, a.outcome, a.detail \
         from audit_log a left join commands c using (command_id) \
         where ($1::text[] is null or a.store_id = any($1)) \
           and ($2::uuid is null or a.order_id = $2) \
           and ($3::text is null or a.staff_email = $3) \
           and ($4::bigint is null or a.entry_id < $4) \
         order by a.entry_id desc limit $5",
    )
    .bind(stores)
    .bind(q.order_id)
    .bind(q.staff_email.as_deref())
    .bind(q.before)
    .bind(q.limit)
    .fetch_all(conn)
    .await
}
