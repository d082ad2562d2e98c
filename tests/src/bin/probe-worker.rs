//! The probe worker as its own process, configured by `ORDERLY__*` variables: lets tests
//! send it real signals.

use orderly_runtime::{Host, Settings};
use orderly_tests::{PROBE, ProbeHandler};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderly_runtime::telemetry::init("info");
    let settings = Settings::load(None)?;
    let side = orderly_runtime::db::connect(&settings.database_url, PROBE, 4).await?;
    let mut host = Host::new(settings);
    host.start_worker(PROBE, ProbeHandler { side }).await?;
    host.run_until_signal().await;
    Ok(())
}
