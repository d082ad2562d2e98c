//! The ECB's reference rates (units per euro by day), for VAT in the national currency.

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use crate::domain::fx::{FxRate, FxTable};

/// Keeps `rates` (a day's rate of a currency replaces the one loaded before). Returns how many.
pub async fn load_fx(pool: &PgPool, rates: &[FxRate]) -> Result<u64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    orderly_runtime::db::unnest(
        "insert into fx_rates (day, currency, per_eur)
         select * from unnest($1::date[], $2::text[], $3::numeric[])
         on conflict (currency, day) do update set per_eur = excluded.per_eur, loaded_at = now()",
        rates,
    )
    .column(|r| r.day)
    .column(|r| r.currency.as_str())
    .column(|r| r.per_eur)
    .execute(&mut conn)
    .await
}

/// The rates of the week up to `last` (what conversions of supplies between `first` and
/// `last` may use).
pub(crate) async fn rates_between(
    conn: &mut PgConnection,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<FxTable, sqlx::Error> {
    let from = first.checked_sub_days(Days::new(7)).unwrap_or(first);
    let rows: Vec<(NaiveDate, String, Decimal)> =
        sqlx::query_as("select day, currency, per_eur from fx_rates where day between $1 and $2")
            .bind(from)
            .bind(last)
            .fetch_all(conn)
            .await?;
    Ok(FxTable::new(rows.into_iter().map(
        |(day, currency, per_eur)| FxRate {
            day,
            currency,
            per_eur,
        },
    )))
}
