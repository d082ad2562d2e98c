//! Carriers' vocabularies and tracking links.

use super::*;

#[test]
fn easypost_words() {
    let v = StatusVocabulary::Easypost;
    for (raw, expected) in [
        ("pre_transit", StatusMapping::Status(S::LabelCreated)),
        ("in_transit", StatusMapping::Status(S::InTransit)),
        ("out_for_delivery", StatusMapping::Status(S::OutForDelivery)),
        ("delivered", StatusMapping::Status(S::Delivered)),
        ("available_for_pickup", StatusMapping::Status(S::Delivered)),
        ("return_to_sender", StatusMapping::Status(S::Returned)),
        ("failure", StatusMapping::Status(S::DeliveryFailed)),
        ("cancelled", StatusMapping::Status(S::Exception)),
        ("error", StatusMapping::Status(S::Exception)),
        ("unknown", StatusMapping::NoStatus),
    ] {
        assert_eq!(map_status(v, raw), expected, "{raw}");
        assert_eq!(map_status(v, &raw.to_uppercase()), expected, "{raw} upper");
    }
    assert_eq!(EASYPOST.len(), 10, "every EasyPost word is tested above");
}

#[test]
fn aftership_tags() {
    let v = StatusVocabulary::Aftership;
    for (raw, expected) in [
        ("InfoReceived", StatusMapping::Status(S::LabelCreated)),
        ("InTransit", StatusMapping::Status(S::InTransit)),
        ("OutForDelivery", StatusMapping::Status(S::OutForDelivery)),
        ("AttemptFail", StatusMapping::Status(S::DeliveryFailed)),
        ("Delivered", StatusMapping::Status(S::Delivered)),
        ("AvailableForPickup", StatusMapping::Status(S::Delivered)),
        ("Exception", StatusMapping::Status(S::Exception)),
        ("Expired", StatusMapping::Status(S::Exception)),
        ("Pending", StatusMapping::NoStatus),
    ] {
        assert_eq!(map_status(v, raw), expected, "{raw}");
        assert_eq!(map_status(v, &raw.to_lowercase()), expected, "{raw} lower");
        assert_eq!(map_status(v, &raw.to_uppercase()), expected, "{raw} upper");
    }
    assert_eq!(AFTERSHIP.len(), 9, "every AfterShip tag is tested above");
}

#[test]
fn shippo_statuses() {
    let v = StatusVocabulary::Shippo;
    for (raw, expected) in [
        ("PRE_TRANSIT", StatusMapping::Status(S::LabelCreated)),
        ("TRANSIT", StatusMapping::Status(S::InTransit)),
        ("DELIVERED", StatusMapping::Status(S::Delivered)),
        ("RETURNED", StatusMapping::Status(S::Returned)),
        ("FAILURE", StatusMapping::Status(S::Exception)),
        ("UNKNOWN", StatusMapping::NoStatus),
    ] {
        assert_eq!(map_status(v, raw), expected, "{raw}");
        assert_eq!(map_status(v, &raw.to_lowercase()), expected, "{raw} lower");
    }
    assert_eq!(SHIPPO.len(), 6, "every Shippo status is tested above");
}

#[test]
fn orderly_words() {
    let v = StatusVocabulary::Orderly;
    for status in S::ALL {
        assert_eq!(
            map_status(v, status.as_str()),
            StatusMapping::Status(*status)
        );
        assert_eq!(
            map_status(v, &status.as_str().to_uppercase()),
            StatusMapping::Status(*status)
        );
    }
    assert_eq!(ORDERLY.len(), S::ALL.len());
}

#[test]
fn unknown_words_are_unrecognised_not_errors() {
    for v in [
        StatusVocabulary::Easypost,
        StatusVocabulary::Aftership,
        StatusVocabulary::Shippo,
        StatusVocabulary::Orderly,
    ] {
        assert_eq!(map_status(v, "teleported"), StatusMapping::Unrecognised);
        assert_eq!(map_status(v, ""), StatusMapping::Unrecognised);
        assert_eq!(map_status(v, "teleported").status(), None);
    }
    // Words of one vocabulary mean nothing in another.
    assert_eq!(
        map_status(StatusVocabulary::Shippo, "in_transit"),
        StatusMapping::Unrecognised
    );
    assert_eq!(
        map_status(StatusVocabulary::Easypost, "AttemptFail"),
        StatusMapping::Unrecognised
    );
    assert_eq!(
        map_status(StatusVocabulary::Aftership, " Delivered "),
        StatusMapping::Status(S::Delivered),
        "surrounding spaces are ignored"
    );
}

#[test]
fn tracking_urls_for_known_carriers() {
    for carrier in ["dhl", "ups", "dpd", "postnl", "gls"] {
        let url = tracking_url(carrier, "00340434161094042557").expect(carrier);
        assert!(url.starts_with("https://"), "{url}");
        assert!(url.contains("00340434161094042557"), "{url}");
    }
    assert_eq!(
        tracking_url("ups", "1Z 999&x").as_deref(),
        Some("https://www.ups.com/track?tracknum=1Z%20999%26x")
    );
    assert_eq!(tracking_url("hermes", "123"), None);
    assert_eq!(
        tracking_url("DHL", "123"),
        None,
        "carrier codes are lowercase"
    );
}
