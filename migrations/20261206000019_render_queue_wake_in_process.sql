-- The invoice renderer is woken in process by the invoicing consumer after it commits a
-- document (orderly_runtime::HandlerContext::wake_after_commit), not by a NOTIFY from this
-- trigger: PostgreSQL lets only one notifying transaction commit at a time (decision 0006),
-- and every batch of invoice requests inserts render jobs. Jobs queued by another process
-- (another copy of the worker) are found by that copy's renderer, or at the poll interval.
drop trigger if exists render_queue_notify on invoicing.render_queue;
drop function if exists invoicing.render_queue_notify();
