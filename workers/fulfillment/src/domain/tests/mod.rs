//! Unit tests of the pure rules, with plain values, one file per concern; the helpers they
//! share are here.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use orderly_contracts::Validate;
use orderly_contracts::messages::{
    AllocatedLine, Allocation, CancellationScope, InvoiceTiming, OrderAccepted, StatusVocabulary,
};
use orderly_contracts::types::{Amount, Quantity, ShipmentStatus, Sku, WarehouseId};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;

use ShipmentStatus as S;

mod carriers;
mod invoices;
mod shipments;
mod tracking;

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 8, minute, 0)
        .single()
        .expect("valid time")
}

fn obs(status: ShipmentStatus, minute: u32, n: u128) -> Observation {
    Observation {
        at: t(minute),
        status,
        source: Uuid::from_u128(n),
    }
}

fn state_of(events: &[Observation]) -> ShipmentState {
    derive(events).state
}

fn golden_order() -> OrderAccepted {
    let example = (orderly_contracts::catalog::spec("order.accepted", 1)
        .expect("order.accepted v1")
        .example)();
    serde_json::from_value::<orderly_contracts::RawEnvelope>(example)
        .expect("envelope")
        .decode_valid::<OrderAccepted>()
        .expect("valid example")
        .payload
}
