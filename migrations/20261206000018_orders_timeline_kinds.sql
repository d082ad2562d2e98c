-- A timeline entry's kind is one of a fixed vocabulary (TimelineKind in
-- workers/orders/src/store/timeline.rs), no longer a free string: a misspelt kind is
-- refused at write time instead of hiding an entry from whoever filters by kind. The list
-- is the same words the worker has always written, so existing rows satisfy it; a unit
-- test of the worker compares it with the enum.
alter table orders.timeline
  add constraint timeline_kind_known check (kind in (
    'placed', 'accepted', 'on_hold', 'status_changed', 'completed',
    'stock_reserved', 'stock_unavailable', 'stock_released',
    'shipment_requested', 'shipment_dispatched', 'shipment_delivered', 'shipment_exception',
    'invoice_issued', 'credit_note_issued', 'notification_sent', 'notification_failed',
    'duplicate_repush', 'revision_ignored', 'revision_applied',
    'cancellation', 'cancellation_refused', 'cancel_duplicate',
    'refund', 'refund_refused', 'refund_duplicate',
    'exception_resolved', 'exception_refused', 'exception_duplicate'
  ));
