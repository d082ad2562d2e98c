//! What operators are given to watch Orderly with is true to the workers: the Prometheus
//! alert rules pass `promtool check rules`, and every metric the rules and the Grafana
//! dashboard query is one a running Orderly (every built-in worker) exports on `/metrics`.

use std::{collections::BTreeSet, path::PathBuf, process::Command, time::Duration};

use orderly_runtime::testing::{World, wait_until};

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

#[test]
fn the_alert_rules_pass_promtool() {
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(deploy("prometheus/alerts.yml"))
        .output()
        .expect("promtool runs (scripts/services installs the Debian package `prometheus`)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("SUCCESS"), "{report}");
}

/// The `orderly_…` metric families named in `text` (sample suffixes of counters and
/// histograms taken off, so `orderly_messages_total` names the family `orderly_messages`).
fn families_named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("orderly_") {
        let start = i + at;
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| start + n);
        // Not the tail of a longer identifier.
        let standalone =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if standalone {
            let mut name = &text[start..end];
            for suffix in ["_total", "_bucket", "_sum", "_count", "_created"] {
                name = name.strip_suffix(suffix).unwrap_or(name);
            }
            names.insert(name.to_owned());
        }
        i = end;
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_query_is_exported() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    orderly::workers::start_all(&mut host).await?;
    let addr = host.serve_http().await?;
    let url = format!("http://{addr}/metrics");
    // Readiness is exported once the workers report it; the rest from the start.
    wait_until("readiness exported", Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            Ok(reqwest::get(&url)
                .await?
                .text()
                .await?
                .contains("orderly_ready{"))
        }
    })
    .await?;
    let text = reqwest::get(&url).await?.text().await?;
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    for (file, text) in [
        (
            "prometheus/alerts.yml",
            std::fs::read_to_string(deploy("prometheus/alerts.yml"))?,
        ),
        (
            "grafana/orderly.json",
            std::fs::read_to_string(deploy("grafana/orderly.json"))?,
        ),
    ] {
        let queried = families_named(&text);
        assert!(!queried.is_empty(), "{file} queries no metric");
        let missing: Vec<&String> = queried.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "deploy/{file} queries metrics no worker exports: {missing:?}; exported: {exported:?}"
        );
    }
    host.stop(Duration::from_secs(10)).await;
    world.cleanup().await
}
