-- What the api worker asked of setups' clients (issue 17): one row per invitation — the
-- first of a wait for the client (the intake form, an approval) and each reminder — with
-- when its link expires, or why none could be sent (the store has no secret to sign it
-- with). Shown on the setup's detail, so an operator sees whether the client was asked.
create table api.setup_invitations (
  setup_id     uuid        not null,
  -- The setup's sequence when the wait began.
  sequence     integer     not null,
  -- 0 for the first invitation of the wait, then the reminder's number.
  reminder     integer     not null,
  task         text        not null check (task in ('intake', 'approval')),
  at           timestamptz not null,
  expires_at   timestamptz,
  problem      text,
  primary key (setup_id, sequence, reminder),
  check ((expires_at is null) <> (problem is null))
);
