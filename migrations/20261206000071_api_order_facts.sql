-- Order analytics (`GET /api/v1/admin/analytics/...`): one narrow row of facts per order,
-- kept current by the api worker's projection in the transaction of every event that can
-- change them, so the figures are read from a range of this table (by time, by store) and
-- never from the orders' wide rows, their histories and shipments.
--
-- The facts are a function of the read model only (`refresh_order_facts`): whatever order
-- the events arrived in and however often, the same read model gives the same facts, so
-- the figures inherit the projection's idempotence and order independence.

create table api.order_facts (
  order_id       uuid        primary key,
  store_id       text        not null,
  channel        text,
  currency       text        not null,
  placed_at      timestamptz not null,
  -- The order's total as placed (gross), and its tax when the event said.
  gross          numeric     not null,
  tax            numeric,
  -- Cancelled as a whole.
  cancelled      boolean     not null,
  -- Went on hold for an order item exception; when the last one was resolved (on_hold →
  -- accepted).
  exception      boolean     not null,
  resolved_at    timestamptz,
  -- First became backordered; when stock served it (backordered → processing or
  -- partially shipped).
  backordered_at timestamptz,
  served_at      timestamptz,
  -- When the last of its shipments left a warehouse (every one dispatched), and when the
  -- last was delivered (every one delivered), as the carriers' events date them.
  shipped_at     timestamptz,
  delivered_at   timestamptz
);
create index order_facts_placed on api.order_facts (placed_at);
create index order_facts_store_placed on api.order_facts (store_id, placed_at);

-- The order's lines as accepted: product, units, and what they came to (units × unit price
-- − the line's discount), for the top products.
create table api.order_fact_lines (
  order_id  uuid    not null,
  line_no   integer not null,
  sku       text    not null,
  quantity  integer not null,
  amount    numeric not null,
  primary key (order_id, line_no)
);

-- Recomputes the facts of `ids` from the read model (and their lines with `with_lines`):
-- the one definition of every fact, used by the projection and by the backfill below.
create function api.refresh_order_facts(ids uuid[], with_lines boolean) returns void
language sql as $$
  delete from api.order_facts f
   where f.order_id = any(ids)
     and not exists (select 1 from api.orders o
                      where o.order_id = f.order_id and o.placed_at_known
                        and o.currency is not null and o.total is not null);
  insert into api.order_facts as f (order_id, store_id, channel, currency, placed_at, gross, tax,
    cancelled, exception, resolved_at, backordered_at, served_at, shipped_at, delivered_at)
  select o.order_id, o.store_id, o.channel, o.currency, o.placed_at, o.total, o.tax,
    o.status is not distinct from 'cancelled',
    o.status is not distinct from 'on_hold'
      or exists (select 1 from api.status_history h
                  where h.order_id = o.order_id
                    and (h.from_status = 'on_hold' or h.to_status = 'on_hold')),
    (select min(h.changed_at) from api.status_history h
      where h.order_id = o.order_id and h.from_status = 'on_hold' and h.to_status = 'accepted'),
    (select min(h.changed_at) from api.status_history h
      where h.order_id = o.order_id and h.to_status = 'backordered'),
    (select min(h.changed_at) from api.status_history h
      where h.order_id = o.order_id and h.from_status = 'backordered'
        and h.to_status in ('processing', 'partially_shipped')),
    s.shipped_at, s.delivered_at
  from api.orders o
  left join lateral (
    select case when count(*) > 0 and count(*) = count(sh.dispatched_at)
                then max(sh.dispatched_at) end as shipped_at,
           case when count(*) > 0 and count(*) = count(sh.delivered_at)
                then max(sh.delivered_at) end as delivered_at
    from api.shipments sh where sh.order_id = o.order_id) s on true
  where o.order_id = any(ids) and o.placed_at_known
    and o.currency is not null and o.total is not null
  on conflict (order_id) do update set
    store_id = excluded.store_id, channel = excluded.channel, currency = excluded.currency,
    placed_at = excluded.placed_at, gross = excluded.gross, tax = excluded.tax,
    cancelled = excluded.cancelled, exception = excluded.exception,
    resolved_at = excluded.resolved_at, backordered_at = excluded.backordered_at,
    served_at = excluded.served_at, shipped_at = excluded.shipped_at,
    delivered_at = excluded.delivered_at
  where (f.store_id, f.channel, f.currency, f.placed_at, f.gross, f.tax, f.cancelled,
         f.exception, f.resolved_at, f.backordered_at, f.served_at, f.shipped_at,
         f.delivered_at)
        is distinct from
        (excluded.store_id, excluded.channel, excluded.currency, excluded.placed_at,
         excluded.gross, excluded.tax, excluded.cancelled, excluded.exception,
         excluded.resolved_at, excluded.backordered_at, excluded.served_at,
         excluded.shipped_at, excluded.delivered_at);
  delete from api.order_fact_lines where with_lines and order_id = any(ids);
  insert into api.order_fact_lines (order_id, line_no, sku, quantity, amount)
  select o.order_id, l.n, l.v->>'sku', (l.v->>'quantity')::integer,
         (l.v->>'unit_price')::numeric * (l.v->>'quantity')::integer
           - coalesce((l.v->>'discount')::numeric, 0)
  from api.orders o, jsonb_array_elements(o.lines) with ordinality as l(v, n)
  where with_lines and o.order_id = any(ids) and jsonb_typeof(o.lines) = 'array';
$$;

-- The orders the read model already holds.
select api.refresh_order_facts(array(select order_id from api.orders), true);
