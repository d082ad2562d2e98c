-- `shipment.updated` may carry the sender's sub-status (`raw_substatus`: AfterShip's subtag,
-- EasyPost's status_detail, Shippo's substatus code). Fulfillment keeps it with the event it
-- records, and with an event that waits for its tracking number, so the adopted event keeps
-- it too. Null for events that came without one (every event before this column existed).

alter table fulfillment.tracking_events add column raw_substatus text;
alter table fulfillment.unmatched_tracking_events add column raw_substatus text;
