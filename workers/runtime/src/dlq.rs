//! Dead letters: list, inspect, replay, purge (`orderly dlq ...`).
//!
//! Reading a queue without consuming it is done with `basic.get` and no acknowledgement: the
//! messages stay in the queue and go back to it when the channel closes. Replay is *copy,
//! confirm, then remove*: the message is published back to its consumer queue, and only when
//! the broker has confirmed the copy is the dead letter acknowledged (removed). A crash in
//! between leaves both copies; the consumer's inbox makes the second one a no-op.

use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties, Channel,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueuePurgeOptions},
    types::{AMQPValue, FieldTable},
};
use serde::Serialize;

use crate::broker::{
    self, HEADER_ATTEMPT, HEADER_DEAD_AT, HEADER_DEAD_REASON, HEADER_ORIGINAL_QUEUE, Names,
};

/// One dead letter as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The message id (from the properties; for undecodable bodies possibly absent).
    pub message_id: Option<String>,
    /// The message type.
    pub message_type: Option<String>,
    /// Why it is here.
    pub reason: String,
    /// The consumer queue it came from.
    pub original_queue: Option<String>,
    /// Handling attempts made.
    pub attempts: Option<u32>,
    /// When it was dead-lettered.
    pub dead_at: Option<DateTime<Utc>>,
    /// Every header, as text.
    pub headers: Vec<(String, String)>,
    /// The body, as UTF-8 text when it is.
    pub body: String,
}

/// A dead letter's id: its AMQP `message_id`, else the envelope's (a message published
/// without properties, by a producer outside Orderly, still has one in its body).
fn letter_id(props: &BasicProperties, data: &[u8]) -> Option<String> {
    props
        .message_id()
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(data)
                .ok()?
                .get("message_id")?
                .as_str()
                .map(str::to_owned)
        })
}

fn describe(props: &BasicProperties, data: &[u8]) -> DeadLetter {
    let headers: Vec<(String, String)> = props
        .headers()
        .as_ref()
        .map(|h| {
            h.inner()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), value_text(v)))
                .collect()
        })
        .unwrap_or_default();
    let broker_reason = headers
        .iter()
        .find(|(k, _)| k == "x-first-death-reason")
        .map(|(_, v)| format!("the broker dead-lettered it ({v}): it was delivered too many times without an acknowledgement"));
    DeadLetter {
        message_id: letter_id(props, data),
        message_type: props.kind().as_ref().map(|s| s.as_str().to_owned()),
        reason: broker::header_str(props, HEADER_DEAD_REASON)
            .map(str::to_owned)
            .or(broker_reason)
            .unwrap_or_else(|| "unknown".to_owned()),
        original_queue: broker::header_str(props, HEADER_ORIGINAL_QUEUE).map(str::to_owned),
        attempts: broker::header_u32(props, HEADER_ATTEMPT),
        dead_at: broker::header_str(props, HEADER_DEAD_AT)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc)),
        headers,
        body: String::from_utf8_lossy(data).into_owned(),
    }
}

fn value_text(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

/// Operator access to one consumer's dead-letter queue.
#[derive(Debug)]
pub struct DeadLetters<'a> {
    channel: &'a Channel,
    names: &'a Names,
    queue: String,
}

impl<'a> DeadLetters<'a> {
    /// Access to `queue`'s dead letters (`queue` without namespace, e.g. `orders`).
    pub fn new(channel: &'a Channel, names: &'a Names, queue: &str) -> Self {
        Self {
            channel,
            names,
            queue: queue.to_owned(),
        }
    }

    async fn get(&self) -> lapin::Result<Option<BasicGetMessage>> {
        self.channel
            .basic_get(
                self.names.dead_letter_queue(&self.queue).into(),
                BasicGetOptions { no_ack: false },
            )
            .await
    }

    /// Up to `limit` dead letters, oldest first, left in the queue. The caller should close
    /// the channel afterwards to hand them back promptly.
    pub async fn list(&self, limit: usize) -> lapin::Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.get().await? {
                Some(m) => out.push(describe(&m.delivery.properties, &m.delivery.data)),
                None => break,
            }
        }
        Ok(out)
    }

    /// Replays the dead letters whose message id is in `ids` (all of them when `ids` is
    /// empty) to the consumer queue with a fresh attempt budget. Returns how many.
    ///
    /// Only the letters in the queue when the replay began: one the worker refuses again
    /// while the replay is still going comes back to the end of the queue, and taking it
    /// again would replay it twice in one request (the console saw "2 replayed" for one).
    pub async fn replay(&self, ids: &[String]) -> anyhow::Result<usize> {
        self.channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut replayed = 0;
        // Letters still to look at, known from the first get (it says how many follow).
        let mut left: Option<u32> = None;
        while left != Some(0) {
            let Some(m) = self.get().await? else {
                break;
            };
            left = Some(left.unwrap_or(m.message_count + 1) - 1);
            let props = &m.delivery.properties;
            let id = letter_id(props, &m.delivery.data);
            let wanted = ids.is_empty() || id.as_ref().is_some_and(|id| ids.contains(id));
            if !wanted {
                continue;
            }
            let mut headers = FieldTable::default();
            if let Some(h) = props.headers() {
                for (k, v) in h.inner() {
                    let k = k.as_str();
                    let drop = k.starts_with("x-orderly-dead")
                        || k == HEADER_ORIGINAL_QUEUE
                        || k == HEADER_ATTEMPT
                        || k.starts_with("x-death")
                        || k.starts_with("x-first-death")
                        || k.starts_with("x-last-death");
                    if !drop {
                        headers.insert(k.into(), v.clone());
                    }
                }
            }
            let copy = props.clone().with_headers(headers);
            // Back through the partition exchange: to the partition of its order.
            crate::consumer::publish_confirmed(
                self.channel,
                &self.names.partition_exchange(&self.queue),
                "",
                &m.delivery.data,
                copy,
            )
            .await?;
            m.delivery.acker.ack(BasicAckOptions::default()).await?;
            replayed += 1;
        }
        Ok(replayed)
    }

    /// Removes the dead letters whose id is in `ids`, or all of them when `ids` is empty.
    pub async fn purge(&self, ids: &[String]) -> lapin::Result<usize> {
        if ids.is_empty() {
            let n = self
                .channel
                .queue_purge(
                    self.names.dead_letter_queue(&self.queue).into(),
                    QueuePurgeOptions::default(),
                )
                .await?;
            return Ok(n as usize);
        }
        let mut purged = 0;
        while let Some(m) = self.get().await? {
            let id = letter_id(&m.delivery.properties, &m.delivery.data);
            if id.is_some_and(|id| ids.contains(&id)) {
                m.delivery.acker.ack(BasicAckOptions::default()).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}
