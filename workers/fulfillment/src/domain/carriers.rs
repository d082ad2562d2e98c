//! Carriers' words mapped onto ours: each vocabulary (EasyPost, AfterShip, Shippo, our own)
//! is a table of words, so adding a carrier's word is a data change. An unknown word is
//! kept in the history and moves nothing, rather than failing the message. Also where a
//! buyer can follow a parcel of a carrier we know.

use orderly_contracts::messages::StatusVocabulary;
use orderly_contracts::types::ShipmentStatus;

/// What a carrier's status word means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusMapping {
    /// The word maps onto this status.
    Status(ShipmentStatus),
    /// A known word that says nothing about where the parcel is (`unknown`, `Pending`).
    NoStatus,
    /// A word the vocabulary's table does not have.
    Unrecognised,
}

impl StatusMapping {
    /// The status, if the word has one.
    pub(crate) const fn status(self) -> Option<ShipmentStatus> {
        match self {
            Self::Status(status) => Some(status),
            Self::NoStatus | Self::Unrecognised => None,
        }
    }
}

/// One vocabulary: each word, and the status it maps to (`None`: known, but no status).
pub(crate) type VocabularyTable = &'static [(&'static str, Option<ShipmentStatus>)];

/// EasyPost tracker statuses.
///
/// `available_for_pickup` is `delivered`: our vocabulary counts delivery to a pick-up point
/// as delivery (an uncollected parcel later comes back as `return_to_sender`). `failure` is
/// EasyPost's undeliverable-attempt status; `cancelled` (the label was voided) and `error`
/// (the tracker broke) need a human.
pub(crate) const EASYPOST: VocabularyTable = &[
    ("pre_transit", Some(ShipmentStatus::LabelCreated)),
    ("in_transit", Some(ShipmentStatus::InTransit)),
    ("out_for_delivery", Some(ShipmentStatus::OutForDelivery)),
    ("delivered", Some(ShipmentStatus::Delivered)),
    ("available_for_pickup", Some(ShipmentStatus::Delivered)),
    ("return_to_sender", Some(ShipmentStatus::Returned)),
    ("failure", Some(ShipmentStatus::DeliveryFailed)),
    ("cancelled", Some(ShipmentStatus::Exception)),
    ("error", Some(ShipmentStatus::Exception)),
    ("unknown", None),
];

/// AfterShip tags. `Expired` (no news for 30 days) needs a human; `Pending` (nothing known
/// yet) says nothing.
pub(crate) const AFTERSHIP: VocabularyTable = &[
    ("InfoReceived", Some(ShipmentStatus::LabelCreated)),
    ("InTransit", Some(ShipmentStatus::InTransit)),
    ("OutForDelivery", Some(ShipmentStatus::OutForDelivery)),
    ("AttemptFail", Some(ShipmentStatus::DeliveryFailed)),
    ("Delivered", Some(ShipmentStatus::Delivered)),
    ("AvailableForPickup", Some(ShipmentStatus::Delivered)),
    ("Exception", Some(ShipmentStatus::Exception)),
    ("Expired", Some(ShipmentStatus::Exception)),
    ("Pending", None),
];

/// Shippo tracking statuses. `FAILURE` (lost, damaged, undeliverable) needs a human.
pub(crate) const SHIPPO: VocabularyTable = &[
    ("PRE_TRANSIT", Some(ShipmentStatus::LabelCreated)),
    ("TRANSIT", Some(ShipmentStatus::InTransit)),
    ("DELIVERED", Some(ShipmentStatus::Delivered)),
    ("RETURNED", Some(ShipmentStatus::Returned)),
    ("FAILURE", Some(ShipmentStatus::Exception)),
    ("UNKNOWN", None),
];

/// Our own words: each `ShipmentStatus` by its wire name.
pub(crate) const ORDERLY: VocabularyTable = &[
    ("label_created", Some(ShipmentStatus::LabelCreated)),
    ("in_transit", Some(ShipmentStatus::InTransit)),
    ("out_for_delivery", Some(ShipmentStatus::OutForDelivery)),
    ("delivered", Some(ShipmentStatus::Delivered)),
    ("delivery_failed", Some(ShipmentStatus::DeliveryFailed)),
    ("returned", Some(ShipmentStatus::Returned)),
    ("exception", Some(ShipmentStatus::Exception)),
];

/// The table of `vocabulary`.
pub(crate) const fn vocabulary_table(vocabulary: StatusVocabulary) -> VocabularyTable {
    match vocabulary {
        StatusVocabulary::Easypost => EASYPOST,
        StatusVocabulary::Aftership => AFTERSHIP,
        StatusVocabulary::Shippo => SHIPPO,
        StatusVocabulary::Orderly => ORDERLY,
    }
}

/// Maps `raw` (case-insensitive, surrounding spaces ignored) from `vocabulary` onto ours.
pub(crate) fn map_status(vocabulary: StatusVocabulary, raw: &str) -> StatusMapping {
    let raw = raw.trim();
    match vocabulary_table(vocabulary)
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(raw))
    {
        Some((_, Some(status))) => StatusMapping::Status(*status),
        Some((_, None)) => StatusMapping::NoStatus,
        None => StatusMapping::Unrecognised,
    }
}

/// Where a buyer can follow a parcel of a carrier we know; `None` for others.
pub(crate) fn tracking_url(carrier: &str, tracking_number: &str) -> Option<String> {
    let n = percent_encode(tracking_number);
    match carrier {
        "dhl" => Some(format!(
            "https://www.dhl.com/global-en/home/tracking.html?tracking-id={n}"
        )),
        "ups" => Some(format!("https://www.ups.com/track?tracknum={n}")),
        "dpd" => Some(format!("https://tracking.dpd.de/status/en_US/parcel/{n}")),
        "postnl" => Some(format!("https://postnl.nl/tracktrace/?B={n}")),
        "gls" => Some(format!("https://gls-group.com/track?match={n}")),
        _ => None,
    }
}

/// Percent-encodes everything but unreserved URL characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
