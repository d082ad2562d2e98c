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

    println!("\n== Stock levels (what the inventory worker holds, per SKU and warehouse) ==");
    println!(
        "  {:<14} {:>8} {:>9} {:>10}   per warehouse (on hand/reserved)",
        "sku", "on hand", "reserved", "available"
    );
    let pool = orderly_runtime::db::connect(settings.database_url_for("inventory"), "inventory", 1)
        .await?;
    let rows = {
        let mut conn = pool.acquire().await?;
        orderly_inventory::store::list_stock(&mut conn, None).await?
    };
    pool.close().await;
    let mut by_sku: std::collections::BTreeMap<&str, Vec<&orderly_inventory::store::StockListing>> =
        std::collections::BTreeMap::new();
    for row in &rows {
        by_sku.entry(row.sku.as_str()).or_default().push(row);
    }
    for (sku, rows) in by_sku {
        let sum = |f: fn(&orderly_inventory::store::StockListing) -> i64| -> i64 {
            rows.iter().map(|r| f(r)).sum()
        };
        let per: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}/{}", r.warehouse_id, r.on_hand, r.reserved))
            .collect();
        println!(
            "  {:<14} {:>8} {:>9} {:>10}   {}",
            sku,
            sum(|r| r.on_hand),
            sum(|r| r.reserved),
            sum(|r| r.available),
            per.join(", ")
        );
    }

    let pool = orderly_runtime::db::connect(settings.database_url_for("invoicing"), "invoicing", 1)
        .await?;
    let documents = orderly_invoicing::list_invoices(&pool, None, SHOWN_DOCUMENTS).await?;
    pool.close().await;
    println!(
        "\n== Invoices and credit notes issued: {} ==",
        documents_heading(seen.documents.len(), documents.len())
    );
    if documents.is_empty() {
        println!("  none");
    }
    for d in &documents {
        println!(
            "  {:<11} {:<18} {:<8} {:>8} {} gross {:>7} VAT  {}",
            d.kind.replace('_', " "),
            d.number,
            d.store_id,
            d.gross,
            d.currency,
            d.tax,
            d.vat_rule.replace('_', " ")
        );
    }
    println!(
        "  (PDF: `orderly invoice pdf NUMBER > NUMBER.pdf`; each row's rule and reason are on the invoice)"
    );

    println!("\n== Notifications requested from the notification system (template, language) ==");
    let mut by_template: std::collections::BTreeMap<(String, String), usize> =
        std::collections::BTreeMap::new();
    for n in &seen.notifications {
        let key = (
            n["template"].as_str().unwrap_or_default().to_owned(),
            n["locale"].as_str().unwrap_or_default().to_owned(),
        );
        *by_template.entry(key).or_default() += 1;
    }
    if by_template.is_empty() {
        println!("  none");
    }
    for ((template, locale), n) in &by_template {
        println!("  {template:<28} {locale:<6} {n:>4}");
    }
    if let Some(example) = seen
        .notifications
        .iter()
        .find(|n| n["template"] == "shipment.dispatched")
        .or_else(|| seen.notifications.first())
    {
        println!(
            "  for example, to {}:\n    Subject: {}\n    {}",
            example["recipient"].as_str().unwrap_or_default(),
            example["subject"].as_str().unwrap_or("-"),
            example["body"]
                .as_str()
                .unwrap_or_default()
                .replace('\n', "\n    ")
        );
    }

    println!("\n== Dead letters (bad input is kept, with the reason) ==");
    let ch = host_channel(settings, names).await?;
    for route in orderly_contracts::routing::routes()
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
        let pool =
            orderly_runtime::db::connect(settings.database_url_for("orders"), "orders", 1).await?;
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

/// How many issued documents the summary lists (the latest ones).
const SHOWN_DOCUMENTS: i64 = 12;

/// The heading of the documents table: how many were announced, and that the rows are only
/// the latest ones when there are more (the invoicing worker's records, newest first).
fn documents_heading(announced: usize, shown: usize) -> String {
    let source = "announced by invoice.issued / credit_note.issued";
    if shown < announced {
        format!("{announced} {source}; the latest {shown} of the invoicing worker's records")
    } else {
        format!("{announced} {source}; the invoicing worker's records")
    }
}

#[cfg(test)]
mod tests {
    use super::documents_heading;

    #[test]
    fn the_documents_heading_says_when_only_the_latest_are_listed() {
        assert_eq!(
            documents_heading(21, 12),
            "21 announced by invoice.issued / credit_note.issued; the latest 12 of the invoicing worker's records"
        );
        assert_eq!(
            documents_heading(5, 5),
            "5 announced by invoice.issued / credit_note.issued; the invoicing worker's records"
        );
    }
}
