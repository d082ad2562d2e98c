-- The outbox relay no longer listens for notifications: whoever writes the outbox in a
-- process hands the committed rows to that process's relay, and the relay's sweep finds the
-- rest (see workers/runtime/src/outbox.rs, decision 0006). A NOTIFY at commit was not free:
-- PostgreSQL lets only one notifying transaction commit at a time, fsync included.
--
-- `install` keeps creating a worker's inbox and outbox (the first version, renamed) and then
-- drops the notify trigger that version adds; the triggers already made are dropped below.

alter function orderly_messaging.install(text) rename to install_v1;

create function orderly_messaging.install(target text) returns void
language plpgsql as $fn$
begin
  perform orderly_messaging.install_v1(target);
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
