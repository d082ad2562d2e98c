-- Setups of service products (issue 17): the setups worker's schema, and what the orders
-- worker needs to complete an order only when its setups are completed.

select orderly_messaging.install('setups');

-- Every setup template version received from the catalog, as published: a version never
-- changes once received (a changed template must come with a higher version), so a setup
-- pinned to (sku, version) always follows the stages it started with.
create table setups.templates (
  sku          text        not null,
  version      integer     not null check (version >= 1),
  template     jsonb       not null,
  received_at  timestamptz not null default now(),
  primary key (sku, version)
);

-- One setup per service line of an accepted order.
create table setups.setups (
  setup_id          uuid        primary key,
  order_id          uuid        not null,
  line_id           text        not null,
  store_id          text        not null,
  sku               text        not null,
  quantity          integer     not null check (quantity > 0),
  cancelled_units   integer     not null default 0 check (cancelled_units >= 0),
  template_version  integer     not null,
  status            text        not null check (status in (
    'pending_intake', 'intake_review', 'in_progress', 'awaiting_client', 'qa', 'on_hold',
    'completed', 'cancelled')),
  stage_index       integer     not null check (stage_index >= 0),
  -- The status an `on_hold` setup goes back to when released.
  held_from         text,
  loops             integer     not null default 0,
  -- The number of the last `setup.status_changed` (per setup, from 1).
  sequence          integer     not null,
  -- Intake submissions so far (a correction is a new one).
  submissions       integer     not null default 0,
  started_at        timestamptz not null,
  updated_at        timestamptz not null,
  -- The SLA clock of the current stage visit (business seconds counted before
  -- `clock_since`; `clock_since` null while it is stopped: waiting for the client, on
  -- hold, finished), when the stage is due (null while stopped) and when it was found
  -- overdue (one `setup.overdue` per visit).
  sla_spent_seconds bigint      not null default 0,
  clock_since       timestamptz,
  due_at            timestamptz,
  overdue_at        timestamptz,
  unique (order_id, line_id),
  foreign key (sku, template_version) references setups.templates (sku, version),
  check ((status = 'on_hold') = (held_from is not null))
);
create index setups_by_status on setups.setups (status, updated_at);
create index setups_due on setups.setups (due_at) where due_at is not null and overdue_at is null;

-- Every change of every setup, append-only: the stage history.
create table setups.history (
  setup_id     uuid        not null references setups.setups,
  sequence     integer     not null,
  from_status  text,
  to_status    text        not null,
  stage_index  integer     not null,
  action       text,
  actor_role   text,
  actor_id     text,
  request_id   uuid,
  detail       text        not null,
  at           timestamptz not null,
  primary key (setup_id, sequence)
);

-- Intake submissions, immutable: a correction is a new row with its reason.
create table setups.intake_submissions (
  setup_id      uuid        not null references setups.setups,
  n             integer     not null,
  stage_index   integer     not null,
  field_values  jsonb       not null,
  reason        text,
  submitted_by  text        not null,
  request_id    uuid        not null,
  at            timestamptz not null,
  primary key (setup_id, n)
);

-- The client's decisions at approval stages, each bound to what they were shown.
create table setups.approvals (
  setup_id     uuid        not null references setups.setups,
  request_id   uuid        primary key,
  stage_index  integer     not null,
  decision     text        not null check (decision in ('approved', 'changes_requested')),
  approved     text,
  note         text,
  decided_by   text        not null,
  at           timestamptz not null,
  check ((decision = 'approved') = (approved is not null))
);

-- QA checklist results.
create table setups.qa_results (
  setup_id     uuid        not null references setups.setups,
  request_id   uuid        primary key,
  stage_index  integer     not null,
  results      jsonb       not null,
  passed       boolean     not null,
  recorded_by  text        not null,
  at           timestamptz not null
);

-- Every request received and what became of it (the audit of staff and client actions,
-- refusals included); a request id seen again is answered the same without acting twice.
create table setups.requests (
  request_id   uuid        primary key,
  setup_id     uuid        not null,
  order_id     uuid        not null,
  action       text        not null,
  actor_role   text        not null,
  actor_id     text        not null,
  outcome      text        not null check (outcome in ('applied', 'refused')),
  detail       text        not null,
  field_errors jsonb       not null default '[]',
  at           timestamptz not null
);
create index requests_by_setup on setups.requests (setup_id, at);

-- Orders cancelled as a whole: an `order.accepted` that arrives after its cancellation
-- starts no setup.
create table setups.cancelled_orders (
  order_id     uuid        primary key,
  reason       text        not null,
  at           timestamptz not null
);

-- orders: which lines are set up (the template version matched with the line, from the
-- catalog), and which setups completed. An order completes when its shipments are
-- delivered and every setup of a line not cancelled completed.
alter table orders.products add column setup_template_version integer;
alter table orders.order_lines add column setup_template_version integer;
create index order_lines_with_setups on orders.order_lines (order_id)
  where setup_template_version is not null;
create table orders.order_setups_completed (
  order_id     uuid        not null,
  line_id      text        not null,
  setup_id     uuid        not null,
  completed_at timestamptz not null,
  primary key (order_id, line_id)
);

alter table orders.timeline drop constraint timeline_kind_known;
alter table orders.timeline
  add constraint timeline_kind_known check (kind in (
    'placed', 'accepted', 'on_hold', 'status_changed', 'completed',
    'stock_reserved', 'stock_unavailable', 'stock_released',
    'shipment_requested', 'shipment_dispatched', 'shipment_delivered', 'shipment_exception',
    'invoice_issued', 'credit_note_issued', 'notification_sent', 'notification_failed',
    'duplicate_repush', 'revision_ignored', 'revision_applied',
    'cancellation', 'cancellation_refused', 'cancel_duplicate',
    'refund', 'refund_refused', 'refund_duplicate',
    'exception_resolved', 'exception_refused', 'exception_duplicate',
    'note', 'held', 'released', 'hold_refused', 'request_duplicate',
    'address_changed', 'address_refused', 'setup_completed'
  ));
