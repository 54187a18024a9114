-- Orders: the run date's valid orders (a non-positive amount is a data error upstream and dropped).
delete from dmd_orders where order_date = {{run_date}};
insert into dmd_orders (order_date, order_id, customer_id, amount)
select order_date, order_id, customer_id, amount
from dmd_raw_orders
where order_date = {{run_date}} and amount > 0;
