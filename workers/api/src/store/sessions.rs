//! The admin console's sessions: opened at sign-in, found by the cookie's secret on every
//! request, touched as they are used, ended at sign-out. Whether one may still be used is
//! `domain::session`'s rule; this module only reads and writes the rows.
//!
//! Like an API token, the cookie's secret is never stored: only its SHA-256.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::PgPool;
use uuid::Uuid;

use super::staff::Principal;
use crate::domain::access::{Role, Scope};
use crate::domain::session::{Lifetimes, SessionTimes};
use crate::domain::token;

/// What sign-in needs of a staff member.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) staff_id: Uuid,
    pub(crate) email: String,
    /// `None` until `orderly staff password` set one.
    pub(crate) password_hash: Option<String>,
}

/// The active staff member with `email` (as typed: trimmed, any case).
pub(crate) async fn credentials(
    pool: &PgPool,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row: Option<(Uuid, String, Option<String>)> = sqlx::query_as(
        "select staff_id, email, password_hash from staff where email = $1 and active",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(staff_id, email, password_hash)| Credentials {
        staff_id,
        email,
        password_hash,
    }))
}

/// A session just opened: the only time its secret is known.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) session_id: Uuid,
    /// The cookie's value.
    pub(crate) secret: String,
}

/// 32 random bytes as text (base64url, as an API token's).
fn random_text() -> String {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    token::mint(random)
}

/// Opens a session for `staff_id`, ending at `lifetimes.absolute` from now at the latest.
pub(crate) async fn open(
    pool: &PgPool,
    staff_id: Uuid,
    lifetimes: Lifetimes,
) -> Result<Opened, sqlx::Error> {
    let session_id = Uuid::now_v7();
    let secret = random_text();
    let mut csrf = [0u8; 32];
    rand::rng().fill_bytes(&mut csrf);
    sqlx::query(
        "insert into console_sessions (session_id, staff_id, sha256, csrf_token, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(session_id)
    .bind(staff_id)
    .bind(token::hash(&secret).as_slice())
    .bind(hex::encode(csrf))
    .bind(Utc::now() + lifetimes.absolute)
    .execute(pool)
    .await?;
    Ok(Opened { session_id, secret })
}

/// A session as found by its cookie, with its holder as the API's authentication sees a
/// token's (`token_id` is the session's id).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    pub(crate) csrf_token: String,
    pub(crate) times: SessionTimes,
    /// Whether its holder is still active with a known role.
    pub(crate) holder_active: bool,
}

/// The session whose cookie holds `secret`, if there is one (whatever its standing).
pub(crate) async fn find(pool: &PgPool, secret: &str) -> Result<Option<Session>, sqlx::Error> {
    type Row = (
        Uuid,
        Uuid,
        String,
        String,
        bool,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Vec<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select c.session_id, s.staff_id, s.email, s.role, s.active, c.csrf_token, \
           c.last_seen_at, c.expires_at, c.ended_at, \
           array(select store_id from staff_stores ss where ss.staff_id = s.staff_id) \
         from console_sessions c join staff s using (staff_id) where c.sha256 = $1",
    )
    .bind(token::hash(secret).as_slice())
    .fetch_optional(pool)
    .await?;
    let Some((
        session_id,
        staff_id,
        email,
        role,
        active,
        csrf_token,
        last_seen_at,
        expires_at,
        ended_at,
        stores,
    )) = row
    else {
        return Ok(None);
    };
    let parsed: Option<Role> = role.parse().ok();
    let role = parsed.unwrap_or(Role::SetupManager);
    Ok(Some(Session {
        principal: Principal {
            staff_id,
            token_id: session_id,
            email,
            role,
            scope: Scope::of(role, stores.into_iter().collect()),
        },
        csrf_token,
        times: SessionTimes {
            last_seen_at,
            expires_at,
            ended_at,
        },
        holder_active: active && parsed.is_some(),
    }))
}

/// Records that session `session_id` was used now (what its idle lifetime counts from).
pub(crate) async fn touch(pool: &PgPool, session_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("update console_sessions set last_seen_at = now() where session_id = $1")
        .bind(session_id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Ends session `session_id` (sign-out).
pub(crate) async fn end(pool: &PgPool, session_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update console_sessions set ended_at = now() where session_id = $1 and ended_at is null",
    )
    .bind(session_id)
    .execute(pool)
    .await
    .map(|_| ())
}
