//! The audit log's query string (`GET /api/v1/admin/audit-log`): parsed into an
//! [`AuditQuery`] or refused naming the parameter, like the order list's.
//!
//! `order_id` (a UUID), `staff` (an e-mail, compared case-insensitively), `limit` (1 to
//! 200, default 50) and `before` (the `next_before` of the previous page). Each may be given
//! once; any other parameter is refused.

use schemars::{Schema, SchemaGenerator, json_schema};
use uuid::Uuid;

use super::query::{BadParameter, Parameter, limit, once, one, page_size, recognise};

/// The most entries one page may have.
pub(crate) const MAX_LIMIT: u16 = 200;
/// Entries per page when the caller does not say.
pub(crate) const DEFAULT_LIMIT: u16 = 50;

/// What the audit log is filtered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditQuery {
    pub(crate) order_id: Option<Uuid>,
    /// Lower case.
    pub(crate) staff_email: Option<String>,
    /// Only entries older than this one (the previous page's last `entry_id`).
    pub(crate) before: Option<i64>,
    pub(crate) limit: i64,
}

/// A parameter of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    OrderId,
    Staff,
    Before,
    Limit,
}

impl Param {
    /// Every parameter, in the order the document lists them.
    pub(crate) const ALL: [Param; 4] = [Param::OrderId, Param::Staff, Param::Before, Param::Limit];

    /// Its name in the query string.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::OrderId => "order_id",
            Self::Staff => "staff",
            Self::Before => "before",
            Self::Limit => "limit",
        }
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::OrderId => ("Only entries about this order.", one::<Uuid>),
            Self::Staff => (
                "Only entries of this staff member (their e-mail, any case).",
                email,
            ),
            Self::Before => (
                "Only entries older than this one: the `next_before` of the previous page.",
                entry_number,
            ),
            Self::Limit => ("Entries per page.", page_size::<MAX_LIMIT, DEFAULT_LIMIT>),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

fn email(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1 })
}

fn entry_number(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 1 })
}

/// Parses the query string's `(name, value)` pairs.
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<AuditQuery, BadParameter> {
    let mut q = AuditQuery {
        order_id: None,
        staff_email: None,
        before: None,
        limit: i64::from(DEFAULT_LIMIT),
    };
    let given = recognise(pairs, &Param::ALL, Param::name, once, "the audit log takes")?;
    for (param, name, value) in given {
        match param {
            Param::OrderId => {
                q.order_id =
                    Some(value.parse().map_err(|_| {
                        BadParameter::new(name, format!("`{value}` is not a UUID"))
                    })?);
            }
            Param::Staff => {
                let email = value.trim();
                if email.is_empty() {
                    return Err(BadParameter::new(
                        name,
                        "empty: leave it out to see everyone",
                    ));
                }
                q.staff_email = Some(email.to_lowercase());
            }
            Param::Before => {
                q.before = Some(value.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
                    BadParameter::new(name, format!("`{value}` is not an entry number"))
                })?);
            }
            Param::Limit => q.limit = i64::from(limit::<MAX_LIMIT>(name, value)?),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::pairs;

    #[test]
    fn the_filters_are_parsed() {
        let id = Uuid::now_v7();
        let q = parse(&pairs(&[
            ("order_id", &id.to_string()),
            ("staff", " Ada@Example.com "),
            ("before", "17"),
            ("limit", "5"),
        ]))
        .expect("parses");
        assert_eq!(
            q,
            AuditQuery {
                order_id: Some(id),
                staff_email: Some("ada@example.com".to_owned()),
                before: Some(17),
                limit: 5,
            }
        );
        assert_eq!(parse(&[]).map(|q| q.limit), Ok(50));
    }

    #[test]
    fn bad_input_names_the_parameter() {
        for (items, field) in [
            (vec![("order_id", "17")], "order_id"),
            (vec![("staff", " ")], "staff"),
            (vec![("before", "0")], "before"),
            (vec![("before", "last")], "before"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "201")], "limit"),
            (vec![("limit", "5"), ("limit", "6")], "limit"),
            (vec![("action", "orders.cancel")], "action"),
        ] {
            let e = parse(&pairs(&items)).expect_err("refused");
            assert_eq!(e.field, field, "{items:?}: {}", e.reason);
        }
    }

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
}
