-- Invoices and credit notes are numbered under their store's lock and rendered after it.
--
-- A store's series is issued strictly one document at a time (that is what keeps it
-- gap-free), so everything done while the store is locked bounds the store's invoices per
-- second. The PDF does not need the lock: the handler numbers the document and stores its
-- immutable snapshot and a render job in the message's transaction; the worker's renderer
-- (any copy, `FOR UPDATE SKIP LOCKED`) renders the PDF from the snapshot, stores it and puts
-- the `invoice.issued` / `credit_note.issued` prepared by the handler into the outbox, in
-- one transaction. So an issued message always references a stored PDF, as before.

-- The PDF of a document: written once, by the renderer, never changed.
create table invoicing.document_pdfs (
  document_id uuid        primary key,
  -- The renderer writes the PDF uncompressed (faster); lz4 compresses it here.
  pdf         bytea       compression lz4 not null,
  pdf_sha256  text        not null,
  pdf_size    integer     not null,
  rendered_at timestamptz not null default now()
);
create trigger document_pdfs_immutable before update or delete on invoicing.document_pdfs
  for each row execute function invoicing.refuse_change();

-- Documents rendered inline before this migration keep their PDFs.
insert into invoicing.document_pdfs (document_id, pdf, pdf_sha256, pdf_size, rendered_at)
  select invoice_id, pdf, pdf_sha256, pdf_size, issued_at from invoicing.invoices;
insert into invoicing.document_pdfs (document_id, pdf, pdf_sha256, pdf_size, rendered_at)
  select credit_note_id, pdf, pdf_sha256, pdf_size, issued_at from invoicing.credit_notes;
alter table invoicing.invoices
  drop column pdf, drop column pdf_sha256, drop column pdf_size;
alter table invoicing.credit_notes
  drop column pdf, drop column pdf_sha256, drop column pdf_size;

-- Documents waiting for their PDF. `message` is the issued message the handler prepared,
-- complete but for its `payload.pdf`. One order's documents are rendered and sent in the
-- order they were numbered (an invoice before the credit note that credits it): a job waits
-- while an older job of the same order is queued. A render that fails is retried later
-- (`available_at`), with the error kept for operators (`orderly invoice list`).
create table invoicing.render_queue (
  seq          bigserial   primary key,
  document_id  uuid        not null unique,
  kind         text        not null check (kind in ('invoice', 'credit_note')),
  order_id     uuid        not null,
  message      jsonb       not null,
  attempts     integer     not null default 0,
  last_error   text,
  available_at timestamptz not null default now(),
  enqueued_at  timestamptz not null default now()
);
create index render_queue_order on invoicing.render_queue (order_id, seq);

create function invoicing.render_queue_notify() returns trigger
language plpgsql as $$
begin
  perform pg_notify('orderly_invoicing_render', '');
  return null;
end
$$;
create trigger render_queue_notify after insert on invoicing.render_queue
  for each statement execute function invoicing.render_queue_notify();
