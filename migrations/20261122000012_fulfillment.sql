-- The fulfillment worker's schema: its copy of accepted orders, the shipments it made of
-- them (one per warehouse allocation), the carriers' tracking history, and the bookkeeping
-- that makes every outgoing event happen once (notices, invoice requests).
--
-- Every business effect has a unique key, so a redelivered or replayed message finds its
-- effect already there: shipments by (order, warehouse), tracking events by (shipment,
-- source message), notices by (shipment, kind), invoice requests by order or shipment.

select orderly_messaging.install('fulfillment');

-- The latest invoicing policy per store, from `store.invoice_settings_updated` (highest
-- revision wins). Only the timing: the rest of the seller's settings are invoicing's.
create table fulfillment.store_settings (
  store_id       text        primary key,
  revision       bigint      not null check (revision >= 1),
  invoice_timing text        not null check (invoice_timing in ('on_order', 'on_shipment')),
  updated_at     timestamptz not null default now()
);

-- The accepted order as fulfillment needs it (from `order.accepted`; a higher revision
-- replaces the header and lines, a lower or equal one changes nothing).
create table fulfillment.orders (
  order_id           uuid        primary key,
  store_id           text        not null,
  channel            text        not null,
  marketplace        text,
  external_order_id  text        not null,
  revision           bigint      not null check (revision >= 1),
  placed_at          timestamptz not null,
  currency           text        not null,
  prices_include_tax boolean     not null,
  customer           jsonb       not null,
  billing_address    jsonb       not null,
  shipping_address   jsonb       not null,
  payment            jsonb       not null,
  shipping           numeric     not null check (shipping >= 0),
  discount           numeric     not null check (discount >= 0),
  tax                numeric              check (tax >= 0),
  total              numeric     not null check (total >= 0),
  -- The store's invoice timing when the order was accepted: the order keeps it even if the
  -- store changes its policy later, so an order is never invoiced twice or not at all.
  invoice_timing     text        not null check (invoice_timing in ('on_order', 'on_shipment')),
  -- Per-shipment invoicing: shipping goes on the first invoice, the order discount on the
  -- first ones until it is used up.
  shipping_invoiced  boolean     not null default false,
  discount_invoiced  numeric     not null default 0 check (discount_invoiced >= 0),
  -- Set when `stock.reserved` was turned into shipments: a second one creates nothing.
  shipments_created_at timestamptz,
  received_at        timestamptz not null default now(),
  updated_at         timestamptz not null default now()
);
create index orders_store on fulfillment.orders (store_id, external_order_id);

create table fulfillment.order_lines (
  order_id          uuid    not null references fulfillment.orders (order_id) on delete cascade,
  line_id           text    not null,
  position          integer not null,
  sku               text    not null,
  gtin              text,
  title             text    not null,
  quantity          bigint  not null check (quantity >= 1),
  unit_price        numeric not null check (unit_price >= 0),
  discount          numeric not null check (discount >= 0),
  tax_category      text    not null,
  -- How much of the line per-shipment invoices have covered so far.
  invoiced_quantity bigint  not null default 0 check (invoiced_quantity >= 0),
  invoiced_discount numeric not null default 0 check (invoiced_discount >= 0),
  primary key (order_id, line_id)
);

-- Cancellations as received (`order.cancelled`), keyed by the cancel request (or the message
-- when there is none). Kept even for orders fulfillment has not seen yet: shipments made
-- later are reconciled against them.
create table fulfillment.order_cancellations (
  order_id    uuid        not null,
  cancel_key  uuid        not null,
  scope       text        not null check (scope in ('order', 'lines')),
  lines       jsonb       not null,
  reason      text        not null,
  received_at timestamptz not null default now(),
  primary key (order_id, cancel_key)
);

-- One shipment per warehouse allocation.
create table fulfillment.shipments (
  shipment_id     uuid        primary key,
  order_id        uuid        not null references fulfillment.orders (order_id),
  warehouse_id    text        not null,
  -- Position of the allocation in `stock.reserved` (warehouse preference order).
  position        integer     not null,
  status          text        not null check (status in (
                    'requested', 'label_created', 'in_transit', 'out_for_delivery', 'delivered',
                    'delivery_failed', 'exception', 'returned', 'cancelled')),
  -- Carrier time of the event that moved the shipment into `status`.
  status_at       timestamptz,
  -- The tracking event (its source message id) that moved it there.
  status_cause    uuid,
  -- When it left the warehouse (carrier time of the first dispatched state).
  dispatched_at   timestamptz,
  -- The first tracking number bound to it (see tracking_numbers for all).
  carrier         text,
  tracking_number text,
  cancelled_at    timestamptz,
  cancel_reason   text,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  unique (order_id, warehouse_id)
);
create index shipments_status on fulfillment.shipments (status);

create table fulfillment.shipment_items (
  shipment_id       uuid    not null references fulfillment.shipments (shipment_id) on delete cascade,
  line_id           text    not null,
  position          integer not null,
  sku               text    not null,
  gtin              text,
  title             text    not null,
  -- Units still to ship (cancellations lower it, down to 0).
  quantity          bigint  not null check (quantity >= 0),
  -- Units allocated by inventory.
  allocated_quantity bigint not null check (allocated_quantity >= 1),
  primary key (shipment_id, line_id)
);

-- Which shipment a carrier's tracking number belongs to. Bound by the first update that
-- names both; later updates may name only the tracking number.
create table fulfillment.tracking_numbers (
  carrier          text        not null,
  tracking_number  text        not null,
  shipment_id      uuid        not null references fulfillment.shipments (shipment_id),
  bound_at         timestamptz not null default now(),
  bound_by_message uuid        not null,
  primary key (carrier, tracking_number)
);
create index tracking_numbers_shipment on fulfillment.tracking_numbers (shipment_id);

-- Every tracking event, in the sender's words and mapped onto ours (null when the word is
-- unknown or carries no status). The shipment's state is derived from these.
create table fulfillment.tracking_events (
  id                    bigint generated always as identity primary key,
  shipment_id           uuid        not null references fulfillment.shipments (shipment_id),
  source_message_id     uuid        not null,
  carrier               text        not null,
  tracking_number       text        not null,
  vocabulary            text        not null,
  raw_status            text        not null,
  mapped_status         text,
  description           text,
  location              jsonb,
  event_at              timestamptz not null,
  estimated_delivery_at timestamptz,
  received_at           timestamptz not null default now(),
  -- Whether the shipment's state changed when this event arrived.
  changed_state         boolean     not null default false,
  unique (shipment_id, source_message_id)
);
create index tracking_events_shipment on fulfillment.tracking_events (shipment_id, event_at);

-- Tracking events that named no shipment we know, kept for operators (the message itself is
-- dead-lettered). When a later update binds the tracking number to a shipment, the waiting
-- events are moved into that shipment's history and marked resolved.
create table fulfillment.unmatched_tracking_events (
  id                    bigint generated always as identity primary key,
  message_id            uuid        not null unique,
  shipment_id           uuid,
  carrier               text        not null,
  tracking_number       text        not null,
  vocabulary            text        not null,
  raw_status            text        not null,
  description           text,
  location              jsonb,
  event_at              timestamptz not null,
  estimated_delivery_at timestamptz,
  reason                text        not null,
  received_at           timestamptz not null default now(),
  resolved_shipment_id  uuid,
  resolved_at           timestamptz
);
create index unmatched_open on fulfillment.unmatched_tracking_events (carrier, tracking_number)
  where resolved_at is null;

-- Events published about a shipment that must happen once: `dispatched`, `delivered`, and
-- one `exception:<status>` per exception status entered.
create table fulfillment.shipment_notices (
  shipment_id uuid        not null references fulfillment.shipments (shipment_id),
  kind        text        not null,
  message_id  uuid        not null,
  emitted_at  timestamptz not null default now(),
  primary key (shipment_id, kind)
);

-- `invoice.requested` sent: once per order (on order) or once per shipment (on shipment).
create table fulfillment.invoice_requests (
  request_id   uuid        primary key,
  order_id     uuid        not null,
  shipment_id  uuid        unique,
  timing       text        not null check (timing in ('on_order', 'on_shipment')),
  requested_at timestamptz not null default now(),
  check ((timing = 'on_shipment') = (shipment_id is not null))
);
create unique index invoice_requests_once_per_order on fulfillment.invoice_requests (order_id)
  where shipment_id is null;
