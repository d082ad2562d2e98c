//! The fault suite's CI scenarios: the orders worker `kill -9`'d mid-load, and the deployment
//! secured as production runs it (TLS only, each worker its own broker user and database
//! role), every worker its own process against the suite's own PostgreSQL cluster and
//! RabbitMQ node. `orderly chaos` fails when any invariant breaks (docs/chaos.md lists them;
//! their pure parts are unit tests in `src/chaos/check.rs`); these tests also read the
//! verdicts it printed. Like the load generator, the suite is built with the feature
//! `bench`, not into the product binary.
#![cfg(feature = "bench")]

use std::process::Command;

/// Runs `scenario` with `orders` orders at 30/s; its stderr (the verdicts) and its report
/// row, once it passed.
fn run(scenario: &str, orders: usize) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["chaos", "--scenario", scenario, "--orders"])
        .arg(orders.to_string())
        .args(["--rate", "30"])
        .output()
        .expect("the orderly binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "scenario {scenario} failed:\n{stderr}\n{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {scenario} | {orders} |")))
        .unwrap_or_else(|| panic!("no report row for {scenario}:\n{stdout}"))
        .to_owned();
    (stderr, row)
}

#[test]
fn the_orders_worker_killed_mid_load_loses_nothing_and_does_nothing_twice() {
    let (stderr, row) = run("kill-orders", 240);
    assert!(row.ends_with("| all 8 hold |"), "{row}");
    // The fault happened: the suite says it injected it and the workers came back.
    assert!(
        stderr.contains("kill-orders: injecting the fault"),
        "{stderr}"
    );
    assert!(stderr.contains("ready again"), "{stderr}");
}

#[test]
fn workers_run_as_their_own_users_over_tls_and_what_they_may_not_do_is_refused() {
    let (stderr, row) = run("least-privilege-tls", 120);
    // The eight invariants of every scenario, and the six probes.
    assert!(row.ends_with("| all 14 hold |"), "{row}");
    for probe in [
        "ok   a worker's broker user can neither read nor feed another worker's queue",
        "ok   guest may connect from loopback only",
        "ok   every dead-letter queue expires its messages by the deployment's policy",
        "ok   a worker's database role cannot read another worker's tables",
        "ok   a client that cannot verify the broker's or the database's certificate is refused",
        "ok   no password in the workers' output, nor in a refused worker's error",
    ] {
        assert!(stderr.contains(probe), "{probe}\n{stderr}");
    }
}
