//! Tracking numbers and tracking events: which shipment a number is bound to (and so which
//! order a carrier update is about, for the lock keys), the events recorded in shipments'
//! histories, and which of them changed their shipment's state when they arrived.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{ShipmentUpdated, StatusVocabulary};
use orderly_contracts::types::ShipmentStatus;
use orderly_runtime::db;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::Observation;

use super::{location_json, parse};

/// A tracking event to record.
#[derive(Debug, Clone)]
pub(crate) struct NewTrackingEvent {
    /// The shipment.
    pub(crate) shipment_id: Uuid,
    /// The message that carried it.
    pub(crate) source_message_id: Uuid,
    /// Carrier code.
    pub(crate) carrier: String,
    /// Tracking number.
    pub(crate) tracking_number: String,
    /// Whose words.
    pub(crate) vocabulary: StatusVocabulary,
    /// The word.
    pub(crate) raw_status: String,
    /// The sender's sub-status, if it gave one.
    pub(crate) raw_substatus: Option<String>,
    /// Ours, if the word has one.
    pub(crate) mapped_status: Option<ShipmentStatus>,
    /// Carrier's text.
    pub(crate) description: Option<String>,
    /// Where.
    pub(crate) location: Option<serde_json::Value>,
    /// When, at the carrier.
    pub(crate) event_at: DateTime<Utc>,
    /// Delivery estimate.
    pub(crate) estimated_delivery_at: Option<DateTime<Utc>>,
    /// Whether it changed the shipment's state when it arrived.
    pub(crate) changed_state: bool,
}

impl NewTrackingEvent {
    /// The event carried by `update` in message `message_id`, for `shipment_id`.
    pub(crate) fn from_update(
        shipment_id: Uuid,
        message_id: Uuid,
        update: &ShipmentUpdated,
        mapped_status: Option<ShipmentStatus>,
    ) -> Self {
        Self {
            shipment_id,
            source_message_id: message_id,
            carrier: update.carrier.clone(),
            tracking_number: update.tracking_number.clone(),
            vocabulary: update.vocabulary,
            raw_status: update.raw_status.clone(),
            raw_substatus: update.raw_substatus.clone(),
            mapped_status,
            description: update.description.clone(),
            location: update.location.as_ref().map(location_json),
            event_at: update.event_at,
            estimated_delivery_at: update.estimated_delivery_at,
            changed_state: false,
        }
    }
}

/// The mapped events of a shipment, for the state machine.
pub(crate) async fn observations(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Vec<Observation>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, String, Uuid)> = sqlx::query_as(
        "select event_at, mapped_status, source_message_id from tracking_events
         where shipment_id = $1 and mapped_status is not null",
    )
    .bind(shipment_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(at, status, source)| {
            Ok(Observation {
                at,
                status: parse("mapped_status", status.parse::<ShipmentStatus>())?,
                source,
            })
        })
        .collect()
}

/// The order each carrier update is about, found through the shipment it names or, when
/// it names none, the shipment its tracking number is bound to: `(index, order)` for the
/// updates whose shipment is known, in one statement (no lock).
pub(crate) async fn orders_of_updates(
    conn: &mut PgConnection,
    updates: &[(Option<Uuid>, &str, &str)],
) -> Result<HashMap<usize, Uuid>, sqlx::Error> {
    if updates.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Option<Uuid>> = updates.iter().map(|(id, _, _)| *id).collect();
    let carriers: Vec<&str> = updates.iter().map(|(_, c, _)| *c).collect();
    let numbers: Vec<&str> = updates.iter().map(|(_, _, n)| *n).collect();
    let rows: Vec<(i64, Uuid)> = sqlx::query_as(
        // Lateral look-ups by primary key, whatever the planner thinks of the array's length.
        "select k.i, s.order_id
         from unnest($1::uuid[], $2::text[], $3::text[]) with ordinality as k(id, c, n, i)
         cross join lateral (
           select coalesce(k.id, (select t.shipment_id from tracking_numbers t
                                  where t.carrier = k.c and t.tracking_number = k.n)) as id
         ) named
         cross join lateral (
           select order_id from shipments where shipment_id = named.id
         ) s",
    )
    .bind(&ids)
    .bind(&carriers)
    .bind(&numbers)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(i, order)| Some((usize::try_from(i - 1).ok()?, order)))
        .collect())
}

/// The shipments these tracking numbers `(carrier, number)` are bound to, in one statement.
pub(crate) async fn bindings(
    conn: &mut PgConnection,
    numbers: &[(&str, &str)],
) -> Result<HashMap<(String, String), Uuid>, sqlx::Error> {
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    let carriers: Vec<&str> = numbers.iter().map(|(c, _)| *c).collect();
    let tracking: Vec<&str> = numbers.iter().map(|(_, n)| *n).collect();
    let rows: Vec<(String, String, Uuid)> = sqlx::query_as(
        "select t.carrier, t.tracking_number, t.shipment_id
         from unnest($1::text[], $2::text[]) as k(c, n)
         cross join lateral (
           select carrier, tracking_number, shipment_id from tracking_numbers
           where carrier = k.c and tracking_number = k.n
         ) t",
    )
    .bind(&carriers)
    .bind(&tracking)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c, n, id)| ((c, n), id)).collect())
}

/// A tracking number bound by a message.
#[derive(Debug, Clone)]
pub(crate) struct NewBinding {
    /// Carrier code.
    pub(crate) carrier: String,
    /// Tracking number.
    pub(crate) tracking_number: String,
    /// The shipment.
    pub(crate) shipment_id: Uuid,
    /// The message that bound it.
    pub(crate) message_id: Uuid,
}

/// Binds tracking numbers to shipments, in one statement (the caller knows none of them is
/// bound yet).
pub(crate) async fn bind_numbers(
    conn: &mut PgConnection,
    bound: &[NewBinding],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "insert into tracking_numbers (carrier, tracking_number, shipment_id, bound_by_message)
         select * from unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[])",
        bound,
    )
    .column(|b| b.carrier.as_str())
    .column(|b| b.tracking_number.as_str())
    .column(|b| b.shipment_id)
    .column(|b| b.message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records tracking events (each new: the caller checked), in one statement.
pub(crate) async fn insert_tracking_events(
    conn: &mut PgConnection,
    events: &[NewTrackingEvent],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "insert into tracking_events (shipment_id, source_message_id, carrier, tracking_number,
                                      vocabulary, raw_status, raw_substatus, mapped_status,
                                      description, location, event_at, estimated_delivery_at,
                                      changed_state)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[],
                              $11::timestamptz[], $12::timestamptz[], $13::bool[])",
        events,
    )
    .column(|x| x.shipment_id)
    .column(|x| x.source_message_id)
    .column(|x| x.carrier.as_str())
    .column(|x| x.tracking_number.as_str())
    .column(|x| x.vocabulary.as_str())
    .column(|x| x.raw_status.as_str())
    .column(|x| x.raw_substatus.as_deref())
    .column(|x| x.mapped_status.map(ShipmentStatus::as_str))
    .column(|x| x.description.as_deref())
    .column(|x| x.location.as_ref().map(Json))
    .column(|x| x.event_at)
    .column(|x| x.estimated_delivery_at)
    .column(|x| x.changed_state)
    .execute(conn)
    .await?;
    Ok(())
}

/// Notes that stored events `(shipment, source message)` changed their shipment's state on
/// arrival, in one statement.
pub(crate) async fn mark_state_changed(
    conn: &mut PgConnection,
    events: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "update tracking_events e set changed_state = true
         from unnest($1::uuid[], $2::uuid[]) as v(s, m)
         where e.shipment_id = v.s and e.source_message_id = v.m",
        events,
    )
    .column(|(s, _)| *s)
    .column(|(_, m)| *m)
    .execute(conn)
    .await?;
    Ok(())
}
