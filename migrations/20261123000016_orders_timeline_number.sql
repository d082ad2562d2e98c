-- A timeline entry's number is now the order's last entry's number plus one, read from the
-- timeline's primary key (order_id, seq) under the order's lock. The counter on the order
-- row made every entry rewrite the order row (a wide row: addresses, customer, payment):
-- about a dozen row versions per order in the pipeline.
alter table orders.orders drop column timeline_seq;
