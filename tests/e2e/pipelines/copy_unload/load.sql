-- Load: the raw sales (CSV, gzip, every object under the prefix) and the product list (Parquet),
-- replaced on every run. DELETE, not TRUNCATE: TRUNCATE commits the batch's transaction on Redshift.
create table if not exists cu_raw_sales (
    sale_id integer not null,
    sold_on date not null,
    product_code varchar(12) not null,
    customer varchar(32),
    quantity integer,
    unit_price decimal(10, 2)
);
create table if not exists cu_products (
    product_code varchar(12) not null,
    product_name varchar(64),
    category varchar(16)
);

delete from cu_raw_sales;
copy cu_raw_sales
from 's3://team-raw-data/sales/'
iam_role 'arn:aws:iam::123456789012:role/RedshiftCopyUnload'
format as csv
ignoreheader 1
dateformat 'DD/MM/YYYY'
emptyasnull
gzip
region 'us-east-1';

delete from cu_products;
copy cu_products
from 's3://team-raw-data/products/'
iam_role 'arn:aws:iam::123456789012:role/RedshiftCopyUnload'
format as parquet;
