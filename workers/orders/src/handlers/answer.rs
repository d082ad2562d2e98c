//! `order.request_answered`: the outcome of a request about an order, sent in the
//! transaction that decided it, caused by the request (its `causation_id`), so whoever sent
//! the request — the admin API's command resources — learns what became of it.

use orderly_contracts::messages::{OrderRequestAnswered, RequestOutcome};
use orderly_contracts::types::StoreId;
use orderly_runtime::{HandlerContext, HandlerError};
use uuid::Uuid;

use crate::steps::{clip, emit};

/// A request's outcome, as decided.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) outcome: RequestOutcome,
    /// One sentence, as on the timeline.
    pub(super) detail: String,
    /// What was not done, and why.
    pub(super) refused: Vec<String>,
}

impl Answer {
    /// From what was done (`something`) and what was refused: applied, in part, or refused
    /// (a refusal always says why).
    pub(super) fn of(something: bool, detail: String, mut refused: Vec<String>) -> Self {
        let outcome = match (something, refused.is_empty()) {
            (true, true) => RequestOutcome::Applied,
            (true, false) => RequestOutcome::PartiallyApplied,
            (false, _) => RequestOutcome::Refused,
        };
        if outcome == RequestOutcome::Refused && refused.is_empty() {
            refused.push("nothing to do".to_owned());
        }
        Self {
            outcome,
            detail,
            refused,
        }
    }

    /// Nothing new: the request was answered before.
    pub(super) fn duplicate(detail: String) -> Self {
        Self {
            outcome: RequestOutcome::Duplicate,
            detail,
            refused: Vec::new(),
        }
    }

    /// Refused, for `why`.
    pub(super) fn refused(detail: String, why: String) -> Self {
        Self {
            outcome: RequestOutcome::Refused,
            detail,
            refused: vec![why],
        }
    }
}

/// What the answer is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    /// The request's message type.
    pub(super) kind: &'static str,
    /// Its own id, where it has one.
    pub(super) request_id: Option<Uuid>,
    pub(super) order_id: Uuid,
    pub(super) store_id: &'a StoreId,
}

/// Sends the answer to `request`, caused by the message being handled.
pub(super) fn send(
    cx: &mut HandlerContext<'_>,
    request: Request<'_>,
    answer: Answer,
) -> Result<(), HandlerError> {
    emit(
        cx,
        request.order_id,
        OrderRequestAnswered {
            request_type: request.kind.to_owned(),
            request_id: request.request_id,
            order_id: request.order_id,
            store_id: request.store_id.clone(),
            outcome: answer.outcome,
            detail: clip(&answer.detail, 2000),
            refused: answer.refused.iter().map(|r| clip(r, 1000)).collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_follows_what_was_done_and_refused() {
        let a = Answer::of(true, "x".into(), vec![]);
        assert_eq!(a.outcome, RequestOutcome::Applied);
        let a = Answer::of(true, "x".into(), vec!["line 1 shipped".into()]);
        assert_eq!(a.outcome, RequestOutcome::PartiallyApplied);
        let a = Answer::of(false, "x".into(), vec!["line 1 shipped".into()]);
        assert_eq!(a.outcome, RequestOutcome::Refused);
        let a = Answer::of(false, "x".into(), vec![]);
        assert_eq!(a.outcome, RequestOutcome::Refused);
        assert_eq!(
            a.refused,
            vec!["nothing to do".to_owned()],
            "a refusal says why"
        );
    }
}
