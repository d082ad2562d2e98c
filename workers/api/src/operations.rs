//! What operators see of the running system without reading another worker's tables: the
//! broker's view of every queue (messages waiting, consumers, dead letters) and each
//! worker queue's dead letters, with replay and purge (the runtime's [`dlq`], the same code
//! as `orderly dlq`). A worker queue with no consumer is a worker that is not running.
//!
//! Why the broker: the api worker owns only the `api` schema; the broker is what every
//! worker shares by design, and its queues say how far behind each worker is and what it
//! refused. A short-lived connection per request: the page is for people, a few requests a
//! minute, and a connection that outlives a broker restart is not worth keeping.

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use orderly_contracts::routing::{self, QueueKind};
use orderly_runtime::broker::{self, Names};
use orderly_runtime::dlq::{DeadLetter, DeadLetters};

/// How the api worker reaches the broker for the operations page.
#[derive(Debug, Clone)]
pub(crate) struct BrokerAccess {
    pub(crate) url: String,
    pub(crate) names: Names,
    /// Partitions of each worker's queue, by its name (as the settings declare them).
    pub(crate) partitions: std::collections::BTreeMap<&'static str, u16>,
}

/// One queue as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueState {
    /// The logical name (`orders`, `out.warehouse`).
    pub(crate) queue: &'static str,
    /// A worker's queue (else one for a consumer outside Orderly).
    pub(crate) worker: bool,
    /// Messages waiting (ready; not those being handled), in all partitions.
    pub(crate) waiting: Option<u32>,
    /// Consumers attached; for a worker, its partitions' active consumers (the broker counts
    /// a single-active-consumer queue's stand-bys apart): 0 means the worker is not running.
    pub(crate) consumers: Option<u32>,
    /// Messages in its dead-letter queue (worker queues).
    pub(crate) dead: Option<u32>,
}

/// Why the broker could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("the broker: {0}")]
pub(crate) struct BrokerError(String);

impl From<lapin::Error> for BrokerError {
    fn from(e: lapin::Error) -> Self {
        Self(e.to_string())
    }
}

impl BrokerAccess {
    async fn connect(&self) -> Result<(Connection, Channel), BrokerError> {
        let name = format!("orderly-api-operations@{}", self.names.namespace());
        let connection = broker::connect(&self.url, &name)
            .await
            .map_err(|e| BrokerError(e.to_string()))?;
        let channel = connection.create_channel().await?;
        Ok((connection, channel))
    }

    /// Every queue of the routing table, in its order. A queue the broker does not have
    /// (not declared yet) is reported with no figures.
    pub(crate) async fn queues(&self) -> Result<Vec<QueueState>, BrokerError> {
        let (connection, mut channel) = self.connect().await?;
        let mut out = Vec::new();
        for route in routing::routes() {
            let worker = route.kind == QueueKind::Worker;
            let main = if worker {
                // A partition reports its active consumer only: the least of them says
                // whether every partition is being consumed.
                let partitions = self.partitions.get(route.queue).copied().unwrap_or(1);
                let mut total: Option<(u32, u32)> = Some((0, u32::MAX));
                for queue in self.names.partition_queues(route.queue, partitions) {
                    let (part, ch) = count(&connection, channel, &queue).await?;
                    channel = ch;
                    total = total
                        .zip(part)
                        .map(|((m, c), (pm, pc))| (m + pm, c.min(pc)));
                }
                total
            } else {
                let (main, ch) =
                    count(&connection, channel, &self.names.queue(route.queue)).await?;
                channel = ch;
                main
            };
            let dead = if worker {
                let (dead, ch) = count(
                    &connection,
                    channel,
                    &self.names.dead_letter_queue(route.queue),
                )
                .await?;
                channel = ch;
                dead.map(|(messages, _)| messages)
            } else {
                None
            };
            out.push(QueueState {
                queue: route.queue,
                worker,
                waiting: main.map(|(messages, _)| messages),
                consumers: main.map(|(_, consumers)| consumers),
                dead,
            });
        }
        let _ = connection.close(200, "done".into()).await;
        Ok(out)
    }

    /// Up to `limit` of `queue`'s dead letters, oldest first (left in place).
    pub(crate) async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BrokerError> {
        let (connection, channel) = self.connect().await?;
        let letters = DeadLetters::new(&channel, &self.names, queue)
            .list(limit)
            .await;
        // Closing hands the looked-at letters back to the queue at once.
        let _ = connection.close(200, "done".into()).await;
        Ok(letters?)
    }

    /// Replays `ids` of `queue`'s dead letters (all when empty) to the worker; how many.
    pub(crate) async fn replay(&self, queue: &str, ids: &[String]) -> Result<usize, BrokerError> {
        let (connection, channel) = self.connect().await?;
        let replayed = DeadLetters::new(&channel, &self.names, queue)
            .replay(ids)
            .await
            .map_err(|e| BrokerError(e.to_string()));
        let _ = connection.close(200, "done".into()).await;
        replayed
    }

    /// Removes `ids` of `queue`'s dead letters (all when empty); how many.
    pub(crate) async fn purge(&self, queue: &str, ids: &[String]) -> Result<usize, BrokerError> {
        let (connection, channel) = self.connect().await?;
        let purged = DeadLetters::new(&channel, &self.names, queue)
            .purge(ids)
            .await;
        let _ = connection.close(200, "done".into()).await;
        Ok(purged?)
    }
}

/// `(messages, consumers)` of `queue` by a passive declare, or `None` when the broker has
/// no such queue (which closes the channel: a new one is returned for the next question).
async fn count(
    connection: &Connection,
    channel: Channel,
    queue: &str,
) -> Result<(Option<(u32, u32)>, Channel), BrokerError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(q) => Ok((Some((q.message_count(), q.consumer_count())), channel)),
        Err(_) => Ok((None, connection.create_channel().await?)),
    }
}

/// Whether `queue` names a worker's queue (the only ones with dead letters); what an
/// operator's form may name.
pub(crate) fn is_worker_queue(queue: &str) -> bool {
    routing::route(queue).is_some_and(|r| r.kind == QueueKind::Worker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_worker_queues_have_dead_letters_to_act_on() {
        assert!(is_worker_queue("orders"));
        assert!(is_worker_queue("api"));
        assert!(!is_worker_queue("out.warehouse"));
        assert!(!is_worker_queue("orders; drop"));
        assert!(!is_worker_queue(""));
    }
}
