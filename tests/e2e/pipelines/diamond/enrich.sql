-- Enrich: the run date's orders with their customer's name and region.
delete from dmd_enriched where order_date = {{run_date}};
insert into dmd_enriched (order_date, order_id, customer_id, name, region, amount)
select o.order_date, o.order_id, o.customer_id, c.name, c.region, o.amount
from dmd_orders o
join dmd_customers c on c.customer_id = o.customer_id
where o.order_date = {{run_date}};
