-- The api worker's copy of the catalog (`catalog.product_upserted`), searched by SKU, title
-- or GTIN when an operator resolves an order item exception. The newest `updated_at` wins.
create table api.products (
  sku        text        primary key,
  title      text        not null,
  gtins      text[]      not null default '{}',
  active     boolean     not null,
  updated_at timestamptz not null
);
create index products_gtins on api.products using gin (gtins);
create index products_title on api.products (lower(title) text_pattern_ops);
