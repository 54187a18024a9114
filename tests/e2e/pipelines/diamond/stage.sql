-- Stage: the dmd_* tables, the run date's raw orders (replaced) and the customer list (replaced).
create table if not exists dmd_raw_orders (
    order_id integer not null,
    customer_id varchar(8) not null,
    amount decimal(10, 2) not null,
    order_date date not null
);
create table if not exists dmd_raw_customers (customer_id varchar(8) not null, name varchar(32), region varchar(8));
create table if not exists dmd_orders (order_date date not null, order_id integer not null, customer_id varchar(8), amount decimal(10, 2));
create table if not exists dmd_customers (customer_id varchar(8) not null, name varchar(32), region varchar(8));
create table if not exists dmd_enriched (
    order_date date not null, order_id integer not null, customer_id varchar(8), name varchar(32),
    region varchar(8), amount decimal(10, 2)
);
create table if not exists dmd_revenue_by_region (order_date date not null, region varchar(8), revenue decimal(12, 2));
create table if not exists dmd_checks (order_date date not null, check_name varchar(32), orders integer, amount decimal(12, 2));
create table if not exists dmd_top_customers (order_date date not null, position_no integer, customer_id varchar(8), revenue decimal(12, 2));
create table if not exists dmd_report (
    order_date date not null, orders integer, revenue decimal(12, 2), regions integer, top_customer varchar(8)
);

delete from dmd_raw_orders where order_date = {{run_date}};
insert into dmd_raw_orders (order_id, customer_id, amount, order_date) values
    (1, 'C1', 10.00, {{run_date}}),
    (2, 'C2', 25.50, {{run_date}}),
    (3, 'C1', 4.50, {{run_date}}),
    (4, 'C3', 40.00, {{run_date}}),
    (5, 'C2', -1.00, {{run_date}});

delete from dmd_raw_customers;
insert into dmd_raw_customers (customer_id, name, region) values
    ('C1', '  Ada ', 'eu'),
    ('C2', 'Grace', 'us'),
    ('C3', 'Linus ', 'eu');
