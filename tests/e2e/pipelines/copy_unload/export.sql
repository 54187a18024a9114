-- Export: the running totals, one CSV file with a header and a manifest, replaced on every run.
unload ('select product_code, product_name, category, days, units, revenue, first_sold, last_sold,
                split_part(last_month, \'-\', 1) as last_year
         from cu_product_totals
         order by revenue desc, product_code')
to 's3://team-exports/product-totals/'
iam_role 'arn:aws:iam::123456789012:role/RedshiftCopyUnload'
format as csv
header
parallel off
manifest
allowoverwrite;
