//! Order item exceptions: whether a resolution may be applied to an exception in its current
//! state, and which open exceptions a replacing revision keeps, supersedes or raises.

use std::collections::BTreeSet;

use orderly_contracts::messages::{ExceptionResolution, ItemProblem};
use orderly_contracts::types::{Gtin, Sku};
use uuid::Uuid;

use super::*;

/// Where an order item exception stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExceptionStatus {
    /// Waiting for an operator.
    Open,
    /// An operator (or a cancellation) resolved it.
    Resolved,
    /// A newer revision of the order replaced the line or matched it.
    Superseded,
}

impl ExceptionStatus {
    /// Parses the stored form.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            "superseded" => Some(Self::Superseded),
            _ => None,
        }
    }
}

/// What to do with an `order.exception_resolved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolutionCheck {
    /// The exception is open: apply the resolution.
    Apply,
    /// It was already closed exactly this way: nothing to do (a re-sent resolution).
    AlreadyApplied,
    /// It was closed another way: refuse, with the reason.
    Refuse(String),
}

/// Checks a resolution against the exception's state.
pub(crate) fn check_resolution(
    status: ExceptionStatus,
    recorded: Option<ExceptionResolution>,
    recorded_sku: Option<&Sku>,
    requested: ExceptionResolution,
    requested_sku: Option<&Sku>,
) -> ResolutionCheck {
    match status {
        ExceptionStatus::Open => ResolutionCheck::Apply,
        ExceptionStatus::Resolved
            if recorded == Some(requested) && recorded_sku == requested_sku =>
        {
            ResolutionCheck::AlreadyApplied
        }
        ExceptionStatus::Resolved => ResolutionCheck::Refuse(format!(
            "the exception was already resolved as {}{}",
            recorded.map_or("(unknown)", |r| r.as_str()),
            recorded_sku.map(|s| format!(" {s}")).unwrap_or_default()
        )),
        ExceptionStatus::Superseded => ResolutionCheck::Refuse(
            "the exception was superseded by a newer revision of the order; resolve the current one"
                .to_owned(),
        ),
    }
}

/// An open exception as the re-push reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenException {
    /// Its id.
    pub(crate) exception_id: Uuid,
    /// The line.
    pub(crate) line_id: String,
    /// The problem.
    pub(crate) problem: ItemProblem,
    /// The SKU involved.
    pub(crate) sku: Option<Sku>,
    /// The GTIN involved.
    pub(crate) gtin: Option<Gtin>,
}

/// What to do with exceptions when a new revision replaces an on-hold order's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExceptionReconciliation {
    /// Open exceptions that no longer apply (the line matched, changed or went away).
    pub(crate) supersede: Vec<Uuid>,
    /// Indexes (into the unmatched list given) of lines that need a new exception.
    pub(crate) raise: Vec<usize>,
}

/// Keeps an open exception when the new revision has the same problem on the same line with
/// the same identifiers (so an operator working on it is not pulled the rug from under),
/// supersedes the others and raises exceptions for newly unmatched lines.
pub(crate) fn reconcile_exceptions(
    open: &[OpenException],
    unmatched: &[(Line, ItemProblem, Option<Sku>)],
) -> ExceptionReconciliation {
    let mut out = ExceptionReconciliation::default();
    let mut kept = BTreeSet::new();
    for (i, (line, problem, sku)) in unmatched.iter().enumerate() {
        let same = open.iter().find(|e| {
            e.line_id == line.line_id
                && e.problem == *problem
                && e.sku == *sku
                && e.gtin == line.gtin
        });
        match same {
            Some(e) => {
                kept.insert(e.exception_id);
            }
            None => out.raise.push(i),
        }
    }
    out.supersede = open
        .iter()
        .map(|e| e.exception_id)
        .filter(|id| !kept.contains(id))
        .collect();
    out
}
