//! Every message type Orderly publishes reaches a consumer with CloudEvents attributes in its
//! AMQP headers that agree with its body: the golden example of each type, written to an
//! outbox and published by the real relay, is read back from a queue bound to the events
//! exchange (as an outbound queue is) and its headers compared with its envelope.

use std::{collections::BTreeMap, time::Duration};

use chrono::DateTime;
use orderly_runtime::{
    broker::header_str,
    outbox::{self, OutboxMessage},
    testing::World,
};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_type_carries_cloudevents_headers_that_match_its_body() -> anyhow::Result<()>
{
    let world = World::new().await?;
    let catalog = orderly_contracts::catalog();
    let types: Vec<&str> = catalog.iter().map(|s| s.message_type).collect();
    let mut tap = world.tap(&types).await?;
    let mut host = world.host();
    let pool = world.pool("orders").await?;
    let handoff = host.start_relay("orders", pool.clone());

    let rows: Vec<OutboxMessage> = catalog
        .iter()
        .map(|spec| {
            let body = (spec.example)();
            OutboxMessage {
                message_id: body["message_id"]
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .unwrap_or_default(),
                message_type: spec.message_type.to_owned(),
                correlation_id: body["correlation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body,
            }
        })
        .collect();
    let mut tx = pool.begin().await?;
    let written = outbox::insert(&mut tx, &rows).await?;
    tx.commit().await?;
    handoff.hand(written);

    let mut seen = BTreeMap::new();
    while seen.len() < catalog.len() {
        let (envelope, props) = tap.next_delivery(Duration::from_secs(30)).await?;
        let header = |name: &str| {
            let binding = header_str(&props, &format!("cloudEvents_{name}"))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("{}: no cloudEvents_{name}", envelope.message_type));
            let short = header_str(&props, &format!("ce-{name}")).map(str::to_owned);
            assert_eq!(
                short.as_deref(),
                Some(binding.as_str()),
                "{}: ce-{name} is cloudEvents_{name}",
                envelope.message_type
            );
            binding
        };
        let t = envelope.message_type.clone();
        assert_eq!(header("specversion"), "1.0", "{t}");
        assert_eq!(header("id"), envelope.message_id.to_string(), "{t}");
        assert_eq!(header("type"), t, "{t}");
        assert_eq!(header("source"), envelope.producer, "{t}");
        assert_eq!(header("subject"), envelope.correlation_id, "{t}");
        assert_eq!(
            DateTime::parse_from_rfc3339(&header("time"))?,
            envelope.occurred_at,
            "{t}"
        );
        assert_eq!(
            header("dataschema"),
            format!("urn:orderly:schema:{t}:v{}", envelope.schema_version),
            "{t}"
        );
        seen.insert(t, ());
    }
    assert_eq!(seen.len(), catalog.len(), "every type arrived");
    host.stop(Duration::from_secs(10)).await;
    pool.close().await;
    world.cleanup().await
}
