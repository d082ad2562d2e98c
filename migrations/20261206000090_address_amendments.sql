-- An operator's change of an accepted order's address (`order.address_change_requested`).
--
-- orders: how many operators' changes the order's address has had; `order.address_changed`
-- carries it as `amendment`, and the newest address is the one with the highest
-- (revision, amendment). While it is above 0, a marketplace re-push's different address is
-- not applied (noted on the timeline): the operator's correction stands.
alter table orders.orders
  add column address_amendment integer not null default 0;

alter table orders.operator_requests drop constraint operator_requests_kind_check;
alter table orders.operator_requests
  add constraint operator_requests_kind_check
  check (kind = any (array['note', 'hold', 'release', 'address']));

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
    'note', 'held', 'released', 'hold_refused', 'request_duplicate',
    'address_changed', 'address_refused'
  ));

-- fulfillment: its copy of the order keeps the amendment beside the revision, so an older
-- change arriving late does not overwrite a newer one.
alter table fulfillment.orders
  add column address_amendment integer not null default 0;

-- api: the read model's addresses, ordered the same way.
alter table api.orders
  add column address_amendment integer not null default 0;

-- api: the command resource of the new action.
alter table api.commands drop constraint commands_action_check;
alter table api.commands
  add constraint commands_action_check check (action in (
    'cancel', 'refund', 'note', 'resolve_exception', 'resend_notification', 'hold', 'release',
    'change_address'
  ));
