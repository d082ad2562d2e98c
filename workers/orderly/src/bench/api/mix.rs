//! The requests the api benchmark sends: the kinds of request, their shares (the mix), and
//! each request's values drawn from the stores and the orders sampled from the read model.

use chrono::{DateTime, SecondsFormat, Utc};
use orderly_api::bench::Sampled;
use rand::{Rng, rngs::StdRng};

/// The kinds of request the mix sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// One store's orders, sometimes of some statuses.
    ListStore,
    /// Orders of some statuses, every store.
    ListStatus,
    /// Orders placed in a window (a day, or a week of one store).
    ListPlaced,
    /// Free text: a customer's surname or e-mail, or an order number.
    ListText,
    /// One channel's orders.
    ListChannel,
    /// One of the filters above with `count=true`.
    ListCounted,
    /// The second page of a store's orders, by the first page's cursor.
    ListPage2,
    /// The orders an account manager sees (two stores), sometimes of one status.
    ListScoped,
    /// An order's detail, as an order admin.
    Detail,
    /// An order's detail, as an account manager (an order of their stores).
    DetailScoped,
}

impl Kind {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::ListStore => "list: one store (some with statuses)",
            Self::ListStatus => "list: statuses, all stores",
            Self::ListPlaced => "list: placed_from/placed_to",
            Self::ListText => "list: q (surname, e-mail, order number)",
            Self::ListChannel => "list: channel",
            Self::ListCounted => "list: a filter above with count=true",
            Self::ListPage2 => "list: page 2 by cursor",
            Self::ListScoped => "list: account manager (2 stores)",
            Self::Detail => "detail: order admin",
            Self::DetailScoped => "detail: account manager",
        }
    }

    pub(super) fn is_list(self) -> bool {
        !matches!(self, Self::Detail | Self::DetailScoped)
    }
}

/// The mix: each kind's share in percent. An operator's day is mostly lists (a queue to work
/// through, searches) with a detail opened for some rows.
pub(super) const MIX: &[(Kind, u32)] = &[
    (Kind::ListStore, 14),
    (Kind::ListStatus, 8),
    (Kind::ListPlaced, 8),
    (Kind::ListText, 8),
    (Kind::ListChannel, 4),
    (Kind::ListCounted, 8),
    (Kind::ListPage2, 6),
    (Kind::ListScoped, 6),
    (Kind::Detail, 30),
    (Kind::DetailScoped, 8),
];

/// The kind for `roll`, a number from 0 to the sum of the weights (exclusive).
pub(super) fn pick(mix: &[(Kind, u32)], roll: u32) -> Kind {
    let mut left = roll;
    for (kind, weight) in mix {
        if left < *weight {
            return *kind;
        }
        left -= weight;
    }
    mix.last().map_or(Kind::Detail, |(kind, _)| *kind)
}

pub(super) fn total_weight(mix: &[(Kind, u32)]) -> u32 {
    mix.iter().map(|(_, w)| w).sum()
}

/// Which token a request is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    Admin,
    Manager,
}

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Planned {
    pub(super) kind: Kind,
    pub(super) who: Who,
    pub(super) path: String,
    pub(super) query: Vec<(&'static str, String)>,
}

/// What the requests are made of: the stores, the orders sampled from the read model, the
/// account manager's orders among them.
pub(super) struct Material {
    pub(super) stores: Vec<&'static str>,
    pub(super) orders: Vec<Sampled>,
    pub(super) manager_orders: Vec<Sampled>,
    pub(super) now: DateTime<Utc>,
}

const STATUS_FILTERS: &[&str] = &[
    "processing",
    "shipped",
    "backordered",
    "on_hold",
    "cancelled",
    "processing,partially_shipped",
    "shipped,delivered",
    "completed",
];

const CHANNELS: &[&str] = &["marketplace", "pos", "storefront", "manual"];

fn one<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Material {
    /// A request of `kind`, its values drawn with `rng`.
    pub(super) fn plan(&self, kind: Kind, rng: &mut StdRng) -> Planned {
        let list = |who, query| Planned {
            kind,
            who,
            path: "/api/v1/admin/orders".to_owned(),
            query,
        };
        match kind {
            Kind::ListStore | Kind::ListPage2 => {
                let mut query = vec![("store", (*one(rng, &self.stores)).to_owned())];
                if kind == Kind::ListStore && rng.random_bool(0.4) {
                    query.push(("status", (*one(rng, STATUS_FILTERS)).to_owned()));
                }
                list(Who::Admin, query)
            }
            Kind::ListStatus => list(
                Who::Admin,
                vec![("status", (*one(rng, STATUS_FILTERS)).to_owned())],
            ),
            Kind::ListPlaced => {
                let days_ago = rng.random_range(1..365);
                let from = self.now - chrono::Duration::days(days_ago);
                let mut query = Vec::with_capacity(3);
                let days = if rng.random_bool(0.5) {
                    query.push(("store", (*one(rng, &self.stores)).to_owned()));
                    7
                } else {
                    1
                };
                query.push(("placed_from", rfc3339(from)));
                query.push(("placed_to", rfc3339(from + chrono::Duration::days(days))));
                list(Who::Admin, query)
            }
            Kind::ListText => list(Who::Admin, vec![("q", self.text(rng))]),
            Kind::ListChannel => list(
                Who::Admin,
                vec![("channel", (*one(rng, CHANNELS)).to_owned())],
            ),
            Kind::ListCounted => {
                let filter = *one(
                    rng,
                    &[
                        Kind::ListStore,
                        Kind::ListStatus,
                        Kind::ListPlaced,
                        Kind::ListText,
                        Kind::ListChannel,
                    ],
                );
                let mut planned = self.plan(filter, rng);
                planned.kind = kind;
                planned.query.push(("count", "true".to_owned()));
                planned
            }
            Kind::ListScoped => {
                let mut query = Vec::new();
                if rng.random_bool(0.5) {
                    query.push(("status", (*one(rng, STATUS_FILTERS)).to_owned()));
                }
                list(Who::Manager, query)
            }
            Kind::Detail => Planned {
                kind,
                who: Who::Admin,
                path: format!("/api/v1/admin/orders/{}", one(rng, &self.orders).order_id),
                query: Vec::new(),
            },
            Kind::DetailScoped => Planned {
                kind,
                who: Who::Manager,
                path: format!(
                    "/api/v1/admin/orders/{}",
                    one(rng, &self.manager_orders).order_id
                ),
                query: Vec::new(),
            },
        }
    }

    /// What an operator types into the search box: a customer's surname, a whole e-mail, or
    /// an order number, of an order that exists.
    pub(super) fn text(&self, rng: &mut StdRng) -> String {
        let order = one(rng, &self.orders);
        let surname = order
            .customer_name
            .as_deref()
            .and_then(|name| name.split_once(' '))
            .map(|(_, surname)| surname.to_owned());
        match (rng.random_range(0..3), surname, &order.customer_email) {
            (0, Some(surname), _) => surname,
            (1, _, Some(email)) => email.clone(),
            _ => order.external_order_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_roll_picks_a_kind_in_proportion_to_its_weight() {
        let total = total_weight(MIX);
        assert_eq!(total, 100, "the mix is in percent");
        let mut counts: BTreeMap<Kind, u32> = BTreeMap::new();
        for roll in 0..total {
            *counts.entry(pick(MIX, roll)).or_default() += 1;
        }
        for (kind, weight) in MIX {
            assert_eq!(counts.get(kind), Some(weight), "{kind:?}");
        }
        let lists: u32 = MIX
            .iter()
            .filter(|(k, _)| k.is_list())
            .map(|(_, w)| w)
            .sum();
        assert_eq!(lists, 62, "lists and details as documented");
        assert_eq!(
            pick(MIX, total + 5),
            Kind::DetailScoped,
            "past the end: the last"
        );
    }

    fn material() -> Material {
        let order = |store: &str, name: Option<&str>| Sampled {
            order_id: uuid::Uuid::now_v7(),
            store_id: store.to_owned(),
            external_order_id: "1000042".to_owned(),
            customer_name: name.map(str::to_owned),
            customer_email: name.map(|_| "anna.de.jong@example.nl".to_owned()),
            placed_at: Utc::now(),
        };
        Material {
            stores: vec!["shop-de", "bol-nl"],
            orders: vec![
                order("shop-de", Some("Anna de Jong")),
                order("bol-nl", None),
            ],
            manager_orders: vec![order("bol-nl", None)],
            now: Utc::now(),
        }
    }

    #[test]
    fn each_kind_asks_what_its_name_says() {
        let material = material();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            for (kind, _) in MIX {
                let planned = material.plan(*kind, &mut rng);
                let names: Vec<&str> = planned.query.iter().map(|(n, _)| *n).collect();
                assert_eq!(planned.kind, *kind);
                assert_eq!(
                    planned.who == Who::Manager,
                    matches!(kind, Kind::ListScoped | Kind::DetailScoped),
                    "{kind:?}"
                );
                assert_eq!(
                    planned.path.starts_with("/api/v1/admin/orders/"),
                    !kind.is_list(),
                    "{kind:?}"
                );
                let expected: &[&str] = match kind {
                    Kind::ListStore | Kind::ListPage2 => &["store"],
                    Kind::ListStatus => &["status"],
                    Kind::ListPlaced => &["placed_from", "placed_to"],
                    Kind::ListText => &["q"],
                    Kind::ListChannel => &["channel"],
                    Kind::ListCounted => &["count"],
                    Kind::ListScoped | Kind::Detail | Kind::DetailScoped => &[],
                };
                for name in expected {
                    assert!(names.contains(name), "{kind:?}: {names:?}");
                }
                assert_eq!(
                    names.contains(&"count"),
                    *kind == Kind::ListCounted,
                    "{kind:?}: {names:?}"
                );
                if *kind == Kind::DetailScoped {
                    let id = &material.manager_orders[0].order_id;
                    assert!(planned.path.ends_with(&id.to_string()), "only their orders");
                }
            }
        }
    }

    #[test]
    fn a_search_is_a_surname_an_e_mail_or_an_order_number_of_a_real_order() {
        let material = material();
        let mut rng = StdRng::seed_from_u64(2);
        let asked: std::collections::BTreeSet<String> =
            (0..300).map(|_| material.text(&mut rng)).collect();
        let expected: std::collections::BTreeSet<String> =
            ["de Jong", "anna.de.jong@example.nl", "1000042"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        assert_eq!(asked, expected);
    }
}
