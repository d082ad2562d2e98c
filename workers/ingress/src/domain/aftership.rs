//! AfterShip Tracking: `{"event": "tracking_update", "event_id": …, "msg": <tracking>, "ts":
//! …}`.
//!
//! `raw_status` is the tracking's `tag` (`InTransit`), `raw_substatus` its `subtag`
//! (`InTransit_003`); the time, message and place come from its latest checkpoint (by
//! `checkpoint_time`). Countries come as ISO-3 (`country_iso3`, `DEU`) and become ISO-2.
//!
//! Checkpoint times are the carrier's, "in the timezone of the checkpoint": with an offset
//! (`2023-12-20T02:12:00-06:00`) they are converted to UTC; without one
//! (`2021-01-14T00:52:00`, as in AfterShip's own sample) nothing says which zone they are
//! in, and they are taken as UTC (off by the place's offset: hours, never days, and the same
//! for every checkpoint of a carrier). A date alone is midnight UTC.
//!
//! Other events (`edd_revise`, `tracking_pending_time`) carry no new status: acknowledged
//! and dropped. AfterShip's `ts` is when the event occurred, not when this delivery was
//! signed (AfterShip retries a failed delivery for about three days), so it is no staleness
//! check.

use orderly_contracts::messages::TrackingLocation;
use serde::Deserialize;

use super::normalise::{self, DESCRIPTION_MAX};
use super::{
    Decision, Happened, Invalid, MapOptions, Named, Vendor, delivery_key, first_time, latest,
    parse, parse_value, update,
};

#[derive(Debug, Deserialize)]
struct Webhook {
    event: Option<String>,
    event_id: Option<String>,
    msg: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Tracking {
    tracking_number: Option<String>,
    slug: Option<String>,
    tag: Option<String>,
    subtag: Option<String>,
    expected_delivery: Option<String>,
    aftership_estimated_delivery_date: Option<Estimate>,
    updated_at: Option<String>,
    last_updated_at: Option<String>,
    checkpoints: Option<Vec<Checkpoint>>,
}

#[derive(Debug, Deserialize)]
struct Estimate {
    estimated_delivery_date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Checkpoint {
    checkpoint_time: Option<String>,
    message: Option<String>,
    subtag_message: Option<String>,
    location: Option<String>,
    city: Option<String>,
    state: Option<String>,
    // `zip` until webhook version 2026-01, `postal_code` since.
    zip: Option<String>,
    postal_code: Option<String>,
    country_iso3: Option<String>,
    country_region_iso3: Option<String>,
}

pub(crate) fn decode(body: &[u8], options: &MapOptions<'_>) -> Result<Decision, Invalid> {
    let hook: Webhook = parse(body)?;
    let event = hook.event.as_deref().unwrap_or_default();
    if event != "tracking_update" {
        return Ok(Decision::Ignore {
            reason: format!("AfterShip event `{event}` is not a tracking update"),
        });
    }
    let msg = hook.msg.ok_or_else(|| Invalid::missing("msg"))?;
    let tracking: Tracking = parse_value(msg, "msg")?;

    let latest = latest(
        tracking.checkpoints.iter().flatten(),
        |c| c.checkpoint_time.as_deref(),
        |i| format!("msg.checkpoints[{i}].checkpoint_time"),
    )?;
    let at = match latest {
        Some((at, _)) => at,
        None => first_time(&[
            ("msg.last_updated_at", tracking.last_updated_at.as_deref()),
            ("msg.updated_at", tracking.updated_at.as_deref()),
        ])?
        .ok_or_else(|| {
            Invalid::at(
                "msg.checkpoints",
                "no checkpoint with a time, and no updated_at to date the status by",
            )
        })?,
    };
    let checkpoint = latest.map(|(_, c)| c);
    let happened = Happened {
        at,
        description: checkpoint.and_then(|c| {
            normalise::text(
                c.message.as_deref().or(c.subtag_message.as_deref()),
                DESCRIPTION_MAX,
            )
        }),
        location: checkpoint.and_then(location),
        estimated_delivery_at: first_time(&[
            (
                "msg.expected_delivery",
                tracking.expected_delivery.as_deref(),
            ),
            (
                "msg.aftership_estimated_delivery_date.estimated_delivery_date",
                tracking
                    .aftership_estimated_delivery_date
                    .as_ref()
                    .and_then(|e| e.estimated_delivery_date.as_deref()),
            ),
        ])?,
    };
    let named = Named {
        tracking_number: ("msg.tracking_number", tracking.tracking_number.as_deref()),
        carrier: ("msg.slug", tracking.slug.as_deref()),
        status: ("msg.tag", tracking.tag.as_deref()),
        substatus: ("msg.subtag", tracking.subtag.as_deref()),
    };
    let update = update(Vendor::Aftership, named, happened, options)?;
    Ok(Decision::Publish {
        key: delivery_key(hook.event_id.as_deref(), body),
        update: Box::new(update),
    })
}

/// AfterShip's place: city, postal code, ISO-3 country, and its free-text `location`
/// ("BOCA RATON, FL, 33487, USA, United States") as the description, else "city, state".
fn location(c: &Checkpoint) -> Option<TrackingLocation> {
    let place = normalise::place(c.city.as_deref(), c.state.as_deref());
    normalise::location(
        c.city.as_deref(),
        c.postal_code.as_deref().or(c.zip.as_deref()),
        c.country_iso3
            .as_deref()
            .or(c.country_region_iso3.as_deref()),
        c.location.as_deref().or(place.as_deref()),
    )
}
