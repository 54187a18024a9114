-- Customers: the cleaned customer list (replaced).
delete from dmd_customers;
insert into dmd_customers (customer_id, name, region)
select customer_id, trim(name), upper(region)
from dmd_raw_customers;
