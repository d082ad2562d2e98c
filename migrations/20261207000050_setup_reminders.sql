-- Reminders to a setup's client (issue 17): while a setup waits for its client (intake
-- form, approval), the setups worker's sweep reminds them every `[setups]
-- client_reminder_hours`, at most `client_reminders` times per wait.
--
-- `client_waiting_since` is set when the setup enters a waiting status and cleared when it
-- leaves it; `client_wait_sequence` is the setup's sequence then (with the setup, it names
-- the wait); `reminders` counts the reminders sent for it.
alter table setups.setups
  add column client_waiting_since timestamptz,
  add column client_wait_sequence integer,
  add column reminders integer not null default 0;

update setups.setups
   set client_waiting_since = updated_at, client_wait_sequence = sequence
 where status in ('pending_intake', 'awaiting_client');

create index setups_client_waiting on setups.setups (client_waiting_since)
  where client_waiting_since is not null;
