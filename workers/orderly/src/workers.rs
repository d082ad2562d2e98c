//! The workers built into this binary: the one list of them, what each consumes, and how
//! each is started.
//!
//! Why one list: the routing table (`orderly_contracts::routing`), the handlers' declared
//! inputs and the deployment files (`deploy/compose.yaml`, `deploy/k8s/workers.yaml`) all
//! name the workers; the tests below hold them to this list, so a worker missing from a
//! deployment, or a message type routed to a worker that does not handle it, fails CI
//! instead of a production deployment.

use std::net::SocketAddr;

use orderly_runtime::{Handler, Host, Inputs};

/// One built-in worker.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// Its name: queue (if it consumes), schema and `orderly run <name>`.
    pub name: &'static str,
    /// The message types its handler declares (its `Handler::Input`); none for a worker
    /// that takes its input over HTTP and has no queue.
    pub consumes: &'static [&'static str],
}

impl BuiltIn {
    /// Whether it reads a queue (and so has a route, and scales on the queue's depth).
    pub const fn has_queue(&self) -> bool {
        !self.consumes.is_empty()
    }
}

const fn built_in<H: Handler>(name: &'static str) -> BuiltIn {
    BuiltIn {
        name,
        consumes: <H::Input as Inputs>::TYPES,
    }
}

/// A worker whose input is HTTP (carriers' webhooks), not messages: no handler, no queue,
/// no route; it only publishes, through its outbox.
const fn http_input(name: &'static str) -> BuiltIn {
    BuiltIn {
        name,
        consumes: &[],
    }
}

/// Every worker built into this binary, in the order `orderly run all` starts them.
pub const BUILT_IN: &[BuiltIn] = &[
    built_in::<orderly_orders::OrdersHandler>(orderly_orders::NAME),
    built_in::<orderly_inventory::InventoryHandler>(orderly_inventory::NAME),
    built_in::<orderly_fulfillment::FulfillmentHandler>(orderly_fulfillment::NAME),
    built_in::<orderly_invoicing::InvoicingHandler>(orderly_invoicing::NAME),
    built_in::<orderly_notifications::NotificationsHandler>(orderly_notifications::NAME),
    http_input(orderly_ingress::NAME),
    built_in::<orderly_api::ApiHandler>(orderly_api::NAME),
    built_in::<orderly_setups::SetupsHandler>(orderly_setups::NAME),
];

/// The broker definitions `deploy/rabbitmq/definitions.json` holds (`orderly topology
/// --definitions`): the topology the workers declare, and a user per built-in worker with
/// permissions on its own names only (`orderly_runtime::access`); the api, which shows and
/// replays every worker's dead letters, also on those.
pub fn broker_definitions(settings: &orderly_runtime::Settings, vhost: &str) -> serde_json::Value {
    use orderly_runtime::{access, broker::Names, topology};
    let names = Names::new(settings.namespace.clone());
    let mut definitions = topology::definitions(&names, &topology::standard_specs(settings), vhost);
    let workers: Vec<(&str, bool)> = BUILT_IN
        .iter()
        .map(|w| (w.name, w.name == orderly_api::NAME))
        .collect();
    let (users, permissions) = access::broker_definitions(&names, &workers, vhost);
    definitions["users"] = users.into();
    definitions["permissions"] = permissions.into();
    definitions
}

/// The names of the built-in workers.
pub fn names() -> Vec<String> {
    BUILT_IN.iter().map(|w| w.name.to_owned()).collect()
}

/// A started worker.
#[derive(Debug, Clone)]
pub struct Running {
    /// Its name.
    pub name: &'static str,
    /// Where its own HTTP endpoint listens, for a worker that serves one (ingress, api).
    pub listening: Option<SocketAddr>,
}

/// Starts worker `name` in `host`, with its background tasks and their settings
/// (`[renderer]`, `[webhooks]`, `[notifications]`, `[ingress]`, `[api]`,
/// `[setups]`) from the host's
/// configuration.
pub async fn start(host: &mut Host, name: &str) -> anyhow::Result<()> {
    start_listening(host, name).await.map(|_| ())
}

/// Like [`start`]; returns where the worker's own HTTP endpoint listens, if it has one.
pub async fn start_listening(host: &mut Host, name: &str) -> anyhow::Result<Option<SocketAddr>> {
    let started = match name {
        orderly_orders::NAME => {
            host.start_worker(name, orderly_orders::OrdersHandler::new())
                .await
        }
        orderly_inventory::NAME => {
            host.start_worker(name, orderly_inventory::InventoryHandler::new())
                .await
        }
        orderly_fulfillment::NAME => {
            host.start_worker(name, orderly_fulfillment::FulfillmentHandler)
                .await
        }
        orderly_invoicing::NAME => {
            let rendering = host.settings().section("renderer")?;
            orderly_invoicing::start(host, orderly_invoicing::InvoicingHandler::new(), rendering)
                .await
        }
        orderly_notifications::NAME => {
            let webhooks = host.settings().section("webhooks")?;
            let settings: orderly_notifications::NotificationSettings =
                host.settings().section("notifications")?;
            orderly_notifications::start(
                host,
                orderly_notifications::NotificationsHandler::new()
                    .naming_retries(settings.name_retries),
                webhooks,
            )
            .await
        }
        orderly_setups::NAME => {
            let settings = host.settings().section("setups")?;
            orderly_setups::start(host, settings).await
        }
        orderly_ingress::NAME => {
            let ingress = host.settings().section("ingress")?;
            return orderly_ingress::start(host, ingress).await.map(Some);
        }
        orderly_api::NAME => {
            let api = host.settings().section("api")?;
            return orderly_api::start(host, api).await.map(Some);
        }
        other => anyhow::bail!("unknown worker `{other}`; built in: {}", names().join(", ")),
    };
    started.map(|()| None)
}

/// Starts every built-in worker; returns them, with where those that serve HTTP listen.
pub async fn start_all(host: &mut Host) -> anyhow::Result<Vec<Running>> {
    let mut running = Vec::with_capacity(BUILT_IN.len());
    for worker in BUILT_IN {
        let listening = start_listening(host, worker.name).await?;
        running.push(Running {
            name: worker.name,
            listening,
        });
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use orderly_contracts::routing::{QueueKind, routes};
    use orderly_runtime::inputs::check_routes;

    use super::BUILT_IN;

    /// Every type routed to a worker is handled by it, and every type it handles is routed
    /// to it; every worker queue of the routing table is a built-in worker; a worker that
    /// consumes nothing (HTTP input) has no queue, so nothing is routed where nobody reads.
    #[test]
    fn every_worker_handles_exactly_what_the_routing_table_sends_it() {
        for worker in BUILT_IN {
            assert_eq!(
                check_routes(worker.name, worker.consumes),
                Ok(()),
                "worker `{}`",
                worker.name
            );
            assert_eq!(
                orderly_contracts::routing::route(worker.name).is_some(),
                worker.has_queue(),
                "worker `{}`: a queue in the routing table exactly when it consumes messages",
                worker.name
            );
        }
        for route in routes().iter().filter(|r| r.kind == QueueKind::Worker) {
            assert!(
                BUILT_IN.iter().any(|w| w.name == route.queue),
                "the routing table has a worker queue `{}` that no built-in worker reads",
                route.queue
            );
        }
    }

    fn deploy_file(path: &str) -> String {
        let path = format!("{}/../../deploy/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The workers each deployment file runs (`orderly run <name>`), in file order.
    fn run_commands(text: &str) -> Vec<String> {
        text.match_indices(r#"["orderly", "run", ""#)
            .filter_map(|(at, prefix)| {
                let rest = &text[at + prefix.len()..];
                rest.split('"').next().map(str::to_owned)
            })
            .collect()
    }

    /// A deployment made from `deploy/` runs every built-in worker, and nothing else.
    #[test]
    fn the_deployment_files_run_every_built_in_worker() {
        let mut expected: Vec<String> = BUILT_IN.iter().map(|w| w.name.to_owned()).collect();
        expected.sort();
        for file in ["compose.yaml", "k8s/workers.yaml"] {
            let mut running = run_commands(&deploy_file(file));
            running.sort();
            assert_eq!(running, expected, "deploy/{file}");
        }
        let k8s = deploy_file("k8s/workers.yaml");
        for worker in BUILT_IN {
            if worker.has_queue() {
                assert!(
                    k8s.contains(&format!(r"queueName: orderly\.{}\.p[0-9]+,", worker.name)),
                    "deploy/k8s/workers.yaml scales `{}` on its queue depth",
                    worker.name
                );
            } else {
                // An HTTP worker is reached through a Service and scales on CPU.
                for needed in [
                    format!("kind: Service\nmetadata: {{ name: orderly-{},", worker.name),
                    format!("scaleTargetRef: {{ name: orderly-{} }}", worker.name),
                ] {
                    assert!(
                        k8s.contains(&needed),
                        "deploy/k8s/workers.yaml lacks `{needed}` for `{}`",
                        worker.name
                    );
                }
            }
        }
    }
}
