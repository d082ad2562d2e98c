-- The notifications worker's schema: store settings (rules, templates, staff), what it knows
-- about each order (contact, what was notified), the requests it made and their receipts,
-- suppressions, receipts it could not match, and merchant webhooks (endpoints, the durable
-- delivery queue, the attempt log).
--
-- Every effect has a unique key, so a redelivered or replayed message finds its effect
-- already there: requests by dedup key (order, event, reference, audience, recipient),
-- deliveries by (endpoint, event id) and (endpoint, order, sequence).

select orderly_messaging.install('notifications');

-- The latest `store.notification_settings_updated` per store (highest revision wins), whole.
create table notifications.store_settings (
  store_id   text        primary key,
  revision   bigint      not null check (revision >= 1),
  settings   jsonb       not null,
  updated_at timestamptz not null default now()
);

-- What the worker knows about an order: how to reach the customer (from the latest
-- `order.status_changed`) and what was already notified (the staleness watermark).
create table notifications.orders (
  order_id          uuid        primary key,
  store_id          text        not null,
  external_order_id text        not null,
  customer          jsonb       not null,
  -- Highest status change sequence seen, and the contact that came with it.
  status_sequence   bigint      not null default 0,
  -- Highest status change sequence notified, and highest status rank notified.
  notified_sequence bigint      not null default 0,
  notified_rank     integer     not null default 0,
  updated_at        timestamptz not null default now()
);

-- Per shipment, how far its notifications went (dispatched 1, exception 2, delivered 3).
create table notifications.shipments (
  shipment_id   uuid    primary key,
  order_id      uuid    not null,
  notified_rank integer not null default 0
);

-- Events about an order whose contact is not known yet (a shipment event that overtook the
-- order's first status change). Handled, in arrival order, when the contact arrives.
create table notifications.parked_events (
  message_id uuid        primary key,
  order_id   uuid        not null,
  position   bigint      generated always as identity,
  envelope   jsonb       not null,
  parked_at  timestamptz not null default now()
);
create index parked_events_order on notifications.parked_events (order_id, position);

-- Every notification requested. A retry is a new request (new id, attempt + 1) pointing at
-- the first one.
create table notifications.requests (
  request_id       uuid        primary key,
  position         bigint      generated always as identity,
  dedup_key        text        not null unique,
  store_id         text        not null,
  order_id         uuid,
  event            text        not null,
  audience         text        not null check (audience in ('customer', 'staff')),
  template         text        not null,
  channel          text        not null,
  recipient        text        not null,
  locale           text        not null,
  attempt          integer     not null default 1 check (attempt >= 1),
  first_request_id uuid,
  cause_message_id uuid        not null,
  -- requested: waiting for a receipt; sent; retried: failed and requested again;
  -- failed: failed for good (permanent, or out of attempts): operators look at these.
  status           text        not null default 'requested'
                   check (status in ('requested', 'sent', 'retried', 'failed')),
  payload          jsonb       not null,
  requested_at     timestamptz not null default now(),
  receipt_at       timestamptz,
  provider         text,
  provider_message_id text,
  error            text,
  permanent        boolean
);
create index requests_order on notifications.requests (order_id, position);
create index requests_failed on notifications.requests (requested_at) where status = 'failed';

-- Notifications not requested, and why (stale event, no recipient, no template).
create table notifications.suppressions (
  id               bigint      generated always as identity primary key,
  store_id         text        not null,
  order_id         uuid,
  event            text        not null,
  reference        text        not null,
  audience         text,
  reason           text        not null,
  cause_message_id uuid        not null,
  created_at       timestamptz not null default now(),
  unique (cause_message_id, event, reference, audience)
);
create index suppressions_order on notifications.suppressions (order_id, id);

-- Receipts (`notification.sent` / `.failed`) naming a request this worker never made, kept
-- for operators rather than dropped.
create table notifications.unknown_receipts (
  message_id  uuid        primary key,
  request_id  uuid        not null,
  kind        text        not null check (kind in ('sent', 'failed')),
  order_id    uuid,
  payload     jsonb       not null,
  received_at timestamptz not null default now()
);

-- Merchant webhook endpoints (`webhook.endpoint_registered`, highest revision wins).
create table notifications.webhook_endpoints (
  endpoint_id          uuid        primary key,
  store_id             text        not null,
  revision             bigint      not null check (revision >= 1),
  url                  text        not null,
  event_types          text[]      not null,
  secret               text        not null,
  enabled              boolean     not null,
  allow_private        boolean     not null,
  consecutive_failures integer     not null default 0,
  disabled_at          timestamptz,
  disabled_reason      text,
  updated_at           timestamptz not null default now()
);
create index webhook_endpoints_store on notifications.webhook_endpoints (store_id);

-- Per endpoint and order: the last delivery sequence given out, and the highest status
-- change sequence queued (older status changes are not sent: they would arrive out of order).
create table notifications.webhook_chains (
  endpoint_id          uuid   not null,
  order_key            text   not null,
  last_sequence        bigint not null,
  last_status_sequence bigint not null default 0,
  primary key (endpoint_id, order_key)
);

-- The durable delivery queue: one row per (endpoint, event), inserted in the transaction
-- that handled the event. Delivered strictly in `sequence` order per (endpoint, order): a
-- delivery waits while an earlier one of its chain is pending.
create table notifications.webhook_deliveries (
  delivery_id     uuid        primary key,
  endpoint_id     uuid        not null references notifications.webhook_endpoints (endpoint_id),
  store_id        text        not null,
  order_key       text        not null,
  sequence        bigint      not null check (sequence >= 1),
  event_id        uuid        not null,
  event_type      text        not null,
  body            text        not null,
  -- pending: to be sent (or being retried); delivered; failed: given up after the last attempt.
  status          text        not null default 'pending'
                  check (status in ('pending', 'delivered', 'failed')),
  attempts        integer     not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error      text,
  delivered_at    timestamptz,
  replays         integer     not null default 0,
  created_at      timestamptz not null default now(),
  unique (endpoint_id, event_id),
  unique (endpoint_id, order_key, sequence)
);
create index webhook_deliveries_due on notifications.webhook_deliveries (next_attempt_at)
  where status = 'pending';
create index webhook_deliveries_chain on notifications.webhook_deliveries (endpoint_id, order_key, sequence)
  where status = 'pending';
create index webhook_deliveries_store on notifications.webhook_deliveries (store_id, created_at);

-- Every attempt, for the delivery log.
create table notifications.webhook_attempts (
  delivery_id  uuid        not null references notifications.webhook_deliveries (delivery_id),
  attempt      integer     not null,
  attempted_at timestamptz not null default now(),
  status_code  integer,
  error        text,
  duration_ms  integer     not null,
  primary key (delivery_id, attempt, attempted_at)
);
