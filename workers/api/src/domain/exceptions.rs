//! The order-exceptions list's query string (`GET /api/v1/admin/order-exceptions`): the
//! open order item exceptions, oldest first, as an operator's work queue.
//!
//! `store` and `channel` may repeat or hold a comma list; `gtin` is one GTIN (any length,
//! compared as GTIN-14); `older_than` is an age (`30m`, `4h`, `2d`): only exceptions held at
//! least that long; `limit` is 1 to 200 (50); `cursor` is the previous page's
//! `next_cursor`. Any other parameter is refused.

use chrono::{DateTime, Duration, Utc};
use orderly_contracts::types::{Channel, Gtin, StoreId};

use super::cursor::Cursor;
use super::filter::{BadParameter, DEFAULT_LIMIT, MAX_LIMIT};

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
        match name.as_str() {
            "store" => {
                for item in items() {
                    let store = StoreId::parse(item).map_err(|e| bad(name, e.to_string()))?;
                    q.stores.push(store.as_str().to_owned());
                }
            }
            "channel" => {
                for item in items() {
                    q.channels.push(item.parse().map_err(
                        |e: orderly_contracts::types::InvalidValue| bad(name, e.to_string()),
                    )?);
                }
            }
            "gtin" => {
                let gtin = Gtin::parse(value.trim()).map_err(|e| bad(name, e.to_string()))?;
                q.gtin = Some(gtin.to_gtin14());
            }
            "older_than" => {
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
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!("`{value}` is not a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            "cursor" => q.cursor = Some(Cursor::decode(value).map_err(|e| bad(name, e))?),
            other => {
                return Err(bad(
                    other,
                    "unknown parameter (store, channel, gtin, older_than, limit, cursor)"
                        .to_owned(),
                ));
            }
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

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
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
