use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use orderly_contracts::messages::{
    NotificationAudience as A, NotificationChannel as C, NotificationEvent as E, NotificationRule,
    NotificationTemplate, StoreNotificationSettingsUpdated,
};
use orderly_contracts::types::{Locale, OrderStatus as S, StoreId};

use super::*;

fn settings(
    rules: Vec<NotificationRule>,
    templates: Vec<NotificationTemplate>,
) -> StoreNotificationSettingsUpdated {
    StoreNotificationSettingsUpdated {
        store_id: StoreId::parse("shop-de").expect("store"),
        revision: 1,
        store_name: "Beispiel".into(),
        locale: Locale::parse("de-DE").expect("locale"),
        staff_recipients: Vec::new(),
        rules,
        templates,
    }
}

fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

#[test]
fn defaults_cover_the_lifecycle() {
    let rules = default_rules();
    let on = |e: E, a: A| {
        rules
            .iter()
            .any(|r| r.event == e && r.audience == a && r.enabled)
    };
    assert!(on(E::OrderAccepted, A::Customer));
    assert!(on(E::ShipmentDispatched, A::Customer));
    assert!(on(E::OrderDelivered, A::Customer));
    assert!(on(E::OrderCancelled, A::Customer));
    assert!(on(E::InvoiceIssued, A::Customer));
    assert!(on(E::OrderBackordered, A::Customer));
    assert!(on(E::OrderOnHold, A::Staff));
    assert!(!on(E::OrderProcessing, A::Customer));
    assert!(
        !on(E::OrderShipped, A::Customer),
        "the dispatch (with tracking) is the shipping mail"
    );
    // Every default has a built-in template in every built-in language.
    for r in &rules {
        for l in BUILTIN_LANGUAGES {
            assert!(builtin(&r.template, l).is_some(), "{} in {l}", r.template);
        }
    }
}

#[test]
fn every_builtin_template_renders_in_every_language() {
    // Every variable set to a marker naming it: each `{name}` must come out as its marker,
    // and nothing else may change (the expectation is a plain text replacement, not the
    // renderer).
    let all: BTreeMap<&'static str, String> = VARIABLES
        .iter()
        .map(|name| (*name, format!("<<{name}>>")))
        .collect();
    for event in E::ALL {
        for l in BUILTIN_LANGUAGES {
            let (subject, body) = builtin(event.as_str(), l).expect("builtin");
            let mut substituted = 0;
            for template in [subject, body] {
                let expected = VARIABLES.iter().fold(template.to_owned(), |text, name| {
                    text.replace(&format!("{{{name}}}"), &all[name])
                });
                let rendered = render(template, &all).expect(template);
                assert_eq!(rendered, expected, "{event} in {l}");
                assert!(!rendered.contains(['{', '}']), "{event} in {l}: {rendered}");
                substituted += rendered.matches("<<").count();
            }
            assert!(substituted > 0, "{event} in {l} names no variable");
        }
    }
}

#[test]
fn store_rules_replace_defaults_pairwise() {
    let s = settings(
        vec![
            NotificationRule {
                event: E::OrderAccepted,
                audience: A::Customer,
                enabled: false,
                channel: C::Email,
                template: None,
            },
            NotificationRule {
                event: E::OrderShipped,
                audience: A::Customer,
                enabled: true,
                channel: C::Email,
                template: Some("my.shipped".into()),
            },
        ],
        Vec::new(),
    );
    let rules = effective_rules(Some(&s));
    assert!(rules_for(&rules, E::OrderAccepted).is_empty());
    let shipped = rules_for(&rules, E::OrderShipped);
    assert_eq!(shipped.len(), 1);
    assert_eq!(shipped[0].template, "my.shipped");
    assert!(!shipped[0].default);
    // Untouched defaults stay.
    assert_eq!(rules_for(&rules, E::OrderDelivered).len(), 1);
    assert_eq!(rules.len(), default_rules().len() + 1);
}

#[test]
fn language_falls_back_customer_store_english() {
    let store = vec![NotificationTemplate {
        key: "custom".into(),
        locale: Locale::parse("es").expect("locale"),
        subject: "Pedido {order_number}".into(),
        body: "Hola".into(),
    }];
    // Customer's language when there is a text in it.
    let t = choose_text(
        "order.accepted",
        &choose_language(Some("fr-BE"), Some("de")),
        &[],
    )
    .expect("text");
    assert_eq!(t.language, "fr");
    // Customer's language unknown → the store's.
    let t = choose_text(
        "order.accepted",
        &choose_language(Some("pl-PL"), Some("nl-NL")),
        &[],
    )
    .expect("text");
    assert_eq!(t.language, "nl");
    // Neither → English.
    let t = choose_text(
        "order.accepted",
        &choose_language(Some("pl"), Some("it")),
        &[],
    )
    .expect("text");
    assert_eq!(t.language, "en");
    // A store's own text wins, in the customer's language.
    let t = choose_text(
        "custom",
        &choose_language(Some("es-419"), Some("de")),
        &store,
    )
    .expect("text");
    assert_eq!((t.language.as_str(), t.body.as_str()), ("es", "Hola"));
    assert!(choose_text("nope", &["de"], &store).is_none());
}

#[test]
fn rendering_replaces_variables_and_escapes_braces() {
    let v = vars(&[("customer_name", "Jörg"), ("order_number", "100234")]);
    assert_eq!(
        render(
            "Hallo {customer_name}, {{Bestellung}} {order_number}{tracking_url}",
            &v
        ),
        Ok("Hallo Jörg, {Bestellung} 100234".to_owned())
    );
    assert_eq!(
        render("{nope}", &v),
        Err(TemplateError::UnknownVariable("nope".into()))
    );
    assert_eq!(render("a { b", &v), Err(TemplateError::Unbalanced(2)));
    assert_eq!(render("a } b", &v), Err(TemplateError::Unbalanced(2)));
    assert!(check_template("{customer_name").is_err());
}

#[test]
fn german_shipping_mail() {
    let (subject, body) = builtin("shipment.dispatched", "de").expect("de");
    let v = vars(&[
        ("customer_name", "Jörg Schäfer"),
        ("order_number", "100234"),
        ("carrier", "dhl"),
        ("tracking_number", "00340434161094042557"),
        ("tracking_url", "https://www.dhl.de/t/00340434161094042557"),
        ("store_name", "Beispiel Shop"),
    ]);
    assert_eq!(
        render(subject, &v).expect("subject"),
        "Deine Bestellung 100234 ist unterwegs"
    );
    let body = render(body, &v).expect("body");
    assert!(body.starts_with("Hallo Jörg Schäfer,"));
    assert!(body.contains("https://www.dhl.de/t/00340434161094042557"));
    assert!(body.ends_with("Beispiel Shop"));
}

#[test]
fn older_status_changes_are_stale() {
    let mark = after_status(Watermark::default(), 4, S::Delivered);
    assert_eq!(judge_status(mark, 5, S::Completed), Freshness::Fresh);
    assert_eq!(
        judge_status(mark, 4, S::Delivered),
        Freshness::Fresh,
        "same: dedup decides"
    );
    assert!(matches!(
        judge_status(mark, 3, S::Shipped),
        Freshness::Stale(_)
    ));
    assert!(matches!(
        judge_status(mark, 1, S::Accepted),
        Freshness::Stale(_)
    ));
    // Nothing notified yet: anything goes.
    assert_eq!(
        judge_status(Watermark::default(), 1, S::Accepted),
        Freshness::Fresh
    );
    // A notified dispatch makes a late backorder stale, not a partial shipment.
    let shipped = after_shipment(
        after_status(Watermark::default(), 1, S::Accepted),
        ShipmentStep::Dispatched,
    );
    assert!(matches!(
        judge_status(shipped, 2, S::Backordered),
        Freshness::Stale(_)
    ));
    assert_eq!(
        judge_status(shipped, 4, S::PartiallyShipped),
        Freshness::Fresh
    );
}

#[test]
fn shipment_steps_do_not_go_back() {
    let order = Watermark::default();
    assert_eq!(
        judge_shipment(order, 0, ShipmentStep::Dispatched),
        Freshness::Fresh
    );
    // An exception after delivered (an out-for-delivery problem reported late) is stale.
    assert!(matches!(
        judge_shipment(
            order,
            ShipmentStep::Delivered.rank(),
            ShipmentStep::Exception
        ),
        Freshness::Stale(_)
    ));
    assert_eq!(
        judge_shipment(
            order,
            ShipmentStep::Exception.rank(),
            ShipmentStep::Delivered
        ),
        Freshness::Fresh
    );
    // A second exception status of one shipment is not stale (its own dedup key).
    assert_eq!(
        judge_shipment(
            order,
            ShipmentStep::Exception.rank(),
            ShipmentStep::Exception
        ),
        Freshness::Fresh
    );
    // After the order was notified delivered, a dispatch is stale.
    let delivered = after_status(order, 5, S::Delivered);
    assert!(matches!(
        judge_shipment(delivered, 0, ShipmentStep::Dispatched),
        Freshness::Stale(_)
    ));
    // After the order was notified shipped, another shipment's dispatch is still news.
    let shipped = after_status(order, 4, S::Shipped);
    assert_eq!(
        judge_shipment(shipped, 0, ShipmentStep::Dispatched),
        Freshness::Fresh
    );
}

#[test]
fn dedup_keys_differ_by_every_part() {
    let k = |o: &str, e: E, r: &str, a: A, to: &str| dedup_key(o, e, r, a, to);
    let base = k("o1", E::OrderAccepted, "1", A::Customer, "email:a@b.de");
    assert_eq!(
        base,
        k("o1", E::OrderAccepted, "1", A::Customer, "email:a@b.de")
    );
    assert_ne!(
        base,
        k("o2", E::OrderAccepted, "1", A::Customer, "email:a@b.de")
    );
    assert_ne!(
        base,
        k("o1", E::OrderCancelled, "1", A::Customer, "email:a@b.de")
    );
    assert_ne!(
        base,
        k("o1", E::OrderAccepted, "2", A::Customer, "email:a@b.de")
    );
    assert_ne!(
        base,
        k("o1", E::OrderAccepted, "1", A::Staff, "email:a@b.de")
    );
    assert_ne!(
        base,
        k("o1", E::OrderAccepted, "1", A::Customer, "email:c@b.de")
    );
}

#[test]
fn failures_retry_within_budget_unless_permanent() {
    assert_eq!(after_failure(1, false, 3), AfterFailure::Retry(2));
    assert_eq!(after_failure(2, false, 3), AfterFailure::Retry(3));
    assert_eq!(after_failure(3, false, 3), AfterFailure::GiveUp);
    assert_eq!(after_failure(1, true, 3), AfterFailure::GiveUp);
}

#[test]
fn backoff_grows_and_is_capped() {
    let b = Backoff {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        factor: 2.0,
        jitter: false,
    };
    let delays: Vec<_> = (1..=6).map(|a| b.delay(a)).collect();
    assert_eq!(delays[0], Duration::from_millis(100));
    assert_eq!(delays[1], Duration::from_millis(200));
    assert_eq!(delays[2], Duration::from_millis(400));
    assert_eq!(delays[3], Duration::from_millis(800));
    assert_eq!(delays[4], Duration::from_secs(1));
    assert_eq!(delays[5], Duration::from_secs(1));
    let jittered = Backoff { jitter: true, ..b };
    let d = jittered.delay(2);
    assert!(
        d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
        "{d:?}"
    );
}

#[test]
fn signatures_match_a_known_vector_and_verify() {
    // Computed independently: printf '%s' '1700000000.{"a":1}' |
    //   openssl dgst -sha256 -hmac 'whsec_test_secret_0123456789abcdef'
    let sig = sign(
        "whsec_test_secret_0123456789abcdef",
        1_700_000_000,
        br#"{"a":1}"#,
    );
    assert_eq!(sig.len(), 64);
    assert_eq!(sig, KNOWN_SIGNATURE);
    let header = format!("v1={sig}");
    assert!(verify(
        "whsec_test_secret_0123456789abcdef",
        1_700_000_000,
        br#"{"a":1}"#,
        &header
    ));
    assert!(!verify(
        "whsec_test_secret_0123456789abcdef",
        1_700_000_001,
        br#"{"a":1}"#,
        &header
    ));
    assert!(!verify(
        "whsec_test_secret_0123456789abcdef",
        1_700_000_000,
        br#"{"a":2}"#,
        &header
    ));
    assert!(!verify("other", 1_700_000_000, br#"{"a":1}"#, &header));
    assert!(!verify(
        "whsec_test_secret_0123456789abcdef",
        1_700_000_000,
        br#"{"a":1}"#,
        &sig
    ));
}

const KNOWN_SIGNATURE: &str = "296f547a4f0b9eadfa573de7df458dfbf92032f516d3453e6c234d9a7dd753e8";

#[test]
fn private_addresses_are_forbidden() {
    let ip = |s: &str| s.parse::<IpAddr>().expect(s);
    for bad in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
    ] {
        assert!(
            forbidden_address(ip(bad)).is_some(),
            "{bad} should be forbidden"
        );
    }
    for good in [
        "93.184.216.34",
        "172.32.0.1",
        "8.8.8.8",
        "2606:4700::1111",
        "64:ff9b::808:808",
    ] {
        assert_eq!(forbidden_address(ip(good)), None, "{good} is public");
    }
}

#[test]
fn schemes() {
    assert!(check_scheme("https", false).is_ok());
    assert!(check_scheme("http", false).is_err());
    assert!(check_scheme("http", true).is_ok());
    assert!(check_scheme("ftp", true).is_err());
}

#[test]
fn truncation_marks_the_cut() {
    assert_eq!(truncate("abc", 3), "abc");
    assert_eq!(truncate("abcdef", 4), "abc…");
    assert_eq!(truncate("äöüß", 3).chars().count(), 3);
}

/// Arrival-order properties of the staleness rule. A notifier is modelled as the handler
/// uses the rule: judge each arriving event against the watermark, notify it when fresh and
/// not already notified (the dedup key), and move the watermark. Histories are legal courses
/// of an order (`order.status_changed` numbered 1, 2, …) delivered shuffled and duplicated;
/// proptest shrinks a failure to the shortest history and arrival.
mod arrival_order {
    use proptest::prelude::*;

    use super::*;

    /// Legal courses of an order; a history is a non-empty prefix of one.
    const COURSES: &[&[S]] = &[
        &[
            S::OnHold,
            S::Accepted,
            S::Processing,
            S::Shipped,
            S::Delivered,
            S::Completed,
        ],
        &[
            S::Accepted,
            S::Backordered,
            S::Processing,
            S::PartiallyShipped,
            S::Shipped,
            S::Delivered,
            S::Completed,
        ],
        &[S::Accepted, S::PartiallyShipped, S::Delivered, S::Completed],
        &[S::OnHold, S::Accepted, S::Backordered, S::Cancelled],
        &[S::OnHold, S::Cancelled],
    ];

    /// Status changes `(sequence, status)` in the order they were made.
    fn history() -> impl Strategy<Value = Vec<(i64, S)>> {
        prop::sample::select(COURSES).prop_flat_map(|course| {
            (1..=course.len())
                .prop_map(move |len| (1i64..).zip(course[..len].iter().copied()).collect())
        })
    }

    /// A permutation of `items` with duplicates (index, position) inserted.
    fn arrival_of<T: Clone + std::fmt::Debug>(items: Vec<T>) -> impl Strategy<Value = Vec<T>> {
        let n = items.len();
        let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        let duplicates = prop::collection::vec((0..n, 0..=n), 0..4);
        (order, duplicates).prop_map(move |(order, duplicates)| {
            let mut arrival: Vec<T> = order.iter().map(|&i| items[i].clone()).collect();
            for (i, at) in duplicates {
                arrival.insert(at.min(arrival.len()), items[i].clone());
            }
            arrival
        })
    }

    /// Status changes `(sequence, status)`.
    type Changes = Vec<(i64, S)>;

    fn history_and_arrival() -> impl Strategy<Value = (Changes, Changes)> {
        history().prop_flat_map(|events| (Just(events.clone()), arrival_of(events)))
    }

    /// Notifies status changes as they arrive: what was notified, in order, and the end
    /// watermark.
    fn notify_statuses(arrival: &[(i64, S)]) -> (Vec<(i64, S)>, Watermark) {
        let mut mark = Watermark::default();
        let mut notified: Vec<(i64, S)> = Vec::new();
        for &(sequence, status) in arrival {
            if judge_status(mark, sequence, status) == Freshness::Fresh
                && !notified.contains(&(sequence, status))
            {
                notified.push((sequence, status));
                mark = after_status(mark, sequence, status);
            }
        }
        (notified, mark)
    }

    /// One shipment's steps in the order they happen (dispatched, exceptions, delivered).
    fn shipment_history() -> impl Strategy<Value = Vec<ShipmentStep>> {
        (any::<bool>(), 0usize..3, any::<bool>()).prop_map(|(dispatched, exceptions, delivered)| {
            let mut steps = Vec::new();
            if dispatched {
                steps.push(ShipmentStep::Dispatched);
            }
            steps.extend(std::iter::repeat_n(ShipmentStep::Exception, exceptions));
            if delivered {
                steps.push(ShipmentStep::Delivered);
            }
            steps
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn status_changes_in_any_arrival_order_notify_the_newest_and_never_an_older_one(
            (events, arrival) in history_and_arrival()
        ) {
            let (in_order, in_order_mark) = notify_statuses(&events);
            prop_assert_eq!(&in_order, &events, "in order, every change is news");
            let (notified, mark) = notify_statuses(&arrival);
            // Nothing older is notified after something newer.
            for pair in notified.windows(2) {
                prop_assert!(
                    pair[0].0 < pair[1].0,
                    "{:?} notified after {:?} (arrival {:?})", pair[1], pair[0], arrival
                );
            }
            // The newest change is always notified, and the watermark ends where it ends
            // in order.
            prop_assert_eq!(notified.last(), events.last(), "arrival {:?}", arrival);
            prop_assert_eq!(mark, in_order_mark);
        }

        #[test]
        fn shipment_steps_in_any_arrival_order_never_go_back(
            arrival in shipment_history().prop_filter("some step", |s| !s.is_empty())
                .prop_flat_map(arrival_of)
        ) {
            let mut shipment_rank = 0;
            let mut notified = Vec::new();
            for step in &arrival {
                if judge_shipment(Watermark::default(), shipment_rank, *step) == Freshness::Fresh {
                    notified.push(*step);
                    shipment_rank = shipment_rank.max(step.rank());
                }
            }
            for pair in notified.windows(2) {
                prop_assert!(pair[0].rank() <= pair[1].rank(), "{:?}", notified);
            }
            let furthest = arrival.iter().map(|s| s.rank()).max();
            prop_assert_eq!(Some(shipment_rank), furthest, "the furthest step is notified");
        }
    }
}

#[test]
fn endpoints_the_ssrf_policy_always_refuses_are_refused_at_registration() {
    use super::check_endpoint_url;
    for url in [
        "https://localhost/",
        "https://LOCALHOST./hook",
        "https://api.localhost/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://10.0.0.8/",
        "https://192.168.1.1:8443/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://0.0.0.0/",
        "http://example.com/",
        "ftp://example.com/",
        "not a url",
    ] {
        let reason = check_endpoint_url(url, false).expect_err(url);
        assert!(!reason.is_empty(), "{url}");
    }
    let reason = check_endpoint_url("https://0x7f000001/", false).expect_err("hex loopback");
    assert!(reason.contains("127.0.0.1 is loopback"), "{reason}");
    for url in [
        "https://hooks.example.com/orderly",
        "https://93.184.216.34/",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/",
    ] {
        assert_eq!(check_endpoint_url(url, false), Ok(()), "{url}");
    }
    // allow_private permits private hosts and http, as the dispatcher does.
    assert_eq!(check_endpoint_url("http://127.0.0.1:8080/", true), Ok(()));
    assert!(check_endpoint_url("ftp://127.0.0.1/", true).is_err());
}
