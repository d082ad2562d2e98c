-- Issue 18, Art. 230 of Directive 2006/112/EC: the VAT of an invoice in another currency is
-- also stated in the national currency where it is due, at the ECB's reference rate of the
-- day (or the latest before). Operators load the ECB's rates (`orderly vat fx FILE`).
create table invoicing.fx_rates (
  day       date    not null,
  currency  text    not null,
  per_eur   numeric not null check (per_eur > 0),
  loaded_at timestamptz not null default now(),
  primary key (currency, day)
);
