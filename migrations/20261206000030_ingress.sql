-- The ingress worker's schema: carriers' and tracking aggregators' webhooks taken over HTTP
-- (EasyPost, AfterShip, Shippo) and published as `shipment.updated` through its outbox.
--
-- A delivery is taken in one transaction: its row here (the deduplication: a vendor's retry
-- or a replayed delivery finds it and publishes nothing) and its outbox row. It consumes no
-- messages, so its inbox stays empty; `install` creates it anyway, like every worker's.

select orderly_messaging.install('ingress');

-- Every delivery taken, once per vendor and delivery key: the vendor's event id (EasyPost
-- `evt_…`, AfterShip `event_id`) or, where the vendor sends none (Shippo), `sha256:<hex>` of
-- the body. `message_id` is the `shipment.updated` it became.
create table ingress.carrier_deliveries (
  vendor          text        not null check (vendor in ('easypost', 'aftership', 'shippo')),
  delivery_key    text        not null check (length(delivery_key) between 1 and 200),
  message_id      uuid        not null unique,
  carrier         text        not null,
  tracking_number text        not null,
  raw_status      text        not null,
  event_at        timestamptz not null,
  received_at     timestamptz not null default now(),
  primary key (vendor, delivery_key)
);
create index carrier_deliveries_received on ingress.carrier_deliveries (received_at);

-- Deliveries that were signed correctly but could not be taken (not JSON, a field we cannot
-- map), for operators: what came, when, and why it was refused. Deliveries whose signature
-- fails are not recorded here (anyone can send those; they are logged and counted), so
-- nothing an unauthenticated sender does writes to the database.
create table ingress.refused_deliveries (
  id           bigint generated always as identity primary key,
  vendor       text        not null check (vendor in ('easypost', 'aftership', 'shippo')),
  status       integer     not null,
  field        text,
  reason       text        not null,
  body_excerpt text        not null,
  body_bytes   bigint      not null,
  body_sha256  text        not null,
  received_at  timestamptz not null default now()
);
create index refused_deliveries_received on ingress.refused_deliveries (received_at);
