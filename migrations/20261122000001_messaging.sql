-- The messaging tables every worker owns in its own schema: the inbox (which messages it
-- has already handled) and the outbox (what it has decided to publish, not yet confirmed by
-- the broker). `orderly_messaging.install(schema)` creates both; each worker's migration
-- calls it for the worker's schema, and tests call it for throwaway schemas.

create schema if not exists orderly_messaging;

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

  -- Wake the relay on commit: NOTIFY is delivered only when the transaction commits, so the
  -- relay never looks for rows that are not visible yet. One notification per statement.
  execute format($sql$
    create or replace function %I.outbox_notify() returns trigger language plpgsql as $t$
    begin
      perform pg_notify(%L, '');
      return null;
    end $t$$sql$, target, 'orderly_outbox_' || target);
  execute format('drop trigger if exists outbox_notify on %I.outbox', target);
  execute format(
    'create trigger outbox_notify after insert on %I.outbox for each statement execute function %I.outbox_notify()',
    target, target);
end
$fn$;
