-- CheckTotals: every valid order was enriched. The select divides by zero (the statement fails,
-- which the pipeline reports as Diamond.TotalsMismatch) when the counts or amounts differ.
select 1 / (case when (select count(*) from dmd_enriched where order_date = {{run_date}})
                      = (select count(*) from dmd_orders where order_date = {{run_date}})
                  and (select coalesce(sum(amount), 0) from dmd_enriched where order_date = {{run_date}})
                      = (select coalesce(sum(amount), 0) from dmd_orders where order_date = {{run_date}})
                 then 1 else 0 end);
delete from dmd_checks where order_date = {{run_date}} and check_name = 'totals';
insert into dmd_checks (order_date, check_name, orders, amount)
select {{run_date}}, 'totals', count(*), sum(amount)
from dmd_enriched
where order_date = {{run_date}};
