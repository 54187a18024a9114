-- LoadStoreSales: replaces the run date's store_sales rows from the staged sales.
-- Joins: date_dim on the date (inner), the CURRENT item version by business id (inner), customer and
-- customer_address by business id (left, unknown ids give NULL keys).
-- Ticket numbers are yyyymmdd * 100 + n so different run dates never collide on the
-- (ss_item_sk, ss_ticket_number) primary key. Idempotent: delete the date, then insert it again.

-- The staging table is TEMPORARY: a Data API batch is one session, so it exists only for this
-- batch and two runs (two stacks on one warehouse, RunConcurrency above 1) never share it.
create temp table stg_store_sales (
    sold_date        date                   encode az64,
    i_item_id        char(16)               encode zstd,
    c_customer_id    char(16)               encode zstd,
    ca_address_id    char(16)               encode zstd,
    ss_ticket_number int8                   encode az64,
    ss_quantity      int4                   encode az64,
    ss_net_paid      numeric(7, 2)          encode az64,
    ss_net_profit    numeric(7, 2)          encode az64
) diststyle even;

-- Ticket 1 has two lines (the re-priced ITEM...01 and the unchanged ITEM...03), ticket 2 buys the
-- renamed ITEM...02 at the updated address, ticket 3 buys the new ITEM...04 at the new address by an
-- unknown customer (NULL customer key), ticket 4 names an unknown item and is dropped by the join.
insert into stg_store_sales (sold_date, i_item_id, c_customer_id, ca_address_id, ss_ticket_number,
                             ss_quantity, ss_net_paid, ss_net_profit) values
    ({{run_date}}::date, 'ITEM000000000001', 'CUST000000000001', 'ADDR000000000001',
     cast(to_char({{run_date}}::date, 'YYYYMMDD') as int8) * 100 + 1, 2, 25.00, 5.00),
    ({{run_date}}::date, 'ITEM000000000003', 'CUST000000000001', 'ADDR000000000001',
     cast(to_char({{run_date}}::date, 'YYYYMMDD') as int8) * 100 + 1, 4, 20.00, 2.00),
    ({{run_date}}::date, 'ITEM000000000002', 'CUST000000000002', 'ADDR000000000002',
     cast(to_char({{run_date}}::date, 'YYYYMMDD') as int8) * 100 + 2, 1, 25.00, 3.00),
    ({{run_date}}::date, 'ITEM000000000004', 'CUST000000000099', 'ADDR000000000004',
     cast(to_char({{run_date}}::date, 'YYYYMMDD') as int8) * 100 + 3, 1, 7.25, 1.25),
    ({{run_date}}::date, 'ITEM000000000099', 'CUST000000000003', 'ADDR000000000003',
     cast(to_char({{run_date}}::date, 'YYYYMMDD') as int8) * 100 + 4, 3, 9.00, 0.50);

delete from {{schema}}.store_sales
where ss_sold_date_sk in (select d_date_sk from {{schema}}.date_dim where d_date = {{run_date}}::date);

insert into {{schema}}.store_sales (ss_sold_date_sk, ss_item_sk, ss_customer_sk, ss_addr_sk, ss_store_sk,
                         ss_ticket_number, ss_quantity, ss_net_paid, ss_net_profit)
select d.d_date_sk, i.i_item_sk, c.c_customer_sk, ca.ca_address_sk, cast(null as int4),
       s.ss_ticket_number, s.ss_quantity, s.ss_net_paid, s.ss_net_profit
from stg_store_sales s
join {{schema}}.date_dim d on d.d_date = s.sold_date
join {{schema}}.item i on i.i_item_id = s.i_item_id and i.i_rec_end_date is null
left join {{schema}}.customer c on c.c_customer_id = s.c_customer_id
left join {{schema}}.customer_address ca on ca.ca_address_id = s.ca_address_id
where s.sold_date = {{run_date}}::date;
