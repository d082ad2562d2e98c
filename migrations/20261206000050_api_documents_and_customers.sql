-- The api worker serves invoice and credit-note PDFs from the document store, and the
-- storefronts' customers their own orders (issue 14, items 2 and 3).

-- The PDF's key in the document store, as `invoice.issued` / `credit_note.issued` named it
-- (`pdf.key`). Null for documents announced before the events carried it: their key is
-- `invoices/{store_id}/{number}.pdf` (`credit-notes/…`), where `orderly documents migrate`
-- copied them, and the api reads that key for them.
alter table api.documents add column pdf_key text;

-- The customer's id as the order's producer knows it (`customer.id` of `order.accepted`: the
-- storefront's account id), kept in step with the projected customer by PostgreSQL itself,
-- so orders projected before this migration have it too. Null for guest checkouts.
alter table api.orders
  add column customer_id text generated always as (customer ->> 'id') stored;
-- A customer's orders in their store, newest first: the customers' list is one range of it.
create index orders_store_customer on api.orders (store_id, customer_id, placed_at desc, order_id desc)
  where customer_id is not null;

-- Each store's secrets for its customers' tokens (HMAC-SHA256 keys; `docs/api.md`). They
-- must be kept as they are (a MAC is checked with the key itself), so this table is as
-- sensitive as the storefront's own configuration. One current secret per store
-- (`valid_until` null); a rotation gives the one it replaces a grace period
-- (`valid_until` in the future) so tokens the storefront minted with it keep working while
-- it switches over, and ends every older one's at once.
create table api.store_secrets (
  secret_id   uuid        primary key,
  store_id    text        not null,
  secret      text        not null unique,
  created_at  timestamptz not null default now(),
  valid_until timestamptz
);
create unique index store_secrets_current on api.store_secrets (store_id) where valid_until is null;
create index store_secrets_store on api.store_secrets (store_id, created_at desc);
