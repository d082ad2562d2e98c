-- The inventory worker's tables: stock per SKU and warehouse, changed only through an
-- append-only movement ledger; reservations per order line and warehouse; backorders; the
-- per-SKU level sequence of `stock.level_changed`; and the catalog projection it needs
-- (GTINs for listings).
--
-- Lock order, the same in every handler so that concurrent handlers queue instead of
-- deadlocking: the order's row in `orders`, then `levels` rows (by sku), then `stock` rows
-- (by sku, warehouse_id), then `backorders` rows (oldest first).

select orderly_messaging.install('inventory');

-- Stock locations. Created on first sight (an adjustment naming a new warehouse); the lower
-- `priority`, the more preferred when allocating (ties broken by warehouse id).
create table inventory.warehouses (
  warehouse_id text        primary key,
  priority     integer     not null default 100,
  created_at   timestamptz not null default now()
);

-- One row per SKU ever seen. It is the SKU's lock (every handler that changes a SKU's stock,
-- or reads it to allocate, locks this row first, so even a SKU with no stock row yet has
-- one place to serialise on) and the counter of its `stock.level_changed` messages.
create table inventory.levels (
  sku      text   primary key,
  sequence bigint not null default 0 check (sequence >= 0)
);

-- Current stock. Never written except together with the movements that explain it; the
-- CHECK is the last line of defence against overselling (the handlers refuse earlier, with
-- a reason).
create table inventory.stock (
  warehouse_id        text        not null references inventory.warehouses,
  sku                 text        not null references inventory.levels,
  on_hand             bigint      not null default 0,
  reserved            bigint      not null default 0,
  version             bigint      not null default 0,
  -- `as_of` of the newest absolute count applied: an older count arriving late is ignored.
  last_adjusted_as_of timestamptz,
  updated_at          timestamptz not null default clock_timestamp(),
  primary key (sku, warehouse_id),
  constraint stock_levels_valid
    check (reserved >= 0 and on_hand >= 0 and reserved <= on_hand and on_hand <= 4294967295)
);

-- The append-only ledger: every change of `stock` is one row here, so `stock` always equals
-- the sum of its movements (`orderly inventory check` verifies it). `source_key` names the
-- business fact that caused the movement; the unique key makes each fact apply once
-- whatever message carried it:
--   adjustment   `<source>/<reference>`
--   reservation  `<order_id>/<line_id>`
--   release      `<cancellation key>/<line_id>` (request id, else message id)
--   dispatch     `<shipment_id>/<line_id>`
create table inventory.movements (
  id                bigint generated always as identity primary key,
  warehouse_id      text        not null,
  sku               text        not null,
  kind              text        not null
    check (kind in ('adjustment', 'reservation', 'release', 'dispatch')),
  on_hand_delta     bigint      not null,
  reserved_delta    bigint      not null,
  order_id          uuid,
  line_id           text,
  source_key        text        not null,
  source_message_id uuid        not null,
  created_at        timestamptz not null default clock_timestamp(),
  unique (kind, source_key, warehouse_id, sku),
  check ((order_id is null) = (kind = 'adjustment'))
);
create index movements_stock on inventory.movements (sku, warehouse_id);
create index movements_order on inventory.movements (order_id) where order_id is not null;

-- Inventory's view of an order: whether it is reserved, waiting for stock, or cancelled.
-- One row per order id makes `order.accepted` idempotent by order (the insert is the claim:
-- a concurrent duplicate waits on it and then finds the row). `pending` exists only inside
-- the transaction that claims the order.
create table inventory.orders (
  order_id   uuid        primary key,
  store_id   text        not null,
  state      text        not null
    check (state in ('pending', 'reserved', 'backordered', 'cancelled')),
  revision   bigint,
  placed_at  timestamptz,
  updated_at timestamptz not null default clock_timestamp()
);

-- Units reserved for an order line in a warehouse, and what became of them. Open units are
-- `quantity - released - dispatched`; per stock row they add up to `stock.reserved`.
create table inventory.reservations (
  order_id     uuid        not null references inventory.orders,
  line_id      text        not null,
  warehouse_id text        not null,
  sku          text        not null,
  quantity     bigint      not null check (quantity > 0),
  released     bigint      not null default 0,
  dispatched   bigint      not null default 0,
  created_at   timestamptz not null default clock_timestamp(),
  primary key (order_id, line_id, warehouse_id),
  check (released >= 0 and dispatched >= 0 and released + dispatched <= quantity)
);
create index reservations_stock on inventory.reservations (sku, warehouse_id);

-- Orders waiting for stock, served oldest first (by `placed_at`, then when they were
-- backordered, then id) when an adjustment or a release brings some.
create table inventory.backorders (
  order_id    uuid        primary key references inventory.orders,
  store_id    text        not null,
  lines       jsonb       not null,
  skus        text[]      not null,
  placed_at   timestamptz not null,
  created_at  timestamptz not null default clock_timestamp(),
  correlation text        not null
);
create index backorders_skus on inventory.backorders using gin (skus);
create index backorders_age on inventory.backorders (placed_at, created_at, order_id);

-- Cancellations already applied (by request id, else message id), so a re-sent
-- `order.cancelled` for some lines releases nothing twice.
create table inventory.cancellations (
  cancel_key text        primary key,
  order_id   uuid        not null,
  created_at timestamptz not null default clock_timestamp()
);

-- The catalog as inventory needs it, fed by `catalog.product_upserted` (newest wins).
create table inventory.products (
  sku           text        primary key,
  gtins         text[]      not null default '{}',
  stock_tracked boolean     not null default true,
  active        boolean     not null default true,
  updated_at    timestamptz not null
);
