-- The api worker's schema: the operators' read model of orders, built only from the events
-- the other workers publish (never from their tables), and the staff who may read it.
--
-- Every projection row is written by the api worker's consumer in the transaction that
-- records the message in its inbox, so each event has its effect once. Events about one
-- order can arrive in any order: rows are upserted field by field, the status follows the
-- per-order `sequence` of `order.status_changed` (an older one is kept in the history and
-- changes nothing), and the header follows the order's `revision`.

select orderly_messaging.install('api');

-- One row per order the api has heard of (from an `order.*` event: each names the order's
-- store, so its scope is known from the first one; `order.address_changed` alone does not
-- name the channel, hence nullable). `placed_at` is the order's own time once
-- `order.accepted` told it (`placed_at_known`); before that (an order on hold, or a status
-- change that overtook the acceptance) it is the time of the first event, so the order is
-- listed at all. Header fields stay null until an event carries them.
create table api.orders (
  order_id           uuid        primary key,
  store_id           text        not null,
  channel            text,
  marketplace        text,
  external_order_id  text        not null,
  revision           integer     not null default 0,
  placed_at          timestamptz not null,
  placed_at_known    boolean     not null default false,
  status             text,
  status_sequence    bigint      not null default 0,
  status_changed_at  timestamptz,
  currency           text,
  total              numeric,
  shipping           numeric,
  discount           numeric,
  tax                numeric,
  prices_include_tax boolean,
  customer_name      text,
  customer_email     text,
  customer           jsonb,
  billing_address    jsonb,
  shipping_address   jsonb,
  address_revision   integer     not null default 0,
  lines              jsonb,
  payment            jsonb,
  exceptions         jsonb,
  completed_at       timestamptz,
  invoice_numbers    jsonb,
  updated_at         timestamptz not null default now()
);
-- The list's keyset (newest first, ties broken by id), per store and overall.
create index orders_placed on api.orders (placed_at desc, order_id desc);
create index orders_store_placed on api.orders (store_id, placed_at desc, order_id desc);
create index orders_external on api.orders (external_order_id);

-- Every status change the api received, by its per-order sequence (duplicates and stale
-- ones included: the history is what happened, the order's status the newest of it).
create table api.status_history (
  order_id   uuid        not null,
  sequence   bigint      not null,
  from_status text,
  to_status  text        not null,
  reason     text,
  changed_at timestamptz not null,
  primary key (order_id, sequence)
);

-- Shipments as fulfillment announced them: requested, dispatched, delivered, exceptions. Like the
-- other tables of an order, keyed by the order id without a foreign key: a shipment's or a
-- document's event may arrive before the first event about its order.
create table api.shipments (
  shipment_id     uuid        primary key,
  order_id        uuid        not null,
  warehouse_id    text,
  ship_to         jsonb,
  shipping_method text,
  items           jsonb,
  requested_at    timestamptz,
  carrier         text,
  tracking_number text,
  tracking_url    text,
  dispatched_at   timestamptz,
  delivered_at    timestamptz,
  -- The newest `shipment.exception` (by its event time): delivery failed, returned, or
  -- something that needs a human.
  exception_status      text,
  exception_raw_status  text,
  exception_description text,
  exception_at          timestamptz
);
create index shipments_order on api.shipments (order_id);

-- Invoices and credit notes as invoicing announced them (immutable there, so the first
-- announcement is kept).
create table api.documents (
  document_id    uuid        primary key,
  order_id       uuid        not null,
  kind           text        not null check (kind in ('invoice', 'credit_note')),
  number         text        not null,
  invoice_id     uuid,
  invoice_number text,
  reason         text,
  issued_at      timestamptz not null,
  currency       text        not null,
  vat_treatment  text        not null,
  net            numeric     not null,
  tax            numeric     not null,
  gross          numeric     not null,
  pdf_uri        text        not null,
  pdf_sha256     text        not null,
  pdf_size_bytes bigint      not null
);
create index documents_order on api.documents (order_id);

-- Cancellations (whole order or lines), one row per `order.cancelled`.
create table api.cancellations (
  message_id   uuid        primary key,
  order_id     uuid        not null,
  scope        text        not null,
  lines        jsonb       not null,
  reason       text        not null,
  cancelled_at timestamptz not null
);
create index cancellations_order on api.cancellations (order_id);

-- Staff: who may use the admin API. The role's permissions are a table in the code
-- (`domain::access`); the CHECK repeats the role names it knows.
create table api.staff (
  staff_id   uuid        primary key,
  email      text        not null unique check (email = lower(email) and length(email) between 3 and 254),
  role       text        not null check (role in ('order_admin', 'fulfillment_team', 'account_manager', 'setup_manager')),
  active     boolean     not null default true,
  created_at timestamptz not null default now()
);

-- The stores a staff member is limited to. None: every store, except for account managers,
-- who see only the stores assigned to them.
create table api.staff_stores (
  staff_id uuid not null references api.staff on delete cascade,
  store_id text not null,
  primary key (staff_id, store_id)
);

-- API tokens: only the SHA-256 of the token is stored; `prefix` (its first characters) lets
-- an operator name one to revoke it.
create table api.tokens (
  token_id   uuid        primary key,
  staff_id   uuid        not null references api.staff on delete cascade,
  prefix     text        not null,
  sha256     bytea       not null unique check (length(sha256) = 32),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);
create index tokens_prefix on api.tokens (prefix);
