//! What a carrier's webhook says, decided without I/O: whose delivery it is ([`Vendor`]),
//! whether its signature holds ([`signature`]), and what `shipment.updated` it becomes
//! ([`decode`]: one module per vendor, sharing [`normalise`]).
//!
//! Everything here takes plain values (the body's bytes, header values, the time) and is
//! unit-tested with the vendors' documented samples; the HTTP layer only gathers the inputs
//! and acts on the answer.

pub(crate) mod aftership;
pub(crate) mod easypost;
pub(crate) mod normalise;
pub(crate) mod shippo;
pub(crate) mod signature;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderly_contracts::Validate;
use orderly_contracts::messages::{ShipmentUpdated, StatusVocabulary, TrackingLocation};
use sha2::{Digest, Sha256};

/// A carrier or tracking aggregator whose webhooks we take, named as in the URL
/// (`/webhooks/carriers/{vendor}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// EasyPost: an `Event` wrapping a `Tracker`.
    Easypost,
    /// AfterShip Tracking: a `tracking_update` with the tracking as `msg`.
    Aftership,
    /// Shippo: a `track_updated` with the track as `data`.
    Shippo,
}

impl Vendor {
    /// Every vendor, in the order the documentation lists them.
    pub const ALL: [Self; 3] = [Self::Easypost, Self::Aftership, Self::Shippo];

    /// The vendor named in a URL, if we know it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// Its name in URLs, settings, tables and `shipment.updated`'s `vocabulary`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Easypost => "easypost",
            Self::Aftership => "aftership",
            Self::Shippo => "shippo",
        }
    }

    /// Whose status words the mapped update carries: the vendor's own.
    pub(crate) const fn vocabulary(self) -> StatusVocabulary {
        match self {
            Self::Easypost => StatusVocabulary::Easypost,
            Self::Aftership => StatusVocabulary::Aftership,
            Self::Shippo => StatusVocabulary::Shippo,
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How deliveries are mapped, from the settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapOptions<'a> {
    /// Publish deliveries the vendor marks as test-mode (EasyPost `mode: test`, Shippo
    /// `test: true`) instead of acknowledging and dropping them.
    pub(crate) accept_test_events: bool,
    /// Our carrier code for a vendor's (normalised) carrier code, where they differ
    /// (`dhlexpress` → `dhl`).
    pub(crate) carrier_aliases: &'a BTreeMap<String, String>,
}

/// What a verified delivery comes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// A tracking event to publish once per delivery key.
    Publish {
        /// The vendor's identity of this delivery (see [`delivery_key`]).
        key: String,
        /// The event, in the contract's terms, valid.
        update: Box<ShipmentUpdated>,
    },
    /// A delivery to acknowledge and drop: not a tracking update (another event type), or
    /// a test-mode delivery while those are not accepted.
    Ignore {
        /// Why, for the answer and the log.
        reason: String,
    },
}

/// Why a verified delivery's content cannot be taken: the field (a path in the vendor's
/// JSON, `msg.checkpoints[2].checkpoint_time`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub(crate) struct Invalid {
    /// Where, in the vendor's JSON (empty for the body as a whole).
    pub(crate) field: String,
    /// Why.
    pub(crate) reason: String,
    /// Whether the body was not JSON at all (400) rather than JSON we cannot map (422).
    pub(crate) not_json: bool,
}

impl Invalid {
    pub(crate) fn at(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            not_json: false,
        }
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        Self::at(field, "missing")
    }
}

/// What every tracking update names, and where the vendor's JSON has each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named<'a> {
    /// The tracking number: (path, value).
    pub(crate) tracking_number: (&'static str, Option<&'a str>),
    /// The carrier.
    pub(crate) carrier: (&'static str, Option<&'a str>),
    /// The status word.
    pub(crate) status: (&'static str, Option<&'a str>),
    /// The sub-status word, which may be absent.
    pub(crate) substatus: (&'static str, Option<&'a str>),
}

/// The event itself: when, what the carrier wrote, where, and the delivery estimate.
#[derive(Debug, Clone)]
pub(crate) struct Happened {
    pub(crate) at: DateTime<Utc>,
    pub(crate) description: Option<String>,
    pub(crate) location: Option<TrackingLocation>,
    pub(crate) estimated_delivery_at: Option<DateTime<Utc>>,
}

/// The vendor's update as `shipment.updated`: each named part read by its rule (a missing
/// or unreadable one is refused, naming its path), in the vendor's vocabulary, with no
/// shipment id (vendors do not know ours: fulfillment finds the shipment by carrier and
/// tracking number).
pub(crate) fn update(
    vendor: Vendor,
    named: Named<'_>,
    happened: Happened,
    options: &MapOptions<'_>,
) -> Result<ShipmentUpdated, Invalid> {
    let (field, substatus) = named.substatus;
    Ok(ShipmentUpdated {
        shipment_id: None,
        carrier: required(named.carrier, |c| {
            normalise::carrier_code(c, options.carrier_aliases)
        })?,
        tracking_number: required(named.tracking_number, normalise::tracking_number)?,
        vocabulary: vendor.vocabulary(),
        raw_status: required(named.status, normalise::word)?,
        raw_substatus: normalise::optional_word(substatus).map_err(|e| Invalid::at(field, e))?,
        description: happened.description,
        event_at: happened.at,
        location: happened.location,
        estimated_delivery_at: happened.estimated_delivery_at,
    })
}

/// A value the vendor must send (path, value), read by `read`.
fn required<T>(
    (field, value): (&'static str, Option<&str>),
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Invalid> {
    read(value.ok_or_else(|| Invalid::missing(field))?).map_err(|e| Invalid::at(field, e))
}

/// The item with the latest time (the later one of equal times), skipping items without
/// one; an unreadable time is refused at `field(index)`.
pub(crate) fn latest<'a, T>(
    items: impl IntoIterator<Item = &'a T>,
    time: impl Fn(&T) -> Option<&str>,
    field: impl Fn(usize) -> String,
) -> Result<Option<(DateTime<Utc>, &'a T)>, Invalid> {
    let mut latest: Option<(DateTime<Utc>, &'a T)> = None;
    for (i, item) in items.into_iter().enumerate() {
        let Some(raw) = time(item).filter(|t| !t.trim().is_empty()) else {
            continue;
        };
        let at = normalise::time(raw).map_err(|e| Invalid::at(field(i), e))?;
        if latest.is_none_or(|(best, _)| at >= best) {
            latest = Some((at, item));
        }
    }
    Ok(latest)
}

/// The first of the candidate times (path, value) that is given, read.
pub(crate) fn first_time(
    candidates: &[(&'static str, Option<&str>)],
) -> Result<Option<DateTime<Utc>>, Invalid> {
    candidates
        .iter()
        .find_map(|(field, value)| value.map(|v| (*field, v)))
        .map(|(field, value)| normalise::time(value).map_err(|e| Invalid::at(field, e)))
        .transpose()
}

/// Reads `body` as the vendor's JSON into `T`, naming the field that does not fit. Unknown
/// fields are ignored: vendors add fields without notice, and we take only what we map.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        let not_json = inner.is_syntax() || inner.is_eof();
        let path = e.path().to_string();
        Invalid {
            // Broken JSON is the body's fault as a whole (the reason gives line and column).
            field: if not_json || path == "." {
                String::new()
            } else {
                path
            },
            reason: e.into_inner().to_string(),
            not_json,
        }
    })
}

/// Reads a JSON value already taken from the body (under `at`) into `T`.
pub(crate) fn parse_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    at: &str,
) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Invalid::at(
            if path == "." {
                at.to_owned()
            } else {
                format!("{at}.{path}")
            },
            e.into_inner().to_string(),
        )
    })
}

/// The identity of a delivery for deduplication: the vendor's event id when it sends one
/// (EasyPost `evt_…`, AfterShip `event_id`), otherwise the SHA-256 of the body (Shippo
/// sends no event id), so a replayed body is the same delivery.
pub(crate) fn delivery_key(event_id: Option<&str>, body: &[u8]) -> String {
    match event_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => normalise::truncate(id, 200),
        None => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    }
}

/// Decides what a verified delivery from `vendor` comes to.
pub(crate) fn decode(
    vendor: Vendor,
    body: &[u8],
    options: &MapOptions<'_>,
) -> Result<Decision, Invalid> {
    let decision = match vendor {
        Vendor::Easypost => easypost::decode(body, options)?,
        Vendor::Aftership => aftership::decode(body, options)?,
        Vendor::Shippo => shippo::decode(body, options)?,
    };
    if let Decision::Publish { update, .. } = &decision {
        // The mapping keeps to the contract's rules; this is the last line of defence, so a
        // mapping bug is a refusal that names the field, never an invalid message sent on.
        update.validate().map_err(|e| {
            Invalid::at(
                format!("(shipment.updated {})", e.field),
                format!("the mapped event breaks the contract: {}", e.reason),
            )
        })?;
    }
    Ok(decision)
}
