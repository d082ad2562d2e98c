//! Where the rate data comes from: the configured file (`[vat] rates_file`, the shipped one
//! when unset) is checked whole and loaded into the schema at start; copies already
//! running pick up a file loaded later (`orderly vat load FILE`) within `refresh_ms`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::domain::rates::{RateTable, SHIPPED_CSV};
use crate::handlers::SharedRates;
use crate::store::rates::{self as rows, Loaded};

/// `[vat]`: the rate data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateSettings {
    /// A rate file to load instead of the shipped one
    /// (`workers/invoicing/data/vat-rates.csv` is the format).
    pub rates_file: Option<PathBuf>,
    /// How often a running worker checks whether another rate file was loaded.
    #[serde(rename = "refresh_ms", with = "orderly_runtime::config::millis")]
    pub refresh: Duration,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            rates_file: None,
            refresh: Duration::from_secs(60),
        }
    }
}

/// Parses a rate file's text, every bad row named by line and column in the error.
pub fn check_rates(name: &str, text: &str) -> anyhow::Result<RateTable> {
    RateTable::parse(text).map_err(|errors| {
        anyhow::anyhow!(
            "rate file {name} has {} error(s):\n{}",
            errors.len(),
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Reads and checks a rate file.
pub fn read_rates(path: &Path) -> anyhow::Result<(String, RateTable)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("rate file {}: {e}", path.display()))?;
    let table = check_rates(&path.display().to_string(), &text)?;
    Ok((text, table))
}

/// Reads and checks the configured rate file (every bad row named), and loads it unless it
/// is loaded already. Returns what was loaded and the table, which is then the one in the
/// database (the configured file replaces any other).
pub async fn load_rates(
    pool: &PgPool,
    settings: &RateSettings,
) -> anyhow::Result<(Loaded, RateTable)> {
    let (path, text, table) = match &settings.rates_file {
        Some(path) => {
            let (text, table) = read_rates(path)?;
            (path.display().to_string(), text, table)
        }
        None => (
            "(shipped)".to_owned(),
            SHIPPED_CSV.to_owned(),
            check_rates("(shipped)", SHIPPED_CSV)?,
        ),
    };
    let loaded = rows::load_file(pool, &path, &rows::file_sha256(&text), &table).await?;
    Ok((loaded, table))
}

/// Checks now and then whether another rate file was loaded, and puts it in force.
pub(crate) struct Refresher {
    pool: PgPool,
    rates: SharedRates,
    sha256: String,
    every: Duration,
}

impl Refresher {
    pub(crate) fn new(pool: PgPool, rates: SharedRates, sha256: String, every: Duration) -> Self {
        Self {
            pool,
            rates,
            sha256,
            every,
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
            match rows::all_store_rows(&self.pool).await {
                Ok(stores) => self.rates.replace_stores(stores),
                Err(e) => {
                    warn!(error = %e, "cannot read the stores' VAT rate rows; keeping those in force")
                }
            }
            match rows::loaded_sha256(&self.pool).await {
                Ok(Some(sha)) if sha != self.sha256 => match rows::base_rows(&self.pool).await {
                    Ok(Some((sha, table))) => {
                        info!(rows = table.len(), sha256 = %sha, "another VAT rate file was loaded: in force now");
                        self.rates.replace(table);
                        self.sha256 = sha;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "cannot read the VAT rate data; keeping the rates in force")
                    }
                },
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "cannot check the VAT rate data; keeping the rates in force")
                }
            }
        }
    }
}
