//! Shippo: `{"event": "track_updated", "test": …, "data": <track>}`.
//!
//! `raw_status` is the track's `tracking_status.status` (`TRANSIT`), `raw_substatus` its
//! `substatus.code` (`information_received`); the time is `status_date` (the carrier's
//! scan; Shippo's examples give it in UTC with `Z`), the text `status_details`, the place
//! `location` (ISO-2 already). `eta` is the delivery estimate.
//!
//! Shippo sends no event id: the delivery key is the SHA-256 of the body, so Shippo's
//! retries of one delivery (the same bytes) are one delivery. Other events
//! (`transaction_created`, `batch_purchased`, …) are acknowledged and dropped, and so are
//! test deliveries (`test: true`, as the portal's "send test webhook" sends them) unless
//! test events are accepted.

use serde::Deserialize;

use super::normalise::{self, DESCRIPTION_MAX};
use super::{
    Decision, Happened, Invalid, MapOptions, Named, Vendor, delivery_key, first_time, parse,
    parse_value, update,
};

#[derive(Debug, Deserialize)]
struct Webhook {
    event: Option<String>,
    test: Option<bool>,
    data: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Track {
    carrier: Option<String>,
    tracking_number: Option<String>,
    eta: Option<String>,
    tracking_status: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Status {
    status: Option<String>,
    status_details: Option<String>,
    status_date: Option<String>,
    object_updated: Option<String>,
    substatus: Option<Substatus>,
    location: Option<Location>,
}

#[derive(Debug, Deserialize)]
struct Substatus {
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Location {
    city: Option<String>,
    state: Option<String>,
    zip: Option<String>,
    country: Option<String>,
}

pub(crate) fn decode(body: &[u8], options: &MapOptions<'_>) -> Result<Decision, Invalid> {
    let hook: Webhook = parse(body)?;
    let event = hook.event.as_deref().unwrap_or_default();
    if event != "track_updated" {
        return Ok(Decision::Ignore {
            reason: format!("Shippo event `{event}` is not a tracking update"),
        });
    }
    if hook.test == Some(true) && !options.accept_test_events {
        return Ok(Decision::Ignore {
            reason: "Shippo test delivery (ingress.accept_test_events is off)".to_owned(),
        });
    }
    let data = hook.data.ok_or_else(|| Invalid::missing("data"))?;
    let track: Track = parse_value(data, "data")?;
    let status = track
        .tracking_status
        .as_ref()
        .ok_or_else(|| Invalid::missing("data.tracking_status"))?;

    let happened = Happened {
        at: first_time(&[
            (
                "data.tracking_status.status_date",
                status.status_date.as_deref(),
            ),
            (
                "data.tracking_status.object_updated",
                status.object_updated.as_deref(),
            ),
        ])?
        .ok_or_else(|| Invalid::missing("data.tracking_status.status_date"))?,
        description: normalise::text(status.status_details.as_deref(), DESCRIPTION_MAX),
        location: status.location.as_ref().and_then(|l| {
            normalise::location(
                l.city.as_deref(),
                l.zip.as_deref(),
                l.country.as_deref(),
                normalise::place(l.city.as_deref(), l.state.as_deref()).as_deref(),
            )
        }),
        estimated_delivery_at: first_time(&[("data.eta", track.eta.as_deref())])?,
    };
    let named = Named {
        tracking_number: ("data.tracking_number", track.tracking_number.as_deref()),
        carrier: ("data.carrier", track.carrier.as_deref()),
        status: ("data.tracking_status.status", status.status.as_deref()),
        substatus: (
            "data.tracking_status.substatus.code",
            status.substatus.as_ref().and_then(|s| s.code.as_deref()),
        ),
    };
    let update = update(Vendor::Shippo, named, happened, options)?;
    Ok(Decision::Publish {
        key: delivery_key(None, body),
        update: Box::new(update),
    })
}
