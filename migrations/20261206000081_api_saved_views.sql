-- The console's saved views: a staff member's named filters of the order list (the list's
-- own query string, checked by its parser when saved), shown above the list.
create table api.saved_views (
  view_id    uuid        primary key,
  staff_id   uuid        not null references api.staff on delete cascade,
  name       text        not null check (length(name) between 1 and 80),
  query      text        not null check (length(query) <= 2000),
  created_at timestamptz not null default now(),
  unique (staff_id, name)
);
