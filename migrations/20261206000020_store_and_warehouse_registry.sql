-- Declared stores (orders) and declared warehouses (inventory): issue 13's registry.

-- The stores orders takes orders for (`store.upserted`, highest revision wins). An order for
-- a store not listed here, or closed, is rejected (rejected_orders) and dead-lettered.
create table orders.stores (
  store_id   text        primary key,
  revision   bigint      not null check (revision >= 1),
  name       text        not null,
  country    text        not null,
  currency   text        not null,
  active     boolean     not null,
  updated_at timestamptz not null default now()
);

-- A warehouse is declared by `warehouse.upserted` (revision >= 1); one seen only in stock
-- counts keeps revision 0, no name or address, and the default priority.
alter table inventory.warehouses
  add column revision bigint  not null default 0,
  add column name     text,
  add column country  text,
  add column address  jsonb,
  add column active   boolean not null default true;
