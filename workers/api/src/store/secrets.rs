//! Each store's secrets for its customers' tokens (see [`crate::domain::customer_token`]):
//! what `orderly store-secret rotate` and `orderly customer-token` change and read, and what
//! the customers' endpoint checks tokens with.
//!
//! A store has one current secret; rotating it makes a new one current and keeps the one it
//! replaces valid for a grace period (the storefront keeps minting with it until it is
//! redeployed with the new one), and ends every older one's grace at once. So at most two
//! secrets of a store are valid, and rotating twice in a row leaves only the newest one and
//! the one before it: rotate again with `--grace-hours 0` to end a leaked secret now.
//!
//! A secret is printed once, when it is made; it is stored as it is because an HMAC is
//! checked with the key itself (the table is as sensitive as the storefront's own settings).

use chrono::{DateTime, Duration, Utc};
use orderly_contracts::types::{EmailAddress, StoreId};
use rand::RngCore;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::customer_token::{self, Claims, MAX_LIFETIME_SECS};

/// Why a secret or token command could not be done: the operator's mistake, said plainly.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// An argument that is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A store's new secret, as `orderly store-secret rotate` prints it (the only time it is
/// shown).
#[derive(Debug, Clone, Serialize)]
pub struct RotatedSecret {
    /// The store.
    pub store_id: String,
    /// The new secret: give it to the storefront.
    pub secret: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Until when the secret it replaced stays valid (none: the store had none).
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Makes a new current secret for `store`; the current one stays valid for `grace`, and
/// every older one ends now.
pub async fn rotate(
    pool: &PgPool,
    store: &str,
    grace: Duration,
) -> Result<RotatedSecret, SecretError> {
    let store = parse_store(store)?;
    if grace < Duration::zero() {
        return Err(SecretError::Invalid(
            "the grace period cannot be negative".to_owned(),
        ));
    }
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let secret = customer_token::mint_secret(random);
    let mut tx = pool.begin().await?;
    // Rotations of one store take turns (two at once would both demote the same secret).
    sqlx::query("select pg_advisory_xact_lock(hashtext('api.store_secrets'), hashtext($1))")
        .bind(&store)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "update store_secrets set valid_until = now() \
         where store_id = $1 and valid_until > now()",
    )
    .bind(&store)
    .execute(&mut *tx)
    .await?;
    let previous_valid_until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "update store_secrets set valid_until = now() + make_interval(secs => $2) \
         where store_id = $1 and valid_until is null returning valid_until",
    )
    .bind(&store)
    .bind(grace.num_milliseconds() as f64 / 1000.0)
    .fetch_optional(&mut *tx)
    .await?;
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into store_secrets (secret_id, store_id, secret) values ($1, $2, $3) \
         returning created_at",
    )
    .bind(Uuid::now_v7())
    .bind(&store)
    .bind(&secret)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RotatedSecret {
        store_id: store,
        secret,
        created_at,
        previous_valid_until,
    })
}

/// The secrets that may have signed a token of `store` now: the current one and one in its
/// grace period, newest first.
pub(crate) async fn valid<'e>(
    db: impl sqlx::PgExecutor<'e>,
    store: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select secret from store_secrets \
         where store_id = $1 and (valid_until is null or valid_until > now()) \
         order by created_at desc",
    )
    .bind(store)
    .fetch_all(db)
    .await
}

/// A customer token, as `orderly customer-token` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerToken {
    /// The token: `Authorization: Bearer <token>` on `/api/v1/store/customer-orders`.
    pub token: String,
    /// The store.
    pub store_id: String,
    /// The customer.
    pub customer_id: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Mints a token for `customer` of `store` that lives `minutes` (at most an hour), signed
/// with the store's current secret, as a storefront would.
pub async fn customer_token(
    pool: &PgPool,
    store: &str,
    customer: &str,
    email: Option<&str>,
    minutes: u32,
) -> Result<CustomerToken, SecretError> {
    let lifetime = Duration::minutes(i64::from(minutes));
    customer_token_at(pool, store, customer, email, Utc::now(), lifetime).await
}

/// Mints a token issued at `issued_at` that lives `lifetime` (tests mint expired ones).
pub async fn customer_token_at(
    pool: &PgPool,
    store: &str,
    customer: &str,
    email: Option<&str>,
    issued_at: DateTime<Utc>,
    lifetime: Duration,
) -> Result<CustomerToken, SecretError> {
    let store = parse_store(store)?;
    let customer = customer.trim();
    if customer.is_empty() || customer.chars().count() > 128 {
        return Err(SecretError::Invalid(
            "customer: 1 to 128 characters (the orders' `customer.id`)".to_owned(),
        ));
    }
    let email = email
        .map(|e| EmailAddress::parse(e.trim()).map(|e| e.as_str().to_owned()))
        .transpose()
        .map_err(|e| SecretError::Invalid(format!("e-mail: {}", e.reason())))?;
    let secs = lifetime.num_seconds();
    if !(1..=MAX_LIFETIME_SECS).contains(&secs) {
        return Err(SecretError::Invalid(format!(
            "a customer token lives 1 to {} minutes",
            MAX_LIFETIME_SECS / 60
        )));
    }
    let secret: Option<String> = sqlx::query_scalar(
        "select secret from store_secrets where store_id = $1 and valid_until is null",
    )
    .bind(&store)
    .fetch_optional(pool)
    .await?;
    let secret = secret.ok_or_else(|| {
        SecretError::Invalid(format!(
            "store {store} has no secret yet: `orderly store-secret rotate {store}` makes one"
        ))
    })?;
    let claims = Claims {
        store: store.clone(),
        customer: customer.to_owned(),
        email,
        iat: issued_at.timestamp(),
        exp: issued_at.timestamp() + secs,
    };
    let token = customer_token::mint(&claims, &secret);
    Ok(CustomerToken {
        token,
        store_id: store,
        customer_id: claims.customer,
        expires_at: DateTime::from_timestamp(claims.exp, 0)
            .unwrap_or(issued_at + Duration::seconds(secs)),
    })
}

fn parse_store(store: &str) -> Result<String, SecretError> {
    StoreId::parse(store.trim())
        .map(|s| s.as_str().to_owned())
        .map_err(|e| SecretError::Invalid(format!("store: {}", e.reason())))
}
