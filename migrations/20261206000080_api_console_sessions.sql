-- The admin console (`/admin`): staff sign in with a password, and a signed-in browser
-- holds a session.
--
-- A password is stored as its Argon2id PHC string (salt and parameters inside it), set by
-- `orderly staff password`; none is set until then, so a staff member without one cannot
-- sign in to the console (their API tokens are unaffected).
alter table api.staff add column password_hash text;

-- A console session: the browser's cookie holds a random secret of which only the SHA-256
-- is stored here (like an API token). `csrf_token` is the session's form token, embedded in
-- every form and checked on every POST. A session ends when it is idle for too long (since
-- `last_seen_at`), at `expires_at` whatever its use, or when its holder signs out
-- (`ended_at`); the rules are `domain::session`. `session_id` stands where an API token's
-- id stands in the audit log and on commands.
create table api.console_sessions (
  session_id   uuid        primary key,
  staff_id     uuid        not null references api.staff on delete cascade,
  sha256       bytea       not null unique check (length(sha256) = 32),
  csrf_token   text        not null check (length(csrf_token) = 64),
  created_at   timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at   timestamptz not null,
  ended_at     timestamptz
);
create index console_sessions_staff on api.console_sessions (staff_id);
