-- Operators' holds as fulfillment knows them (`order.hold_changed`, the highest sequence
-- wins; an order's hold may arrive before its `order.accepted`), and the reservations that
-- arrived while an order was held: parked, not turned into shipment requests, until the
-- release replays them through the same path.
create table fulfillment.holds (
  order_id   uuid        primary key,
  held       boolean     not null,
  sequence   integer     not null check (sequence >= 1),
  reason     text,
  changed_at timestamptz not null default now()
);

create table fulfillment.parked_reservations (
  order_id   uuid        primary key,
  message_id uuid        not null,
  envelope   jsonb       not null,
  parked_at  timestamptz not null default now()
);
