-- Exemption references per product (issue 18, Art. 226(11)): an exempt product's
-- `catalog.product_upserted` may name the provision its supply is exempt under; the orders
-- worker keeps it with the product and snapshots it on the line it matches (like the tax
-- class), `order.accepted` and `invoice.requested` carry it, and fulfillment keeps it with
-- the order's lines to build the invoice requests.
alter table orders.products add column exemption_reference text;
alter table orders.order_lines add column exemption_reference text;
alter table fulfillment.order_lines add column exemption_reference text;
