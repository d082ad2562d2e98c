//! The domain with plain values: each vendor's documented sample mapped field by field, each
//! signature scheme accepted and refused, the shared normalisation rules.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{KeyInit, Mac};
use orderly_contracts::messages::ShipmentUpdated;
use orderly_contracts::types::COUNTRY_CODES;
use serde_json::json;

use super::normalise::{self, ISO3_TO_ISO2};
use super::signature::{self, EasypostHeaders, EasypostScheme, SignatureError};
use super::{Decision, Invalid, MapOptions, Vendor, decode, delivery_key};

const EASYPOST: &[u8] = include_bytes!("../../tests/fixtures/easypost/tracker_updated.json");
const AFTERSHIP: &[u8] = include_bytes!("../../tests/fixtures/aftership/tracking_update.json");
const AFTERSHIP_LOCAL: &[u8] =
    include_bytes!("../../tests/fixtures/aftership/tracking_update_local_time.json");
const SHIPPO: &[u8] = include_bytes!("../../tests/fixtures/shippo/track_updated.json");

/// EasyPost's published test vector for the fixture (`client-library-fixtures.json`).
const EASYPOST_SECRET: &str = "s\u{e9}cret";
const EASYPOST_SIGNATURE: &str =
    "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key");
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().to_vec()
}

fn options(aliases: &BTreeMap<String, String>, accept_test_events: bool) -> MapOptions<'_> {
    MapOptions {
        accept_test_events,
        carrier_aliases: aliases,
    }
}

fn published(vendor: Vendor, body: &[u8], accept_test_events: bool) -> (String, ShipmentUpdated) {
    let aliases = BTreeMap::new();
    match decode(vendor, body, &options(&aliases, accept_test_events)) {
        Ok(Decision::Publish { key, update }) => (key, *update),
        other => panic!("expected an update to publish, got {other:?}"),
    }
}

/// The update as its payload's JSON, to compare with what a sample must become.
fn payload(update: &ShipmentUpdated) -> serde_json::Value {
    serde_json::to_value(update).expect("serialises")
}

fn refused(vendor: Vendor, body: &[u8]) -> Invalid {
    let aliases = BTreeMap::new();
    decode(vendor, body, &options(&aliases, true)).expect_err("refused")
}

fn ignored(vendor: Vendor, body: &[u8], accept_test_events: bool) -> String {
    let aliases = BTreeMap::new();
    match decode(vendor, body, &options(&aliases, accept_test_events)) {
        Ok(Decision::Ignore { reason }) => reason,
        other => panic!("expected the delivery to be ignored, got {other:?}"),
    }
}

/// `body` (JSON) with the value at `pointer` replaced (added if its object lacks it).
fn with(body: &[u8], pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(body).expect("fixture is JSON");
    if let Some(slot) = json.pointer_mut(pointer) {
        *slot = value;
    } else {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
        json.pointer_mut(parent)
            .and_then(serde_json::Value::as_object_mut)
            .expect("parent is an object")
            .insert(key.to_owned(), value);
    }
    serde_json::to_vec(&json).expect("serialises")
}

// --- signatures ------------------------------------------------------------------------------

#[test]
fn easyposts_published_test_vector_verifies() {
    let headers = EasypostHeaders {
        signature: Some(EASYPOST_SIGNATURE),
        ..EasypostHeaders::default()
    };
    assert_eq!(
        signature::easypost(EASYPOST_SECRET, headers, "POST", EASYPOST, Utc::now(), 300),
        Ok(EasypostScheme::Body)
    );
    // The same secret typed with a combining accent is the same NFKD key.
    assert_eq!(
        signature::easypost("se\u{301}cret", headers, "POST", EASYPOST, Utc::now(), 300),
        Ok(EasypostScheme::Body)
    );
}

#[test]
fn easypost_refuses_another_secret_a_changed_body_and_no_or_broken_headers() {
    let good = EasypostHeaders {
        signature: Some(EASYPOST_SIGNATURE),
        ..EasypostHeaders::default()
    };
    let now = Utc::now();
    assert_eq!(
        signature::easypost("secret", good, "POST", EASYPOST, now, 300),
        Err(SignatureError::Mismatch("x-hmac-signature"))
    );
    let mut changed = EASYPOST.to_vec();
    changed[10] ^= 1;
    assert_eq!(
        signature::easypost(EASYPOST_SECRET, good, "POST", &changed, now, 300),
        Err(SignatureError::Mismatch("x-hmac-signature"))
    );
    assert_eq!(
        signature::easypost(
            EASYPOST_SECRET,
            EasypostHeaders::default(),
            "POST",
            EASYPOST,
            now,
            300
        ),
        Err(SignatureError::Missing("x-hmac-signature"))
    );
    for broken in [
        "38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db",
        "hmac-sha256-hex=not-hex",
    ] {
        let headers = EasypostHeaders {
            signature: Some(broken),
            ..EasypostHeaders::default()
        };
        assert!(
            matches!(
                signature::easypost(EASYPOST_SECRET, headers, "POST", EASYPOST, now, 300),
                Err(SignatureError::Malformed { .. })
            ),
            "{broken}"
        );
    }
}

#[test]
fn easyposts_timestamped_signature_is_held_to_the_tolerance() {
    let now = at("2026-03-15T09:00:00Z");
    let path = "/webhooks/carriers/easypost";
    let sign = |when: DateTime<Utc>| {
        let timestamp = when.to_rfc2822();
        let digest = hmac_sha256(
            b"secret",
            &[timestamp.as_bytes(), b"POST", path.as_bytes(), EASYPOST],
        );
        (
            timestamp,
            format!("hmac-sha256-hex={}", hex::encode(digest)),
        )
    };
    let (fresh_ts, fresh_sig) = sign(now - Duration::seconds(30));
    let fresh = EasypostHeaders {
        signature: None,
        signature_v2: Some(&fresh_sig),
        timestamp: Some(&fresh_ts),
        path: Some(path),
    };
    assert_eq!(
        signature::easypost("secret", fresh, "POST", EASYPOST, now, 300),
        Ok(EasypostScheme::Timestamped)
    );
    let (old_ts, old_sig) = sign(now - Duration::minutes(10));
    let stale = EasypostHeaders {
        signature: None,
        signature_v2: Some(&old_sig),
        timestamp: Some(&old_ts),
        path: Some(path),
    };
    assert_eq!(
        signature::easypost("secret", stale, "POST", EASYPOST, now, 300),
        Err(SignatureError::Stale {
            age: 600,
            tolerance: 300
        })
    );
    // A V2 signature that does not verify leaves the body signature to decide.
    let v1 = format!(
        "hmac-sha256-hex={}",
        hex::encode(hmac_sha256(b"secret", &[EASYPOST]))
    );
    let fallback = EasypostHeaders {
        signature: Some(&v1),
        signature_v2: Some("hmac-sha256-hex=00"),
        timestamp: Some(&fresh_ts),
        path: Some(path),
    };
    assert_eq!(
        signature::easypost("secret", fallback, "POST", EASYPOST, now, 300),
        Ok(EasypostScheme::Body)
    );
}

#[test]
fn aftership_verifies_base64_hmac_of_the_body() {
    let sig =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"as-secret", &[AFTERSHIP]));
    assert_eq!(
        signature::aftership("as-secret", Some(&sig), AFTERSHIP),
        Ok(())
    );
    assert_eq!(
        signature::aftership("other", Some(&sig), AFTERSHIP),
        Err(SignatureError::Mismatch("aftership-hmac-sha256"))
    );
    assert_eq!(
        signature::aftership("as-secret", Some(&sig), AFTERSHIP_LOCAL),
        Err(SignatureError::Mismatch("aftership-hmac-sha256"))
    );
    assert_eq!(
        signature::aftership("as-secret", None, AFTERSHIP),
        Err(SignatureError::Missing("aftership-hmac-sha256"))
    );
    assert!(matches!(
        signature::aftership("as-secret", Some("%%%"), AFTERSHIP),
        Err(SignatureError::Malformed { .. })
    ));
}

fn shippo_header(secret: &[u8], t: i64, body: &[u8]) -> String {
    let digest = hmac_sha256(secret, &[t.to_string().as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(digest))
}

#[test]
fn shippo_verifies_timestamp_dot_body_within_the_tolerance() {
    let now = at("2026-03-15T09:00:00Z");
    let t = now.timestamp();
    let ok = |header: &str| signature::shippo("sh-secret", Some(header), SHIPPO, now, 300);
    assert_eq!(ok(&shippo_header(b"sh-secret", t - 299, SHIPPO)), Ok(()));
    assert_eq!(ok(&shippo_header(b"sh-secret", t + 60, SHIPPO)), Ok(()));
    assert_eq!(
        ok(&shippo_header(b"sh-secret", t - 301, SHIPPO)),
        Err(SignatureError::Stale {
            age: 301,
            tolerance: 300
        })
    );
    assert_eq!(
        ok(&shippo_header(b"sh-secret", t + 400, SHIPPO)),
        Err(SignatureError::Future {
            ahead: 400,
            tolerance: 300
        })
    );
    assert_eq!(
        ok(&shippo_header(b"other", t, SHIPPO)),
        Err(SignatureError::Mismatch("shippo-auth-signature"))
    );
    // A fresh time pasted onto an old signature does not verify: the time is signed.
    let old = shippo_header(b"sh-secret", t - 3600, SHIPPO);
    let (_, sig) = old.split_once(',').expect("two parts");
    assert_eq!(
        ok(&format!("t={t},{sig}")),
        Err(SignatureError::Mismatch("shippo-auth-signature"))
    );
    // During a secret rotation one of several v1 signatures verifies.
    let current = shippo_header(b"sh-secret", t, SHIPPO);
    let (_, good) = current.split_once(',').expect("two parts");
    assert_eq!(ok(&format!("t={t},v1=00ff,{good}")), Ok(()));
    for broken in ["v1=00", "t=1", "t=soon,v1=00", "garbage"] {
        assert!(
            matches!(ok(broken), Err(SignatureError::Malformed { .. })),
            "{broken}"
        );
    }
    assert_eq!(
        signature::shippo("sh-secret", None, SHIPPO, now, 300),
        Err(SignatureError::Missing("shippo-auth-signature"))
    );
}

// --- EasyPost --------------------------------------------------------------------------------

#[test]
fn easyposts_sample_tracker_is_its_current_status_at_its_latest_detail() {
    let (key, update) = published(Vendor::Easypost, EASYPOST, false);
    assert_eq!(key, "evt_1");
    assert_eq!(
        payload(&update),
        json!({
            "carrier": "fedex",
            "tracking_number": "1",
            "vocabulary": "easypost",
            "raw_status": "in_transit",
            "raw_substatus": "arrived_at_facility",
            "description": "Arrived at FedEx location",
            "event_at": "2024-08-02T18:50:00Z",
            "location": {
                "city": "EDISON",
                "postal_code": "08817",
                "country": "US",
                "description": "EDISON, NJ"
            },
            "estimated_delivery_at": "2024-08-05T00:00:00Z"
        })
    );
}

#[test]
fn easypost_takes_the_latest_detail_by_time_not_by_position() {
    let mut json: serde_json::Value = serde_json::from_slice(EASYPOST).expect("JSON");
    let details = json["result"]["tracking_details"]
        .as_array_mut()
        .expect("details");
    details.reverse();
    let body = serde_json::to_vec(&json).expect("JSON");
    let (_, update) = published(Vendor::Easypost, &body, false);
    assert_eq!(update.event_at, at("2024-08-02T18:50:00Z"));
}

#[test]
fn easypost_drops_other_events_and_test_mode_unless_asked() {
    let batch = with(EASYPOST, "/description", "batch.updated".into());
    assert!(ignored(Vendor::Easypost, &batch, true).contains("batch.updated"));
    let test = with(EASYPOST, "/mode", "test".into());
    assert!(ignored(Vendor::Easypost, &test, false).contains("test-mode"));
    let (_, update) = published(Vendor::Easypost, &test, true);
    assert_eq!(update.raw_status, "in_transit");
}

#[test]
fn easypost_refusals_name_the_field() {
    let e = refused(
        Vendor::Easypost,
        &with(EASYPOST, "/result/tracking_code", serde_json::Value::Null),
    );
    assert_eq!(
        (e.field.as_str(), e.reason.as_str()),
        ("result.tracking_code", "missing")
    );
    let e = refused(
        Vendor::Easypost,
        &with(
            EASYPOST,
            "/result/tracking_details/3/datetime",
            "yesterday".into(),
        ),
    );
    assert_eq!(e.field, "result.tracking_details[3].datetime");
    assert!(e.reason.contains("yesterday"), "{e}");
    let e = refused(
        Vendor::Easypost,
        &with(EASYPOST, "/result/status", "x".repeat(65).into()),
    );
    assert_eq!(e.field, "result.status");
    let e = refused(
        Vendor::Easypost,
        &with(
            EASYPOST,
            "/result/tracking_details",
            serde_json::json!("none"),
        ),
    );
    assert_eq!(e.field, "result.tracking_details");
    assert!(!e.not_json);
}

// --- AfterShip -------------------------------------------------------------------------------

#[test]
fn afterships_sample_is_its_tag_and_subtag_at_its_checkpoint() {
    let (key, update) = published(Vendor::Aftership, AFTERSHIP, false);
    assert_eq!(key, "94dadd60-ed26-46d0-aa52-3ced925a50ff");
    // The checkpoint's local time has no offset: taken as UTC (documented).
    assert_eq!(
        payload(&update),
        json!({
            "carrier": "usps",
            "tracking_number": "0000000000000000",
            "vocabulary": "aftership",
            "raw_status": "InTransit",
            "raw_substatus": "InTransit_001",
            "description": "Departed Shipping Partner Facility, USPS Awaiting Item",
            "event_at": "2021-01-14T00:52:00Z"
        })
    );
}

#[test]
fn aftership_converts_local_checkpoint_times_and_iso3_countries() {
    let (key, update) = published(Vendor::Aftership, AFTERSHIP_LOCAL, false);
    assert_eq!(key, "5c8b4a64-7e2c-4f55-9d6e-1b2f0c3a4d5e");
    // 02:12 at UTC−6 is 08:12 UTC; `USA` is `US`.
    assert_eq!(
        payload(&update),
        json!({
            "carrier": "usps",
            "tracking_number": "9434936105536968782556",
            "vocabulary": "aftership",
            "raw_status": "InfoReceived",
            "raw_substatus": "InfoReceived_001",
            "description": "Shipping Label Created, USPS Awaiting Item",
            "event_at": "2023-12-20T08:12:00Z",
            "location": {
                "city": "FAYETTEVILLE",
                "postal_code": "78940",
                "country": "US",
                "description": "FAYETTEVILLE, TX, 78940, USA, United States"
            }
        })
    );
}

#[test]
fn aftership_drops_events_without_a_status_and_refuses_what_it_cannot_read() {
    let edd = with(AFTERSHIP, "/event", "edd_revise".into());
    assert!(ignored(Vendor::Aftership, &edd, false).contains("edd_revise"));
    let e = refused(
        Vendor::Aftership,
        &with(
            AFTERSHIP,
            "/msg/checkpoints/0/checkpoint_time",
            "soon".into(),
        ),
    );
    assert_eq!(e.field, "msg.checkpoints[0].checkpoint_time");
    let e = refused(Vendor::Aftership, &with(AFTERSHIP, "/msg/tag", 7.into()));
    assert_eq!(e.field, "msg.tag");
    assert!(e.reason.contains("invalid type"), "{e}");
    let e = refused(
        Vendor::Aftership,
        &with(AFTERSHIP, "/msg/slug", "!!".into()),
    );
    assert_eq!(e.field, "msg.slug");
}

#[test]
fn aftership_without_checkpoints_dates_the_status_by_the_tracking() {
    let mut json: serde_json::Value = serde_json::from_slice(AFTERSHIP_LOCAL).expect("JSON");
    json["msg"]["checkpoints"] = serde_json::json!([]);
    let body = serde_json::to_vec(&json).expect("JSON");
    let (_, update) = published(Vendor::Aftership, &body, false);
    assert_eq!(update.event_at, at("2023-12-20T11:02:22Z"));
    assert_eq!(update.location, None);
}

// --- Shippo ----------------------------------------------------------------------------------

#[test]
fn shippos_sample_is_its_tracking_status() {
    assert!(ignored(Vendor::Shippo, SHIPPO, false).contains("test delivery"));
    let (key, update) = published(Vendor::Shippo, SHIPPO, true);
    assert_eq!(key, delivery_key(None, SHIPPO));
    assert!(key.starts_with("sha256:") && key.len() == 7 + 64, "{key}");
    assert_eq!(
        payload(&update),
        json!({
            "carrier": "usps",
            "tracking_number": "9205590164917312751089",
            "vocabulary": "shippo",
            "raw_status": "DELIVERED",
            "raw_substatus": "information_received",
            "description": "Your shipment has been delivered at the destination mailbox.",
            "event_at": "2016-07-23T00:00:00Z",
            "location": {
                "city": "Las Vegas",
                "postal_code": "89101",
                "country": "US",
                "description": "Las Vegas, NV"
            },
            "estimated_delivery_at": "2019-08-24T14:15:22Z"
        })
    );
}

#[test]
fn shippo_refuses_a_track_without_status_and_drops_other_events() {
    let e = refused(
        Vendor::Shippo,
        &with(SHIPPO, "/data/tracking_status", serde_json::Value::Null),
    );
    assert_eq!(e.field, "data.tracking_status");
    let created = with(SHIPPO, "/event", "transaction_created".into());
    assert!(ignored(Vendor::Shippo, &created, true).contains("transaction_created"));
}

// --- shared ----------------------------------------------------------------------------------

#[test]
fn a_body_that_is_not_json_is_told_apart_from_json_we_cannot_map() {
    for vendor in Vendor::ALL {
        let e = refused(vendor, b"{\"event\": ");
        assert!(e.not_json, "{vendor}: {e}");
        assert_eq!(e.field, "", "{vendor}: the body as a whole");
        assert!(e.reason.contains("column"), "{vendor}: {e}");
        let e = refused(vendor, b"[1, 2]");
        assert!(!e.not_json, "{vendor}: {e}");
    }
}

#[test]
fn unknown_vendor_fields_are_ignored_everywhere() {
    let body = with(
        EASYPOST,
        "/result/brand_new_field",
        serde_json::json!({"a": [1]}),
    );
    published(Vendor::Easypost, &body, false);
    let body = with(
        AFTERSHIP,
        "/msg/checkpoints/0/events",
        serde_json::json!([{"code": "x"}]),
    );
    published(Vendor::Aftership, &body, false);
}

#[test]
fn the_delivery_key_is_the_vendors_event_id_or_the_bodys_hash() {
    assert_eq!(delivery_key(Some(" evt_9 "), b"x"), "evt_9");
    assert_eq!(delivery_key(Some(""), b"x"), delivery_key(None, b"x"));
    assert_ne!(delivery_key(None, b"x"), delivery_key(None, b"y"));
}

#[test]
fn carrier_codes_follow_our_rule_and_the_aliases() {
    let none = BTreeMap::new();
    for (raw, code) in [
        ("FedEx", "fedex"),
        ("DHLExpress", "dhlexpress"),
        ("Canada Post", "canada_post"),
        ("dhl-global-mail", "dhl-global-mail"),
        (" U.S. Postal  Service ", "u_s_postal_service"),
        ("dhl_express", "dhl_express"),
    ] {
        assert_eq!(
            normalise::carrier_code(raw, &none).as_deref(),
            Ok(code),
            "{raw}"
        );
    }
    assert!(normalise::carrier_code("!!", &none).is_err());
    assert!(normalise::carrier_code(&"a".repeat(33), &none).is_err());
    let aliases = BTreeMap::from([("dhlexpress".to_owned(), "dhl".to_owned())]);
    assert_eq!(
        normalise::carrier_code("DHLExpress", &aliases).as_deref(),
        Ok("dhl")
    );
}

#[test]
fn tracking_numbers_lose_their_spaces() {
    assert_eq!(
        normalise::tracking_number("1Z 999 AA1 01 2345 6784").as_deref(),
        Ok("1Z999AA10123456784")
    );
    assert!(normalise::tracking_number("   ").is_err());
    assert!(normalise::tracking_number(&"9".repeat(65)).is_err());
}

#[test]
fn times_become_utc() {
    for (raw, utc) in [
        ("2024-08-02T18:50:00Z", "2024-08-02T18:50:00Z"),
        ("2023-12-20T02:12:00-06:00", "2023-12-20T08:12:00Z"),
        ("2023-12-20T02:12:00+0100", "2023-12-20T01:12:00Z"),
        ("2021-01-14T00:52:00", "2021-01-14T00:52:00Z"),
        ("2021-01-14 00:52:00", "2021-01-14T00:52:00Z"),
        ("2024-08-05", "2024-08-05T00:00:00Z"),
    ] {
        assert_eq!(normalise::time(raw), Ok(at(utc)), "{raw}");
    }
    assert!(normalise::time("next tuesday").is_err());
    assert_eq!(
        Utc.with_ymd_and_hms(2024, 8, 5, 0, 0, 0).single(),
        Some(at("2024-08-05T00:00:00Z"))
    );
}

#[test]
fn every_iso3_code_maps_onto_an_assigned_iso2_code_and_covers_them_all() {
    assert!(
        ISO3_TO_ISO2.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted by alpha-3, for the binary search"
    );
    let mut iso2: Vec<&str> = ISO3_TO_ISO2.iter().map(|(_, a2)| *a2).collect();
    iso2.sort_unstable();
    assert_eq!(iso2, COUNTRY_CODES);
    for (a3, a2) in ISO3_TO_ISO2 {
        assert_eq!(normalise::country(Some(a3)).map(|c| c.as_str()), Some(*a2));
    }
    assert_eq!(
        normalise::country(Some("deu")).map(|c| c.as_str()),
        Some("DE")
    );
    assert_eq!(
        normalise::country(Some("gb")).map(|c| c.as_str()),
        Some("GB")
    );
    assert_eq!(normalise::country(Some("XKX")), None);
    assert_eq!(normalise::country(Some("United States")), None);
}

#[test]
fn text_is_cleaned_and_cut_but_postal_codes_are_not_cut() {
    assert_eq!(
        normalise::text(Some("  a\tb\u{0}c "), 10).as_deref(),
        Some("a b c")
    );
    assert_eq!(normalise::text(Some("   "), 10), None);
    assert_eq!(normalise::text(Some("abcdef"), 3).as_deref(), Some("abc"));
    assert_eq!(normalise::postal_code(Some("12345678901234567")), None);
    assert_eq!(
        normalise::postal_code(Some(" 10115 ")).as_deref(),
        Some("10115")
    );
}
