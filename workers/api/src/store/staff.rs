//! Staff accounts, their stores and their API tokens: what `orderly staff add|grant|token|revoke`
//! change, and what authentication reads.
//!
//! A token's text is never stored: only its SHA-256 and its first characters (to name it).
//! A token authenticates while it is neither expired nor revoked and its holder is active.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use orderly_contracts::types::{EmailAddress, StoreId};
use rand::RngCore;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::access::{Role, Scope};
use crate::domain::token;

/// Why a staff command could not be done: the operator's mistake, said plainly.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// An argument that is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A staff member as added.
#[derive(Debug, Clone, Serialize)]
pub struct StaffMember {
    /// Their id.
    pub staff_id: Uuid,
    /// Their e-mail (lowercase), by which commands name them.
    pub email: String,
    /// Their role.
    pub role: String,
    /// The stores they are limited to (none: all, except for account managers).
    pub stores: Vec<String>,
}

/// Adds a staff member with `role`, limited to `stores`. Refuses an e-mail already known,
/// and an account manager without stores (they would see nothing).
pub async fn add(
    pool: &PgPool,
    email: &str,
    role: &str,
    stores: &[String],
) -> Result<StaffMember, StaffError> {
    let email = EmailAddress::parse(email.trim())
        .map_err(|e| StaffError::Invalid(format!("e-mail: {}", e.reason())))?
        .as_str()
        .to_lowercase();
    let role: Role = role.parse().map_err(StaffError::Invalid)?;
    let stores = parse_stores(stores)?;
    if role.needs_assigned_stores() && stores.is_empty() {
        return Err(StaffError::Invalid(format!(
            "an {role} sees only the stores assigned to them: give at least one --store"
        )));
    }
    let staff_id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "insert into staff (staff_id, email, role) values ($1, $2, $3) on conflict (email) do nothing",
    )
    .bind(staff_id)
    .bind(&email)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StaffError::Invalid(format!(
            "{email} is already a staff member"
        )));
    }
    insert_stores(&mut tx, staff_id, &stores).await?;
    tx.commit().await?;
    Ok(StaffMember {
        staff_id,
        email,
        role: role.as_str().to_owned(),
        stores: stores.into_iter().collect(),
    })
}

/// Changes a staff member's role and the stores they are limited to: `role` replaces the
/// role when given, `add_stores` and `remove_stores` change the list. Takes effect on their
/// next request (their tokens stay valid). Refuses an unknown e-mail, a bad role or store,
/// and leaving an account manager without stores.
pub async fn grant(
    pool: &PgPool,
    email: &str,
    role: Option<&str>,
    add_stores: &[String],
    remove_stores: &[String],
) -> Result<StaffMember, StaffError> {
    let email = email.trim().to_lowercase();
    let (adding, removing) = (parse_stores(add_stores)?, parse_stores(remove_stores)?);
    let role: Option<Role> = role
        .map(str::parse)
        .transpose()
        .map_err(StaffError::Invalid)?;
    let mut tx = pool.begin().await?;
    let found: Option<(Uuid, String)> =
        sqlx::query_as("select staff_id, role from staff where email = $1 for update")
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((staff_id, current)) = found else {
        return Err(StaffError::Invalid(format!(
            "{email} is not a staff member"
        )));
    };
    let role = match role {
        Some(role) => role,
        None => current.parse().map_err(StaffError::Invalid)?,
    };
    let mut stores: BTreeSet<String> =
        sqlx::query_scalar("select store_id from staff_stores where staff_id = $1")
            .bind(staff_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    stores.extend(adding);
    stores.retain(|s| !removing.contains(s));
    if role.needs_assigned_stores() && stores.is_empty() {
        return Err(StaffError::Invalid(format!(
            "an {role} sees only the stores assigned to them: keep at least one store"
        )));
    }
    sqlx::query("update staff set role = $2 where staff_id = $1")
        .bind(staff_id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from staff_stores where staff_id = $1")
        .bind(staff_id)
        .execute(&mut *tx)
        .await?;
    insert_stores(&mut tx, staff_id, &stores).await?;
    tx.commit().await?;
    Ok(StaffMember {
        staff_id,
        email,
        role: role.as_str().to_owned(),
        stores: stores.into_iter().collect(),
    })
}

/// Store ids as given on the command line, checked.
fn parse_stores(stores: &[String]) -> Result<BTreeSet<String>, StaffError> {
    stores
        .iter()
        .map(|s| {
            StoreId::parse(s)
                .map(|s| s.as_str().to_owned())
                .map_err(|e| StaffError::Invalid(format!("store `{s}`: {}", e.reason())))
        })
        .collect()
}

/// Limits staff member `staff_id` to `stores` (adding to what is there).
async fn insert_stores(
    conn: &mut sqlx::PgConnection,
    staff_id: Uuid,
    stores: &BTreeSet<String>,
) -> Result<(), sqlx::Error> {
    for store in stores {
        sqlx::query("insert into staff_stores (staff_id, store_id) values ($1, $2)")
            .bind(staff_id)
            .bind(store)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A token just issued: the only time its text is seen.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// Its id (to revoke it).
    pub token_id: Uuid,
    /// The token, to give to its holder.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Issues a token to the staff member with `email`, valid for `days` days (1 to 366).
pub async fn issue_token(pool: &PgPool, email: &str, days: u32) -> Result<IssuedToken, StaffError> {
    if !(1..=366).contains(&days) {
        return Err(StaffError::Invalid(format!(
            "--days {days}: a token is valid for 1 to 366 days"
        )));
    }
    issue_token_until(pool, email, Utc::now() + Duration::days(i64::from(days))).await
}

/// Issues a token that expires at `expires_at` (tests use one that has already expired).
pub async fn issue_token_until(
    pool: &PgPool,
    email: &str,
    expires_at: DateTime<Utc>,
) -> Result<IssuedToken, StaffError> {
    let email = email.trim().to_lowercase();
    let staff_id: Option<Uuid> =
        sqlx::query_scalar("select staff_id from staff where email = $1 and active")
            .bind(&email)
            .fetch_optional(pool)
            .await?;
    let staff_id =
        staff_id.ok_or_else(|| StaffError::Invalid(format!("no active staff member {email}")))?;
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let text = token::mint(random);
    let token_id = Uuid::now_v7();
    sqlx::query(
        "insert into tokens (token_id, staff_id, prefix, sha256, expires_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(token_id)
    .bind(staff_id)
    .bind(token::prefix(&text))
    .bind(token::hash(&text).as_slice())
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(IssuedToken {
        token_id,
        token: text,
        expires_at,
    })
}

/// A revoked token.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedToken {
    /// Its id.
    pub token_id: Uuid,
    /// Its first characters.
    pub prefix: String,
    /// Whose it was.
    pub email: String,
}

/// Revokes the one token named by `given`: its id, the whole token, or a prefix of at least
/// 8 characters. Refuses a name that matches no token or several.
pub async fn revoke(pool: &PgPool, given: &str) -> Result<RevokedToken, StaffError> {
    let given = given.trim();
    if given.len() < 8 {
        return Err(StaffError::Invalid(format!(
            "`{given}` is too short to name one token: give its id, or at least 8 of its first characters"
        )));
    }
    let candidates: Vec<(Uuid, String, String)> = if let Ok(id) = given.parse::<Uuid>() {
        sqlx::query_as(
            "select t.token_id, t.prefix, s.email from tokens t join staff s using (staff_id) \
             where t.token_id = $1 and t.revoked_at is null",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    } else {
        let probe = token::prefix(given).get(..8).unwrap_or(given).to_owned();
        let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
            "select t.token_id, t.prefix, s.email from tokens t join staff s using (staff_id) \
             where t.prefix like $1 || '%' and t.revoked_at is null",
        )
        .bind(probe)
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .filter(|(_, prefix, _)| token::names(given, prefix))
            .collect()
    };
    let (token_id, prefix, email) = match candidates.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(StaffError::Invalid(format!(
                "no unrevoked token is named `{given}` (give its id, or at least 8 of its first characters)"
            )));
        }
        many => {
            return Err(StaffError::Invalid(format!(
                "`{given}` names {} tokens; give more of it, or the token id",
                many.len()
            )));
        }
    };
    sqlx::query("update tokens set revoked_at = now() where token_id = $1 and revoked_at is null")
        .bind(token_id)
        .execute(pool)
        .await?;
    Ok(RevokedToken {
        token_id,
        prefix,
        email,
    })
}

/// Who a valid token belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) staff_id: Uuid,
    pub(crate) token_id: Uuid,
    pub(crate) email: String,
    pub(crate) role: Role,
    pub(crate) scope: Scope,
}

/// Why a token does not authenticate (told to the log, never to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Unknown,
    Expired,
    Revoked,
    Inactive,
}

/// The holder of `text`, or why it is refused. One statement (the token, its holder and
/// their stores): it runs before every request.
pub(crate) async fn authenticate(
    pool: &PgPool,
    text: &str,
) -> Result<Result<Principal, Refused>, sqlx::Error> {
    type Row = (
        Uuid,
        Uuid,
        String,
        String,
        bool,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Vec<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select t.token_id, s.staff_id, s.email, s.role, s.active, t.expires_at, t.revoked_at, \
           array(select store_id from staff_stores ss where ss.staff_id = s.staff_id) \
         from tokens t join staff s using (staff_id) where t.sha256 = $1",
    )
    .bind(token::hash(text).as_slice())
    .fetch_optional(pool)
    .await?;
    let Some((token_id, staff_id, email, role, active, expires_at, revoked_at, stores)) = row
    else {
        return Ok(Err(Refused::Unknown));
    };
    if revoked_at.is_some() {
        return Ok(Err(Refused::Revoked));
    }
    if expires_at <= Utc::now() {
        return Ok(Err(Refused::Expired));
    }
    let Ok(role) = role.parse::<Role>() else {
        return Ok(Err(Refused::Inactive));
    };
    if !active {
        return Ok(Err(Refused::Inactive));
    }
    Ok(Ok(Principal {
        staff_id,
        token_id,
        email,
        role,
        scope: Scope::of(role, stores.into_iter().collect()),
    }))
}

/// Sets the console password of the active staff member with `email` (what `orderly staff
/// password` does): refused when too short or too long, saying why. Their sessions of the
/// console end (a changed password is usually a reason to sign everyone out); their API
/// tokens stay valid.
pub async fn set_password(pool: &PgPool, email: &str, password: &str) -> Result<(), StaffError> {
    let email = email.trim().to_lowercase();
    let password = password.to_owned();
    let phc = tokio::task::spawn_blocking(move || crate::domain::session::hash_password(&password))
        .await
        .map_err(|e| StaffError::Invalid(format!("the password could not be hashed: {e}")))?
        .map_err(StaffError::Invalid)?;
    let mut tx = pool.begin().await?;
    let staff_id: Option<Uuid> = sqlx::query_scalar(
        "update staff set password_hash = $2 where email = $1 and active returning staff_id",
    )
    .bind(&email)
    .bind(&phc)
    .fetch_optional(&mut *tx)
    .await?;
    let staff_id =
        staff_id.ok_or_else(|| StaffError::Invalid(format!("no active staff member {email}")))?;
    sqlx::query(
        "update console_sessions set ended_at = now() where staff_id = $1 and ended_at is null",
    )
    .bind(staff_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
