-- One chunk of the benchmark's read model: orders $1 to $2 (numbers, not ids) with their
-- status history, shipments, invoices, credit notes and cancellations, in one statement
-- (each table's insert reads the same materialised `shaped` rows, so they agree).
--
-- $3 store ids, $4 their channels, $5 currencies, $6 marketplaces (null: none), $7 countries,
-- $8 the number of orders of the whole seed.
-- Stores are skewed like a real platform's (the first is the largest): store k of n takes
-- about (k/n)^0.625 - ((k-1)/n)^0.625 of the orders, 15 % for the first of 20, 3 % for the last.
-- `placed_at` spreads over the last 365 days, a little denser towards today (the business
-- grows), in the order of the numbers: the rows lie in the table in the order they were
-- placed, as the projection writes them (a list of the newest orders reads few pages). The
-- status depends on the age as in a live shop (today's orders in progress, last week's
-- mostly delivered, older ones completed or cancelled). A customer (one of 300,000) has one
-- name and e-mail on every order.
with base as (
  select i,
         1 + least(floor(cardinality($3::text[]) * power(random(), 1.6))::int,
                   cardinality($3::text[]) - 1) as s,
         make_interval(secs => 365 * 86400 * power(1 - (i - random()) / $8::bigint, 1.15)) as age,
         random() as r_status,
         1 + least(floor(power(random(), 2.2) * 5)::int, 4) as n_lines,
         floor(random() * 300000)::int as cid,
         random() as r_misc
  from generate_series($1::bigint, $2::bigint) i
),
aged as (
  select b.*,
         now() - b.age as placed_at,
         $3[s] as store_id, $4[s] as channel, $5[s] as currency, $6[s] as marketplace,
         $7[s] as country,
         case
           when b.age < interval '2 hours' then case
             when r_status < 0.10 then 'accepted' when r_status < 0.13 then 'on_hold'
             when r_status < 0.17 then 'backordered' when r_status < 0.77 then 'processing'
             when r_status < 0.97 then 'shipped' else 'cancelled' end
           when b.age < interval '3 days' then case
             when r_status < 0.10 then 'processing' when r_status < 0.13 then 'partially_shipped'
             when r_status < 0.58 then 'shipped' when r_status < 0.73 then 'delivered'
             when r_status < 0.93 then 'completed' when r_status < 0.96 then 'backordered'
             when r_status < 0.97 then 'on_hold' else 'cancelled' end
           when b.age < interval '14 days' then case
             when r_status < 0.05 then 'shipped' when r_status < 0.10 then 'delivered'
             when r_status < 0.93 then 'completed' when r_status < 0.98 then 'cancelled'
             when r_status < 0.99 then 'backordered' else 'on_hold' end
           else case
             when r_status < 0.943 then 'completed' when r_status < 0.993 then 'cancelled'
             when r_status < 0.996 then 'backordered' else 'on_hold' end
         end as status,
         -- How much of the usual pace (accepted +2 s, processing +90 s, shipped +20 h,
         -- delivered and completed +50 h) an order of this age has had time for.
         least(1.0, extract(epoch from b.age) / (51 * 3600.0) * 0.9) as pace,
         (array['Anna','Jörg','Lena','Lukas','Marie','Felix','Sophie','Jonas','Emma','Paul',
                'Mia','Leon','Hannah','Noah','Lea','Elias','Clara','Finn','Zoé','Luuk',
                'Daan','Sanne','Fleur','Bram','Camille','Léa','Hugo','Chloé','Louis','Manon',
                'Giulia','Marco','Sofia','Luca','Lucía','Mateo','Zofia','Jakub','Astrid',
                'Oskar','Siobhán','Ciarán','Olivia','James','Amélie','Mathis','Ines','Tiago',
                'Nora','Emil'])[1 + b.cid % 50] as first_name,
         (array['Müller','Schmidt','Schneider','Fischer','Weber','Meyer','Wagner','Becker',
                'Schulz','Hoffmann','Schäfer','Koch','Bauer','Richter','Klein','Wolf',
                'de Jong','Jansen','de Vries','van den Berg','Bakker','Visser','Smit',
                'Martin','Bernard','Dubois','Thomas','Robert','Petit','Durand','Lefèvre',
                'Rossi','Russo','Ferrari','Esposito','García','Fernández','López','Nowak',
                'Kowalski','Wiśniewski','Andersson','Johansson','Nielsen','Hansen',
                'Murphy','Kelly','O''Brien','Byrne','Walsh','Silva','Santos','Costa',
                'Novák','Horváth','Kovač','Popescu','Ionescu','Lindqvist','Berg'])
           [1 + (b.cid / 50) % 60] as last_name,
         (array['Hauptstraße','Bahnhofstraße','Kerkstraat','Rue de la Paix','Via Roma',
                'Calle Mayor','Dorfstraße','Marktplatz','Schulweg','Lindenallee',
                'Prinsengracht','Avenue Victor Hugo','Ulica Długa','Storgatan','Main Street'])
           [1 + (b.cid / 3000) % 15] || ' ' || (1 + b.cid % 180) as street,
         (array['Berlin','Hamburg','München','Köln','Frankfurt am Main','Stuttgart',
                'Leipzig','Amsterdam','Utrecht','Rotterdam','Paris','Lyon','Wien','Graz',
                'Milano','Madrid','Warszawa','Stockholm','Dublin','Zürich'])
           [1 + (b.cid / 7) % 20] as city
  from base b
),
shaped as (
  select a.*,
         -- A UUIDv7 of the time it was placed, as the orders worker's ids are.
         (lpad(to_hex((extract(epoch from a.placed_at) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(a.i::text), 1, 3) || '8' || substr(md5(a.i::text), 4, 15))::uuid
           as order_id,
         case
           when a.channel = 'marketplace' and a.store_id like 'amazon-%' then
             format('%s-%s-%s', 300 + a.i % 700, lpad((a.i * 7919 % 10000000)::text, 7, '0'),
                    lpad(a.i::text, 7, '0'))
           when a.channel = 'marketplace' then
             upper(left(a.store_id, 3)) || lpad(a.i::text, 10, '0')
           when a.channel = 'pos' then 'POS-' || lpad(a.i::text, 8, '0')
           else (1000000 + a.i)::text
         end as external_order_id,
         a.first_name || ' ' || a.last_name as customer_name,
         -- The e-mail's name part: lower case, without spaces, apostrophes and accents.
         translate(lower(a.first_name || '.' || a.last_name), 'äöüéèáíóúčśñç ''', 'aoueeaioucsnc')
           || (a.cid % 1000) || '@'
           || (array['example.de','example.nl','example.fr','example.com','example.eu'])
              [1 + a.cid % 5] as customer_email,
         case a.status
           when 'accepted' then array['accepted']
           when 'on_hold' then array['on_hold']
           when 'backordered' then array['accepted','backordered']
           when 'processing' then array['accepted','processing']
           when 'partially_shipped' then array['accepted','processing','partially_shipped']
           when 'shipped' then array['accepted','processing','shipped']
           when 'delivered' then array['accepted','processing','shipped','delivered']
           when 'completed' then array['accepted','processing','shipped','delivered','completed']
           else case when a.r_misc < 0.6 then array['accepted','cancelled']
                     else array['accepted','processing','cancelled'] end
         end as path,
         gen_random_uuid() as invoice_id,
         l.lines, l.items, l.subtotal,
         round(case when l.subtotal >= 50 then 0 else 4.95 end, 2) as shipping
  from aged a
  cross join lateral (
    select jsonb_agg(jsonb_build_object(
               'line_id', k::text, 'sku', 'SKU-' || lpad(p::text, 4, '0'),
               'gtin', '0' || (4006381000000 + p)::text,
               'title', (array['Kaffeebecher „Blau“ 350 ml','Earl Grey Tee, 100 g',
                               'Leinen-Tischdecke 140×240','Schreibtischlampe LED',
                               'Wollsocken, 3 Paar','Notizbuch A5 kariert',
                               'Espressokanne 6 Tassen','Duftkerze Zeder'])[1 + p % 8]
                        || ' (' || p || ')',
               'quantity', q, 'unit_price', price::text, 'discount', '0.00',
               'tax_category', case when p % 8 = 1 then 'reduced' else 'standard' end)
             order by k) as lines,
           jsonb_agg(jsonb_build_object('line_id', k::text, 'sku', 'SKU-' || lpad(p::text, 4, '0'),
                                        'quantity', q) order by k) as items,
           sum(q * price) as subtotal
    from (select k, floor(random() * 480)::int as p,
                 1 + floor(random() * random() * 3)::int as q
          from generate_series(1, a.n_lines) k) picked
    cross join lateral (select round((3.90 + (p % 97) * 1.37)::numeric, 2) as price) priced
  ) l
),
-- When each step of its path happened: the usual pace, slowed to fit the order's age.
timed as (
  select s.*,
         s.placed_at + (array[interval '2 seconds', interval '90 seconds', interval '20 hours',
                              interval '50 hours', interval '50 hours 30 seconds'])
                        [cardinality(s.path)] * s.pace as last_change,
         s.placed_at + interval '20 hours' * s.pace as shipped_at,
         s.placed_at + interval '50 hours' * s.pace as delivered_at
  from shaped s
),
new_orders as (
  insert into orders (order_id, store_id, channel, marketplace, external_order_id, revision,
    placed_at, placed_at_known, status, status_sequence, status_changed_at, currency, total,
    shipping, discount, tax, prices_include_tax, customer_name, customer_email, customer,
    billing_address, shipping_address, address_revision, lines, payment, exceptions,
    completed_at, invoice_numbers, updated_at)
  select t.order_id, t.store_id, t.channel, t.marketplace, t.external_order_id,
         case when held then 0 else 1 end, t.placed_at, not held, t.status,
         cardinality(t.path), t.last_change,
         case when held then null else t.currency end,
         case when held then null else t.subtotal + t.shipping end,
         case when held then null else t.shipping end,
         case when held then null else 0.00 end,
         case when held then null else round((t.subtotal + t.shipping) * 19 / 119, 2) end,
         case when held then null else true end,
         case when held then null else t.customer_name end,
         case when held then null else t.customer_email end,
         case when held then null else jsonb_build_object(
           'id', 'C-' || t.cid, 'email', t.customer_email, 'name', t.customer_name,
           'locale', 'de-DE', 'is_business', t.r_misc < 0.07) end,
         case when held then null else jsonb_build_object(
           'name', t.customer_name, 'lines', jsonb_build_array(t.street),
           'postal_code', lpad((t.cid % 99999)::text, 5, '0'), 'city', t.city,
           'country', t.country) end,
         case when held then null else jsonb_build_object(
           'name', t.customer_name, 'lines', jsonb_build_array(t.street),
           'postal_code', lpad((t.cid % 99999)::text, 5, '0'), 'city', t.city,
           'country', t.country, 'phone', '+49 30 ' || (1000000 + t.cid)) end,
         case when held then 0 else 1 end,
         case when held then null else t.lines end,
         case when held then null
              when t.channel = 'marketplace' then jsonb_build_object('method', 'marketplace', 'status', 'paid')
              else jsonb_build_object('method', (array['card','paypal','klarna','sepa'])[1 + t.cid % 4],
                                      'reference', 'psp_' || left(md5(t.i::text), 10),
                                      'status', 'captured') end,
         case when held then jsonb_build_array(jsonb_build_object(
           'exception_id', gen_random_uuid(), 'line_id', '1',
           'gtin', t.lines -> 0 ->> 'gtin', 'title', t.lines -> 0 ->> 'title',
           'problem', 'unknown_gtin')) end,
         case when t.status = 'completed' then t.last_change end,
         case when t.status = 'completed'
              then jsonb_build_array('RE-' || upper(left(t.store_id, 2)) || '-' || lpad(t.i::text, 8, '0')) end,
         t.last_change
  from timed t
  cross join lateral (select t.status = 'on_hold' as held) h
  returning 1
),
new_history as (
  insert into status_history (order_id, sequence, from_status, to_status, reason, changed_at)
  select t.order_id, k, t.path[k - 1], t.path[k],
         case when t.path[k] = 'cancelled' then 'customer_request'
              when t.path[k] = 'backordered' then 'insufficient_stock' end,
         t.placed_at + (array[interval '2 seconds', interval '90 seconds', interval '20 hours',
                              interval '50 hours', interval '50 hours 30 seconds'])[k] * t.pace
  from timed t cross join generate_series(1, cardinality(t.path)) k
  returning 1
),
new_shipments as (
  insert into shipments (shipment_id, order_id, warehouse_id, ship_to, shipping_method, items,
    requested_at, carrier, tracking_number, tracking_url, dispatched_at, delivered_at)
  select gen_random_uuid(), t.order_id,
         (array['berlin-1','amsterdam-1','paris-1','warszawa-1'])[n + t.cid % 2],
         jsonb_build_object('name', t.customer_name, 'lines', jsonb_build_array(t.street),
                            'postal_code', lpad((t.cid % 99999)::text, 5, '0'), 'city', t.city,
                            'country', t.country),
         'standard', t.items,
         t.placed_at + interval '90 seconds' * t.pace,
         case when dispatched then (array['dhl','postnl','dpd','ups'])[1 + t.cid % 4] end,
         case when dispatched then '00340434' || lpad((t.i * 2 + n)::text, 12, '0') end,
         case when dispatched then 'https://track.example/' || (array['dhl','postnl','dpd','ups'])[1 + t.cid % 4] || '/00340434'
                                    || lpad((t.i * 2 + n)::text, 12, '0') end,
         case when dispatched then t.shipped_at end,
         case when t.status in ('delivered', 'completed') then t.delivered_at end
  from timed t
  cross join generate_series(1, case when t.status = 'partially_shipped'
                                       or (t.n_lines > 1 and t.r_misc > 0.9) then 2 else 1 end) n
  cross join lateral (select t.status in ('shipped', 'delivered', 'completed')
                             or (t.status = 'partially_shipped' and n = 1) as dispatched) d
  where t.status in ('processing', 'partially_shipped', 'shipped', 'delivered', 'completed')
  returning 1
),
new_documents as (
  insert into documents (document_id, order_id, kind, number, invoice_id, invoice_number, reason,
    issued_at, currency, vat_treatment, net, tax, gross, pdf_uri, pdf_sha256, pdf_size_bytes)
  select case when credit then gen_random_uuid() else t.invoice_id end, t.order_id,
         case when credit then 'credit_note' else 'invoice' end,
         (case when credit then 'GS-' else 'RE-' end) || upper(left(t.store_id, 2)) || '-'
           || lpad(t.i::text, 8, '0'),
         case when credit then t.invoice_id end,
         case when credit then 'RE-' || upper(left(t.store_id, 2)) || '-' || lpad(t.i::text, 8, '0') end,
         case when credit then 'refund' end,
         t.shipped_at + interval '10 minutes' + (case when credit then interval '9 days' else interval '0' end) * t.pace,
         t.currency,
         case when t.r_misc < 0.08 then 'oss' when t.r_misc < 0.1 then 'reverse_charge' else 'domestic' end,
         round((t.subtotal + t.shipping) * 100 / 119, 2),
         (t.subtotal + t.shipping) - round((t.subtotal + t.shipping) * 100 / 119, 2),
         t.subtotal + t.shipping,
         's3://orderly-documents/' || t.store_id || '/' || (case when credit then 'credit-notes/' else 'invoices/' end)
           || t.i || '.pdf',
         encode(sha256(convert_to(t.i::text || credit::text, 'UTF8')), 'hex'),
         40000 + t.cid % 20000
  from timed t
  cross join (values (false), (true)) c(credit)
  where t.status in ('partially_shipped', 'shipped', 'delivered', 'completed')
    and (not credit or (t.status = 'completed' and t.r_misc < 0.03))
  returning 1
),
new_cancellations as (
  insert into cancellations (message_id, order_id, scope, lines, reason, cancelled_at)
  select gen_random_uuid(), t.order_id, 'order', '[]'::jsonb, 'customer_request', t.last_change
  from timed t where t.status = 'cancelled'
  returning 1
)
select (select count(*) from new_orders), (select count(*) from new_history),
       (select count(*) from new_shipments), (select count(*) from new_documents),
       (select count(*) from new_cancellations)
