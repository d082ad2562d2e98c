-- Export jobs (`POST /api/v1/admin/orders/exports`): the export of a filter written to the
-- document store by the api worker, for files too large to stream to a browser; the file
-- is the streamed export's, byte for byte (one writer). Its creator (or staff who see every
-- store) downloads it from `GET /api/v1/admin/exports/{id}/download`.
create table api.exports (
  export_id     uuid        primary key,
  staff_id      uuid        not null references api.staff,
  token_id      uuid        not null,
  -- The export's query string as given (filters, format, rows, columns), and the stores
  -- the creator saw then (null: every store), so the file is what they could export.
  query         text        not null,
  stores        text[],
  -- `running` until the file is in the document store (`completed`, with its key, size,
  -- rows and SHA-256), or `failed` with why. A running export whose writer stopped (the
  -- worker died) is taken up again after its lease and written from the start.
  state         text        not null default 'running'
                check (state in ('running', 'completed', 'failed')),
  leased_until  timestamptz,
  attempts      integer     not null default 0,
  object_key    text,
  rows          bigint,
  bytes         bigint,
  sha256        text,
  error         text,
  created_at    timestamptz not null default now(),
  finished_at   timestamptz
);
create index exports_running on api.exports (created_at) where state = 'running';
