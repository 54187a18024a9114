-- Transform: the run date's revenue per product; product codes are normalised (trimmed, upper
-- case), unknown products keep their code as the name, customers are counted once each. Redshift
-- functions (NVL, NVL2, DATEDIFF with a bare datepart) run as they would on Redshift.
create table if not exists cu_daily_revenue (
    sold_on date not null,
    product_code varchar(12) not null,
    product_name varchar(64),
    category varchar(16),
    customers integer,
    units integer,
    revenue decimal(12, 2)
);

delete from cu_daily_revenue where sold_on = {{run_date}};
insert into cu_daily_revenue (sold_on, product_code, product_name, category, customers, units, revenue)
select s.sold_on,
       upper(trim(s.product_code)),
       nvl(p.product_name, upper(btrim(s.product_code))),
       nvl2(p.category, initcap(p.category), 'Unknown'),
       count(distinct lower(trim(s.customer))),
       sum(s.quantity),
       round(sum(s.quantity * s.unit_price), 2)
from cu_raw_sales s
left join cu_products p on p.product_code = upper(trim(s.product_code))
where datediff(day, s.sold_on, {{run_date}}) = 0
  and nvl(s.quantity, 0) <> 0
group by s.sold_on, upper(trim(s.product_code)), p.product_name, p.category;
