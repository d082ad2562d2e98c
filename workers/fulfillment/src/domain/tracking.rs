//! The tracking state machine and the one-off events a state owes.
//!
//! # The shipment state is a function of its history
//! Carriers send events late, twice and out of order. Rather than moving a stored state by
//! each event as it arrives (where the result would depend on the arrival order), the state
//! is [`derive()`]d from the whole tracking history every time: the events are sorted by the
//! carrier's `event_at` (ties broken by a fixed status order, then by message id) and folded
//! through one transition function ([`Tracking::step`]). The same set of events therefore
//! gives the same state in any arrival order, by construction.
//!
//! The transition function is monotonic:
//! - the main chain `requested < label_created < in_transit < out_for_delivery < delivered`
//!   only moves up by rank;
//! - `delivery_failed` and `exception` are side states, entered from `in_transit` or
//!   `out_for_delivery`, and left by an `in_transit`, `out_for_delivery` or `delivered` (or
//!   the other side state) with a strictly later `event_at`;
//! - `delivered` is terminal except for `returned`; `returned` is terminal; `cancelled` (ours,
//!   not a carrier's) is terminal.
//!
//! So a late `in_transit` after `delivered` changes nothing, a duplicate changes nothing, and
//! an event older than the state's last transition can only matter where it was the true
//! course of events (a `delivered` at 10:00 reported after an `exception` at 11:00 means the
//! parcel was delivered; the exception after delivery is kept in the history only).
//!
//! # Events owed, once
//! [`due_notices`] says which one-off events the current state calls for (`dispatched` once,
//! `delivered` once, one `exception` per exception status); the store remembers which were
//! sent, so each is published exactly once however often it is asked.

use chrono::{DateTime, Utc};
use orderly_contracts::types::ShipmentStatus;
use uuid::Uuid;

use super::state::ShipmentState;

/// A mapped tracking event, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observation {
    /// When it happened at the carrier.
    pub(crate) at: DateTime<Utc>,
    /// What it says.
    pub(crate) status: ShipmentStatus,
    /// The message that brought it (identifies the event; last tie-breaker).
    pub(crate) source: Uuid,
}

/// A shipment's tracking state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tracking {
    /// The state.
    pub(crate) state: ShipmentState,
    /// Carrier time of the event that moved the shipment into `state`.
    pub(crate) since: Option<DateTime<Utc>>,
    /// That event's source message.
    pub(crate) cause: Option<Uuid>,
    /// Carrier time of the first move into a dispatched state.
    pub(crate) dispatched_at: Option<DateTime<Utc>>,
}

impl Tracking {
    /// A shipment just requested: no tracking yet.
    pub(crate) const REQUESTED: Self = Self {
        state: ShipmentState::Requested,
        since: None,
        cause: None,
        dispatched_at: None,
    };

    /// The state after `obs`, or `None` when `obs` changes nothing. Assumes observations come
    /// in [`derive()`]'s order (never earlier than `self.since`).
    pub(crate) fn step(&self, obs: &Observation) -> Option<Self> {
        use ShipmentState as St;
        use ShipmentStatus as S;
        let to = St::from_status(obs.status);
        let later = self.since.is_none_or(|since| obs.at > since);
        let allowed = match self.state {
            St::Cancelled | St::Returned => false,
            St::Delivered => obs.status == S::Returned,
            St::Requested | St::LabelCreated | St::InTransit | St::OutForDelivery => {
                match obs.status {
                    S::LabelCreated | S::InTransit | S::OutForDelivery | S::Delivered => {
                        to.rank() > self.state.rank()
                    }
                    S::DeliveryFailed | S::Exception => {
                        matches!(self.state, St::InTransit | St::OutForDelivery)
                    }
                    S::Returned => true,
                }
            }
            St::DeliveryFailed | St::Exception => match obs.status {
                S::InTransit | S::OutForDelivery | S::Delivered => later,
                S::DeliveryFailed | S::Exception => to != self.state && later,
                S::LabelCreated => false,
                S::Returned => true,
            },
        };
        allowed.then(|| Self {
            state: to,
            since: Some(obs.at),
            cause: Some(obs.source),
            dispatched_at: self
                .dispatched_at
                .or_else(|| to.is_dispatched().then_some(obs.at)),
        })
    }
}

/// Order of statuses reported at the same instant: the course a parcel takes, with
/// `delivered` before the side states so that a delivery wins a tie.
const fn tie_order(status: ShipmentStatus) -> u8 {
    match status {
        ShipmentStatus::LabelCreated => 0,
        ShipmentStatus::InTransit => 1,
        ShipmentStatus::OutForDelivery => 2,
        ShipmentStatus::Delivered => 3,
        ShipmentStatus::DeliveryFailed => 4,
        ShipmentStatus::Exception => 5,
        ShipmentStatus::Returned => 6,
    }
}

/// The state a shipment is in after `observations`, whatever order they arrived in.
pub(crate) fn derive(observations: &[Observation]) -> Tracking {
    let mut sorted = observations.to_vec();
    sorted.sort_by_key(|o| (o.at, tie_order(o.status), o.source));
    sorted.iter().fold(Tracking::REQUESTED, |tracking, obs| {
        tracking.step(obs).unwrap_or(tracking)
    })
}

/// A one-off event about a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Notice {
    /// `shipment.dispatched` (and, when the order is invoiced per shipment, its invoice).
    Dispatched,
    /// `shipment.delivered`.
    Delivered,
    /// `shipment.exception` for this status (`delivery_failed`, `exception`, `returned`).
    Exception(ShipmentStatus),
}

impl Notice {
    /// The stored key (unique per shipment).
    pub(crate) fn key(self) -> String {
        match self {
            Self::Dispatched => "dispatched".to_owned(),
            Self::Delivered => "delivered".to_owned(),
            Self::Exception(status) => format!("exception:{status}"),
        }
    }

    /// Parses a stored key.
    pub(crate) fn parse(key: &str) -> Option<Self> {
        match key {
            "dispatched" => Some(Self::Dispatched),
            "delivered" => Some(Self::Delivered),
            other => other
                .strip_prefix("exception:")
                .and_then(|s| s.parse::<ShipmentStatus>().ok())
                .map(Self::Exception),
        }
    }
}

/// The one-off events `tracking` calls for that are not in `sent` yet, in publishing order.
///
/// Judged on the current state (not on the transition), so an event is never missed even if
/// an earlier run was interrupted; `sent` makes each happen once.
pub(crate) fn due_notices(tracking: &Tracking, sent: &[Notice]) -> Vec<Notice> {
    let mut due = Vec::new();
    if tracking.state.is_dispatched() {
        due.push(Notice::Dispatched);
    }
    match tracking.state {
        ShipmentState::Delivered => due.push(Notice::Delivered),
        ShipmentState::DeliveryFailed => {
            due.push(Notice::Exception(ShipmentStatus::DeliveryFailed));
        }
        ShipmentState::Exception => due.push(Notice::Exception(ShipmentStatus::Exception)),
        ShipmentState::Returned => due.push(Notice::Exception(ShipmentStatus::Returned)),
        _ => {}
    }
    due.retain(|notice| !sent.contains(notice));
    due
}
