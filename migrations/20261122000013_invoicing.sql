-- The invoicing worker's schema: each store's invoice settings, the gap-free number series,
-- the stores' EU distance-sales totals (the OSS threshold), issued invoices and credit notes
-- (immutable snapshots with their PDFs), and the requests it refused or holds.
--
-- Business keys make every effect happen once: an invoice per (order, scope) and per
-- request, a credit note per (invoice, refund or cancellation), a number per (store series).

select orderly_messaging.install('invoicing');

-- The latest settings per store (`store.invoice_settings_updated`, highest revision wins),
-- kept whole as received: invoices copy what they print from it.
create table invoicing.store_settings (
  store_id   text        primary key,
  revision   bigint      not null check (revision >= 1),
  settings   jsonb       not null,
  updated_at timestamptz not null default now()
);

-- One counter per series. A number is taken by `update ... set last_number = last_number
-- + 1` in the transaction that inserts the document: the row stays locked until commit, and
-- a rollback gives the number back, so the series has no gaps and no duplicates however
-- many workers run. `period` is the year for yearly series, 0 for one that never resets.
create table invoicing.number_series (
  store_id    text    not null,
  kind        text    not null check (kind in ('invoice', 'credit_note')),
  prefix      text    not null,
  period      integer not null check (period >= 0),
  last_number bigint  not null check (last_number >= 0),
  primary key (store_id, kind, prefix, period)
);

-- Cross-border EU sales to consumers per store and calendar year (net, EUR): the
-- EUR 10,000 distance-sales threshold is checked against it.
create table invoicing.distance_sales (
  store_id text    not null,
  year     integer not null,
  net_eur  numeric not null default 0 check (net_eur >= 0),
  primary key (store_id, year)
);

-- Issued documents may never change: a correction is a credit note.
create function invoicing.refuse_change() returns trigger
language plpgsql as $$
begin
  raise exception 'invoicing.%: issued documents are immutable (issue a credit note instead)',
    tg_table_name;
end
$$;

create table invoicing.invoices (
  invoice_id     uuid        primary key,
  store_id       text        not null,
  number         text        not null,
  request_id     uuid        not null unique,
  order_id       uuid        not null,
  -- 'order' for a whole-order invoice, else the shipment id: one invoice per scope.
  scope          text        not null,
  shipment_id    uuid,
  timing         text        not null check (timing in ('on_order', 'on_shipment')),
  issued_at      timestamptz not null,
  supply_date    date        not null,
  currency       text        not null,
  vat_treatment  text        not null,
  vat_rule       text        not null,
  vat_reason     text        not null,
  vat_id_check   text        check (vat_id_check in ('format_checked', 'verified')),
  buyer          jsonb       not null,
  document       jsonb       not null,
  net            numeric     not null check (net >= 0),
  tax            numeric     not null check (tax >= 0),
  gross          numeric     not null check (gross >= 0),
  -- The PDF is written uncompressed by the renderer (faster); lz4 compresses it here.
  pdf            bytea       compression lz4 not null,
  pdf_sha256     text        not null,
  pdf_size       integer     not null,
  unique (store_id, number),
  unique (order_id, scope)
);
create index invoices_order on invoicing.invoices (order_id, issued_at);
create index invoices_store on invoicing.invoices (store_id, issued_at desc);
create index invoices_number on invoicing.invoices (number);
create trigger invoices_immutable before update or delete on invoicing.invoices
  for each row execute function invoicing.refuse_change();

create table invoicing.credit_notes (
  credit_note_id uuid        primary key,
  store_id       text        not null,
  number         text        not null,
  invoice_id     uuid        not null references invoicing.invoices (invoice_id),
  -- The refund request id, or the cancellation's key: one credit note per invoice each.
  credit_key     uuid        not null,
  reason_kind    text        not null check (reason_kind in ('refund', 'cancellation')),
  reason         text        not null,
  order_id       uuid        not null,
  issued_at      timestamptz not null,
  document       jsonb       not null,
  net            numeric     not null check (net >= 0),
  tax            numeric     not null check (tax >= 0),
  gross          numeric     not null check (gross >= 0),
  -- The PDF is written uncompressed by the renderer (faster); lz4 compresses it here.
  pdf            bytea       compression lz4 not null,
  pdf_sha256     text        not null,
  pdf_size       integer     not null,
  unique (store_id, number),
  unique (invoice_id, credit_key)
);
create index credit_notes_number on invoicing.credit_notes (number);
create trigger credit_notes_immutable before update or delete on invoicing.credit_notes
  for each row execute function invoicing.refuse_change();

-- What each credit note credited, per invoice line: the sums say what is left to credit.
create table invoicing.credited_lines (
  credit_note_id uuid    not null references invoicing.credit_notes (credit_note_id),
  invoice_id     uuid    not null references invoicing.invoices (invoice_id),
  line_id        text    not null,
  quantity       bigint  not null check (quantity >= 1),
  net            numeric not null check (net >= 0),
  tax            numeric not null check (tax >= 0),
  primary key (credit_note_id, line_id)
);
create index credited_lines_invoice on invoicing.credited_lines (invoice_id);

-- Requests invoicing refused or holds, for operators (`list_refused`). A request for a
-- store without settings is held (`status = 'held'`) and issued when the settings arrive
-- (`status = 'issued'`); one that can never be issued is `refused` and dead-lettered.
create table invoicing.refused (
  id           bigserial   primary key,
  message_id   uuid        not null,
  message_type text        not null,
  store_id     text        not null,
  order_id     uuid,
  status       text        not null check (status in ('held', 'refused', 'issued')),
  reason       text        not null,
  received_at  timestamptz not null default now(),
  resolved_at  timestamptz,
  unique (message_id)
);
create index refused_store on invoicing.refused (store_id, received_at desc);

-- Invoice requests waiting for their store's settings, with the original envelope so they
-- are issued exactly as asked.
create table invoicing.held_requests (
  request_id  uuid        primary key,
  store_id    text        not null,
  message_id  uuid        not null,
  envelope    jsonb       not null,
  received_at timestamptz not null default now()
);
create index held_requests_store on invoicing.held_requests (store_id, received_at);

-- Cancellations that arrived before the order's whole-order invoice (the two messages come
-- from different workers and can overtake each other): applied as credit notes right after
-- that invoice is issued.
create table invoicing.pending_cancellations (
  cancel_key  uuid        primary key,
  order_id    uuid        not null,
  store_id    text        not null,
  request_id  uuid,
  scope       text        not null check (scope in ('order', 'lines')),
  lines       jsonb       not null,
  reason      text        not null,
  received_at timestamptz not null default now()
);
create index pending_cancellations_order on invoicing.pending_cancellations (order_id);
