-- ValidateSalesData: fails the run when store_sales holds no rows for the run date.
-- count(*) = 0 makes 1 / count(*) raise a division-by-zero error, the statement fails, and the
-- step's `errors` mapping in pipeline.toml renames that Redshift.StatementFailed to Validation.NoSalesLoaded.
select 1 / count(*) as sales_loaded_check
from {{schema}}.store_sales ss
join {{schema}}.date_dim d on d.d_date_sk = ss.ss_sold_date_sk
where d.d_date = {{run_date}}::date;
