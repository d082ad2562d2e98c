//! The deployment files say the same as the code.

use orderly_runtime::{Settings, broker::Names, topology};

#[test]
fn broker_definitions_match_the_topology_the_workers_declare() {
    let settings = Settings::default();
    let generated = topology::definitions(
        &Names::new(settings.namespace.clone()),
        &topology::standard_specs(&settings),
        "/",
    );
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
fn every_worker_queue_has_a_delivery_limit_and_a_dead_letter_queue() {
    let settings = Settings::default();
    let defs = topology::definitions(
        &Names::new("orderly"),
        &topology::standard_specs(&settings),
        "/",
    );
    let queues = defs["queues"].as_array().expect("queues");
    for route in orderly_contracts::routing::routes() {
        let name = format!("orderly.{}", route.queue);
        let q = queues
            .iter()
            .find(|q| q["name"] == name.as_str())
            .expect("declared");
        assert_eq!(q["arguments"]["x-queue-type"], "quorum", "{name}");
        if matches!(route.kind, orderly_contracts::routing::QueueKind::Worker) {
            assert!(
                q["arguments"]["x-delivery-limit"]
                    .as_u64()
                    .is_some_and(|n| n > 0),
                "{name}"
            );
            assert!(
                queues
                    .iter()
                    .any(|q| q["name"] == format!("{name}.dlq").as_str()),
                "{name} has a DLQ"
            );
        } else {
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
