-- Order analytics rollups: the order facts summed per day and per ISO week, store, channel
-- and currency, so an analytics request reads a few thousand rows at most, however many
-- orders its range holds (a year of a million orders: 365 × stores rows, not 1,000,000).
--
-- The api worker keeps them in the transaction that refreshes an order's facts: it reads the
-- facts before and after, and adds the difference (`store::analytics::apply`,
-- `domain::rollup`). `rebuild_order_rollups` computes them from the facts from scratch: the
-- backfill below, the benchmark's seed, and the tests' check that the running sums equal it.
--
-- Durations are kept as histograms (a flat `int4[]` of bucket, count pairs in bucket order),
-- which add up across days and stores where a percentile would not: a bucket holds the
-- whole seconds that share their first six binary digits (exact below 64 s; a bucket is at
-- most 1/32 of its values wide), and a percentile is reported as the smallest value of the
-- bucket it falls in (`docs/api.md`, Analytics).

-- The bucket of a duration of `seconds` whole seconds (a negative one, clock skew: 0).
-- Must equal `domain::rollup::bucket_of`.
create function api.duration_bucket(seconds bigint) returns integer
language sql immutable strict parallel safe as $$
  select case
    when seconds < 64 then greatest(seconds, 0)::integer
    else (64 + (e - 6) * 32 + ((seconds >> (e - 5)) - 32))::integer
  end
  from (select 64 - position('1' in seconds::bit(64)::text) as e) b
$$;

-- `keys` (nulls ignored) counted, as the flat key, count pairs of a histogram in key order;
-- null when none.
create function api.histogram(keys integer[]) returns integer[]
language sql immutable parallel safe as $$
  select array_agg(x order by key, j)
  from (select key, count(*)::integer as n from unnest(keys) key
         where key is not null group by key) h,
       lateral (values (1, key), (2, n)) as p(j, x)
$$;

create table api.order_rollups (
  -- 'd': the UTC day `period`; 'w': the ISO week from Monday `period`.
  kind        text    not null check (kind in ('d', 'w')),
  period      date    not null,
  store_id    text    not null,
  -- '' for orders without a channel.
  channel     text    not null,
  currency    text    not null,
  orders      bigint  not null,
  cancelled   bigint  not null,
  -- Of the orders not cancelled, as placed.
  gross       numeric not null,
  tax         numeric not null,
  exceptions  bigint  not null,
  backordered bigint  not null,
  -- Histograms (see above) of placed → last exception resolved, backordered → served,
  -- placed → shipped, shipped → delivered, placed → delivered.
  resolve     integer[],
  serve       integer[],
  shipped     integer[],
  shipped_to_delivered integer[],
  delivered   integer[],
  -- Of the orders not cancelled and shipped: their placed → shipped in whole hours,
  -- rounded up (bucket h holds (h − 1) × 3600 < seconds ≤ h × 3600), for late shipments
  -- whatever `late_after_hours` a request gives.
  ship_hours  integer[],
  primary key (kind, period, store_id, channel, currency)
);

-- What the products sold (units, orders, what the lines came to) per day and ISO week, store,
-- channel and currency, of the orders not cancelled.
create table api.sku_rollups (
  kind      text    not null check (kind in ('d', 'w')),
  period    date    not null,
  store_id  text    not null,
  channel   text    not null,
  currency  text    not null,
  sku       text    not null,
  units     bigint  not null,
  orders    bigint  not null,
  revenue   numeric not null,
  primary key (kind, period, store_id, channel, currency, sku)
);

-- Late shipments of orders not shipped yet: few (today's, and the stuck ones).
create index order_facts_unshipped on api.order_facts (placed_at)
  where shipped_at is null and not cancelled;

-- The rollups computed from the facts (replacing what they held).
create function api.rebuild_order_rollups() returns void
language sql as $$
  delete from api.order_rollups;
  delete from api.sku_rollups;
  insert into api.order_rollups
  select k.kind, k.period, f.store_id, coalesce(f.channel, ''), f.currency,
         count(*), count(*) filter (where f.cancelled),
         coalesce(sum(f.gross) filter (where not f.cancelled), 0),
         coalesce(sum(f.tax) filter (where not f.cancelled), 0),
         count(*) filter (where f.exception),
         count(*) filter (where f.backordered_at is not null),
         api.histogram(array_agg(api.duration_bucket(
           floor(extract(epoch from (f.resolved_at - f.placed_at)))::bigint))),
         api.histogram(array_agg(api.duration_bucket(
           floor(extract(epoch from (f.served_at - f.backordered_at)))::bigint))),
         api.histogram(array_agg(api.duration_bucket(
           floor(extract(epoch from (f.shipped_at - f.placed_at)))::bigint))),
         api.histogram(array_agg(api.duration_bucket(
           floor(extract(epoch from (f.delivered_at - f.shipped_at)))::bigint))),
         api.histogram(array_agg(api.duration_bucket(
           floor(extract(epoch from (f.delivered_at - f.placed_at)))::bigint))),
         api.histogram(array_agg(case when not f.cancelled then
           ((greatest(floor(extract(epoch from (f.shipped_at - f.placed_at)))::bigint, 0)
             + 3599) / 3600)::integer end))
    from api.order_facts f,
         lateral (values ('d', (f.placed_at at time zone 'UTC')::date),
                         ('w', date_trunc('week', f.placed_at at time zone 'UTC')::date))
           as k(kind, period)
   group by 1, 2, 3, 4, 5;
  insert into api.sku_rollups
  select k.kind, k.period, f.store_id, coalesce(f.channel, ''), f.currency, l.sku,
         sum(l.quantity), count(distinct l.order_id), sum(l.amount)
    from api.order_facts f
    join api.order_fact_lines l using (order_id),
         lateral (values ('d', (f.placed_at at time zone 'UTC')::date),
                         ('w', date_trunc('week', f.placed_at at time zone 'UTC')::date))
           as k(kind, period)
   where not f.cancelled
   group by 1, 2, 3, 4, 5, 6;
$$;

select api.rebuild_order_rollups();
