//! Setups of service products: the template a service product is set up by (part of the
//! catalog), the requests that move a setup along (`setup.action_requested`), and what the
//! setups worker says back (`setup.status_changed`, `setup.completed`,
//! `setup.request_answered`).
//!
//! A service product (a listings setup, an ad campaign) is not shipped: after the order it
//! goes through the stages of its template — an intake form the client fills in, work by the
//! agency, the client's approval, quality checks — one **setup** per service line, pinned to
//! the template version in force when the order was accepted.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::requests::RequestOutcome;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{Sku, StoreId};
use crate::validate::{At, Validate, count, ensure, first_duplicate, opt_text, text};

/// Most stages a template may have.
pub const MAX_STAGES: usize = 20;
/// Most fields an intake form may have.
pub const MAX_FIELDS: usize = 50;
/// Most checklist items a QA stage may have.
pub const MAX_CHECKLIST: usize = 50;

string_enum! {
    /// What a stage is for; it decides the setup's status while the stage is current.
    pub enum StageKind {
        /// The client fills in the onboarding form; staff review it.
        Intake = "intake",
        /// The agency does the work.
        Work = "work",
        /// The client approves what was done, or asks for changes.
        ClientApproval = "client_approval",
        /// Staff check the work against a checklist.
        Qa = "qa",
    }
}

string_enum! {
    /// Who acts on a setup: the client (through their intake link) or a staff role (the
    /// roles of the operator API).
    pub enum SetupRole {
        /// The buyer, through the signed link of their setup.
        Client = "client",
        /// Staff: everything.
        OrderAdmin = "order_admin",
        /// Staff: moves setups along.
        SetupManager = "setup_manager",
        /// Staff: shipments and statuses; no setup stages.
        FulfillmentTeam = "fulfillment_team",
        /// Staff: orders of their accounts; no setup stages.
        AccountManager = "account_manager",
    }
}

string_enum! {
    /// The kind of value an intake field takes (every value travels as text, as a form
    /// posts it, and is checked by the setups worker).
    pub enum FieldKind {
        /// One line of text.
        Text = "text",
        /// Several lines of text.
        LongText = "long_text",
        /// An e-mail address.
        Email = "email",
        /// An `http://` or `https://` address.
        Url = "url",
        /// A decimal number.
        Number = "number",
        /// A calendar date, `YYYY-MM-DD`.
        Date = "date",
        /// One of `choices`.
        Choice = "choice",
        /// `true` or `false`.
        Boolean = "boolean",
    }
}

string_enum! {
    /// Where a setup stands. Separate from the order's status: an order with service lines
    /// completes when its goods are delivered **and** its setups are completed.
    pub enum SetupStatus {
        /// Waiting for the client's intake form.
        PendingIntake = "pending_intake",
        /// The intake was submitted; staff review it.
        IntakeReview = "intake_review",
        /// The agency works on it.
        InProgress = "in_progress",
        /// Waiting for the client's approval.
        AwaitingClient = "awaiting_client",
        /// Staff check it against the QA checklist.
        Qa = "qa",
        /// Paused by staff (the SLA clock stops).
        OnHold = "on_hold",
        /// Every stage done.
        Completed = "completed",
        /// The order (or the line) was cancelled.
        Cancelled = "cancelled",
    }
}

impl SetupStatus {
    /// Completed or cancelled: nothing moves it any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

string_enum! {
    /// What a `setup.action_requested` asks.
    pub enum SetupAction {
        /// The client submits the intake form (`values`); a second submission is a
        /// correction and needs a `note` saying why.
        SubmitIntake = "submit_intake",
        /// Staff complete the current stage (intake review or work); the next one starts.
        Advance = "advance",
        /// Staff send the setup back to an earlier stage (`to_stage`), with a `note`.
        Return = "return",
        /// The client approves what they were shown (`approved`: a reference or digest of
        /// it, kept with the approval).
        Approve = "approve",
        /// The client asks for changes (`note`): back to the stage's `loop_back_to`.
        RequestChanges = "request_changes",
        /// Staff record the QA checklist (`results`, one per item): all passed → next
        /// stage; any failed → back to the stage's `loop_back_to`.
        RecordQa = "record_qa",
        /// Staff pause the setup (`note`: why).
        Hold = "hold",
        /// Staff resume a paused setup where it was.
        Release = "release",
    }
}

/// One field of an intake form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeField {
    /// The field's key in a submission's `values` (`[a-z0-9_]`, at most 64).
    #[schemars(length(max = 64))]
    pub key: String,
    /// The label the client sees.
    #[schemars(length(max = 200))]
    pub label: String,
    /// What it takes.
    pub kind: FieldKind,
    /// Whether a submission must fill it in.
    #[serde(default)]
    pub required: bool,
    /// Most characters a value may have (text kinds); 1,000 when left out, 10,000 at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// The allowed values of a `choice` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 200)))]
    pub choices: Vec<String>,
}

/// One stage of a setup template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupStage {
    /// The stage's key, unique in the template (`[a-z0-9_]`, at most 64).
    #[schemars(length(max = 64))]
    pub key: String,
    /// Its name, for people.
    #[schemars(length(max = 200))]
    pub title: String,
    /// What it is for.
    pub kind: StageKind,
    /// Who completes it: `client` for intake (the client submits; staff review) and client
    /// approval; a staff role (`setup_manager`, `order_admin`) for work and QA. An order
    /// admin may also complete a staff stage.
    pub role: SetupRole,
    /// The intake form (intake stages only, at least one field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<IntakeField>,
    /// What QA checks (QA stages only, at least one item).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 200)))]
    pub checklist: Vec<String>,
    /// How long the stage may take, in business hours (the clock stops while the setup
    /// waits for the client or is on hold).
    pub sla_business_hours: u32,
    /// Where the setup goes back to when the client asks for changes or QA fails: an
    /// earlier stage's key (client approval and QA stages only, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub loop_back_to: Option<String>,
}

/// How a service product is set up: ordered stages. Versioned: a setup is pinned to the
/// version in force when its order was accepted, so a template change never alters setups
/// already running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupTemplate {
    /// The template's version, from 1; a changed template has a higher version (a version
    /// once published never changes).
    pub version: u32,
    /// The stages, in order.
    pub stages: Vec<SetupStage>,
}

fn key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl SetupTemplate {
    /// The stage with `key`, with its index.
    pub fn stage(&self, key: &str) -> Option<(usize, &SetupStage)> {
        self.stages.iter().enumerate().find(|(_, s)| s.key == key)
    }

    /// Checks the template's rules (stage and field keys, roles per stage kind, forms only
    /// on intake, checklists only on QA, loops only back), naming the field under `at`.
    pub fn check(&self, at: &str) -> Result<(), ContractError> {
        ensure(self.version >= 1, || "versions start at 1".to_owned())
            .at_with(|| format!("{at}.version"))?;
        count(&self.stages, 1, MAX_STAGES).at_with(|| format!("{at}.stages"))?;
        if let Some(i) = first_duplicate(&self.stages, |s| s.key.clone()) {
            return Err(ContractError::new(
                format!("{at}.stages[{i}].key"),
                format!("stage `{}` is listed twice", self.stages[i].key),
            ));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let here = format!("{at}.stages[{i}]");
            stage.check(&here, &self.stages[..i])?;
        }
        Ok(())
    }
}

impl SetupStage {
    fn check(&self, at: &str, earlier: &[SetupStage]) -> Result<(), ContractError> {
        ensure(key_ok(&self.key), || {
            format!("`{}` is not a stage key ([a-z0-9_], 1 to 64)", self.key)
        })
        .at_with(|| format!("{at}.key"))?;
        text(&self.title, 200).at_with(|| format!("{at}.title"))?;
        let client_stage = matches!(self.kind, StageKind::Intake | StageKind::ClientApproval);
        let role_ok = if client_stage {
            self.role == SetupRole::Client
        } else {
            matches!(self.role, SetupRole::SetupManager | SetupRole::OrderAdmin)
        };
        ensure(role_ok, || {
            if client_stage {
                format!("a `{}` stage is the client's: role `client`", self.kind)
            } else {
                format!(
                    "a `{}` stage is completed by staff: `setup_manager` or `order_admin`",
                    self.kind
                )
            }
        })
        .at_with(|| format!("{at}.role"))?;
        if self.kind == StageKind::Intake {
            count(&self.fields, 1, MAX_FIELDS).at_with(|| format!("{at}.fields"))?;
        } else {
            ensure(self.fields.is_empty(), || {
                "only intake stages have a form".to_owned()
            })
            .at_with(|| format!("{at}.fields"))?;
        }
        if let Some(i) = first_duplicate(&self.fields, |f| f.key.clone()) {
            return Err(ContractError::new(
                format!("{at}.fields[{i}].key"),
                format!("field `{}` is listed twice", self.fields[i].key),
            ));
        }
        for (i, field) in self.fields.iter().enumerate() {
            field.check(&format!("{at}.fields[{i}]"))?;
        }
        if self.kind == StageKind::Qa {
            count(&self.checklist, 1, MAX_CHECKLIST).at_with(|| format!("{at}.checklist"))?;
        } else {
            ensure(self.checklist.is_empty(), || {
                "only QA stages have a checklist".to_owned()
            })
            .at_with(|| format!("{at}.checklist"))?;
        }
        for (i, item) in self.checklist.iter().enumerate() {
            text(item, 200).at_with(|| format!("{at}.checklist[{i}]"))?;
        }
        if let Some(i) = first_duplicate(&self.checklist, Clone::clone) {
            return Err(ContractError::new(
                format!("{at}.checklist[{i}]"),
                format!("checklist item `{}` is listed twice", self.checklist[i]),
            ));
        }
        let loops = matches!(self.kind, StageKind::ClientApproval | StageKind::Qa);
        match (&self.loop_back_to, loops) {
            (None, true) => Err(format!(
                "a `{}` stage says where changes go back to",
                self.kind
            )),
            (Some(_), false) => Err(format!(
                "only client approval and QA stages loop back, not `{}`",
                self.kind
            )),
            (Some(to), true) => ensure(earlier.iter().any(|s| &s.key == to), || {
                format!("`{to}` is not an earlier stage")
            }),
            (None, false) => Ok(()),
        }
        .at_with(|| format!("{at}.loop_back_to"))
    }
}

impl IntakeField {
    fn check(&self, at: &str) -> Result<(), ContractError> {
        ensure(key_ok(&self.key), || {
            format!("`{}` is not a field key ([a-z0-9_], 1 to 64)", self.key)
        })
        .at_with(|| format!("{at}.key"))?;
        text(&self.label, 200).at_with(|| format!("{at}.label"))?;
        ensure(
            self.max_length.is_none_or(|n| (1..=10_000).contains(&n)),
            || "from 1 to 10000 characters".to_owned(),
        )
        .at_with(|| format!("{at}.max_length"))?;
        if self.kind == FieldKind::Choice {
            count(&self.choices, 1, 100).at_with(|| format!("{at}.choices"))?;
        } else {
            ensure(self.choices.is_empty(), || {
                "only `choice` fields have choices".to_owned()
            })
            .at_with(|| format!("{at}.choices"))?;
        }
        for (i, c) in self.choices.iter().enumerate() {
            text(c, 200).at_with(|| format!("{at}.choices[{i}]"))?;
        }
        Ok(())
    }
}

// --- intake forms ----------------------------------------------------------------------------
//
// The one check of a submission against its form, used by the setups worker (which decides)
// and by the api's intake page (which shows the client their errors before anything is
// sent): both say the same about the same values.

/// Characters a text value may have when its field sets no `max_length`.
const DEFAULT_MAX_LENGTH: u32 = 1000;

/// Every problem of `values` against `fields`: a required field missing or blank, a value
/// of the wrong kind or too long, a key the form does not have. Empty when it is valid.
/// Values are trimmed before they are judged.
pub fn check_intake(fields: &[IntakeField], values: &BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.chars().take(64).collect(),
            message,
        });
    };
    for key in values.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            error(key, "this form has no such field".to_owned());
        }
    }
    for field in fields {
        let value = values.get(&field.key).map(|v| v.trim()).unwrap_or_default();
        if value.is_empty() {
            if field.required {
                error(&field.key, format!("`{}` is required", field.label));
            }
            continue;
        }
        if let Err(why) = check_value(field, value) {
            error(&field.key, why);
        }
    }
    errors
}

fn check_value(field: &IntakeField, value: &str) -> Result<(), String> {
    let max = field.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
    let length = value.chars().count();
    if u32::try_from(length).map_or(true, |n| n > max) {
        return Err(format!("at most {max} characters ({length} given)"));
    }
    let shown: String = value.chars().take(80).collect();
    match field.kind {
        FieldKind::Text => {
            if value.contains(['\n', '\r']) {
                return Err("one line only".to_owned());
            }
        }
        FieldKind::LongText => {}
        FieldKind::Email => {
            if !is_email(value) {
                return Err(format!("`{shown}` is not an e-mail address"));
            }
        }
        FieldKind::Url => {
            if !is_url(value) {
                return Err(format!(
                    "`{shown}` is not a web address (http:// or https://)"
                ));
            }
        }
        FieldKind::Number => {
            if !is_number(value) {
                return Err(format!(
                    "`{shown}` is not a number (digits, one `.` at most)"
                ));
            }
        }
        FieldKind::Date => {
            if NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() {
                return Err(format!("`{shown}` is not a date (YYYY-MM-DD)"));
            }
        }
        FieldKind::Choice => {
            if !field.choices.iter().any(|c| c == value) {
                return Err(format!(
                    "`{shown}` is not one of: {}",
                    field.choices.join(", ")
                ));
            }
        }
        FieldKind::Boolean => {
            if value != "true" && value != "false" {
                return Err(format!("`{shown}` is neither `true` nor `false`"));
            }
        }
    }
    Ok(())
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

fn is_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !r.chars().any(char::is_whitespace)
    })
}

fn is_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Who acts on a setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupActor {
    /// Their role (`client` for the buyer).
    pub role: SetupRole,
    /// Their id: the staff login, or the customer id.
    #[schemars(length(max = 128))]
    pub id: String,
}

/// One checklist item's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QaResult {
    /// The checklist item, as the template words it.
    #[schemars(length(max = 200))]
    pub item: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub note: Option<String>,
}

/// `setup.action_requested`: someone asks to move a setup along (the client through their
/// intake link, staff through the operator API). The setups worker applies it or refuses it
/// (a role that may not, a stage it does not fit, an invalid form), and answers with
/// `setup.request_answered` either way; a refusal is also kept in its audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupActionRequested {
    /// Id of this request; re-sending it with the same id acts once.
    pub request_id: Uuid,
    /// The setup.
    pub setup_id: Uuid,
    /// Its order (the envelope's correlation id).
    pub order_id: Uuid,
    /// What to do.
    pub action: SetupAction,
    /// Who asks.
    pub requested_by: SetupActor,
    /// Why (required to return, request changes, hold, and to correct an intake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
    /// The intake form's values by field key (`submit_intake`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// The checklist's results (`record_qa`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<QaResult>,
    /// The stage to go back to (`return`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub to_stage: Option<String>,
    /// What the client approved: a reference or digest of what they were shown (`approve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub approved: Option<String>,
}

impl Message for SetupActionRequested {
    const TYPE: &'static str = "setup.action_requested";
    const VERSION: u16 = 1;
}

impl Validate for SetupActionRequested {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.requested_by.id, 128).at("payload.requested_by.id")?;
        opt_text(self.note.as_ref(), 2000).at("payload.note")?;
        opt_text(self.to_stage.as_ref(), 64).at("payload.to_stage")?;
        opt_text(self.approved.as_ref(), 500).at("payload.approved")?;
        ensure(self.values.len() <= MAX_FIELDS, || {
            format!("at most {MAX_FIELDS} values")
        })
        .at("payload.values")?;
        for (key, value) in &self.values {
            ensure(value.chars().count() <= 10_000, || {
                "at most 10000 characters".to_owned()
            })
            .at_with(|| format!("payload.values.{key}"))?;
        }
        count(&self.results, 0, MAX_CHECKLIST).at("payload.results")?;
        for (i, r) in self.results.iter().enumerate() {
            text(&r.item, 200).at_with(|| format!("payload.results[{i}].item"))?;
            opt_text(r.note.as_ref(), 1000).at_with(|| format!("payload.results[{i}].note"))?;
        }
        // Each action's own fields, and only those.
        use SetupAction as A;
        let needs = |ok: bool, what: &str| ensure(ok, || format!("`{}` needs {what}", self.action));
        match self.action {
            A::SubmitIntake => {
                needs(!self.values.is_empty(), "the form's values").at("payload.values")?
            }
            A::Return => {
                needs(self.to_stage.is_some(), "the stage to go back to").at("payload.to_stage")?;
                needs(self.note.is_some(), "a note saying why").at("payload.note")?;
            }
            A::RequestChanges | A::Hold => {
                needs(self.note.is_some(), "a note saying why").at("payload.note")?;
            }
            A::Approve => {
                needs(self.approved.is_some(), "what was approved").at("payload.approved")?;
            }
            A::RecordQa => {
                needs(!self.results.is_empty(), "the checklist's results").at("payload.results")?
            }
            A::Advance | A::Release => {}
        }
        let unused = |present: bool, field: &str, for_action: A| {
            ensure(!present || self.action == for_action, || {
                format!("only `{for_action}` takes {field}")
            })
        };
        unused(!self.values.is_empty(), "values", A::SubmitIntake).at("payload.values")?;
        unused(!self.results.is_empty(), "results", A::RecordQa).at("payload.results")?;
        unused(self.to_stage.is_some(), "a stage", A::Return).at("payload.to_stage")?;
        unused(self.approved.is_some(), "`approved`", A::Approve).at("payload.approved")
    }
}

/// `setup.status_changed`: a setup started, moved to another stage or status, or ended.
/// One per change, numbered per setup (`sequence`, from 1 for the start): consumers keep
/// the highest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupStatusChanged {
    /// The setup.
    pub setup_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The order line it sets up.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The order's store.
    pub store_id: StoreId,
    /// The service product.
    pub sku: Sku,
    /// The template version it follows.
    pub template_version: u32,
    /// This change's number for this setup, from 1.
    pub sequence: u32,
    /// Before (absent when the setup started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<SetupStatus>,
    /// After.
    pub to: SetupStatus,
    /// The current stage's key (the last one once completed).
    #[schemars(length(max = 64))]
    pub stage: String,
    /// The current stage's position, from 0.
    pub stage_index: u32,
    /// How many times the setup went back (changes asked, QA failed, returned).
    pub loops: u32,
    /// Who caused it (absent for the start and for a cancellation of the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<SetupActor>,
    /// What was done, as on the timeline.
    #[schemars(length(max = 2000))]
    pub detail: String,
    /// The request that caused it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    /// When.
    pub changed_at: DateTime<Utc>,
}

impl Message for SetupStatusChanged {
    const TYPE: &'static str = "setup.status_changed";
    const VERSION: u16 = 1;
}

impl Validate for SetupStatusChanged {
    fn validate(&self) -> Result<(), ContractError> {
        ensure(self.sequence >= 1, || "sequences start at 1".to_owned()).at("payload.sequence")?;
        ensure(self.from.is_some() == (self.sequence > 1), || {
            "only the first change (the start) has no `from`".to_owned()
        })
        .at("payload.from")?;
        text(&self.line_id, 64).at("payload.line_id")?;
        if let Some(actor) = &self.actor {
            text(&actor.id, 128).at("payload.actor.id")?;
        }
        text(&self.stage, 64).at("payload.stage")?;
        text(&self.detail, 2000).at("payload.detail")
    }
}

/// `setup.completed`: a setup went through every stage. The order completes when its goods
/// are delivered and every setup of it is completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupCompleted {
    /// The setup.
    pub setup_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The order line it set up.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The order's store.
    pub store_id: StoreId,
    /// The service product.
    pub sku: Sku,
    /// When.
    pub completed_at: DateTime<Utc>,
}

impl Message for SetupCompleted {
    const TYPE: &'static str = "setup.completed";
    const VERSION: u16 = 1;
}

impl Validate for SetupCompleted {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.line_id, 64).at("payload.line_id")
    }
}

/// `setup.overdue`: a setup's stage took longer than its SLA (business hours, not counting
/// the time it waited for the client or was on hold). Sent once per stage visit; the
/// notifications worker tells the store's staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupOverdue {
    /// The setup.
    pub setup_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The order line it sets up.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The order's store.
    pub store_id: StoreId,
    /// The service product.
    pub sku: Sku,
    /// The setup's `sequence` when it became overdue (with `setup_id`, names the stage
    /// visit: one `setup.overdue` per visit).
    pub sequence: u32,
    /// The stage that is late.
    #[schemars(length(max = 64))]
    pub stage: String,
    /// Its SLA.
    pub sla_business_hours: u32,
    /// When it was due.
    pub due_at: DateTime<Utc>,
}

impl Message for SetupOverdue {
    const TYPE: &'static str = "setup.overdue";
    const VERSION: u16 = 1;
}

impl Validate for SetupOverdue {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.line_id, 64).at("payload.line_id")?;
        text(&self.stage, 64).at("payload.stage")
    }
}

string_enum! {
    /// What a setup waits for the client to do.
    pub enum ClientTask {
        /// Fill in the intake form.
        Intake = "intake",
        /// Approve what they were shown, or ask for changes.
        Approval = "approval",
    }
}

/// `setup.client_reminder_due`: a setup has waited for its client longer than the
/// reminder interval (the setups worker's sweep, at most a few times per wait). The api
/// worker, which signs the client's links, answers it with a `setup.client_invited`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupClientReminderDue {
    /// The setup.
    pub setup_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The order line it sets up.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The order's store.
    pub store_id: StoreId,
    /// The service product.
    pub sku: Sku,
    /// The setup's `sequence` when it began to wait (with `setup_id`, names the wait).
    pub sequence: u32,
    /// What the client has not done yet.
    pub task: ClientTask,
    /// The stage waiting on it.
    #[schemars(length(max = 64))]
    pub stage: String,
    /// Which reminder of this wait, from 1.
    pub reminder: u32,
    /// Since when the setup waits.
    pub waiting_since: DateTime<Utc>,
}

impl Message for SetupClientReminderDue {
    const TYPE: &'static str = "setup.client_reminder_due";
    const VERSION: u16 = 1;
}

impl Validate for SetupClientReminderDue {
    fn validate(&self) -> Result<(), ContractError> {
        ensure(self.reminder >= 1, || "reminders count from 1".to_owned())
            .at("payload.reminder")?;
        text(&self.line_id, 64).at("payload.line_id")?;
        text(&self.stage, 64).at("payload.stage")
    }
}

/// `setup.client_invited`: the client of a setup is asked to act — fill in the intake form,
/// approve a stage, or a reminder of either — with their signed link. From the api worker
/// (which signs the links) to the notifications worker, which tells the customer. Not for
/// merchants' webhooks: the link is the client's credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupClientInvited {
    /// The setup.
    pub setup_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// The order line it sets up.
    #[schemars(length(max = 64))]
    pub line_id: String,
    /// The order's store.
    pub store_id: StoreId,
    /// The service product.
    pub sku: Sku,
    /// The setup's `sequence` when it began to wait (with `setup_id` and `reminder`, names
    /// the invitation: one per wait and reminder).
    pub sequence: u32,
    /// What the client is asked to do.
    pub task: ClientTask,
    /// The stage's title, for people.
    #[schemars(length(max = 200))]
    pub stage_title: String,
    /// 0 for the first invitation of a wait, then the reminder's number.
    pub reminder: u32,
    /// The client's link (absolute), signed and expiring.
    #[schemars(length(max = 2048))]
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

impl Message for SetupClientInvited {
    const TYPE: &'static str = "setup.client_invited";
    const VERSION: u16 = 1;
}

impl Validate for SetupClientInvited {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.line_id, 64).at("payload.line_id")?;
        text(&self.stage_title, 200).at("payload.stage_title")?;
        text(&self.url, 2048).at("payload.url")?;
        ensure(
            self.url.starts_with("https://") || self.url.starts_with("http://"),
            || "an absolute http(s) address".to_owned(),
        )
        .at("payload.url")
    }
}

/// A field a submission got wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    /// The field's key.
    #[schemars(length(max = 64))]
    pub field: String,
    /// What is wrong with it.
    #[schemars(length(max = 500))]
    pub message: String,
}

/// `setup.request_answered`: what became of a `setup.action_requested` (its `request_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequestAnswered {
    /// The request.
    pub request_id: Uuid,
    /// The setup it named.
    pub setup_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// Applied or refused.
    pub outcome: RequestOutcome,
    /// One sentence saying what was done, or why not.
    #[schemars(length(max = 2000))]
    pub detail: String,
    /// A refused intake's field-level errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_errors: Vec<FieldError>,
}

impl Message for SetupRequestAnswered {
    const TYPE: &'static str = "setup.request_answered";
    const VERSION: u16 = 1;
}

impl Validate for SetupRequestAnswered {
    fn validate(&self) -> Result<(), ContractError> {
        text(&self.detail, 2000).at("payload.detail")?;
        for (i, e) in self.field_errors.iter().enumerate() {
            text(&e.field, 64).at_with(|| format!("payload.field_errors[{i}].field"))?;
            text(&e.message, 500).at_with(|| format!("payload.field_errors[{i}].message"))?;
        }
        ensure(self.outcome != RequestOutcome::PartiallyApplied, || {
            "a setup request is applied or refused, never in part".to_owned()
        })
        .at("payload.outcome")?;
        ensure(
            self.field_errors.is_empty() || self.outcome == RequestOutcome::Refused,
            || "only a refusal has field errors".to_owned(),
        )
        .at("payload.field_errors")
    }
}

/// This area's message types, as catalog entries.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            SetupActionRequested,
            example: golden::setup_action_requested,
            from: "admin API, intake form",
            says: "move a setup along: intake, advance, return, approve, changes, QA, hold",
            to: [SETUPS],
            only_from_outside,
        ),
        entry!(
            SetupStatusChanged,
            example: golden::setup_status_changed,
            from: "setups",
            says: "a setup started, changed stage or status, or ended",
            to: [API, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            SetupCompleted,
            example: golden::setup_completed,
            from: "setups",
            says: "a setup went through every stage",
            to: [ORDERS, NOTIFICATIONS, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            SetupOverdue,
            example: golden::setup_overdue,
            from: "setups",
            says: "a setup's stage is past its SLA (once per stage visit)",
            to: [NOTIFICATIONS, API, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            SetupRequestAnswered,
            example: golden::setup_request_answered,
            from: "setups",
            says: "a setup request was applied, or refused and why",
            to: [API, OUT_MERCHANT_EVENTS],
        ),
        entry!(
            SetupClientReminderDue,
            example: golden::setup_client_reminder_due,
            from: "setups",
            says: "a setup has waited for its client long enough for a reminder",
            to: [API],
        ),
        entry!(
            SetupClientInvited,
            example: golden::setup_client_invited,
            from: "api",
            says: "a setup's client is asked to act, with their signed link",
            to: [NOTIFICATIONS],
        ),
    ]
}

mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn setup_action_requested() -> Value {
        envelope::<SetupActionRequested>(
            Meta {
                n: 0x40,
                correlation: ORDER,
                causation: None,
                at: "2026-03-16T10:12:00Z",
                producer: "admin-api",
                span: None,
            },
            json!({
                "request_id": SETUP_REQUEST,
                "setup_id": SETUP,
                "order_id": ORDER,
                "action": "submit_intake",
                "requested_by": { "role": "client", "id": "C-48213" },
                "values": {
                    "shop_url": "https://keramik-becker.example",
                    "contact_email": "anna@keramik-becker.example",
                    "listings": "40"
                }
            }),
        )
    }

    pub(super) fn setup_status_changed() -> Value {
        envelope::<SetupStatusChanged>(
            Meta {
                n: 0x41,
                correlation: ORDER,
                causation: Some(0x40),
                at: "2026-03-16T10:12:01Z",
                producer: "setups",
                span: Some("00f067aa0ba90241"),
            },
            json!({
                "setup_id": SETUP,
                "order_id": ORDER,
                "line_id": "3",
                "store_id": STORE,
                "sku": "SVC-LISTINGS-40",
                "template_version": 2,
                "sequence": 2,
                "from": "pending_intake",
                "to": "intake_review",
                "stage": "onboarding",
                "stage_index": 0,
                "loops": 0,
                "actor": { "role": "client", "id": "C-48213" },
                "detail": "Intake submitted (3 fields)",
                "request_id": SETUP_REQUEST,
                "changed_at": "2026-03-16T10:12:01Z"
            }),
        )
    }

    pub(super) fn setup_completed() -> Value {
        envelope::<SetupCompleted>(
            Meta {
                n: 0x42,
                correlation: ORDER,
                causation: None,
                at: "2026-03-20T15:30:00Z",
                producer: "setups",
                span: Some("00f067aa0ba90242"),
            },
            json!({
                "setup_id": SETUP,
                "order_id": ORDER,
                "line_id": "3",
                "store_id": STORE,
                "sku": "SVC-LISTINGS-40",
                "completed_at": "2026-03-20T15:30:00Z"
            }),
        )
    }

    pub(super) fn setup_overdue() -> Value {
        envelope::<SetupOverdue>(
            Meta {
                n: 0x44,
                correlation: ORDER,
                causation: None,
                at: "2026-03-18T15:00:00Z",
                producer: "setups",
                span: Some("00f067aa0ba90244"),
            },
            json!({
                "setup_id": SETUP,
                "order_id": ORDER,
                "line_id": "3",
                "store_id": STORE,
                "sku": "SVC-LISTINGS-40",
                "sequence": 3,
                "stage": "build",
                "sla_business_hours": 24,
                "due_at": "2026-03-18T14:00:00Z"
            }),
        )
    }

    pub(super) fn setup_request_answered() -> Value {
        envelope::<SetupRequestAnswered>(
            Meta {
                n: 0x43,
                correlation: ORDER,
                causation: Some(0x40),
                at: "2026-03-16T10:12:01Z",
                producer: "setups",
                span: Some("00f067aa0ba90243"),
            },
            json!({
                "request_id": SETUP_REQUEST,
                "setup_id": SETUP,
                "order_id": ORDER,
                "outcome": "refused",
                "detail": "The intake form has 1 error; nothing was stored",
                "field_errors": [
                    { "field": "contact_email", "message": "`anna(at)keramik` is not an e-mail address" }
                ]
            }),
        )
    }

    pub(super) fn setup_client_reminder_due() -> Value {
        envelope::<SetupClientReminderDue>(
            Meta {
                n: 0x45,
                correlation: ORDER,
                causation: None,
                at: "2026-03-19T09:00:00Z",
                producer: "setups",
                span: Some("00f067aa0ba90245"),
            },
            json!({
                "setup_id": SETUP,
                "order_id": ORDER,
                "line_id": "3",
                "store_id": STORE,
                "sku": "SVC-LISTINGS-40",
                "sequence": 1,
                "task": "intake",
                "stage": "onboarding",
                "reminder": 1,
                "waiting_since": "2026-03-16T09:00:00Z"
            }),
        )
    }

    pub(super) fn setup_client_invited() -> Value {
        envelope::<SetupClientInvited>(
            Meta {
                n: 0x46,
                correlation: ORDER,
                causation: Some(0x45),
                at: "2026-03-19T09:00:01Z",
                producer: "api",
                span: Some("00f067aa0ba90246"),
            },
            json!({
                "setup_id": SETUP,
                "order_id": ORDER,
                "line_id": "3",
                "store_id": STORE,
                "sku": "SVC-LISTINGS-40",
                "sequence": 1,
                "task": "intake",
                "stage_title": "Onboarding form",
                "reminder": 1,
                "url": "https://orders.keramik-becker.example/setup-intake/AZXzpxorfD2OT1prfI2eDw.1742900000.2CkqQzG0aTqNbyXDP6Vz4RrbW6r93c0q1bEcv8xhB0A",
                "expires_at": "2026-04-02T09:00:01Z"
            }),
        )
    }
}
