//! Asking a setup's client to act: the api worker signs the client's links, so it is the
//! one that turns "the setup waits for its client" into `setup.client_invited` (with a fresh
//! link), which the notifications worker sends the customer. It follows the setups
//! worker's changes (a wait beginning, [`crate::domain::invitation`]) and reminders
//! (`setup.client_reminder_due`), in the projection's transaction.
//!
//! Each invitation is recorded (`setup_invitations`, once per setup, wait and reminder),
//! with the link's expiry or why none could be made: a store without a secret gets no link
//! (the operator sees why on the setup, makes one with `orderly store-secret rotate`, and
//! sends the link from `POST /api/v1/admin/setups/{id}/intake-link`).

use chrono::{DateTime, Duration, Utc};
use orderly_contracts::messages::{ClientTask, SetupClientInvited};
use orderly_contracts::types::{Sku, StoreId};
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::{intake_link, invitation};
use crate::input::ApiInput;
use crate::store::secrets;
use crate::store::setups::{self as store, Invitation};

/// A setup waiting for its client, to be asked.
struct Wait {
    setup_id: Uuid,
    order_id: Uuid,
    line_id: String,
    store_id: StoreId,
    sku: Sku,
    /// The setup's sequence when the wait began.
    sequence: u32,
    task: ClientTask,
    stage: String,
    reminder: u32,
}

impl Wait {
    /// The wait `input` asks the client about, if any.
    fn of(input: &ApiInput) -> Option<Wait> {
        match input {
            ApiInput::SetupChanged(env) => {
                let p = &env.payload;
                let task = invitation::asks_client(p.from, p.to)?;
                Some(Wait {
                    setup_id: p.setup_id,
                    order_id: p.order_id,
                    line_id: p.line_id.clone(),
                    store_id: p.store_id.clone(),
                    sku: p.sku.clone(),
                    sequence: p.sequence,
                    task,
                    stage: p.stage.clone(),
                    reminder: 0,
                })
            }
            ApiInput::SetupReminderDue(env) => {
                let p = &env.payload;
                Some(Wait {
                    setup_id: p.setup_id,
                    order_id: p.order_id,
                    line_id: p.line_id.clone(),
                    store_id: p.store_id.clone(),
                    sku: p.sku.clone(),
                    sequence: p.sequence,
                    task: p.task,
                    stage: p.stage.clone(),
                    reminder: p.reminder,
                })
            }
            _ => None,
        }
    }
}

/// Asks the client what `input` (already projected) says the setup waits for: records the
/// invitation and emits `setup.client_invited` with a link on `public_url`. Nothing for any
/// other input, a change that is no longer the setup's latest (the setup moved on), or an
/// invitation already made.
pub(crate) async fn follow(
    cx: &mut HandlerContext<'_>,
    public_url: &str,
    input: &ApiInput,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let Some(wait) = Wait::of(input) else {
        return Ok(());
    };
    let Some(setup) = store::intake_context(&mut *cx.conn, wait.setup_id).await? else {
        return Ok(());
    };
    // A first invitation only for the setup as it is now; a reminder names the wait, which
    // the setups worker saw still open.
    if wait.reminder == 0 && i64::from(setup.sequence) != i64::from(wait.sequence) {
        return Ok(());
    }
    // The stage's title (its key while the template is not here yet).
    let stage_title = setup
        .template
        .as_ref()
        .and_then(|t| t.stage(&wait.stage).map(|(_, s)| s.title.clone()))
        .unwrap_or_else(|| wait.stage.clone());
    let secret = secrets::valid(&mut *cx.conn, wait.store_id.as_str())
        .await?
        .into_iter()
        .next();
    let mut record = Invitation {
        sequence: i32::try_from(wait.sequence).unwrap_or(i32::MAX),
        reminder: i32::try_from(wait.reminder).unwrap_or(i32::MAX),
        task: wait.task.as_str().to_owned(),
        at: now,
        expires_at: None,
        problem: None,
    };
    let Some(secret) = secret else {
        record.problem = Some(format!(
            "the store has no secret to sign the client's link with: \
             `orderly store-secret rotate {}`, then send the link from the setup",
            wait.store_id
        ));
        if store::record_invitation(cx.conn, wait.setup_id, &record).await? {
            warn!(setup = %wait.setup_id, store = %wait.store_id, "client not asked: the store has no secret");
        }
        return Ok(());
    };
    let expires_at = now + Duration::days(invitation::LINK_DAYS);
    record.expires_at = Some(expires_at);
    if !store::record_invitation(cx.conn, wait.setup_id, &record).await? {
        return Ok(());
    }
    let token = intake_link::mint(wait.setup_id, expires_at.timestamp(), &secret);
    let invited = SetupClientInvited {
        setup_id: wait.setup_id,
        order_id: wait.order_id,
        line_id: wait.line_id,
        store_id: wait.store_id,
        sku: wait.sku,
        sequence: wait.sequence,
        task: wait.task,
        stage_title,
        reminder: wait.reminder,
        url: invitation::url(public_url, &token),
        expires_at,
    };
    cx.emit_valid(wait.order_id.to_string(), invited)?;
    info!(setup = %wait.setup_id, task = %wait.task, reminder = wait.reminder, "client asked");
    Ok(())
}
