-- Operators' internal notes on an order (`order.note_requested`, sent by the admin API):
-- each request id adds its note to the timeline once; a request received again is noted
-- as a duplicate and answered so (`order.request_answered`).
create table orders.note_requests (
  request_id  uuid        primary key,
  message_id  uuid        not null,
  order_id    uuid        not null,
  received_at timestamptz not null default now()
);

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
    'note', 'note_duplicate'
  ));
