//! The demo's closing summary: what an operator would want to see after a day like that.

use orderly_runtime::{Host, Settings, broker::Names};

use crate::sim::Observed;

/// Prints orders by status, stock levels, dead letters and one order's timeline.
pub(crate) async fn summary(
    seen: &Observed,
    host: &Host,
    settings: &Settings,
    names: &Names,
) -> anyhow::Result<()> {
    println!("\n== Orders by status (from order.status_changed, latest sequence per order) ==");
    let counts = seen.status_counts();
    for (status, n) in &counts {
        println!("  {status:<18} {n:>4}");
    }
    println!("  {:<18} {:>4}", "total", seen.orders.len());

    println!("\n== Stock levels (from stock.level_changed, latest sequence per SKU) ==");
    println!(
        "  {:<14} {:>8} {:>9} {:>10}   per warehouse (on hand/reserved)",
        "sku", "on hand", "reserved", "available"
    );
    for (sku, (_, level)) in &seen.stock {
        let per: Vec<String> = level["warehouses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                format!(
                    "{} {}/{}",
                    w["warehouse_id"].as_str().unwrap_or("?"),
                    w["on_hand"],
                    w["reserved"]
                )
            })
            .collect();
        let n = |k: &str| level[k].as_u64().unwrap_or_default();
        println!(
            "  {:<14} {:>8} {:>9} {:>10}   {}",
            sku,
            n("on_hand"),
            n("reserved"),
            n("available"),
            per.join(", ")
        );
    }

    println!("\n== Dead letters (bad input is kept, with the reason) ==");
    let ch = host_channel(settings, names).await?;
    for route in orderly_contracts::routing::ROUTES
        .iter()
        .filter(|r| matches!(r.kind, orderly_contracts::routing::QueueKind::Worker))
    {
        let letters = orderly_runtime::dlq::DeadLetters::new(&ch.1, names, route.queue)
            .list(20)
            .await?;
        for l in letters {
            println!(
                "  {:<12} {:<14} {}",
                route.queue,
                l.message_type.unwrap_or_default(),
                l.reason
            );
        }
    }
    let _ = ch.0.close(200, "done".into()).await;

    if let Some(order_id) = seen.by_external.get("SF-LAMP-BIG") {
        println!("\n== Timeline of SF-LAMP-BIG (the audit trail the orders worker keeps) ==");
        let pool = orderly_runtime::db::connect(&settings.database_url, "orders", 1).await?;
        for line in crate::ops::timeline_lines(&pool, *order_id).await? {
            println!("  {line}");
        }
        pool.close().await;
    }
    let _ = host;
    println!(
        "\nExplore: `ORDERLY__NAMESPACE=demo ORDERLY__DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_demo target/release/orderly dlq list orders`"
    );
    Ok(())
}

async fn host_channel(
    settings: &Settings,
    names: &Names,
) -> anyhow::Result<(lapin::Connection, lapin::Channel)> {
    let c = orderly_runtime::broker::connect(
        &settings.broker_url,
        &format!("orderly-report@{}", names.namespace()),
    )
    .await?;
    let ch = c.create_channel().await?;
    Ok((c, ch))
}
