//! The deployment files say the same as the code.

use orderly_runtime::{Settings, broker::Names, topology};

#[test]
fn broker_definitions_match_the_topology_the_workers_declare() {
    let settings = Settings::default();
    let generated = orderly::workers::broker_definitions(&settings, "/");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rabbitmq/definitions.json"
    );
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path).expect("deploy/rabbitmq/definitions.json exists"),
    )
    .expect("valid JSON");
    assert!(
        committed == generated,
        "deploy/rabbitmq/definitions.json is stale; regenerate with `orderly topology --definitions > deploy/rabbitmq/definitions.json`"
    );
}

#[test]
fn every_worker_has_its_own_broker_user_without_a_secret_and_guest_is_not_defined() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rabbitmq/definitions.json"
    );
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("definitions")).expect("JSON");
    let users = committed["users"].as_array().expect("users");
    let permissions = committed["permissions"].as_array().expect("permissions");
    assert!(
        users.iter().all(|u| u["name"] != "guest"),
        "guest stays the broker's own loopback-only user"
    );
    for worker in orderly::workers::names() {
        let user = format!("orderly-{worker}");
        let defined = users
            .iter()
            .find(|u| u["name"] == user.as_str())
            .unwrap_or_else(|| panic!("no broker user for worker `{worker}`"));
        assert_eq!(
            defined["password_hash"], "",
            "{user}: no secret in the repository"
        );
        let p = permissions
            .iter()
            .find(|p| p["user"] == user.as_str())
            .unwrap_or_else(|| panic!("no permissions for {user}"));
        assert_eq!(
            p["configure"],
            format!("^orderly\\.{worker}\\."),
            "{user} configures its own names only"
        );
    }
}

#[test]
fn every_worker_queue_has_a_delivery_limit_and_a_dead_letter_queue() {
    let settings = Settings::default();
    let names = Names::new("orderly");
    let defs = topology::definitions(&names, &topology::standard_specs(&settings), "/");
    let queues = defs["queues"].as_array().expect("queues");
    let find = |name: &str| {
        queues
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("{name} declared"))
    };
    for route in orderly_contracts::routing::routes() {
        let name = format!("orderly.{}", route.queue);
        if matches!(route.kind, orderly_contracts::routing::QueueKind::Worker) {
            // A worker's input: partitions behind a consistent-hash exchange (decision 0016).
            let partitions = settings.consumer_for(route.queue).partitions;
            assert!(partitions >= 1);
            for partition in names.partition_queues(route.queue, partitions) {
                let q = find(&partition);
                assert_eq!(q["arguments"]["x-queue-type"], "quorum", "{partition}");
                assert_eq!(
                    q["arguments"]["x-single-active-consumer"], true,
                    "{partition} has one active consumer"
                );
                assert!(
                    q["arguments"]["x-delivery-limit"]
                        .as_u64()
                        .is_some_and(|n| n > 0),
                    "{partition}"
                );
            }
            let exchange = names.partition_exchange(route.queue);
            assert!(
                defs["exchanges"]
                    .as_array()
                    .expect("exchanges")
                    .iter()
                    .any(|x| {
                        x["name"] == exchange.as_str()
                            && x["type"] == "x-consistent-hash"
                            && x["arguments"]["hash-property"] == "correlation_id"
                    }),
                "{exchange} hashes the correlation id"
            );
            assert!(
                queues
                    .iter()
                    .any(|q| q["name"] == format!("{name}.dlq").as_str()),
                "{name} has a DLQ"
            );
        } else {
            let q = find(&name);
            assert_eq!(q["arguments"]["x-queue-type"], "quorum", "{name}");
            assert!(
                q["arguments"]["x-max-length"].as_u64().is_some(),
                "{name} is length-limited"
            );
            assert_eq!(
                q["arguments"]["x-overflow"], "reject-publish",
                "{name} refuses rather than drops"
            );
        }
    }
}
