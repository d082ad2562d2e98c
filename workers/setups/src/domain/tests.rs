//! The setup state machine and intake checks, without I/O.

use std::collections::BTreeMap;

use orderly_contracts::messages::{
    FieldKind, IntakeField, QaResult, SetupAction, SetupActionRequested, SetupActor, SetupRole,
    SetupStage, SetupStatus, SetupTemplate, StageKind,
};
use uuid::Uuid;

use super::*;

fn field(key: &str, kind: FieldKind, required: bool) -> IntakeField {
    IntakeField {
        key: key.to_owned(),
        label: key.replace('_', " "),
        kind,
        required,
        max_length: None,
        choices: if kind == FieldKind::Choice {
            vec!["basic".to_owned(), "premium".to_owned()]
        } else {
            Vec::new()
        },
    }
}

fn stage(key: &str, kind: StageKind, role: SetupRole) -> SetupStage {
    SetupStage {
        key: key.to_owned(),
        title: key.to_owned(),
        kind,
        role,
        fields: Vec::new(),
        checklist: Vec::new(),
        sla_business_hours: 16,
        loop_back_to: None,
    }
}

/// Intake → build → client review (changes go back to build) → QA (failures go back to
/// build).
pub(crate) fn template() -> SetupTemplate {
    let mut onboarding = stage("onboarding", StageKind::Intake, SetupRole::Client);
    onboarding.fields = vec![
        field("shop_url", FieldKind::Url, true),
        field("contact_email", FieldKind::Email, true),
        field("listings", FieldKind::Number, true),
        field("launch", FieldKind::Date, false),
        field("plan", FieldKind::Choice, false),
        field("notes", FieldKind::LongText, false),
        field("rush", FieldKind::Boolean, false),
    ];
    let build = stage("build", StageKind::Work, SetupRole::SetupManager);
    let mut review = stage("review", StageKind::ClientApproval, SetupRole::Client);
    review.loop_back_to = Some("build".to_owned());
    let mut qa = stage("qa", StageKind::Qa, SetupRole::SetupManager);
    qa.checklist = vec!["links work".to_owned(), "texts proofread".to_owned()];
    qa.loop_back_to = Some("build".to_owned());
    let t = SetupTemplate {
        version: 1,
        stages: vec![onboarding, build, review, qa],
    };
    t.check("template").expect("a valid template");
    t
}

fn request(action: SetupAction, role: SetupRole) -> SetupActionRequested {
    SetupActionRequested {
        request_id: Uuid::now_v7(),
        setup_id: Uuid::nil(),
        order_id: Uuid::nil(),
        action,
        requested_by: SetupActor {
            role,
            id: "someone".to_owned(),
        },
        note: None,
        values: BTreeMap::new(),
        results: Vec::new(),
        to_stage: None,
        approved: None,
    }
}

fn intake() -> SetupActionRequested {
    let mut r = request(SetupAction::SubmitIntake, SetupRole::Client);
    r.values = [
        ("shop_url", "https://keramik.example/shop"),
        ("contact_email", "anna@keramik.example"),
        ("listings", "40"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    r
}

fn qa(results: &[(&str, bool)]) -> SetupActionRequested {
    let mut r = request(SetupAction::RecordQa, SetupRole::SetupManager);
    r.results = results
        .iter()
        .map(|(item, passed)| QaResult {
            item: (*item).to_owned(),
            passed: *passed,
            note: None,
        })
        .collect();
    r
}

fn with_note(mut r: SetupActionRequested, note: &str) -> SetupActionRequested {
    r.note = Some(note.to_owned());
    r
}

/// Applies `r`, which must be applied; returns the new setup.
fn apply(setup: &Setup, r: &SetupActionRequested) -> Setup {
    match decide(setup, &template(), r) {
        Ok(step) => step.after,
        Err(refusal) => panic!("{:?} refused: {refusal:?}", r.action),
    }
}

fn refused(setup: &Setup, r: &SetupActionRequested) -> String {
    match decide(setup, &template(), r) {
        Ok(step) => panic!("{:?} applied: {}", r.action, step.detail),
        Err(refusal) => refusal.detail(),
    }
}

fn started() -> Setup {
    Setup::start(&template()).expect("stages")
}

#[test]
fn a_setup_goes_through_every_stage_with_one_round_of_changes() {
    let t = template();
    let mut s = started();
    assert_eq!(s.status, SetupStatus::PendingIntake);
    s = apply(&s, &intake());
    assert_eq!((s.status, s.submissions), (SetupStatus::IntakeReview, 1));
    s = apply(&s, &request(SetupAction::Advance, SetupRole::SetupManager));
    assert_eq!((s.status, s.stage_index), (SetupStatus::InProgress, 1));
    s = apply(&s, &request(SetupAction::Advance, SetupRole::SetupManager));
    assert_eq!(s.status, SetupStatus::AwaitingClient);
    let mut changes = with_note(
        request(SetupAction::RequestChanges, SetupRole::Client),
        "The logo is too small",
    );
    s = apply(&s, &changes);
    assert_eq!(
        (s.status, s.stage_index, s.loops),
        (SetupStatus::InProgress, 1, 1)
    );
    s = apply(&s, &request(SetupAction::Advance, SetupRole::OrderAdmin));
    let mut approve = request(SetupAction::Approve, SetupRole::Client);
    approve.approved = Some("preview v2, sha256:0f3a".to_owned());
    let step = decide(&s, &t, &approve).expect("approved");
    assert_eq!(step.record, Some(Record::Approval { approved: true }));
    s = step.after;
    assert_eq!(s.status, SetupStatus::Qa);
    s = apply(&s, &qa(&[("links work", true), ("texts proofread", true)]));
    assert_eq!(
        (s.status, s.stage_index, s.loops),
        (SetupStatus::Completed, 3, 1)
    );
    // Nothing moves a completed setup.
    changes.note = Some("one more thing".to_owned());
    assert!(refused(&s, &changes).contains("completed"));
}

#[test]
fn failed_qa_goes_back_to_its_loop_stage() {
    let mut s = started();
    s.stage_index = 3;
    s.status = SetupStatus::Qa;
    let step = decide(
        &s,
        &template(),
        &qa(&[("links work", false), ("texts proofread", true)]),
    )
    .expect("recorded");
    assert_eq!(step.record, Some(Record::Qa { passed: false }));
    assert_eq!(
        (step.after.status, step.after.stage_index, step.after.loops),
        (SetupStatus::InProgress, 1, 1)
    );
    assert!(step.detail.contains("links work"), "{}", step.detail);
}

#[test]
fn qa_results_must_match_the_checklist() {
    let mut s = started();
    s.stage_index = 3;
    s.status = SetupStatus::Qa;
    let why = refused(&s, &qa(&[("links work", true)]));
    assert!(why.contains("`texts proofread` has no result"), "{why}");
    let why = refused(
        &s,
        &qa(&[
            ("links work", true),
            ("texts proofread", true),
            ("colours", true),
        ]),
    );
    assert!(why.contains("`colours` is not on the checklist"), "{why}");
}

#[test]
fn roles_that_may_not_are_refused() {
    let s = started();
    // Staff do not fill in the client's form.
    let mut staff_intake = intake();
    staff_intake.requested_by.role = SetupRole::SetupManager;
    assert!(refused(&s, &staff_intake).contains("only the client"));
    let review = apply(&s, &intake());
    for role in [
        SetupRole::Client,
        SetupRole::AccountManager,
        SetupRole::FulfillmentTeam,
    ] {
        let why = refused(&review, &request(SetupAction::Advance, role));
        assert!(why.contains("may not complete a stage"), "{role}: {why}");
    }
    let mut waiting = started();
    waiting.stage_index = 2;
    waiting.status = SetupStatus::AwaitingClient;
    let mut approve = request(SetupAction::Approve, SetupRole::OrderAdmin);
    approve.approved = Some("preview".to_owned());
    assert!(refused(&waiting, &approve).contains("only the client approves"));
    assert!(
        refused(
            &waiting,
            &request(SetupAction::Advance, SetupRole::SetupManager)
        )
        .contains("only the client approves")
    );
}

#[test]
fn a_work_stage_of_the_order_admin_is_not_the_setup_managers() {
    let mut t = template();
    t.stages[1].role = SetupRole::OrderAdmin;
    let mut s = started();
    s.stage_index = 1;
    s.status = SetupStatus::InProgress;
    let r = request(SetupAction::Advance, SetupRole::SetupManager);
    let Err(refusal) = decide(&s, &t, &r) else {
        panic!("a setup manager completed an order admin's stage");
    };
    assert!(refusal.detail().contains("completed by `order_admin`"));
    let r = request(SetupAction::Advance, SetupRole::OrderAdmin);
    assert!(decide(&s, &t, &r).is_ok());
}

#[test]
fn an_invalid_intake_is_refused_field_by_field_and_nothing_changes() {
    let s = started();
    let mut r = intake();
    r.values
        .insert("contact_email".into(), "anna(at)keramik".into());
    r.values.insert("listings".into(), "forty".into());
    r.values.insert("shop_url".into(), "   ".into());
    r.values.insert("colour".into(), "blue".into());
    let Err(Refusal::Fields(errors)) = decide(&s, &template(), &r) else {
        panic!("an invalid intake was not refused by field");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["colour", "shop_url", "contact_email", "listings"]);
    assert!(errors[1].message.contains("required"));
    assert!(errors[2].message.contains("not an e-mail address"));
}

#[test]
fn intake_values_of_every_kind() {
    let t = template();
    let fields = &t.stages[0].fields;
    let base: BTreeMap<String, String> = intake().values;
    let check = |key: &str, value: &str| {
        let mut values = base.clone();
        values.insert(key.to_owned(), value.to_owned());
        check_intake(fields, &values)
    };
    for (key, good) in [
        ("launch", "2027-02-28"),
        ("plan", "premium"),
        ("rush", "false"),
        ("listings", "-12.50"),
        ("shop_url", "http://a.example"),
        ("notes", "two\nlines"),
    ] {
        assert_eq!(check(key, good), [], "{key} = {good}");
    }
    for (key, bad) in [
        ("launch", "2027-02-30"),
        ("launch", "28.02.2027"),
        ("plan", "gold"),
        ("rush", "yes"),
        ("listings", "1e3"),
        ("listings", "12."),
        ("shop_url", "ftp://a.example"),
        ("shop_url", "https://"),
        ("contact_email", "a@b"),
    ] {
        let errors = check(key, bad);
        assert_eq!(errors.len(), 1, "{key} = {bad}: {errors:?}");
        assert_eq!(errors[0].field, key);
    }
    let long = "x".repeat(1001);
    assert!(check("notes", &long)[0].message.contains("at most 1000"));
}

#[test]
fn a_correction_of_the_intake_says_why() {
    let review = apply(&started(), &intake());
    assert!(refused(&review, &intake()).contains("a correction says why"));
    let again = apply(&review, &with_note(intake(), "wrong shop address"));
    assert_eq!(
        (again.status, again.submissions),
        (SetupStatus::IntakeReview, 2)
    );
    // Staff can send the intake back to the client for a new submission.
    let mut back = with_note(
        request(SetupAction::Return, SetupRole::SetupManager),
        "the shop address does not load",
    );
    back.to_stage = Some("onboarding".to_owned());
    let pending = apply(&again, &back);
    assert_eq!(
        (pending.status, pending.loops),
        (SetupStatus::PendingIntake, 1)
    );
}

#[test]
fn return_goes_only_backwards() {
    let mut s = started();
    s.stage_index = 1;
    s.status = SetupStatus::InProgress;
    let mut r = with_note(request(SetupAction::Return, SetupRole::SetupManager), "why");
    r.to_stage = Some("qa".to_owned());
    assert!(refused(&s, &r).contains("not an earlier stage"));
    r.to_stage = Some("nowhere".to_owned());
    assert!(refused(&s, &r).contains("no stage `nowhere`"));
    r.to_stage = Some("onboarding".to_owned());
    assert_eq!(apply(&s, &r).status, SetupStatus::PendingIntake);
}

#[test]
fn hold_and_release_return_where_it_was() {
    let mut s = started();
    s.stage_index = 2;
    s.status = SetupStatus::AwaitingClient;
    let held = apply(
        &s,
        &with_note(
            request(SetupAction::Hold, SetupRole::SetupManager),
            "client on leave",
        ),
    );
    assert_eq!(held.status, SetupStatus::OnHold);
    let mut approve = request(SetupAction::Approve, SetupRole::Client);
    approve.approved = Some("preview".to_owned());
    assert!(refused(&held, &approve).contains("on hold"));
    assert!(
        refused(
            &held,
            &with_note(request(SetupAction::Hold, SetupRole::OrderAdmin), "again")
        )
        .contains("already on hold")
    );
    let back = apply(&held, &request(SetupAction::Release, SetupRole::OrderAdmin));
    assert_eq!(back, s);
    assert!(
        refused(&s, &request(SetupAction::Release, SetupRole::SetupManager))
            .contains("not on hold")
    );
}

#[test]
fn cancelling_cancels_only_open_setups() {
    let s = started();
    let step = cancel(&s, "customer withdrew").expect("open");
    assert_eq!(step.after.status, SetupStatus::Cancelled);
    assert!(cancel(&step.after, "again").is_none());
    let mut done = s;
    done.status = SetupStatus::Completed;
    assert!(cancel(&done, "too late").is_none());
}
