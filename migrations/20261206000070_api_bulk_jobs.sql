-- Bulk actions (`POST /api/v1/admin/orders/bulk`): a job sends one command per order of a
-- set fixed when the job was created (the list's filter, or ids), through the outbox, a
-- batch of items per transaction, so a crash mid-job resumes where the last commit left it
-- and no order is sent a command twice.

-- A job: who asked (staff and token, like a command), the action and its parameters as
-- asked (the body of the single action), what it was asked for (`selection`: the filter or
-- the ids), and where it stands. A staff member's `Idempotency-Key` names one job.
create table api.jobs (
  job_id          uuid        primary key,
  staff_id        uuid        not null references api.staff,
  token_id        uuid        not null,
  idempotency_key text        check (length(idempotency_key) between 1 and 255),
  request_sha256  text        not null,
  action          text        not null
                  check (action in ('cancel', 'note', 'resend_notification', 'hold', 'release')),
  params          jsonb       not null,
  selection       jsonb       not null,
  dry_run         boolean     not null,
  -- `running` while items wait to be sent; `completed` when every item was sent or skipped
  -- (a dry run is completed when created); `cancelled` when stopped before that.
  state           text        not null default 'running'
                  check (state in ('running', 'completed', 'cancelled')),
  -- What the job says about its selection as a whole (a store asked for that the token does
  -- not see).
  notes           jsonb       not null default '[]',
  client_addr     text,
  forwarded_for   text,
  created_at      timestamptz not null default now(),
  finished_at     timestamptz,
  cancelled_by    text,
  -- The creating request's W3C `traceparent`: every command of the job continues it.
  traceparent     text,
  unique (staff_id, idempotency_key)
);
create index jobs_running on api.jobs (created_at) where state = 'running';

-- One order of a job, in the list's order (`position` from 1): `pending` until its command
-- is sent (`sent`, with the command), `skipped` with a reason (`not_visible`: no such order
-- in the token's stores; `not_applicable`: the order's state makes the action meaningless;
-- `job_cancelled`), or, in a dry run, `would_send`.
create table api.job_items (
  job_id      uuid     not null references api.jobs,
  position    integer  not null check (position > 0),
  order_id    uuid     not null,
  store_id    text,
  state       text     not null check (state in ('pending', 'sent', 'skipped', 'would_send')),
  reason      text     check (reason in ('not_visible', 'not_applicable', 'job_cancelled')),
  detail      text,
  command_id  uuid,
  primary key (job_id, position),
  check ((state = 'skipped') = (reason is not null)),
  check ((state = 'sent') = (command_id is not null))
);
create index job_items_pending on api.job_items (job_id, position) where state = 'pending';

-- A command a job sent names it.
alter table api.commands add column job_id uuid;
create index commands_job on api.commands (job_id) where job_id is not null;
