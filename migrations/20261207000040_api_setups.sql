-- The api worker's read model of setups (issue 17), from `setup.status_changed` and
-- `setup.overdue`: one row per setup at its highest sequence, and its history.

create table api.setups (
  setup_id          uuid        primary key,
  order_id          uuid        not null,
  line_id           text        not null,
  store_id          text        not null,
  sku               text        not null,
  template_version  integer     not null,
  status            text        not null,
  stage             text        not null,
  stage_index       integer     not null,
  loops             integer     not null,
  -- The highest `setup.status_changed` applied (an older one only adds to the history).
  sequence          integer     not null,
  started_at        timestamptz not null,
  updated_at        timestamptz not null,
  -- Set by `setup.overdue` for the visit it names (`overdue_sequence`); a later change
  -- (a new stage visit or a status) makes the flag stale, so readers compare sequences.
  overdue_due_at    timestamptz,
  overdue_sequence  integer
);
create index setups_by_update on api.setups (updated_at desc, setup_id desc);
create index setups_by_order on api.setups (order_id);
create index setups_by_store_status on api.setups (store_id, status, updated_at desc);

create table api.setup_history (
  setup_id     uuid        not null,
  sequence     integer     not null,
  from_status  text,
  to_status    text        not null,
  stage        text        not null,
  stage_index  integer     not null,
  loops        integer     not null,
  actor_role   text,
  actor_id     text,
  request_id   uuid,
  detail       text        not null,
  at           timestamptz not null,
  primary key (setup_id, sequence)
);

-- The command resource of a staff step on a setup (`POST /api/v1/admin/setups/{id}/steps`),
-- answered by `setup.request_answered`.
alter table api.commands drop constraint commands_action_check;
alter table api.commands
  add constraint commands_action_check check (action in (
    'cancel', 'refund', 'note', 'resolve_exception', 'resend_notification', 'hold', 'release',
    'change_address', 'setup_step'
  ));

-- The setup templates the catalog published (`catalog.product_upserted`'s `setup`), as
-- published: the client's intake page is rendered from the version their setup follows.
create table api.setup_templates (
  sku          text    not null,
  version      integer not null,
  template     jsonb   not null,
  primary key (sku, version)
);
