//! The order-exceptions list's query string (`GET /api/v1/admin/order-exceptions`): the
//! open order item exceptions, oldest first, as an operator's work queue.
//!
//! `store` and `channel` may repeat or hold a comma list; `gtin` is one GTIN (any length,
//! compared as GTIN-14); `older_than` is an age (`30m`, `4h`, `2d`): only exceptions held at
//! least that long; `limit` is 1 to 200 (50); `cursor` is the previous page's
//! `next_cursor`. Any other parameter is refused.

use chrono::{DateTime, Duration, Utc};
use orderly_contracts::types::{Channel, Gtin, StoreId};
use schemars::{Schema, SchemaGenerator, json_schema};

use super::cursor::Cursor;
use super::filter::{BadParameter, DEFAULT_LIMIT, MAX_LIMIT};
use super::query::{Parameter, list_of, one, opaque, page_size};

/// A parameter of the exceptions list: the parser matches on it exhaustively, and
/// [`Param::doc`] describes it for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Store,
    Channel,
    Gtin,
    OlderThan,
    Limit,
    Cursor,
}

impl Param {
    /// Every parameter, in the order the document lists them.
    pub(crate) const ALL: [Param; 6] = [
        Param::Store,
        Param::Channel,
        Param::Gtin,
        Param::OlderThan,
        Param::Limit,
        Param::Cursor,
    ];

    /// Its name in the query string.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Channel => "channel",
            Self::Gtin => "gtin",
            Self::OlderThan => "older_than",
            Self::Limit => "limit",
            Self::Cursor => "cursor",
        }
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::Store => (
                "Only exceptions of these stores (repeat it or give a comma list).",
                list_of::<StoreId>,
            ),
            Self::Channel => (
                "Only exceptions of orders from these channels (repeat it or give a comma list).",
                list_of::<Channel>,
            ),
            Self::Gtin => (
                "Only lines with this GTIN (any length; compared as GTIN-14).",
                one::<Gtin>,
            ),
            Self::OlderThan => (
                "Only exceptions held at least this long: minutes, hours or days (`30m`, `4h`, \
                 `2d`; at most a year).",
                age_schema,
            ),
            Self::Limit => (
                "Exceptions per page.",
                page_size::<MAX_LIMIT, DEFAULT_LIMIT>,
            ),
            Self::Cursor => ("Where the previous page ended: its `next_cursor`.", opaque),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

fn age_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[1-9][0-9]*[mhd]$", "examples": ["4h"] })
}

/// An exceptions list request, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ExceptionQuery {
    pub(crate) stores: Vec<String>,
    pub(crate) channels: Vec<Channel>,
    /// As GTIN-14.
    pub(crate) gtin: Option<String>,
    /// Held since at most this time.
    pub(crate) held_before: Option<DateTime<Utc>>,
    pub(crate) limit: u16,
    /// The last row of the previous page: its `held_since` and exception id.
    pub(crate) cursor: Option<Cursor>,
}

/// Parses the query string's pairs; `now` is when the request came in (for `older_than`).
pub(crate) fn parse(
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<ExceptionQuery, BadParameter> {
    let bad = |field: &str, reason: String| BadParameter {
        field: field.to_owned(),
        reason,
    };
    let mut q = ExceptionQuery {
        limit: DEFAULT_LIMIT,
        ..ExceptionQuery::default()
    };
    for (name, value) in pairs {
        let items = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
        let Some(param) = Param::ALL.into_iter().find(|p| p.name() == name) else {
            return Err(bad(
                name,
                format!(
                    "unknown parameter ({})",
                    Param::ALL.map(Param::name).join(", ")
                ),
            ));
        };
        match param {
            Param::Store => {
                for item in items() {
                    let store = StoreId::parse(item).map_err(|e| bad(name, e.to_string()))?;
                    q.stores.push(store.as_str().to_owned());
                }
            }
            Param::Channel => {
                for item in items() {
                    q.channels.push(item.parse().map_err(
                        |e: orderly_contracts::types::InvalidValue| bad(name, e.to_string()),
                    )?);
                }
            }
            Param::Gtin => {
                let gtin = Gtin::parse(value.trim()).map_err(|e| bad(name, e.to_string()))?;
                q.gtin = Some(gtin.to_gtin14());
            }
            Param::OlderThan => {
                let age = age(value).ok_or_else(|| {
                    bad(
                        name,
                        format!(
                            "`{value}` is not an age like 30m, 4h or 2d (minutes, hours, days)"
                        ),
                    )
                })?;
                q.held_before = Some(now - age);
            }
            Param::Limit => q.limit = super::query::limit::<MAX_LIMIT>(name, value)?,
            Param::Cursor => q.cursor = Some(Cursor::decode(value).map_err(|e| bad(name, e))?),
        }
    }
    Ok(q)
}

/// `30m`, `4h`, `2d`: a positive whole number of minutes, hours or days (at most a year).
fn age(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: i64 = number.parse().ok().filter(|n| *n > 0)?;
    let age = match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return None,
    };
    (age <= Duration::days(366)).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::query::pairs;

    #[test]
    fn every_described_parameter_is_taken() {
        for param in Param::ALL {
            assert_eq!(param.doc().name, param.name());
            if let Err(e) = parse(&pairs(&[(param.name(), "x")]), Utc::now()) {
                assert!(
                    !e.reason.starts_with("unknown parameter"),
                    "{param:?}: {}",
                    e.reason
                );
            }
        }
    }

    #[test]
    fn filters_become_typed_values() {
        let now = Utc::now();
        let q = parse(
            &pairs(&[
                ("store", "bol-nl,shop-de"),
                ("channel", "marketplace"),
                ("gtin", "4006381333931"),
                ("older_than", "4h"),
                ("limit", "10"),
            ]),
            now,
        )
        .expect("parses");
        assert_eq!(q.stores, vec!["bol-nl", "shop-de"]);
        assert_eq!(q.channels, vec![Channel::Marketplace]);
        assert_eq!(q.gtin.as_deref(), Some("04006381333931"), "as GTIN-14");
        assert_eq!(q.held_before, Some(now - Duration::hours(4)));
        assert_eq!(q.limit, 10);
    }

    #[test]
    fn bad_input_names_the_parameter() {
        for (items, field) in [
            (&[("gtin", "4006381333932")][..], "gtin"),
            (&[("older_than", "yesterday")], "older_than"),
            (&[("older_than", "0h")], "older_than"),
            (&[("older_than", "400d")], "older_than"),
            (&[("limit", "0")], "limit"),
            (&[("channel", "fax")], "channel"),
            (&[("cursor", "garbage")], "cursor"),
            (&[("status", "on_hold")], "status"),
        ] {
            let e = parse(&pairs(items), Utc::now()).expect_err("refused");
            assert_eq!(e.field, field, "{items:?}: {e:?}");
        }
    }
}
