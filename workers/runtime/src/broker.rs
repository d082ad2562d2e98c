//! RabbitMQ connections, names and message properties.
//!
//! Every name the runtime declares is derived here from the namespace, so two environments
//! (or two tests) on one broker never see each other's messages.

use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::config::redact_url;

/// Header: handling attempt this delivery is (1 for the first).
pub const HEADER_ATTEMPT: &str = "x-orderly-attempt";
/// Header on dead letters: why the message was dead-lettered.
pub const HEADER_DEAD_REASON: &str = "x-orderly-dead-reason";
/// Header on dead letters: the queue it was taken from (where a replay sends it back).
pub const HEADER_ORIGINAL_QUEUE: &str = "x-orderly-original-queue";
/// Header on dead letters: when it was dead-lettered (RFC 3339).
pub const HEADER_DEAD_AT: &str = "x-orderly-dead-at";
/// `headers` with the CloudEvents attributes `ce` as the AMQP binding names them
/// (`cloudEvents_id`, ...) and, for tools that read the shorter `ce-` names (as on HTTP, and
/// as issue 21 lists them), as `ce-id`, ...: the same values under both (see
/// `orderly_contracts::cloudevents`).
pub fn with_cloudevents(
    mut headers: FieldTable,
    ce: &orderly_contracts::cloudevents::Attributes<'_>,
) -> FieldTable {
    use orderly_contracts::cloudevents::{AMQP_PREFIX, HTTP_PREFIX};
    for (name, value) in ce.pairs() {
        headers = with_str(headers, &format!("{HTTP_PREFIX}{name}"), value.clone());
        headers = with_str(headers, &format!("{AMQP_PREFIX}{name}"), value);
    }
    headers
}

/// Header: W3C traceparent of the producing span.
pub const HEADER_TRACEPARENT: &str = "traceparent";

/// The names of everything on the broker for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    namespace: String,
}

impl Names {
    /// Names under `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }

    /// The namespace itself.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The topic exchange every event is published to, with its type as routing key.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    /// The direct exchange the broker dead-letters to (delivery limit exceeded).
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.namespace)
    }

    /// A consumer's (or outbound) queue.
    pub fn queue(&self, queue: &str) -> String {
        format!("{}.{queue}", self.namespace)
    }

    /// The consistent-hash exchange in front of a worker's partitions: bound to the events
    /// exchange for each type the worker consumes, it routes a message to one partition by
    /// its correlation id. Retries and replays come back through it.
    pub fn partition_exchange(&self, queue: &str) -> String {
        format!("{}.{queue}.partitions", self.namespace)
    }

    /// The alternate exchange of a worker's partition exchange: a fanout to partition 0.
    pub fn unrouted_exchange(&self, queue: &str) -> String {
        format!("{}.{queue}.unrouted", self.namespace)
    }

    /// Partition `index` (from 0) of a worker's queue.
    pub fn partition_queue(&self, queue: &str, index: u16) -> String {
        format!("{}.{queue}.p{index}", self.namespace)
    }

    /// Every partition of a worker's queue split `partitions` ways.
    pub fn partition_queues(&self, queue: &str, partitions: u16) -> Vec<String> {
        (0..partitions)
            .map(|p| self.partition_queue(queue, p))
            .collect()
    }

    /// The dead-letter queue of a consumer queue.
    pub fn dead_letter_queue(&self, queue: &str) -> String {
        format!("{}.{queue}.dlq", self.namespace)
    }

    /// The direct exchange a worker publishes its retries to, each delay queue bound under
    /// its own name: a worker's broker user may then publish to its own exchanges only,
    /// never to the default exchange, through which it could put a message into any queue.
    pub fn delay_exchange(&self, queue: &str) -> String {
        format!("{}.{queue}.delays", self.namespace)
    }

    /// The `index`-th delay queue of a consumer queue (one per backoff step).
    pub fn retry_queue(&self, queue: &str, index: u32) -> String {
        format!("{}.{queue}.retry.{index}", self.namespace)
    }
}

/// The broker could not be reached, naming what was tried.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach RabbitMQ at {url}: {source}")]
pub struct BrokerUnreachable {
    /// The URL with its password redacted.
    pub url: String,
    /// What lapin said.
    #[source]
    pub source: lapin::Error,
}

/// How long one node may take to accept a connection before the next is tried.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The broker URLs in a `broker_url` setting: one, or several separated by commas (the
/// nodes of a cluster).
pub fn broker_urls(setting: &str) -> Vec<&str> {
    setting
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// Opens one AMQP connection named `name` (visible in the broker's connection list).
/// `urls` is one broker URL or several separated by commas (a cluster's nodes): they are
/// tried in turn, starting at a random one so that a fleet's connections spread over the
/// nodes, and the first that accepts is used. A node that is down refuses at once; one that
/// does not answer is given up after 10 s. Every caller reconnects through here, so losing
/// a node moves its connections to the others.
pub async fn connect(urls: &str, name: &str) -> Result<Connection, BrokerUnreachable> {
    let nodes = broker_urls(urls);
    let start = if nodes.len() > 1 {
        rand::random_range(0..nodes.len())
    } else {
        0
    };
    let mut failure = BrokerUnreachable {
        url: redact_url(urls),
        source: lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no broker URL given",
        )),
    };
    for url in nodes.iter().cycle().skip(start).take(nodes.len()) {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let attempt = async {
            let (url, tls) = tls_of(url)?;
            Connection::connect_with_config(&url, props, tls, lapin::runtime::default_runtime()?)
                .await
        };
        let source = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(source)) => source,
            Err(_) => lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            )),
        };
        failure = BrokerUnreachable {
            url: redact_url(url),
            source,
        };
    }
    Err(failure)
}

/// The TLS settings in a broker URL's query, named as RabbitMQ's URI spec names them, and
/// the URL without them: `cacertfile`, a PEM file of the certificate authorities to trust
/// besides the system's (a private CA's). An `amqps://` URL is verified (certificate chain
/// and host name) whatever the query says; lapin has no way to turn that off and we would
/// not offer one. Client certificates (`certfile`, `keyfile`) are refused by name rather
/// than ignored: a deployment counting on them must not connect without them.
pub fn tls_of(url: &str) -> Result<(String, lapin::tcp::OwnedTLSConfig), lapin::Error> {
    let invalid = |why: String| {
        lapin::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, why))
    };
    let mut tls = lapin::tcp::OwnedTLSConfig::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "cacertfile" => {
                let path = percent_decode(value);
                let pem = std::fs::read_to_string(&path)
                    .map_err(|e| invalid(format!("cacertfile {path}: {e}")))?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(invalid(format!(
                        "cacertfile {path} holds no PEM certificate"
                    )));
                }
                tls.cert_chain = Some(pem);
            }
            "certfile" | "keyfile" => {
                return Err(invalid(format!(
                    "`{key}` (a client certificate) is not supported; authenticate with the \
                     worker's user and password over amqps://"
                )));
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

/// `%XX` escapes in a URL query value decoded (a path with spaces, say).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a string header.
pub fn header_str<'a>(props: &'a BasicProperties, key: &str) -> Option<&'a str> {
    match props.headers().as_ref()?.inner().get(key)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Reads an integer header of any width.
pub fn header_u32(props: &BasicProperties, key: &str) -> Option<u32> {
    let value = props.headers().as_ref()?.inner().get(key)?;
    let n: i64 = match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => return None,
    };
    u32::try_from(n).ok()
}

/// Returns `headers` with `key` set to a string.
pub fn with_str(mut headers: FieldTable, key: &str, value: impl Into<String>) -> FieldTable {
    headers.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(value.into())),
    );
    headers
}

/// Returns `headers` with `key` set to an integer.
pub fn with_int(mut headers: FieldTable, key: &str, value: i64) -> FieldTable {
    headers.insert(ShortString::from(key), AMQPValue::LongLongInt(value));
    headers
}

/// Persistent JSON message properties for an envelope.
pub fn envelope_properties(
    message_id: &str,
    message_type: &str,
    correlation_id: &str,
    producer: &str,
    occurred_at_unix: u64,
    headers: FieldTable,
) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(message_id.into())
        .with_type(message_type.into())
        .with_correlation_id(correlation_id.into())
        .with_app_id(producer.into())
        .with_timestamp(occurred_at_unix)
        .with_headers(headers)
}

/// Observes the events exchange: a private (exclusive, auto-deleted) queue bound to `types`
/// (`#` for everything), consumed without acknowledgements. For the simulator, the load
/// generator and tests; the returned channel must be kept alive as long as the consumer.
pub async fn observe(
    connection: &Connection,
    names: &Names,
    types: &[&str],
) -> lapin::Result<(lapin::Channel, lapin::Consumer)> {
    use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
    let channel = connection.create_channel().await?;
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await?;
    for t in types {
        channel
            .queue_bind(
                queue.name().clone(),
                names.events_exchange().into(),
                (*t).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let consume = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "observer".into(),
            consume,
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_is_read_from_the_query_and_taken_out_of_the_url() {
        let dir = std::env::temp_dir().join(format!("orderly-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("my ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let url = format!(
            "amqps://u:p@h:5671/%2f?heartbeat=10&cacertfile={}",
            ca.display().to_string().replace(' ', "%20")
        );
        let (plain, tls) = tls_of(&url).unwrap();
        assert_eq!(plain, "amqps://u:p@h:5671/%2f?heartbeat=10");
        assert!(tls.cert_chain.unwrap().contains("BEGIN CERTIFICATE"));

        let (plain, tls) = tls_of("amqp://h/%2f").unwrap();
        assert_eq!(plain, "amqp://h/%2f");
        assert!(tls.cert_chain.is_none());

        let missing = tls_of("amqps://h/%2f?cacertfile=/nonexistent/ca.pem").unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/ca.pem"),
            "{missing}"
        );
        std::fs::write(&ca, "not a certificate").unwrap();
        let garbage = tls_of(&url).unwrap_err();
        assert!(
            garbage.to_string().contains("no PEM certificate"),
            "{garbage}"
        );
        let client = tls_of("amqps://h/%2f?certfile=/c.pem").unwrap_err();
        assert!(client.to_string().contains("certfile"), "{client}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
