//! EasyPost: an `Event` (`evt_…`) whose `result` is a `Tracker` for `tracker.created` and
//! `tracker.updated`.
//!
//! A tracker carries its whole history (`tracking_details`); we publish its **current**
//! status once per event: `raw_status` is the tracker's `status`, `raw_substatus` its
//! `status_detail`, and the time, message and place come from its latest tracking detail
//! (by `datetime`). Earlier details were published when they were current (each arrived
//! as an event of its own); publishing the history again would only repeat them.
//!
//! Other event types (`batch.updated`, `shipment.purchased`, …) are acknowledged and
//! dropped, so a webhook subscribed to everything does not fail. `mode: test` events are
//! dropped unless test events are accepted.

use orderly_contracts::messages::TrackingLocation;
use serde::Deserialize;

use super::normalise::{self, DESCRIPTION_MAX};
use super::{
    Decision, Happened, Invalid, MapOptions, Named, Vendor, delivery_key, first_time, latest,
    parse, parse_value, update,
};

#[derive(Debug, Deserialize)]
struct Event {
    id: Option<String>,
    description: Option<String>,
    mode: Option<String>,
    result: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Tracker {
    tracking_code: Option<String>,
    status: Option<String>,
    status_detail: Option<String>,
    carrier: Option<String>,
    est_delivery_date: Option<String>,
    updated_at: Option<String>,
    tracking_details: Option<Vec<Detail>>,
}

#[derive(Debug, Deserialize)]
struct Detail {
    message: Option<String>,
    description: Option<String>,
    datetime: Option<String>,
    tracking_location: Option<Location>,
}

#[derive(Debug, Deserialize)]
struct Location {
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    zip: Option<String>,
}

pub(crate) fn decode(body: &[u8], options: &MapOptions<'_>) -> Result<Decision, Invalid> {
    let event: Event = parse(body)?;
    let kind = event.description.as_deref().unwrap_or_default();
    if !matches!(kind, "tracker.created" | "tracker.updated") {
        return Ok(Decision::Ignore {
            reason: format!("EasyPost event `{kind}` is not a tracker event"),
        });
    }
    if event.mode.as_deref() == Some("test") && !options.accept_test_events {
        return Ok(Decision::Ignore {
            reason: "EasyPost test-mode event (ingress.accept_test_events is off)".to_owned(),
        });
    }
    let result = event.result.ok_or_else(|| Invalid::missing("result"))?;
    let tracker: Tracker = parse_value(result, "result")?;

    let latest = latest(
        tracker.tracking_details.iter().flatten(),
        |d| d.datetime.as_deref(),
        |i| format!("result.tracking_details[{i}].datetime"),
    )?;
    let at = match latest {
        Some((at, _)) => at,
        None => first_time(&[("result.updated_at", tracker.updated_at.as_deref())])?.ok_or_else(
            || {
                Invalid::at(
                    "result.tracking_details",
                    "no detail with a datetime, and no updated_at to date the status by",
                )
            },
        )?,
    };
    let detail = latest.map(|(_, d)| d);
    let happened = Happened {
        at,
        description: detail.and_then(|d| {
            normalise::text(
                d.message.as_deref().or(d.description.as_deref()),
                DESCRIPTION_MAX,
            )
        }),
        location: detail
            .and_then(|d| d.tracking_location.as_ref())
            .and_then(location),
        estimated_delivery_at: first_time(&[(
            "result.est_delivery_date",
            tracker.est_delivery_date.as_deref(),
        )])?,
    };
    let named = Named {
        tracking_number: ("result.tracking_code", tracker.tracking_code.as_deref()),
        carrier: ("result.carrier", tracker.carrier.as_deref()),
        status: ("result.status", tracker.status.as_deref()),
        substatus: ("result.status_detail", tracker.status_detail.as_deref()),
    };
    let update = update(Vendor::Easypost, named, happened, options)?;
    Ok(Decision::Publish {
        key: delivery_key(event.id.as_deref(), body),
        update: Box::new(update),
    })
}

/// EasyPost's place: city, ZIP, country (ISO-2 already), and "city, state" as the
/// description when there is a state (`ORLANDO, FL`), the part our location has no field for.
fn location(l: &Location) -> Option<TrackingLocation> {
    normalise::location(
        l.city.as_deref(),
        l.zip.as_deref(),
        l.country.as_deref(),
        normalise::place(l.city.as_deref(), l.state.as_deref()).as_deref(),
    )
}
