-- The outbox relay no longer listens for notifications: whoever writes the outbox in a
-- process hands the committed rows to that process's relay, and the relay's sweep finds the
-- rest (see workers/runtime/src/outbox.rs). A NOTIFY at commit was not free: PostgreSQL lets
-- only one notifying transaction commit at a time, fsync included.
--
-- `install` creates a worker's inbox and outbox as before, without the notify trigger; the
-- triggers and functions it created in existing schemas are dropped.

create or replace function orderly_messaging.install(target text) returns void
language plpgsql as $fn$
begin
  execute format('create schema if not exists %I', target);

  -- One row per message a consumer has handled; written in the same transaction as the
  -- handler's effects, so a redelivered message finds its row and is acked without effect.
  execute format($sql$
    create table if not exists %I.inbox (
      consumer     text        not null,
      message_id   uuid        not null,
      message_type text        not null,
      handled_at   timestamptz not null default now(),
      primary key (consumer, message_id)
    )$sql$, target);
  execute format('create index if not exists inbox_handled_at on %I.inbox (handled_at)', target);

  -- Outgoing messages, written in the handler's transaction and published by the relay.
  -- `published_at` is set only after the broker confirmed the message; until then the row is
  -- pending, and `last_error` says why the last attempt did not go through (unroutable,
  -- nacked, broker down).
  execute format($sql$
    create table if not exists %I.outbox (
      id             bigint generated always as identity primary key,
      message_id     uuid        not null unique,
      message_type   text        not null,
      routing_key    text        not null,
      correlation_id text        not null,
      body           jsonb       not null,
      created_at     timestamptz not null default clock_timestamp(),
      available_at   timestamptz not null default clock_timestamp(),
      published_at   timestamptz,
      attempts       integer     not null default 0,
      last_error     text
    )$sql$, target);
  execute format(
    'create index if not exists outbox_pending on %I.outbox (available_at, id) where published_at is null',
    target);
  execute format(
    'create index if not exists outbox_published on %I.outbox (published_at) where published_at is not null',
    target);
  execute format('drop trigger if exists outbox_notify on %I.outbox', target);
  execute format('drop function if exists %I.outbox_notify()', target);
end
$fn$;

do $$
declare
  s text;
begin
  for s in select distinct event_object_schema from information_schema.triggers
           where trigger_name = 'outbox_notify'
  loop
    execute format('drop trigger if exists outbox_notify on %I.outbox', s);
    execute format('drop function if exists %I.outbox_notify()', s);
  end loop;
end
$$;
