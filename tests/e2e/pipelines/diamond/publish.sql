-- Publish: one report row for the run date, from the three fan-out steps' tables.
delete from dmd_report where order_date = {{run_date}};
insert into dmd_report (order_date, orders, revenue, regions, top_customer)
select {{run_date}},
       (select orders from dmd_checks where order_date = {{run_date}} and check_name = 'totals'),
       (select sum(revenue) from dmd_revenue_by_region where order_date = {{run_date}}),
       (select count(*) from dmd_revenue_by_region where order_date = {{run_date}}),
       (select customer_id from dmd_top_customers where order_date = {{run_date}} and position_no = 1);
