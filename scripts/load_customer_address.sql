-- LoadCustomerAddress: slowly changing dimension type 1 on customer_address.
-- Staged rows overwrite the attributes of a matching ca_address_id in place. Unknown ids get new
-- surrogate keys max(ca_address_sk) + row_number() ordered by ca_address_id.
-- Idempotent: a second run finds nothing changed and nothing unknown.

-- The staging table is TEMPORARY: a Data API batch is one session, so it exists only for this
-- batch and two runs (two stacks on one warehouse, RunConcurrency above 1) never share it.
create temp table stg_customer_address (
    ca_address_id char(16)    not null encode zstd,
    ca_state      char(2)              encode zstd,
    ca_zip        char(10)             encode zstd,
    ca_country    varchar(20)          encode zstd
) diststyle even;

-- ADDR...02 moved from WA to OR (update in place), ADDR...03 unchanged, ADDR...04 is new (insert).
insert into stg_customer_address (ca_address_id, ca_state, ca_zip, ca_country) values
    ('ADDR000000000002', 'OR', '97201', 'United States'),
    ('ADDR000000000003', 'NY', '10001', 'United States'),
    ('ADDR000000000004', 'TX', '78701', 'United States');

-- Type 1 update: overwrite changed attributes of existing ids.
update {{schema}}.customer_address
set ca_state = s.ca_state,
    ca_zip = s.ca_zip,
    ca_country = s.ca_country
from stg_customer_address s
where customer_address.ca_address_id = s.ca_address_id
  and (coalesce(customer_address.ca_state, '') <> coalesce(s.ca_state, '')
       or coalesce(customer_address.ca_zip, '') <> coalesce(s.ca_zip, '')
       or coalesce(customer_address.ca_country, '') <> coalesce(s.ca_country, ''));

-- New ids: next surrogate keys in business-id order.
insert into {{schema}}.customer_address (ca_address_sk, ca_address_id, ca_state, ca_zip, ca_country)
select m.max_sk + row_number() over (order by s.ca_address_id),
       s.ca_address_id, s.ca_state, s.ca_zip, s.ca_country
from stg_customer_address s
cross join (select coalesce(max(ca_address_sk), 0) as max_sk from {{schema}}.customer_address) m
where not exists (
    select 1 from {{schema}}.customer_address t where t.ca_address_id = s.ca_address_id
);
