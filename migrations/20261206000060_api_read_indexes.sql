-- The order list's filters at a million orders: what `orderly bench api` found the list
-- needs (docs/benchmarks.md, "Admin API"). Before these, on a million orders, a search for
-- an e-mail or an order number read every order (8 to 13 s), as did a channel with few or
-- no orders (9 s), and a rare status in one store walked most of the list (0.3 to 0.5 s):
-- the newest 50 of a filter were looked for along `orders_placed`, row by row.
--
-- Each index costs the projection a write per order update that changes an indexed
-- column (a status change does, as it did before: `status` is in `orders_on_hold`'s
-- predicate), measured by the benchmark's projection lag. The indexes are built without
-- CONCURRENTLY (migrations run in a transaction): on a large read model the projection
-- waits while they are built.

-- Free text: the external order number, the customer's name and e-mail, as one text (the
-- list's `q` compares `ilike '%…%'`, which only a trigram index serves). The parts are
-- joined by the unit separator (U+001F), which a search may not contain (the list refuses
-- control characters in `q`): a match in the joined text is then a match in one of the
-- parts, so the list asks this one expression instead of the three columns, and PostgreSQL
-- estimates it from this index's statistics. The expression must read exactly as in
-- `store::read` (`push_filters`). pg_trgm is a trusted extension (a database owner may
-- create it); it lives in `public`, where every schema finds it.
create extension if not exists pg_trgm with schema public;
create index orders_text on api.orders using gin (
  (external_order_id || E'\x1f' || coalesce(customer_name, '') || E'\x1f' || coalesce(customer_email, ''))
  public.gin_trgm_ops
);
-- Whether to use it: a search for a common surname matches one order in sixty, and is
-- answered fastest by walking the newest orders (a few thousand rows for a page); a rare
-- one, by the index. PostgreSQL estimates how many orders an `ilike '%…%'` matches from a
-- sample of the expression's values: with the default hundred, a surname of one order in
-- sixty is often in none of them, the estimate is 0.01 %, and the index was chosen,
-- reading every matching order (16,000 rows, 200 to 350 ms); with a thousand, the estimate
-- is near the truth.
alter index api.orders_text alter column 1 set statistics 1000;

-- The statuses an operator works through (backordered, processing, on hold) are a fraction
-- of a percent of a year's orders; the newest of one status, in order.
create index orders_status_placed on api.orders (status, placed_at desc, order_id desc);

-- One store's orders of one status, the list an account manager or a store's operator
-- works from (a quarter of the database's time in the benchmark's mix went to these
-- before: the newest of a rare status in a small store were looked for along the status's
-- or the store's orders).
create index orders_store_status_placed on api.orders (store_id, status, placed_at desc, order_id desc);

-- A channel's orders (a rare one, `manual` or `pos`, as much as the marketplaces').
create index orders_channel_placed on api.orders (channel, placed_at desc, order_id desc);
