-- Orders with nothing to ship (issue 17): an order whose every line is a service is
-- reserved in no warehouse (`stock.reserved` with no allocation). The orders worker keeps
-- that fact here (an allocation row cannot say "none"), so the status machine knows the
-- order's goods are done: it reaches `delivered` without a parcel and completes with its
-- setups.
create table orders.order_nothing_reserved (
  order_id     uuid        primary key,
  recorded_at  timestamptz not null default now()
);
