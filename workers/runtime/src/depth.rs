//! Samples how many messages wait in a worker's queue and its dead-letter queue, as the
//! broker counts them (a passive declare), into `orderly_queue_messages{queue}`: an alert on
//! a queue that keeps growing, or on dead letters piling up, then needs nothing but the
//! workers' own `/metrics`. A sample that fails (the broker is away) is skipped; the
//! consumer's own reconnection is what matters for work, this only watches.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lapin::{Connection, options::QueueDeclareOptions, types::FieldTable};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{broker, metrics::Metrics};

/// How often the depths are sampled.
pub(crate) const EVERY: Duration = Duration::from_secs(15);

/// Samples `queues` (broker names; the host adds a worker's as it starts it) every
/// [`EVERY`] until `shutdown`, on one connection.
pub(crate) async fn run(
    queues: Arc<Mutex<Vec<String>>>,
    broker_url: String,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut connection: Option<Connection> = None;
    loop {
        let names = queues.lock().map(|q| q.clone()).unwrap_or_default();
        if let Err(e) = sample(&mut connection, &names, &broker_url, &metrics).await {
            debug!(error = %e, "queue depths not sampled this time");
            connection = None;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
    if let Some(connection) = connection {
        let _ = connection.close(200, "shutdown".into()).await;
    }
}

async fn sample(
    connection: &mut Option<Connection>,
    queues: &[String],
    broker_url: &str,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    if connection.is_none() {
        *connection = Some(broker::connect(broker_url, "orderly-queue-depth").await?);
    }
    let Some(conn) = connection.as_ref() else {
        return Ok(());
    };
    let channel = conn.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    for queue in queues {
        let declared = channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await?;
        metrics.queue_depth(queue, declared.message_count());
    }
    let _ = channel.close(200, "ok".into()).await;
    Ok(())
}
