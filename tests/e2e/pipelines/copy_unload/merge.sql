-- Merge: running totals per product, upserted with the run date's revenue.
create table if not exists cu_product_totals (
    product_code varchar(12) not null,
    product_name varchar(64),
    category varchar(16),
    days integer,
    units integer,
    revenue decimal(14, 2),
    first_sold date,
    last_sold date,
    last_month char(7)
);

merge into cu_product_totals
using (select * from cu_daily_revenue where sold_on = {{run_date}}) d
on cu_product_totals.product_code = d.product_code
when matched then update set
    days = cu_product_totals.days + 1,
    units = cu_product_totals.units + d.units,
    revenue = cu_product_totals.revenue + d.revenue,
    last_sold = greatest(cu_product_totals.last_sold, d.sold_on),
    last_month = to_char(date_trunc('month', d.sold_on), 'YYYY-MM')
when not matched then insert (product_code, product_name, category, days, units, revenue, first_sold, last_sold, last_month)
values (d.product_code, d.product_name, d.category, 1, d.units, d.revenue, d.sold_on, d.sold_on,
        to_char(date_trunc('month', d.sold_on), 'YYYY-MM'));
