-- What an order's detail shows of its parcels' journeys and of the messages its customer was
-- sent, projected by the api worker from `shipment.updated` (the carriers' scans) and from
-- `notification.requested|sent|failed`.

-- Every scan of a parcel as its carrier said it, once (a scan repeated, with a new message
-- id or not, is the same scan). Keyed by tracking number, which every scan carries: a
-- carrier may not know Orderly's shipment id, and a scan may arrive before the dispatch
-- that names the number.
create table api.tracking_events (
  tracking_number       text        not null,
  event_at              timestamptz not null,
  raw_status            text        not null,
  raw_substatus         text        not null default '',
  carrier               text        not null,
  shipment_id           uuid,
  vocabulary            text        not null,
  description           text,
  location              jsonb,
  estimated_delivery_at timestamptz,
  message_id            uuid        not null,
  primary key (tracking_number, event_at, raw_status, raw_substatus)
);
create index tracking_events_shipment on api.tracking_events (shipment_id)
  where shipment_id is not null;

-- A message to the customer about an order: what was asked of the notification system and
-- what it answered, merged by request id whatever order the three events arrive in.
create table api.notifications (
  request_id   uuid        primary key,
  order_id     uuid        not null,
  channel      text        not null,
  template     text        not null,
  recipient    text,
  subject      text,
  locale       text,
  requested_at timestamptz,
  -- The first delivery the notification system reported.
  sent_at      timestamptz,
  provider     text,
  -- The newest failure it reported (a transient one may be followed by a delivery).
  failed_at    timestamptz,
  error        text,
  permanent    boolean
);
create index notifications_order on api.notifications (order_id);
