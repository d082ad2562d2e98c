-- The orders worker's schema: orders with their line snapshots, the catalog projection used
-- to match lines, remembered GTIN mappings, order item exceptions, the fulfilment facts the
-- status machine is computed from, the timeline (audit trail), cancellation and refund
-- requests, rejected orders and customer statistics. See workers/orders/src/lib.rs.

select orderly_messaging.install('orders');

-- The catalog as orders needs it (from catalog.product_upserted): the newest `updated_at` wins.
create table orders.products (
  sku          text        primary key,
  title        text        not null,
  tax_category text        not null,
  active       boolean     not null,
  updated_at   timestamptz not null,
  received_at  timestamptz not null default now()
);

-- Every GTIN a product is sold under, normalised to 14 digits for matching.
create table orders.product_gtins (
  gtin14 text not null,
  sku    text not null references orders.products (sku) on delete cascade,
  gtin   text not null,
  primary key (gtin14, sku)
);
create index product_gtins_sku on orders.product_gtins (sku);

-- GTIN → SKU decisions operators asked to remember, per store.
create table orders.gtin_mappings (
  store_id   text        not null,
  gtin14     text        not null,
  gtin       text        not null,
  sku        text        not null,
  created_by text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (store_id, gtin14)
);

-- One row per order; (store, channel, external order id) is the business key that makes a
-- re-push update the order instead of duplicating it.
create table orders.orders (
  order_id           uuid        primary key,
  store_id           text        not null,
  channel            text        not null,
  marketplace        text,
  external_order_id  text        not null,
  revision           bigint      not null check (revision >= 1),
  status             text        not null,
  -- Last `order.status_changed` sequence sent for this order (0: none yet).
  status_sequence    bigint      not null default 0,
  -- Last timeline entry number; incrementing it also serialises work on one order.
  timeline_seq       integer     not null default 0,
  placed_at          timestamptz not null,
  currency           text        not null,
  prices_include_tax boolean     not null,
  customer           jsonb       not null,
  customer_key       text        not null,
  billing_address    jsonb       not null,
  shipping_address   jsonb       not null,
  payment            jsonb       not null,
  shipping           numeric     not null,
  discount           numeric     not null,
  tax                numeric,
  total              numeric     not null,
  -- Facts the status machine is computed from (monotonic: set once, never cleared).
  accepted_at        timestamptz,
  backordered_at     timestamptz,
  cancelled_at       timestamptz,
  completed_at       timestamptz,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint orders_business_key unique (store_id, channel, external_order_id)
);
create index orders_status on orders.orders (status);

-- Order lines with their price snapshot (as placed) and product snapshot (as matched).
-- `quantity` is what was ordered and never shrinks; cancellations add to `cancelled_quantity`.
create table orders.order_lines (
  order_id               uuid    not null references orders.orders (order_id),
  line_id                text    not null,
  position               integer not null,
  requested_sku          text,
  gtin                   text,
  gtin14                 text,
  title                  text    not null,
  quantity               bigint  not null check (quantity > 0),
  unit_price             numeric not null,
  discount               numeric not null,
  requested_tax_category text,
  sku                    text,
  tax_category           text,
  catalog_title          text,
  cancelled_quantity     bigint  not null default 0 check (cancelled_quantity between 0 and quantity),
  refunded_quantity      bigint  not null default 0 check (refunded_quantity >= 0),
  primary key (order_id, line_id)
);

-- Order item exceptions: lines no product matched. At most one open exception per line.
create table orders.item_exceptions (
  exception_id     uuid        primary key,
  order_id         uuid        not null references orders.orders (order_id),
  line_id          text        not null,
  sku              text,
  gtin             text,
  title            text        not null,
  problem          text        not null,
  status           text        not null default 'open'
                               check (status in ('open', 'resolved', 'superseded')),
  resolution       text,
  resolved_sku     text,
  remember_mapping boolean     not null default false,
  resolved_by      text,
  note             text,
  raised_at        timestamptz not null default clock_timestamp(),
  resolved_at      timestamptz
);
create unique index item_exceptions_open_line on orders.item_exceptions (order_id, line_id)
  where status = 'open';
create index item_exceptions_open on orders.item_exceptions (raised_at) where status = 'open';
create index item_exceptions_order on orders.item_exceptions (order_id);

-- What stock.reserved allocated: one shipment is expected per warehouse with units left.
create table orders.order_allocations (
  order_id     uuid    not null references orders.orders (order_id),
  warehouse_id text    not null,
  line_id      text    not null,
  sku          text    not null,
  quantity     bigint  not null check (quantity > 0),
  primary key (order_id, warehouse_id, line_id)
);

-- What stock.released gave back, accumulated per warehouse and line.
create table orders.order_releases (
  order_id     uuid    not null references orders.orders (order_id),
  warehouse_id text    not null,
  line_id      text    not null,
  quantity     bigint  not null check (quantity > 0),
  primary key (order_id, warehouse_id, line_id)
);

-- Shipments as orders hears of them (requested, dispatched, delivered, exceptions).
create table orders.order_shipments (
  shipment_id       uuid        primary key,
  order_id          uuid        not null references orders.orders (order_id),
  warehouse_id      text,
  carrier           text,
  tracking_number   text,
  tracking_url      text,
  requested_at      timestamptz,
  dispatched_at     timestamptz,
  delivered_at      timestamptz,
  last_exception    text,
  last_exception_at timestamptz
);
create index order_shipments_order on orders.order_shipments (order_id);

-- What each dispatched shipment carried: decides which lines can still be cancelled.
create table orders.order_shipment_items (
  shipment_id uuid    not null references orders.order_shipments (shipment_id),
  order_id    uuid    not null references orders.orders (order_id),
  line_id     text    not null,
  sku         text    not null,
  quantity    bigint  not null check (quantity > 0),
  primary key (shipment_id, line_id)
);
create index order_shipment_items_order on orders.order_shipment_items (order_id);

create table orders.order_invoices (
  invoice_id     uuid        primary key,
  order_id       uuid        not null references orders.orders (order_id),
  invoice_number text        not null,
  shipment_id    uuid,
  issued_at      timestamptz not null,
  currency       text        not null,
  gross          numeric     not null
);
create index order_invoices_order on orders.order_invoices (order_id);

create table orders.order_credit_notes (
  credit_note_id     uuid        primary key,
  order_id           uuid        not null references orders.orders (order_id),
  credit_note_number text        not null,
  invoice_number     text        not null,
  request_id         uuid,
  reason             text        not null,
  issued_at          timestamptz not null,
  currency           text        not null,
  gross              numeric     not null
);
create index order_credit_notes_order on orders.order_credit_notes (order_id);

-- The audit trail: one entry per message that touched the order, plus one per status change.
create table orders.timeline (
  order_id     uuid        not null references orders.orders (order_id),
  seq          integer     not null,
  at           timestamptz not null default clock_timestamp(),
  kind         text        not null,
  message_id   uuid,
  message_type text,
  producer     text,
  detail       text        not null,
  primary key (order_id, seq)
);

-- Every cancellation request and what became of it (refusals are outcomes, not errors).
create table orders.cancellation_requests (
  request_id     uuid        primary key,
  message_id     uuid        not null,
  store_id       text        not null,
  order_id       uuid,
  order_ref      jsonb       not null,
  requested_by   jsonb       not null,
  reason         text        not null,
  lines          jsonb,
  outcome        text        not null
                 check (outcome in ('cancelled', 'lines_cancelled', 'partially_refused', 'refused', 'rejected')),
  outcome_reason text,
  received_at    timestamptz not null default now()
);
create index cancellation_requests_order on orders.cancellation_requests (order_id);

-- Every refund request and what orders made of it (invoicing issues the credit note).
create table orders.refund_requests (
  request_id      uuid        primary key,
  message_id      uuid        not null,
  store_id        text        not null,
  order_id        uuid        not null,
  requested_by    jsonb       not null,
  reason          text        not null,
  lines           jsonb       not null,
  refund_shipping boolean     not null,
  outcome         text        not null
                  check (outcome in ('recorded', 'partially_refused', 'refused', 'rejected')),
  outcome_reason  text,
  received_at     timestamptz not null default now()
);
create index refund_requests_order on orders.refund_requests (order_id);

-- order.placed messages that broke their contract, for operators (the message itself is
-- dead-lettered too).
create table orders.rejected_orders (
  id                bigint generated always as identity primary key,
  message_id        uuid        not null unique,
  message_type      text        not null,
  producer          text        not null,
  store_id          text,
  channel           text,
  external_order_id text,
  field             text        not null,
  reason            text        not null,
  body              jsonb       not null,
  received_at       timestamptz not null default now()
);

-- Customer statistics, counted once per new order (never on a re-push).
create table orders.customer_stats (
  store_id       text        not null,
  customer_key   text        not null,
  orders         integer     not null,
  first_order_at timestamptz not null,
  last_order_at  timestamptz not null,
  primary key (store_id, customer_key)
);

create table orders.customer_spend (
  store_id     text    not null,
  customer_key text    not null,
  currency     text    not null,
  amount       numeric not null,
  primary key (store_id, customer_key, currency)
);
