//! What a setup does with a request: pure decisions, no I/O.
//!
//! A setup's **stage** is an index into its pinned template; its **status** follows from the
//! stage's kind (intake → `pending_intake`, then `intake_review` once submitted; work →
//! `in_progress`; client approval → `awaiting_client`; QA → `qa`), except `on_hold` (which
//! remembers the status to go back to), `completed` (past the last stage) and `cancelled`.
//! [`decide`] checks who asks, for what, in which state, and returns the [`Step`] to take
//! or the [`Refusal`] to record; [`cancel`] is the order's cancellation.

pub(crate) mod sla;

use orderly_contracts::messages::{
    FieldError, QaResult, SetupAction, SetupActionRequested, SetupRole, SetupStage, SetupStatus,
    SetupTemplate, StageKind,
};

pub(crate) use orderly_contracts::messages::check_intake;

/// A setup as the decisions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setup {
    /// Where it stands.
    pub(crate) status: SetupStatus,
    /// Its current stage (the last one once completed).
    pub(crate) stage_index: usize,
    /// The status to go back to when released (`on_hold` only).
    pub(crate) held_from: Option<SetupStatus>,
    /// How many times it went back.
    pub(crate) loops: u32,
    /// Intake submissions so far.
    pub(crate) submissions: u32,
}

impl Setup {
    /// A new setup at the template's first stage (`None` for a template without stages,
    /// which its contract does not allow).
    pub(crate) fn start(template: &SetupTemplate) -> Option<Self> {
        Some(Self {
            status: entry_status(template.stages.first()?),
            stage_index: 0,
            held_from: None,
            loops: 0,
            submissions: 0,
        })
    }
}

/// What the request records besides the move itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// An intake submission (the values as sent; `reason` for a correction).
    Intake,
    /// The client's decision at an approval stage.
    Approval {
        /// Approved (`true`) or changes requested.
        approved: bool,
    },
    /// QA results.
    Qa {
        /// Every item passed.
        passed: bool,
    },
}

/// The move a request makes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    /// The setup after it.
    pub(crate) after: Setup,
    /// What was done, for the history and the timeline.
    pub(crate) detail: String,
    /// What to keep besides (a submission, an approval, QA results).
    pub(crate) record: Option<Record>,
}

/// Why a request is refused; nothing about the setup changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// The request does not fit (who asks, the state, the stage named).
    Reason(String),
    /// An intake whose fields are wrong.
    Fields(Vec<FieldError>),
}

impl Refusal {
    /// One sentence for the answer and the audit.
    pub(crate) fn detail(&self) -> String {
        match self {
            Self::Reason(why) => why.clone(),
            Self::Fields(errors) => format!(
                "The intake form has {} error{}; nothing was stored",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Reason(why.into()))
}

/// The status a setup has on entering `stage`.
pub(crate) fn entry_status(stage: &SetupStage) -> SetupStatus {
    match stage.kind {
        StageKind::Intake => SetupStatus::PendingIntake,
        StageKind::Work => SetupStatus::InProgress,
        StageKind::ClientApproval => SetupStatus::AwaitingClient,
        StageKind::Qa => SetupStatus::Qa,
    }
}

/// Whether `role` is staff that moves setups (setup manager or order admin).
fn setup_staff(role: SetupRole) -> bool {
    matches!(role, SetupRole::SetupManager | SetupRole::OrderAdmin)
}

/// Whether `role` may complete a staff stage whose role is `stage_role` (an order admin may
/// complete any staff stage).
fn may_complete(role: SetupRole, stage_role: SetupRole) -> bool {
    role == stage_role || (role == SetupRole::OrderAdmin && stage_role != SetupRole::Client)
}

/// What `request` does to `setup` (following `template`).
pub(crate) fn decide(
    setup: &Setup,
    template: &SetupTemplate,
    request: &SetupActionRequested,
) -> Result<Step, Refusal> {
    let role = request.requested_by.role;
    let action = request.action;
    if setup.status.is_terminal() {
        return refuse(format!(
            "the setup is {}: nothing moves it any more",
            setup.status
        ));
    }
    let Some(stage) = template.stages.get(setup.stage_index) else {
        return refuse(format!(
            "the setup's stage {} is not in template version {}",
            setup.stage_index, template.version
        ));
    };
    let staff_only = |what: &str| -> Result<(), Refusal> {
        if setup_staff(role) {
            Ok(())
        } else {
            refuse(format!(
                "`{role}` may not {what}: only a setup manager or an order admin may"
            ))
        }
    };
    match action {
        SetupAction::Hold => {
            staff_only("put a setup on hold")?;
            if setup.status == SetupStatus::OnHold {
                return refuse("the setup is already on hold");
            }
            return Ok(Step {
                after: Setup {
                    status: SetupStatus::OnHold,
                    held_from: Some(setup.status),
                    ..setup.clone()
                },
                detail: format!(
                    "Put on hold at stage `{}`: {}",
                    stage.key,
                    request.note.as_deref().unwrap_or_default()
                ),
                record: None,
            });
        }
        SetupAction::Release => {
            staff_only("release a setup")?;
            let Some(back) = setup
                .held_from
                .filter(|_| setup.status == SetupStatus::OnHold)
            else {
                return refuse("the setup is not on hold");
            };
            return Ok(Step {
                after: Setup {
                    status: back,
                    held_from: None,
                    ..setup.clone()
                },
                detail: format!("Released; back to {back} at stage `{}`", stage.key),
                record: None,
            });
        }
        _ if setup.status == SetupStatus::OnHold => {
            return refuse("the setup is on hold: release it first");
        }
        _ => {}
    }
    match action {
        SetupAction::SubmitIntake => submit_intake(setup, stage, request),
        SetupAction::Advance => {
            staff_only("complete a stage")?;
            match setup.status {
                SetupStatus::IntakeReview => {}
                SetupStatus::InProgress if may_complete(role, stage.role) => {}
                SetupStatus::InProgress => {
                    return refuse(format!(
                        "stage `{}` is completed by `{}`, not `{role}`",
                        stage.key, stage.role
                    ));
                }
                SetupStatus::PendingIntake => {
                    return refuse("the client has not submitted the intake form yet");
                }
                SetupStatus::AwaitingClient => {
                    return refuse("waiting for the client: only the client approves");
                }
                SetupStatus::Qa => {
                    return refuse("QA is completed by recording the checklist's results");
                }
                other => return refuse(format!("a {other} setup cannot advance")),
            }
            Ok(next(
                setup,
                template,
                format!("Stage `{}` completed", stage.key),
                None,
            ))
        }
        SetupAction::Return => {
            staff_only("send a setup back")?;
            let to = request.to_stage.as_deref().unwrap_or_default();
            let Some((index, target)) = template.stage(to) else {
                return refuse(format!(
                    "template version {} has no stage `{to}`",
                    template.version
                ));
            };
            let resubmit = index == setup.stage_index
                && target.kind == StageKind::Intake
                && setup.status == SetupStatus::IntakeReview;
            if index >= setup.stage_index && !resubmit {
                return refuse(format!(
                    "`{to}` is not an earlier stage than `{}`",
                    stage.key
                ));
            }
            Ok(enter(
                setup,
                template,
                index,
                true,
                format!(
                    "Sent back from `{}` to `{to}`: {}",
                    stage.key,
                    request.note.as_deref().unwrap_or_default()
                ),
                None,
            ))
        }
        SetupAction::Approve | SetupAction::RequestChanges => {
            if role != SetupRole::Client {
                return refuse(format!(
                    "only the client approves or asks for changes, not `{role}`"
                ));
            }
            if setup.status != SetupStatus::AwaitingClient {
                return refuse(format!(
                    "nothing is waiting for the client's approval (the setup is {})",
                    setup.status
                ));
            }
            if action == SetupAction::Approve {
                return Ok(next(
                    setup,
                    template,
                    format!(
                        "Approved by the client at `{}`: {}",
                        stage.key,
                        request.approved.as_deref().unwrap_or_default()
                    ),
                    Some(Record::Approval { approved: true }),
                ));
            }
            loop_back(
                setup,
                template,
                stage,
                format!(
                    "The client asked for changes at `{}`: {}",
                    stage.key,
                    request.note.as_deref().unwrap_or_default()
                ),
                Record::Approval { approved: false },
            )
        }
        SetupAction::RecordQa => {
            if setup.status != SetupStatus::Qa {
                return refuse(format!("the setup is not in QA (it is {})", setup.status));
            }
            if !may_complete(role, stage.role) {
                return refuse(format!(
                    "QA stage `{}` is recorded by `{}`, not `{role}`",
                    stage.key, stage.role
                ));
            }
            let failed = check_results(&stage.checklist, &request.results)?;
            if failed.is_empty() {
                return Ok(next(
                    setup,
                    template,
                    format!(
                        "QA `{}` passed ({} checks)",
                        stage.key,
                        stage.checklist.len()
                    ),
                    Some(Record::Qa { passed: true }),
                ));
            }
            loop_back(
                setup,
                template,
                stage,
                format!("QA `{}` failed: {}", stage.key, failed.join("; ")),
                Record::Qa { passed: false },
            )
        }
        // Decided above.
        SetupAction::Hold | SetupAction::Release => refuse(format!("`{action}` was not handled")),
    }
}

fn submit_intake(
    setup: &Setup,
    stage: &SetupStage,
    request: &SetupActionRequested,
) -> Result<Step, Refusal> {
    if request.requested_by.role != SetupRole::Client {
        return refuse(format!(
            "only the client submits the intake form, not `{}`",
            request.requested_by.role
        ));
    }
    if stage.kind != StageKind::Intake {
        return refuse(format!(
            "the setup is past its intake (at stage `{}`)",
            stage.key
        ));
    }
    let correction = setup.status == SetupStatus::IntakeReview;
    if correction && request.note.is_none() {
        return refuse("the intake was submitted already: a correction says why (`note`)");
    }
    let errors = check_intake(&stage.fields, &request.values);
    if !errors.is_empty() {
        return Err(Refusal::Fields(errors));
    }
    Ok(Step {
        after: Setup {
            status: SetupStatus::IntakeReview,
            submissions: setup.submissions.saturating_add(1),
            ..setup.clone()
        },
        detail: if correction {
            format!(
                "Intake corrected ({} fields): {}",
                request.values.len(),
                request.note.as_deref().unwrap_or_default()
            )
        } else {
            format!("Intake submitted ({} fields)", request.values.len())
        },
        record: Some(Record::Intake),
    })
}

/// The checklist's failed items, or a refusal when the results do not cover the checklist
/// exactly (each item once, none unknown).
fn check_results(checklist: &[String], results: &[QaResult]) -> Result<Vec<String>, Refusal> {
    let mut problems = Vec::new();
    for item in checklist {
        match results.iter().filter(|r| &r.item == item).count() {
            0 => problems.push(format!("`{item}` has no result")),
            1 => {}
            _ => problems.push(format!("`{item}` has more than one result")),
        }
    }
    for r in results {
        if !checklist.contains(&r.item) {
            problems.push(format!("`{}` is not on the checklist", r.item));
        }
    }
    if !problems.is_empty() {
        return refuse(format!(
            "the QA results do not match the checklist: {}",
            problems.join("; ")
        ));
    }
    Ok(results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| match &r.note {
            Some(note) => format!("{} ({note})", r.item),
            None => r.item.clone(),
        })
        .collect())
}

/// The next stage, or completion after the last.
fn next(setup: &Setup, template: &SetupTemplate, detail: String, record: Option<Record>) -> Step {
    let index = setup.stage_index + 1;
    if index >= template.stages.len() {
        return Step {
            after: Setup {
                status: SetupStatus::Completed,
                ..setup.clone()
            },
            detail: format!("{detail}; setup completed"),
            record,
        };
    }
    enter(setup, template, index, false, detail, record)
}

/// Back to the stage's `loop_back_to`.
fn loop_back(
    setup: &Setup,
    template: &SetupTemplate,
    stage: &SetupStage,
    detail: String,
    record: Record,
) -> Result<Step, Refusal> {
    let to = stage.loop_back_to.as_deref().unwrap_or_default();
    let Some((index, _)) = template.stage(to) else {
        return refuse(format!(
            "stage `{}` of template version {} loops back to `{to}`, which it does not have",
            stage.key, template.version
        ));
    };
    Ok(enter(setup, template, index, true, detail, Some(record)))
}

/// Enters stage `index` (counting a loop when going back).
fn enter(
    setup: &Setup,
    template: &SetupTemplate,
    index: usize,
    back: bool,
    detail: String,
    record: Option<Record>,
) -> Step {
    let stage = &template.stages[index];
    Step {
        after: Setup {
            status: entry_status(stage),
            stage_index: index,
            held_from: None,
            loops: setup.loops + u32::from(back),
            submissions: setup.submissions,
        },
        detail: format!("{detail}; now at `{}`", stage.key),
        record,
    }
}

/// The order (or the setup's line) was cancelled: an open setup is cancelled, a finished
/// one stays as it is.
pub(crate) fn cancel(setup: &Setup, reason: &str) -> Option<Step> {
    if setup.status.is_terminal() {
        return None;
    }
    Some(Step {
        after: Setup {
            status: SetupStatus::Cancelled,
            held_from: None,
            ..setup.clone()
        },
        detail: format!("Cancelled with the order: {reason}"),
        record: None,
    })
}

#[cfg(test)]
mod tests;
