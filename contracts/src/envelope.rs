//! The envelope every Orderly message travels in.
//!
//! The whole envelope is the AMQP body (JSON), so a message read from a dead-letter queue, a
//! log or a file is self-describing. The same identifiers are also copied into the AMQP
//! properties (`message_id`, `type`, `correlation_id`, `timestamp`, `app_id`) for tooling that
//! only looks at properties; the body stays authoritative.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::error::ContractError;
use crate::json::Strict;
use crate::validate::Validate;

/// A message type with a fixed name and schema version.
///
/// `TYPE` is also the routing key on the events exchange. A breaking change to a payload is a
/// new type with a new `VERSION`; consumers state which versions they accept.
pub trait Message: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// Dotted message type, e.g. `order.placed`.
    const TYPE: &'static str;
    /// Schema version of this payload type.
    const VERSION: u16;
}

/// W3C trace context carried across hops so spans join up into one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct TraceContext {
    /// `traceparent` header value (`00-<trace id>-<span id>-<flags>`).
    pub traceparent: String,
}

/// Metadata shared by every message, independent of the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope<P> {
    /// Unique id of this message (UUIDv7: time-ordered). Consumers deduplicate on it.
    pub message_id: Uuid,
    /// Dotted message type; equals the routing key.
    pub message_type: String,
    /// Schema version of `payload`.
    pub schema_version: u16,
    /// The business entity this message is about; for everything in an order's life, the
    /// order's id. Groups a saga's messages in logs and traces.
    pub correlation_id: String,
    /// The message that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// When the fact happened at the producer.
    pub occurred_at: DateTime<Utc>,
    /// Who produced it (`orders`, `storefront`, `carrier:dhl`, ...).
    pub producer: String,
    /// Trace context of the span that produced the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// The message-type specific body.
    pub payload: P,
}

impl<P: Message> Envelope<P> {
    /// A new message with a fresh UUIDv7, stamped now.
    pub fn new(producer: impl Into<String>, correlation_id: impl Into<String>, payload: P) -> Self {
        Self {
            message_id: Uuid::now_v7(),
            message_type: P::TYPE.to_owned(),
            schema_version: P::VERSION,
            correlation_id: correlation_id.into(),
            causation_id: None,
            occurred_at: Utc::now(),
            producer: producer.into(),
            trace: None,
            payload,
        }
    }

    /// Marks this message as caused by `cause`, inheriting its correlation and trace.
    #[must_use]
    pub fn caused_by<Q>(mut self, cause: &Envelope<Q>) -> Self {
        self.causation_id = Some(cause.message_id);
        self.trace = cause.trace.clone();
        self
    }

    /// Serialises the envelope to its wire form.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data types with string map keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<P> Envelope<P> {
    /// Keeps the metadata, swaps the payload.
    pub fn map<Q>(self, f: impl FnOnce(P) -> Q) -> Envelope<Q> {
        Envelope {
            message_id: self.message_id,
            message_type: self.message_type,
            schema_version: self.schema_version,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            occurred_at: self.occurred_at,
            producer: self.producer,
            trace: self.trace,
            payload: f(self.payload),
        }
    }
}

/// An envelope whose payload has not been decoded yet: what the runtime sees first.
pub type RawEnvelope = Envelope<serde_json::Value>;

/// Decodes the envelope, leaving the payload as JSON.
///
/// Errors name the offending field (`message_id: invalid type ...`). A key named twice in any
/// object is refused (`payload.lines[0]: duplicate key `sku``), see [`crate::json`].
pub fn decode_raw(body: &[u8]) -> Result<RawEnvelope, ContractError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    // The payload is kept as JSON with duplicate keys refused (see `crate::json`); the
    // envelope's own fields refuse duplicates by derive.
    let env: Envelope<Strict> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ContractError::from_path("", e))?;
    de.end()
        .map_err(|e| ContractError::new("", format!("trailing data: {e}")))?;
    Ok(env.map(|Strict(payload)| payload))
}

impl RawEnvelope {
    /// Decodes the payload as `P`, checking type and version first.
    pub fn decode<P: Message>(self) -> Result<Envelope<P>, ContractError> {
        self.decode_versions::<P>(&[P::VERSION])
    }

    /// Decodes the payload as `P` like [`RawEnvelope::decode`], then checks its cross-field
    /// business rules ([`Validate`]). What a consumer should call: a payload that passes is
    /// well-formed and consistent; one that fails is bad input, to be dead-lettered with the
    /// error's field and reason, never retried.
    pub fn decode_valid<P: Message + Validate>(self) -> Result<Envelope<P>, ContractError> {
        let envelope = self.decode::<P>()?;
        envelope.payload.validate()?;
        Ok(envelope)
    }

    /// Like [`RawEnvelope::decode`], accepting any of `versions` (a consumer that reads an
    /// older version through a compatible payload type).
    pub fn decode_versions<P: Message>(
        self,
        versions: &[u16],
    ) -> Result<Envelope<P>, ContractError> {
        self.check_kind::<P>(versions)?;
        let mut payload = None;
        let env = self.map(|value| {
            payload = Some(serde_path_to_error::deserialize::<_, P>(value));
        });
        match payload {
            Some(Ok(p)) => Ok(env.map(|_| p)),
            Some(Err(e)) => Err(ContractError::from_path("payload", e)),
            None => Err(ContractError::new("payload", "missing")),
        }
    }

    /// The payload as `P`, checked like [`RawEnvelope::decode_valid`], read from the
    /// envelope in place: for a consumer that keeps the envelope (to retry or dead-letter it)
    /// and needs only the payload, without copying the JSON first.
    pub fn payload_valid<P: Message + Validate>(&self) -> Result<P, ContractError> {
        self.check_kind::<P>(&[P::VERSION])?;
        let payload: P = serde_path_to_error::deserialize(&self.payload)
            .map_err(|e| ContractError::from_path("payload", e))?;
        payload.validate()?;
        Ok(payload)
    }

    /// Like [`RawEnvelope::decode_valid`], from a borrowed envelope: the payload is decoded
    /// in place and the metadata copied (what a consumer that keeps the raw delivery calls).
    pub fn decode_valid_ref<P: Message + Validate>(&self) -> Result<Envelope<P>, ContractError> {
        let payload = self.payload_valid::<P>()?;
        Ok(Envelope {
            message_id: self.message_id,
            message_type: self.message_type.clone(),
            schema_version: self.schema_version,
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            occurred_at: self.occurred_at,
            producer: self.producer.clone(),
            trace: self.trace.clone(),
            payload,
        })
    }

    /// Checks that the envelope carries a `P` in one of `versions`.
    fn check_kind<P: Message>(&self, versions: &[u16]) -> Result<(), ContractError> {
        if self.message_type != P::TYPE {
            return Err(ContractError::new(
                "message_type",
                format!("expected `{}`, got `{}`", P::TYPE, self.message_type),
            ));
        }
        if !versions.contains(&self.schema_version) {
            return Err(ContractError::new(
                "schema_version",
                format!(
                    "version {} of `{}` is not accepted (accepted: {versions:?})",
                    self.schema_version,
                    P::TYPE
                ),
            ));
        }
        Ok(())
    }
}
