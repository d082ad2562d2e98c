//! What each message means for setups: decode it (validated), lock the setups it changes,
//! let the domain decide, write the result through the store, and emit — in the runtime's
//! transaction, so a change and its messages commit together or not at all.

use anyhow::anyhow;
use chrono::Utc;
use orderly_contracts::messages::{
    CancellationScope, FieldError, OrderAccepted, OrderCancelled, ProductUpserted, RequestOutcome,
    SetupActionRequested, SetupCompleted, SetupRequestAnswered, SetupStatus, SetupStatusChanged,
    SetupTemplate,
};
use orderly_runtime::{Handler, HandlerContext, HandlerError, Incoming};
use tracing::{debug, info};
use uuid::Uuid;

use crate::domain::sla::{self, Clock};
use crate::domain::{self, Record, Refusal, Setup, Step};
use crate::input::SetupsInput;
use crate::store::{self, Answer, HistoryEntry, StoredSetup};

/// The setups worker's handler. Stateless: everything lives in the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupsHandler;

impl Handler for SetupsHandler {
    type Input = SetupsInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        match msg.input::<SetupsInput>()? {
            SetupsInput::ProductUpserted(env) => product_upserted(&env.payload, cx).await,
            SetupsInput::Accepted(env) => order_accepted(&env.payload, cx).await,
            SetupsInput::Cancelled(env) => order_cancelled(&env.payload, cx).await,
            SetupsInput::ActionRequested(env) => action_requested(&env.payload, cx).await,
        }
    }
}

/// `catalog.product_upserted`: a service's template version is kept as published. The same
/// version with other stages is the catalog's mistake: refused (dead-lettered with the
/// reason) rather than silently changing what running setups follow.
async fn product_upserted(
    p: &ProductUpserted,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let Some(template) = &p.setup else {
        return Ok(());
    };
    match store::insert_template(cx.conn, &p.sku, template).await? {
        Ok(new) => {
            debug!(sku = %p.sku, version = template.version, new, "setup template");
            Ok(())
        }
        Err(()) => Err(HandlerError::permanent(format!(
            "setup template version {} of {} was published before with other stages; a \
             changed template needs a higher version (setups already running follow the \
             first one)",
            template.version, p.sku
        ))),
    }
}

/// `order.accepted`: one setup per line with a setup template version, at its first stage.
/// A template version not received yet is waited for (retried), since the catalog's message
/// may still be on its way.
async fn order_accepted(
    p: &OrderAccepted,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    if !p.lines.iter().any(|l| l.setup_template_version.is_some()) {
        return Ok(());
    }
    if store::order_cancelled(cx.conn, p.order_id).await? {
        info!(order = %p.order_id, "accepted after its cancellation: no setup started");
        return Ok(());
    }
    let now = Utc::now();
    for line in &p.lines {
        let Some(version) = line.setup_template_version else {
            continue;
        };
        let Some(template) = store::template(cx.conn, &line.sku, version).await? else {
            return Err(HandlerError::transient(anyhow!(
                "setup template version {version} of {} is not known (yet): the catalog's \
                 message may still be on its way",
                line.sku
            )));
        };
        let Some(state) = Setup::start(&template) else {
            return Err(HandlerError::permanent(format!(
                "setup template version {version} of {} has no stages",
                line.sku
            )));
        };
        let clock = Clock::start(state.status, now);
        let due_at = template
            .stages
            .first()
            .and_then(|stage| clock.due(stage.sla_business_hours));
        let setup = StoredSetup {
            setup_id: Uuid::now_v7(),
            order_id: p.order_id,
            line_id: line.line_id.clone(),
            store_id: p.store_id.clone(),
            sku: line.sku.clone(),
            quantity: line.quantity.get(),
            cancelled_units: 0,
            template_version: version,
            sequence: 1,
            state,
            clock,
            due_at,
            overdue_at: None,
        };
        if !store::insert_setup(cx.conn, &setup, now).await? {
            continue;
        }
        let stage = template.stages.first().map_or("", |s| s.key.as_str());
        let detail = format!("Setup started at stage `{stage}` (template version {version})");
        changed(cx, &template, &setup, None, None, &detail, now).await?;
    }
    Ok(())
}

/// `order.cancelled`: open setups of the order (or of the lines cancelled in full) are
/// cancelled with the reason; a completed setup stays completed. A whole cancellation is
/// remembered, so an `order.accepted` arriving after it starts nothing.
async fn order_cancelled(
    p: &OrderCancelled,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let now = Utc::now();
    let whole = p.scope == CancellationScope::Order;
    if whole {
        store::mark_order_cancelled(cx.conn, p.order_id, &p.reason, now).await?;
    }
    for mut setup in store::lock_setups_of_order(cx.conn, p.order_id).await? {
        let units = p
            .lines
            .iter()
            .filter(|l| l.line_id == setup.line_id)
            .map(|l| l.quantity.get())
            .sum::<u32>();
        if !whole && units == 0 {
            continue;
        }
        setup.cancelled_units = setup
            .cancelled_units
            .saturating_add(units)
            .min(setup.quantity);
        let in_full = whole || setup.cancelled_units >= setup.quantity;
        match domain::cancel(&setup.state, &p.reason).filter(|_| in_full) {
            Some(step) => {
                let template = pinned(cx, &setup).await?;
                apply(cx, &template, &mut setup, &step, None, now).await?;
            }
            None => store::update_setup(cx.conn, &setup, now).await?,
        }
    }
    Ok(())
}

/// `setup.action_requested`: decided by [`domain::decide`], applied or refused, recorded
/// either way and answered with `setup.request_answered`. A request id seen before is
/// answered as the first time, without acting again.
async fn action_requested(
    r: &SetupActionRequested,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    if let Some(answer) = store::answer_of(cx.conn, r.request_id).await? {
        return answer_request(cx, r, &answer);
    }
    let now = Utc::now();
    let answer = match store::lock_setup(cx.conn, r.setup_id).await? {
        None => refused(format!("there is no setup {}", r.setup_id)),
        Some(setup) if setup.order_id != r.order_id => refused(format!(
            "setup {} belongs to another order than {}",
            r.setup_id, r.order_id
        )),
        Some(mut setup) => {
            let template = pinned(cx, &setup).await?;
            match domain::decide(&setup.state, &template, r) {
                Ok(step) => {
                    let stage_index = setup.state.stage_index;
                    match step.record {
                        Some(Record::Intake) => {
                            let mut after = setup.clone();
                            after.state.submissions = step.after.submissions;
                            store::insert_submission(cx.conn, &after, r, now).await?;
                        }
                        Some(Record::Approval { approved }) => {
                            store::insert_approval(
                                cx.conn,
                                setup.setup_id,
                                stage_index,
                                r,
                                approved,
                                now,
                            )
                            .await?;
                        }
                        Some(Record::Qa { passed }) => {
                            store::insert_qa(cx.conn, setup.setup_id, stage_index, r, passed, now)
                                .await?;
                        }
                        None => {}
                    }
                    apply(cx, &template, &mut setup, &step, Some(r), now).await?;
                    Answer {
                        applied: true,
                        detail: step.detail,
                        field_errors: Vec::new(),
                    }
                }
                Err(Refusal::Fields(errors)) => Answer {
                    applied: false,
                    detail: Refusal::Fields(errors.clone()).detail(),
                    field_errors: errors,
                },
                Err(refusal) => refused(refusal.detail()),
            }
        }
    };
    if !answer.applied {
        info!(request = %r.request_id, setup = %r.setup_id, reason = %answer.detail, "setup request refused");
    }
    store::record_request(cx.conn, r, &answer, now).await?;
    answer_request(cx, r, &answer)
}

/// The template version `setup` follows (stored before the setup, by its foreign key).
async fn pinned(
    cx: &mut HandlerContext<'_>,
    setup: &StoredSetup,
) -> Result<SetupTemplate, HandlerError> {
    store::template(cx.conn, &setup.sku, setup.template_version)
        .await?
        .ok_or_else(|| {
            HandlerError::permanent(format!(
                "setup {} follows template version {} of {}, which is not stored",
                setup.setup_id, setup.template_version, setup.sku
            ))
        })
}

fn refused(detail: String) -> Answer {
    Answer {
        applied: false,
        detail,
        field_errors: Vec::<FieldError>::new(),
    }
}

fn answer_request(
    cx: &mut HandlerContext<'_>,
    r: &SetupActionRequested,
    answer: &Answer,
) -> Result<(), HandlerError> {
    let mut detail: String = answer.detail.chars().take(2000).collect();
    if detail.trim().is_empty() {
        detail = "(no detail)".to_owned();
    }
    cx.emit_valid(
        r.order_id.to_string(),
        SetupRequestAnswered {
            request_id: r.request_id,
            setup_id: r.setup_id,
            order_id: r.order_id,
            outcome: if answer.applied {
                RequestOutcome::Applied
            } else {
                RequestOutcome::Refused
            },
            detail,
            field_errors: answer.field_errors.clone(),
        },
    )?;
    Ok(())
}

/// Takes `step`: the new state with the next sequence, its history entry and its messages.
async fn apply(
    cx: &mut HandlerContext<'_>,
    template: &SetupTemplate,
    setup: &mut StoredSetup,
    step: &Step,
    request: Option<&SetupActionRequested>,
    at: chrono::DateTime<Utc>,
) -> Result<(), HandlerError> {
    let from = setup.state.status;
    let before = std::mem::replace(&mut setup.state, step.after.clone());
    setup.sequence = setup.sequence.saturating_add(1);
    setup.clock = setup.clock.after(&before, &setup.state, at);
    if sla::new_visit(&before, &setup.state) {
        setup.overdue_at = None;
    }
    setup.due_at = template
        .stages
        .get(setup.state.stage_index)
        .and_then(|stage| setup.clock.due(stage.sla_business_hours));
    store::update_setup(cx.conn, setup, at).await?;
    changed(cx, template, setup, Some(from), request, &step.detail, at).await?;
    if setup.state.status == SetupStatus::Completed {
        cx.emit_valid(
            setup.order_id.to_string(),
            SetupCompleted {
                setup_id: setup.setup_id,
                order_id: setup.order_id,
                line_id: setup.line_id.clone(),
                store_id: setup.store_id.clone(),
                sku: setup.sku.clone(),
                completed_at: at,
            },
        )?;
    }
    Ok(())
}

/// The history entry of `setup`'s current state and its `setup.status_changed`.
async fn changed(
    cx: &mut HandlerContext<'_>,
    template: &SetupTemplate,
    setup: &StoredSetup,
    from: Option<SetupStatus>,
    request: Option<&SetupActionRequested>,
    detail: &str,
    at: chrono::DateTime<Utc>,
) -> Result<(), HandlerError> {
    let detail: String = detail.chars().take(2000).collect();
    store::append_history(
        cx.conn,
        setup,
        &HistoryEntry {
            from,
            request,
            detail: &detail,
            at,
        },
    )
    .await?;
    let stage = template.stages.get(setup.state.stage_index).map_or_else(
        || format!("stage_{}", setup.state.stage_index),
        |s| s.key.clone(),
    );
    cx.emit_valid(
        setup.order_id.to_string(),
        SetupStatusChanged {
            setup_id: setup.setup_id,
            order_id: setup.order_id,
            line_id: setup.line_id.clone(),
            store_id: setup.store_id.clone(),
            sku: setup.sku.clone(),
            template_version: setup.template_version,
            sequence: setup.sequence,
            from,
            to: setup.state.status,
            stage,
            stage_index: u32::try_from(setup.state.stage_index).unwrap_or(u32::MAX),
            loops: setup.state.loops,
            actor: request.map(|r| r.requested_by.clone()),
            detail,
            request_id: request.map(|r| r.request_id),
            changed_at: at,
        },
    )?;
    Ok(())
}
