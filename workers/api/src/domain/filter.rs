//! The order list's query string: parsed, not validated (every value becomes a typed
//! value, or the request is refused naming the parameter), so the store receives only
//! filters that make sense.
//!
//! `GET /api/v1/admin/orders?store=shop-de&status=processing,shipped&placed_from=…&limit=20`:
//! `store`, `channel` and `status` may repeat or hold a comma list; `placed_from` and
//! `placed_to` are RFC 3339 and inclusive; `q` is free text on the external order number,
//! the customer's name and e-mail; `limit` is 1 to 200 (50); `cursor` is the previous
//! page's `next_cursor`; `count=true` asks for the total (exact up to [`COUNT_LIMIT`], see
//! [`Total`]). Any other parameter is refused: a misspelt filter that is silently ignored
//! returns the wrong orders.

use chrono::{DateTime, Utc};
use orderly_contracts::types::{Channel, InvalidValue, OrderStatus, StoreId};
use schemars::{Schema, SchemaGenerator, json_schema};

use super::cursor::Cursor;
pub(crate) use super::query::BadParameter;
use super::query::{self, Parameter, list_of, one, opaque, page_size};

/// The most rows one page may have.
pub(crate) const MAX_LIMIT: u16 = 200;
/// Rows per page when the caller does not say.
pub(crate) const DEFAULT_LIMIT: u16 = 50;
/// The longest free-text search.
const MAX_Q: usize = 200;

/// A parameter of the list: the parser matches on it exhaustively, and
/// [`Param::doc`] describes it for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Store,
    Channel,
    Status,
    PlacedFrom,
    PlacedTo,
    Q,
    Limit,
    Cursor,
    Count,
}

impl Param {
    /// Every parameter, in the order the document lists them.
    pub(crate) const ALL: [Param; 9] = [
        Param::Store,
        Param::Channel,
        Param::Status,
        Param::PlacedFrom,
        Param::PlacedTo,
        Param::Q,
        Param::Limit,
        Param::Cursor,
        Param::Count,
    ];

    /// The filters alone (not the page): what selects the orders of the list, an export
    /// and a bulk action alike ([`filter_schema`] describes them as a JSON object).
    pub(crate) const FILTERS: [Param; 6] = [
        Param::Store,
        Param::Channel,
        Param::Status,
        Param::PlacedFrom,
        Param::PlacedTo,
        Param::Q,
    ];

    /// The parameters of a list that takes no filters (a customer's orders, [`parse_page`]).
    pub(crate) const PAGE: [Param; 2] = [Param::Limit, Param::Cursor];

    /// Its name in the query string.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Channel => "channel",
            Self::Status => "status",
            Self::PlacedFrom => "placed_from",
            Self::PlacedTo => "placed_to",
            Self::Q => "q",
            Self::Limit => "limit",
            Self::Cursor => "cursor",
            Self::Count => "count",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::Store => (
                "Only orders of these stores (repeat it or give a comma list). A store the \
                 token does not see matches nothing.",
                list_of::<StoreId>,
            ),
            Self::Channel => (
                "Only orders from these channels (repeat it or give a comma list).",
                list_of::<Channel>,
            ),
            Self::Status => (
                "Only orders in these statuses (repeat it or give a comma list).",
                list_of::<OrderStatus>,
            ),
            Self::PlacedFrom => (
                "Only orders placed at or after this time (RFC 3339).",
                one::<DateTime<Utc>>,
            ),
            Self::PlacedTo => (
                "Only orders placed at or before this time (RFC 3339); not before `placed_from`.",
                one::<DateTime<Utc>>,
            ),
            Self::Q => (
                "Free text, case-insensitive, contained in the external order number, the \
                 customer's name or e-mail.",
                free_text,
            ),
            Self::Limit => ("Orders per page.", page_size::<MAX_LIMIT, DEFAULT_LIMIT>),
            Self::Cursor => ("Where the previous page ended: its `next_cursor`.", opaque),
            Self::Count => (
                "`true` adds `total`: every matching order, not just the page, counted up to \
                 10,000, and `total_exact` (`false`: more than 10,000 match).",
                one::<bool>,
            ),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

/// The list's filters as a JSON object (a bulk action's `filter`): one property per filter
/// parameter, with the same schema and description as in the query string.
pub(crate) fn filter_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut properties = serde_json::Map::new();
    for param in Param::FILTERS {
        let doc = param.doc();
        let mut schema = (doc.schema)(generator);
        schema.insert("description".to_owned(), doc.description.into());
        properties.insert(doc.name.to_owned(), schema.to_value());
    }
    json_schema!({
        "title": "OrderFilter",
        "description": "The order list's filters, as its query string takes them (a list for \
            `store`, `channel` and `status`); every order the list shows for them.",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

/// A filter given as a JSON object ([`filter_schema`]), parsed by the list's own parser:
/// a list's items and a single value become the query string's `(name, value)` pairs. A
/// refusal names the property.
pub(crate) fn parse_object(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<ListQuery, BadParameter> {
    let mut pairs = Vec::new();
    for (name, value) in object {
        let Some(param) = Param::named(name).filter(|p| Param::FILTERS.contains(p)) else {
            return Err(BadParameter::new(
                name,
                format!(
                    "unknown filter; a filter takes: {}",
                    Param::FILTERS.map(Param::name).join(", ")
                ),
            ));
        };
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Ok(s.clone()),
            _ => Err(BadParameter::new(name, "must be text")),
        };
        match (param, value) {
            (Param::Store | Param::Channel | Param::Status, serde_json::Value::Array(items)) => {
                if items.is_empty() {
                    return Err(BadParameter::new(
                        name,
                        "an empty list matches nothing: leave it out to match all",
                    ));
                }
                for item in items {
                    pairs.push((name.clone(), text(item)?));
                }
            }
            _ => pairs.push((name.clone(), text(value)?)),
        }
    }
    parse(&pairs)
}

fn free_text(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_Q })
}

/// Matches counted at most for `count=true`.
///
/// Why a limit: counting is reading every match, and a store's or a status's matches are
/// hundreds of thousands of orders in a year (on this project's machine, 50 to 300 ms of a
/// core for one count of a million orders, while a page takes a millisecond: with counts
/// in one list request in eight, the database spent most of its time counting). Past ten
/// thousand, an operator learns what they need from "more than 10,000", as in most
/// order admins; the count then costs what counting ten thousand costs.
pub(crate) const COUNT_LIMIT: i64 = 10_000;

/// What `count=true` answers: every match up to [`COUNT_LIMIT`], or that there are more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Total {
    /// Exactly this many match.
    Exact(i64),
    /// At least [`COUNT_LIMIT`] match (the count stopped there).
    AtLeast(i64),
}

impl Total {
    /// The total from a count of at most `COUNT_LIMIT + 1` matches.
    pub(crate) fn of(counted: i64) -> Self {
        if counted > COUNT_LIMIT {
            Self::AtLeast(COUNT_LIMIT)
        } else {
            Self::Exact(counted)
        }
    }

    /// The number shown as `total`.
    pub(crate) fn value(self) -> i64 {
        match self {
            Self::Exact(n) | Self::AtLeast(n) => n,
        }
    }

    /// Whether `total` is every match (`total_exact`).
    pub(crate) fn is_exact(self) -> bool {
        matches!(self, Self::Exact(_))
    }
}

/// A list request, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ListQuery {
    /// Only these stores (none: every store the caller sees).
    pub(crate) stores: Vec<String>,
    /// Only these channels (none: all).
    pub(crate) channels: Vec<Channel>,
    /// Only these statuses (none: all).
    pub(crate) statuses: Vec<OrderStatus>,
    /// Placed at or after.
    pub(crate) placed_from: Option<DateTime<Utc>>,
    /// Placed at or before.
    pub(crate) placed_to: Option<DateTime<Utc>>,
    /// Free text, as a case-insensitive `LIKE` pattern (`%text%`, wildcards escaped).
    pub(crate) q_pattern: Option<String>,
    /// What the free-text index is asked for: [`q_pattern`](Self::q_pattern), or a part of
    /// it that every match contains too (see [`index_probe`]).
    pub(crate) q_index_pattern: Option<String>,
    /// Rows per page.
    pub(crate) limit: u16,
    /// Where the previous page ended.
    pub(crate) cursor: Option<Cursor>,
    /// Whether to count the matching orders (up to [`COUNT_LIMIT`]).
    pub(crate) count: bool,
}

/// Parses the query string's `(name, value)` pairs, in order.
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<ListQuery, BadParameter> {
    let mut query = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    let mut seen_single: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        let single = |seen: &mut Vec<&str>, field: &'static str| {
            if seen.contains(&field) {
                return Err(BadParameter::new(field, "given more than once"));
            }
            seen.push(field);
            Ok(())
        };
        let Some(param) = Param::named(name) else {
            return Err(BadParameter::new(
                name,
                format!(
                    "unknown parameter; the list takes: {}",
                    Param::ALL.map(Param::name).join(", ")
                ),
            ));
        };
        match param {
            Param::Store => {
                for item in list(name, value)? {
                    let store = StoreId::parse(item).map_err(|e| invalid(name, &e))?;
                    query.stores.push(store.as_str().to_owned());
                }
            }
            Param::Channel => {
                for item in list(name, value)? {
                    query
                        .channels
                        .push(item.parse().map_err(|e| invalid(name, &e))?);
                }
            }
            Param::Status => {
                for item in list(name, value)? {
                    query
                        .statuses
                        .push(item.parse().map_err(|e| invalid(name, &e))?);
                }
            }
            Param::PlacedFrom => {
                single(&mut seen_single, "placed_from")?;
                query.placed_from = Some(time(name, value)?);
            }
            Param::PlacedTo => {
                single(&mut seen_single, "placed_to")?;
                query.placed_to = Some(time(name, value)?);
            }
            Param::Q => {
                single(&mut seen_single, "q")?;
                let text = value.trim();
                if text.is_empty() {
                    return Err(BadParameter::new(name, "empty: leave `q` out to match all"));
                }
                if text.chars().any(char::is_control) {
                    // The free-text index joins the columns with one (U+001F).
                    return Err(BadParameter::new(
                        name,
                        "control characters are not searched for",
                    ));
                }
                if text.chars().count() > MAX_Q {
                    return Err(BadParameter::new(
                        name,
                        format!("at most {MAX_Q} characters"),
                    ));
                }
                query.q_pattern = Some(format!("%{}%", escape_like(text)));
                query.q_index_pattern = Some(format!("%{}%", escape_like(index_probe(text))));
            }
            Param::Limit => {
                single(&mut seen_single, "limit")?;
                query.limit = query::limit::<MAX_LIMIT>("limit", value)?;
            }
            Param::Cursor => {
                single(&mut seen_single, "cursor")?;
                query.cursor = Some(cursor(value)?);
            }
            Param::Count => {
                single(&mut seen_single, "count")?;
                query.count = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(BadParameter::new(
                            name,
                            format!("`{other}` is not `true` or `false`"),
                        ));
                    }
                };
            }
        }
    }
    if let (Some(from), Some(to)) = (query.placed_from, query.placed_to)
        && to < from
    {
        return Err(BadParameter::new(
            "placed_to",
            format!("{to} is before placed_from {from}"),
        ));
    }
    dedup(&mut query.stores);
    dedup(&mut query.channels);
    dedup(&mut query.statuses);
    Ok(query)
}

/// A page of a list that takes no filters (a customer's orders): `limit` and `cursor`, as
/// in the order list, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    /// Rows per page.
    pub(crate) limit: u16,
    /// Where the previous page ended.
    pub(crate) cursor: Option<Cursor>,
}

/// Parses a page's query string (`limit`, `cursor`; anything else is refused).
pub(crate) fn parse_page(pairs: &[(String, String)]) -> Result<Page, BadParameter> {
    let mut page = Page {
        limit: DEFAULT_LIMIT,
        cursor: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        if seen.contains(&name) {
            return Err(BadParameter::new(name, "given more than once"));
        }
        match Param::named(name).filter(|p| Param::PAGE.contains(p)) {
            Some(Param::Limit) => page.limit = query::limit::<MAX_LIMIT>("limit", value)?,
            Some(Param::Cursor) => page.cursor = Some(cursor(value)?),
            _ => {
                return Err(BadParameter::new(
                    name,
                    "unknown parameter; this list takes: limit, cursor",
                ));
            }
        }
        seen.push(name);
    }
    Ok(page)
}

fn cursor(value: &str) -> Result<Cursor, BadParameter> {
    Cursor::decode(value).map_err(|e| BadParameter::new("cursor", e))
}

fn invalid(name: &str, e: &InvalidValue) -> BadParameter {
    BadParameter::new(name, e.reason().to_owned())
}

fn dedup<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    *items = kept;
}

/// The items of a repeatable parameter's comma list, none of them empty.
fn list<'a>(name: &str, value: &'a str) -> Result<Vec<&'a str>, BadParameter> {
    value
        .split(',')
        .map(str::trim)
        .map(|item| {
            if item.is_empty() {
                Err(BadParameter::new(name, "an empty value"))
            } else {
                Ok(item)
            }
        })
        .collect()
}

fn time(name: &str, value: &str) -> Result<DateTime<Utc>, BadParameter> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|_| {
            BadParameter::new(
                name,
                format!("`{value}` is not an RFC 3339 time (2026-03-14T09:26:51Z)"),
            )
        })
}

/// The part of a free-text search the trigram index looks for: an e-mail address's part
/// up to its `@` (with at least three letters or digits before it), else all of it. Every
/// order the whole text matches contains that part too, so the index finds the same orders
/// and more, and the search itself decides. Why: the index reads, for each trigram of what
/// it looks for, the list of every order with that trigram, and a domain's trigrams
/// (`exa`, `mpl`, `com`, …) are in a large share of all orders; the part before the `@` is
/// what tells customers apart (on a million orders, 85 ms for a whole address, 12 ms for
/// the part up to its `@`).
pub(crate) fn index_probe(text: &str) -> &str {
    match text.split_once('@') {
        Some((local, _)) if local.chars().filter(|c| c.is_alphanumeric()).count() >= 3 => {
            &text[..=local.len()]
        }
        _ => text,
    }
}

/// `text` with the `LIKE` wildcards (and the escape character) escaped.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::pairs;
    use uuid::Uuid;

    fn bad(items: &[(&str, &str)]) -> BadParameter {
        parse(&pairs(items)).expect_err("refused")
    }

    #[test]
    fn a_page_takes_a_limit_and_a_cursor_and_nothing_else() {
        let cursor = Cursor::after(Utc::now(), uuid::Uuid::now_v7());
        let page = parse_page(&pairs(&[("limit", "5"), ("cursor", &cursor.encode())]));
        assert_eq!(
            page,
            Ok(Page {
                limit: 5,
                cursor: Some(cursor)
            })
        );
        assert_eq!(parse_page(&[]).map(|p| p.limit), Ok(DEFAULT_LIMIT));
        for (items, field) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "5"), ("limit", "6")], "limit"),
            (vec![("cursor", "garbage")], "cursor"),
            (vec![("status", "shipped")], "status"),
            (vec![("store", "bol-nl")], "store"),
        ] {
            let err = parse_page(&pairs(&items)).expect_err("refused");
            assert_eq!(err.field, field, "{items:?}: {err:?}");
        }
    }

    #[test]
    fn every_described_parameter_is_taken_and_no_other() {
        for param in Param::ALL {
            let doc = param.doc();
            assert_eq!(doc.name, param.name());
            assert!(!doc.description.is_empty(), "{param:?}");
            if let Err(e) = parse(&pairs(&[(param.name(), "x")])) {
                assert!(
                    !e.reason.starts_with("unknown parameter"),
                    "{param:?}: {}",
                    e.reason
                );
            }
        }
        assert!(
            bad(&[("sort", "x")])
                .reason
                .starts_with("unknown parameter")
        );
    }

    #[test]
    fn nothing_given_lists_everything_fifty_at_a_time() {
        let query = parse(&[]).expect("parses");
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert!(query.stores.is_empty() && query.statuses.is_empty() && !query.count);
    }

    #[test]
    fn repeatable_filters_take_repeats_and_comma_lists() {
        let query = parse(&pairs(&[
            ("status", "processing,shipped"),
            ("status", "completed"),
            ("status", "shipped"),
            ("store", "shop-de"),
            ("channel", "marketplace"),
            ("limit", "200"),
            ("count", "true"),
            ("placed_from", "2026-03-14T00:00:00+01:00"),
        ]))
        .expect("parses");
        assert_eq!(
            query.statuses,
            vec![
                OrderStatus::Processing,
                OrderStatus::Shipped,
                OrderStatus::Completed
            ]
        );
        assert_eq!(query.stores, vec!["shop-de".to_owned()]);
        assert_eq!(query.channels, vec![Channel::Marketplace]);
        assert_eq!(query.limit, 200);
        assert!(query.count);
        assert_eq!(
            query.placed_from.map(|t| t.to_rfc3339()),
            Some("2026-03-13T23:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn a_total_is_exact_up_to_the_limit_and_at_least_the_limit_beyond() {
        assert_eq!(Total::of(0), Total::Exact(0));
        assert_eq!(Total::of(COUNT_LIMIT), Total::Exact(COUNT_LIMIT));
        let beyond = Total::of(COUNT_LIMIT + 1);
        assert_eq!(beyond, Total::AtLeast(COUNT_LIMIT));
        assert_eq!((beyond.value(), beyond.is_exact()), (COUNT_LIMIT, false));
        assert!(Total::of(42).is_exact());
    }

    #[test]
    fn free_text_is_a_pattern_with_wildcards_escaped() {
        let query = parse(&pairs(&[("q", " 50%_off ")])).expect("parses");
        assert_eq!(query.q_pattern.as_deref(), Some("%50\\%\\_off%"));
    }

    #[test]
    fn the_index_looks_for_an_e_mail_up_to_its_at_sign() {
        assert_eq!(index_probe("anna.de.jong@example.nl"), "anna.de.jong@");
        assert_eq!(index_probe("jong@example"), "jong@");
        assert_eq!(index_probe("Müller"), "Müller", "no @: all of it");
        assert_eq!(
            index_probe("a.b@example.nl"),
            "a.b@example.nl",
            "too little before the @"
        );
        assert_eq!(index_probe("@example.nl"), "@example.nl");
        let query = parse(&pairs(&[("q", "ann_a@example.nl")])).expect("parses");
        assert_eq!(query.q_index_pattern.as_deref(), Some("%ann\\_a@%"));
        assert_eq!(query.q_pattern.as_deref(), Some("%ann\\_a@example.nl%"));
    }

    #[test]
    fn a_cursor_is_taken_back() {
        let cursor = Cursor::after(Utc::now(), Uuid::now_v7());
        let query = parse(&pairs(&[("cursor", &cursor.encode())])).expect("parses");
        assert_eq!(query.cursor, Some(cursor));
    }

    #[test]
    fn bad_input_names_the_parameter() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("status", "lost")], "status"),
            (&[("status", "shipped,")], "status"),
            (&[("channel", "web")], "channel"),
            (&[("store", "shop de")], "store"),
            (&[("placed_from", "yesterday")], "placed_from"),
            (&[("placed_to", "2026-13-01T00:00:00Z")], "placed_to"),
            (
                &[
                    ("placed_from", "2026-03-14T00:00:00Z"),
                    ("placed_to", "2026-03-13T00:00:00Z"),
                ],
                "placed_to",
            ),
            (&[("limit", "0")], "limit"),
            (&[("limit", "1000")], "limit"),
            (&[("limit", "ten")], "limit"),
            (&[("limit", "5"), ("limit", "6")], "limit"),
            (&[("cursor", "garbage")], "cursor"),
            (&[("count", "yes")], "count"),
            (&[("q", "  ")], "q"),
            (&[("q", "anna\u{1f}jong")], "q"),
            (&[("q", "anna\tjong")], "q"),
            (&[("sort", "placed_at")], "sort"),
        ];
        for (items, field) in cases {
            let err = bad(items);
            assert_eq!(err.field, *field, "{items:?}: {}", err.reason);
            assert!(!err.reason.is_empty());
        }
        assert!(bad(&[("status", "lost")]).reason.contains("processing"));
    }
}
