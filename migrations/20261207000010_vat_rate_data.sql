-- Issue 18: VAT rates as dated data, product tax classes, and where goods leave from.
--
-- A product may carry a tax class (books, food, ...): orders keeps the catalog's, an
-- accepted line carries it, and fulfillment keeps it with the order's lines so invoice
-- requests carry it too. Rows written before have none (the category decides, as before).
alter table orders.products add column tax_class text;
alter table orders.order_lines add column tax_class text;
alter table fulfillment.order_lines add column tax_class text;

-- The rate data invoicing decides with: the rows of the configured rate file (store_id
-- null; replaced whole each time the worker starts with a changed file) and a store's own
-- rows, which win where they cover the day. Each row cites its source.
create table invoicing.vat_rates (
  store_id   text,
  area       text        not null,
  class      text        not null,
  rate       numeric     not null check (rate >= 0 and rate <= 30),
  valid_from date        not null,
  valid_to   date,
  source     text        not null,
  note       text        not null default '',
  loaded_at  timestamptz not null default now(),
  check (valid_to is null or valid_to >= valid_from)
);
create unique index vat_rates_row on invoicing.vat_rates (coalesce(store_id, ''), area, class, valid_from);

-- Which rate file is loaded (its SHA-256), so copies of the worker load a file once.
create table invoicing.vat_rate_files (
  sha256    text        primary key,
  path      text        not null,
  rows      integer     not null,
  loaded_at timestamptz not null default now()
);

-- The warehouses goods leave from (`warehouse.upserted`, highest revision wins): the
-- dispatch address of an invoice per shipment.
create table invoicing.warehouses (
  warehouse_id text   primary key,
  revision     bigint not null,
  address      jsonb  not null
);
