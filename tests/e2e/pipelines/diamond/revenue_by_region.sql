-- RevenueByRegion: the run date's revenue per customer region.
delete from dmd_revenue_by_region where order_date = {{run_date}};
insert into dmd_revenue_by_region (order_date, region, revenue)
select order_date, region, sum(amount)
from dmd_enriched
where order_date = {{run_date}}
group by order_date, region;
