-- TopCustomers: the run date's two best customers by revenue.
delete from dmd_top_customers where order_date = {{run_date}};
insert into dmd_top_customers (order_date, position_no, customer_id, revenue)
select order_date, position_no, customer_id, revenue
from (
    select order_date, customer_id, sum(amount) as revenue,
           row_number() over (order by sum(amount) desc, customer_id) as position_no
    from dmd_enriched
    where order_date = {{run_date}}
    group by order_date, customer_id
) ranked
where position_no <= 2;
