//! Runs the notifications benchmark against the local broker and database until the CLI
//! wires `orderly bench notifications`: `cargo run --release -p orderly-notifications
//! --example bench -- [events]` (default 6000).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(6000);
    orderly_runtime::telemetry::init("warn");
    let settings = orderly_runtime::Settings::load(None)?;
    let figures = orderly_notifications::bench::run(&settings, events).await?;
    println!("{}", figures.markdown());
    Ok(())
}
