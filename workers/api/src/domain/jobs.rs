//! The list of bulk jobs (`GET /api/v1/admin/jobs`): its query string, parsed or refused
//! naming the parameter. Newest first; a page continues before the last job of the previous
//! one (job ids are UUIDv7, ordered by creation).

use schemars::{Schema, SchemaGenerator, json_schema};
use uuid::Uuid;

use super::query::{BadParameter, Parameter, limit, once, page_size, recognise};

/// A job's states.
pub(crate) const STATES: [&str; 3] = ["running", "completed", "cancelled"];
/// The most jobs a page holds.
pub(crate) const MAX_LIMIT: u16 = 200;
/// Jobs per page when the caller does not say.
pub(crate) const DEFAULT_LIMIT: u16 = 50;

/// A page of jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobsQuery {
    /// Only jobs in this state.
    pub(crate) state: Option<&'static str>,
    /// Only jobs created before this one (the previous page's `next_before`).
    pub(crate) before: Option<Uuid>,
    pub(crate) limit: i64,
}

/// A parameter of the job list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobsParam {
    State,
    Before,
    Limit,
}

impl JobsParam {
    /// Every parameter, in the order the document lists them.
    pub(crate) const ALL: [JobsParam; 3] = [Self::State, Self::Before, Self::Limit];

    const fn name(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Before => "before",
            Self::Limit => "limit",
        }
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::State => (
                "Only jobs in this state: `running`, `completed`, `cancelled`.",
                state_schema,
            ),
            Self::Before => (
                "Only jobs created before this one: the `next_before` of the previous page.",
                id_schema,
            ),
            Self::Limit => ("Jobs per page.", page_size::<MAX_LIMIT, DEFAULT_LIMIT>),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

fn state_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": STATES })
}

fn id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "uuid" })
}

/// Parses the job list's query string.
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<JobsQuery, BadParameter> {
    let mut q = JobsQuery {
        state: None,
        before: None,
        limit: i64::from(DEFAULT_LIMIT),
    };
    let given = recognise(
        pairs,
        &JobsParam::ALL,
        JobsParam::name,
        once,
        "the job list takes",
    )?;
    for (param, name, value) in given {
        match param {
            JobsParam::State => {
                q.state = Some(
                    STATES
                        .iter()
                        .copied()
                        .find(|s| *s == value)
                        .ok_or_else(|| {
                            BadParameter::new(
                                name,
                                format!("`{value}` is not running, completed or cancelled"),
                            )
                        })?,
                );
            }
            JobsParam::Before => {
                q.before = Some(value.parse().map_err(|_| {
                    BadParameter::new(name, format!("`{value}` is not a job id (a UUID)"))
                })?);
            }
            JobsParam::Limit => q.limit = i64::from(limit::<MAX_LIMIT>(name, value)?),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::pairs;

    #[test]
    fn the_list_is_parsed_and_bad_parameters_are_named() {
        let q = parse(&[]).expect("defaults");
        assert_eq!(q.limit, 50);
        assert_eq!((q.state, q.before), (None, None));
        let id = "0193a1b2-0000-7000-8000-000000000001";
        let q = parse(&pairs(&[
            ("state", "running"),
            ("before", id),
            ("limit", "5"),
        ]))
        .expect("parses");
        assert_eq!(q.state, Some("running"));
        assert_eq!(q.before.map(|u| u.to_string()).as_deref(), Some(id));
        assert_eq!(q.limit, 5);
        for (bad, field) in [
            (("state", "done"), "state"),
            (("before", "7"), "before"),
            (("limit", "0"), "limit"),
            (("limit", "201"), "limit"),
            (("sort", "x"), "sort"),
        ] {
            let err = parse(&pairs(&[bad])).expect_err("refused");
            assert_eq!(err.field, field, "{bad:?}");
        }
        let twice = parse(&pairs(&[("state", "running"), ("state", "cancelled")]));
        assert_eq!(twice.expect_err("twice").field, "state");
    }
}
