-- SQL as dbt-redshift's macros render it (adapters.sql, materializations).
-- case: dbt_create_table_as
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
create  table
    "dev"."public"."my_model__dbt_tmp"
    diststyle even
    compound sortkey(catid)
  as (
    select catid, catname from "dev"."public"."category"
  );
-- case: dbt_create_view_late_binding
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
create view "dev"."public"."my_view__dbt_tmp" as (
    select * from "dev"."public"."sales"
  ) with no schema binding;
-- case: dbt_create_view
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
create view "dev"."public"."my_view2__dbt_tmp" as (
    select 1 as id
  );
-- case: dbt_rename_relation
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
create table "dev"."public"."m__dbt_tmp" (a int);
alter table "dev"."public"."m__dbt_tmp" rename to "m";
-- case: dbt_get_columns
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
with bound_views as (
  select ordinal_position, table_schema, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
  from information_schema."columns"
  where table_name = 'category'
),
unbound_views as (
  select ordinal_position, view_schema, col_name, case when col_type ilike 'character varying%' then 'character varying' when col_type ilike 'numeric%' then 'numeric' else col_type end as col_type, case when col_type like 'character%' then nullif(REGEXP_SUBSTR(col_type, '[0-9]+'), '')::int else null end as character_maximum_length, case when col_type like 'numeric%' then nullif(SPLIT_PART(REGEXP_SUBSTR(col_type, '[0-9,]+'), ',', 1), '')::int else null end as numeric_precision, case when col_type like 'numeric%' then nullif(SPLIT_PART(REGEXP_SUBSTR(col_type, '[0-9,]+'), ',', 2), '')::int else null end as numeric_scale
  from pg_get_late_binding_view_cols() cols(view_schema name, view_name name, col_name name, col_type varchar, ordinal_position int)
  where view_name = 'category'
)
select column_name, data_type from bound_views order by ordinal_position;
-- case: dbt_list_relations
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
select 'dev' as database, tablename as name, schemaname as schema, 'table' as type from pg_tables where schemaname ilike 'public'
union all
select 'dev' as database, viewname as name, schemaname as schema, 'view' as type from pg_views where schemaname ilike 'public';
-- case: dbt_list_schemas
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
select distinct nspname from pg_namespace;
-- case: dbt_check_schema_exists
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
select count(*) from pg_namespace where nspname = 'public';
-- case: dbt_incremental_delete_insert
-- source: https://github.com/dbt-labs/dbt-adapters/blob/main/dbt-adapters/src/dbt/include/global_project/macros/materializations/models/incremental/strategies.sql
create temporary table "my_inc__dbt_tmp" as (select * from sales where salesid > 5);
delete from "dev"."public"."sales" where (salesid) in (select (salesid) from "my_inc__dbt_tmp");
insert into "dev"."public"."sales" ("salesid", "listid", "sellerid", "buyerid", "eventid", "dateid", "qtysold", "pricepaid", "commission", "saletime") (select "salesid", "listid", "sellerid", "buyerid", "eventid", "dateid", "qtysold", "pricepaid", "commission", "saletime" from "my_inc__dbt_tmp");
-- case: dbt_incremental_merge
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/materializations/incremental_merge.sql
create temporary table "my_inc2__dbt_tmp" as (select * from category where catid < 3);
merge into "dev"."public"."category" using "my_inc2__dbt_tmp" as DBT_INTERNAL_SOURCE on DBT_INTERNAL_SOURCE.catid = "dev"."public"."category".catid
when matched then update set catname = DBT_INTERNAL_SOURCE.catname
when not matched then insert (catid, catgroup, catname, catdesc) values (DBT_INTERNAL_SOURCE.catid, DBT_INTERNAL_SOURCE.catgroup, DBT_INTERNAL_SOURCE.catname, DBT_INTERNAL_SOURCE.catdesc);
-- case: dbt_snapshot_staging
-- source: https://github.com/dbt-labs/dbt-adapters/blob/main/dbt-adapters/src/dbt/include/global_project/macros/materializations/snapshots/helpers.sql
select *, md5(coalesce(cast(catid as varchar ), '') || '|' || coalesce(cast(getdate() as varchar ), '')) as dbt_scd_id, getdate() as dbt_updated_at, getdate() as dbt_valid_from, nullif(getdate(), getdate()) as dbt_valid_to from category;
-- case: dbt_dateadd_macro
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/utils/dateadd.sql
select dateadd(day, 7, cast('2021-01-01' as timestamp));
-- case: dbt_datediff_macro
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/utils/datediff.sql
select datediff(day, cast('2021-01-01' as timestamp), cast('2021-01-08' as timestamp));
-- case: dbt_listagg_macro
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/utils/listagg.sql
select listagg(catname, ', ') within group (order by catid) from category;
-- case: dbt_split_part_macro
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/utils/split_part.sql
select split_part(catdesc, ' ', 1) from category order by catid limit 2;
-- case: dbt_last_day_macro
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/utils/last_day.sql
select cast(dateadd(day, -1, dateadd(month, 1, date_trunc('month', saletime))) as date) from sales order by salesid limit 1;
-- case: dbt_current_timestamp
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/utils/timestamps.sql
select getdate() is not null;
-- case: dbt_alter_column_type
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
create table t_dbt_alter (c varchar(10));
alter table t_dbt_alter add column "c__dbt_alter" character varying(256);
update t_dbt_alter set "c__dbt_alter" = "c";
alter table t_dbt_alter drop column "c" cascade;
alter table t_dbt_alter rename column "c__dbt_alter" to "c";
-- case: dbt_table_comment
-- source: https://github.com/dbt-labs/dbt-redshift/blob/main/dbt/include/redshift/macros/adapters.sql
create table t_dbt_c (a int);
comment on table t_dbt_c is $dbt_comment_literal_block$my model$dbt_comment_literal_block$;
