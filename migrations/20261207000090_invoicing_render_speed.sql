-- Issue 18 (performance of invoicing with Factur-X).
--
-- A PDF's streams are already deflated, so PostgreSQL's TOAST compression of the archive
-- copy (pglz by default) spent CPU on every insert to save next to nothing. Store the bytes
-- out of line, uncompressed. Rows written before stay as they are.
alter table invoicing.document_pdfs alter column pdf set storage external;

-- The renderer asks when the next job is due (`min(available_at)`) after every round that
-- drained the queue; without an index that read the whole queue, dead rows included, and
-- under load it was among the statements most often running.
create index render_queue_due on invoicing.render_queue (available_at);
