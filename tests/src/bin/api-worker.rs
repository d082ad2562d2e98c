//! The api worker alone as its own process, configured by `ORDERLY__*` variables (as
//! `orderly run api` is): lets tests kill it with SIGKILL mid-job and start it again.

use orderly_runtime::{Host, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderly_runtime::telemetry::init("warn");
    let settings = Settings::load(None)?;
    let mut host = Host::new(settings);
    let api: orderly_api::ApiSettings = host.settings().section("api")?;
    let addr = orderly_api::start(&mut host, api).await?;
    println!("listening on {addr}");
    host.run_until_signal().await;
    Ok(())
}
