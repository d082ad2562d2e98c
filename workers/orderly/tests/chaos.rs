//! The fault suite's CI scenario: the orders worker `kill -9`'d mid-load, every worker its
//! own process against the suite's own PostgreSQL cluster and RabbitMQ node. `orderly chaos`
//! fails when any invariant breaks (docs/chaos.md lists them; their pure parts are unit
//! tests in `src/chaos/check.rs`); this test also reads the verdicts it printed. Like the
//! load generator, the suite is built with the feature `bench`, not into the product binary.
#![cfg(feature = "bench")]

use std::process::Command;

#[test]
fn the_orders_worker_killed_mid_load_loses_nothing_and_does_nothing_twice() {
    let out = Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args([
            "chaos",
            "--scenario",
            "kill-orders",
            "--orders",
            "240",
            "--rate",
            "30",
        ])
        .output()
        .expect("the orderly binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the fault suite failed:\n{stderr}\n{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| kill-orders | 240 |"))
        .unwrap_or_else(|| panic!("no report row for kill-orders:\n{stdout}"));
    assert!(row.ends_with("| all 8 hold |"), "{row}");
    // The fault happened: the suite says it injected it and the workers came back.
    assert!(
        stderr.contains("kill-orders: injecting the fault"),
        "{stderr}"
    );
    assert!(stderr.contains("ready again"), "{stderr}");
}
