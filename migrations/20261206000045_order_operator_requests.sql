-- Operators' requests about an order that the admin API sends (`order.note_requested`,
-- `order.hold_requested`, `order.release_requested`): each request id takes effect once;
-- a request received again is noted as a duplicate and answered so
-- (`order.request_answered`).
create table orders.operator_requests (
  request_id  uuid        primary key,
  kind        text        not null check (kind = any (array['note', 'hold', 'release'])),
  message_id  uuid        not null,
  order_id    uuid        not null,
  outcome     text        not null check (outcome in ('applied', 'refused')),
  received_at timestamptz not null default now()
);

-- An operator's hold: not a status (the order's status goes on as it was), a flag with
-- its reason and a per-order count of hold changes (`order.hold_changed`'s `sequence`).
alter table orders.orders
  add column held          boolean not null default false,
  add column hold_sequence integer not null default 0,
  add column hold_reason   text;

alter table orders.timeline drop constraint timeline_kind_known;
alter table orders.timeline
  add constraint timeline_kind_known check (kind in (
    'placed', 'accepted', 'on_hold', 'status_changed', 'completed',
    'stock_reserved', 'stock_unavailable', 'stock_released',
    'shipment_requested', 'shipment_dispatched', 'shipment_delivered', 'shipment_exception',
    'invoice_issued', 'credit_note_issued', 'notification_sent', 'notification_failed',
    'duplicate_repush', 'revision_ignored', 'revision_applied',
    'cancellation', 'cancellation_refused', 'cancel_duplicate',
    'refund', 'refund_refused', 'refund_duplicate',
    'exception_resolved', 'exception_refused', 'exception_duplicate',
    'note', 'held', 'released', 'hold_refused', 'request_duplicate'
  ));
