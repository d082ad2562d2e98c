//! Bulk actions (`POST /api/v1/admin/orders/bulk`): one action on every order of a
//! selection, as a job that sends one command per order.
//!
//! What is decided here, pure:
//! - the **body**: the action and its parameters (exactly the single action's body, parsed
//!   by the same type and checked by building its message, so a bulk job never sends what
//!   the single action would refuse), and the selection: the list's filter (the list's own
//!   parser, [`filter::parse_object`]) or up to [`MAX_IDS`] order ids, never both;
//! - **which orders are skipped**, each with its reason ([`Skip`]): an order the token does
//!   not see (or that does not exist: the same answer, as for a single order), and an order
//!   whose state makes the action meaningless. Only a terminal status (`cancelled`,
//!   `completed`) counts as such: it never changes, so the read model's lag cannot make the
//!   skip wrong. Everything else is sent, and the owner of the order refuses what its state
//!   forbids (a dispatched order's cancellation), with the reason, as for a single action.
//!
//! Which actions can be bulk: cancel (the whole order), hold, release, an internal note and
//! resending a notification. Refunds and exception resolutions are about one order's lines
//! or one exception, so they stay single actions.

use orderly_contracts::ContractError;
use orderly_contracts::types::OrderStatus;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{
    self, Action, ActionBody, CancelBody, HoldBody, NoteBody, ReleaseBody, Request, ResendBody,
    Target,
};
use super::filter::{self, ListQuery};
use super::query::{BadParameter, Parameter, limit, once, page_size, recognise};

/// The most ids one job may name (a filter selects more).
pub(crate) const MAX_IDS: usize = 1_000;

/// The most orders one job may hold: a larger selection is refused (narrow the filter, or
/// split it by `placed_from`/`placed_to`), so creating a job stays a request of seconds.
pub(crate) const MAX_ORDERS: usize = 100_000;

/// An action that can be bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BulkAction {
    /// Cancel each whole order (`params`: a `CancelRequest` without `lines`).
    Cancel,
    /// Put each order on hold (`params`: a `HoldRequest`).
    Hold,
    /// Release each order's hold (`params`: a `ReleaseRequest`).
    Release,
    /// Add the same internal note to each order (`params`: a `NoteRequest`).
    Note,
    /// Send each order's customer notification again (`params`: a `ResendRequest`).
    ResendNotification,
}

impl BulkAction {
    /// The single action it is, once per order.
    pub(crate) const fn action(self) -> Action {
        match self {
            Self::Cancel => Action::Cancel,
            Self::Hold => Action::Hold,
            Self::Release => Action::Release,
            Self::Note => Action::Note,
            Self::ResendNotification => Action::ResendNotification,
        }
    }

    /// From its stored name (`Action::as_str`).
    pub(crate) fn from_stored(name: &str) -> Option<Self> {
        [
            Self::Cancel,
            Self::Hold,
            Self::Release,
            Self::Note,
            Self::ResendNotification,
        ]
        .into_iter()
        .find(|a| a.action().as_str() == name)
    }

    /// Its parameters parsed as the single action's body (`field` names are the body's).
    pub(crate) fn request(self, params: &serde_json::Value) -> Result<Request, ContractError> {
        fn parsed<B: ActionBody>(params: &serde_json::Value) -> Result<Request, ContractError> {
            let bytes = serde_json::to_vec(params)
                .map_err(|e| ContractError::new("params", e.to_string()))?;
            Ok(command::parse_body::<B>(&bytes)?.into_request(Uuid::nil()))
        }
        let request = match self {
            Self::Cancel => parsed::<CancelBody>(params)?,
            Self::Hold => parsed::<HoldBody>(params)?,
            Self::Release => parsed::<ReleaseBody>(params)?,
            Self::Note => parsed::<NoteBody>(params)?,
            Self::ResendNotification => parsed::<ResendBody>(params)?,
        };
        if let Request::Cancel(body) = &request
            && body.has_lines()
        {
            return Err(ContractError::new(
                "lines",
                "a bulk cancellation cancels whole orders: lines are one order's, leave them out",
            ));
        }
        Ok(request)
    }

    /// Whether the action means anything for an order in `status` (`None`: no status event
    /// yet). Only terminal statuses are skipped (see the module's doc).
    pub(crate) fn skip_for(self, status: Option<OrderStatus>) -> Option<String> {
        let terminal = status.is_some_and(OrderStatus::is_terminal);
        match self {
            Self::Cancel | Self::Hold | Self::Release if terminal => {
                let status = status.map(|s| s.as_str()).unwrap_or_default();
                Some(format!(
                    "the order is {status}: nothing is left to {}",
                    self.verb()
                ))
            }
            _ => None,
        }
    }

    const fn verb(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Note => "note",
            Self::ResendNotification => "resend",
        }
    }
}

/// `POST /api/v1/admin/orders/bulk`: the body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BulkRequest")]
pub(crate) struct BulkBody {
    /// What to do to each order.
    pub(crate) action: BulkAction,
    /// The single action's body, the same for every order (`{"reason": "…"}` for a
    /// cancellation or a hold).
    #[serde(default = "empty_object")]
    #[schemars(schema_with = "params_schema")]
    pub(crate) params: serde_json::Value,
    /// Every order the list shows for these filters (in the stores the token sees).
    #[serde(default)]
    #[schemars(schema_with = "optional_filter")]
    pub(crate) filter: Option<serde_json::Map<String, serde_json::Value>>,
    /// These orders (at most 1,000; duplicates count once). Give `filter` or `order_ids`.
    #[serde(default)]
    pub(crate) order_ids: Option<Vec<Uuid>>,
    /// `true`: create the job with what would be sent and skipped, and send nothing.
    #[serde(default)]
    pub(crate) dry_run: bool,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn params_schema(generator: &mut SchemaGenerator) -> Schema {
    let bodies = [
        generator.subschema_for::<CancelBody>(),
        generator.subschema_for::<HoldBody>(),
        generator.subschema_for::<ReleaseBody>(),
        generator.subschema_for::<NoteBody>(),
        generator.subschema_for::<ResendBody>(),
    ];
    json_schema!({
        "description": "The body the single action takes, for `action`: cancel a \
            `CancelRequest` (without `lines`), hold a `HoldRequest`, release a \
            `ReleaseRequest`, note a `NoteRequest`, resend_notification a `ResendRequest`.",
        "anyOf": bodies,
    })
}

fn optional_filter(generator: &mut SchemaGenerator) -> Schema {
    filter::filter_schema(generator)
}

/// Which orders a job is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    /// The list's orders for this filter.
    Filter(ListQuery),
    /// These orders, in this order, each once.
    Ids(Vec<Uuid>),
}

/// A bulk request, parsed and checked.
#[derive(Debug, Clone)]
pub(crate) struct Bulk {
    pub(crate) action: BulkAction,
    /// The parameters as given (stored with the job, parsed again per batch).
    pub(crate) params: serde_json::Value,
    pub(crate) selection: Selection,
    /// The selection as given, for the job's record.
    pub(crate) selection_json: serde_json::Value,
    pub(crate) dry_run: bool,
}

/// Parses and checks a bulk request's body; a refusal names the body's field
/// (`params.reason`, `filter.status`, `order_ids`).
pub(crate) fn parse(bytes: &[u8]) -> Result<Bulk, ContractError> {
    let body: BulkBody = command::parse_body(bytes)?;
    let request = body
        .action
        .request(&body.params)
        .map_err(|e| prefixed("params", e))?;
    // The message each order will get, built once for a stand-in order: a parameter its
    // contract refuses is refused now, naming the field, not dead-lettered per order.
    command::message(
        &request,
        Target {
            order_id: Uuid::nil(),
            store_id: "bulk-check",
        },
        Uuid::nil(),
        command::operator("bulk@check", Uuid::nil()),
        None,
    )
    .map_err(|e| prefixed("params", e))?;
    let (selection, selection_json) = match (body.filter, body.order_ids) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ContractError::new(
                "body",
                "give exactly one of `filter` (the list's filters) and `order_ids`",
            ));
        }
        (Some(object), None) => {
            let query = filter::parse_object(&object)
                .map_err(|e| ContractError::new(format!("filter.{}", e.field), e.reason))?;
            (
                Selection::Filter(query),
                serde_json::json!({ "filter": object }),
            )
        }
        (None, Some(ids)) => {
            if ids.is_empty() {
                return Err(ContractError::new(
                    "order_ids",
                    "empty: name at least one order",
                ));
            }
            if ids.len() > MAX_IDS {
                return Err(ContractError::new(
                    "order_ids",
                    format!(
                        "{} ids: at most {MAX_IDS} (select more with a filter)",
                        ids.len()
                    ),
                ));
            }
            let mut unique = Vec::with_capacity(ids.len());
            for id in ids {
                if !unique.contains(&id) {
                    unique.push(id);
                }
            }
            let json = serde_json::json!({ "order_ids": unique });
            (Selection::Ids(unique), json)
        }
    };
    Ok(Bulk {
        action: body.action,
        params: body.params,
        selection,
        selection_json,
        dry_run: body.dry_run,
    })
}

fn prefixed(prefix: &str, e: ContractError) -> ContractError {
    if e.field == "body" || e.field.is_empty() {
        ContractError::new(prefix, e.reason)
    } else {
        ContractError::new(format!("{prefix}.{}", e.field), e.reason)
    }
}

/// Why an item of a job is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// No such order in the stores the token sees.
    NotVisible,
    /// The order's state makes the action meaningless (why, in words).
    NotApplicable(String),
}

impl Skip {
    /// The stored reason.
    pub(crate) const fn reason(&self) -> &'static str {
        match self {
            Self::NotVisible => "not_visible",
            Self::NotApplicable(_) => "not_applicable",
        }
    }

    /// In words.
    pub(crate) fn detail(&self) -> String {
        match self {
            Self::NotVisible => "no such order in the stores this token sees".to_owned(),
            Self::NotApplicable(why) => why.clone(),
        }
    }
}

/// An order a selection found, as the read model has it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    pub(crate) status: Option<OrderStatus>,
}

/// One item of a job, decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: Option<String>,
    pub(crate) skip: Option<Skip>,
}

/// The items of a job of `action` on `ids` (in their order), given the orders of those ids
/// the read model has in the stores the caller sees (`visible`).
pub(crate) fn items_for_ids(action: BulkAction, ids: &[Uuid], visible: &[Found]) -> Vec<Item> {
    ids.iter()
        .map(|id| match visible.iter().find(|f| f.order_id == *id) {
            Some(found) => item(action, found),
            None => Item {
                order_id: *id,
                store_id: None,
                skip: Some(Skip::NotVisible),
            },
        })
        .collect()
}

/// The item of a found order.
pub(crate) fn item(action: BulkAction, found: &Found) -> Item {
    Item {
        order_id: found.order_id,
        store_id: Some(found.store_id.clone()),
        skip: action.skip_for(found.status).map(Skip::NotApplicable),
    }
}

/// What a job says about a filter's stores the token does not see: their orders are not
/// in the job (the list does not show them either).
pub(crate) fn unseen_stores_note(asked: &[String], seen: Option<&[String]>) -> Option<String> {
    let seen = seen?;
    let unseen: Vec<&str> = asked
        .iter()
        .filter(|s| !seen.contains(s))
        .map(String::as_str)
        .collect();
    (!unseen.is_empty()).then(|| {
        format!(
            "not among this token's stores, so none of their orders are in the job: {}",
            unseen.join(", ")
        )
    })
}

/// The outcomes a job's item can have, as `GET /api/v1/admin/jobs/{id}/items?outcome=`
/// takes them.
pub(crate) const OUTCOMES: [&str; 8] = [
    "pending",
    "would_send",
    "skipped",
    "awaiting_answer",
    "applied",
    "partially_applied",
    "refused",
    "duplicate",
];

/// The most items one page may have.
pub(crate) const MAX_ITEMS_LIMIT: u16 = 500;
/// Items per page when the caller does not say.
pub(crate) const DEFAULT_ITEMS_LIMIT: u16 = 100;

/// A page of a job's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemsQuery {
    /// Only items of this outcome (one of [`OUTCOMES`]).
    pub(crate) outcome: Option<&'static str>,
    /// Items after this position (the previous page's `next_after`).
    pub(crate) after: i32,
    pub(crate) limit: i64,
}

/// A parameter of a job's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemsParam {
    Outcome,
    After,
    Limit,
}

impl ItemsParam {
    /// Every parameter, in the order the document lists them.
    pub(crate) const ALL: [ItemsParam; 3] = [Self::Outcome, Self::After, Self::Limit];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Outcome => "outcome",
            Self::After => "after",
            Self::Limit => "limit",
        }
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::Outcome => (
                "Only items of this outcome: `pending`, `would_send` (a dry run), `skipped`, \
                 `awaiting_answer`, `applied`, `partially_applied`, `refused`, `duplicate`.",
                outcome_schema,
            ),
            Self::After => (
                "Only items after this position: the `next_after` of the previous page.",
                position_schema,
            ),
            Self::Limit => (
                "Items per page.",
                page_size::<MAX_ITEMS_LIMIT, DEFAULT_ITEMS_LIMIT>,
            ),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

fn outcome_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": OUTCOMES })
}

fn position_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 0 })
}

/// Parses the items' query string.
pub(crate) fn parse_items(pairs: &[(String, String)]) -> Result<ItemsQuery, BadParameter> {
    let mut q = ItemsQuery {
        outcome: None,
        after: 0,
        limit: i64::from(DEFAULT_ITEMS_LIMIT),
    };
    let given = recognise(
        pairs,
        &ItemsParam::ALL,
        ItemsParam::name,
        once,
        "a job's items take",
    )?;
    for (param, name, value) in given {
        match param {
            ItemsParam::Outcome => {
                q.outcome = Some(OUTCOMES.iter().copied().find(|o| *o == value).ok_or_else(
                    || BadParameter::new(name, format!("`{value}` is not an outcome")),
                )?);
            }
            ItemsParam::After => {
                q.after = value
                    .parse()
                    .ok()
                    .filter(|n: &i32| *n >= 0)
                    .ok_or_else(|| {
                        BadParameter::new(name, format!("`{value}` is not a position"))
                    })?;
            }
            ItemsParam::Limit => q.limit = i64::from(limit::<MAX_ITEMS_LIMIT>(name, value)?),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_bulk_cancellation_by_filter_is_parsed_by_the_lists_own_rules() {
        let bulk = parse(
            br#"{"action":"cancel","params":{"reason":"fraud wave"},
                 "filter":{"status":["processing","on_hold"],"store":["shop-de"]},"dry_run":true}"#,
        )
        .expect("parses");
        assert_eq!(bulk.action, BulkAction::Cancel);
        assert!(bulk.dry_run);
        let Selection::Filter(query) = bulk.selection else {
            panic!("a filter");
        };
        assert_eq!(query.stores, ["shop-de"]);
        assert_eq!(query.statuses.len(), 2);
        assert_eq!(
            bulk.selection_json["filter"]["store"],
            serde_json::json!(["shop-de"])
        );
    }

    #[test]
    fn refusals_name_the_field_of_the_body() {
        let cases: [(&[u8], &str); 9] = [
            (br#"{"action":"cancel","params":{},"order_ids":["00000000-0000-0000-0000-000000000001"]}"#, "params.reason"),
            (br#"{"action":"cancel","params":{"reason":"  "},"order_ids":["00000000-0000-0000-0000-000000000001"]}"#, "params.reason"),
            (br#"{"action":"cancel","params":{"reason":"x","lines":[]},"order_ids":["00000000-0000-0000-0000-000000000001"]}"#, "params.lines"),
            (br#"{"action":"refund","params":{"reason":"x"},"order_ids":[]}"#, "action"),
            (br#"{"action":"hold","params":{"reason":"x"}}"#, "body"),
            (br#"{"action":"hold","params":{"reason":"x"},"filter":{},"order_ids":["00000000-0000-0000-0000-000000000001"]}"#, "body"),
            (br#"{"action":"hold","params":{"reason":"x"},"filter":{"status":["lost"]}}"#, "filter.status"),
            (br#"{"action":"hold","params":{"reason":"x"},"filter":{"limit":"5"}}"#, "filter.limit"),
            (br#"{"action":"hold","params":{"reason":"x"},"order_ids":[]}"#, "order_ids"),
        ];
        for (body, field) in cases {
            let err = parse(body).expect_err(std::str::from_utf8(body).unwrap_or_default());
            assert_eq!(err.field, field, "{err:?}");
        }
        let too_many: Vec<String> = (0..=MAX_IDS as u128)
            .map(|n| format!("\"{}\"", id(n)))
            .collect();
        let body = format!(
            r#"{{"action":"note","params":{{"text":"x"}},"order_ids":[{}]}}"#,
            too_many.join(",")
        );
        let err = parse(body.as_bytes()).expect_err("too many");
        assert_eq!(err.field, "order_ids");
    }

    #[test]
    fn duplicate_ids_count_once_in_their_first_place() {
        let body = format!(
            r#"{{"action":"note","params":{{"text":"checked"}},"order_ids":["{}","{}","{}"]}}"#,
            id(2),
            id(1),
            id(2)
        );
        let bulk = parse(body.as_bytes()).expect("parses");
        assert_eq!(bulk.selection, Selection::Ids(vec![id(2), id(1)]));
    }

    #[test]
    fn only_terminal_orders_are_skipped_as_not_applicable() {
        for action in [BulkAction::Cancel, BulkAction::Hold, BulkAction::Release] {
            assert!(action.skip_for(Some(OrderStatus::Cancelled)).is_some());
            assert!(action.skip_for(Some(OrderStatus::Completed)).is_some());
            // A shipped order's cancellation is the orders worker's to refuse, with its
            // reason: the read model may lag, a terminal status never changes.
            assert_eq!(action.skip_for(Some(OrderStatus::Shipped)), None);
            assert_eq!(action.skip_for(None), None);
        }
        assert_eq!(
            BulkAction::Note.skip_for(Some(OrderStatus::Completed)),
            None
        );
    }

    #[test]
    fn ids_the_token_does_not_see_are_skipped_like_missing_ones() {
        let visible = [
            Found {
                order_id: id(1),
                store_id: "shop-de".into(),
                status: Some(OrderStatus::Processing),
            },
            Found {
                order_id: id(3),
                store_id: "shop-de".into(),
                status: Some(OrderStatus::Cancelled),
            },
        ];
        let items = items_for_ids(BulkAction::Cancel, &[id(1), id(2), id(3)], &visible);
        assert_eq!(items[0].skip, None);
        assert_eq!(items[1].skip, Some(Skip::NotVisible));
        assert_eq!(items[1].store_id, None);
        assert_eq!(
            items[2].skip.as_ref().map(Skip::reason),
            Some("not_applicable")
        );
    }

    #[test]
    fn a_filter_naming_stores_the_token_does_not_see_says_so() {
        let asked = vec!["shop-de".to_owned(), "bol-nl".to_owned()];
        let seen = vec!["shop-de".to_owned()];
        let note = unseen_stores_note(&asked, Some(&seen)).expect("a note");
        assert!(
            note.contains("bol-nl") && !note.contains("shop-de"),
            "{note}"
        );
        assert_eq!(unseen_stores_note(&asked, None), None, "every store seen");
    }

    #[test]
    fn a_jobs_items_are_paged_by_position_and_filtered_by_outcome() {
        use crate::domain::query::pairs;
        let q = parse_items(&pairs(&[("outcome", "refused"), ("after", "100")])).expect("ok");
        assert_eq!(q.outcome, Some("refused"));
        assert_eq!(q.after, 100);
        assert_eq!(q.limit, i64::from(DEFAULT_ITEMS_LIMIT));
        for (bad, field) in [
            (("outcome", "sent"), "outcome"),
            (("outcome", "lost"), "outcome"),
            (("after", "-1"), "after"),
            (("limit", "501"), "limit"),
            (("page", "2"), "page"),
        ] {
            let err = parse_items(&pairs(&[bad])).expect_err("refused");
            assert_eq!(err.field, field);
        }
    }
}
