-- The admin API's actions: every command it sent (a request message through its outbox,
-- in the transaction that recorded the command) and what became of it, and the audit log
-- of every staff action.

-- A command: one request message about an order, sent once. `command_id` is the message's
-- `message_id` (and its `request_id` where the message has one), so the answer
-- (`order.request_answered`, caused by it) finds it. A staff member's `Idempotency-Key`
-- names one command: the same key again returns it (a different request under the same
-- key is refused: `request_sha256` is what the key was first used for).
create table api.commands (
  command_id      uuid        primary key,
  staff_id        uuid        not null references api.staff,
  token_id        uuid        not null,
  idempotency_key text        check (length(idempotency_key) between 1 and 255),
  request_sha256  text        not null,
  action          text        not null check (action in ('cancel', 'refund', 'note', 'resolve_exception', 'resend_notification',
                                                   'hold', 'release')),
  order_id        uuid        not null,
  store_id        text        not null,
  message_type    text        not null,
  payload         jsonb       not null,
  status          text        not null default 'pending'
                  check (status in ('pending', 'applied', 'partially_applied', 'refused', 'duplicate')),
  detail          text,
  refused         jsonb,
  created_at      timestamptz not null default now(),
  answered_at     timestamptz,
  unique (staff_id, idempotency_key)
);
create index commands_order on api.commands (order_id, created_at);

-- Every staff action the API was asked to take, whatever became of it: who (staff and
-- token), what (`action`, e.g. `orders.cancel`), on which order or exception, from which
-- address, the HTTP answer and, for an accepted one, the command it sent (whose outcome
-- is in `commands`). Append-only.
create table api.audit_log (
  entry_id        bigint      generated always as identity primary key,
  at              timestamptz not null default now(),
  staff_id        uuid        not null,
  staff_email     text        not null,
  token_id        uuid        not null,
  action          text        not null,
  order_id        uuid,
  store_id        text,
  target          text,
  command_id      uuid,
  client_addr     text,
  forwarded_for   text,
  http_status     smallint    not null,
  outcome         text        not null
                  check (outcome in ('accepted', 'replayed', 'refused', 'invalid')),
  detail          text
);
create index audit_log_order on api.audit_log (order_id, entry_id) where order_id is not null;
create index audit_log_staff on api.audit_log (staff_id, entry_id);

-- Orders waiting for an operator, for the order-exceptions list.
create index orders_on_hold on api.orders (placed_at desc, order_id desc)
  where status = 'on_hold' or (status is null and exceptions is not null);

-- An operator's hold (`order.hold_changed`): a flag beside the status, the newest by the
-- order's hold sequence.
alter table api.orders
  add column held            boolean     not null default false,
  add column hold_sequence   integer     not null default 0,
  add column hold_reason     text,
  add column hold_changed_at timestamptz;
