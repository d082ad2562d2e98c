//! PostgreSQL connections and migrations.
//!
//! Each worker gets a pool whose `search_path` is its own schema: the runtime's SQL names
//! `outbox` and `inbox` unqualified and lands in the right worker's tables, and a worker's
//! queries cannot reach another worker's tables by accident.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Connection, PgConnection, PgPool, Postgres,
    postgres::{PgArguments, PgConnectOptions, PgPoolOptions},
};

use crate::config::redact_url;

/// The migrations under the workspace's `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Why the database could not be used, naming what was tried.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse.
    #[error("database URL {url} is invalid: {source}")]
    BadUrl { url: String, source: sqlx::Error },
    /// Nothing answered, or it refused us.
    #[error("cannot reach PostgreSQL at {url}: {source}")]
    Unreachable { url: String, source: sqlx::Error },
    /// Migrations failed.
    #[error("migrating {url} failed: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Opens a pool for `schema` (its `search_path`), checking that the database answers.
///
/// Its sessions plan with `enable_seqscan = off`. Every statement a worker runs is written
/// for an index; but sqlx prepares statements, and PostgreSQL keeps the generic plan it makes
/// after five executions. Made while a table was nearly empty (a fresh database, a new
/// schema), that plan was a sequential scan, and it stayed one as the table grew, until an
/// analyze a minute or more later: the pipeline benchmark's look-ups read whole tables. With
/// sequential scans priced out, the generic plan uses the index from the start; a statement
/// with no index to use still scans. (Planning every execution instead,
/// `plan_cache_mode = force_custom_plan`, cost a fifth of the database's CPU.)
///
/// And with `jit = off`: a statement that has to scan (a function scan, a small table, a
/// clean-up) is priced at more than 10^10 with sequential scans off, far above
/// `jit_above_cost`, so PostgreSQL compiled it with LLVM, inlining and optimisation
/// included, at every execution: 4 % of the machine in the invoicing benchmark, 20–300 ms a
/// statement. The workers' statements are short; compiling never pays for itself.
pub async fn connect(url: &str, schema: &str, max_connections: u32) -> Result<PgPool, DbError> {
    connect_as(url, schema, max_connections, None).await
}

/// Like [`connect`], with every session's `orderly.writer` set to `writer` (a worker
/// process's id): the outbox rows its sessions insert record it (`written_by`), so other
/// processes' relays leave them to this process's handoff ([`crate::outbox`]).
pub async fn connect_as(
    url: &str,
    schema: &str,
    max_connections: u32,
    writer: Option<uuid::Uuid>,
) -> Result<PgPool, DbError> {
    let redacted = redact_url(url);
    let mut settings = vec![
        ("search_path", format!("{schema},public")),
        ("enable_seqscan", "off".to_owned()),
        ("jit", "off".to_owned()),
    ];
    if let Some(writer) = writer {
        settings.push(("orderly.writer", writer.to_string()));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|source| DbError::BadUrl {
            url: redacted.clone(),
            source,
        })?
        .options(settings)
        .application_name(&format!("orderly-{schema}"));
    // One direct connection first: a pool only says "timed out" when the server refuses,
    // while a connection says why (refused, unknown database, authentication).
    let probe = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(|source| DbError::Unreachable {
            url: redacted.clone(),
            source,
        })?;
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|source| DbError::Unreachable {
            url: redacted,
            source,
        })
}

/// Applies every pending migration. Safe to run from several processes at once: sqlx takes an
/// advisory lock.
pub async fn migrate(url: &str) -> Result<(), DbError> {
    let pool = connect(url, "public", 2).await?;
    let result = MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| DbError::Migrate {
            url: redact_url(url),
            source,
        });
    pool.close().await;
    result
}

/// A connection to the maintenance database (`postgres`) of the server `url` names, with
/// the name of the database `url` names (none: the URL names no database) and the error for
/// a failure on it; for creating and dropping databases.
struct Maintenance {
    conn: sqlx::PgConnection,
    name: String,
    redacted: String,
}

impl Maintenance {
    async fn open(url: &str) -> Result<Option<Self>, DbError> {
        let redacted = redact_url(url);
        let target = PgConnectOptions::from_str(url).map_err(|source| DbError::BadUrl {
            url: redacted.clone(),
            source,
        })?;
        let Some(name) = target.get_database().map(str::to_owned) else {
            return Ok(None);
        };
        let conn = sqlx::PgConnection::connect_with(&target.database("postgres"))
            .await
            .map_err(|source| DbError::Unreachable {
                url: redacted.clone(),
                source,
            })?;
        Ok(Some(Self {
            conn,
            name,
            redacted,
        }))
    }

    fn unreachable(&self, source: sqlx::Error) -> DbError {
        DbError::Unreachable {
            url: self.redacted.clone(),
            source,
        }
    }

    /// The database's name as an SQL identifier.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.name.replace('"', "\"\""))
    }

    async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// Creates the database named in `url` when it does not exist yet (for fresh machines and
/// per-test databases), connecting to the `postgres` maintenance database to do so.
pub async fn ensure_database(url: &str) -> Result<(), DbError> {
    let Some(mut admin) = Maintenance::open(url).await? else {
        return Ok(());
    };
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
            .bind(&admin.name)
            .fetch_one(&mut admin.conn)
            .await
            .map_err(|e| admin.unreachable(e))?;
    if !exists {
        let sql = format!("create database {}", admin.quoted());
        if let Err(source) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin.conn)
            .await
        {
            // Another process may have created it in the meantime.
            let duplicate = source
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|c| c == "42P04" || c == "23505");
            if !duplicate {
                return Err(admin.unreachable(source));
            }
        }
    }
    admin.close().await;
    Ok(())
}

/// Drops the database `url` names, if it exists, ending its sessions (`with (force)`): for
/// the demo, which starts from an empty database on whatever server it is configured with.
pub async fn drop_database(url: &str) -> Result<(), DbError> {
    let Some(mut admin) = Maintenance::open(url).await? else {
        return Ok(());
    };
    let sql = format!("drop database if exists {} with (force)", admin.quoted());
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut admin.conn)
        .await
        .map_err(|e| admin.unreachable(e))?;
    admin.close().await;
    Ok(())
}

/// The values a `CHECK (... in ('a', 'b', ...))` lists in `sql`, the first after `marker`
/// (e.g. `"kind in ("`), sorted; `None` when there is no such list. For the tests that hold
/// an enum and the migration's constraint on its column to the same values.
pub fn check_values<'a>(sql: &'a str, marker: &str) -> Option<Vec<&'a str>> {
    let start = sql.find(marker)? + marker.len();
    let end = start + sql[start..].find(')')?;
    let mut values: Vec<&str> = sql[start..end]
        .split(',')
        .map(|v| v.trim().trim_matches('\''))
        .filter(|v| !v.is_empty())
        .collect();
    values.sort_unstable();
    Some(values)
}

/// True for errors that mean "the database is not there right now", as opposed to an error
/// in what we asked it. The consumer pauses on these instead of failing messages.
pub fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-03: admin shutdown, crash shutdown,
            // cannot connect now (starting up).
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// True for errors that go away when the transaction is simply tried again.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c == "40001" || c == "40P01"))
}

/// A set-wise statement whose rows are bound as one array per column:
/// `insert into t (a, b) select * from unnest($1::uuid[], $2::text[])`. Each
/// [`Unnest::column`] takes one field of every row, in the order of the placeholders, so a
/// writer names each column once instead of building a vector per column by hand.
///
/// ```ignore
/// db::unnest("insert into t (id, name) select * from unnest($1::uuid[], $2::text[])", &rows)
///     .column(|r| r.id)
///     .column(|r| r.name.as_str())
///     .execute(conn)
///     .await?;
/// ```
pub fn unnest<'r, R>(sql: &'static str, rows: &'r [R]) -> Unnest<'r, R> {
    Unnest {
        query: sqlx::query(sql),
        rows,
    }
}

/// See [`unnest`].
#[must_use = "a statement does nothing until executed"]
pub struct Unnest<'r, R> {
    query: sqlx::query::Query<'static, Postgres, PgArguments>,
    rows: &'r [R],
}

impl<R> std::fmt::Debug for Unnest<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unnest")
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl<'r, R> Unnest<'r, R> {
    /// Binds the next placeholder to `value` of every row, as an array.
    pub fn column<'t, T>(mut self, value: impl FnMut(&'r R) -> T) -> Self
    where
        Vec<T>: sqlx::Encode<'t, Postgres> + sqlx::Type<Postgres>,
    {
        let column: Vec<T> = self.rows.iter().map(value).collect();
        self.query = self.query.bind(column);
        self
    }

    /// Binds the next placeholder to one value, the same for every row.
    pub fn bind<'t, T>(mut self, value: T) -> Self
    where
        T: sqlx::Encode<'t, Postgres> + sqlx::Type<Postgres>,
    {
        self.query = self.query.bind(value);
        self
    }

    /// Runs the statement; nothing at all for no rows.
    pub async fn execute(self, conn: &mut PgConnection) -> sqlx::Result<u64> {
        if self.rows.is_empty() {
            return Ok(0);
        }
        Ok(self.query.execute(conn).await?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::check_values;

    #[test]
    fn a_check_constraints_values_are_read_sorted() {
        let sql = "alter table t add constraint c check (kind in (\n  'b', 'a',\n  'c'\n));";
        assert_eq!(check_values(sql, "kind in ("), Some(vec!["a", "b", "c"]));
        assert_eq!(check_values(sql, "status in ("), None);
    }

    /// A worker's sessions price sequential scans out and never JIT-compile (see
    /// [`super::connect`]), whatever the server's defaults.
    #[tokio::test]
    async fn a_workers_sessions_plan_without_sequential_scans_or_jit() {
        let url = "postgres://postgres@127.0.0.1:5432/postgres";
        let pool = super::connect(url, "public", 1).await.expect("connects");
        let (seqscan, jit): (String, String) =
            sqlx::query_as("select current_setting('enable_seqscan'), current_setting('jit')")
                .fetch_one(&pool)
                .await
                .expect("settings");
        assert_eq!((seqscan.as_str(), jit.as_str()), ("off", "off"));
        pool.close().await;
    }
}
