-- An outbox row remembers the process that wrote it: `written_by` defaults to the session
-- setting `orderly.writer`, which a worker process sets on its pools' connections (the
-- runtime's Host; see workers/runtime/src/outbox.rs). A relay's sweep takes its own
-- process's rows (and rows nobody marked: the CLI's) once they are a poll interval old,
-- and another live process's rows only after a longer grace: that process's handoff is
-- publishing them, and taking them too sent them twice (the fault suite: 593 of 2,984
-- notification requests twice with three copies of every worker and no fault).
--
-- `install` keeps creating a worker's inbox and outbox (the earlier versions, renamed) and
-- then adds the column; the outboxes already made get it below.

alter function orderly_messaging.install(text) rename to install_v2;

create function orderly_messaging.install(target text) returns void
language plpgsql as $fn$
begin
  perform orderly_messaging.install_v2(target);
  execute format(
    'alter table %I.outbox add column if not exists written_by uuid
       default nullif(current_setting(''orderly.writer'', true), '''')::uuid',
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
      'alter table %I.outbox add column if not exists written_by uuid
         default nullif(current_setting(''orderly.writer'', true), '''')::uuid',
      s);
  end loop;
end
$$;
