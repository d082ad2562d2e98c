//! All of fulfillment's SQL, one module per topic. Every function takes the connection
//! (inside the handler's transaction, or a pool connection for operators' listings); table
//! names are unqualified because the worker's `search_path` is its own schema.
//!
//! Values go in as the contract types' wire forms and come back through the same parsers,
//! so a row that no longer parses (edited by hand) is an error that names the column, not a
//! silently wrong message.
//!
//! Only the operators' reads ([`history`], [`list_unmatched`], [`consistency_report`]) are
//! public; everything the message path writes and reads stays inside the crate.

mod cancellations;
mod holds;
mod notices;
mod orders;
mod reads;
mod settings;
mod shipments;
mod tracking;
mod unmatched;

use orderly_contracts::messages::TrackingLocation;

pub use reads::{Finding, TrackingEvent, consistency_report, history, list_unmatched};
pub use unmatched::UnmatchedEvent;

pub(crate) use cancellations::{cancellations, cancellations_of, record_cancellation};
pub(crate) use holds::{held_orders, park_reservations, record_hold, take_parked};
pub(crate) use notices::{
    NewInvoiceRequest, orders_invoiced, record_invoice_requests, record_notices,
};
pub(crate) use orders::{
    SnapshotWrite, StoredOrder, load_order, load_orders, save_invoice_progress, update_addresses,
    upsert_orders,
};
pub(crate) use settings::{invoice_timings, upsert_store_settings};
pub(crate) use shipments::{
    HeldEvent, Shipment, ShipmentFacts, cancel_shipment, insert_shipments, items_of_order,
    lock_shipments, mark_shipments_created, save_shipments, set_item_quantity, shipment_facts,
    shipments_of_order,
};
pub(crate) use tracking::{
    NewBinding, NewTrackingEvent, bind_numbers, bindings, insert_tracking_events,
    mark_state_changed, orders_of_updates,
};
pub(crate) use unmatched::{record_unmatched, resolve_unmatched, waiting_unmatched};

/// A stored value that does not parse any more.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("fulfillment: stored {what} is invalid: {detail}").into())
}

/// `r`, or the error of a stored `what` that does not parse.
fn parse<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, sqlx::Error> {
    r.map_err(|e| corrupt(what, e))
}

/// A stored count of units, which must fit a `u32`.
fn units(what: &str, n: i64) -> Result<u32, sqlx::Error> {
    parse(what, u32::try_from(n))
}

/// A tracking location as stored (JSON).
fn location_json(location: &TrackingLocation) -> serde_json::Value {
    serde_json::to_value(location).unwrap_or(serde_json::Value::Null)
}
