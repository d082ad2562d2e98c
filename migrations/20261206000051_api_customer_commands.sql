-- A storefront's customer may ask for their own order's cancellation through the API
-- (`POST /api/v1/store/customer-orders/{id}/cancel`): a command like a staff action, sent by
-- a customer. Commands and audit entries have exactly one actor: a staff member with the
-- token they used, or a customer (the store's customer id; the store is the command's).

-- Commands: the staff columns become optional, the customer's id joins them, and a check
-- keeps exactly one actor per row.
alter table api.commands
  alter column staff_id drop not null,
  alter column token_id drop not null,
  add column customer_id text check (length(customer_id) between 1 and 128),
  add constraint commands_one_actor check (
    (staff_id is not null and token_id is not null and customer_id is null)
    or (staff_id is null and token_id is null and customer_id is not null));
-- A customer's `Idempotency-Key` names one command per store and customer, as a staff
-- member's does per staff member (`unique (staff_id, idempotency_key)` stays). A row of one
-- kind of actor has nulls in the other's key, and nulls are distinct: the two never collide.
alter table api.commands
  add constraint commands_customer_idempotency_key unique (store_id, customer_id, idempotency_key);
-- A customer's command is looked up by its id and checked to be theirs; no other index.

-- The audit log: customers' requests are recorded too, with their id and the store (the
-- token's) instead of a staff member and token.
alter table api.audit_log
  alter column staff_id drop not null,
  alter column staff_email drop not null,
  alter column token_id drop not null,
  add column customer_id text,
  add constraint audit_log_one_actor check (
    (staff_id is not null and staff_email is not null and token_id is not null
       and customer_id is null)
    or (staff_id is null and staff_email is null and token_id is null
       and customer_id is not null and store_id is not null));
