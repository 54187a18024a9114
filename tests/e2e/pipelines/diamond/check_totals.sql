-- CheckTotals: the run date's enriched totals, for the report (the TotalsMatch check in pipeline.toml
-- compares them with the valid orders).
delete from dmd_checks where order_date = {{run_date}} and check_name = 'totals';
insert into dmd_checks (order_date, check_name, orders, amount)
select {{run_date}}, 'totals', count(*), sum(amount)
from dmd_enriched
where order_date = {{run_date}};
