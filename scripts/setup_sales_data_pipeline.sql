-- SetupSalesDataPipeline: creates the sales schema (if missing) and loads idempotent sample data.
-- Runs as one Data API batch, i.e. one transaction. Re-running it changes nothing except adding the
-- date_dim row of a new run date. Sample rows are inserted only when their primary key is absent
-- (Redshift does not enforce primary keys, so the guard is what keeps them unique).
-- Every table lives in the schema {{schema}} (pipeline.toml's [vars], default public): two stacks
-- with different schemas share one warehouse without sharing a table.

create schema if not exists {{schema}};

create table if not exists {{schema}}.customer (
    c_customer_sk     int4     not null encode az64,
    c_customer_id     char(16) not null encode zstd,
    c_current_addr_sk int4              encode az64,
    c_first_name      char(20)          encode zstd,
    c_last_name       char(30)          encode zstd,
    primary key (c_customer_sk)
) distkey(c_customer_sk);

create table if not exists {{schema}}.customer_address (
    ca_address_sk int4        not null encode az64,
    ca_address_id char(16)    not null encode zstd,
    ca_state      char(2)              encode zstd,
    ca_zip        char(10)             encode zstd,
    ca_country    varchar(20)          encode zstd,
    primary key (ca_address_sk)
) distkey(ca_address_sk);

create table if not exists {{schema}}.date_dim (
    d_date_sk  integer  not null encode az64,
    d_date_id  char(16) not null encode zstd,
    d_date     date              encode az64,
    d_day_name char(9)           encode zstd,
    primary key (d_date_sk)
) diststyle all;

create table if not exists {{schema}}.item (
    i_item_sk        int4          not null encode az64,
    i_item_id        char(16)      not null encode zstd,
    i_rec_start_date date                   encode az64,
    i_rec_end_date   date                   encode az64,
    i_current_price  numeric(7, 2)          encode az64,
    i_category       char(50)               encode zstd,
    i_product_name   char(50)               encode zstd,
    primary key (i_item_sk)
) distkey(i_item_sk) sortkey(i_category);

create table if not exists {{schema}}.store_sales (
    ss_sold_date_sk  int4                   encode az64,
    ss_item_sk       int4          not null encode az64,
    ss_customer_sk   int4                   encode az64,
    ss_addr_sk       int4                   encode az64,
    ss_store_sk      int4                   encode az64,
    ss_ticket_number int8          not null encode az64,
    ss_quantity      int4                   encode az64,
    ss_net_paid      numeric(7, 2)          encode az64,
    ss_net_profit    numeric(7, 2)          encode az64,
    primary key (ss_item_sk, ss_ticket_number)
) distkey(ss_item_sk) sortkey(ss_sold_date_sk);

-- Sample addresses: the initial (history-free) versions.
insert into {{schema}}.customer_address (ca_address_sk, ca_address_id, ca_state, ca_zip, ca_country)
select v.ca_address_sk, v.ca_address_id, v.ca_state, v.ca_zip, v.ca_country
from (
    select 1 as ca_address_sk, cast('ADDR000000000001' as char(16)) as ca_address_id,
           cast('CA' as char(2)) as ca_state, cast('94105' as char(10)) as ca_zip,
           cast('United States' as varchar(20)) as ca_country
    union all
    select 2, cast('ADDR000000000002' as char(16)), cast('WA' as char(2)), cast('98101' as char(10)),
           cast('United States' as varchar(20))
    union all
    select 3, cast('ADDR000000000003' as char(16)), cast('NY' as char(2)), cast('10001' as char(10)),
           cast('United States' as varchar(20))
) v
left join {{schema}}.customer_address t on t.ca_address_sk = v.ca_address_sk
where t.ca_address_sk is null;

-- Sample customers, each living at the address with the same number.
insert into {{schema}}.customer (c_customer_sk, c_customer_id, c_current_addr_sk, c_first_name, c_last_name)
select v.c_customer_sk, v.c_customer_id, v.c_current_addr_sk, v.c_first_name, v.c_last_name
from (
    select 1 as c_customer_sk, cast('CUST000000000001' as char(16)) as c_customer_id,
           1 as c_current_addr_sk, cast('Mary' as char(20)) as c_first_name,
           cast('Major' as char(30)) as c_last_name
    union all
    select 2, cast('CUST000000000002' as char(16)), 2, cast('John' as char(20)), cast('Doe' as char(30))
    union all
    select 3, cast('CUST000000000003' as char(16)), 3, cast('Jane' as char(20)), cast('Roe' as char(30))
) v
left join {{schema}}.customer t on t.c_customer_sk = v.c_customer_sk
where t.c_customer_sk is null;

-- Sample items: one current version each (open-ended, started 2021-01-01).
insert into {{schema}}.item (i_item_sk, i_item_id, i_rec_start_date, i_rec_end_date, i_current_price,
                  i_category, i_product_name)
select v.i_item_sk, v.i_item_id, v.i_rec_start_date, v.i_rec_end_date, v.i_current_price,
       v.i_category, v.i_product_name
from (
    select 1 as i_item_sk, cast('ITEM000000000001' as char(16)) as i_item_id,
           cast('2021-01-01' as date) as i_rec_start_date, cast(null as date) as i_rec_end_date,
           cast(10.00 as numeric(7, 2)) as i_current_price, cast('Books' as char(50)) as i_category,
           cast('Rust in Action' as char(50)) as i_product_name
    union all
    select 2, cast('ITEM000000000002' as char(16)), cast('2021-01-01' as date), cast(null as date),
           cast(25.00 as numeric(7, 2)), cast('Electronics' as char(50)), cast('USB Cable' as char(50))
    union all
    select 3, cast('ITEM000000000003' as char(16)), cast('2021-01-01' as date), cast(null as date),
           cast(5.00 as numeric(7, 2)), cast('Kitchen' as char(50)), cast('Coffee Mug' as char(50))
) v
left join {{schema}}.item t on t.i_item_sk = v.i_item_sk
where t.i_item_sk is null;

-- The run date's calendar row (key yyyymmdd), so that any run date can be loaded.
insert into {{schema}}.date_dim (d_date_sk, d_date_id, d_date, d_day_name)
select v.d_date_sk, v.d_date_id, v.d_date, v.d_day_name
from (
    select cast(to_char({{run_date}}::date, 'YYYYMMDD') as integer) as d_date_sk,
           cast('D' || to_char({{run_date}}::date, 'YYYYMMDD') as char(16)) as d_date_id,
           {{run_date}}::date as d_date,
           cast(to_char({{run_date}}::date, 'Day') as char(9)) as d_day_name
) v
left join {{schema}}.date_dim t on t.d_date_sk = v.d_date_sk
where t.d_date_sk is null;
