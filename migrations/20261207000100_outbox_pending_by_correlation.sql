-- A consumer that takes over a partition publishes what its predecessor left pending about
-- the same orders before its own rows (workers/runtime/src/consumer.rs, "Taking over from a
-- crashed copy"): each batch that writes outbox rows asks for the pending rows of their
-- correlation ids that another process wrote. This index answers that from the pending rows
-- only (a handful in steady state), so the question costs one index probe per batch.
--
-- `install` keeps creating a worker's inbox and outbox (the earlier versions, renamed) and
-- then adds the index; the outboxes already made get it below.

alter function orderly_messaging.install(text) rename to install_v3;

create function orderly_messaging.install(target text) returns void
language plpgsql as $fn$
begin
  perform orderly_messaging.install_v3(target);
  execute format(
    'create index if not exists outbox_pending_correlation on %I.outbox (correlation_id)
       where published_at is null',
    target);
end
$fn$;

do $$
declare
  s text;
begin
  for s in select table_schema from information_schema.tables
           where table_name = 'outbox' and table_type = 'BASE TABLE'
  loop
    execute format(
      'create index if not exists outbox_pending_correlation on %I.outbox (correlation_id)
         where published_at is null',
      s);
  end loop;
end
$$;
