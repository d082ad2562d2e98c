//! The api benchmark's figures as its section of docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Figures;
use super::mix::{Kind, MIX, total_weight};
use crate::bench::percentile;

fn busiest(list: &[(String, f64)]) -> String {
    list.iter()
        .map(|(command, percent)| format!("{command} {percent:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

pub(super) fn render(f: &Figures) -> String {
    let o = &f.options;
    let mut s = String::new();
    let _ = writeln!(s, "| measure | figure | target |");
    let _ = writeln!(s, "|---|---|---|");
    let _ = writeln!(
        s,
        "| machine before the run (load average 1 / 5 / 15 min) | {} | |",
        f.loadavg_before
    );
    let seeded = &f.seeded;
    let _ = writeln!(
        s,
        "| read model, written with SQL (`orderly_api::bench`) | {} orders in {} stores; {} status changes, {} shipments, {} invoices and credit notes, {} cancellations; {:.0} s, then vacuum, analyse and checkpoint {:.0} s | |",
        seeded.orders,
        o.stores.clamp(1, orderly_api::bench::STORES.len()),
        seeded.history,
        seeded.shipments,
        seeded.documents,
        seeded.cancellations,
        seeded.load.as_secs_f64(),
        seeded.vacuum.as_secs_f64()
    );
    let total: i64 = f.sizes.iter().map(|t| t.table_bytes + t.index_bytes).sum();
    let per_million = mib(total) * 1_000_000.0 / (seeded.orders.max(1) as f64);
    let tables = f
        .sizes
        .iter()
        .filter(|t| t.table_bytes + t.index_bytes > 1024 * 1024)
        .map(|t| {
            format!(
                "{} {:.0} + {:.0} indexes",
                t.table,
                mib(t.table_bytes),
                mib(t.index_bytes)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = writeln!(
        s,
        "| **api schema on disk, per million orders** (tables, TOAST and indexes) | **{:.0} MiB** ({:.0} MiB in all; MiB: {tables}) | |",
        per_million,
        mib(total)
    );
    let _ = writeln!(s, "| the api's database pool | {} | |", f.api_pool);
    let _ = writeln!(
        s,
        "| requests | the mix below, {} sampled orders, account manager of {}; latency from when each request was due | |",
        f.sampled,
        f.manager_stores.join(" and ")
    );
    let p = &f.paced;
    let lists = p.latency(Kind::is_list);
    let details = p.latency(|k| !k.is_list());
    let _ = writeln!(
        s,
        "| **mixed reads per second**, asked {:.0}/s, at most {} in flight, {} s | **{:.0}** ({} failed) | ≥ 2,000: {} |",
        o.rate,
        o.connections,
        o.seconds,
        p.per_second(),
        p.errors(),
        met(p.per_second() >= 2_000.0 * 0.99)
    );
    let _ = writeln!(
        s,
        "| **filtered list, p50 / p95 / p99 ms** (requests) | **{lists}** | p99 < 50: {} |",
        met(lists.p99 < 50.0)
    );
    let _ = writeln!(
        s,
        "| **order detail, p50 / p95 / p99 ms** (requests) | **{details}** | p99 < 20: {} |",
        met(details.p99 < 20.0)
    );
    let weights = total_weight(MIX);
    for (kind, weight) in MIX {
        let _ = writeln!(
            s,
            "| {} ({:.0} % of the mix), p50 / p95 / p99 ms | {} | |",
            kind.label(),
            100.0 * f64::from(*weight) / f64::from(weights),
            p.latency(|k| k == *kind)
        );
    }
    let _ = writeln!(
        s,
        "| machine during the paced reads | {}; busiest: {} | |",
        p.load,
        busiest(&p.busiest)
    );
    let flat = &f.flat_out;
    let _ = writeln!(
        s,
        "| same mix flat out, {} at a time: requests/s; list / detail p99 ms | {:.0} ({} failed); {:.1} / {:.1} | |",
        o.connections,
        flat.per_second(),
        flat.errors(),
        flat.latency(Kind::is_list).p99,
        flat.latency(|k| !k.is_list()).p99
    );
    let _ = writeln!(
        s,
        "| machine during the flat-out reads | {}; busiest: {} | |",
        flat.load,
        busiest(&flat.busiest)
    );
    let lag = &f.lag;
    let mut commit: Vec<f64> = lag.events.iter().map(|e| e.1).collect();
    commit.sort_by(f64::total_cmp);
    let mut start: Vec<f64> = lag.events.iter().map(|e| e.2).collect();
    start.sort_by(f64::total_cmp);
    let _ = writeln!(
        s,
        "| pipeline (orders, inventory, fulfillment, api, carrier) for the lag | {} orders sent at {:.1}/s (asked {:.0}/s); {} completed in the read model{} | |",
        lag.placed,
        lag.offered,
        o.pipeline_rate,
        lag.projected_completed,
        if lag.completed_after.is_finite() {
            format!(
                ", the last {:.1} s after the first was sent",
                lag.completed_after
            )
        } else {
            " (not all within the deadline)".to_owned()
        }
    );
    let p99 = percentile(&commit, 99.0);
    let _ = writeln!(
        s,
        "| **projection lag, event `occurred_at` → api commit: p50 / p99 ms** ({} events) | **{:.0} / {:.0}** | p99 < 1,000: {} |",
        commit.len(),
        percentile(&commit, 50.0),
        p99,
        met(p99 < 1_000.0)
    );
    let _ = writeln!(
        s,
        "| of which until the api's transaction began (`inbox.handled_at`): p50 / p99 ms | {:.0} / {:.0} | |",
        percentile(&start, 50.0),
        percentile(&start, 99.0)
    );
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (message_type, millis, _) in &lag.events {
        by_type.entry(message_type).or_default().push(*millis);
    }
    let per_type = by_type
        .iter_mut()
        .map(|(message_type, millis)| {
            millis.sort_by(f64::total_cmp);
            format!("{message_type} {:.0}", percentile(millis, 99.0))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "| lag p99 by event type, ms | {per_type} | |");
    let _ = writeln!(
        s,
        "| machine during the pipeline | {}; busiest: {} | |",
        lag.load,
        busiest(&lag.busiest)
    );
    s
}
