-- Common ETL shapes: staging, upserts (MERGE, DELETE USING), SCD type 2, deduplication.
-- case: staging_upsert_delete_using
-- source: https://docs.aws.amazon.com/redshift/latest/dg/merge-replacing-existing-rows.html
create temp table stage (like sales);
insert into stage select * from sales where salesid < 3;
update stage set pricepaid = pricepaid + 1;
begin transaction;
delete from sales using stage where sales.salesid = stage.salesid;
insert into sales select * from stage;
end transaction;
drop table stage;
-- case: merge_update_insert
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MERGE.html
create temp table target (id int, name varchar(20));
create temp table source (id int, name varchar(20));
insert into target values (101, 'Bob'), (102, 'John'), (103, 'Susan');
insert into source values (102, 'Tony'), (104, 'Alice');
merge into target using source on target.id = source.id
when matched then update set id = source.id, name = source.name
when not matched then insert values (source.id, source.name);
select id, name from target order by id;
-- case: merge_documented_result
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MERGE.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 101 | Bob
-- expect: 102 | Tony
-- expect: 103 | Susan
-- expect: 104 | Alice
create temp table target (id int, name varchar(20));
create temp table source (id int, name varchar(20));
insert into target values (101, 'Bob'), (102, 'John'), (103, 'Susan');
insert into source values (102, 'Tony'), (104, 'Alice');
merge into target using source on target.id = source.id
when matched then update set id = source.id, name = source.name
when not matched then insert values (source.id, source.name);
select id, name from target order by id;
-- case: merge_delete
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MERGE.html
create temp table target (id int, name varchar(20));
create temp table source (id int, name varchar(20));
insert into target values (101, 'Bob'), (102, 'John');
insert into source values (102, 'Tony');
merge into target using source on target.id = source.id when matched then delete when not matched then insert values (source.id, source.name);
select count(*) from target;
-- case: merge_remove_duplicates
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MERGE.html
create temp table target (id int, name varchar(20));
create temp table source (id int, name varchar(20));
merge into target using source on target.id = source.id remove duplicates;
-- case: update_from
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_Examples_of_UPDATE_statements.html
update category set catdesc = 'Broadway musical' from event where category.catid = event.catid and eventname = 'Wicked';
-- case: delete_using
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html
delete from sales using event where sales.eventid = event.eventid and event.catid = 9;
-- case: delete_where_in
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html
delete from category where catid in (select catid from category where catgroup = 'Concerts');
-- case: insert_select
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_Examples_of_INSERT_30.html
create table category_stage (like category);
insert into category_stage (select * from category);
select count(*) from category_stage;
-- case: insert_default_values
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_Examples_of_INSERT_30.html
create table category_stage2 (catid smallint default 0, catgroup varchar(10) default 'General');
insert into category_stage2 default values;
select * from category_stage2;
-- case: insert_multi_row
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_Examples_of_INSERT_30.html
create table category_stage3 (like category);
insert into category_stage3 values (12, 'Concerts', 'Comedy', 'All stand-up comedy performances'), (13, 'Concerts', 'Other', default);
-- case: scd2_close_and_insert
-- source: https://github.com/aws-samples/amazon-redshift-slowly-changing-dimensions
create temp table dim_customer (customer_id int, city varchar(30), valid_from timestamp, valid_to timestamp, is_current boolean);
create temp table stg_customer (customer_id int, city varchar(30));
insert into dim_customer values (1, 'Kent', '2008-01-01', '9999-12-31', true);
insert into stg_customer values (1, 'Omaha'), (2, 'Frisco');
update dim_customer set valid_to = getdate(), is_current = false from stg_customer s where dim_customer.customer_id = s.customer_id and dim_customer.is_current and dim_customer.city <> s.city;
insert into dim_customer select s.customer_id, s.city, getdate(), '9999-12-31', true from stg_customer s left join dim_customer d on d.customer_id = s.customer_id and d.is_current where d.customer_id is null;
select count(*) from dim_customer where is_current;
-- case: dedupe_row_number
-- source: https://github.com/aws-samples/amazon-redshift-udfs
create temp table dup as select * from sales union all select * from sales where salesid = 1;
delete from dup where salesid in (select salesid from (select salesid, row_number() over (partition by salesid order by saletime) as rn from dup) where rn > 1);
-- case: staging_nvl_dateadd_transform
-- source: https://github.com/aws-samples/amazon-redshift-sample-etl
create temp table stg_orders as select salesid, nvl(commission, 0) as commission, dateadd(day, 1, trunc(saletime)) as settled from sales;
select count(*) from stg_orders;
-- case: incremental_high_water_mark
-- source: https://github.com/aws-samples/amazon-redshift-sample-etl
select nvl(max(saletime), '1900-01-01'::timestamp) from sales where saletime < dateadd(day, -1, getdate());
-- case: append_alter_table_append
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE_APPEND.html
-- autocommit
create table t_app_src (a int);
create table t_app_dst (a int);
insert into t_app_src values (1);
alter table t_app_dst append from t_app_src;
select count(*) from t_app_dst;
