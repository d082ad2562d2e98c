//! The setups list's query string (`GET /api/v1/admin/setups`): the setups of service lines,
//! most recently changed first, as a setup manager's work queue.
//!
//! `store`, `status` and `product` (a SKU) may repeat or hold a comma list; `stage` is a
//! stage key; `order` is an order id; `overdue=true` keeps the setups whose current stage
//! is past its SLA (`false` those that are not); `limit` is 1 to 200 (50); `cursor` is the
//! previous page's `next_cursor`. Any other parameter, or one given twice where it may not
//! be, is refused naming it.

use orderly_contracts::messages::SetupStatus;
use orderly_contracts::types::{Sku, StoreId};
use schemars::{Schema, SchemaGenerator, json_schema};
use uuid::Uuid;

use super::cursor::Cursor;
use super::filter::{BadParameter, DEFAULT_LIMIT, MAX_LIMIT};
use super::query::{Parameter, list_of, one, opaque, page_size, recognise};

/// A parameter of the setups list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Store,
    Status,
    Product,
    Stage,
    Order,
    Overdue,
    Limit,
    Cursor,
    From,
    To,
}

impl Param {
    /// Every parameter, in the order the document lists them.
    pub(crate) const ALL: [Param; 8] = [
        Param::Store,
        Param::Status,
        Param::Product,
        Param::Stage,
        Param::Order,
        Param::Overdue,
        Param::Limit,
        Param::Cursor,
    ];

    /// Its name in the query string.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Status => "status",
            Self::Product => "product",
            Self::Stage => "stage",
            Self::Order => "order",
            Self::Overdue => "overdue",
            Self::Limit => "limit",
            Self::Cursor => "cursor",
            Self::From => "from",
            Self::To => "to",
        }
    }

    /// The parameters of the setups' analytics.
    pub(crate) const ANALYTICS: [Param; 4] = [Param::Store, Param::Product, Param::From, Param::To];

    const fn repeatable(self) -> bool {
        matches!(self, Self::Store | Self::Status | Self::Product)
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::Store => (
                "Only setups of these stores (repeat it or give a comma list).",
                list_of::<StoreId>,
            ),
            Self::Status => (
                "Only setups in these statuses (repeat it or give a comma list).",
                list_of::<SetupStatus>,
            ),
            Self::Product => (
                "Only setups of these service products, by SKU (repeat it or give a comma list).",
                list_of::<Sku>,
            ),
            Self::Stage => ("Only setups at this stage (its key).", stage_schema),
            Self::Order => ("Only the setups of this order.", one::<Uuid>),
            Self::Overdue => (
                "`true`: only setups whose current stage is past its SLA; `false`: only the \
                 others.",
                one::<bool>,
            ),
            Self::Limit => ("Setups per page.", page_size::<MAX_LIMIT, DEFAULT_LIMIT>),
            Self::Cursor => ("Where the previous page ended: its `next_cursor`.", opaque),
            Self::From => (
                "Only setups started on or after this day (YYYY-MM-DD, UTC).",
                one::<chrono::NaiveDate>,
            ),
            Self::To => (
                "Only setups started on or before this day (YYYY-MM-DD, UTC).",
                one::<chrono::NaiveDate>,
            ),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

fn stage_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[a-z0-9_]{1,64}$", "examples": ["build"] })
}

/// A setups list request, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SetupQuery {
    pub(crate) stores: Vec<String>,
    pub(crate) statuses: Vec<String>,
    pub(crate) products: Vec<String>,
    pub(crate) stage: Option<String>,
    pub(crate) order: Option<Uuid>,
    pub(crate) overdue: Option<bool>,
    pub(crate) limit: u16,
    /// The last row of the previous page: its `updated_at` and setup id.
    pub(crate) cursor: Option<Cursor>,
    /// Setups started on or after this day (analytics).
    pub(crate) started_from: Option<chrono::NaiveDate>,
    /// Setups started on or before this day (analytics).
    pub(crate) started_to: Option<chrono::NaiveDate>,
}

/// Parses the list's query string's pairs.
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<SetupQuery, BadParameter> {
    parse_of(pairs, &Param::ALL, "setups take")
}

/// Parses the analytics' query string's pairs (`store`, `product`).
pub(crate) fn parse_analytics(pairs: &[(String, String)]) -> Result<SetupQuery, BadParameter> {
    parse_of(pairs, &Param::ANALYTICS, "setup analytics take")
}

fn parse_of(
    pairs: &[(String, String)],
    allowed: &[Param],
    what: &str,
) -> Result<SetupQuery, BadParameter> {
    let mut q = SetupQuery {
        limit: DEFAULT_LIMIT,
        ..SetupQuery::default()
    };
    let given = recognise(pairs, allowed, Param::name, Param::repeatable, what)?;
    for (param, name, value) in given {
        let bad = |reason: String| BadParameter::new(name, reason);
        let items = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
        match param {
            Param::Store => {
                for item in items() {
                    let store = StoreId::parse(item).map_err(|e| bad(e.to_string()))?;
                    q.stores.push(store.as_str().to_owned());
                }
            }
            Param::Status => {
                for item in items() {
                    let status: SetupStatus = item
                        .parse()
                        .map_err(|e: orderly_contracts::types::InvalidValue| bad(e.to_string()))?;
                    q.statuses.push(status.as_str().to_owned());
                }
            }
            Param::Product => {
                for item in items() {
                    let sku = Sku::parse(item).map_err(|e| bad(e.to_string()))?;
                    q.products.push(sku.as_str().to_owned());
                }
            }
            Param::Stage => {
                let stage = value.trim();
                let ok = !stage.is_empty()
                    && stage.len() <= 64
                    && stage
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    return Err(bad(format!(
                        "`{stage}` is not a stage key ([a-z0-9_], 1 to 64)"
                    )));
                }
                q.stage = Some(stage.to_owned());
            }
            Param::Order => {
                q.order = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("`{value}` is not an order id (a UUID)")))?,
                );
            }
            Param::Overdue => {
                q.overdue = Some(match value.trim() {
                    "true" => true,
                    "false" => false,
                    other => return Err(bad(format!("`{other}` is neither `true` nor `false`"))),
                });
            }
            Param::Limit => q.limit = super::query::limit::<MAX_LIMIT>(name, value)?,
            Param::Cursor => q.cursor = Some(Cursor::decode(value).map_err(bad)?),
            Param::From => q.started_from = Some(super::analytics::date(name, value.trim())?),
            Param::To => q.started_to = Some(super::analytics::date(name, value.trim())?),
        }
    }
    if let (Some(from), Some(to)) = (q.started_from, q.started_to)
        && to < from
    {
        return Err(BadParameter::new(
            "to",
            format!("{to} is before `from` ({from})"),
        ));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::query::pairs;

    #[test]
    fn every_described_parameter_is_taken() {
        for param in Param::ALL {
            assert_eq!(param.doc().name, param.name());
            if let Err(e) = parse(&pairs(&[(param.name(), "x")])) {
                assert!(
                    !e.reason.starts_with("unknown parameter"),
                    "{param:?}: {}",
                    e.reason
                );
            }
        }
    }

    #[test]
    fn the_analytics_take_a_period_of_days() {
        let q = parse_analytics(&pairs(&[("from", "2026-03-01"), ("to", "2026-03-31")]))
            .expect("valid");
        assert_eq!(
            (q.started_from, q.started_to),
            (
                chrono::NaiveDate::from_ymd_opt(2026, 3, 1),
                chrono::NaiveDate::from_ymd_opt(2026, 3, 31)
            )
        );
        let bad = parse_analytics(&pairs(&[("from", "2026-03-31"), ("to", "2026-03-01")]))
            .expect_err("backwards");
        assert_eq!(bad.field, "to");
        let bad = parse_analytics(&pairs(&[("from", "March")])).expect_err("not a day");
        assert_eq!(bad.field, "from");
        let bad = parse(&pairs(&[("from", "2026-03-01")])).expect_err("not on the list");
        assert_eq!(bad.field, "from");
    }

    #[test]
    fn filters_become_typed_values_and_bad_ones_name_the_parameter() {
        let q = parse(&pairs(&[
            ("status", "in_progress,qa"),
            ("store", "shop-de"),
            ("product", "SVC-ADS"),
            ("overdue", "true"),
            ("stage", "build"),
        ]))
        .expect("valid");
        assert_eq!(q.statuses, ["in_progress", "qa"]);
        assert_eq!((q.overdue, q.stage.as_deref()), (Some(true), Some("build")));
        for (name, value, says) in [
            ("status", "late", "late"),
            ("overdue", "yes", "neither"),
            ("stage", "Build!", "not a stage key"),
            ("order", "42", "not an order id"),
            ("limit", "0", ""),
            ("colour", "red", "unknown parameter"),
        ] {
            let e = parse(&pairs(&[(name, value)])).expect_err(name);
            assert_eq!(e.field, name);
            assert!(e.reason.contains(says), "{name}: {}", e.reason);
        }
        let twice = parse(&pairs(&[("stage", "a"), ("stage", "b")])).expect_err("twice");
        assert!(twice.reason.contains("more than once"));
    }
}
